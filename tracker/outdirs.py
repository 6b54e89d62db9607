"""Output folders: the default run folder (`runs/track/exp`, `exp2`, ...) and the mark that tells a folder
facetrack wrote from an input folder.

- **Default run folder.** `facetrack video` and `facetrack images` given no output option write into
  a new folder under `runs/track` (relative to the working folder; the environment variable
  FACETRACK_RUNS names another place, as the tests do): `exp` the first time, then `exp2`,
  `exp3`, ... (the first name not taken). `next_run_folder` makes it (with its parents), atomically, so
  two runs started together never share one; `remove_if_unused` takes it away again when a run ended
  before writing anything into it.
- **Output mark.** Every output folder facetrack writes into (`--out-dir`, a default run folder) holds
  an empty file `.facetrack-output`. Folders holding it are passed over when an input folder is searched
  (`tracker.inputs.walk_files`), so annotated copies written inside the input folder are not taken as
  inputs by the next run over it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from core.errors import InputError
from core.pathnames import shown

RUNS_ROOT = Path("runs") / "track"  # where default run folders go, relative to the working folder
RUNS_ENV = "FACETRACK_RUNS"  # names another place for them
RUN_PREFIX = "exp"
OUTPUT_MARK = ".facetrack-output"  # the empty file that marks a folder facetrack writes outputs into
MAX_RUN_FOLDERS = 100_000

__all__ = ["OUTPUT_MARK", "RUNS_ENV", "RUNS_ROOT", "is_output_folder", "mark_output_folder", "next_run_folder",
           "remove_if_unused", "run_folder_name", "runs_root"]


def runs_root() -> Path:
    """Where default run folders go: $FACETRACK_RUNS when set, else RUNS_ROOT (`runs/track`)."""
    return Path(os.environ.get(RUNS_ENV) or RUNS_ROOT)


def run_folder_name(n: int, prefix: str = RUN_PREFIX) -> str:
    """The n-th run folder's name (n >= 1): `exp`, `exp2`, `exp3`, ..."""
    return prefix if n <= 1 else f"{prefix}{n}"


def next_run_folder(root: str | Path | None = None, prefix: str = RUN_PREFIX) -> Path:
    """Make and return the first free run folder under `root` (default `runs_root()`: `root/exp`,
    `root/exp2`, ...), marked as an output folder; `root` is made with its parents when missing. InputError
    when it cannot be made (a file in the way, no permission, a read-only disk)."""
    root = runs_root() if root is None else Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot make the default output folder {shown(root)} ({exc.strerror or exc}); "
                         "give an output option (--out, --out-dir, --json) or run from a writable folder") from None
    for n in range(1, MAX_RUN_FOLDERS):
        folder = root / run_folder_name(n, prefix)
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise InputError(f"cannot make the default output folder {shown(folder)} ({exc.strerror or exc}); "
                             "give an output option (--out, --out-dir, --json)") from None
        mark_output_folder(folder)
        return folder
    raise InputError(f"{shown(root)}: holds {MAX_RUN_FOLDERS} run folders already; clean it up")


def mark_output_folder(folder: str | Path) -> None:
    """Put the output mark (an empty `.facetrack-output`) into an existing `folder`; a folder that cannot
    take it (read-only) is left unmarked: its outputs could then be taken as inputs, nothing worse."""
    with contextlib.suppress(OSError):
        (Path(folder) / OUTPUT_MARK).touch(exist_ok=True)


def is_output_folder(folder: str | Path) -> bool:
    """True when `folder` holds the output mark: facetrack wrote its outputs there."""
    return os.path.isfile(os.path.join(folder, OUTPUT_MARK))


def remove_if_unused(folder: str | Path) -> bool:
    """Remove a run folder that holds nothing but the output mark (a run that failed before writing);
    True when it was removed. A folder with anything else in it is left as it is."""
    folder = Path(folder)
    try:
        if {entry.name for entry in folder.iterdir()} - {OUTPUT_MARK}:
            return False
        with contextlib.suppress(FileNotFoundError):
            (folder / OUTPUT_MARK).unlink()
        folder.rmdir()
    except OSError:
        return False
    return True
