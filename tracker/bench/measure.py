"""Timing the pieces: each model alone, the pipeline stage by stage, and the real runtime end to end.

Every end-to-end figure comes from `tracker.runtime.run`, the code `facetrack video` runs; the stage
breakdown comes from a separate sequential pass over the same functions (read, `Tracker.step`,
`draw_frame_result`, `VideoSink.write`) with a timer around each.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import numpy as np

from core.errors import Interrupted
from tracker.backends import Backend
from tracker.draw import draw_frame_result
from tracker.pipeline import STAGES, Tracker
from tracker.runtime import FpsMeter, run
from tracker.sinks import VideoSink
from tracker.sources import Source

# read/decode, the tracker's own stages, then the output stages (only when writing).
STAGE_NAMES = ("read", *STAGES, "draw", "encode")
OUTPUT_STAGES = ("draw", "encode")


def _r(value: float, digits: int = 4) -> float:
    return round(float(value), digits)


def spread(values: list[float], digits: int = 4) -> dict:
    """Median and min-max of repeated measurements, with the runs themselves."""
    arr = np.asarray(values, dtype=np.float64)
    return {"median": _r(np.median(arr), digits), "min": _r(arr.min(), digits), "max": _r(arr.max(), digits),
            "runs": [_r(v, digits) for v in arr]}


class TimedSource:
    """A source whose `read` is timed; everything else is the wrapped source's."""

    def __init__(self, inner: Source) -> None:
        self.inner = inner
        self.total_ms = 0.0
        self.reads = 0

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def read(self):
        t0 = time.perf_counter()
        frame = self.inner.read()
        self.total_ms += (time.perf_counter() - t0) * 1000.0
        self.reads += 1
        return frame

    def close(self) -> None:
        self.inner.close()


class TimedSink:
    """A video sink whose `write` (encode) is timed."""

    def __init__(self, inner: VideoSink) -> None:
        self.inner = inner
        self.total_ms = 0.0

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def write(self, image: np.ndarray) -> None:
        t0 = time.perf_counter()
        self.inner.write(image)
        self.total_ms += (time.perf_counter() - t0) * 1000.0

    def close(self) -> None:
        self.inner.close()


def cpu_seconds() -> float:
    """User + system CPU time of the whole process (every thread, ONNX Runtime's and OpenCV's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------- models alone
def _call_ms(backend: Backend, batch: np.ndarray, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        backend.predict(batch)
        times.append((time.perf_counter() - t0) * 1000.0)
    return times


def model_benchmark(backend: Backend, batches: tuple[int, ...], iters: int, warmup: int, seed: int = 0) -> dict:
    """Batch-1 latency (median, p90 after warm-up) and items/s at each batch size, of `predict` alone."""
    size = backend.meta.input_size
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, 3, size, size), dtype=np.float32)
    _call_ms(backend, x, max(1, warmup))  # the first calls allocate and plan: never measured
    times = np.asarray(_call_ms(backend, x, max(1, iters)))
    out = {"model": backend.meta.model, "input_size": size, "backend": backend.name,
           "latency_ms": {"batch": 1, "median": _r(np.median(times)), "p90": _r(np.percentile(times, 90)),
                          "mean": _r(times.mean()), "min": _r(times.min()), "max": _r(times.max()),
                          "iters": int(times.size), "warmup": max(1, warmup)},
           "throughput": []}
    for b in batches:
        xb = rng.standard_normal((b, 3, size, size), dtype=np.float32)
        n = max(3, iters // b)
        _call_ms(backend, xb, max(1, warmup // b))
        ms = np.asarray(_call_ms(backend, xb, n))
        rates = b * 1000.0 / ms
        out["throughput"].append({"batch": b, "items_per_s": _r(np.median(rates), 2), "min": _r(rates.min(), 2),
                                  "max": _r(rates.max(), 2), "ms_per_batch": _r(np.median(ms)), "iters": n})
    return out


# ---------------------------------------------------------------- stage by stage
def stage_pass(source: Source, tracker: Tracker, frames: int, video_path: Path | None) -> tuple[dict, int]:
    """Mean ms per frame of each stage over one sequential pass; closes the source. (ms, frames)."""
    totals = dict.fromkeys((*STAGE_NAMES, "untimed"), 0.0)
    meter = FpsMeter()
    sink = VideoSink(video_path, source.fps, source.width, source.height) if video_path is not None else None
    n = 0
    try:
        while n < frames:
            t0 = time.perf_counter()
            frame = source.read()
            t1 = time.perf_counter()
            if frame is None:
                break
            result = tracker.step(frame)
            t2 = time.perf_counter()
            totals["read"] += (t1 - t0) * 1000.0
            for key in STAGES:
                totals[key] += result.timings.get(key, 0.0)
            # Tracker bookkeeping outside its timed stages (crop choice, result assembly).
            totals["untimed"] += (t2 - t1) * 1000.0 - sum(result.timings.get(k, 0.0) for k in STAGES)
            if sink is not None:
                image = draw_frame_result(result, fps=meter.tick(t2) or None, latency_ms=(t2 - frame.t_capture) * 1e3)
                t3 = time.perf_counter()
                sink.write(image)
                totals["draw"] += (t3 - t2) * 1000.0
                totals["encode"] += (time.perf_counter() - t3) * 1000.0
            n += 1
    finally:
        if sink is not None:
            sink.close()
        source.close()
    return {k: v / max(1, n) for k, v in totals.items()}, n


def summarize_stages(passes: list[dict], output: bool) -> dict:
    """Median (and min-max) ms per stage over repeated passes; the slowest stage and the fps it allows."""
    names = [k for k in STAGE_NAMES if output or k not in OUTPUT_STAGES]
    ms = {k: _r(np.median([p[k] for p in passes])) for k in (*names, "untimed")}
    slowest = max(names, key=lambda k: ms[k])
    return {"ms": ms, "spread": {k: [_r(min(p[k] for p in passes)), _r(max(p[k] for p in passes))] for k in names},
            "sum_ms": _r(sum(ms[k] for k in (*names, "untimed"))), "slowest": slowest,
            "bound_fps": _r(1000.0 / ms[slowest], 2) if ms[slowest] > 0 else None, "passes": len(passes)}


# ---------------------------------------------------------------- end to end
def end_to_end_run(source: Source, tracker: Tracker, frames: int, threaded: bool, video_path: Path | None) -> dict:
    """One `facetrack video`-style run (runtime.run) over up to `frames` frames; closes the source."""
    video = VideoSink(video_path, source.fps, source.width, source.height) if video_path is not None else None
    cpu0 = cpu_seconds()
    stats = run(source, tracker, video=video, threaded=threaded, max_frames=frames)
    cpu = cpu_seconds() - cpu0
    if stats.interrupted:
        raise Interrupted("benchmark interrupted")
    n = max(1, stats.processed)
    # CPU ms per frame hardly depends on other load: on an idle machine fps <= 1000 * cores / cpu_ms.
    return {"fps": stats.fps, "frames": stats.processed, "wall_s": stats.wall_s, "cpu_ms_per_frame": cpu * 1000.0 / n,
            "latency_p50_ms": stats.latency_ms(50), "latency_p95_ms": stats.latency_ms(95),
            "box_calls": stats.box_calls, "stage_ms": {k: stats.stage_ms.get(k, 0.0) / n for k in STAGES}}


def live_run(source: Source, tracker: Tracker, video_path: Path) -> dict:
    """A threaded live run drawing and writing every output: capture-to-output latency and drops."""
    latencies: list[float] = []

    def after_output(result, stats) -> None:  # called once the frame is drawn and written
        latencies.append((time.perf_counter() - result.frame.t_capture) * 1000.0)

    video = VideoSink(video_path, source.fps, source.width, source.height)
    stats = run(source, tracker, video=video, threaded=True, on_result=after_output)
    if stats.interrupted:
        raise Interrupted("benchmark interrupted")
    lat = np.asarray(latencies or [0.0])
    return {"fps": stats.fps, "frames": stats.processed, "captured": stats.captured, "dropped": stats.dropped,
            "render_start_p50_ms": stats.latency_ms(50), "output_p50_ms": float(np.median(lat)),
            "output_p95_ms": float(np.percentile(lat, 95))}

