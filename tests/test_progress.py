"""Progress on long work: a bar on a terminal, plain lines (never a carriage return) in logs, nothing for
short work; `facetrack images` through a real terminal and through a pipe; eval and training epochs."""

import fcntl
import io
import os
import pty
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import cv2
import numpy as np

from core.progress import Progress, duration, plural, track
from tests.helpers import drawn_face

ROOT = Path(__file__).resolve().parent.parent


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_terminal_gets_a_bar_redrawn_in_place():
    stream = FakeTerminal()
    with Progress("images", 3, "image", stream=stream) as progress:
        for _ in range(3):
            progress.update()
    assert progress.mode == "bar"
    assert "\r" in stream.getvalue() and "images" in stream.getvalue()


def test_a_log_gets_occasional_plain_lines_and_no_carriage_return():
    stream, clock = io.StringIO(), Clock()
    with Progress("images", 100, "image", stream=stream, every_s=30, clock=clock) as progress:
        for k in range(100):
            clock.now = k * 1.0  # one image a second: a line at 30 s, 60 s and 90 s
            progress.update()
            if k == 10:
                progress.note("3 faces")
    text = stream.getvalue()
    assert progress.mode == "lines" and "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 3, lines
    assert lines[0] == "facetrack: images: 31/100 images (31 %), 30 s, about 67 s left; 3 faces"
    assert all(line.startswith("facetrack: images: ") for line in lines)


def test_short_work_in_a_log_says_nothing_and_every_s_0_is_off():
    stream = io.StringIO()
    for _ in track(range(50), "faces", unit="face", stream=stream):
        pass
    assert stream.getvalue() == ""
    assert Progress("x", stream=io.StringIO(), every_s=0).mode == "off"
    assert Progress("x", stream=FakeTerminal(), quiet=True).mode == "off"


def test_a_closed_stream_never_stops_the_work():
    stream, clock = io.StringIO(), Clock()
    progress = Progress("faces", None, "face", stream=stream, every_s=1, clock=clock)
    stream.close()
    clock.now = 5
    progress.update()  # the write fails: progress goes quiet, the work goes on
    assert progress.mode == "off" and progress.done == 1


def test_units_and_durations_read_well():
    assert plural("image") == "images" and plural("batch") == "batches"
    assert duration(41) == "41 s" and duration(282) == "4.7 min"
    assert duration(4680) == "78.0 min" and duration(6120) == "1.7 h"
    assert Progress("train", None, "batch", stream=io.StringIO(), clock=lambda: 0.0).line() == "train: 0 batches, 0 s"


def _images_folder(folder: Path, n: int = 3) -> Path:
    folder.mkdir()
    image, _ = drawn_face(160, 160, iod=40)
    for k in range(n):
        cv2.imwrite(str(folder / f"f{k}.png"), np.ascontiguousarray(np.roll(image, 3 * k, axis=1)))
    return folder


def _images_command(folder: Path, weights: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "facetrack", "images", str(folder), "--json", str(out), "--weights", str(weights),
            "--device", "cpu"]


def test_images_shows_a_bar_on_a_terminal_and_none_in_a_log(tmp_path, face_weights):
    folder = _images_folder(tmp_path / "shots")
    env = dict(os.environ, COLUMNS="100")
    piped = subprocess.run(_images_command(folder, face_weights, tmp_path / "a.jsonl"), cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=300)
    assert piped.returncode == 0, piped.stderr
    assert "\r" not in piped.stderr and "3 images" in piped.stderr

    main, sub = pty.openpty()  # stderr a terminal of 100 columns, stdout a pipe
    fcntl.ioctl(sub, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(_images_command(folder, face_weights, tmp_path / "b.jsonl"), cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=sub, stdin=subprocess.DEVNULL)
    os.close(sub)
    seen = b""
    while True:
        ready, _, _ = select.select([main], [], [], 300)
        if not ready:
            break
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the terminal's other end closed: the process is done
            break
        if not chunk:
            break
        seen += chunk
    assert proc.wait(timeout=60) == 0, seen
    os.close(main)
    text = seen.decode(errors="replace")
    assert "\rimages:" in text and "/3 [" in text, text  # the bar, redrawn over itself


def test_eval_progress_stays_out_of_logs_and_counts_photos(tmp_path, face_weights):
    from typer.testing import CliRunner

    from facetrack.cli import app
    from tests.datagen import CALTECH_EXPECTED_FACES, CALTECH_FACES, make_caltech

    data = make_caltech(tmp_path / "caltech")
    out = tmp_path / "m.json"
    result = CliRunner().invoke(app, ["eval", "--data", str(data), "--weights", str(face_weights), "--device", "cpu",
                                      "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "\r" not in result.output
    import json

    box = json.loads(out.read_text())["box"]
    assert box["images"] == len(CALTECH_FACES) and box["faces"] == CALTECH_EXPECTED_FACES  # 2 photos, 4 faces
    assert f" on {len(CALTECH_FACES)} images ({CALTECH_EXPECTED_FACES} faces)" in result.output
