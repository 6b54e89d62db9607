"""Reliability of the dataset readers and caches: bad rows are counted, broken files are one clear error,
and images in any common depth or channel layout are used (tiny ones skipped as unsupported)."""

from __future__ import annotations

import sqlite3
import zlib

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from facetrack.cli import app
from tests import datagen
from tests.helpers import one_error_line
from training.data import DatasetError, aflw, load_dataset
from training.data.cache import build_frame_cache, build_landmark_cache

runner = CliRunner()


def _edit(db, *statements) -> None:
    """Run SQL statements (text, or (text, params)) on a generated AFLW database and commit."""
    con = sqlite3.connect(db)
    for statement in statements:
        sql, params = (statement, ()) if isinstance(statement, str) else statement
        con.execute(sql, params)
    con.commit()
    con.close()


# ---------------------------------------------------------------- AFLW
@pytest.mark.parametrize("table", aflw.REQUIRED_TABLES)
def test_aflw_missing_table_is_one_line_exit_2(tmp_path, table):
    db = datagen.make_aflw(tmp_path / "aflw", without_table=table)
    result = runner.invoke(app, ["data", "inspect", str(db.parent)])
    one_error_line(result, 2, str(db), table, "not an AFLW database")


def test_aflw_missing_column_is_one_line_exit_2(tmp_path):
    db = datagen.make_aflw(tmp_path / "aflw")
    _edit(db, "ALTER TABLE FaceRect RENAME COLUMN w TO width")
    one_error_line(runner.invoke(app, ["data", "inspect", str(db)]), 2, str(db), "unreadable AFLW database")


def test_aflw_non_numeric_cells_are_skipped(tmp_path):
    db = datagen.make_aflw(tmp_path / "aflw")
    con = sqlite3.connect(db)
    first = con.execute("SELECT MIN(face_id) FROM Faces").fetchone()[0]
    con.close()
    _edit(db, ("UPDATE FeatureCoords SET x = 'left of the nose' WHERE face_id = ? AND feature_id = ?",
               (first, datagen.AFLW_FEATURE_ID["MouthCenter"])),
          ("UPDATE FacePose SET yaw = 'frontal' WHERE face_id = ?", (first,)))
    result = load_dataset(db)
    assert len(result.samples) == datagen.AFLW_EXPECTED_FACES - 1
    assert result.skipped["required_point_missing"] == datagen.AFLW_EXPECTED_SKIPPED["required_point_missing"] + 1


def test_aflw_bad_feature_id_is_dataset_error(tmp_path):
    db = datagen.make_aflw(tmp_path / "aflw")
    _edit(db, "UPDATE FeatureCoordTypes SET x = 'left' WHERE descr = 'LeftEyeCenter'")
    with pytest.raises(DatasetError, match="malformed AFLW database"):
        load_dataset(db)


# ---------------------------------------------------------------- YouTube-Faces CSV
def test_ytf_csv_non_numeric_and_short_rows_are_counted(tmp_path):
    root = datagen.make_ytf_csv(tmp_path)
    csv_path = root / "training_frames_keypoints.csv"
    good = datagen.face_points68(100, 80, 70).reshape(-1)
    words = [f"{v:.2f}" for v in good]
    words[3] = "twelve"
    with open(csv_path, "a") as fh:
        fh.write("Anna_Smith_00.jpg," + ",".join(words) + "\n")  # not a number
        fh.write("Anna_Smith_00.jpg\n")  # no values at all
        fh.write(",,,\n")  # no file name
        fh.write("Anna_Smith_00.jpg," + ",".join(f"{v:.2f}" for v in good[:-1]) + ",inf\n")
    result = load_dataset(root)
    expected = dict(datagen.YTF_EXPECTED_SKIPPED)
    expected["wrong_number_of_values"] += 2
    expected["nan_value"] += 1
    assert len(result.samples) == datagen.YTF_EXPECTED_FACES
    assert dict(result.skipped) == expected


@pytest.mark.parametrize("content", [b"\xff\xfe\x00\x81 binary \x9c\x00" * 200,
                                     b"a,b\n\"never closed" + b"x" * 200_000])
def test_ytf_csv_unreadable_file_is_dataset_error(tmp_path, content):
    root = tmp_path / "ytf"
    (root / "training").mkdir(parents=True)
    csv_path = root / "training_frames_keypoints.csv"
    csv_path.write_bytes(content)
    result = runner.invoke(app, ["data", "inspect", str(root)])
    one_error_line(result, 2, str(csv_path), "not a readable keypoints CSV")


def test_ytf_csv_header_only_has_no_faces(tmp_path):
    root = tmp_path / "ytf"
    root.mkdir()
    (root / "training_frames_keypoints.csv").write_text("," + ",".join(str(i) for i in range(136)) + "\n")
    result = load_dataset(root)
    assert result.samples == [] and not result.skipped


# ---------------------------------------------------------------- 300-W
def test_300w_folder_named_pts_and_garbage_files(tmp_path):
    root = datagen.make_300w(tmp_path)
    (root / "odd.pts").mkdir()
    (root / "junk_1.pts").write_bytes(b"\x00\x01\x02 version: 1 {")
    datagen.write_image(root / "junk_1.jpg")
    result = load_dataset(root)
    assert len(result.samples) == datagen.SET_300W_EXPECTED_FACES
    assert result.skipped["wrong_number_of_values"] == datagen.SET_300W_EXPECTED_SKIPPED["wrong_number_of_values"] + 1


# ---------------------------------------------------------------- image depth and channels
def _convert(path, mode: str) -> None:
    """Rewrite a colour JPEG as PNG in `mode` (same name, .png)."""
    from PIL import Image

    image = cv2.imread(str(path))
    if mode == "gray":
        out = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    elif mode == "rgba":
        out = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
    elif mode == "gray16":
        out = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257
    elif mode == "color16":
        out = image.astype(np.uint16) * 257
    elif mode == "gray_alpha":
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        Image.fromarray(np.dstack([gray, np.full_like(gray, 255)]), "LA").save(path.with_suffix(".png"))
        path.unlink()
        return
    else:
        raise ValueError(mode)
    assert cv2.imwrite(str(path.with_suffix(".png")), out)
    path.unlink()


MODES = ("gray", "rgba", "gray16", "color16", "gray_alpha")


def test_dataset_images_of_any_depth_or_channels_are_used(tmp_path):
    root = datagen.make_300w(tmp_path)
    stems = ("1001_1", "1001_2", "2002_1", "3003_1")
    for stem, mode in zip(stems, MODES):
        _convert(root / f"{stem}.jpg", mode)
    datagen.write_image(root / "6006_1.jpg", width=6, height=6)  # too small to hold a face
    (root / "6006_1.pts").write_text(datagen.pts_text(datagen.face_points68(3, 3, 4)))
    result = load_dataset(root)
    assert len(result.samples) == datagen.SET_300W_EXPECTED_FACES
    assert result.skipped["unsupported_image"] == 1
    assert {s.image_path.rsplit(".", 1)[1] for s in result.samples} == {"png"}
    crops = build_landmark_cache(result.samples, 48, workers=2)
    assert len(crops) == len(result.samples) and not crops.skipped
    assert crops.images.dtype.is_floating_point is False and tuple(crops.images.shape[1:]) == (77, 77, 3)
    frames = build_frame_cache(result.samples, 64, workers=2)
    assert len(frames) == len(result.samples) and not frames.skipped
    assert tuple(frames.images.shape[1:]) == (64, 64, 3)
    for patch in crops.images.numpy():  # real pixels, not an all-black failed decode
        assert patch.std() > 5


def test_image_size_guards_huge_and_tiny_images(tmp_path):
    from PIL import Image

    from training.data.common import image_size

    huge = tmp_path / "huge.png"
    Image.new("L", (1, 1)).save(huge)
    data = bytearray(huge.read_bytes())
    i = data.find(b"IHDR")  # claim 60000 x 60000 pixels in the header (with a valid chunk CRC)
    data[i + 4:i + 12] = (60000).to_bytes(4, "big") + (60000).to_bytes(4, "big")
    data[i + 17:i + 21] = zlib.crc32(bytes(data[i:i + 17])).to_bytes(4, "big")
    huge.write_bytes(bytes(data))
    assert image_size(huge) == "unsupported_image"
    tiny = datagen.write_image(tmp_path / "tiny.jpg", width=5, height=20)
    assert image_size(tiny) == "unsupported_image"
    (tmp_path / "garbage.jpg").write_bytes(b"\xff\xd8\xff garbage")
    assert image_size(tmp_path / "garbage.jpg") == "unreadable_image"


def test_cache_build_stops_promptly_on_interrupt(tmp_path, monkeypatch):
    """Ctrl+C while caching must not first decode every remaining image."""
    import training.data.cache as cache

    decoded = []

    def slow_read(path):
        decoded.append(path)
        if len(decoded) == 3:
            raise KeyboardInterrupt
        return np.zeros((40, 40, 3), np.uint8)

    monkeypatch.setattr(cache, "read_image_bgr", slow_read)
    samples = load_dataset(datagen.make_ytf_csv(tmp_path)).samples * 20
    with pytest.raises(KeyboardInterrupt):
        cache.build_landmark_cache(samples, 32, workers=2)
    assert len(decoded) < len(samples) // 2
