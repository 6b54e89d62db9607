"""Still images as a source: files and folders (searched recursively, sorted), one Frame per usable image.

What `facetrack images PATH...` takes is one rule, the same for a file named directly and a file found
in a folder: a file whose content OpenCV or Pillow recognises as an image format it reads
(`core.imageio.is_image_file`, by signature, not by suffix: HEIC, AVIF, GIF, WebP, TIFF, JPEG 2000, PNM, ...
and images without a suffix). Every other file is skipped, counted and named in the summary: `not an
image`, `unreadable` (cannot be opened or decoded), `smaller than 8 px`, or, for an image format that no
installed decoder reads, the format and what would read it (`HEIF (no decoder installed; pip install
pillow-heif)`, `JPEG XL (...)`). Images are read upright, as viewers show them (EXIF orientation applied:
`core.imageio.read_image_bgr(upright=True)`). An animated file (GIF, WebP, APNG) gives its first frame,
and the source names it (`animated_note`): `facetrack video` tracks every frame.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import InputError
from core.frame import Frame
from core.image_formats import MISSING_DECODER_HINTS, format_without_decoder, is_animated_image
from core.imageio import IMAGE_SUFFIXES, is_image_file, read_image_bgr
from tracker.inputs import walk_files
from tracker.sources.base import Source

MIN_IMAGE_SIDE = 8  # still images smaller than this are skipped (nothing to find in them)
NOT_AN_IMAGE = "not an image"
UNREADABLE = "unreadable"
# Suffixes of image files: only to tell "unreadable" (a broken or unsupported image) from "not an image"
# in the summary; what is taken is decided by the content.
IMAGE_NAMES = IMAGE_SUFFIXES + (".gif", ".jpe", ".jp2", ".pbm", ".pnm", ".pam", ".avif", ".heic", ".heif", ".hif",
                                ".jxl", ".qoi", ".ico")
NAMES_SHOWN = 3  # skipped files named per reason in the summary (then "+N more")


@dataclass
class ImageList:
    """What PATH... holds: the image files in order (paths as given or found), and every other file
    with the reason it is skipped."""

    images: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def skip_reason(path: str | Path) -> str | None:
    """Why `facetrack images` passes over this file, or None to take it (its content is an image OpenCV
    or Pillow reads). UNREADABLE: it cannot be opened, or its name says image (IMAGE_NAMES) but its content
    is none; an image format no installed decoder reads (`core.image_formats.format_without_decoder`): that
    format and what would read it (`missing_decoder`); NOT_AN_IMAGE: any other file."""
    if not os.access(path, os.R_OK):
        return UNREADABLE
    if is_image_file(path):
        return None
    file_format = format_without_decoder(path)
    if file_format is not None:
        return missing_decoder(file_format)
    return UNREADABLE if Path(path).suffix.lower() in IMAGE_NAMES else NOT_AN_IMAGE


def missing_decoder(file_format: str) -> str:
    """The skip reason of an image format no installed decoder reads: 'HEIF (no decoder installed; pip
    install pillow-heif)'."""
    hint = MISSING_DECODER_HINTS.get(file_format, "convert it to JPEG or PNG")
    return f"{file_format} (no decoder installed; {hint})"


def list_images(paths: list[str | Path]) -> ImageList:
    """Sort files named directly or found (recursively, sorted: `tracker.inputs.walk_files`, which passes
    over folders facetrack wrote outputs into) in folders into images and skipped files, by one rule
    (`skip_reason`); paths kept as given. InputError for a path that does not exist."""
    listing = ImageList()
    for given in paths:
        path = Path(given)
        if path.is_dir():
            files = walk_files(str(given))  # output folders facetrack marked inside it are passed over
        elif path.is_file():
            files = [str(given)]
        else:
            raise InputError(f"{given}: no such file or folder")
        for name in files:
            reason = skip_reason(name)
            if reason is None:
                listing.images.append(name)
            else:
                listing.skipped.append((name, reason))
    return listing


def image_paths(paths: list[str | Path]) -> list[str]:
    """The image files (`list_images`) named directly or found in folders, in order."""
    return list_images(paths).images


class ImageSource(Source):
    """Image files and folders (recursive, sorted), read upright (EXIF orientation applied); files that
    are not images, unreadable or tiny are skipped, counted by reason and named (`skip_summary`); animated
    files give their first frame and are named (`animated`, `animated_note`)."""

    kind = "images"

    def __init__(self, paths: list[str | Path] | ImageList) -> None:
        """`paths`: files and folders, or their `list_images` answer. InputError when nothing is there
        or nothing there is a usable image."""
        super().__init__()
        listing = paths if isinstance(paths, ImageList) else list_images(paths)
        self.paths = list(listing.images)
        self.file_count = len(listing.images) + len(listing.skipped)  # every file named or found
        self.skip_reasons: Counter = Counter()
        self.skipped_by_reason: dict[str, list[str]] = {}
        self.animated: list[str] = []  # animated files read so far, of which only the first frame was used
        for name, reason in listing.skipped:
            self._skip(name, reason)
        if not self.file_count:
            given = "the given paths" if isinstance(paths, ImageList) else ", ".join(str(p) for p in paths)
            raise InputError(f"no image files in {given}")
        self.frame_count = len(self.paths)
        self._position = 0
        self._prime()

    @property
    def skipped_names(self) -> list[str]:
        """Every skipped file, reason by reason."""
        return [name for names in self.skipped_by_reason.values() for name in names]

    def describe_input(self) -> str:
        return f"{len(self.paths)} image file(s)"

    def describe(self) -> str:
        return f"images: {len(self.paths)} file(s)"

    def _prime(self) -> None:
        first = self._next()
        if first is None:
            raise InputError(f"none of the {self.file_count} file(s) could be used ({self.skip_summary()}); "
                             f"check the files")
        self.height, self.width = first.image.shape[:2]
        self._pending = first
        self._primed = True

    def _skip(self, name: str, reason: str) -> None:
        self.skipped += 1
        self.skip_reasons[reason] += 1
        self.skipped_by_reason.setdefault(reason, []).append(name)

    def skip_summary(self, verb: str = "") -> str:
        """'1 unreadable (broken.png), 2 not an image (a.txt, b.json)': per reason the count, `verb` (e.g.
        " skipped") and the first NAMES_SHOWN names (`+N more` after them); empty when nothing was skipped."""
        parts = []
        for reason, names in self.skipped_by_reason.items():
            more = f", +{len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else ""
            parts.append(f"{len(names)} {reason}{verb} ({', '.join(names[:NAMES_SHOWN])}{more})")
        return ", ".join(parts)

    def animated_note(self) -> str:
        """'only the first frame of 2 animated file(s) was used (a.gif, b.webp); `facetrack video FILE`
        tracks every frame'; empty when no animated file was read."""
        if not self.animated:
            return ""
        names = self.animated
        more = f", +{len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else ""
        return (f"only the first frame of {len(names)} animated file(s) was used ({', '.join(names[:NAMES_SHOWN])}"
                f"{more}); `facetrack video FILE` tracks every frame, each at its own time")

    def _grab(self) -> Frame | None:
        while self._position < len(self.paths):
            name = self.paths[self._position]
            self._position += 1
            image = read_image_bgr(name, upright=True)
            if image is None:
                self._skip(name, UNREADABLE)
                continue
            if min(image.shape[:2]) < MIN_IMAGE_SIDE:
                self._skip(name, f"smaller than {MIN_IMAGE_SIDE} px")
                continue
            if is_animated_image(name):
                self.animated.append(name)
            index = self._index
            self._index += 1
            return Frame(image, index, time.perf_counter(), 0.0, name)
        return None
