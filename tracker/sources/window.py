"""A part of another source: frames from `start_s` to `end_s` (presentation time), every `stride`-th,
at most `max_frames` (`facetrack video --start/--end/--stride/--max-frames`).

Times are the frames' own presentation times (`Frame.t_ms`: a file's pts, which may not start at 0),
so `--start 2 --end 5` keeps the frames shown from 2 s up to, not including, 5 s. The stride counts
frames inside that window: the first one in it is kept, then every `stride`-th after it. Frames keep
their index and time in the whole source (JSON rows say which frames of the file they are). Reading
stops at the first frame at or after `end_s`, or once `max_frames` frames were delivered: the rest of
the file is not decoded.
"""

from __future__ import annotations

import math

from core.errors import InputError
from core.frame import Frame
from tracker.sources.base import Source

__all__ = ["FrameWindow", "check_window"]


def check_window(start_s: float | None = None, end_s: float | None = None, stride: int = 1,
                 max_frames: int | None = None) -> None:
    """InputError for a window that cannot hold a frame: a negative or non-finite time, `end_s` not after
    `start_s`, a stride or frame limit under 1."""
    for option, value in (("--start", start_s), ("--end", end_s)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise InputError(f"{option} {value:g}: give seconds, 0 or more")
    if start_s is not None and end_s is not None and end_s <= start_s:
        raise InputError(f"--end {end_s:g} must come after --start {start_s:g} (seconds)")
    if stride < 1:
        raise InputError(f"--stride {stride}: give 1 (every frame) or more")
    if max_frames is not None and max_frames < 1:
        raise InputError(f"--max-frames {max_frames}: give 1 or more")


class FrameWindow(Source):
    """The frames of `inner` in [start_s, end_s) seconds of presentation time, every `stride`-th of them,
    at most `max_frames` (None: no bound). Raises InputError (`check_window`) for an impossible window and
    when no frame of `inner` falls in it; `read()` raises what `inner.read()` raises. Closing it closes
    `inner`."""

    def __init__(self, inner: Source, start_s: float | None = None, end_s: float | None = None,
                 stride: int = 1, max_frames: int | None = None) -> None:
        check_window(start_s, end_s, stride, max_frames)
        super().__init__()
        self.inner = inner
        self.kind, self.live = inner.kind, inner.live
        self.stall_timeout_s = inner.stall_timeout_s
        self.fps = inner.fps / stride
        self.start_ms = None if start_s is None else start_s * 1000.0
        self.end_ms = None if end_s is None else end_s * 1000.0
        self.stride, self.max_frames = int(stride), max_frames
        self._seen = 0  # frames inside the time window so far (the stride counts them)
        self.frame_count = self._expected(inner.frame_count, inner.fps)
        try:
            self._prime()
        except BaseException:
            inner.close()
            raise

    def _expected(self, total: int | None, fps: float) -> int | None:
        """About how many frames the window delivers (the progress bar's total); None when unknown."""
        if total is None:
            return self.max_frames
        if fps and fps > 0:
            first = 0 if self.start_ms is None else int(math.ceil(self.start_ms * fps / 1000.0))
            last = total if self.end_ms is None else min(total, int(math.ceil(self.end_ms * fps / 1000.0)))
            total = max(0, last - first)
        total = int(math.ceil(total / self.stride))
        return total if self.max_frames is None else min(total, self.max_frames)

    def describe_input(self) -> str:
        return self.inner.describe_input()

    def window_text(self) -> str:
        """'from 2 s to 5 s, every 3rd frame, at most 10 frames' (what narrows the source), '' for all of it."""
        parts = []
        if self.start_ms is not None:
            parts.append(f"from {self.start_ms / 1000.0:g} s")
        if self.end_ms is not None:
            parts.append(f"to {self.end_ms / 1000.0:g} s")
        if self.stride > 1:
            parts.append(f"every {_ordinal(self.stride)} frame")
        if self.max_frames is not None:
            parts.append(f"at most {self.max_frames} frames")
        return ", ".join(parts)

    def describe(self) -> str:
        window = self.window_text()
        return f"{self.inner.describe()}; {window}" if window else self.inner.describe()

    def _no_first_frame(self) -> str:
        return f"no frame {self.window_text()} (the video has none there)"

    def _grab(self) -> Frame | None:
        if self.max_frames is not None and self._index >= self.max_frames:
            return None
        while True:
            frame = self.inner.read()
            if frame is None:
                return None
            if self.start_ms is not None and frame.t_ms < self.start_ms:
                continue
            if self.end_ms is not None and frame.t_ms >= self.end_ms:
                return None
            self._seen += 1
            if (self._seen - 1) % self.stride == 0:
                self._index += 1
                return frame

    def start(self) -> None:
        self.inner.start()
        super().start()

    def cancel(self) -> None:
        self.inner.cancel()
        super().cancel()

    def close(self) -> None:
        self.inner.cancel()  # a read waiting inside `inner` gives up; the reader then releases both
        super().close()

    def _release(self) -> None:
        self.inner.close()


def _ordinal(n: int) -> str:
    """2nd, 3rd, 4th, 11th, 21st, ..."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
