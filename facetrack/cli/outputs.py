"""Output paths of `eval`, `plot`, `train` and `export`, checked before any work starts.

Each check raises `core.errors.InputError` (exit 2, one line naming the option and the path) when the
command could not write where it is asked to: a missing or unwritable folder, a folder given for a file,
a file name whose suffix the writer cannot write, an output that is an input or another output, a run
folder that already holds a training run. `video`, `webcam`, `images` and `bench` check theirs through
`tracker.sinks.check_output_path`, which the file checks here build on.
"""

from __future__ import annotations

from pathlib import Path

from core.errors import InputError
from core.pathnames import is_utf8, shown

RUN_FILES = ("metrics.jsonl", "last.pt", "best.pt")  # what makes a folder hold a training run


def check_output_file(path: Path, option: str, inputs: list[Path] = (), others: list[Path | None] = ()) -> Path:
    """`path` can be written as a file: its folder exists and is writable, it is not a folder, an input
    or one of `others` (InputError otherwise)."""
    from tracker.sinks import check_output_path

    return check_output_path(Path(path), option, [Path(p) for p in inputs],
                             others=[Path(p) for p in others if p is not None])


def check_image_file(path: Path, option: str, inputs: list[Path] = (), others: list[Path | None] = ()) -> Path:
    """`check_output_file`, and OpenCV can encode an image under that file name (.png, .jpg, ...)."""
    import cv2

    check_output_file(path, option, inputs, others)
    if not is_utf8(path):  # OpenCV's binding crashes on such a name
        raise InputError(f"{option} {shown(path)}: the name is not valid UTF-8, which OpenCV cannot write; "
                         "choose a UTF-8 file name")
    if not cv2.haveImageWriter(str(path)):
        raise InputError(f"{option} {path}: not an image file name OpenCV can write; give a .png file name")
    return Path(path)


def check_figure_file(path: Path, option: str, inputs: list[Path] = (), others: list[Path | None] = ()) -> Path:
    """`check_output_file`, and matplotlib can save a figure in the format the suffix names (.png, .pdf, .svg, ...)."""
    from matplotlib.backend_bases import FigureCanvasBase

    check_output_file(path, option, inputs, others)
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FigureCanvasBase.get_supported_filetypes():
        raise InputError(f"{option} {path}: matplotlib cannot write a {suffix or 'suffix-less'} file; "
                         f"give a .png, .pdf or .svg file name")
    return Path(path)


def check_output_folder(folder: Path, option: str) -> Path:
    """`folder` is a writable folder, or does not exist yet and can be made (with its missing parents)
    inside a writable folder; InputError when it is a file or nothing can be created where it would go."""
    from tracker.sinks import check_writable_folder

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{option} {folder}: is a file, not a folder")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{option} {folder}: {existing} is a file, not a folder")
    check_writable_folder(existing, f"{option} {folder}")
    return folder


def held_run_files(folder: Path) -> list[str]:
    """The names of RUN_FILES present in `folder` (empty for a new or unused folder)."""
    return [name for name in RUN_FILES if (Path(folder) / name).exists()]


def check_run_folder(folder: Path, resume: bool, overwrite: bool) -> Path:
    """`train --out`: a folder training can write, and not one that already holds a run unless the run
    is continued (`--resume`) or started again on purpose (`--overwrite`). InputError otherwise."""
    check_output_folder(folder, "--out")
    if resume and overwrite:
        raise InputError("--resume and --overwrite exclude each other: continue the run or start it again")
    held = held_run_files(folder)
    if held and not (resume or overwrite):
        raise InputError(f"--out {folder}: already holds a training run ({', '.join(held)}); continue it with "
                         f"--resume, start it again with --overwrite, or choose another --out folder")
    return Path(folder)
