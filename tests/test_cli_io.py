"""Inputs and outputs of `facetrack video` and `facetrack images` as people expect them (issue 14):
a default run folder, JSON lines on standard output and CSV rows, where each face's row comes from,
a part of a video, and several inputs (folders, globs, paths on standard input) mirrored under --out-dir.

Tiny random-weight models and small generated clips and images (tests.helpers).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from core.errors import InputError
from core.meta import POINT_NAMES
from facetrack.cli import app
from tests.helpers import count_frames, one_error_line, shared_weights, write_clip, written_names
from tracker.inputs import common_base, expand_inputs, walk_files
from tracker.outdirs import OUTPUT_MARK, RUNS_ENV, next_run_folder, remove_if_unused
from tracker.sources.synthetic import SyntheticSource
from tracker.sources.window import FrameWindow

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


@pytest.fixture(scope="module")
def quality_weights(tmp_path_factory):
    return shared_weights(tmp_path_factory, "quality")


def _rows(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def _image(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 255, (60, 80, 3), dtype=np.uint8))
    return path


# ---------------------------------------------------------------- 1. the default run folder
def test_run_folders_are_numbered_and_made_once(tmp_path):
    root = tmp_path / "runs" / "track"
    made = [next_run_folder(root) for _ in range(3)]
    assert [p.name for p in made] == ["exp", "exp2", "exp3"] and all((p / OUTPUT_MARK).is_file() for p in made)
    assert remove_if_unused(made[1]) and not made[1].exists()
    (made[2] / "kept.jsonl").write_text("")
    assert not remove_if_unused(made[2])
    assert next_run_folder(root).name == "exp2"  # the first free name
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="cannot make the default output folder"):
        next_run_folder(tmp_path / "file" / "track")


def test_video_and_images_without_output_options_write_a_run_folder(face_weights, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(RUNS_ENV)  # the default: runs/track in the working folder (conftest moves it elsewhere)
    write_clip(tmp_path / "clip.mp4", frames=6)
    for n, name in ((1, "exp"), (2, "exp2")):
        result = runner.invoke(app, ["video", "clip.mp4", "--weights", str(face_weights)])
        assert result.exit_code == 0, result.output
        run = Path("runs/track") / name
        assert f"results in {run}" in result.stderr.splitlines()[-1]
        assert written_names(run) == ["clip.jsonl", "clip.mp4"] and count_frames(run / "clip.mp4")[0] == 6
        assert len((run / "clip.jsonl").read_text().splitlines()) == 6
    _image(tmp_path / "photos" / "a.png")
    result = runner.invoke(app, ["images", "photos", "--weights", str(face_weights)])
    assert result.exit_code == 0, result.output
    run = Path("runs/track/exp3")
    assert written_names(run) == ["a.png", "results.jsonl"] and "results in runs/track/exp3" in result.stderr
    (row,) = _rows((run / "results.jsonl").read_text())
    assert row["image"] == str(Path("photos/a.png")) and row["annotated"] == str(run / "a.png")
    # a run that fails before writing leaves no empty run folder behind
    result = runner.invoke(app, ["images", "missing.png", "--weights", str(face_weights)])
    one_error_line(result, 2, "missing.png: no such file")
    assert sorted(p.name for p in Path("runs/track").iterdir()) == ["exp", "exp2", "exp3"]


# ---------------------------------------------------------------- 2. standard output and CSV
def test_json_to_standard_output_and_csv_rows(face_weights, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    clip = write_clip(tmp_path / "clip.mp4", frames=5)
    table = tmp_path / "faces.csv"
    result = runner.invoke(app, ["video", str(clip), "--json", "-", "--csv", str(table), "--weights",
                                 str(face_weights)])
    assert result.exit_code == 0, result.output
    rows = _rows(result.stdout)  # data only on stdout; messages on stderr
    assert [r["frame"] for r in rows] == list(range(5)) and "facetrack:" in result.stderr
    assert not (tmp_path / "-").exists() and not Path("runs").exists()  # no file named -, no default folder
    lines = list(csv.reader(io.StringIO(table.read_text())))
    points = [f"{name}_{axis}" for name in POINT_NAMES for axis in "xy"]
    assert lines[0] == ["frame", "t_ms", "id", "source", "score", "x1", "y1", "x2", "y2", *points]
    assert [line[:4] for line in lines[1:]] == [[str(i), f"{40 * i}", "1", r["faces"][0]["source"]]
                                               for i, r in enumerate(rows)]
    first = rows[0]["faces"][0]
    assert [float(v) for v in lines[1][5:9]] == first["box_xyxy"]
    assert [float(v) for v in lines[1][9:11]] == first["points"]["right_eye"]
    # images: the CSV on standard output, an `image` column
    image = _image(tmp_path / "a.png")
    result = runner.invoke(app, ["images", str(image), "--csv", "-", "--weights", str(face_weights)])
    assert result.exit_code == 0, result.output
    lines = list(csv.reader(io.StringIO(result.stdout)))
    assert lines[0][:3] == ["image", "id", "source"] and lines[1][:3] == [str(image), "1", "detector"]
    result = runner.invoke(app, ["video", str(clip), "--json", "-", "--csv", "-", "--weights", str(face_weights)])
    one_error_line(result, 2, "both ask for standard output")


# ---------------------------------------------------------------- 3. where a row comes from, its score
def test_rows_say_detector_or_tracked_and_score_this_frame(quality_weights, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", frames=7)
    result = runner.invoke(app, ["video", str(clip), "--json", "-", "--detect-every", "3", "--weights",
                                 str(quality_weights)])
    assert result.exit_code == 0, result.output
    faces = [r["faces"][0] for r in _rows(result.stdout)]
    assert [f["source"] for f in faces] == ["detector", "tracked", "tracked"] * 2 + ["detector"]
    for face in faces:
        if face["source"] == "detector":
            assert face["score"] == face["last_detector_score"] > 0.99  # the detector's score on this frame
        else:
            assert face["score"] == face["quality"] < face["last_detector_score"]  # the face quality
    assert faces[1]["last_detector_score"] == faces[0]["score"]


# ---------------------------------------------------------------- 4. a part of a video
def test_frame_window_by_presentation_time():
    source = SyntheticSource(64, 48, 25.0, 40)  # frames at 0, 40, 80, ... ms
    window = FrameWindow(source, start_s=0.2, end_s=1.0, stride=3, max_frames=4)
    assert [f.index for f in window] == [5, 8, 11, 14] and window.frame_count == 4
    assert "from 0.2 s, to 1 s, every 3rd frame, at most 4 frames" in window.describe()
    assert [f.index for f in FrameWindow(SyntheticSource(64, 48, 25.0, 40), end_s=0.2)] == [0, 1, 2, 3, 4]
    with pytest.raises(InputError, match="no frame from 5 s"):
        FrameWindow(SyntheticSource(64, 48, 25.0, 40), start_s=5.0)
    with pytest.raises(InputError, match="must come after"):
        FrameWindow(SyntheticSource(64, 48, 25.0, 40), start_s=1.0, end_s=0.5)


def test_video_start_end_stride_max_frames(face_weights, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", frames=30)
    out = tmp_path / "part.mp4"
    result = runner.invoke(app, ["video", str(clip), "--out", str(out), "--json", "-", "--start", "0.2", "--end",
                                 "0.8", "--stride", "2", "--max-frames", "5", "--weights", str(face_weights)])
    assert result.exit_code == 0, result.output
    rows = _rows(result.stdout)
    assert [r["frame"] for r in rows] == [5, 7, 9, 11, 13]  # frames keep their number and time in the file
    assert [r["t_ms"] for r in rows] == [200.0, 280.0, 360.0, 440.0, 520.0]
    assert count_frames(out)[0] == 5
    result = runner.invoke(app, ["video", str(clip), "--json", "-", "--start", "0.2", "--end", "0.64", "--weights",
                                 str(face_weights)])
    assert [r["frame"] for r in _rows(result.stdout)] == list(range(5, 16))
    result = runner.invoke(app, ["video", str(clip), "--json", "-", "--start", "9", "--weights", str(face_weights)])
    one_error_line(result, 2, "no frame from 9 s")


# ---------------------------------------------------------------- 5. several inputs
def test_inputs_expand_globs_stdin_and_skip_marked_output_folders(tmp_path):
    for name in ("a/x.jpg", "b/x.jpg", "b/sub/y.png", "b/out/x.jpg"):
        _image(tmp_path / name)
    (tmp_path / "b" / "out" / OUTPUT_MARK).write_text("")
    root = str(tmp_path)
    assert walk_files(f"{root}/b") == [f"{root}/b/sub/y.png", f"{root}/b/x.jpg"]  # out/ is facetrack's
    assert expand_inputs([f"{root}/**/x.jpg"]) == [f"{root}/a/x.jpg", f"{root}/b/x.jpg"]  # not b/out/x.jpg
    assert expand_inputs([f"{root}/b/out/*.jpg"]) == [f"{root}/b/out/x.jpg"]  # asked for by name
    assert expand_inputs(["-", f"{root}/a"], stdin=io.StringIO(f"{root}/b/x.jpg\n\n")) == [f"{root}/b/x.jpg",
                                                                                             f"{root}/a"]
    assert expand_inputs(["synthetic?frames=3"], literal=lambda arg: arg.startswith("synthetic")) == \
        ["synthetic?frames=3"]
    with pytest.raises(InputError, match="no file matches"):
        expand_inputs([f"{root}/*.gif"])
    assert common_base([f"{root}/a", f"{root}/b"]) == tmp_path and common_base([f"{root}/a/x.jpg"]) == tmp_path / "a"


def test_images_mirror_nested_folders_and_skip_their_own_outputs(face_weights, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for seed, name in enumerate(("shots/a/x.jpg", "shots/b/x.jpg", "shots/b/deep/y.png")):
        _image(tmp_path / name, seed)
    args = ["images", "shots", "--out-dir", "shots/annotated", "--json", "rows.jsonl", "--weights", str(face_weights)]
    for _ in range(2):  # the second run does not take the first run's copies as inputs
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert "3 images" in result.stderr
        rows = _rows(Path("rows.jsonl").read_text())
        assert {r["image"]: r["annotated"] for r in rows} == {
            "shots/a/x.jpg": "shots/annotated/a/x.jpg", "shots/b/deep/y.png": "shots/annotated/b/deep/y.png",
            "shots/b/x.jpg": "shots/annotated/b/x.jpg"}
    assert all(Path(r["annotated"]).is_file() for r in rows)
    # paths from standard input and a quoted glob
    result = runner.invoke(app, ["images", "-", "--json", "-", "--weights", str(face_weights)],
                           input="shots/b/x.jpg\nshots/a/x.jpg\n")
    assert [r["image"] for r in _rows(result.stdout)] == ["shots/b/x.jpg", "shots/a/x.jpg"]
    result = runner.invoke(app, ["images", "shots/*/x.jpg", "--json", "-", "--weights", str(face_weights)])
    assert [r["image"] for r in _rows(result.stdout)] == ["shots/a/x.jpg", "shots/b/x.jpg"]


def test_several_videos_go_to_out_dir(face_weights, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, frames in (("a", 4), ("b", 3)):
        Path("clips", name).mkdir(parents=True)
        write_clip(Path("clips", name, "one.mp4"), frames=frames)
    Path("clips/notes.txt").write_text("not a video")
    for _ in range(2):  # the second run over the folder does not take the first run's videos as inputs
        result = runner.invoke(app, ["video", "clips", "--out-dir", "clips/out", "--weights", str(face_weights)])
        assert result.exit_code == 0, result.output
        assert sorted(str(p) for p in Path("clips/out").rglob("*.mp4")) == ["clips/out/a/one.mp4",
                                                                             "clips/out/b/one.mp4"]
        for name, frames in (("a", 4), ("b", 3)):
            assert written_names(Path("clips/out") / name) == ["one.jsonl", "one.mp4"]
            assert count_frames(Path("clips/out") / name / "one.mp4")[0] == frames
    result = runner.invoke(app, ["video", "clips/**/*.mp4", "--out-dir", "again", "--weights", str(face_weights)])
    assert result.exit_code == 0, result.output
    assert sorted(str(p) for p in Path("again").rglob("*.mp4")) == ["again/a/one.mp4", "again/b/one.mp4"]
    result = runner.invoke(app, ["video", "clips", "--out", "o.mp4", "--weights", str(face_weights)])
    one_error_line(result, 2, "2 videos: give --out-dir")
