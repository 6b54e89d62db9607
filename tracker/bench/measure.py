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



# ---------------------------------------------------------------- frame by frame (many faces)
class BatchSizes:
    """A landmark backend that records the batch size of every call; everything else is the wrapped one's."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name, self.meta = inner.name, inner.meta
        self.sizes: list[int] = []

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.sizes.append(len(batch))
        return self.inner.predict(batch)


# Per-frame stage names of `frame_pass`: read/decode, the tracker's stages under their own names but
# "detector" for "box_model" (the face detector's model), and "other" (tracker bookkeeping outside its
# timed stages). The detector's letterbox is in "preprocess" and its decoding in "postprocess", with
# the landmark crops' and points'.
FRAME_STAGES = ("read", "preprocess", "detector", "landmark_model", "postprocess", "other")
_STAGE_OF = {"box_model": "detector"}


def frame_pass(source: Source, tracker: Tracker, frames: int, batches: BatchSizes | None = None) -> dict:
    """One sequential pass of read + `Tracker.step` over up to `frames` frames, every frame timed; closes
    the source. Returns lists with one value per frame: "ms" (read + step), "faces" (found), "detected"
    (the detector ran), "batch" (the largest landmark batch of the frame, 0 without a call; needs
    `batches`, the tracker's landmark backend) and "calls" (landmark-model calls), plus "stage_ms"
    (FRAME_STAGES -> total ms) and "detector_runs" (the detector's model runs, re-runs included)."""
    totals = dict.fromkeys(FRAME_STAGES, 0.0)
    per_frame: dict[str, list] = {"ms": [], "faces": [], "detected": [], "batch": [], "calls": []}
    runs0 = tracker.box_calls
    try:
        while len(per_frame["ms"]) < frames:
            seen = len(batches.sizes) if batches is not None else 0
            t0 = time.perf_counter()
            frame = source.read()
            t1 = time.perf_counter()
            if frame is None:
                break
            result = tracker.step(frame)
            t2 = time.perf_counter()
            totals["read"] += (t1 - t0) * 1000.0
            for key in STAGES:
                totals[_STAGE_OF.get(key, key)] += result.timings.get(key, 0.0)
            totals["other"] += (t2 - t1) * 1000.0 - sum(result.timings.get(k, 0.0) for k in STAGES)
            sizes = batches.sizes[seen:] if batches is not None else []
            per_frame["ms"].append((t2 - t0) * 1000.0)
            per_frame["faces"].append(len(result.faces))
            per_frame["detected"].append(bool(result.detected))
            per_frame["batch"].append(max(sizes, default=0))
            per_frame["calls"].append(len(sizes))
    finally:
        source.close()
    return {**per_frame, "stage_ms": totals, "detector_runs": tracker.box_calls - runs0}


def summarize_frames(passes: list[dict]) -> dict:
    """What repeated `frame_pass`es over one clip give: frame ms (median, mean, p90 over every frame of
    every pass), fps from the median frame and of whole passes (median, min-max over passes), mean ms
    per frame of each stage, faces per frame, landmark batches and calls, detector runs per frame."""
    ms = np.concatenate([np.asarray(p["ms"], np.float64) for p in passes])
    n = max(1, ms.size)
    faces = np.concatenate([np.asarray(p["faces"], np.float64) for p in passes])
    batch = np.concatenate([np.asarray(p["batch"], np.float64) for p in passes])
    calls = sum(sum(p["calls"]) for p in passes)
    median = float(np.median(ms)) if ms.size else 0.0
    clip_fps = [len(p["ms"]) * 1000.0 / sum(p["ms"]) for p in passes if p["ms"] and sum(p["ms"]) > 0]
    return {
        "frames": int(ms.size), "passes": len(passes),
        "ms_per_frame": {"median": _r(median), "mean": _r(ms.mean() if ms.size else 0.0),
                         "p90": _r(np.percentile(ms, 90) if ms.size else 0.0)},
        "fps": _r(1000.0 / median, 2) if median > 0 else None,
        "fps_clip": spread(clip_fps, 2) if clip_fps else None,
        "stage_ms": {k: _r(sum(p["stage_ms"][k] for p in passes) / n) for k in FRAME_STAGES},
        "faces_per_frame": {"mean": _r(faces.mean() if faces.size else 0.0, 3),
                            "min": int(faces.min()) if faces.size else 0, "max": int(faces.max()) if faces.size else 0},
        "landmark_batch": {"median": _r(np.median(batch) if batch.size else 0.0, 1),
                           "mean": _r(batch.mean() if batch.size else 0.0, 3),
                           "max": int(batch.max()) if batch.size else 0},
        "landmark_calls_per_frame": _r(calls / n, 3),
        "detector_frames_share": _r(sum(sum(p["detected"]) for p in passes) / n, 3),
        "detector_runs_per_frame": _r(sum(p["detector_runs"] for p in passes) / n, 3),
    }

