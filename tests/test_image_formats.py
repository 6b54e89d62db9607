"""Photos and videos as people have them (issue 17, items 1-3): HEIC photos, AVIF in folders, animated GIF/WebP.

Inputs are tiny files written here (HEIC with pillow-heif, EXIF orientation included; AVIF, animated GIF
and WebP with Pillow, each frame with its own duration); the examples in ../shared/field-cases/{heic,avif,
animated} run through the CLI with the shipped weights and skip, saying why, when that folder is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from core.image_formats import format_without_decoder, is_animated_image, pillow, signature_format
from core.imageio import EXIF_ORIENTATION_TAG, read_image_bgr
from core.meta import POINT_NAMES
from core.metrics import nme_per_face
from facetrack.cli import app
from facetrack.fieldcases import video_timing
from tests.helpers import draw_face_at, drawn_faces, one_error_line, shared_folder
from tests.test_still_images import STORE_FROM_DISPLAYED, corner_card
from tracker.sources import open_video
from tracker.sources.animated import AnimatedImageSource
from tracker.sources.images import ImageSource, list_images

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def write_heic(path: Path, displayed_bgr: np.ndarray, orientation: int = 1) -> Path:
    """Store `displayed_bgr` as a phone's HEIC (pillow-heif): pixels turned/mirrored, EXIF Orientation
    `orientation` (pillow-heif writes it as the container's turn and mirror too, as phones do)."""
    pillow()  # the HEIF opener and saver registered
    image = Image.fromarray(np.ascontiguousarray(displayed_bgr[..., ::-1]))
    if STORE_FROM_DISPLAYED[orientation] is not None:
        image = image.transpose(STORE_FROM_DISPLAYED[orientation])
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = orientation
    image.save(path, "HEIF", exif=exif.tobytes(), quality=95, chroma=444)
    return path


def write_animation(path: Path, durations_ms: list[int], size: tuple[int, int] = (160, 120)) -> Path:
    """An animated GIF or WebP (by suffix) with one frame per duration (ms): a drawn face moving right on
    a background whose grey level changes, so no two frames are alike (Pillow would merge them)."""
    frames = []
    for k in range(len(durations_ms)):
        image = np.full((size[1], size[0], 3), 60 + 25 * k, np.uint8)
        draw_face_at(image, (50.0 + 12 * k, 55.0), 30.0)
        frames.append(Image.fromarray(image[..., ::-1].copy()))
    options = {"lossless": True} if path.suffix == ".webp" else {}
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations_ms, loop=0, **options)
    return path


# ---------------------------------------------------------------- item 1: HEIC


@pytest.mark.parametrize("orientation", range(1, 9))
def test_heic_reads_as_displayed_for_every_orientation(tmp_path, orientation):
    card = corner_card()
    path = write_heic(tmp_path / "card.heic", card, orientation)
    assert signature_format(path) == "HEIF" and format_without_decoder(path) is None
    assert _mean_abs(read_image_bgr(path, upright=True), card) <= 3.0


def test_heic_is_tracked_named_and_in_a_folder(dot_models, face_weights, tmp_path):
    displayed, (truth,) = drawn_faces(320, 240, [(130.0, 105.0)], iod=50.0)
    folder = tmp_path / "phone"
    folder.mkdir()
    photo = write_heic(folder / "IMG_0001.HEIC", displayed, orientation=6)
    (folder / "notes.txt").write_text("x")
    assert list_images([folder]).images == [str(photo)]
    for given in (folder, photo):
        rows = tmp_path / "rows.jsonl"
        result = runner.invoke(app, ["images", str(given), "--weights", str(face_weights), "--json", str(rows)])
        assert result.exit_code == 0, result.output
        (row,) = _rows(rows)
        assert (row["width"], row["height"]) == (320, 240)
        points = np.array(list(row["faces"][0]["points"].values()))
        assert np.abs(points - truth).max() < 3.0, points.round(1).tolist()


def test_a_format_nothing_here_reads_is_named(face_weights, tmp_path, monkeypatch):
    jxl = tmp_path / "photo.jxl"
    jxl.write_bytes(b"\xff\x0a\xfa\x7f\x00 a JPEG XL codestream")
    one_error_line(runner.invoke(app, ["images", str(jxl), "--weights", str(face_weights)]), 2,
                   "JPEG XL (no decoder installed", str(jxl))
    # a HEIC where pillow-heif is missing: Pillow without its HEIF opener
    heic = write_heic(tmp_path / "face.heic", corner_card())
    monkeypatch.delitem(pillow().OPEN, "HEIF")
    assert read_image_bgr(heic) is None
    skipped = dict(list_images([tmp_path]).skipped)
    assert skipped[str(heic)] == "HEIF (no decoder installed; pip install pillow-heif)"
    one_error_line(runner.invoke(app, ["images", str(heic), "--weights", str(face_weights)]), 2,
                   "HEIF (no decoder installed; pip install pillow-heif)")


def test_a_broken_heic_is_unreadable_not_unsupported(tmp_path):
    whole = write_heic(tmp_path / "whole.heic", np.full((64, 64, 3), 99, np.uint8))
    (tmp_path / "cut.heic").write_bytes(whole.read_bytes()[:200])
    (tmp_path / "ok.png").write_bytes(cv2.imencode(".png", corner_card())[1].tobytes())
    source = ImageSource([tmp_path])
    assert list(source.skipped_by_reason) == ["unreadable"], source.skip_summary()
    assert source.skipped_names == [str(tmp_path / "cut.heic")]


# ---------------------------------------------------------------- item 2: AVIF in folders


def test_avif_in_a_folder_is_taken_as_when_named(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    card = corner_card()
    Image.fromarray(card[..., ::-1].copy()).save(folder / "card.avif", quality=95)
    (folder / "noext").write_bytes((folder / "card.avif").read_bytes())  # by content, not by name
    cv2.imwrite(str(folder / "card.jpg"), card)
    listing = list_images([folder])
    assert sorted(Path(name).name for name in listing.images) == ["card.avif", "card.jpg", "noext"]
    assert listing.skipped == []
    assert _mean_abs(read_image_bgr(folder / "card.avif", upright=True), card) <= 6.0


def test_pillow_reads_avif_where_opencv_does_not(tmp_path, monkeypatch):
    """An OpenCV built without AVIF (or HEIF, ...): the file is still taken by content and decoded by Pillow."""
    card = corner_card()
    path = tmp_path / "card.avif"
    Image.fromarray(card[..., ::-1].copy()).save(path, quality=95)
    monkeypatch.setattr(cv2, "haveImageReader", lambda name: False)
    monkeypatch.setattr(cv2, "imdecode", lambda data, flags: None)
    assert list_images([tmp_path]).images == [str(path)]
    assert _mean_abs(read_image_bgr(path, upright=True), card) <= 6.0


# ---------------------------------------------------------------- item 3: animated GIF and WebP
ANIMATIONS = {  # suffix: (durations written, ms; each frame's t_ms: the durations before it, 0 ms shown as 100 ms)
    ".gif": ([40, 120, 0, 80], [0.0, 40.0, 160.0, 260.0]),
    ".webp": ([40, 120, 300, 80], [0.0, 40.0, 160.0, 460.0]),
}


@pytest.mark.parametrize("suffix", sorted(ANIMATIONS))
def test_video_takes_an_animation_with_each_frames_own_time(face_weights, tmp_path, suffix):
    durations, times = ANIMATIONS[suffix]
    clip = write_animation(tmp_path / f"clip{suffix}", durations)
    assert is_animated_image(clip) and isinstance(open_video(clip), AnimatedImageSource)
    out, rows = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    result = runner.invoke(app, ["video", str(clip), "--out", str(out), "--json", str(rows),
                                 "--weights", str(face_weights), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "4 frames" in result.output
    data = _rows(rows)
    assert [r["frame"] for r in data] == [0, 1, 2, 3]
    assert [r["t_ms"] for r in data] == pytest.approx(times, abs=0.01)
    assert {(r["width"], r["height"]) for r in data} == {(160, 120)}
    written, width, height = video_timing(out)
    assert written == pytest.approx(times, abs=1.0) and (width, height) == (160, 120)


def test_images_says_it_used_the_first_frame_of_animated_files(face_weights, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    gif = write_animation(folder / "a.gif", [100, 200, 300])
    webp = write_animation(folder / "b.webp", [100, 200, 300])
    Image.fromarray(np.full((40, 60, 3), 90, np.uint8)).save(folder / "still.gif")
    cv2.imwrite(str(folder / "c.png"), np.full((40, 60, 3), 90, np.uint8))
    result = runner.invoke(app, ["images", str(folder), "--weights", str(face_weights)])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if "animated" in line]
    assert notes == [f"facetrack: only the first frame of 2 animated file(s) was used ({gif}, {webp}); "
                     "`facetrack video FILE` tracks every frame, each at its own time"], result.output
    assert "4 images" in result.output


# ---------------------------------------------------------------- the shared examples


def _field_case(case: str, *files: str) -> Path:
    base = shared_folder("field-cases", "FACETRACK_FIELD_CASES")
    folder = None if base is None else base / case
    if folder is None or not all((folder / name).is_file() for name in files):
        pytest.skip(f"field case {case} not found (../shared/field-cases beside the repository, or "
                    "$FACETRACK_FIELD_CASES)")
    return folder


def _points(face: dict) -> np.ndarray:
    return np.array([face["points"][name] for name in POINT_NAMES], dtype=np.float64)


@pytest.mark.parametrize("case,photo", [("heic", "face.heic"), ("avif", "face.avif")])
def test_heic_and_avif_field_cases(tmp_path, case, photo):
    """Both files of the folder tracked (the JPEG and the HEIC/AVIF), each with the truth's points (NME
    under 8 %) and the same points as each other; the HEIC named alone too."""
    folder = _field_case(case, photo, "face.jpg", "truth.json")
    truth = json.loads((folder / "truth.json").read_text())
    rows = tmp_path / "rows.jsonl"
    result = runner.invoke(app, ["images", str(folder), "--json", str(rows), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "2 images, 2 with a face" in result.output
    found = {Path(r["image"]).name: r for r in _rows(rows)}
    assert sorted(found) == sorted([photo, "face.jpg"])
    for name, row in found.items():
        (face,) = row["faces"]
        reference = np.array([truth[name][p] for p in POINT_NAMES])
        assert nme_per_face(_points(face)[None], reference[None])[0] < 8.0, (name, face)
    iod = float(np.linalg.norm(reference[0] - reference[1]))
    assert np.abs(_points(found[photo]["faces"][0]) - _points(found["face.jpg"]["faces"][0])).max() < 0.05 * iod
    alone = runner.invoke(app, ["images", str(folder / photo), "--device", "cpu"])
    assert alone.exit_code == 0 and "1 images, 1 with a face" in alone.output, alone.output


@pytest.mark.parametrize("name", ["face_from_frame1.gif", "face_from_frame1.webp"])
def test_animated_field_cases(tmp_path, name):
    """`video`: all 8 frames at 0, 200, ... 1400 ms (JSON and mp4), the grey card of frame 0 without a face,
    the face in frames 1-7; `images`: says it used only the first frame."""
    folder = _field_case("animated", name)
    out, rows = tmp_path / "out.mp4", tmp_path / "rows.jsonl"
    result = runner.invoke(app, ["video", str(folder / name), "--out", str(out), "--json", str(rows),
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    data = _rows(rows)
    assert [r["t_ms"] for r in data] == [200.0 * k for k in range(8)]
    assert video_timing(out)[0] == pytest.approx([200.0 * k for k in range(8)], abs=1.0)
    assert [len(r["faces"]) for r in data] == [0] + [1] * 7
    result = runner.invoke(app, ["images", str(folder / name), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert f"only the first frame of 1 animated file(s) was used ({folder / name})" in result.output
