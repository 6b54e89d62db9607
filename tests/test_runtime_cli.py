"""`facetrack video`, `webcam` and `images` end to end with tiny random-weight models."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from core.meta import POINT_NAMES
from facetrack.cli import app
from tests.helpers import count_frames, default_sigint, one_error_line, write_clip, written_names
from tracker.outfile import part_path

runner = CliRunner()
FACETRACK = Path(sys.executable).with_name("facetrack")


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _no_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


def test_video_end_to_end(face_weights, tmp_path, monkeypatch):
    _no_display(monkeypatch)
    clip = write_clip(tmp_path / "clip.mp4", frames=30, width=160, height=120, fps=25)
    out, rows = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    result = runner.invoke(app, ["video", str(clip), "--out", str(out), "--json", str(rows), "--weights",
                                 str(face_weights), "--device", "cpu", "--detect-every", "5", "--show"])
    assert result.exit_code == 0, result.output
    assert "not showing a window" in result.output
    assert count_frames(out) == (30, 160, 120, 25.0)
    data = _rows(rows)
    assert [r["frame"] for r in data] == list(range(30))
    for r in data:
        assert set(r) == {"frame", "t_ms", "width", "height", "faces"}
        assert (r["width"], r["height"]) == (160, 120)
        (face,) = r["faces"]
        assert set(face) == {"id", "source", "box_xyxy", "score", "last_detector_score", "points"} and face["id"] == 1
        assert list(face["points"]) == list(POINT_NAMES)
        assert len(face["box_xyxy"]) == 4 and 0 <= face["last_detector_score"] <= 1
        # no quality output: only detector frames have a score of their own
        assert face["score"] == (face["last_detector_score"] if face["source"] == "detector" else None)
    assert data[1]["t_ms"] == pytest.approx(40.0)
    assert "detector on 6 frames" in result.output


def test_video_no_face_and_no_draw(noface_weights, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", frames=8)
    out, rows = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    result = runner.invoke(app, ["video", str(clip), "--out", str(out), "--json", str(rows), "--weights",
                                 str(noface_weights), "--no-draw", "--sequential", "--smooth"])
    assert result.exit_code == 0, result.output
    assert [r["faces"] for r in _rows(rows)] == [[]] * 8
    assert count_frames(out)[0] == 8


def test_video_refuses_bad_paths_before_work(face_weights, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", frames=3)
    cases = [
        (["--out", str(tmp_path / "missing" / "o.mp4")], "does not exist"),
        (["--out", str(clip)], "is the input"),
        (["--out", str(tmp_path / "o.avi")], ".mp4"),
        (["--out", str(tmp_path / "o.mp4"), "--json", str(tmp_path / "o.mp4")], "another output"),
        (["--out", str(tmp_path / "o.mp4"), "--weights", str(tmp_path / "nowhere")], "weights folder not found"),
    ]
    for extra, message in cases:
        result = runner.invoke(app, ["video", str(clip), "--weights", str(face_weights), *extra])
        assert result.exit_code == 2, (extra, result.output)
        assert message in result.output
    assert not (tmp_path / "o.mp4").exists()
    result = runner.invoke(app, ["video", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "o.mp4")])
    assert result.exit_code == 2 and "no such file" in result.output


def test_video_cuda_without_gpu_is_bad_input(face_weights, tmp_path, monkeypatch):
    import core.devices as devices

    monkeypatch.setattr(devices, "_GPU_PROBE", False)
    clip = write_clip(tmp_path / "clip.mp4", frames=3)
    result = runner.invoke(app, ["video", str(clip), "--out", str(tmp_path / "o.mp4"), "--weights",
                                 str(face_weights), "--device", "cuda"])
    assert result.exit_code == 2 and "no usable CUDA GPU" in result.output


def test_webcam_synthetic_without_display(face_weights, tmp_path, monkeypatch):
    _no_display(monkeypatch)
    rows = tmp_path / "cam.jsonl"
    result = runner.invoke(app, ["webcam", "--camera", "synthetic?width=160&height=120&fps=60&frames=400",
                                 "--weights", str(face_weights), "--json", str(rows), "--out",
                                 str(tmp_path / "rec.mp4"), "--max-frames", "12"])
    assert result.exit_code == 0, result.output
    assert "--no-show implied" in result.output
    got = _rows(rows)
    assert len(got) == 12
    # dropped live frames are filled with the last drawn frame, so the file spans first..last row
    assert count_frames(tmp_path / "rec.mp4")[0] == got[-1]["frame"] - got[0]["frame"] + 1


def test_webcam_missing_camera_is_bad_input(face_weights, tmp_path):
    result = runner.invoke(app, ["webcam", "--camera", str(tmp_path / "video7"), "--weights", str(face_weights),
                                 "--no-show"])
    assert result.exit_code == 2 and "no such camera" in result.output


def test_images_rows_and_skipped(face_weights, tmp_path):
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("a.png", "sub/b.jpg"):
        cv2.imwrite(str(folder / name), rng.integers(0, 255, (90, 120, 3), dtype=np.uint8))
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    single = tmp_path / "c.png"
    cv2.imwrite(str(single), rng.integers(0, 255, (50, 70, 3), dtype=np.uint8))
    rows, out_dir = tmp_path / "imgs.jsonl", tmp_path / "annotated"
    result = runner.invoke(app, ["images", str(folder), str(single), "--weights", str(face_weights),
                                 "--json", str(rows), "--out-dir", str(out_dir)])
    assert result.exit_code == 0, result.output
    assert "3 images" in result.output and "1 unreadable skipped" in result.output
    data = _rows(rows)
    assert [r["image"] for r in data] == [os.path.join(str(folder), "a.png"),
                                          os.path.join(str(folder), "sub", "b.jpg"), str(single)]
    assert [(r["width"], r["height"]) for r in data] == [(120, 90), (120, 90), (70, 50)]
    assert all(len(r["faces"]) == 1 and set(r) == {"image", "width", "height", "faces", "annotated"} for r in data)
    # copies keep their paths below the folder above every input; each row names its copy
    copies = [out_dir / "imgs" / "a.png", out_dir / "imgs" / "sub" / "b.jpg", out_dir / "c.png"]
    assert [r["annotated"] for r in data] == [str(p) for p in copies] and all(p.is_file() for p in copies)
    assert written_names(out_dir) == ["c.png", "imgs"]
    result = runner.invoke(app, ["images", str(folder), "--weights", str(face_weights), "--out-dir", str(folder)])
    assert result.exit_code == 2 and "would overwrite" in result.output


def test_images_min_presence_and_its_old_name(face_weights, tmp_path):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8))
    base = ["images", str(image), "--weights", str(face_weights)]
    assert "1 images, 1 with a face" in runner.invoke(app, base).output  # the tiny box model scores 0.9997
    for option in ("--min-presence", "--threshold"):
        result = runner.invoke(app, [*base, option, "0.9999"])
        assert result.exit_code == 0, result.output
        assert "1 images, 0 with a face" in result.output
    assert "--threshold" in runner.invoke(app, ["images", "--help"]).output


def test_images_model_failure_names_the_image(face_weights, tmp_path, monkeypatch):
    import tracker.pipeline as pipeline

    folder = tmp_path / "imgs"
    folder.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        cv2.imwrite(str(folder / name), np.zeros((40, 50, 3), np.uint8))
    real_step = pipeline.Tracker.step

    def step(self, frame):
        if frame.name.endswith("b.png"):
            raise RuntimeError("boom")
        return real_step(self, frame)

    monkeypatch.setattr(pipeline.Tracker, "step", step)
    rows, out_dir = tmp_path / "rows.jsonl", tmp_path / "annotated"
    result = runner.invoke(app, ["images", str(folder), "--weights", str(face_weights), "--json", str(rows),
                                 "--out-dir", str(out_dir)])
    one_error_line(result, 1, f"{folder / 'b.png'}: tracking failed (RuntimeError: boom); 1 images done before it")
    assert [Path(r["image"]).name for r in _rows(rows)] == ["a.png"]
    assert written_names(out_dir) == ["a.png"]


@pytest.mark.slow
def test_sigint_mid_video_leaves_playable_output(face_weights, tmp_path):
    clip = write_clip(tmp_path / "long.mp4", frames=1500, width=320, height=240, fps=30)
    out, rows = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    proc = subprocess.Popen([str(FACETRACK), "video", str(clip), "--out", str(out), "--json", str(rows),
                             "--weights", str(face_weights), "--device", "cpu"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            part = part_path(rows)  # the rows are in `.out.jsonl.part` until the run ends (tracker.outfile)
            if part.exists() and len(part.read_text().splitlines()) >= 5:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    written = len(_rows(rows))
    decoded = count_frames(out)[0]
    assert 5 <= written < 1500
    assert decoded == written
