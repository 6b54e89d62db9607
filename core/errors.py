"""Errors a user can cause or meet, each with the exit code the CLI returns for it.

Exit codes (README): 0 ok, 1 runtime failure, 2 bad usage or input, 130 interrupted.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class FacetrackError(Exception):
    """A failure worth one clear line, not a traceback."""

    exit_code = EXIT_FAILURE


class InputError(FacetrackError):
    """Bad usage or input: a missing path, a wrong file, an impossible option."""

    exit_code = EXIT_USAGE


class Interrupted(FacetrackError):
    """Stopped by Ctrl+C or SIGTERM after finalising outputs."""

    exit_code = EXIT_INTERRUPTED


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's text (its type name when empty), at most `limit` characters:
    what a one-line error quotes of a library's failure."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]


def os_reason(exc: BaseException) -> str:
    """An OS or FFmpeg (PyAV) error's reason without its errno and call name: 'No space left on device',
    'Invalid data found when processing input'; the exception's type name when it says nothing."""
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).strip() or type(exc).__name__
