"""File names as the file system holds them: bytes, not always valid UTF-8.

A Linux disk filled from another system can hold names in Latin-1 or another code page. Python gives
such a name as a str with surrogate escapes (`os.fsdecode(b"clip_\\xff.mp4")` is `'clip_\\udcff.mp4'`):
the stdlib and PyAV open it as the same bytes, but a library that converts the str to UTF-8 itself
cannot (OpenCV's Python binding crashes on it). `is_utf8` tells such a name; `shown` writes any name
for a one-line message the way `ls -b` does (`clip_\\xff.mp4`).
"""

from __future__ import annotations

import os
from pathlib import Path


def is_utf8(name: str | Path) -> bool:
    """True when the name is valid UTF-8 on disk (no surrogate escapes), as OpenCV needs it."""
    try:
        str(name).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown(name: str | Path) -> str:
    """The name for a message: printable text, each byte that is not UTF-8 as `\\xNN`."""
    return os.fsencode(str(name)).decode("utf-8", "backslashreplace")
