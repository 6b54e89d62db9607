"""`facetrack video --ray` / `--ray-address ADDR`: several videos as Ray tasks, on this machine or a cluster.

Ray is optional (`pip install 'facetrack[ray]'`); it is imported only here, and only when a run asks for it
(`require_ray`, `run_on_ray`). Ray does the scheduling; this module only submits, waits and collects.

- **Connecting.** `--ray`: `ray.init()` as it is by default (the cluster `RAY_ADDRESS` or a `ray start` on
  this machine names, else a new local instance, shut down again at the end); `--ray-address ADDR`:
  that cluster (`auto`, `HOST:6379`, or `ray://HOST:10001`, which needs `pip install 'ray[client]'`); a
  `HOST:PORT` where nothing answers is said at once (Ray would retry for minutes). A cluster with Ray's token
  authentication joined at an explicit address needs `RAY_AUTH_MODE=token` (and the token) in the
  environment, as every Ray client does. A process that has Ray initialised already (a notebook, a test)
  keeps its connection.
- **One task per video.** Each video is one task (`num_cpus` = `--ray-cpus-per-task`, default 1)
  running `tracker.session.run_job` on its `VideoJob`, as a `tracker.pool` worker does, and returning the
  same `FileResult`. Plain tasks, not actors: a task loads the models itself (a few hundred ms, small
  against a video), so Ray is free to place every video on any node with CPUs free, and no pool of
  long-lived actors has to be sized, fed and torn down here (that would be a scheduler of our own). The
  models' intra-op threads (ONNX Runtime, torch) and OpenCV's threads are the task's CPUs.
- **Paths.** Every path of a job is made absolute before it is sent, and the task writes its outputs
  itself, where the user pointed them (`--out-dir`). On a cluster of several machines the inputs, the
  output folder (and `--weights`, if given) must be on a file system shared by every node, at the same
  path, and facetrack must be installed on every node; the `--skip-existing` records
  (`tracker.finished`) are read and written by this process, beside the outputs.
- **Progress.** Videos done, and frames so far: each task adds its frames to a small counter actor
  (no CPU of its own) at most a few times a second.
- **Failures.** A video that fails is a `failed` FileResult, the others go on; a task that dies (its
  worker crashed, its node was lost) fails its video, and is not retried (`max_retries=0`: a re-run with
  `--skip-existing` does what is missing).
- **Ctrl+C.** Every unfinished task is cancelled (`ray.cancel`): those not started never run, a running
  one gets KeyboardInterrupt and stops its video the way Ctrl+C stops a single run (outputs finalised);
  once all have answered, `tracker.pool.PoolStopped` carries the results (the CLI exits 130).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from core.errors import FacetrackError, InputError
from core.pathnames import shown
from tracker.batch_summary import FileResult
from tracker.pool import PoolStopped, opencv_threads, video_result
from tracker.sinks import is_stdout

TICK_S = 0.25  # how often the caller's progress is refreshed while videos run
PUSH_S = 0.5  # how often a task adds its frames to the counter
CONNECT_TIMEOUT_S = 5.0  # the reachability check of a --ray-address HOST:PORT

__all__ = ["RayOptions", "absolute_job", "require_ray", "run_on_ray"]


@dataclass(frozen=True)
class RayOptions:
    """Where the tasks run: `address` None is `ray.init()`'s default; `cpus_per_task` CPUs each."""

    address: str | None = None
    cpus_per_task: int = 1

    @property
    def option(self) -> str:
        """The option that asked for Ray, for messages."""
        return "--ray" if self.address is None else "--ray-address"


def require_ray(option: str = "--ray"):
    """The `ray` module; InputError (exit 2) naming the extra to install when it cannot be imported."""
    try:
        import ray
    except ImportError:
        raise InputError(f"{option} needs Ray: pip install 'facetrack[ray]'") from None
    return ray


def _absolute(path: Path | None) -> Path | None:
    if path is None or is_stdout(path):
        return path
    return Path(os.path.abspath(path))


def absolute_job(job):
    """The job with every path absolute (a Ray worker's working folder is not this process's); a source that
    is no file here (a stream URL, a synthetic spec, a missing file) is sent as it is."""
    source = os.path.abspath(job.source) if os.path.exists(job.source) else job.source
    models = replace(job.models, weights=_absolute(job.models.weights))
    return replace(job, source=source, out=_absolute(job.out), json_path=_absolute(job.json_path),
                   csv_path=_absolute(job.csv_path), models=models)


class _Frames:
    """The run's frame counter (a Ray actor): tasks add, the caller reads."""

    def __init__(self) -> None:
        self.total = 0

    def add(self, n: int) -> None:
        self.total += n

    def read(self) -> int:
        return self.total


class _FramePusher:
    """A task's frames, added to the counter actor at most every PUSH_S seconds (and at the end)."""

    def __init__(self, counter) -> None:
        self.counter, self.unsent, self.stats, self.last = counter, 0, None, time.monotonic()

    def __call__(self, result, stats) -> None:
        self.stats, self.unsent = stats, self.unsent + 1
        if time.monotonic() - self.last >= PUSH_S:
            self.flush()

    def flush(self) -> None:
        if self.unsent and self.counter is not None:
            with contextlib.suppress(Exception):  # progress only: never a video's failure
                self.counter.add.remote(self.unsent)
        self.unsent, self.last = 0, time.monotonic()


def _run_task(job, cpus: int, counter) -> FileResult:
    """One video in a Ray task (see the module's doc; `tracker.pool.video_result`), the task's CPUs as the
    models' and OpenCV's threads."""
    opencv_threads(cpus)
    frames = _FramePusher(counter)
    try:
        return video_result(replace(job, models=replace(job.models, threads=cpus)), frames, lambda: frames.stats)
    finally:
        frames.flush()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextlib.contextmanager
def _connected(ray, options: RayOptions):
    """Ray initialised for the run: joined or started as `options` say, and shut down after when this
    function started it (a process that had Ray initialised keeps it)."""
    if ray.is_initialized():
        yield
        return
    _check_reachable(options)
    try:
        ray.init(address=options.address, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):  # what ray.init had started already
            ray.shutdown()
        raise
    except Exception as exc:
        where = "a local Ray instance" if _address(options) is None else _address(options)
        auth = ("; a cluster with Ray's token authentication needs RAY_AUTH_MODE=token (and its token) here"
                if "auth" in str(exc).lower() or _address(options) else "")
        raise FacetrackError(f"{options.option}: cannot start or join {where} ({_first_line(exc)}){auth}") from None
    try:
        _check_cpus(ray, options)
        yield
    finally:
        with contextlib.suppress(Exception):
            ray.shutdown()


def _address(options: RayOptions) -> str | None:
    """The cluster address the run joins: --ray-address, else RAY_ADDRESS (None: Ray's own lookup)."""
    return options.address or os.environ.get("RAY_ADDRESS") or None


def _check_cpus(ray, options: RayOptions) -> None:
    """InputError when no node could give a task its --ray-cpus-per-task (Ray would wait for ever)."""
    try:
        most = max((node.get("Resources", {}).get("CPU", 0.0) for node in ray.nodes() if node.get("Alive")),
                   default=None)
    except Exception:  # noqa: BLE001 - no answer: leave it to Ray
        return
    if most is not None and options.cpus_per_task > most:
        raise InputError(f"--ray-cpus-per-task {options.cpus_per_task}: the largest node of the Ray cluster "
                         f"has {most:g} CPUs, so no video could start; give at most {most:g}")


def _check_reachable(options: RayOptions) -> None:
    """FacetrackError at once when nothing answers at a `HOST:PORT` or `ray://HOST:PORT` address (Ray
    itself retries for minutes)."""
    address = _address(options) or ""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # None, auto, local: Ray's own lookup
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        given = f"--ray-address {address}" if options.address else f"RAY_ADDRESS={address}"
        raise FacetrackError(f"{given}: nothing answers at {host}:{port} "
                             f"({exc.strerror or exc}); is the Ray cluster up (ray start --head) and this its "
                             "address (HOST:6379, or ray://HOST:10001 for Ray Client)?") from None


def run_on_ray(jobs: list, options: RayOptions, on_tick: Callable[[int, int], None] = lambda done, frames: None
               ) -> list[FileResult]:
    """Run the video jobs as Ray tasks (see the module's doc); their FileResults in input order.
    `on_tick(videos_done, frames)` a few times a second. PoolStopped (a KeyboardInterrupt) after Ctrl+C,
    once every task was cancelled or finished."""
    ray = require_ray(options.option)
    cpus = max(1, int(options.cpus_per_task))
    with _connected(ray, options):
        task = ray.remote(_run_task).options(num_cpus=cpus, max_retries=0)
        counter = None
        with contextlib.suppress(Exception):  # no counter: the progress counts videos only
            counter = ray.remote(_Frames).options(num_cpus=0).remote()
        refs: dict = {}
        results: list[FileResult | None] = [None] * len(jobs)
        interrupted = False
        try:
            for i, job in enumerate(jobs):
                refs[task.remote(absolute_job(job), cpus, counter)] = i
        except KeyboardInterrupt:
            interrupted = _cancel(ray, refs)
        pending = list(refs)
        frames = 0
        while pending:
            try:
                done, pending = ray.wait(pending, num_returns=1, timeout=TICK_S)
                for ref in done:
                    results[refs[ref]] = _outcome(ray, ref, jobs[refs[ref]])
                frames = _frames(ray, counter, frames)
                on_tick(sum(r is not None for r in results), frames)
            except KeyboardInterrupt:
                if not interrupted:  # a second Ctrl+C: the tasks are finalising already
                    interrupted = _cancel(ray, pending)
        if counter is not None:
            with contextlib.suppress(Exception):
                ray.kill(counter)
    unsent = ("interrupted", "not started") if interrupted else ("failed", "not submitted to Ray")
    # named as given (a task names its video by the absolute path it was sent)
    results = [replace(r, name=shown(job.source), reason=_as_given(r.reason, job)) if r
               else FileResult(shown(job.source), *unsent) for r, job in zip(results, jobs)]
    if interrupted:
        raise PoolStopped(results)
    return results  # type: ignore[return-value]


def _as_given(reason: str, job) -> str:
    """A task's reason with the absolute paths it was sent (`absolute_job`) named as the user gave them."""
    sent = absolute_job(job)
    for given, absolute in ((job.source, sent.source), (job.models.weights, sent.models.weights),
                            (job.out, sent.out), (job.json_path, sent.json_path), (job.csv_path, sent.csv_path)):
        if given is not None and str(absolute) != str(given):
            reason = reason.replace(shown(absolute), shown(given))
    return reason


def _frames(ray, counter, last: int) -> int:
    """The counter's frames so far (`last` when it cannot say now)."""
    if counter is None:
        return last
    try:
        return int(ray.get(counter.read.remote(), timeout=1.0))
    except KeyboardInterrupt:
        raise
    except Exception:
        return last


def _cancel(ray, refs) -> bool:
    """Ctrl+C: every unfinished task cancelled (a running one gets KeyboardInterrupt); True."""
    for ref in refs:
        with contextlib.suppress(Exception):
            ray.cancel(ref)
    return True


def _outcome(ray, ref, job) -> FileResult:
    """A finished task's FileResult; a task that was cancelled before it ran, or that died, as one."""
    name = shown(job.source)
    try:
        return ray.get(ref)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        kind = type(exc).__name__
        if kind == "TaskCancelledError":
            return FileResult(name, "interrupted", reason="not started")
        cancelled = getattr(getattr(ray, "exceptions", None), "TaskCancelledError", None)
        if cancelled is not None and isinstance(exc, cancelled):
            # RayTaskError(TaskCancelledError): cancelled in its worker before the task's own handler ran
            return FileResult(name, "interrupted", reason="cancelled as it started")
        return FileResult(name, "failed", reason=f"its Ray task died ({kind}: {_first_line(exc)})")
