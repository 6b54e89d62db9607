"""What `facetrack video` and `facetrack images` write where, and running several inputs one after another.

Output rules (README "Commands"):

- **No output option** (none of `--out`, `--json`, `--csv`, `--out-dir`): a new run folder is made,
  `runs/track/exp`, then `exp2`, ... (`tracker.outdirs.next_run_folder`; `runs_root`: another place than
  `runs/track`), used as `--out-dir`, and named
  at the end (`results in runs/track/exp2`); `images` also writes `results.jsonl` into it.
- **`video --out-dir DIR`**: for each video, `DIR/NAME.mp4` (annotated) and `DIR/NAME.jsonl`, at the
  video's path relative to the folder above every input (`tracker.inputs.common_base`: a folder given
  keeps its subfolders); names that still clash get `_1`, `_2`, ... Several videos need it (`--out`,
  `--json` and `--csv` name one video's outputs).
- **`images --out-dir DIR`**: annotated copies at the images' relative paths (`ImagesJob.targets`).
- Explicit `--out`, `--json`, `--csv` are written as given; `-` for `--json` or `--csv` is standard output.

Each input is expanded first (`tracker.inputs.expand_inputs`: files, folders, quoted globs, `-` for
paths on standard input). Several videos run one after another, each with its own tracker (ids from
1), with `--jobs N` in N worker processes (`tracker.pool`), or with `--ray` as Ray tasks
(`tracker.ray_pool`, imported only then); a video that fails is named and the others
still run (exit 1 at the end, naming how many failed), and a table of every video ends the run
(`tracker.batch_summary`); `--skip-existing` passes over a video whose outputs are complete
(`tracker.finished`); Ctrl+C stops the whole run, finalising what was written.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from core.errors import FacetrackError, InputError, Interrupted
from core.pathnames import shown
from core.progress import Progress
from tracker.batch_summary import FileResult, summary_lines
from tracker.finished import job_done, record_done
from tracker.inputs import common_base, expand_inputs, list_videos
from tracker.outdirs import mark_output_folder, next_run_folder, remove_if_unused
from tracker.pool import PoolStopped, run_pool
from tracker.ray_pool import RayOptions, run_on_ray
from tracker.session import ImagesJob, VideoJob, run_job
from tracker.sinks import is_stdout
from tracker.sources import is_url
from tracker.sources.synthetic import is_synthetic

Log = Callable[[str], None]
IMAGES_JSON = "results.jsonl"  # the JSON lines of a default `images` run, in its run folder

__all__ = ["IMAGES_JSON", "images_job", "run_images", "run_videos", "table_names", "video_jobs", "video_outputs"]


def _not_a_path(arg: str) -> bool:
    return is_url(arg) or is_synthetic(arg)


def _given(*outputs) -> bool:
    return any(output is not None for output in outputs)


def video_outputs(videos: list[str], out_dir: Path) -> list[tuple[Path, Path]]:
    """(annotated .mp4, JSON lines) in `out_dir` for each video: its path relative to the inputs' common
    folder with the suffix replaced (`clip.mov` -> `clip.mp4`, `clip.jsonl`); a stream URL or synthetic
    spec is named `stream` or `synthetic`; clashes numbered `NAME_1`, `NAME_2`, ... (case-insensitively)."""
    files = [v for v in videos if not _not_a_path(v)]
    base = common_base(files) if files else Path(os.curdir)
    used: set[str] = set()
    planned = []
    for video in videos:
        if _not_a_path(video):
            stem = Path("synthetic" if is_synthetic(video) else "stream")
        else:
            rel = Path(os.path.relpath(os.path.abspath(video), os.path.abspath(base)))
            stem = rel.with_suffix("")
        candidate, n = stem, 1
        while str(candidate).lower() in used:
            candidate, n = stem.with_name(f"{stem.name}_{n}"), n + 1
        used.add(str(candidate).lower())
        target = out_dir / candidate
        planned.append((target.with_name(target.name + ".mp4"), target.with_name(target.name + ".jsonl")))
    return planned


def video_jobs(args: list[str], template: VideoJob, out_dir: Path | None = None,
               runs_root: Path | None = None) -> tuple[list[VideoJob], Path | None]:
    """The jobs of `facetrack video ARGS...` (one per video) from `template` (every other option), and the
    default run folder made for them (None when an output option was given). InputError for a glob that
    matches nothing, a folder without videos, several videos without `--out-dir`, `--out` with `--out-dir`."""
    videos = list_videos(expand_inputs(args, literal=_not_a_path))
    explicit = _given(template.out, template.json_path, template.csv_path)
    if template.out is not None and out_dir is not None:
        raise InputError("--out and --out-dir exclude each other: --out names one video's .mp4, --out-dir a "
                         "folder for each video's .mp4 and .jsonl")
    if len(videos) > 1 and explicit:
        raise InputError(f"{len(videos)} videos: give --out-dir DIR (each video's .mp4 and .jsonl go there) "
                         "instead of --out, --json or --csv, which name one video's outputs")
    run_dir = None
    if not explicit and out_dir is None:
        run_dir = out_dir = next_run_folder(runs_root)
    if out_dir is None:
        return [replace(template, source=videos[0])], None
    planned = video_outputs(videos, out_dir)
    _make_folders(out_dir, [mp4.parent for mp4, _ in planned])
    jobs = [replace(template, source=video, out=mp4, json_path=template.json_path or rows)
            for video, (mp4, rows) in zip(videos, planned)]
    return jobs, run_dir


def _make_folders(out_dir: Path, folders: list[Path]) -> None:
    """`out_dir` (with its parents) and the subfolders of its outputs, `out_dir` marked as an output folder."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out-dir {shown(out_dir)}: cannot make {shown(exc.filename or out_dir)} "
                         f"({exc.strerror or exc})") from None
    mark_output_folder(out_dir)


def run_videos(jobs: list[VideoJob], run_dir: Path | None = None, log: Log = lambda line: None, *,
               workers: int = 1, skip_existing: bool = False, table: Log | None = None,
               ray: RayOptions | None = None) -> None:
    """Run the video jobs: one after another in this process (`workers` 1), in `workers` processes
    (`tracker.pool`, one overall progress bar on a terminal), or with `ray` as Ray tasks (`tracker.ray_pool`,
    even a single one). `skip_existing`: a job whose outputs are all
    complete already (`tracker.finished.job_done`) is skipped. One job run here: its error as it is.
    Otherwise a failed one is reported and the rest run; several videos (or a skipped one) end with the
    summary table (`tracker.batch_summary`, through `table`, default `log`), then FacetrackError (exit 1)
    names how many failed; Ctrl+C stops the run (Interrupted), outputs finalised. A default `run_dir` is
    named at the end, or removed when nothing was written into it."""
    if workers < 1:
        raise InputError(f"--jobs {workers}: give 1 or more worker processes")
    if workers > 1 and len(jobs) > 1 and any(job.show for job in jobs):
        raise InputError(f"--show with --jobs {workers}: a window needs the videos one at a time (--jobs 1)")
    if ray is not None:
        _check_for_ray(jobs, ray)
    started = time.perf_counter()
    results: list[FileResult | None] = [None] * len(jobs)
    if skip_existing:
        for i, job in enumerate(jobs):
            if job_done(job):
                results[i] = FileResult(shown(job.source), "skipped", reason="outputs complete")
    todo = [i for i, r in enumerate(results) if r is None]
    if todo and (ray is not None or (workers > 1 and len(todo) > 1)):
        jobs[todo[0]].models.check()  # the jobs share one ModelOptions: one line now, not one per video
    try:
        if ray is not None and todo:
            _run_in_pool(jobs, todo, results, workers, ray, log=log)
        elif workers > 1 and len(todo) > 1:
            _run_in_pool(jobs, todo, results, workers, log=log)
        else:
            _run_here(jobs, todo, results, log, alone=len(jobs) == 1)
    except PoolStopped as stop:
        for i, result in zip(todo, stop.results):
            results[i] = result
        _show_table(jobs, results, time.perf_counter() - started, table or log)
        raise Interrupted(f"interrupted: {_count(results, 'ok')} of {len(jobs)} videos done; the outputs of "
                          "the stopped ones were finalised") from None
    finally:
        for job, result in zip(jobs, results):  # what finished its video, for a later --skip-existing
            if result is not None and result.status == "ok":
                record_done(job)
        _end_run_folder(run_dir, log)
    done = [r for r in results if r is not None]
    if len(jobs) > 1 or ray is not None or any(r.status == "skipped" for r in done):
        _show_table(jobs, results, time.perf_counter() - started, table or log)
    if ray is not None and len(jobs) == 1 and done and done[0].status == "failed":
        raise FacetrackError(done[0].reason)  # one video: its own reason, as a run here says it
    failed = [r.name for r in done if r.status == "failed"]
    if failed:
        more = f", +{len(failed) - 3} more" if len(failed) > 3 else ""
        others = "; the others were written" if len(failed) < len(done) else ""
        raise FacetrackError(f"{len(failed)} of {len(jobs)} videos failed ({', '.join(failed[:3])}{more}){others}")


def _count(results: list, status: str) -> int:
    return sum(r is not None and r.status == status for r in results)


def _show_table(jobs: list[VideoJob], results: list, wall_s: float, table: Log) -> None:
    """The summary table, each video named by its path below the inputs' common folder."""
    names = table_names([job.source for job in jobs])
    rows = [replace(r, name=name) for r, name in zip(results, names) if r is not None]
    for line in summary_lines(rows, wall_s):
        table(line)


def table_names(videos: list[str]) -> list[str]:
    """How the summary table names each video: its path relative to the folder above every input file
    (`common_base`: `a.mp4`, `sub/b.mp4`); a stream URL or synthetic spec as given."""
    files = [v for v in videos if not _not_a_path(v)]
    base = os.path.abspath(common_base(files)) if files else os.curdir
    return [v if _not_a_path(v) else os.path.relpath(os.path.abspath(v), base) for v in videos]


def _run_here(jobs: list[VideoJob], todo: list[int], results: list, log: Log, alone: bool) -> None:
    """The jobs `todo` one after another in this process, each with its own progress, the models loaded once
    for all of them (one job loads its own, after its inputs are checked); `alone`: the run's only job,
    whose error is raised as it is."""
    models = jobs[todo[0]].models.load(log) if len(todo) > 1 else None  # the jobs share one ModelOptions
    for i in todo:
        job = jobs[i]
        try:
            stats = run_job(job, log=log, models=models)
        except Interrupted:
            raise
        except FacetrackError as exc:
            if alone:
                raise
            log(f"error: {exc}")
            results[i] = FileResult.from_stats(shown(job.source), getattr(exc, "stats", None), "failed", str(exc))
        else:
            results[i] = FileResult.from_stats(shown(job.source), stats)


def _check_for_ray(jobs: list[VideoJob], ray: RayOptions) -> None:
    """InputError for what a Ray task cannot do: show a window, write to this process's standard output;
    and for a single video that is no file here (as a run here says before it starts)."""
    if len(jobs) == 1 and not _not_a_path(jobs[0].source) and not os.path.exists(jobs[0].source):
        raise InputError(f"{shown(jobs[0].source)}: no such file")
    if any(job.show for job in jobs):
        raise InputError(f"--show with {ray.option}: a window needs the videos here, one at a time (leave out "
                         f"{ray.option})")
    for job in jobs:
        for path, option in ((job.json_path, "--json"), (job.csv_path, "--csv")):
            if path is not None and is_stdout(path):
                raise InputError(f"{option} - with {ray.option}: a Ray task's standard output is not this "
                                 "command's; give a file or --out-dir")


def _run_in_pool(jobs: list[VideoJob], todo: list[int], results: list, workers: int,
                 ray: RayOptions | None = None, log: Log = lambda line: None) -> None:
    """The jobs `todo` in `workers` processes, or as Ray tasks with `ray`, with one overall progress display
    (a terminal only); then the models line of the workers' runs (each distinct one once: which precision
    ran where can differ between Ray's machines)."""
    with Progress("videos", len(todo), "video", every_s=0) as progress:
        shown_done = [0]

        def tick(done: int, frames: int) -> None:
            progress.note(f"{frames} frames", refresh=True)
            progress.update(done - shown_done[0])
            shown_done[0] = done

        if ray is not None:
            done = run_on_ray([jobs[i] for i in todo], ray, tick)
        else:
            done = run_pool([jobs[i] for i in todo], workers, tick)
        for i, result in zip(todo, done):
            results[i] = result
    for line in dict.fromkeys(r.models for r in done if r.models):
        log(line)


def images_job(args: list[str], template: ImagesJob, runs_root: Path | None = None
               ) -> tuple[ImagesJob, Path | None]:
    """The job of `facetrack images ARGS...` from `template` (every other option), and the default run folder
    made for it when no output option was given (annotated copies and `results.jsonl` go there)."""
    paths = tuple(expand_inputs(args))
    if _given(template.out_dir, template.json_path, template.csv_path):
        return replace(template, paths=paths), None
    run_dir = next_run_folder(runs_root)
    return replace(template, paths=paths, out_dir=run_dir, json_path=run_dir / IMAGES_JSON), run_dir


def run_images(job: ImagesJob, run_dir: Path | None = None, log: Log = lambda line: None) -> None:
    """`tracker.session.run_job`; a default `run_dir` is named at the end, or removed when it stayed empty."""
    try:
        run_job(job, log=log)
    finally:
        _end_run_folder(run_dir, log)


def _end_run_folder(run_dir: Path | None, log: Log) -> None:
    if run_dir is not None and not remove_if_unused(run_dir):
        log(f"results in {shown(run_dir)}")
