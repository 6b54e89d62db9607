"""Reliability: bad inputs, bad output paths, failing sources and devices give one line and the right exit code.

Every case checks the exit code (README: 0 ok, 1 runtime failure, 2 bad usage or input), that stderr
holds exactly one `facetrack: error: ...` line naming the path or device, no traceback, and that what
was produced before a failure is kept and playable.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from facetrack.cli import app
from tests.helpers import LockstepCamera, count_frames, one_error_line, write_clip, written_names

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent


def _invoke(args: list[str]):
    return runner.invoke(app, [str(a) for a in args])


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(autouse=True)
def _no_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


def _cut_clip(tmp_path: Path, frames: int = 40) -> tuple[Path, int]:
    """A clip whose second half of media data is zeroed: (path, frames that still decode)."""
    clip = write_clip(tmp_path / "whole.mp4", frames=frames)
    data = bytearray(clip.read_bytes())
    mdat, moov = data.find(b"mdat"), data.find(b"moov")
    assert 0 < mdat < moov, "expected mp4v output with its index at the end"
    middle = mdat + (moov - mdat) // 2
    data[middle:moov - 8] = bytes(moov - 8 - middle)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(bytes(data))
    cap = cv2.VideoCapture(str(cut))
    good = 0
    while cap.read()[0]:
        good += 1
    cap.release()
    assert 0 < good < frames - 5
    return cut, good


# ---------------------------------------------------------------- video inputs
@pytest.mark.parametrize("kind", ["missing", "folder", "zero_bytes", "random_bytes", "text"])
def test_bad_video_input_is_exit_2_one_line(face_weights, tmp_path, kind):
    path = tmp_path / "in.mp4"
    if kind == "folder":
        path.mkdir()
    elif kind == "zero_bytes":
        path.write_bytes(b"")
    elif kind == "random_bytes":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    elif kind == "text":
        path.write_text("this is a shopping list, not a video\n" * 50)
    out = tmp_path / "out.mp4"
    result = _invoke(["video", path, "--out", out, "--json", tmp_path / "o.jsonl", "--weights", face_weights,
                      "--device", "cpu"])
    line = one_error_line(result, 2, str(path))
    assert len(result.output.strip().splitlines()) == 1, result.output  # nothing else: no decoder chatter
    assert {"missing": "no such file", "folder": "is a folder", "zero_bytes": "empty file"}.get(
        kind, "not a video file") in line
    assert not out.exists() and not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize("sequential", [False, True])
def test_video_that_stops_decoding_keeps_frames_and_exits_1(face_weights, tmp_path, sequential):
    cut, good = _cut_clip(tmp_path)
    out, rows = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    args = ["video", cut, "--out", out, "--json", rows, "--weights", face_weights, "--device", "cpu"]
    result = _invoke(args + (["--sequential"] if sequential else []))
    one_error_line(result, 1, str(cut), f"frame {good} of 40", "truncated or corrupt",
                    f"kept {good} frames", str(out), str(rows))
    assert [r["frame"] for r in _rows(rows)] == list(range(good))
    assert count_frames(out)[:3] == (good, 160, 120)  # finalised: plays to the last kept frame


# ---------------------------------------------------------------- image folders
def _write(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def test_image_folder_skips_bad_images_and_reads_odd_formats(face_weights, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    folder = tmp_path / "imgs"
    good = {
        "color.jpg": _write(folder / "color.jpg", rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)),
        "gray.png": _write(folder / "gray.png", rng.integers(0, 255, (60, 80), dtype=np.uint8)),
        "rgba.png": _write(folder / "rgba.png", rng.integers(0, 255, (60, 80, 4), dtype=np.uint8)),
        "gray16.png": _write(folder / "gray16.png", rng.integers(0, 65535, (60, 80), dtype=np.uint16)),
        "color16.png": _write(folder / "color16.png", rng.integers(0, 65535, (60, 80, 3), dtype=np.uint16)),
    }
    Image.fromarray(rng.integers(0, 255, (60, 80, 2), dtype=np.uint8), "LA").save(folder / "gray_alpha.png")
    good["gray_alpha.png"] = folder / "gray_alpha.png"
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but then nothing")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("not an image")
    _write(folder / "tiny.png", np.zeros((4, 4, 3), np.uint8))
    rows, out_dir = tmp_path / "rows.jsonl", tmp_path / "annotated"
    result = _invoke(["images", folder, "--weights", face_weights, "--device", "cpu", "--json", rows,
                      "--out-dir", out_dir])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert f"{len(good)} images" in result.output
    assert "3 unreadable skipped" in result.output and "1 smaller than 8 px skipped" in result.output
    data = _rows(rows)
    assert sorted(Path(r["image"]).name for r in data) == sorted(good)
    assert all((r["width"], r["height"]) == (80, 60) for r in data)
    written = written_names(out_dir)
    assert written == sorted(good)
    for name in written:  # annotated copies are whole, 3-channel images
        image = cv2.imread(str(out_dir / name))
        assert image is not None and image.shape == (60, 80, 3)


def test_image_folder_with_nothing_readable_is_exit_2(face_weights, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"nope")
    (folder / "b.jpg").write_bytes(b"")
    rows = tmp_path / "rows.jsonl"
    result = _invoke(["images", folder, "--weights", face_weights, "--json", rows])
    one_error_line(result, 2, "none of the 2 file(s) could be used", "2 unreadable")
    assert not rows.exists()


# ---------------------------------------------------------------- output paths
def _clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "clip.mp4", frames=3)


@pytest.mark.parametrize("command", ["video", "webcam", "images-json", "images-out-dir"])
@pytest.mark.parametrize("problem", ["missing_folder", "not_writable", "probe_fails"])
def test_unwritable_output_fails_before_any_work(face_weights, tmp_path, monkeypatch, command, problem):
    import tracker.sinks as sinks

    target_dir = tmp_path / "outdir"
    if problem != "missing_folder":
        target_dir.mkdir()
    if problem == "not_writable":  # chmod does not stop root: ask os.access the way a read-only folder answers
        real_access = sinks.os.access
        monkeypatch.setattr(sinks.os, "access", lambda p, mode, *a, **k: False if Path(p) == target_dir
                            and mode & sinks.os.W_OK else real_access(p, mode, *a, **k))
    elif problem == "probe_fails":  # a read-only mount: creating the probe file fails
        def refuse(*args, dir=None, **kwargs):
            raise PermissionError(30, "Read-only file system")
        monkeypatch.setattr(sinks.tempfile, "mkstemp", refuse)
    opened: list[str] = []
    import tracker.pipeline as pipeline

    monkeypatch.setattr(pipeline, "open_models", lambda *a, **k: opened.append("models") or (_ for _ in ()).throw(
        AssertionError("models loaded before the output check")))
    images = tmp_path / "imgs"
    _write(images / "a.png", np.zeros((20, 20, 3), np.uint8))
    if command == "video":
        args = ["video", _clip(tmp_path), "--out", target_dir / "o.mp4"]
    elif command == "webcam":
        args = ["webcam", "--camera", "synthetic?width=64&height=48", "--out", target_dir / "o.mp4"]
    elif command == "images-json":
        args = ["images", images, "--json", target_dir / "o.jsonl"]
    else:
        args = ["images", images, "--out-dir", target_dir / "annotated" if problem == "missing_folder"
                else target_dir]
    if command == "images-out-dir" and problem == "missing_folder":
        args[-1] = tmp_path / "no" / "such" / "annotated"
    result = _invoke(args + ["--weights", face_weights])
    what = {"missing_folder": "does not exist", "not_writable": "not writable", "probe_fails": "cannot create"}
    one_error_line(result, 2, what[problem])
    assert not opened
    assert "models:" not in result.output


def test_output_equal_to_input_is_refused(face_weights, tmp_path):
    clip = _clip(tmp_path)
    before = clip.read_bytes()
    for extra in (["--out", clip], ["--out", tmp_path / "o.mp4", "--json", clip]):
        result = _invoke(["video", clip, "--weights", face_weights, *extra])
        one_error_line(result, 2, "is the input")
    link = tmp_path / "link.mp4"
    link.symlink_to(clip)
    one_error_line(_invoke(["video", clip, "--weights", face_weights, "--out", link]), 2, "is the input")
    image = _write(tmp_path / "imgs" / "a.png", np.zeros((20, 20, 3), np.uint8))
    one_error_line(_invoke(["images", image.parent, "--weights", face_weights, "--json", image]), 2,
                    "is the input")
    one_error_line(_invoke(["images", image.parent, "--weights", face_weights, "--out-dir", image.parent]), 2,
                    "would overwrite")
    assert clip.read_bytes() == before


# ---------------------------------------------------------------- devices
@pytest.mark.parametrize("camera", ["9", "/dev/video-facetrack-missing"])
def test_missing_camera_is_exit_2(face_weights, camera):
    result = _invoke(["webcam", "--camera", camera, "--weights", face_weights, "--no-show"])
    one_error_line(result, 2, camera)
    assert "cannot open" in result.output or "no such camera" in result.output


@pytest.mark.parametrize("how", ["stops_delivering", "read_hangs"])
def test_camera_that_stops_mid_run_finalises_the_recording(face_weights, tmp_path, how):
    # The faulty camera is a test fixture (tests/fakes.py): the real CLI runs it in a process of its own.
    fault = "stall_after" if how == "stops_delivering" else "hang_after"
    spec = f"synthetic?width=96&height=64&fps=60&frames=100000&{fault}=25"
    out, rows = tmp_path / "rec.mp4", tmp_path / "rec.jsonl"
    args = ["webcam", "--camera", spec, "--out", out, "--json", rows, "--weights", face_weights, "--device", "cpu",
            "--stall-timeout", "0.3"]
    done = subprocess.run([sys.executable, "-m", "tests.faulty_cli", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    result = SimpleNamespace(exit_code=done.returncode, output=done.stderr + done.stdout)
    one_error_line(result, 1, "synthetic", "no frame for", "after 25 frames", "kept", str(out), str(rows))
    data = _rows(rows)
    assert 1 <= len(data) <= 25 and data[-1]["frame"] <= 24
    n, width, height, fps = count_frames(out)
    assert (width, height, fps) == (96, 64, 60.0)
    # The recording follows the camera clock: frame 0 .. the last processed one, dropped ones repeated.
    assert n == data[-1]["frame"] - data[0]["frame"] + 1


def test_live_recording_keeps_camera_time_with_dropped_frames(face_weights, tmp_path):
    """Known issue (1): with a slow model most live frames are dropped; the file must still play in real time.
    The drops come from a camera in lock-step with the tracker (`LockstepCamera`: 4 frames handed over per
    processed frame, on a 100 fps camera clock), not from timing, so they are the same on a loaded machine."""
    from tracker.backends import open_models
    from tracker.runtime import run
    from tracker.sinks import JsonlSink, VideoSink

    camera = LockstepCamera(frames=120, ahead=4, fps=100.0, width=96, height=64)  # 1.2 s of camera time
    source = camera.source()
    box, landmarks = open_models(face_weights, "onnx", "cpu")
    tracker = camera.tracker(box, landmarks, mode="live")
    out = tmp_path / "rec.mp4"
    stats = run(source, tracker, video=VideoSink(out, source.fps, 96, 64), jsonl=JsonlSink(tmp_path / "r.jsonl"))
    assert stats.processed + stats.dropped == stats.captured == len(source.numbers)
    assert stats.dropped >= 3 * (stats.processed - 2) > 0
    data = _rows(tmp_path / "r.jsonl")
    assert len(data) == stats.processed
    n = count_frames(out)[0]
    assert n == data[-1]["frame"] - data[0]["frame"] + 1  # the camera's frames at 100 fps: plays in camera time
    assert stats.video_repeated == n - stats.processed > 0


def test_video_sink_write_at_fills_gaps_and_keeps_early_frames(tmp_path):
    from tracker.sinks import VideoSink

    sink = VideoSink(tmp_path / "t.mp4", 10.0, 32, 32)
    for t_ms, value in ((0, 10), (100, 20), (400, 30), (450, 40), (500, 50)):
        sink.write_at(np.full((32, 32, 3), value, np.uint8), t_ms)
    sink.close()
    # slots 0, 1, 4 (2 and 3 repeat the frame at 1), 4.5 -> 4 (early: still written), 5
    assert (sink.frames, sink.repeated) == (7, 2)
    cap = cv2.VideoCapture(str(tmp_path / "t.mp4"))
    values = []
    while True:
        ok, image = cap.read()
        if not ok:
            break
        values.append(int(round(float(image.mean()) / 10) * 10))
    assert values == [10, 20, 20, 20, 30, 40, 50]


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_cuda_without_gpu_is_exit_2(face_weights, tmp_path, monkeypatch, backend):
    import torch

    import core.devices as devices

    monkeypatch.setattr(devices, "_GPU_PROBE", False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "o.mp4"
    result = _invoke(["video", _clip(tmp_path), "--out", out, "--weights", face_weights, "--device", "cuda",
                      "--backend", backend])
    one_error_line(result, 2, "--device cuda", "no usable CUDA GPU", "--device cpu")
    assert not out.exists()


class _FakeCapture:
    """A cv2.VideoCapture stand-in: `good` frames, then reads fail (an unplugged camera)."""

    def __init__(self, good: int, opened: bool = True) -> None:
        self.good, self.opened, self.reads, self.released = good, opened, 0, False

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return self.opened

    def get(self, prop) -> float:
        return 30.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def read(self):
        self.reads += 1
        if self.reads > self.good:
            return False, None
        return True, np.full((48, 64, 3), self.reads, np.uint8)

    def release(self) -> None:
        self.released = True


@pytest.mark.parametrize("comes_back", [True, False])
def test_live_capture_retries_reopens_then_gives_up(comes_back):
    from tracker.sources import CaptureSource, SourceStalled
    from tracker.sources.base import RETRY_S

    first = _FakeCapture(good=5)
    source = CaptureSource(0, "camera", True, cap=first)
    source.stall_timeout_s = 0.4
    again = _FakeCapture(good=3, opened=comes_back)
    source._make_capture = lambda: again
    frames = [source.read() for _ in range(5)]
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    if comes_back:  # reopened halfway through the retry window: frames flow again
        assert source.read().index == 5 and source.reopened == 1 and first.released
    else:
        # the seconds in the message are measured: 0.4, or more on a loaded machine
        with pytest.raises(SourceStalled, match=r"camera 0: no frame for \d+\.\d s after 5 frames"):
            source.read()
        assert source.reopened == 0 and not first.released and again.released
        # never a hang: it retried at most once per RETRY_S of the stall timeout, then gave up
        assert 1 <= first.reads - 5 + again.reads <= 0.4 / RETRY_S + 2
    source.close()
    assert source.read() is None
