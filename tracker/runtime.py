"""Moving frames around `Tracker.step`: capture -> inference -> render/write, threaded or sequential.

Threads are joined by bounded queues. A live source hands over only its newest frame (older ones are
dropped and counted, so latency never grows); a file hands over every frame in order. The main
thread renders and writes (OpenCV windows must live there), so Ctrl+C, SIGTERM, q/Esc and the end of
the input all stop the run the same way: workers joined, outputs finalised. A worker's error is
re-raised on the main thread after the outputs are closed; a source or model that fails mid-run first
lets every frame it delivered before the failure reach the outputs. A live source whose read blocks
(a stuck driver) is given up after its stall timeout by a watchdog on the main thread.

Files are written with each frame's own presentation time (`VideoSink.write`), so a variable frame
rate keeps its timing. Live recordings are written on the source's clock (`VideoSink.write_at`): frames
dropped to keep latency low are filled with copies of the last drawn frame, so the file plays at the
filmed speed.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np

from core.devices import helper_threads
from core.errors import FacetrackError
from core.frame import Frame, FrameResult
from core.signals import StopSignals
from tracker.csv_rows import CsvSink
from tracker.draw import draw_frame_result
from tracker.pipeline import STAGES, Tracker
from tracker.sinks import ImageSink, JsonlSink, VideoSink, WindowSink, result_row
from tracker.sources import Source

FILE_QUEUE_SIZE = 4
LIVE_RENDER_QUEUE_SIZE = 2
POLL_S = 0.05
JOIN_TIMEOUT_S = 5.0
WATCHDOG_GRACE_S = 2.0  # a live read blocked this long past the source's stall timeout is given up
STUCK_JOIN_S = 0.5
_END = object()  # end-of-stream marker passed down the queues

__all__ = ["RunStats", "StepError", "run"]


class StepError(FacetrackError):
    """`Tracker.step` failed with something other than a FacetrackError (a backend's own error).

    `frame` is the frame it failed on; `__cause__` the original exception.
    """

    def __init__(self, message: str, frame: Frame) -> None:
        super().__init__(message)
        self.frame = frame


@dataclass
class RunStats:
    """Counts and timings of one run."""

    captured: int = 0
    processed: int = 0
    dropped: int = 0  # live frames replaced by a newer one before inference took them
    written: int = 0
    with_face: int = 0  # processed frames in which a face was found
    faces: int = 0  # faces found, summed over the processed frames
    wall_s: float = 0.0
    cpu_s: float = 0.0  # process CPU seconds (every thread, `time.process_time`) over the same span as wall_s
    stopped_by: str = "end"  # end | user | interrupt | max_frames | error
    threaded: bool = True
    stage_ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys((*STAGES, "total"), 0.0))
    latency_max_ms: float = 0.0
    _latencies: deque = field(default_factory=lambda: deque(maxlen=10_000), repr=False)
    box_calls: int = 0
    landmark_calls: int = 0
    video_frames: int = 0  # frames in the recording (live: processed + repeated for dropped frames)
    video_repeated: int = 0
    queue_peak: dict[str, int] = field(default_factory=dict)  # highest fill of each hand-over queue
    models: str = ""  # which models ran, how (`tracker.session.run_job`'s models line); "" when not said

    @property
    def interrupted(self) -> bool:
        return self.stopped_by == "interrupt"

    @property
    def fps(self) -> float:
        return self.processed / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def cpu_ms_per_frame(self) -> float:
        """Process CPU ms per processed frame over the run (models loaded: start-up not included)."""
        return 1000.0 * self.cpu_s / self.processed if self.processed else 0.0

    def latency_ms(self, q: float = 50.0) -> float:
        """A percentile of capture-to-output latency over the recent frames."""
        return float(np.percentile(np.asarray(self._latencies), q)) if self._latencies else 0.0

    def add(self, result: FrameResult, latency_ms: float) -> None:
        self.processed += 1
        self.with_face += result.has_face
        self.faces += len(result.faces)
        self._latencies.append(latency_ms)
        self.latency_max_ms = max(self.latency_max_ms, latency_ms)
        for key, value in result.timings.items():
            self.stage_ms[key] = self.stage_ms.get(key, 0.0) + value

    def summary(self) -> str:
        """One line for the end of a run."""
        n = max(1, self.processed)
        stages = ", ".join(f"{k} {self.stage_ms.get(k, 0.0) / n:.2f}" for k in STAGES)
        dropped = f", {self.dropped} dropped" if self.dropped else ""
        if self.video_repeated:
            dropped += f"; recording {self.video_frames} frames ({self.video_repeated} repeats fill dropped ones)"
        # faces per frame only where some frame had several: a single-face run's line stays as it was
        faces = f"; {self.faces / n:.2f} faces per frame" if self.faces > self.with_face else ""
        return (f"{self.processed} frames in {self.wall_s:.1f} s ({self.fps:.1f} FPS, CPU {self.cpu_ms_per_frame:.1f} "
                f"ms/frame{dropped}); latency "
                f"p50 {self.latency_ms(50):.0f} ms, p95 {self.latency_ms(95):.0f} ms{faces}; detector on "
                f"{self.box_calls} frames; ms/frame: {stages}")


class FpsMeter:
    """Frames per second over the last `window` frames."""

    def __init__(self, window: int = 30) -> None:
        self._times: deque[float] = deque(maxlen=window)

    def tick(self, t: float | None = None) -> float:
        self._times.append(time.perf_counter() if t is None else t)
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0


class LatestSlot:
    """A one-item hand-over: `put` replaces an item nobody took yet and counts it as dropped."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item = None
        self._full = False
        self.dropped = 0
        self.peak = 0

    def put(self, item, stop: threading.Event | None = None) -> None:
        with self._cond:
            if item is _END:  # the end must not replace the last frame: wait until it was taken
                while self._full and not (stop is not None and stop.is_set()):
                    self._cond.wait(POLL_S)
            if self._full and self._item is not _END:
                self.dropped += 1
            self._item, self._full = item, True
            self.peak = 1
            self._cond.notify_all()

    def get(self, timeout: float):
        with self._cond:
            if not self._full and not self._cond.wait_for(lambda: self._full, timeout):
                raise queue.Empty
            item, self._item, self._full = self._item, None, False
            self._cond.notify_all()
            return item


class BoundedQueue:
    """queue.Queue whose blocking `put` gives up once the run is stopping."""

    def __init__(self, size: int) -> None:
        self._q: queue.Queue = queue.Queue(maxsize=size)
        self.dropped = 0
        self.peak = 0

    def put(self, item, stop: threading.Event | None = None) -> None:
        while True:
            try:
                self._q.put(item, timeout=POLL_S)
                self.peak = max(self.peak, self._q.qsize())
                return
            except queue.Full:
                if stop is not None and stop.is_set():
                    return

    def get(self, timeout: float):
        return self._q.get(timeout=timeout)


class _Renderer:
    """The main-thread end of the run: latency, drawing, video, JSON row, annotated image, window."""

    def __init__(self, tracker: Tracker, stats: RunStats, video: VideoSink | None, jsonl: JsonlSink | None,
                 images: ImageSink | None, window: WindowSink | None, draw: bool,
                 on_result: Callable[[FrameResult, RunStats], None] | None, timed: bool = False,
                 csv: CsvSink | None = None) -> None:
        self.tracker, self.stats = tracker, stats
        self.video, self.jsonl, self.images, self.window, self.draw = video, jsonl, images, window, draw
        self.csv = csv
        self.on_result = on_result
        self.timed = timed  # live: the recording follows the source's clock
        self.meter = FpsMeter()

    def emit(self, result: FrameResult) -> bool:
        """Output one result; False when the user closed the window."""
        now = time.perf_counter()
        latency_ms = (now - result.frame.t_capture) * 1000.0
        fps = self.meter.tick(now)
        self.stats.add(result, latency_ms)
        needs_image = self.video is not None or self.window is not None
        image = result.frame.image
        if needs_image and self.draw:
            image = draw_frame_result(result, fps=fps or None, latency_ms=latency_ms)
        if self.video is not None:
            if self.timed:
                self.video.write_at(image, result.frame.t_ms)
            else:  # files: each frame at its own presentation time
                self.video.write(image, result.frame.t_ms)
            self.stats.video_frames, self.stats.video_repeated = self.video.frames, self.video.repeated
        if self.jsonl is not None:
            row = result_row(result, self.tracker.point_names)
            if self.images is not None:  # which annotated copy shows this image
                row["annotated"] = str(self.images.targets[result.frame.name])
            self.jsonl.write(row)
        if self.csv is not None:
            self.csv.write(result)
        if self.images is not None:  # still images: drawn without the FPS/latency corner
            self.images.write(result.frame.name, draw_frame_result(result) if self.draw else result.frame.image)
        self.stats.written += 1
        if self.on_result is not None:
            self.on_result(result, self.stats)
        if self.window is not None:
            return self.window.show(image)
        return True


def run(source: Source, tracker: Tracker, *, video: VideoSink | None = None, jsonl: JsonlSink | None = None,
        images: ImageSink | None = None, window: WindowSink | None = None, draw: bool = True,
        threaded: bool = True, max_frames: int | None = None,
        on_result: Callable[[FrameResult, RunStats], None] | None = None, handle_signals: bool = True,
        csv: CsvSink | None = None) -> RunStats:
    """Track every frame of `source` into the sinks (`csv`: one CSV row per face, `tracker.csv_rows`);
    closes the sinks and the source before returning.

    An interrupt (Ctrl+C, SIGTERM) returns normally with `stats.interrupted` set, after finalising the
    outputs; a failure (source, model, output) is raised as a FacetrackError once everything is closed,
    with the run's `stats` attached to it (a StepError when `Tracker.step` itself failed).

    A threaded run limits OpenCV's thread pool to `core.devices.helper_threads()` while it runs (never
    raising a lower setting, e.g. a `--jobs` worker's) and restores it afterwards.
    """
    stats = RunStats(threaded=threaded)
    cv_threads = cv2.getNumThreads()
    if threaded:  # the pipeline's threads fill the cores: OpenCV's pool only adds hand-offs (never raised)
        cv2.setNumThreads(min(cv_threads, helper_threads()))
    renderer = _Renderer(tracker, stats, video, jsonl, images, window, draw, on_result, timed=source.live, csv=csv)
    box0, lm0 = tracker.box_calls, tracker.landmark_calls
    t_start, cpu_start = time.perf_counter(), time.process_time()
    error: BaseException | None = None
    source.start()  # a live source drops the frame it read while the models loaded (stale)
    with StopSignals(handle_signals) as signals:
        try:
            if threaded:
                error = _run_threaded(source, tracker, renderer, stats, signals.event, max_frames)
            else:
                error = _run_sequential(source, tracker, renderer, stats, signals.event, max_frames)
        finally:
            signals.closing = True  # from here on a signal only sets the flag: the outputs get finished
            stats.wall_s = time.perf_counter() - t_start
            stats.cpu_s = time.process_time() - cpu_start
            stats.box_calls = tracker.box_calls - box0
            stats.landmark_calls = tracker.landmark_calls - lm0
            # Safe with a capture thread still blocked inside the device's read: the source then leaves
            # the release to that thread (`Source.close`).
            _close_all(video, jsonl, csv, images, window, source)
            cv2.setNumThreads(cv_threads)
    if error is not None:
        stats.stopped_by = "error"
        if not isinstance(error, FacetrackError):
            wrapped = FacetrackError(f"{type(error).__name__}: {error}")
            wrapped.__cause__ = error
            error = wrapped
        error.stats = stats  # type: ignore[attr-defined]
        raise error
    return stats


def _close_all(*things) -> None:
    for thing in things:
        if thing is not None:
            try:
                thing.close()
            except Exception:  # one failed close must not keep the others open
                pass


def _step(tracker: Tracker, frame: Frame, stage: str = "") -> FrameResult:
    """`tracker.step(frame)`; a failure other than a FacetrackError comes out as a StepError naming the frame."""
    try:
        return tracker.step(frame)
    except FacetrackError:
        raise
    except Exception as exc:
        prefix = f"{stage} failed: " if stage else ""
        raise StepError(f"{prefix}{type(exc).__name__}: {exc}", frame) from exc


def _run_sequential(source: Source, tracker: Tracker, renderer: _Renderer, stats: RunStats,
                    interrupted: threading.Event, max_frames: int | None) -> BaseException | None:
    try:
        while True:
            if interrupted.is_set():
                stats.stopped_by = "interrupt"
                return None
            frame = source.read()
            if frame is None:
                return None
            stats.captured += 1
            if not renderer.emit(_step(tracker, frame)):
                stats.stopped_by = "user"
                return None
            if max_frames and stats.processed >= max_frames:
                stats.stopped_by = "max_frames"
                return None
    except KeyboardInterrupt:
        stats.stopped_by = "interrupt"
        return None
    except Exception as exc:
        return exc


def _run_threaded(source: Source, tracker: Tracker, renderer: _Renderer, stats: RunStats,
                  interrupted: threading.Event, max_frames: int | None) -> BaseException | None:
    """The run's error, or None. The capture thread may still be blocked in a read when this returns."""
    stop = threading.Event()  # the run is over: every thread leaves now
    halt_capture = threading.Event()  # nobody takes frames any more (inference ended, or the run is over)
    errors: list[tuple[str, BaseException]] = []
    frames = LatestSlot() if source.live else BoundedQueue(FILE_QUEUE_SIZE)
    results = BoundedQueue(LIVE_RENDER_QUEUE_SIZE if source.live else FILE_QUEUE_SIZE)
    last_read = [time.perf_counter()]  # when the capture thread last got a frame (watchdog)
    capture_ended = threading.Event()

    def capture() -> None:
        try:
            while not halt_capture.is_set():
                frame = source.read()
                if frame is None:
                    break
                last_read[0] = time.perf_counter()
                stats.captured += 1
                frames.put(frame, halt_capture)
        except BaseException as exc:  # noqa: BLE001 - reported on the main thread after the frames before it
            errors.append(("capture", exc))
        finally:
            capture_ended.set()
            frames.put(_END, halt_capture)

    def infer() -> None:
        try:
            while not stop.is_set():
                try:
                    frame = frames.get(POLL_S)
                except queue.Empty:
                    if capture_ended.is_set() and not capture_thread.is_alive() and _empty(frames):
                        break  # the end marker could not be handed over; nothing more will come
                    continue
                if frame is _END:
                    break
                results.put(_step(tracker, frame, "inference"), stop)
        except BaseException as exc:  # noqa: BLE001
            errors.append(("inference", exc))
        finally:
            halt_capture.set()
            results.put(_END, stop)

    capture_thread = threading.Thread(target=capture, name="facetrack-capture", daemon=True)
    infer_thread = threading.Thread(target=infer, name="facetrack-inference", daemon=True)
    workers = [capture_thread, infer_thread]
    for worker in workers:
        worker.start()
    stall_limit = source.stall_timeout_s + WATCHDOG_GRACE_S if source.live else None
    watchdog_fired = False
    try:
        while True:
            if interrupted.is_set():
                stats.stopped_by = "interrupt"
                break
            try:
                item = results.get(POLL_S)
            except queue.Empty:
                if not any(w.is_alive() for w in workers) and _empty(results):
                    break  # both ended and nothing is left to take: never wait forever
                silent = time.perf_counter() - last_read[0]
                if stall_limit is not None and not capture_ended.is_set() and silent > stall_limit:
                    errors.insert(0, ("capture", source.stalled(silent)))  # a read that never returns
                    watchdog_fired = True
                    break
                continue
            if item is _END:
                break
            if not renderer.emit(item):
                stats.stopped_by = "user"
                break
            if max_frames and stats.processed >= max_frames:
                stats.stopped_by = "max_frames"
                break
    except KeyboardInterrupt:
        stats.stopped_by = "interrupt"
    except Exception as exc:
        errors.insert(0, ("output", exc))
    finally:
        stop.set()
        halt_capture.set()
        source.cancel()  # a read retrying a silent device gives up now
        infer_thread.join(JOIN_TIMEOUT_S)
        # A read the watchdog gave up on may never return: do not wait long for it.
        capture_thread.join(STUCK_JOIN_S if watchdog_fired else JOIN_TIMEOUT_S)
        stats.dropped = frames.dropped
        stats.queue_peak = {"frames": frames.peak, "results": results.peak}
    if errors:
        stage, exc = errors[0]
        if isinstance(exc, FacetrackError):
            return exc
        if isinstance(exc, KeyboardInterrupt):
            stats.stopped_by = "interrupt"
            return None
        failure = FacetrackError(f"{stage} failed: {type(exc).__name__}: {exc}")
        failure.__cause__ = exc
        return failure
    return None


def _empty(hand_over) -> bool:
    if isinstance(hand_over, LatestSlot):
        return not hand_over._full
    return hand_over._q.empty()
