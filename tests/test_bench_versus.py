"""`facetrack bench --vs mediapipe`: its argument errors, the per-process measurement, and (slow, only with a
peer Python in FACETRACK_MEDIAPIPE_PYTHON) the real comparison. No timing assertions.
"""

from __future__ import annotations

import json
import os
import sys
from functools import partial
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.errors import FacetrackError, InputError
from facetrack.cli import app
from tests.helpers import one_error_line
from tracker.bench import versus
from tracker.bench.versus import PYTHON_ENV, ProcessRun

# exit 2 and one `facetrack: error:` line, nothing else
_error_line = partial(one_error_line, code=2, only=True)

runner = CliRunner()

# A child that burns CPU for a while, then says how many "frames" it did, as the peer script does.
BURN = ("import json, time\n"
        "t = time.process_time()\n"
        "n = 0\n"
        "while time.process_time() - t < 0.2:\n"
        "    n += sum(i * i for i in range(1000)) > 0\n"
        "print('noise')\n"
        "print(json.dumps({'frames': n, 'run_fps': 1.0, 'run_cpu_s': time.process_time() - t}))\n")


def test_vs_without_python_is_one_line(monkeypatch):
    monkeypatch.delenv(PYTHON_ENV, raising=False)
    line = _error_line(runner.invoke(app, ["bench", "--vs", "mediapipe"]))
    assert "--vs-python" in line


def test_vs_python_without_mediapipe_is_one_line():
    # this venv's Python has no mediapipe (it must not: the peer is never a facetrack dependency)
    line = _error_line(runner.invoke(app, ["bench", "--vs", "mediapipe", "--vs-python", sys.executable]))
    assert "cannot import mediapipe" in line and "docs/benchmarks.md" in line


def test_vs_argument_errors(tmp_path):
    missing = tmp_path / "no-python"
    assert "no such file" in _error_line(runner.invoke(app, ["bench", "--vs", "mediapipe", "--vs-python",
                                                                 str(missing)]))
    assert "expected one of mediapipe" in _error_line(runner.invoke(app, ["bench", "--vs", "dlib",
                                                                              "--vs-python", sys.executable]))
    assert "needs a video file" in _error_line(runner.invoke(app, ["bench", "synthetic", "--vs", "mediapipe",
                                                                       "--vs-python", sys.executable]))


def test_check_peer_names_the_environment_variable(monkeypatch):
    with pytest.raises(InputError, match=PYTHON_ENV):
        versus.check_peer("mediapipe", None)


def test_measure_process_on_a_real_child():
    run = versus.measure_process([sys.executable, "-c", BURN])
    assert run.returncode == 0, run.stderr
    assert run.cpu_s > 0 and run.user_s > 0 and run.wall_s > 0 and run.max_rss_mib > 0
    job = versus.peer_figures(run, "burner")
    assert job["frames"] > 0 and job["steady_fps"] == 1.0
    assert job["run_cpu_ms_per_frame"] == pytest.approx(1000.0 * 0.2 / job["frames"], rel=0.5)


def test_measure_process_keeps_the_exit_code_and_stderr():
    run = versus.measure_process([sys.executable, "-c", "import sys; sys.stderr.write('boom\\n'); sys.exit(3)"])
    assert run.returncode == 3 and "boom" in run.stderr
    with pytest.raises(FacetrackError, match="boom"):
        versus.peer_figures(run, "burner")


def test_facetrack_summary_is_parsed():
    stderr = ("facetrack: video demo.mp4: 640x480 @ 30 fps, 180 frames\n"
              "facetrack: 180 frames in 1.4 s (131.9 FPS); latency p50 41 ms, p95 91 ms; detector on 18 frames\n"
              "facetrack: wrote out.mp4\n")
    run = ProcessRun(["x"], 0, 2.0, 1.5, 0.2, 100.0, "", stderr)
    assert versus.facetrack_figures(run) == {"frames": 180, "steady_fps": 131.9, "run_cpu_ms_per_frame": None}
    with_cpu = stderr.replace("131.9 FPS)", "131.9 FPS, CPU 9.4 ms/frame)")
    assert versus.facetrack_figures(ProcessRun(["x"], 0, 2.0, 1.5, 0.2, 100.0, "", with_cpu)) == {
        "frames": 180, "steady_fps": 131.9, "run_cpu_ms_per_frame": 9.4}
    with pytest.raises(FacetrackError, match="no summary"):
        versus.facetrack_figures(ProcessRun(["x"], 0, 2.0, 1.5, 0.2, 100.0, "", "facetrack: something else\n"))


def test_peer_script_stands_alone():
    text = versus.peer_script("mediapipe").read_text()
    assert "facetrack" not in "".join(line for line in text.splitlines() if line.startswith(("import", "from")))


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get(PYTHON_ENV), reason=f"{PYTHON_ENV} names no peer Python with mediapipe "
                                                           "0.10.21 (docs/benchmarks.md)")
def test_real_comparison(tmp_path: Path):
    out = tmp_path / "vs.json"
    result = runner.invoke(app, ["bench", "--vs", "mediapipe", "--runs", "1", "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["schema"] == versus.SCHEMA and report["runs_per_tool"] == 1
    assert {r["tool"] for r in report["runs"]} == {"facetrack", "mediapipe"}
    for tool in ("facetrack", "mediapipe"):
        summary = report["summary"][tool]
        assert summary["frames"] > 0 and summary["cpu_s"] > 0 and summary["steady_fps"] > 0
    assert all(v is not None and v > 0 for v in report["ratios"].values())
    assert report["header"]["load_average"]["start"] and "steady-state frames/s" in result.output
