"""Progress of long work on stderr: a live bar on a terminal, an occasional plain line anywhere else.

`Progress(desc, total, unit)` counts finished items (images, faces, frames, batches). Where its stream
(stderr) is a terminal it draws a tqdm bar, redrawn in place with carriage returns. Where it is not (a
log file, a pipe, CI) it never writes a carriage return: it prints a plain line at most every `every_s`
seconds, e.g.

    facetrack: images: 1200/9460 images (13 %), 41 s, about 4.7 min left

so work shorter than `every_s` stays silent there. `every_s=0` turns the plain lines off.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, Iterable, Iterator, TextIO, TypeVar

PLAIN_EVERY_S = 30.0  # seconds between two plain lines where the stream is no terminal
PREFIX = "facetrack: "

T = TypeVar("T")


def is_terminal(stream: TextIO | None) -> bool:
    """True when `stream` is an open terminal (False for files, pipes, closed or odd streams)."""
    isatty = getattr(stream, "isatty", None)
    if isatty is None:
        return False
    try:
        return bool(isatty())
    except (ValueError, OSError):  # closed, or detached
        return False


def plural(unit: str) -> str:
    """'image' -> 'images', 'batch' -> 'batches'."""
    return unit + ("es" if unit.endswith(("s", "x", "ch", "sh")) else "s")


def duration(seconds: float) -> str:
    """A short human duration: '41 s', '4.7 min', '1.3 h', '3 days'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


class Progress:
    """Counts finished items of `total` (None: unknown) and shows it as the module docstring says.

    `mode` is "bar" (terminal), "lines" (anything else, a line every `every_s` s) or "off" (`quiet`, or
    `every_s` 0 and no terminal). `leave` keeps the finished bar on screen. Use as a context manager, or call
    `close()`; writing never raises (a closed stderr only silences it).
    """

    def __init__(self, desc: str, total: int | None = None, unit: str = "item", *, stream: TextIO | None = None,
                 every_s: float = PLAIN_EVERY_S, leave: bool = False, quiet: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.desc, self.total, self.unit = desc, total, unit
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self._every_s = every_s
        self._clock = clock
        self._start = self._last_line = clock()
        self._note = ""
        self._bar = None
        if quiet:
            self.mode = "off"
        elif is_terminal(self._stream):
            from tqdm import tqdm

            self.mode = "bar"
            self._bar = tqdm(total=total, desc=desc or None, unit=unit, file=self._stream, dynamic_ncols=True,
                             leave=leave, mininterval=0.25)
        else:
            self.mode = "lines" if every_s > 0 else "off"

    def update(self, n: int = 1) -> None:
        """`n` more items done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "lines":
            now = self._clock()
            if now - self._last_line >= self._every_s:
                self._last_line = now
                self._write(self.line(now))

    def note(self, text: str, refresh: bool = False) -> None:
        """A short status after the count (e.g. 'loss 0.0123'); shown with the next refresh or line, or at
        once on a bar with `refresh`."""
        self._note = text
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=refresh)

    def line(self, now: float | None = None) -> str:
        """The plain line for the count so far (without the 'facetrack: ' prefix)."""
        elapsed = (self._clock() if now is None else now) - self._start
        head = f"{self.desc}: " if self.desc else ""
        if self.total:
            share = self.done / self.total
            text = f"{head}{self.done}/{self.total} {plural(self.unit)} ({100 * share:.0f} %), {duration(elapsed)}"
            if 0 < share < 1:
                text += f", about {duration(elapsed * (1 - share) / share)} left"
        else:
            text = f"{head}{self.done} {plural(self.unit)}, {duration(elapsed)}"
        return f"{text}; {self._note}" if self._note else text

    def _write(self, text: str) -> None:
        try:
            self._stream.write(PREFIX + text + "\n")
            self._stream.flush()
        except (OSError, ValueError):
            self.mode = "off"

    def close(self) -> None:
        """Finish the bar (a no-op for plain lines, and when already closed)."""
        if self._bar is not None:
            try:
                self._bar.close()
            except (OSError, ValueError):
                pass
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def track(items: Iterable[T], desc: str, total: int | None = None, unit: str = "item", **options) -> Iterator[T]:
    """Yield `items`, counting each one once the caller asks for the next (`Progress`, its `options`);
    `total`: len(items) when it has one."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(desc, total, unit, **options) as progress:
        for item in items:
            yield item
            progress.update()
