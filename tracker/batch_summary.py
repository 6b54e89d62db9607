"""What became of each video of a `facetrack video` run over several files, and the table shown at its end.

`FileResult` is one video's outcome: frames processed, frames with at least one face (`with_face`), all
faces found (`faces`), its own frames per second, and a status: `ok`, `skipped` (its outputs were complete:
`--skip-existing`), `failed` or `interrupted`, with a reason. `summary_lines` lays them out:

    video        frames  with face    fps  status
    a.mp4            30         30   41.2  ok
    b.mp4             0          0      -  failed: b.mp4: not a video file ...
    all 2 videos     30         30   35.0  1 ok, 1 failed

The total's fps is all frames over the whole run's wall time (what parallel workers achieve together).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

STATUSES = ("ok", "skipped", "failed", "interrupted")

__all__ = ["STATUSES", "FileResult", "summary_lines"]


@dataclass(frozen=True)
class FileResult:
    """One video's outcome (see the module's doc)."""

    name: str
    status: str = "ok"
    frames: int = 0
    with_face: int = 0  # frames with at least one face
    faces: int = 0  # faces found, over all frames
    wall_s: float = 0.0
    reason: str = ""
    models: str = ""  # the run's models line (`tracker.runtime.RunStats.models`); "" when it did not start

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def shown_status(self) -> str:
        return f"{self.status}: {self.reason}" if self.reason and self.status != "ok" else self.status

    @classmethod
    def from_stats(cls, name: str, stats, status: str = "ok", reason: str = "") -> "FileResult":
        """From a `tracker.runtime.RunStats` (None: nothing was processed)."""
        if stats is None:
            return cls(name, status, reason=reason)
        return cls(name, status, stats.processed, stats.with_face, stats.faces, stats.wall_s, reason,
                   getattr(stats, "models", ""))


def _fps(value: float) -> str:
    return f"{value:.1f}" if value > 0 else "-"


def summary_lines(results: list[FileResult], wall_s: float) -> list[str]:
    """The table of `results` (in input order) with a total row; `wall_s`: the whole run's wall time."""
    counts = Counter(r.status for r in results)
    frames = sum(r.frames for r in results)
    total = FileResult(f"all {len(results)} videos", frames=frames, with_face=sum(r.with_face for r in results),
                       faces=sum(r.faces for r in results), wall_s=wall_s,
                       status=", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s]))
    width = max(len("video"), *(len(r.name) for r in [*results, total]))
    head = f"{'video':<{width}}  {'frames':>7}  {'with face':>9}  {'fps':>7}  status"
    rows = [head]
    for r in [*results, total]:
        rows.append(f"{r.name:<{width}}  {r.frames:>7}  {r.with_face:>9}  {_fps(r.fps):>7}  {r.shown_status}")
    return rows
