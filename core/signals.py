"""SIGINT/SIGTERM handling, in one place: how an interrupt reaches the code that must finalise outputs.

Three tools, one for each situation:
- `sigterm_as_interrupt()`: for a whole command, SIGTERM raises KeyboardInterrupt as Ctrl+C does, so
  both stop the same way (the CLI wraps every command in it).
- `StopSignals`: for a loop that must finish the item in hand (a frame, an image): a signal only sets
  `event`; a second one forces KeyboardInterrupt unless outputs are being finalised (`closing`).
- `deferred_signals()`: for a short critical section (closing an mp4, writing a checkpoint): signals
  are held back and the first one is handed to the previous handler afterwards.

All three act on the main thread only (Python delivers signals there) and are no-ops elsewhere.
"""

from __future__ import annotations

import contextlib
import signal
import threading

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def raise_interrupt(signum, frame) -> None:
    """A signal handler that raises KeyboardInterrupt (what Python does for SIGINT by default)."""
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Within the block SIGTERM raises KeyboardInterrupt, like Ctrl+C; the old handler is restored after."""
    previous = None
    if _on_main_thread():
        try:
            previous = signal.signal(signal.SIGTERM, raise_interrupt)
        except (ValueError, OSError):
            previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def deferred_signals():
    """Hold SIGINT/SIGTERM back for a short critical section, then hand the first one that came to the
    handler that was in place (a default handler: KeyboardInterrupt). Main thread only; elsewhere a no-op.
    """
    if not _on_main_thread():
        yield
        return
    received: list[int] = []
    previous = {}
    for sig in STOP_SIGNALS:
        try:
            previous[sig] = signal.signal(sig, lambda signum, frame: received.append(signum))
        except (ValueError, OSError):
            pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received:
            handler = previous.get(received[0])
            if callable(handler):
                handler(received[0], None)
            elif handler != signal.SIG_IGN:
                raise KeyboardInterrupt


class StopSignals:
    """SIGINT/SIGTERM set `event` instead of raising mid-write; a second one forces KeyboardInterrupt.

    Once `closing` is set (outputs being finalised) signals only set the flag: nothing may cut the
    finalising short.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.event = threading.Event()
        self.enabled = enabled and _on_main_thread()
        self.closing = False
        self._previous: dict[int, object] = {}

    def _handler(self, signum, frame) -> None:
        if self.event.is_set() and not self.closing:
            raise KeyboardInterrupt
        self.event.set()

    def __enter__(self) -> "StopSignals":
        if self.enabled:
            for sig in STOP_SIGNALS:
                try:
                    self._previous[sig] = signal.signal(sig, self._handler)
                except (ValueError, OSError):
                    pass
        return self

    def __exit__(self, *exc) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
