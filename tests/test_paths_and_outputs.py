"""Issue 17, items 4-7: file names that are not valid UTF-8, two runs writing the same output, a video
file given as `--camera`, an audio-only file.

Every input is generated here (a few frames of the synthetic face; AAC audio written with PyAV); the
file-as-camera field case reads `../shared/field-cases` and skips with the reason when it is absent.
Runs that could crash the interpreter (OpenCV given a non-UTF-8 name) or that must run side by side
are real subprocesses.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from core.errors import InputError
from core.pathnames import is_utf8, shown
from facetrack.cli import app
from tests.helpers import count_frames, default_sigint, one_error_line, shared_folder, write_clip
from tracker.outfile import OutputFile, lock_path, part_path

ROOT = Path(__file__).resolve().parent.parent
FACETRACK = [sys.executable, "-m", "facetrack"]
runner = CliRunner()
FRAMES = 12


@pytest.fixture(autouse=True)
def _no_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


def _odd(folder: Path, name: bytes) -> Path:
    """`folder / name` for a name in bytes that are not UTF-8 (a str with surrogate escapes)."""
    return folder / os.fsdecode(name)


def _facetrack(*args, timeout: float = 300.0) -> SimpleNamespace:
    """Run facetrack in its own process (a crash is an exit code here, not the end of the test run)."""
    done = subprocess.run([*FACETRACK, *map(str, args)], cwd=ROOT, capture_output=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    output = done.stderr.decode("utf-8", "replace") + done.stdout.decode("utf-8", "replace")
    return SimpleNamespace(exit_code=done.returncode, output=output)


def _rows(path: Path) -> list[dict]:
    text = path.read_text()
    assert text == "" or text.endswith("\n"), "the last JSON row is cut short"
    return [json.loads(line) for line in text.splitlines()]


def _part_lines(path: Path) -> int:
    try:
        return len(part_path(path).read_text().splitlines())
    except FileNotFoundError:
        return 0


def _no_leftovers(*outputs: Path) -> None:
    for out in outputs:
        assert not part_path(out).exists() and not lock_path(out).exists(), sorted(os.listdir(out.parent))


# ---------------------------------------------------------------- item 4: names that are not UTF-8
def test_pathnames_show_bytes_as_ls_does():
    name = os.fsdecode(b"clip_\xff.mp4")
    assert not is_utf8(name) and is_utf8("clip_é.mp4")
    assert shown(name) == "clip_\\xff.mp4" and shown("clip_é.mp4") == "clip_é.mp4"


@pytest.mark.parametrize("command", ["video", "webcam"])
def test_non_utf8_names_are_read_and_written(face_weights, tmp_path, command):
    clip = _odd(tmp_path, b"clip_\xff.mp4")
    write_clip(tmp_path / "clip.mp4", frames=FRAMES).rename(clip)
    out, rows = _odd(tmp_path, b"out_\xfe.mp4"), _odd(tmp_path, b"out_\xfe.jsonl")
    source = [clip] if command == "video" else ["--camera", clip, "--no-show"]
    result = _facetrack(command, *source, "--out", out, "--json", rows, "--weights", face_weights, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "wrote out_\\xfe.mp4" in result.output.replace(str(tmp_path) + "/", "")
    assert [r["frame"] for r in _rows(rows)] == list(range(FRAMES))
    with av.open(str(out)) as container:  # the bytes name on disk, a playable file
        assert sum(1 for _ in container.decode(video=0)) == FRAMES
    assert os.fsencode(out.name) in os.listdir(os.fsencode(tmp_path))
    _no_leftovers(out, rows)


def test_bench_reads_and_reports_under_a_non_utf8_name(face_weights, tmp_path):
    clip = _odd(tmp_path, b"clip_\xff.mp4")
    write_clip(tmp_path / "clip.mp4", frames=FRAMES).rename(clip)
    report = _odd(tmp_path, b"bench_\xfe.json")
    result = _facetrack("bench", clip, "--weights", face_weights, "--backend", "onnx", "--device", "cpu",
                        "--scenario", "pipeline", "--frames", "4", "--warmup", "1", "--repeat", "1", "--batch", "1",
                        "--live-frames", "0", "--json", report)
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert "clip_\\xff.mp4" in data["header"]["source"]["describe"]
    _no_leftovers(report)


def test_non_utf8_names_opencv_would_open_are_refused(face_weights, tmp_path):
    device = _odd(tmp_path, b"video_\xff")
    device.symlink_to("/dev/null")  # a device path, not a regular file: OpenCV's to open
    result = _facetrack("webcam", "--camera", device, "--weights", face_weights, "--no-show")
    one_error_line(result, 2, "video_\\xff", "not valid UTF-8")
    url = os.fsdecode(b"rtsp://127.0.0.1:9/cam_\xff")
    result = _facetrack("video", url, "--out", tmp_path / "o.mp4", "--weights", face_weights)
    one_error_line(result, 2, "cam_\\xff", "not valid UTF-8")


# ---------------------------------------------------------------- item 5: one run per output, whole files
def test_output_file_is_renamed_into_place_and_claimed_once(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    target.chmod(0o600)
    with OutputFile(target, "--json") as claim:
        assert claim.held and lock_path(target).read_text().strip() == str(os.getpid())
        with pytest.raises(InputError, match=rf"--json {target}: another facetrack run \(pid \d+\) is writing it"):
            OutputFile(tmp_path / "." / "out.jsonl", "--json")  # another spelling of the same file
        claim.part.write_text("new\n")
        assert target.read_text() == "old\n"  # the old file until the new one is whole
        claim.commit()
    assert target.read_text() == "new\n" and (target.stat().st_mode & 0o777) == 0o600
    _no_leftovers(target)
    with OutputFile(target) as claim:  # left without commit: the part file goes, the target stays
        claim.part.write_text("half")
    assert target.read_text() == "new\n"
    _no_leftovers(target)


def test_output_file_writes_through_a_symlink(tmp_path):
    real, link = tmp_path / "real.jsonl", tmp_path / "link.jsonl"
    real.write_text("")
    link.symlink_to(real)
    with OutputFile(link) as claim:
        claim.part.write_text("row\n")
        claim.commit()
    assert link.is_symlink() and real.read_text() == "row\n"


def test_claim_of_a_killed_run_does_not_go_stale(face_weights, tmp_path):
    out = tmp_path / "out.mp4"
    code = ("import sys, time\nfrom tracker.outfile import OutputFile\n"
            f"claim = OutputFile({str(out)!r}, '--out')\nclaim.part.write_bytes(b'half a file')\n"
            "print('held', flush=True)\ntime.sleep(300)\n")
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        clip = write_clip(tmp_path / "clip.mp4", frames=FRAMES)
        held = runner.invoke(app, ["video", str(clip), "--out", str(out), "--weights", str(face_weights)])
        one_error_line(held, 2, f"--out {out}", "another facetrack run", f"pid {child.pid}")
    finally:
        child.kill()  # SIGKILL: no cleanup at all
        child.wait(30)
    assert lock_path(out).exists() and part_path(out).exists()  # what the killed run left
    result = runner.invoke(app, ["video", str(clip), "--out", str(out), "--weights", str(face_weights),
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert count_frames(out)[0] == FRAMES
    _no_leftovers(out)


def test_second_run_on_the_same_outputs_is_refused_and_the_first_finalises(face_weights, tmp_path):
    out, rows = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    first = subprocess.Popen([*FACETRACK, "video", "synthetic?width=96&height=64&frames=1000000", "--out", str(out),
                              "--json", str(rows), "--weights", str(face_weights), "--device", "cpu"],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             preexec_fn=default_sigint)
    try:
        guard = time.monotonic() + 120  # a hang guard, not a timing assertion
        while _part_lines(rows) < 5:  # the first run is writing (its rows go to the part file)
            assert first.poll() is None, first.stderr.read()
            assert time.monotonic() < guard, "the first run never got going"
            time.sleep(0.05)
        assert not out.exists() and not rows.exists()
        clip = write_clip(tmp_path / "clip.mp4", frames=FRAMES)
        for extra in (["--out", out], ["--out", tmp_path / "other.mp4", "--json", rows]):
            second = _facetrack("video", clip, *extra, "--weights", face_weights, "--device", "cpu")
            one_error_line(second, 2, "another facetrack run", f"pid {first.pid}")
            assert "wrote" not in second.output
        assert not (tmp_path / "other.mp4").exists()
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(30)
    assert first.returncode == 130, err
    assert "outputs finalised" in err
    data = _rows(rows)
    assert len(data) >= 5 and [r["frame"] for r in data] == list(range(len(data)))
    assert count_frames(out)[0] == len(data)  # one run's frames only, the file whole
    _no_leftovers(out, rows)


# ---------------------------------------------------------------- item 6: a video file as --camera
def test_video_file_as_camera_ends_at_its_end(face_weights, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", frames=FRAMES)
    rows, rec = tmp_path / "rows.jsonl", tmp_path / "rec.mp4"
    result = runner.invoke(app, ["webcam", "--camera", str(clip), "--no-show", "--json", str(rows), "--out", str(rec),
                                 "--weights", str(face_weights), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert [r["frame"] for r in _rows(rows)] == list(range(FRAMES))  # once, every frame, in order
    assert count_frames(rec)[0] == FRAMES
    same = runner.invoke(app, ["webcam", "--camera", str(clip), "--no-show", "--out", str(clip),
                               "--weights", str(face_weights)])
    one_error_line(same, 2, "is the input")


def test_field_case_file_as_camera(tmp_path):
    base = shared_folder("field-cases", "FACETRACK_FIELD_CASES")
    clip = base / "file-as-camera" / "cam160x120.mp4" if base is not None else None
    if clip is None or not clip.is_file():
        pytest.skip("field case file-as-camera not found (looked beside the repo and in $FACETRACK_FIELD_CASES)")
    truth = [json.loads(line) for line in (clip.parent / "truth_cam160x120.jsonl").read_text().splitlines()]
    rows = tmp_path / "rows.jsonl"
    result = runner.invoke(app, ["webcam", "--camera", str(clip), "--no-show", "--json", str(rows),
                                 "--device", "cpu"])  # the shipped weights, as a user runs it
    assert result.exit_code == 0, result.output
    assert [r["frame"] for r in _rows(rows)] == [t["frame"] for t in truth] == list(range(90))


# ---------------------------------------------------------------- item 7: audio only
def _audio_only(path: Path, fmt: str, cover: bool = False) -> Path:
    """Half a second of AAC silence, and no video (but a cover picture with `cover`)."""
    with av.open(str(path), "w", format=fmt) as container:
        audio = container.add_stream("aac", rate=16000)
        audio.layout = "mono"
        if cover:
            picture = container.add_stream("mjpeg")
            picture.width, picture.height, picture.pix_fmt = 32, 32, "yuvj420p"
            picture.disposition = av.stream.Disposition.attached_pic
            picture.codec_context.time_base = Fraction(1, 1)
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            frame = frame.reformat(format="yuvj420p")
            frame.pts = 0
            for packet in [*picture.encode(frame), *picture.encode(None)]:
                container.mux(packet)
        for i in range(8):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode(None):
            container.mux(packet)
    return path


@pytest.mark.parametrize("name,fmt,cover", [("sound.mp4", "mp4", False), ("sound.m4a", "ipod", False),
                                            ("album.m4a", "mp4", True)])
def test_audio_only_file_says_it_has_no_video_stream(face_weights, tmp_path, name, fmt, cover):
    sound = _audio_only(tmp_path / name, fmt, cover)
    for args in (["video", str(sound), "--out", str(tmp_path / "o.mp4")],
                 ["webcam", "--camera", str(sound), "--no-show"]):
        result = runner.invoke(app, [*args, "--weights", str(face_weights)])
        line = one_error_line(result, 2, name, "no video stream", "audio only: aac")
        assert "convert" not in line and ("cover picture" in line) == cover
    assert not (tmp_path / "o.mp4").exists()



def test_images_reads_non_utf8_names_named_and_in_folders(face_weights, tmp_path):
    """A photo whose name is not UTF-8, alone and in a folder: read and written, never a crash (OpenCV's
    format check crashed on such a name in a folder scan: exit 139)."""
    import cv2

    from tests.helpers import drawn_face

    image, _ = drawn_face()
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    photos = tmp_path / "photos"
    photos.mkdir()
    odd = _odd(photos, b"face_\xff.jpg")
    odd.write_bytes(data.tobytes())
    (photos / "plain.jpg").write_bytes(data.tobytes())
    for given in (photos, odd):
        out_dir, rows = tmp_path / f"drawn_{given == odd}", tmp_path / f"rows_{given == odd}.jsonl"
        result = _facetrack("images", given, "--out-dir", out_dir, "--json", rows, "--weights", face_weights,
                            "--device", "cpu")
        assert result.exit_code == 0, result.output
        names = sorted(os.fsencode(Path(r["image"]).name) for r in _rows(rows))
        assert names == ([b"face_\xff.jpg", b"plain.jpg"] if given == photos else [b"face_\xff.jpg"])
        assert b"face_\xff.jpg" in os.listdir(os.fsencode(out_dir))
