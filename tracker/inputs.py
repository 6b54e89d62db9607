"""What the input arguments of `facetrack video` and `facetrack images` name: files, folders, quoted
globs and `-` (paths read from standard input), turned into paths before any file is opened.

- `expand_inputs`: each argument that exists is kept as given; one with glob characters (`*`, `?`,
  `[`) that names no file is expanded (`**` spans folders), sorted, without matches inside a folder
  facetrack wrote outputs into below where the pattern starts; `-` reads one path per line from
  standard input (empty lines ignored). InputError for a glob that matches nothing or `-` given twice.
- `walk_files`: the files of a folder, recursively, sorted by their path's parts (`a.png` before
  `sub/b.png` before `z.png`), passing over folders facetrack wrote its outputs into
  (`tracker.outdirs.is_output_folder`) and the output mark itself.
- `common_base`: the deepest folder above every input (a folder input itself, a file's folder): outputs
  keep their path relative to it (`tracker.sinks.plan_image_outputs`, `video_outputs`).
- `list_videos`: the video files of the inputs: files named directly, and in folders those with a
  video suffix (VIDEO_SUFFIXES).
"""

from __future__ import annotations

import glob
import os
import sys
from pathlib import Path
from typing import Callable, TextIO

from core.errors import InputError
from core.pathnames import shown
from tracker.outdirs import OUTPUT_MARK, is_output_folder

STDIN = "-"
GLOB_CHARS = ("*", "?", "[")
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
                  ".wmv", ".flv", ".3gp", ".ogv")

__all__ = ["STDIN", "VIDEO_SUFFIXES", "common_base", "expand_inputs", "list_videos", "walk_files"]


def expand_inputs(args: list[str], stdin: TextIO | None = None,
                  literal: Callable[[str], bool] | None = None) -> list[str]:
    """The paths the arguments name, in order (see the module's doc): existing paths as given, globs
    expanded, `-` replaced by the lines of `stdin` (default: standard input). Paths that neither exist
    nor are globs are kept, for the caller's "no such file" message, and so is every argument `literal`
    says is no path (a stream URL, a synthetic spec: `?` there is no glob)."""
    paths: list[str] = []
    read_stdin = False
    for arg in args:
        if literal is not None and literal(arg):
            paths.append(arg)
        elif arg == STDIN:
            if read_stdin:
                raise InputError("- (paths from standard input) given twice")
            read_stdin = True
            paths.extend(_stdin_paths(sys.stdin if stdin is None else stdin))
        elif not os.path.lexists(arg) and any(c in arg for c in GLOB_CHARS):
            matches = sorted(glob.glob(arg, recursive=True))
            if not matches:
                raise InputError(f"{shown(arg)}: no file matches this pattern")
            paths.extend(m for m in matches if not _in_output_folder(m, _literal_prefix(arg)))
        else:
            paths.append(arg)
    return paths


def _literal_prefix(pattern: str) -> str:
    """The folder a glob starts from: its leading parts without glob characters ('' for the working folder)."""
    parts = []
    for part in Path(pattern).parts[:-1]:
        if any(c in part for c in GLOB_CHARS):
            break
        parts.append(part)
    return os.path.join(*parts) if parts else ""


def _in_output_folder(match: str, prefix: str) -> bool:
    """True when a folder between the glob's `prefix` and `match` holds facetrack's output mark."""
    top = os.path.abspath(prefix or os.curdir)
    folder = os.path.dirname(os.path.abspath(match))
    while folder != top and folder.startswith(top + os.sep):
        if is_output_folder(folder):
            return True
        folder = os.path.dirname(folder)
    return False


def _stdin_paths(stream: TextIO) -> list[str]:
    lines = [line.rstrip("\r\n") for line in stream]
    paths = [line for line in lines if line.strip()]
    if not paths:
        raise InputError("- : no paths on standard input (give one path per line)")
    return paths


def walk_files(folder: str) -> list[str]:
    """Every file under `folder` (recursively; names joined to `folder` as given), sorted by path parts,
    without folders that hold facetrack's output mark (below `folder`; `folder` itself is searched even
    when marked) and without the mark files."""
    found: list[tuple[tuple[str, ...], str]] = []
    for top, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not is_output_folder(os.path.join(top, d))]
        rel_top = os.path.relpath(top, folder)
        parts = () if rel_top == os.curdir else tuple(Path(rel_top).parts)
        for name in files:
            path = os.path.join(top, name)
            if name != OUTPUT_MARK and os.path.isfile(path):
                found.append(((*parts, name), path))
    found.sort(key=lambda item: item[0])
    return [path for _, path in found]


def common_base(inputs: list[str]) -> Path:
    """The deepest folder holding every input: a folder input counts as itself, a file as its folder.
    Outputs mirror the inputs' paths below it (a single folder: paths inside it; a single file: its name)."""
    if not inputs:
        return Path(os.curdir)
    places = [os.path.abspath(p) if os.path.isdir(p) else os.path.dirname(os.path.abspath(p)) for p in inputs]
    return Path(os.path.commonpath(places))


def list_videos(paths: list[str]) -> list[str]:
    """The video files among `paths` (after `expand_inputs`): a file named directly whatever its suffix (a
    stream URL or synthetic spec too), and in a folder each file with a VIDEO_SUFFIXES suffix (`walk_files`).
    InputError for a folder holding none."""
    videos: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            found = [f for f in walk_files(path) if Path(f).suffix.lower() in VIDEO_SUFFIXES]
            if not found:
                suffixes = ", ".join(VIDEO_SUFFIXES[:6])
                raise InputError(f"{shown(path)}: is a folder with no video files in it ({suffixes}, ...)")
            videos.extend(found)
        else:
            videos.append(path)
    return videos
