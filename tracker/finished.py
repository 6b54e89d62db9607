"""Whether a video's outputs are already complete, for `facetrack video --skip-existing`.

An interrupted or failed run still finalises what it wrote (a playable mp4, whole rows), so the files alone
cannot tell a finished video from a stopped one: a run that finishes a video records each of its outputs
(name and size) in `.facetrack-done` beside them (JSON lines; `record_done`). An output counts as complete
when that record lists it at its current size, and its content says it was finished:

- an `.mp4` opens with PyAV and decodes at least one video frame;
- JSON lines or CSV rows are not empty and end with a newline (each row is written whole).

A video is done when every file output its run would write (not standard output) is complete.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tracker.sinks import is_stdout

__all__ = ["DONE_RECORD", "file_outputs", "job_done", "output_complete", "record_done"]

DONE_RECORD = ".facetrack-done"  # beside the outputs: one JSON line {"name", "size"} per output a run finished


def _recorded(path: Path) -> set[tuple[str, int]]:
    """The (name, size) pairs `.facetrack-done` in `path`'s folder lists (empty when there is none)."""
    try:
        lines = (path.parent / DONE_RECORD).read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    except OSError:
        return set()
    found = set()
    for line in lines:
        try:
            row = json.loads(line)
            found.add((str(row["name"]), int(row["size"])))
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a crash
    return found


def record_done(job) -> None:
    """Record the file outputs of a job that finished its video (`DONE_RECORD` beside each); an output that
    cannot be recorded is simply run again next time."""
    for path in file_outputs(job):
        try:
            row = json.dumps({"name": os.fsdecode(path.name), "size": path.stat().st_size},
                             ensure_ascii=False) + "\n"
            with open(path.parent / DONE_RECORD, "a", encoding="utf-8", errors="surrogateescape") as f:
                f.write(row)
        except OSError:
            continue


def output_complete(path: str | Path) -> bool:
    """True when `path` is a finished output (see the module's doc)."""
    path = Path(path)
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return False
        if (path.name, path.stat().st_size) not in _recorded(path):
            return False
        if path.suffix.lower() == ".mp4":
            return _has_a_frame(path)
        with open(path, "rb") as f:
            f.seek(-1, 2)
            return f.read(1) == b"\n"
    except OSError:
        return False


def _has_a_frame(path: Path) -> bool:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return False
            for _ in container.decode(video=0):
                return True
    except (av.error.FFmpegError, OSError, ValueError):
        return False
    return False


def file_outputs(job) -> list[Path]:
    """The files a video job writes: its --out, --json and --csv that are not standard output."""
    return [Path(p) for p in (job.out, job.json_path, job.csv_path) if p is not None and not is_stdout(p)]


def job_done(job) -> bool:
    """True when the job writes files and all of them are complete already."""
    outputs = file_outputs(job)
    return bool(outputs) and all(output_complete(p) for p in outputs)
