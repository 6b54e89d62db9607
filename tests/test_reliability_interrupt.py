"""Reliability: SIGINT or SIGTERM during `video`, `webcam`, `images` and `train` (real subprocesses).

Every interrupted run exits 130 with a `facetrack: interrupted ...` line (not an error line), and
leaves only whole outputs: a video that plays with exactly one frame per JSON row, complete JSON rows,
whole annotated images, a `last.pt` that `--resume` continues from.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests import datagen
from tests.helpers import count_frames, default_sigint, written_names
from tracker.outfile import part_path

FACETRACK = [sys.executable, "-m", "facetrack"]
SIGNALS = [pytest.param(signal.SIGINT, id="SIGINT"), pytest.param(signal.SIGTERM, id="SIGTERM")]


class Proc:
    """A facetrack subprocess whose stdout/stderr lines are collected as they come."""

    def __init__(self, args: list[str], cwd: Path | None = None) -> None:
        self.popen = subprocess.Popen([*FACETRACK, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      preexec_fn=default_sigint,
                                      text=True, cwd=cwd)
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [threading.Thread(target=self._pump, args=(self.popen.stdout, self.out), daemon=True),
                         threading.Thread(target=self._pump, args=(self.popen.stderr, self.err), daemon=True)]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _pump(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def wait_for(self, condition, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            if self.popen.poll() is not None:
                pytest.fail(f"ended (rc {self.popen.returncode}) before it could be interrupted:\n"
                            + "\n".join(self.err[-20:]))
            time.sleep(0.02)
        self.popen.kill()
        pytest.fail("timed out waiting for the run to get going:\n" + "\n".join(self.err[-20:]))

    def interrupt(self, sig: int, timeout: float = 60.0) -> int:
        self.popen.send_signal(sig)
        try:
            rc = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            pytest.fail("did not stop after the signal (hang):\n" + "\n".join(self.err[-20:]))
        for reader in self._readers:
            reader.join(5)
        return rc


def _lines(path: Path) -> int:
    """Lines written so far: a run's JSON lines are in `.NAME.part` until it ends (`tracker.outfile`)."""
    for where in (part_path(path), path):
        try:
            return len(where.read_text().splitlines())
        except FileNotFoundError:
            continue
    return 0


def _rows(path: Path) -> list[dict]:
    text = path.read_text()
    assert text == "" or text.endswith("\n"), "the last JSON row is cut short"
    return [json.loads(line) for line in text.splitlines()]


def _check_interrupted(proc: Proc, rc: int) -> str:
    assert rc == 130, "\n".join(proc.err)
    text = "\n".join(proc.err + proc.out)
    assert "Traceback" not in text and "facetrack: error" not in text, text
    last = proc.err[-1]
    assert last.startswith("facetrack: interrupted"), last
    return last


def _check_video_and_rows(video: Path, rows: Path, live: bool = False) -> int:
    data = _rows(rows) if rows.exists() else []
    if not video.exists():
        assert not data
        return 0
    n, *_ = count_frames(video)
    if live and data:  # on the camera clock: first to last processed frame, dropped ones repeated
        assert n == data[-1]["frame"] - data[0]["frame"] + 1
    else:
        assert n == len(data)
        assert [r["frame"] for r in data] == list(range(len(data)))
    return len(data)


# ---------------------------------------------------------------- video / webcam
@pytest.mark.parametrize("sig", SIGNALS)
@pytest.mark.parametrize("moment", ["starting", "running"])
def test_video_interrupted(face_weights, tmp_path, sig, moment):
    out, rows = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    proc = Proc(["video", "synthetic?width=160&height=120&frames=1000000", "--out", out, "--json", rows,
                 "--weights", face_weights, "--device", "cpu"])
    if moment == "starting":  # the source is open, the models are loading or the first frames are on their way
        proc.wait_for(lambda: any(line.startswith("facetrack: synthetic") for line in proc.err))
    else:
        proc.wait_for(lambda: _lines(rows) >= 5)
    last = _check_interrupted(proc, proc.interrupt(sig))
    written = _check_video_and_rows(out, rows)
    if moment == "running":
        assert written >= 5
        assert last == f"facetrack: interrupted after {written} frames; outputs finalised: {out}, {rows}"


@pytest.mark.parametrize("sig", SIGNALS)
def test_webcam_interrupted(face_weights, tmp_path, sig):
    out, rows = tmp_path / "rec.mp4", tmp_path / "rec.jsonl"
    proc = Proc(["webcam", "--camera", "synthetic?width=160&height=120&fps=30&frames=1000000", "--out", out,
                 "--json", rows, "--weights", face_weights, "--device", "cpu", "--no-show"])
    proc.wait_for(lambda: _lines(rows) >= 5)
    last = _check_interrupted(proc, proc.interrupt(sig))
    written = _check_video_and_rows(out, rows, live=True)
    assert written >= 5 and f"interrupted after {written} frames; outputs finalised" in last


# ---------------------------------------------------------------- images
@pytest.mark.parametrize("sig", SIGNALS)
def test_images_interrupted(face_weights, tmp_path, sig):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    for i in range(400):
        cv2.imwrite(str(folder / f"img{i:04d}.png"), np.roll(base, i, axis=1))
    rows, out_dir = tmp_path / "rows.jsonl", tmp_path / "annotated"
    proc = Proc(["images", folder, "--json", rows, "--out-dir", out_dir, "--weights", face_weights,
                 "--device", "cpu"])
    proc.wait_for(lambda: _lines(rows) >= 5)
    last = _check_interrupted(proc, proc.interrupt(sig))
    data = _rows(rows)
    assert 5 <= len(data) < 400
    assert f"interrupted after {len(data)} images" in last and "outputs finalised" in last
    written = written_names(out_dir)
    assert written == sorted(Path(r["image"]).name for r in data)  # no half-written or temporary files
    for name in written:
        assert cv2.imread(str(out_dir / name)).shape == (240, 320, 3)


# ---------------------------------------------------------------- train
@pytest.mark.slow
@pytest.mark.parametrize("sig", SIGNALS)
def test_train_interrupted_then_resumed(tmp_path, sig):
    data = datagen.make_ytf_csv(tmp_path / "ytf")
    run = tmp_path / "run"
    common = ["train", "landmarks", "--data", data, "--input-size", "64", "--batch-size", "4", "--workers", "0",
              "--threads", "1", "--out", run, "--device", "cpu"]
    proc = Proc([*common, "--epochs", "1000"])
    metrics = run / "metrics.jsonl"
    proc.wait_for(lambda: _lines(metrics) >= 2, timeout=180)
    last = _check_interrupted(proc, proc.interrupt(sig))
    assert f"epochs of training; {run / 'last.pt'} saved at epoch" in last and "--resume" in last

    from core.models import read_checkpoint

    ckpt = read_checkpoint(run / "last.pt")
    epoch = int(ckpt["epoch"])
    assert epoch >= 2 and len(ckpt["history"]) == epoch and f"saved at epoch {epoch}:" in last
    assert not list(run.glob("*.tmp"))
    resumed = subprocess.run([*FACETRACK, *map(str, common), "--epochs", str(epoch + 1), "--resume"],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    assert f"resumed from {run / 'last.pt'} at epoch {epoch}" in resumed.stdout
    assert [r["epoch"] for r in _rows(metrics)] == list(range(1, epoch + 2))
    assert int(read_checkpoint(run / "last.pt")["epoch"]) == epoch + 1


def test_train_resume_refuses_a_broken_last_pt(tmp_path):
    from typer.testing import CliRunner

    from facetrack.cli import app

    data = datagen.make_ytf_csv(tmp_path / "ytf")
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"half a checkpoint")
    result = CliRunner().invoke(app, ["train", "landmarks", "--data", str(data), "--out", str(run), "--resume",
                                      "--input-size", "64", "--device", "cpu", "--dry-run"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert str(run / "last.pt") in result.output and "without --resume" in result.output
