"""One output file that a single run writes and that is whole when it appears (`OutputFile`).

- **One writer.** An output is claimed with an exclusive `fcntl.flock` on a hidden lock file beside it,
  `.NAME.lock` (holding the claimer's pid, for the message), for as long as the run writes it. A
  second run claiming the same output (any spelling of the path, symlinks resolved) is refused at
  once with InputError (exit 2, one line). The kernel drops a flock when its process ends in any way
  (Ctrl+C, a crash, SIGKILL), so a lock never goes stale: a lock file left behind by a killed run is
  simply taken over by the next run. On a file system without locks (some network mounts) the file is
  still written as below, without the claim.
- **Whole or absent.** The writer writes to a hidden temporary file beside the target, `.NAME.part`
  (same folder: same file system), and `commit()` renames it over the target (`os.replace`, atomic),
  with the old file's permission bits. Until then an existing target keeps its old content. Runs that
  stop on an error or an interrupt still commit what they have (finalised by their writer); only a
  process killed outright leaves a `.NAME.part` behind, which the next run on that output replaces.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from core.errors import FacetrackError, InputError
from core.pathnames import shown

try:
    import fcntl
except ImportError:  # not POSIX: no claim, still the temporary file and the rename
    fcntl = None

LOCK_TRIES = 20  # a lock file removed and made again under us is retried this often

__all__ = ["OutputFile", "lock_path", "part_path"]


def part_path(path: str | Path) -> Path:
    """Where the output at `path` is written until it is complete: `.NAME.part` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}.part")


def lock_path(path: str | Path) -> Path:
    """The lock file that claims the output at `path`: `.NAME.lock` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


def _holder(fd: int) -> str:
    """' (pid N)' from a held lock file's content, '' when it does not say."""
    with contextlib.suppress(OSError, ValueError):
        pid = int(os.pread(fd, 32, 0).decode("ascii").strip())
        return f" (pid {pid})"
    return ""


def _claim(lock: Path, what: str) -> int | None:
    """The fd of `lock`, opened and exclusively flocked; None when this file system has no locks.

    InputError when another process holds it. A lock file is removed by its holder while still locked,
    so one opened just before that removal is not the lock any more: checked, and opened again.
    """
    if fcntl is None:
        return None
    for _ in range(LOCK_TRIES):
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise InputError(f"{what}: cannot create its lock file {shown(lock)} ({exc.strerror}); "
                             "choose another folder") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                holder = _holder(fd)
                os.close(fd)
                raise InputError(f"{what}: another facetrack run{holder} is writing it; wait until it is "
                                 "done or choose another file") from None
            os.close(fd)  # ENOLCK, EOPNOTSUPP...: no locks here
            return None
        try:
            current = os.stat(lock)
        except FileNotFoundError:
            current = None
        if current is not None and os.path.samestat(os.fstat(fd), current):
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
            return fd
        os.close(fd)  # the holder removed it as it finished: take the new one
    raise InputError(f"{what}: cannot claim it (its lock file {shown(lock)} keeps changing)")


class OutputFile:
    """A claimed output: write to `part`, then `commit()` (or `discard()`); see the module's doc.

    `path`: the target (symlinks resolved: a link is written through, not replaced); `option`: how the
    user named it in messages (`--out`, `--json`). Raises InputError (exit 2) when another run holds it.
    Use as a context manager or call `release()`: leaving without `commit()` discards the part file.
    """

    def __init__(self, path: str | Path, option: str = "") -> None:
        self.given = Path(path)
        self.path = Path(os.path.realpath(self.given))
        self.part = part_path(self.path)
        self.lock = lock_path(self.path)
        self.what = f"{option} {shown(self.given)}" if option else shown(self.given)
        self._fd = _claim(self.lock, self.what)
        self.done = False

    @property
    def held(self) -> bool:
        """True while this run holds the claim (False once committed, discarded, or without locks)."""
        return self._fd is not None

    def commit(self) -> None:
        """Rename the part file over the target (with the old target's permission bits) and release the
        claim. FacetrackError when the rename fails (the part file is kept)."""
        if self.done:
            return
        try:
            if self.part.exists():
                with contextlib.suppress(OSError):
                    os.chmod(self.part, stat.S_IMODE(os.stat(self.path).st_mode))
                os.replace(self.part, self.path)
        except OSError as exc:
            self.release()
            raise FacetrackError(f"{self.what}: cannot move the finished file into place ({exc.strerror}); "
                                 f"it is in {shown(self.part)}") from None
        self.done = True
        self.release()

    def discard(self) -> None:
        """Remove the part file (the target is left as it was) and release the claim."""
        if not self.done:
            with contextlib.suppress(OSError):
                self.part.unlink()
            self.done = True
        self.release()

    def release(self) -> None:
        """Give up the claim (safe to call again); a part file never committed is removed."""
        if not self.done:
            self.discard()
            return
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            self.lock.unlink()  # while still locked: a run that opened it meanwhile sees it is gone
        os.close(fd)

    def __enter__(self) -> "OutputFile":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
