"""Whether a video's outputs are already complete, for `facetrack video --skip-existing`.

An output counts as complete when the file exists under its own name (outputs are written as `.NAME.part`
and renamed when finished: `tracker.outfile`) and its content says it was finished:

- an `.mp4` opens with PyAV and decodes at least one video frame;
- JSON lines or CSV rows are not empty and end with a newline (each row is written whole).

A video is done when every file output its run would write (not standard output) is complete.
"""

from __future__ import annotations

from pathlib import Path

from tracker.sinks import is_stdout

__all__ = ["file_outputs", "job_done", "output_complete"]


def output_complete(path: str | Path) -> bool:
    """True when `path` is a finished output (see the module's doc)."""
    path = Path(path)
    try:
        if not path.is_file() or path.stat().st_size == 0:
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
