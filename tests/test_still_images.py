"""Still images as users have them (issue 13, items 1 and 5).

EXIF orientation: phone photos store their pixels turned or mirrored and say in the EXIF Orientation tag
(1..8) how a viewer shows them. `facetrack images` reads, reports (width, height, points), scores and
draws them as displayed; the training and evaluation readers keep the stored frame their labels use.
Inputs are small generated images stored with each tag (Pillow writes it), checked against Pillow's own
`ImageOps.exif_transpose`, drawn faces through the `images` command, and the shared field case.

Image types: what `facetrack images` takes is one rule for a file named directly and a file in a folder
(its content is an image OpenCV reads: a GIF counts); every other file is counted and named.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps
from typer.testing import CliRunner

from core.imageio import EXIF_ORIENTATION_TAG, apply_exif_orientation, exif_orientation, read_image_bgr
from facetrack.cli import app
from tests.helpers import drawn_faces, find_drawn_faces, one_error_line, shared_folder
from tracker.sources.images import ImageSource, list_images

runner = CliRunner()
ORIENTATIONS = range(1, 9)
# What turns the displayed picture into the stored pixels for each tag: the inverse of the transpose
# Pillow's `exif_transpose` applies (6 and 8 swap; the others are their own inverse).
STORE_FROM_DISPLAYED = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                        4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90,
                        7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}


def write_oriented(path: Path, displayed_bgr: np.ndarray, orientation: int, fmt: str = "JPEG") -> Path:
    """Store `displayed_bgr` (uint8 HxWx3) as a phone does: pixels turned/mirrored, EXIF Orientation
    `orientation` telling a viewer how to show them again. Checked with Pillow's `exif_transpose`."""
    image = Image.fromarray(np.ascontiguousarray(displayed_bgr[..., ::-1]))
    if STORE_FROM_DISPLAYED[orientation] is not None:
        image = image.transpose(STORE_FROM_DISPLAYED[orientation])
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = orientation
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    image.save(path, fmt, exif=exif if fmt == "TIFF" else exif.tobytes(), **options)
    with Image.open(path) as check:
        assert check.getexif().get(EXIF_ORIENTATION_TAG) == orientation
        assert ImageOps.exif_transpose(check).size == (displayed_bgr.shape[1], displayed_bgr.shape[0])
    return path


def corner_card(width: int = 40, height: int = 24) -> np.ndarray:
    """A grey BGR card with a differently coloured block in each corner: every turn and mirror differs."""
    card = np.full((height, width, 3), 128, np.uint8)
    card[:8, :8] = (0, 0, 255)
    card[:8, -8:] = (0, 255, 0)
    card[-8:, :8] = (255, 0, 0)
    card[-8:, -8:] = (0, 255, 255)
    return card


def _mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# ---------------------------------------------------------------- reading (core.imageio)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_upright_read_shows_the_image_as_viewers_do(tmp_path, orientation, fmt):
    displayed = corner_card()
    path = write_oriented(tmp_path / f"card.{fmt.lower()}", displayed, orientation, fmt)
    upright = read_image_bgr(path, upright=True)
    with Image.open(path) as stored_file:
        pillow = np.asarray(ImageOps.exif_transpose(stored_file).convert("RGB"))[..., ::-1]
    tolerance = 0.0 if fmt in ("PNG", "TIFF") else 6.0  # JPEG / WebP: lossy
    assert _mean_abs(upright, displayed) <= tolerance
    assert _mean_abs(upright, pillow) <= tolerance


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_the_default_read_keeps_the_stored_pixels_the_labels_use(tmp_path, orientation):
    path = write_oriented(tmp_path / "card.png", corner_card(), orientation, "PNG")
    with Image.open(path) as stored_file:
        stored = np.asarray(stored_file.convert("RGB"))[..., ::-1]
    assert _mean_abs(read_image_bgr(path), stored) == 0.0


def test_apply_exif_orientation_ignores_unknown_values_and_reading_survives_bad_exif(tmp_path):
    card = corner_card()
    for value in (0, 9, 1000):
        assert apply_exif_orientation(card, value) is card
    bad = tmp_path / "bad.jpg"  # a JPEG whose APP1 segment says Exif but holds garbage
    ok, data = cv2.imencode(".jpg", card)
    assert ok
    segment = b"Exif\x00\x00" + b"\xff\x13garbage"
    data = data.tobytes()
    bad.write_bytes(data[:2] + b"\xff\xe1" + (len(segment) + 2).to_bytes(2, "big") + segment + data[2:])
    assert exif_orientation(bad.read_bytes())[1] == 1
    assert read_image_bgr(bad, upright=True).shape == card.shape
    assert exif_orientation(b"not an image") == (None, 1)


# ---------------------------------------------------------------- facetrack images



def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_images_command_tracks_each_orientation_as_displayed(dot_models, face_weights, tmp_path):
    """Width and height as displayed, points on the displayed features (right eye on the image's left),
    and the annotated and raw copies the displayed picture, for all eight tags."""
    displayed, (truth,) = drawn_faces(320, 240, [(130.0, 105.0)], iod=50.0)  # off-centre: mirrors move it
    folder = tmp_path / "phone"
    folder.mkdir()
    for orientation in ORIENTATIONS:
        write_oriented(folder / f"o{orientation}.jpg", displayed, orientation)
    rows, drawn, raw = tmp_path / "rows.jsonl", tmp_path / "drawn", tmp_path / "raw"
    args = ["images", str(folder), "--weights", str(face_weights), "--json", str(rows)]
    result = runner.invoke(app, [*args, "--out-dir", str(drawn)])
    assert result.exit_code == 0, result.output
    assert "8 images, 8 with a face" in result.output
    assert "models: detector " in result.output and ", landmarks " in result.output  # what ran, as video says
    data = _rows(rows)
    assert [Path(r["image"]).name for r in data] == [f"o{o}.jpg" for o in ORIENTATIONS]
    for row in data:
        assert (row["width"], row["height"]) == (320, 240), row["image"]
        (face,) = row["faces"]
        points = np.array(list(face["points"].values()))
        assert np.abs(points - truth).max() < 3.0, (row["image"], points.round(1).tolist())
    for orientation in ORIENTATIONS:
        assert cv2.imread(str(drawn / f"o{orientation}.jpg")).shape == displayed.shape
    result = runner.invoke(app, [*args, "--out-dir", str(raw), "--no-draw"])
    assert result.exit_code == 0, result.output
    for orientation in ORIENTATIONS:
        (dots,) = find_drawn_faces(cv2.imread(str(raw / f"o{orientation}.jpg")))
        assert np.abs(dots - truth).max() < 2.0, orientation


def test_exif_orientation_field_case(tmp_path):
    """../shared/field-cases/exif-orientation with the shipped weights: each phone JPEG (tags 3, 6, 8)
    reported 651x800 as displayed, one face, NME under 8 % in displayed coordinates (truth.json)."""
    from facetrack.fieldcases import score_case

    base = shared_folder("field-cases", "FACETRACK_FIELD_CASES")
    case = None if base is None else base / "exif-orientation"
    if case is None or not (case / "truth.json").is_file():
        pytest.skip("field case exif-orientation not found (../shared/field-cases beside the repository, "
                    "or $FACETRACK_FIELD_CASES)")
    rows = tmp_path / "rows.jsonl"
    result = runner.invoke(app, ["images", str(case), "--json", str(rows), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    scored = score_case(case, _rows(rows))
    assert len(scored) == 3 and all(item["pass"] for item in scored), scored
    assert all(item["size"] == [651, 800] for item in scored), scored


# ---------------------------------------------------------------- what `images` takes (item 5)


def _mixed_folder(root: Path) -> dict[str, Path]:
    """A folder of what users keep beside their photos: a GIF, an image without a suffix, a broken JPEG,
    notes, a sidecar file, a subfolder."""
    rng = np.random.default_rng(3)
    (root / "sub").mkdir(parents=True)
    files = {name: root / name for name in ("face.gif", "noext", "broken.jpg", "notes.txt", "sub/b.png",
                                            "sub/photo.xmp")}
    Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(files["face.gif"], "GIF")
    cv2.imwrite(str(files["sub/b.png"]), rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))
    files["noext"].write_bytes(files["sub/b.png"].read_bytes())
    files["broken.jpg"].write_bytes(b"\xff\xd8\xff\xe0 a JPEG that stops here")
    files["notes.txt"].write_text("shot on a phone")
    files["sub/photo.xmp"].write_text("<x:xmpmeta/>")
    return files


def test_a_folder_takes_exactly_what_naming_each_file_takes(tmp_path):
    files = _mixed_folder(tmp_path / "mixed")
    in_folder = list_images([tmp_path / "mixed"])
    named = [str(path) for path in sorted(files.values()) if list_images([path]).images]
    assert sorted(in_folder.images) == sorted(named)
    assert {Path(name).name for name in in_folder.images} == {"face.gif", "noext", "broken.jpg", "b.png"}
    assert {Path(name).name: why for name, why in in_folder.skipped} == {"notes.txt": "not an image",
                                                                         "photo.xmp": "not an image"}


def test_images_command_takes_a_gif_in_a_folder_and_names_what_it_skips(face_weights, tmp_path):
    files = _mixed_folder(tmp_path / "mixed")
    rows = tmp_path / "rows.jsonl"
    result = runner.invoke(app, ["images", str(tmp_path / "mixed"), "--weights", str(face_weights),
                                 "--json", str(rows)])
    assert result.exit_code == 0, result.output
    (summary,) = [line for line in result.output.splitlines() if " images, " in line]
    assert summary.startswith("facetrack: 3 images, ")
    assert f"1 unreadable skipped ({files['broken.jpg']})" in summary
    assert f"2 not an image skipped ({files['notes.txt']}, {files['sub/photo.xmp']})" in summary
    assert sorted(Path(r["image"]).name for r in _rows(rows)) == ["b.png", "face.gif", "noext"]
    result = runner.invoke(app, ["images", str(files["face.gif"]), "--weights", str(face_weights)])
    assert result.exit_code == 0 and "1 images" in result.output, result.output
    one_error_line(runner.invoke(app, ["images", str(files["notes.txt"]), "--weights", str(face_weights)]), 2,
                   "none of the 1 file(s) could be used", f"1 not an image ({files['notes.txt']})")


def test_the_summary_names_a_few_files_per_reason(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.full((20, 20, 3), 99, np.uint8))
    for k in range(5):
        (folder / f"note{k}.txt").write_text("x")
    source = ImageSource([folder])
    assert source.skipped == 5
    assert source.skip_summary(" skipped") == (f"5 not an image skipped ({folder / 'note0.txt'}, "
                                               f"{folder / 'note1.txt'}, {folder / 'note2.txt'}, +2 more)")


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root reads every file")
def test_a_file_that_cannot_be_opened_is_unreadable(tmp_path):
    path = tmp_path / "locked.png"
    cv2.imwrite(str(path), np.full((20, 20, 3), 99, np.uint8))
    path.chmod(0)
    try:
        assert list_images([tmp_path]).skipped == [(str(path), "unreadable")]
    finally:
        path.chmod(0o644)
