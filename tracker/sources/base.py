"""The base of every source: `Source` (read, iterate, close; retrying a silent live source), its errors.

Every source reads its first frame when it is opened, so a bad source fails fast with one clear
InputError instead of an empty run. `read()` returns the next `Frame` or None at the end.

Failures after the first frame are `SourceError`s (exit 1) raised by `read()`, after every frame
before them was delivered: a video whose frames stop decoding before its announced end raises
`DecodeError`; a live source (camera, stream) that stops delivering is retried for
`stall_timeout_s` seconds (reopened once halfway) and then raises `SourceStalled`.

A live source's frame read at open is stale by the time the models have loaded: `start()`, called by
the runtime when the pipeline starts, drops it and restarts the source's clock and frame numbers, so
the first frame tracked (and recorded) is one captured after the pipeline was ready.

Stopping a source never races its reader: `close()` from another thread while a `read()` is inside
the device (a network stream that went silent, a stuck driver) only marks the source closed, and the
reading thread releases the device when its read returns. A read that never returns keeps the device
referenced from that thread's stack, so it is never freed under it, not even at interpreter exit.

A kind of source subclasses `Source` and implements `_grab()`: the next Frame, None at the end, or
NO_FRAME when a live device gave nothing this time; and `_release()`: free the device or file.
"""

from __future__ import annotations

import threading
import time

from core.errors import FacetrackError, InputError
from core.frame import Frame

DEFAULT_FPS = 30.0
DEFAULT_STALL_TIMEOUT_S = 3.0  # a live source silent this long has stopped
RETRY_S = 0.05  # pause between reads of a live source that gave no frame


class SourceError(FacetrackError):
    """A source that failed after delivering frames (exit 1): what came before it is kept."""


class DecodeError(SourceError):
    """A video file whose frames stop decoding before its announced end."""


class SourceStalled(SourceError):
    """A live source (camera, stream) that stopped delivering frames."""


NO_FRAME = object()  # what `_grab` returns when a live read gave nothing this time (retried); None: the end


class Source:
    """Base of all sources: iterate, or `read()` until None; `close()` releases the device or file."""

    kind = "source"
    live = False  # live sources run in real time: keep only the newest frame, drop the rest
    fps = DEFAULT_FPS
    frame_count: int | None = None  # expected number of frames when known
    skipped = 0  # unreadable inputs passed over (image sources)
    stall_timeout_s = DEFAULT_STALL_TIMEOUT_S  # live sources: give up after this long without a frame

    def __init__(self) -> None:
        self._pending: Frame | None = None
        self._index = 0
        self._t0 = time.perf_counter()
        self._clock0: float | None = None  # live: perf_counter() s of the first frame since open or start()
        self._primed = False  # the frame read at open arrived: a later failed read is not bad input
        self._closed = threading.Event()
        self._io_lock = threading.Lock()  # guards _reading / _released against close() from another thread
        self._reading = False  # a read() is inside the device now
        self._released = False
        self.width = 0
        self.height = 0
        self.reopened = 0  # live sources: times the device was reopened after it stopped delivering

    def describe(self) -> str:
        """One line saying what the source is and what it delivers."""
        return f"{self.kind}: {self.width}x{self.height} @ {self.fps:g} fps"

    def _prime(self) -> None:
        # The first frame is read here, synchronously, so a bad source fails when it is opened.
        first = self._next()
        if first is None:
            raise InputError(f"{self.describe_input()}: {self._no_first_frame()}")
        self.height, self.width = first.image.shape[:2]
        self._pending = first
        self._primed = True

    def _no_first_frame(self) -> str:
        """Why a source that gave no first frame is refused (the end of its InputError)."""
        return "no frame could be read"

    def start(self) -> None:
        """The pipeline starts now. A live source drops the frame it read at open (captured before the
        models loaded: a stale picture with an old capture time) and restarts its clock and frame
        numbers, so the first frame delivered is fresh, frame 0 at t_ms 0. Files keep every frame."""
        if not self.live or self._pending is None:
            return
        self._pending = None
        self._index = 0
        self._clock0 = None

    def live_t_ms(self, t_capture: float) -> float:
        """Live sources: ms from the first frame since open (or `start()`) to `t_capture` (perf_counter s)."""
        if self._clock0 is None:
            self._clock0 = t_capture
        return (t_capture - self._clock0) * 1000.0

    def describe_input(self) -> str:
        return self.kind

    @property
    def delivered(self) -> int:
        """Frames handed out so far (including one read ahead at open)."""
        return self._index

    def _grab(self):
        """The next Frame, None at the end, or NO_FRAME when a live source gave nothing this time."""
        raise NotImplementedError

    def _next(self) -> Frame | None:
        item = self._grab()
        if item is NO_FRAME:
            item = self._wait_for_frame()
        return item

    def _wait_for_frame(self) -> Frame | None:
        """Retry a silent live source for `stall_timeout_s` (reopening it once halfway), then give up."""
        start = time.perf_counter()
        deadline = start + self.stall_timeout_s
        reopened = False
        while not self._closed.is_set():
            now = time.perf_counter()
            if now >= deadline:
                break
            if not reopened and now - start >= self.stall_timeout_s / 2:
                reopened = True
                if self._reopen():
                    self.reopened += 1
            self._closed.wait(RETRY_S)
            item = self._grab()
            if item is not NO_FRAME:
                return item
        if self._closed.is_set():
            return None
        raise self.stalled(time.perf_counter() - start)

    def stalled(self, seconds: float) -> SourceStalled:
        """The error for a live source that gave no frame for `seconds`."""
        return SourceStalled(f"{self.describe_input()}: no frame for {seconds:.1f} s after {self.delivered} "
                             "frames (unplugged, or taken by another program?); stopped there")

    def _reopen(self) -> bool:
        """Try to reopen a live device that stopped delivering; True when it opened."""
        return False

    def read(self) -> Frame | None:
        """The next frame, or None when the source has ended or was closed; a SourceError when it failed.

        One thread reads; `close()` may come from any other thread at any time (see the module's doc).
        """
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        with self._io_lock:
            if self._closed.is_set():
                return None
            self._reading = True
        try:
            return self._next()
        finally:
            with self._io_lock:
                self._reading = False
                closed_meanwhile = self._closed.is_set()
            if closed_meanwhile:
                self._release_once()  # close() came during the read: the reader frees the device now

    def cancel(self) -> None:
        """Make a waiting or retrying read give up and every later read return None (keeps the device)."""
        self._closed.set()

    def close(self) -> None:
        """Release whatever the source holds (safe to call twice, and from another thread than the reader:
        while a read is in progress the reader releases the device when that read returns)."""
        with self._io_lock:
            self._closed.set()
            if self._reading:
                return
        self._release_once()

    def _release_once(self) -> None:
        with self._io_lock:
            if self._released:
                return
            self._released = True
        self._release()

    def _release(self) -> None:
        """Free the device or file (called once, never while a read is in progress)."""

    def __iter__(self):
        while True:
            frame = self.read()
            if frame is None:
                return
            yield frame

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
