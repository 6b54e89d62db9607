"""The Python API (`from tracker import FaceTracker`): the README's "Python" example runs as written, results
have named fields, JSON round trips, drawing returns a new image, bad images raise InputError, tracking
keeps ids, and the ONNX path stays free of torch."""

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.errors import InputError
from core.frame import FaceResult, Frame, FrameResult
from core.manifest import default_weights_dir
from core.meta import POINT_NAMES
from tests.helpers import demo_frames, write_frames_clip

ROOT = Path(__file__).resolve().parents[1]
CLIP_FRAMES = 8


@pytest.fixture(scope="module")
def ft():
    if not (default_weights_dir() / "manifest.json").is_file():
        pytest.skip("no shipped weights")
    from tracker import FaceTracker

    return FaceTracker(device="cpu")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return demo_frames(1)[0]


def readme_python_example() -> str:
    """The first ```python block of the README's "## Python" section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Python\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert section, 'README.md has no "## Python" section'
    block = re.search(r"```python\n(.*?)```", section.group(1), re.DOTALL)
    assert block, 'the "## Python" section has no python code block'
    return block.group(1)


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    if not (default_weights_dir() / "manifest.json").is_file():
        pytest.skip("no shipped weights")
    frames = demo_frames(CLIP_FRAMES)
    cv2.imwrite(str(tmp_path / "photo.jpg"), frames[0])
    write_frames_clip(tmp_path / "clip.mp4", frames)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(readme_python_example(), "README.md#python", "exec"), namespace)

    out = capsys.readouterr().out.splitlines()
    rows = [json.loads(line) for line in out if line.startswith("{")]
    assert len(rows) == 1 and rows[0]["width"] == 640 and len(rows[0]["faces"]) >= 1
    assert set(rows[0]["faces"][0]["points"]) == set(POINT_NAMES)
    written = cv2.imread("photo-out.jpg")
    assert written is not None and written.shape == frames[0].shape
    tracked = [line for line in out if re.match(r"^\d+ \[", line)]
    assert len(tracked) == CLIP_FRAMES and tracked[0].startswith("0 [1")  # one line per frame, ids kept
    assert namespace["result"].index == CLIP_FRAMES - 1  # the step() loop went through the clip


def test_readme_example_builds_its_own_tracker(tmp_path):
    """FaceTracker() as the README writes it: the shipped weights, in a fresh process, without torch."""
    if not (default_weights_dir() / "manifest.json").is_file():
        pytest.skip("no shipped weights")
    code = (
        "import sys\n"
        "import numpy as np\n"
        "import tracker\n"
        "assert 'tracker.api' not in sys.modules and 'onnxruntime' not in sys.modules  # import tracker: light\n"
        "from tracker import FaceTracker\n"
        "ft = FaceTracker()\n"
        "result = ft(np.full((120, 160, 3), 90, np.uint8))\n"
        "assert result.faces == (), result\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_faces_have_named_fields(ft, photo):
    result = ft(photo)
    assert len(result) == len(result.faces) >= 1 and result[0] is result.faces[0]
    face = result.faces[0]
    assert face.id == 1 and 0.0 <= face.score <= 1.0 and face.tracked is False
    assert tuple(face.points) == POINT_NAMES
    np.testing.assert_allclose(np.array([face.points[name] for name in POINT_NAMES]), face.points_px)
    assert face.points_px.shape == (4, 2) and face.points_px.dtype == np.float32
    x1, y1, x2, y2 = face.box_xyxy
    assert face.box_xyxy.shape == (4,) and 0 <= x1 < x2 <= result.width and 0 <= y1 < y2 <= result.height
    nose_x, nose_y = face.points["nose_tip"]
    assert x1 <= nose_x <= x2 and y1 <= nose_y <= y2
    assert face.quality is None or 0.0 <= face.quality <= 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        face.score = 1.0
    with pytest.raises(ValueError):
        face.box_xyxy[0] = 0.0  # read-only
    with pytest.raises(TypeError):
        face.points["nose_tip"] = (0.0, 0.0)
    assert result.width == 640 and result.height == 480 and result.index == 0 and result.path is None
    assert set(result.timings_ms) >= {"total"} and result.detected
    assert "Face(id=1" in repr(result) and "nose_tip=(" in repr(face)


def test_to_dict_and_to_json_round_trip(ft, photo, tmp_path):
    result = ft(photo)
    row = result.to_dict()
    assert json.loads(result.to_json()) == row
    assert json.loads(result.to_json(indent=2)) == row
    assert {"frame", "t_ms", "width", "height", "faces"} <= set(row)
    assert row["faces"][0] == result.faces[0].to_dict()
    face = row["faces"][0]
    assert face["id"] == 1 and set(face["points"]) == set(POINT_NAMES)
    np.testing.assert_allclose(face["points"]["nose_tip"], result.faces[0].points["nose_tip"], atol=0.01)
    np.testing.assert_allclose(face["box_xyxy"], result.faces[0].box_xyxy, atol=0.01)
    # an image file: read as `facetrack images` reads it, the row names it
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), photo)
    from_file = ft(path)
    assert from_file.path == str(path) and from_file.to_dict()["image"] == str(path)
    np.testing.assert_allclose(from_file.faces[0].points_px, result.faces[0].points_px, atol=0.5)


def test_plot_returns_a_new_annotated_image(ft, photo):
    before = photo.copy()
    result = ft(photo)
    drawn = result.plot()
    assert drawn is not result.image and drawn.shape == photo.shape and drawn.dtype == np.uint8
    assert (drawn != photo).any()
    np.testing.assert_array_equal(photo, before)  # the frame is not touched
    np.testing.assert_array_equal(result.draw(), drawn)
    assert (result.plot(legend=False) != drawn).any()


def test_point_scores_by_name():
    """A model with point scores: `Face.point_scores` names them; to_dict gives them too (no model needed)."""
    from tracker.results import Result

    image = np.zeros((40, 60, 3), np.uint8)
    points = np.array([[10, 10], [30, 10], [20, 20], [20, 30]], np.float32)
    face = FaceResult(3, np.array([0, 0, 40, 40], np.float32), 0.9, points, 0.8,
                      point_scores=np.array([0.9, 0.8, 0.3, 0.7], np.float32))
    result = Result.of(FrameResult(Frame(image, 5, 0.0, 200.0), [face], {"total": 1.0}, False))
    got = result.faces[0]
    assert got.id == 3 and got.points["left_eye"] == (30.0, 10.0)
    assert got.point_scores["nose_tip"] == pytest.approx(0.3) and tuple(got.point_scores) == POINT_NAMES
    row = result.to_dict()
    assert row["frame"] == 5 and row["t_ms"] == 200.0 and row["faces"][0]["point_scores"]["nose_tip"] == 0.3
    assert json.loads(result.to_json()) == row
    empty = Result.of(FrameResult(Frame(image, 0, 0.0), [], {}, True))
    assert empty.faces == () and empty.to_dict()["faces"] == [] and empty.plot().shape == image.shape


@pytest.mark.parametrize("bad, needle", [
    (np.zeros((48, 64, 3), np.float32), "dtype float32"),
    (np.zeros((48, 64, 3), np.uint16), "dtype uint16"),
    (np.zeros((48, 64, 5), np.uint8), "shape"),
    (np.zeros((2, 48, 64, 3), np.uint8), "shape"),
    (np.zeros((4, 4, 3), np.uint8), "too small"),
    ([[0, 0, 0]], "numpy"),
])
def test_bad_images_raise_input_error(ft, bad, needle):
    with pytest.raises(InputError, match=needle):
        ft(bad)
    with pytest.raises(InputError, match=needle):
        ft.step(bad)


def test_bad_paths_and_sources_raise_input_error(ft, tmp_path):
    with pytest.raises(InputError, match="no such image"):
        ft(tmp_path / "missing.jpg")
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image")
    with pytest.raises(InputError, match="cannot be decoded"):
        ft(junk)
    frames = ft.track(tmp_path / "missing.mp4")  # a generator: opened on the first iteration
    with pytest.raises(InputError):
        next(frames)
    with pytest.raises(InputError):
        next(ft.track(3.5))


def test_grey_and_bgra_images_are_converted(ft, photo):
    want = ft(photo).faces[0].points_px
    bgra = ft(cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA))
    np.testing.assert_allclose(bgra.faces[0].points_px, want, atol=1e-3)
    assert bgra.image.shape == photo.shape
    grey = ft(cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY))
    assert grey.image.shape == photo.shape and len(grey.faces) >= 1
    np.testing.assert_allclose(grey.faces[0].points_px, want, atol=10.0)
    flipped = ft(photo[:, ::-1])  # a non-contiguous view
    assert len(flipped.faces) >= 1


def test_step_tracks_between_calls_and_reset_starts_again(ft):
    frames = demo_frames(3)
    ft.reset()
    results = [ft.step(image, t_ms=40.0 * i) for i, image in enumerate(frames)]
    assert [r.index for r in results] == [0, 1, 2] and [r.t_ms for r in results] == [0.0, 40.0, 80.0]
    assert results[0].detected and not results[1].detected and results[1].faces[0].tracked
    assert {f.id for f in results[0].faces} == {f.id for f in results[2].faces} == {1}
    ft.reset()
    again = ft.step(frames[0])
    assert again.index == 0 and again.detected and again.faces[0].id == 1


def test_track_iterates_a_video_and_closes_it(ft, tmp_path):
    from tracker.sources import open_video

    clip = write_frames_clip(tmp_path / "clip.mp4", demo_frames(CLIP_FRAMES))
    results = list(ft.track(clip))
    assert [r.index for r in results] == list(range(CLIP_FRAMES))
    assert all(r.faces and r.faces[0].id == 1 for r in results)
    assert results[0].detected and not results[1].detected
    source = open_video(clip)  # a Source given as is: closed when the loop stops early
    for _ in ft.track(source):
        break
    assert source.read() is None
