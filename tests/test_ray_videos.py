"""`facetrack video --ray` / `--ray-address`: each video a Ray task on a local Ray cluster the tests start
(`ray start --head` in a subprocess, stopped with `ray stop`), with the summary table, a bad file failing
while the others finish, `--skip-existing`, Ctrl+C; and the usage errors, with and without Ray installed.

The tests that run Ray skip when `ray` cannot be imported (CI installs it: `pip install -e '.[test,ray]'`)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facetrack.cli import app
from tests.helpers import count_frames, one_error_line, write_clip
from tracker.finished import output_complete

runner = CliRunner()
HAVE_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="ray is not installed (pip install -e '.[test,ray]'; CI does)")
ROOT = Path(__file__).resolve().parents[1]
# Ray's token authentication (Ray >= 2.5x; older ones ignore it): the cluster and every client use the token
# `ray start` keeps in ~/.ray, as a user's clients would.
RAY_ENV = {"RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}


@pytest.fixture(autouse=True)
def _no_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


def _video(*args) -> object:
    return runner.invoke(app, ["video", *map(str, args)])


def _table(output: str, names: set[str]) -> dict[str, str]:
    """{video: its table row} for `names` and the total (`all`), from a run's output."""
    rows = {}
    for line in output.splitlines():
        first = line.split()[0] if line.split() else ""
        if first in names or first == "all":
            rows[first] = line
    return rows


def _ray_cli() -> str:
    found = Path(sys.executable).with_name("ray")
    return str(found) if found.exists() else (shutil.which("ray") or "ray")


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster of 2 CPUs, started with `ray start --head` for the module; its address."""
    if not HAVE_RAY:
        pytest.skip("ray is not installed (pip install -e '.[test,ray]'; CI does)")
    env = {**os.environ, **RAY_ENV}
    try:
        started = subprocess.run([_ray_cli(), "start", "--head", "--port=0", "--num-cpus=2",
                                  "--include-dashboard=false", "--disable-usage-stats"],
                                 env=env, capture_output=True, text=True, timeout=180)
        said = started.stdout + started.stderr
        assert started.returncode == 0, said[-3000:]
        found = re.search(r"--address='([^']+)'", said)
        assert found, said[-3000:]
        yield found.group(1)
    finally:
        subprocess.run([_ray_cli(), "stop"], env=env, capture_output=True, timeout=120)


@pytest.fixture
def ray_client_env(monkeypatch):
    for key, value in RAY_ENV.items():
        monkeypatch.setenv(key, value)


def _clips(folder: Path, frames: dict[str, int], bad: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in frames.items():
        write_clip(folder / f"{name}.mp4", frames=n)
    if bad:
        (folder / "bad.mp4").write_bytes(b"not a video at all")
    return folder


def _check_outputs(out: Path, frames: dict[str, int]) -> None:
    """Each video's mp4 decodes with its frame count, and its JSON lines hold one row a frame."""
    for name, n in frames.items():
        assert count_frames(out / f"{name}.mp4")[0] == n
        rows = [json.loads(line) for line in (out / f"{name}.jsonl").read_text().splitlines()]
        assert len(rows) == n and all("faces" in row for row in rows), rows[:1]
        assert output_complete(out / f"{name}.mp4") and output_complete(out / f"{name}.jsonl")
    assert not list(out.glob(".*.part")) and not list(out.glob(".*.lock"))


# --- the usage errors: no Ray cluster needed --------------------------------------------------------------


def test_ray_with_jobs_is_a_usage_error(face_weights, tmp_path):
    clip = write_clip(tmp_path / "a.mp4", frames=2)
    for how in (["--ray"], ["--ray-address", "auto"]):
        result = _video(clip, "--out-dir", tmp_path / "out", *how, "--jobs", 2, "--weights", face_weights)
        one_error_line(result, 2, f"{how[0]} and --jobs exclude each other", "see 'facetrack video --help'")
    result = _video(clip, "--out-dir", tmp_path / "out", "--ray", "--jobs", 1, "--weights", face_weights)
    one_error_line(result, 2, "--ray and --jobs")
    assert not (tmp_path / "out").exists()


def test_without_ray_installed_ray_is_one_line(face_weights, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    clip = write_clip(tmp_path / "a.mp4", frames=2)
    result = _video(clip, "--out-dir", tmp_path / "out", "--ray", "--weights", face_weights)
    line = one_error_line(result, 2, only=True)
    assert line == "facetrack: error: --ray needs Ray: pip install 'facetrack[ray]'"
    result = _video(clip, "--out-dir", tmp_path / "out", "--ray-address", "auto", "--weights", face_weights)
    assert one_error_line(result, 2) == "facetrack: error: --ray-address needs Ray: pip install 'facetrack[ray]'"
    assert not (tmp_path / "out").exists()  # nothing made before the check
    result = _video(clip, "--out-dir", tmp_path / "out", "--max-frames", 1, "--weights", face_weights)
    assert result.exit_code == 0, result.output  # a run without --ray does not need it


def test_what_a_ray_task_cannot_do_is_refused(face_weights, tmp_path, monkeypatch):
    fake = types.ModuleType("ray")
    fake.is_initialized = lambda: False
    monkeypatch.setitem(sys.modules, "ray", fake)  # importable; these stop before it is used
    clip = write_clip(tmp_path / "a.mp4", frames=2)
    result = _video(clip, "--out-dir", tmp_path / "out", "--ray", "--show", "--weights", face_weights)
    one_error_line(result, 2, "--show with --ray")
    result = _video(clip, "--json", "-", "--ray-address", "auto", "--weights", face_weights)
    one_error_line(result, 2, "--json - with --ray-address")
    started = time.monotonic()
    result = _video(clip, "--out-dir", tmp_path / "out", "--ray-address", "127.0.0.1:1", "--weights", face_weights)
    one_error_line(result, 1, "--ray-address 127.0.0.1:1: nothing answers")
    assert time.monotonic() - started < 30


def test_ray_address_mistakes_are_said_at_once(face_weights, tmp_path, monkeypatch):
    # found by a review: RAY_ADDRESS that nothing answers at hung for 13 minutes, an empty --ray-address was
    # taken as --ray, and one missing video was "1 of 1 videos failed" with exit 1 instead of "no such file"
    fake = types.ModuleType("ray")
    fake.is_initialized = lambda: False
    monkeypatch.setitem(sys.modules, "ray", fake)
    clip = write_clip(tmp_path / "a.mp4", frames=2)
    result = _video(clip, "--out-dir", tmp_path / "out", "--ray-address", " ", "--weights", face_weights)
    one_error_line(result, 2, "--ray-address: give an address")
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    started = time.monotonic()
    result = _video(clip, "--out-dir", tmp_path / "out", "--ray", "--weights", face_weights)
    one_error_line(result, 1, "RAY_ADDRESS=127.0.0.1:1: nothing answers")
    assert time.monotonic() - started < 30
    result = _video(tmp_path / "missing.mp4", "--out-dir", tmp_path / "out", "--ray", "--weights", face_weights)
    one_error_line(result, 2, "missing.mp4: no such file")


def test_a_tasks_reason_names_the_paths_as_given(tmp_path, monkeypatch):
    # a task is sent absolute paths; its failure reason named them so (review: "/tmp/.../in/broken.mp4")
    from tracker.batch_summary import FileResult
    from tracker.ray_pool import _as_given, absolute_job
    from tracker.session import ModelOptions, VideoJob

    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.mp4").write_bytes(b"x")
    job = VideoJob(source="in/broken.mp4", out=Path("out/broken.mp4"), models=ModelOptions(weights=Path("w")))
    sent = absolute_job(job)
    reason = f"{sent.source}: cannot open it; weights {sent.models.weights}"
    assert _as_given(FileResult("x", "failed", reason=reason).reason, job) == "in/broken.mp4: cannot open it; weights w"


# --- runs on a local Ray cluster ---------------------------------------------------------------------------


@pytest.mark.slow
@needs_ray
def test_ray_runs_the_good_videos_and_reports_the_bad_one(ray_cluster, ray_client_env, face_weights, tmp_path):
    frames = {"a": 5, "b": 4, "c": 3}
    clips = _clips(tmp_path / "clips", frames, bad=True)
    out = tmp_path / "out"
    result = _video(clips, "--out-dir", out, "--ray-address", ray_cluster, "--weights", face_weights)
    assert result.exit_code == 1, (result.output, result.exception)
    assert "Traceback" not in result.output
    rows = _table(result.output, {"a.mp4", "b.mp4", "c.mp4", "bad.mp4"})
    assert set(rows) == {"a.mp4", "b.mp4", "c.mp4", "bad.mp4", "all"}, result.output
    for name, n in frames.items():
        assert rows[f"{name}.mp4"].split()[1:3] == [str(n), str(n)]  # frames, with a face
        assert rows[f"{name}.mp4"].split()[4] == "ok"
    assert "failed: " in rows["bad.mp4"] and "not a video" in rows["bad.mp4"]
    assert "3 ok, 1 failed" in rows["all"] and rows["all"].split()[3] == "12"
    one_error_line(result, 1, "1 of 4 videos failed", "bad.mp4")
    _check_outputs(out, frames)


@pytest.mark.slow
@needs_ray
def test_more_cpus_per_task_than_a_node_has_is_refused(ray_cluster, ray_client_env, face_weights, tmp_path):
    # review: --ray-cpus-per-task 3 on a 2-CPU cluster waited for ever, saying nothing
    clips = _clips(tmp_path / "clips", {"a": 2, "b": 2})
    result = _video(clips, "--out-dir", tmp_path / "out", "--ray-address", ray_cluster, "--ray-cpus-per-task", 3,
                    "--weights", face_weights)
    one_error_line(result, 2, "--ray-cpus-per-task 3", "has 2 CPUs")


@pytest.mark.slow
@needs_ray
def test_ray_skip_existing_passes_over_complete_outputs(ray_cluster, face_weights, tmp_path):
    """Both runs as `facetrack` processes: the first joins the cluster at --ray-address, the second with
    plain --ray (ray.init()'s default finds the cluster this machine runs)."""
    clips = _clips(tmp_path / "clips", {"a": 3, "b": 3})
    out = tmp_path / "out"
    env = {**os.environ, **RAY_ENV, "PYTHONUNBUFFERED": "1"}

    def run(*args) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "facetrack", "video", str(clips), "--out-dir", str(out),
               "--weights", str(face_weights), *args]
        return subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)

    first = run("--ray-address", ray_cluster)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "2 ok" in _table(first.stderr, {"a.mp4", "b.mp4"})["all"]
    done = (out / "a.mp4").stat().st_mtime_ns
    write_clip(clips / "c.mp4", frames=4)
    (out / "b.jsonl").write_text('{"frame": 0}')  # cut short: no final newline, so b runs again
    second = run("--ray", "--skip-existing")
    assert second.returncode == 0, second.stderr[-3000:]
    rows = _table(second.stderr, {"a.mp4", "b.mp4", "c.mp4"})
    assert "skipped: outputs complete" in rows["a.mp4"], second.stderr
    assert rows["b.mp4"].split()[4] == "ok" and rows["c.mp4"].split()[4] == "ok"
    assert "2 ok, 1 skipped" in rows["all"]
    assert (out / "a.mp4").stat().st_mtime_ns == done
    _check_outputs(out, {"a": 3, "b": 3, "c": 4})


@pytest.mark.slow
@needs_ray
def test_ctrl_c_cancels_the_ray_tasks(ray_cluster, face_weights, tmp_path):
    """SIGINT to the command's process group (a terminal's Ctrl+C) once a video is being written: the tasks
    are cancelled, the running ones finalise their outputs, exit 130."""
    frames = {f"v{i}": 600 for i in range(4)}
    clips = _clips(tmp_path / "clips", frames)
    out = tmp_path / "out"
    env = {**os.environ, **RAY_ENV, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "facetrack", "video", str(clips), "--out-dir", str(out), "--ray-address",
           ray_cluster, "--weights", str(face_weights)]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob(".*.part")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    rows = _table(err, {f"{name}.mp4" for name in frames})
    assert len(rows) == 5 and "interrupted" in rows["all"], err
    assert "facetrack: interrupted:" in err
    assert not list(out.glob(".*.part"))
    for name, n in frames.items():  # what was written plays: whole, or finalised where it stopped
        row = rows[f"{name}.mp4"]
        if row.split()[4] == "ok":
            assert count_frames(out / f"{name}.mp4")[0] == n
        elif (out / f"{name}.mp4").exists():
            assert "interrupted" in row and count_frames(out / f"{name}.mp4")[0] < n, row
        else:
            assert "interrupted" in row, row


def test_a_task_cancelled_in_its_worker_is_interrupted_not_failed():
    """Seen once in the Ctrl+C test: Ray raised RayTaskError(TaskCancelledError) (a class of both) for a task
    cancelled as it started in its worker, and the table called the video failed."""
    from types import SimpleNamespace

    from tracker.ray_pool import _outcome

    class TaskCancelledError(Exception):
        pass

    class RayTaskErrorCancelled(TaskCancelledError):  # how Ray names it: RayTaskError(TaskCancelledError)
        pass

    def fake_ray(exc):
        def get(ref):
            raise exc
        return SimpleNamespace(get=get, exceptions=SimpleNamespace(TaskCancelledError=TaskCancelledError))

    job = SimpleNamespace(source=Path("v1.mp4"))
    result = _outcome(fake_ray(RayTaskErrorCancelled("ray::_run_task()")), None, job)
    assert (result.status, result.reason) == ("interrupted", "cancelled as it started")
    assert _outcome(fake_ray(TaskCancelledError()), None, job).reason == "not started"
    died = _outcome(fake_ray(RuntimeError("worker crashed")), None, job)
    assert died.status == "failed" and "its Ray task died (RuntimeError: worker crashed)" in died.reason
