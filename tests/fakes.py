"""Faulty sources for the tests: a synthetic camera that stops delivering, or whose read hangs.

Fault injection is test code, not runtime code: `FaultySyntheticSource` adds `stall_after` and
`hang_after` to the bench's synthetic face, and `faulty_camera_opener` makes `facetrack webcam`
open it for `synthetic?...` specs (`tests/faulty_cli.py` runs the real CLI that way).
"""

from __future__ import annotations

from typing import Callable

from core.errors import InputError
from tracker.bench.synthetic import SyntheticSource, is_synthetic, synthetic_options
from tracker.sources import NO_FRAME, Source

FAULTS = {"stall_after": int, "hang_after": int}


class FaultySyntheticSource(SyntheticSource):
    """The synthetic face, with a fault after N frames.

    `stall_after=N`: a live source stops delivering after N frames, like an unplugged camera (retried,
    then SourceStalled). `hang_after=N`: its read blocks after N frames, like a stuck driver, until the
    source is closed or 10 s pass (as V4L2's select timeout does, so even a sequential run ends); the
    threaded runtime's watchdog gives up sooner. A file-like source just ends there.
    """

    def __init__(self, *args, stall_after: int | None = None, hang_after: int | None = None, **kwargs) -> None:
        if (stall_after is not None and stall_after < 1) or (hang_after is not None and hang_after < 1):
            raise InputError("synthetic source: stall_after and hang_after must be at least 1")
        self.stall_after, self.hang_after = stall_after, hang_after  # before the first frame is read
        super().__init__(*args, **kwargs)

    def _grab(self):
        index = self._index
        if index < self.frame_count:
            if self.hang_after is not None and index >= self.hang_after:
                if self._closed.wait(max(10.0, 5 * self.stall_timeout_s)):
                    return None
                return NO_FRAME if self.live else None
            if self.stall_after is not None and index >= self.stall_after:
                return NO_FRAME if self.live else None
        return super()._grab()


def open_faulty(spec: str, live: bool = False) -> FaultySyntheticSource:
    """`synthetic?...&stall_after=N&hang_after=N`: the synthetic options plus the faults."""
    options = synthetic_options(spec, extra=FAULTS)
    options.setdefault("live", live)
    return FaultySyntheticSource(**options)


def faulty_camera_opener(real: Callable[..., Source]) -> Callable[..., Source]:
    """`tracker.session.open_camera_input` that opens synthetic specs as faulty sources, the rest as `real`."""

    def open_camera_input(camera: str, width: int | None = None, height: int | None = None,
                          fps: float | None = None) -> Source:
        text = str(camera).strip()
        return open_faulty(text, live=True) if is_synthetic(text) else real(camera, width, height, fps)

    return open_camera_input
