"""`facetrack video --jobs N`: several videos at once, in N worker processes on this machine.

- **Threads.** Each worker's models get `split_threads(N)` intra-op threads (ONNX Runtime, torch) and as
  many OpenCV threads: the machine's cores shared out, at least one each, so the workers do not fight.
- **Models once per worker.** A worker (a `spawn`ed process) loads the models in its initializer and
  runs every video it is handed with them (`tracker.session.run_job(models=...)`); a loading error is
  kept and becomes each of its videos' failure.
- **Progress.** Workers add each frame to a shared counter; the caller's `on_tick(files_done, frames)`
  is called a few times a second and whenever a video ends (the CLI draws one overall bar from it).
- **Failures.** A video that fails is a `failed` FileResult (the others go on); a worker that dies
  outright (a crash in a decoder) fails the videos it had, and the pool is not used again.
- **Ctrl+C / SIGTERM.** Workers live in their own process group, so only this process gets the
  terminal's signal: it cancels the videos not started and sends each worker one SIGINT, which stops its
  video the way Ctrl+C stops a single run (outputs finalised); those are `interrupted` FileResults,
  and `run_pool` re-raises KeyboardInterrupt once every worker is done.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from typing import Callable

from core.errors import FacetrackError, Interrupted
from core.pathnames import shown
from tracker.batch_summary import FileResult
from tracker.session import run_job

TICK_S = 0.25  # how often the caller's progress is refreshed while videos run

__all__ = ["PoolStopped", "opencv_threads", "run_pool", "split_threads", "video_result"]

# one worker process's state, set by `_init_worker`
_WORKER: dict = {}


def split_threads(workers: int, cores: int | None = None) -> int:
    """Model threads for each of `workers` processes: the cores (default: this machine's) shared out, >= 1."""
    cores = cores if cores is not None else (os.cpu_count() or 1)
    return max(1, cores // max(1, workers))


def _init_worker(models, threads: int, frames, stop, pids) -> None:
    """A worker's start: own process group, signals only while a video runs, the models loaded once."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpgrp()  # the terminal's Ctrl+C goes to the parent, which hands it on once
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)
    _WORKER.update(frames=frames, stop=stop, busy=False, models=None, error=None)
    pids.put(os.getpid())
    opencv_threads(threads)
    try:
        _WORKER["models"] = models.load()  # its threads: the split set on every job's options
    except FacetrackError as exc:
        _WORKER["error"] = str(exc)
    except Exception as exc:  # an unexpected loading error: each video says it, the pool stays usable
        _WORKER["error"] = f"loading the models failed ({type(exc).__name__}: {exc})"


def _on_signal(signum, frame) -> None:
    if _WORKER.get("busy"):
        raise KeyboardInterrupt  # between videos a signal is ignored: the parent cancels what is left


def _count_frame(result, stats) -> None:
    _WORKER["stats"] = stats  # the video's counts so far, for a row when it is interrupted
    frames = _WORKER["frames"]
    with frames.get_lock():
        frames.value += 1


def video_result(job, on_result: Callable, stats_so_far: Callable[[], object], models=None) -> FileResult:
    """Run one video away from the command's own process (a `--jobs` worker, a Ray task) and say what it
    became, every outcome a FileResult: ok; interrupted (Ctrl+C or a cancel: the outputs finalised, the
    counts of `stats_so_far()`); failed (a FacetrackError, or any other exception: a bug or a library error
    is that video's failure, and the worker goes on). `models`: loaded backends to run with (None: the
    job loads its own); `on_result(result, stats)` is called for every frame."""
    name = shown(job.source)
    try:
        stats = run_job(job, models=models, on_result=on_result)
    except (Interrupted, KeyboardInterrupt):
        stats = stats_so_far()
        return FileResult.from_stats(name, stats, "interrupted", "outputs finalised" if stats else "")
    except FacetrackError as exc:
        return FileResult.from_stats(name, getattr(exc, "stats", None), "failed", str(exc))
    except Exception as exc:  # noqa: BLE001
        return FileResult(name, "failed", reason=f"{type(exc).__name__}: {exc}")
    return FileResult.from_stats(name, stats)


def opencv_threads(threads: int) -> None:
    """OpenCV's pool for a process that runs videos with `threads` cores of its own (never fails)."""
    with contextlib.suppress(Exception):
        import cv2

        cv2.setNumThreads(threads)


def _run_one(job) -> FileResult:
    """Run one video in a worker with its loaded models (`video_result`)."""
    if _WORKER["stop"].value:
        return FileResult(shown(job.source), "interrupted", reason="not started")
    if _WORKER.get("error"):
        return FileResult(shown(job.source), "failed", reason=_WORKER["error"])
    _WORKER["busy"], _WORKER["stats"] = True, None
    try:
        return video_result(job, _count_frame, lambda: _WORKER["stats"], models=_WORKER["models"])
    finally:
        _WORKER["busy"] = False


def run_pool(jobs: list, workers: int, on_tick: Callable[[int, int], None] = lambda done, frames: None
             ) -> list[FileResult]:
    """Run the video jobs in `workers` processes (see the module's doc); their FileResults in input order.
    KeyboardInterrupt, after every running video was finalised, when Ctrl+C or SIGTERM stopped it."""
    ctx = multiprocessing.get_context("spawn")
    workers = max(1, min(workers, len(jobs)))
    threads = split_threads(workers)
    frames, stop, pids = ctx.Value("q", 0), ctx.Value("b", 0), ctx.Queue()
    jobs = [replace(job, models=replace(job.models, threads=threads)) for job in jobs]
    results: list[FileResult | None] = [None] * len(jobs)
    executor = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                   initargs=(jobs[0].models, threads, frames, stop, pids))
    futures: dict[Future, int] = {}
    interrupted = False
    try:
        try:
            for i, job in enumerate(jobs):
                futures[executor.submit(_run_one, job)] = i
        except BrokenProcessPool:  # a worker died already: the videos not handed out fail below
            pass
        except KeyboardInterrupt:
            interrupted = _stop(stop, pids, [])
        pending = set(futures)
        while pending:
            try:
                done, pending = wait(pending, timeout=TICK_S, return_when=FIRST_COMPLETED)
                for future in done:
                    results[futures[future]] = _outcome(future, jobs[futures[future]])
                on_tick(sum(r is not None for r in results), frames.value)
            except KeyboardInterrupt:
                if interrupted:
                    continue  # a second Ctrl+C: the workers are finalising already
                interrupted = _stop(stop, pids, pending)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        pids.close()
    for future, i in futures.items():
        if results[i] is None:
            results[i] = _outcome(future, jobs[i])
    unsent = ("interrupted", "not started") if interrupted else ("failed", "not started: a worker process died")
    results = [r or FileResult(shown(job.source), *unsent) for r, job in zip(results, jobs)]
    if interrupted:
        raise PoolStopped(results)
    return results  # type: ignore[return-value]


class PoolStopped(KeyboardInterrupt):
    """Ctrl+C stopped the pool; `results` says what each video became."""

    def __init__(self, results: list[FileResult]) -> None:
        super().__init__()
        self.results = results


def _outcome(future: Future, job) -> FileResult:
    name = shown(job.source)
    if future.cancelled() or not future.done():
        return FileResult(name, "interrupted", reason="not started")
    try:
        return future.result()
    except BrokenProcessPool:
        return FileResult(name, "failed", reason="its worker process died (a crash while decoding or tracking?)")
    except Exception as exc:
        return FileResult(name, "failed", reason=f"{type(exc).__name__}: {exc}")


def _stop(stop, pids, pending) -> bool:
    """Ctrl+C: no new video starts, those queued are cancelled, each worker gets one SIGINT; True."""
    stop.value = 1
    for future in pending:
        future.cancel()
    _signal_workers(pids)
    return True


def _signal_workers(pids) -> None:
    """One SIGINT to each worker that said it started."""
    while True:
        try:
            pid = pids.get_nowait()
        except Exception:
            break
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGINT)
