"""The threaded runtime: newest-frame-only for live sources, every frame for files, errors, interrupts."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest

from core.errors import FacetrackError, InputError
from tests.helpers import CountingBackend, LockstepCamera, count_frames, write_clip
from tracker.backends import open_models
from tracker.pipeline import Tracker
from tracker.runtime import LatestSlot, run
from tracker.sinks import JsonlSink, VideoSink, WindowSink
from tracker.sources import VideoFileSource
from tracker.sources.synthetic import SyntheticSource


def _tracker(weights, delay_s: float = 0.0, **kwargs) -> Tracker:
    box, landmarks = open_models(weights, "onnx", "cpu")
    return Tracker(CountingBackend(box), CountingBackend(landmarks, delay_s), **kwargs)


def _rows(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_latest_slot_keeps_only_the_newest():
    slot = LatestSlot()
    for i in range(5):
        slot.put(i)
    assert slot.get(0.1) == 4 and slot.dropped == 4


def test_live_source_drops_frames_for_a_slow_consumer(face_weights, tmp_path):
    """Newest frame only, as behaviour and not as timing (timing is `facetrack bench`'s): a camera that
    runs `ahead` frames ahead of the tracker (`LockstepCamera`) gets every frame counted, all but the
    newest dropped between two processed frames, the rows in order, and the last frame delivered."""
    frames, ahead = 160, 5
    camera = LockstepCamera(frames, ahead)
    source = camera.source()
    box, landmarks = open_models(face_weights, "onnx", "cpu")
    tracker = camera.tracker(box, landmarks, smooth=True, mode="live")
    stats = run(source, tracker, jsonl=JsonlSink(tmp_path / "live.jsonl"))
    rows = _rows(tmp_path / "live.jsonl")
    assert stats.captured == len(source.numbers) and source.numbers[-1] == frames - 1
    assert source.numbers == list(range(source.numbers[0], frames))  # the camera handed over every frame
    assert stats.processed + stats.dropped == stats.captured
    assert stats.written == stats.processed == len(rows)
    processed = [source.number_of[row["frame"]] for row in rows]
    gaps = np.diff(processed)
    assert processed[0] < source.numbers[0] + ahead  # the first frame comes from the first burst
    assert (gaps[:-1] == ahead).all() and 1 <= gaps[-1] <= ahead  # the newest frame each time, in order
    assert processed[-1] == frames - 1  # the newest frame is delivered at the end too
    assert stats.dropped == stats.captured - len(processed) >= (ahead - 1) * (len(processed) - 2)


def test_file_source_keeps_every_frame_in_order(face_weights, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", frames=24)
    source = VideoFileSource(clip)
    tracker = _tracker(face_weights, delay_s=0.005)
    out = tmp_path / "out.mp4"
    stats = run(source, tracker, video=VideoSink(out, source.fps, source.width, source.height),
                jsonl=JsonlSink(tmp_path / "out.jsonl"))
    assert stats.dropped == 0 and stats.processed == 24 and stats.stopped_by == "end"
    assert [row["frame"] for row in _rows(tmp_path / "out.jsonl")] == list(range(24))
    assert count_frames(out)[:3] == (24, 160, 120)
    # the run's CPU over the same span as its frames/s (the models loaded before it), in the summary line
    assert 0 < stats.cpu_s and stats.cpu_ms_per_frame == pytest.approx(1000 * stats.cpu_s / 24)
    assert f"FPS, CPU {stats.cpu_ms_per_frame:.1f} ms/frame)" in stats.summary()


def test_a_threaded_run_keeps_opencvs_pool_to_the_cores_it_leaves(face_weights, tmp_path, monkeypatch):
    import cv2

    from core import devices
    from tracker import runtime

    clip = write_clip(tmp_path / "clip.mp4", frames=6)
    before = cv2.getNumThreads()
    monkeypatch.setattr(runtime, "helper_threads", lambda: 1)  # as on a 2-core machine
    seen = []
    run(VideoFileSource(clip), _tracker(face_weights), on_result=lambda result, stats: seen.append(cv2.getNumThreads()))
    assert seen == [1] * 6 and cv2.getNumThreads() == before
    assert devices.helper_threads(2) == devices.helper_threads(4) == 1 and devices.helper_threads(16) == 13


def test_sequential_and_threaded_give_the_same_rows(face_weights, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", frames=15)
    for name, threaded in (("a", True), ("b", False)):
        run(VideoFileSource(clip), _tracker(face_weights, detect_every=4), jsonl=JsonlSink(tmp_path / f"{name}.jsonl"),
            threaded=threaded)
    assert _rows(tmp_path / "a.jsonl") == _rows(tmp_path / "b.jsonl")


class _Exploding(CountingBackend):
    def predict(self, batch):
        if self.calls >= 5:
            raise RuntimeError("boom")
        return super().predict(batch)


@pytest.mark.parametrize("threaded", [True, False])
def test_worker_error_reaches_the_caller_and_outputs_are_finalised(face_weights, tmp_path, threaded):
    box, landmarks = open_models(face_weights, "onnx", "cpu")
    tracker = Tracker(box, _Exploding(landmarks))
    source = SyntheticSource(160, 120, 30, 40)
    out = tmp_path / "out.mp4"
    with pytest.raises(FacetrackError, match="RuntimeError: boom"):
        run(source, tracker, video=VideoSink(out, 30, 160, 120), jsonl=JsonlSink(tmp_path / "o.jsonl"),
            threaded=threaded)
    assert count_frames(out)[0] == len(_rows(tmp_path / "o.jsonl")) == 5


@pytest.mark.parametrize("threaded", [True, False])
def test_sigint_stops_cleanly(face_weights, tmp_path, threaded):
    tracker = _tracker(face_weights)
    out = tmp_path / "out.mp4"

    def interrupt_at_10(result, stats):
        if stats.processed == 10:
            os.kill(os.getpid(), signal.SIGINT)

    previous = signal.getsignal(signal.SIGINT)
    stats = run(SyntheticSource(160, 120, 30, 500), tracker, video=VideoSink(out, 30, 160, 120),
                jsonl=JsonlSink(tmp_path / "o.jsonl"), on_result=interrupt_at_10, threaded=threaded)
    assert signal.getsignal(signal.SIGINT) is previous
    assert stats.interrupted and 10 <= stats.written < 500
    assert count_frames(out)[0] == len(_rows(tmp_path / "o.jsonl")) == stats.written


def test_max_frames_and_no_draw(face_weights, tmp_path):
    source = SyntheticSource(160, 120, 60, 200, live=True)
    out = tmp_path / "raw.mp4"
    stats = run(source, _tracker(face_weights), video=VideoSink(out, 30, 160, 120), draw=False, max_frames=7)
    assert stats.stopped_by == "max_frames" and stats.written == 7
    assert count_frames(out)[0] == 7


def test_window_needs_a_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(InputError, match="no display"):
        WindowSink()


def test_no_face_rows_have_empty_faces(tmp_path):
    from core.frame import Frame, FrameResult
    from tracker.sinks import result_row

    frame = Frame(np.zeros((12, 16, 3), np.uint8), 3, 0.0, 100.0)
    assert result_row(FrameResult(frame)) == {"frame": 3, "t_ms": 100.0, "width": 16, "height": 12,
                                                          "faces": []}
    frame.name = "a/b.png"
    assert list(result_row(FrameResult(frame))) == ["image", "width", "height", "faces"]
