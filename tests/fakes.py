"""Faulty sources for the tests: a synthetic camera that stops delivering, or whose read hangs.

Fault injection is test code, not runtime code: `FaultySyntheticSource` adds `stall_after` and
`hang_after` to the bench's synthetic face, and `faulty_camera_opener` makes `facetrack webcam`
open it for `synthetic?...` specs (`tests/faulty_cli.py` runs the real CLI that way).
"""

from __future__ import annotations

from typing import Callable

from core.errors import InputError
from tracker.sources import DEFAULT_STALL_TIMEOUT_S, NO_FRAME, Source
from tracker.sources.synthetic import SyntheticSource, is_synthetic, synthetic_options

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
                          fps: float | None = None, stall_timeout_s: float = DEFAULT_STALL_TIMEOUT_S) -> Source:
        text = str(camera).strip()
        if not is_synthetic(text):
            return real(camera, width, height, fps, stall_timeout_s)
        source = open_faulty(text, live=True)
        source.stall_timeout_s = stall_timeout_s
        return source

    return open_camera_input


class PacedCapture:
    """A cv2.VideoCapture stand-in for a camera that runs from the moment it is made, at `fps`.

    `read()` waits for the camera's next frame, like a real camera, and returns it with the camera's
    frame number written in its pixels (`frame_number` reads it back, also after mp4 compression); a
    read that comes late gets the newest frame (the ones in between were never kept). `captured[n]`
    is the perf_counter() time frame n was taken. `block_after=N`: from frame N on, reads block until
    `unblock` is set (a network stream gone silent), and `release()` notes if it came while a read was
    in progress (`released_during_read`), which on a real capture is a use-after-free.
    """

    def __init__(self, fps: float = 50.0, size: tuple[int, int] = (96, 64), block_after: int | None = None) -> None:
        import threading
        import time

        self.fps, self.size, self.block_after = fps, size, block_after
        self.t0 = time.perf_counter()
        self.captured: dict[int, float] = {}
        self.unblock = threading.Event()
        self.blocked = threading.Event()  # a read is waiting in block_after
        self.reading = False
        self.released = 0
        self.released_during_read = False
        self._last = -1

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return True

    def get(self, prop) -> float:
        import cv2

        return self.fps if prop == cv2.CAP_PROP_FPS else 0.0

    def read(self):
        import time

        import numpy as np

        self.reading = True
        try:
            number = max(self._last + 1, int((time.perf_counter() - self.t0) * self.fps))
            if self.block_after is not None and number >= self.block_after:
                self.blocked.set()
                self.unblock.wait(30)
                return False, None
            time.sleep(max(0.0, self.t0 + number / self.fps - time.perf_counter()))
            self._last = number
            self.captured[number] = time.perf_counter()
            image = np.zeros((self.size[1], self.size[0], 3), np.uint8)
            image[:, : self.size[0] // 2] = (number % 16) * 16 + 8
            image[:, self.size[0] // 2:] = (number // 16 % 16) * 16 + 8
            return True, image
        finally:
            self.reading = False

    def release(self) -> None:
        self.released_during_read |= self.reading
        self.released += 1


def frame_number(image) -> int:
    """The camera frame number `PacedCapture` wrote into an image (0..255)."""
    width = image.shape[1]
    low = int(round((float(image[:, : width // 4].mean()) - 8) / 16))
    high = int(round((float(image[:, 3 * width // 4:].mean()) - 8) / 16))
    return high * 16 + low
