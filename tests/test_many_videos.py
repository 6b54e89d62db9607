"""`facetrack video --jobs N --skip-existing` over several files: worker processes, the summary table, a
bad file reported while the others finish, complete outputs passed over, and the thread split."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from facetrack.cli import app
from tests.helpers import count_frames, one_error_line, write_clip
from tracker.batch_summary import FileResult, summary_lines
from tracker.finished import output_complete, record_done
from tracker.pool import split_threads

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


def _table(output: str) -> dict[str, str]:
    """{video: its table row} from a run's output (rows after the `video  frames ...` header)."""
    lines = output.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("video ") and "status" in line)
    return {line.split()[0]: line for line in lines[head + 1:] if line and not line.startswith("facetrack:")}


def _video(*args) -> object:
    return runner.invoke(app, ["video", *map(str, args)])


def test_jobs_run_the_good_videos_and_report_the_bad_one(face_weights, tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    for name, frames in (("a", 5), ("b", 4), ("c", 3)):
        write_clip(clips / f"{name}.mp4", frames=frames)
    (clips / "bad.mp4").write_bytes(b"not a video at all")
    out = tmp_path / "out"
    result = _video(clips, "--out-dir", out, "--jobs", 2, "--weights", face_weights)
    assert result.exit_code == 1, (result.output, result.exception)
    assert "Traceback" not in result.output
    rows = _table(result.output)
    assert set(rows) == {"a.mp4", "b.mp4", "c.mp4", "bad.mp4", "all"}
    for name, frames in (("a", 5), ("b", 4), ("c", 3)):
        assert rows[f"{name}.mp4"].split()[1:3] == [str(frames), str(frames)]  # frames, with a face
        assert rows[f"{name}.mp4"].split()[4] == "ok"
        assert count_frames(out / f"{name}.mp4")[0] == frames
        assert output_complete(out / f"{name}.mp4") and output_complete(out / f"{name}.jsonl")
    assert "failed: " in rows["bad.mp4"]
    assert "3 ok, 1 failed" in rows["all"] and rows["all"].split()[3] == "12"
    models = [line for line in result.output.splitlines() if "models: detector " in line]
    assert len(models) == 1 and "landmarks " in models[0]  # what the workers ran, said once
    one_error_line(result, 1, "1 of 4 videos failed", "bad.mp4")
    assert not list(out.glob(".*.part")) and not list(out.glob(".*.lock"))


def test_a_precision_the_weights_lack_is_one_line_before_any_worker_starts(face_weights, tmp_path):
    for name in ("a", "b"):
        write_clip(tmp_path / f"{name}.mp4", frames=3)
    out = tmp_path / "out"
    result = _video(tmp_path / "a.mp4", tmp_path / "b.mp4", "--out-dir", out, "--jobs", 2, "--weights", face_weights,
                    "--precision", "int8")
    one_error_line(result, 2, "--precision int8: the weights have no int8 ONNX graph")
    assert not list(out.glob("*.mp4")) and not list(out.glob("*.jsonl"))  # nothing started


def test_skip_existing_passes_over_complete_outputs(face_weights, tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("a", "b"):
        write_clip(clips / f"{name}.mp4", frames=3)
    out = tmp_path / "out"
    result = _video(clips, "--out-dir", out, "--jobs", 2, "--weights", face_weights)
    assert result.exit_code == 0, (result.output, result.exception)
    done = {p: p.stat().st_mtime_ns for p in out.glob("*.*")}
    write_clip(clips / "c.mp4", frames=4)
    (out / "b.jsonl").write_text('{"frame": 0}')  # cut short: no final newline
    result = _video(clips, "--out-dir", out, "--jobs", 2, "--skip-existing", "--weights", face_weights)
    assert result.exit_code == 0, (result.output, result.exception)
    rows = _table(result.output)
    assert "skipped: outputs complete" in rows["a.mp4"]
    assert rows["b.mp4"].split()[4] == "ok" and rows["c.mp4"].split()[4] == "ok"
    assert "2 ok, 1 skipped" in rows["all"]
    assert (out / "a.mp4").stat().st_mtime_ns == done[out / "a.mp4"]
    assert count_frames(out / "c.mp4")[0] == 4 and output_complete(out / "b.jsonl")
    result = _video(clips, "--out-dir", out, "--skip-existing", "--weights", face_weights)  # --jobs 1: same rule
    assert result.exit_code == 0, (result.output, result.exception)
    assert "3 skipped" in _table(result.output)["all"]


def test_jobs_below_one_is_a_usage_error(face_weights, tmp_path):
    write_clip(tmp_path / "a.mp4", frames=2)
    result = _video(tmp_path / "a.mp4", "--out-dir", tmp_path / "out", "--jobs", 0, "--weights", face_weights)
    one_error_line(result, 2, "--jobs")
    assert not (tmp_path / "out").exists()
    write_clip(tmp_path / "b.mp4", frames=2)
    result = _video(tmp_path / "a.mp4", tmp_path / "b.mp4", "--out-dir", tmp_path / "out", "--jobs", 2, "--show",
                    "--weights", face_weights)
    one_error_line(result, 2, "--show with --jobs 2")


@pytest.mark.parametrize(("workers", "cores", "threads"), [(1, 8, 8), (2, 8, 4), (3, 8, 2), (4, 2, 1), (16, 2, 1)])
def test_cores_are_shared_out_among_workers(workers, cores, threads):
    assert split_threads(workers, cores) == threads


def test_incomplete_outputs_are_not_complete(tmp_path):
    assert not output_complete(tmp_path / "missing.mp4")
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "cut.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    (tmp_path / "rows.jsonl").write_text('{"frame": 0}\n')
    assert not output_complete(tmp_path / "empty.jsonl") and not output_complete(tmp_path / "cut.mp4")
    clip = write_clip(tmp_path / "ok.mp4", frames=2)
    # whole files that no run recorded as finished (a stopped run finalises what it wrote): not complete
    assert not output_complete(tmp_path / "rows.jsonl") and not output_complete(clip)
    record_done(SimpleNamespace(out=clip, json_path=tmp_path / "rows.jsonl", csv_path=None))
    assert output_complete(tmp_path / "rows.jsonl") and output_complete(clip)
    with open(tmp_path / "rows.jsonl", "a") as f:  # changed since: run it again
        f.write('{"frame": 1}\n')
    assert not output_complete(tmp_path / "rows.jsonl")


def test_summary_table_rows_and_total():
    lines = summary_lines([FileResult("a.mp4", frames=10, with_face=8, faces=9, wall_s=2.0),
                           FileResult("b.mp4", "failed", reason="not a video")], wall_s=4.0)
    assert lines[0].split() == ["video", "frames", "with", "face", "fps", "status"]
    assert lines[1].split() == ["a.mp4", "10", "8", "5.0", "ok"]
    assert lines[2].split()[:5] == ["b.mp4", "0", "0", "-", "failed:"]
    assert lines[3].split() == ["all", "2", "videos", "10", "8", "2.5", "1", "ok,", "1", "failed"]
