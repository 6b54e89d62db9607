"""Still images as a source: files and folders (searched recursively, sorted), one Frame per usable image."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

from core.errors import InputError
from core.frame import Frame
from core.imageio import is_image_file, read_image_bgr
from tracker.sources.base import Source

MIN_IMAGE_SIDE = 8  # still images smaller than this are skipped (nothing to find in them)


class ImageSource(Source):
    """Image files and folders (recursive, sorted); unreadable or tiny images are skipped and counted."""

    kind = "images"

    def __init__(self, paths: list[str | Path]) -> None:
        super().__init__()
        self.paths = list(image_paths(paths))
        if not self.paths:
            raise InputError(f"no image files in {', '.join(str(p) for p in paths)}")
        self.frame_count = len(self.paths)
        self._position = 0
        self.skip_reasons: Counter = Counter()
        self.skipped_names: list[str] = []  # the first few, for the summary
        self._prime()

    def describe_input(self) -> str:
        return f"{len(self.paths)} image file(s)"

    def describe(self) -> str:
        return f"images: {len(self.paths)} file(s)"

    def _prime(self) -> None:
        first = self._next()
        if first is None:
            raise InputError(f"none of the {len(self.paths)} image file(s) could be used "
                             f"({self.skip_summary()}); check the files")
        self.height, self.width = first.image.shape[:2]
        self._pending = first

    def _skip(self, name: str, reason: str) -> None:
        self.skipped += 1
        self.skip_reasons[reason] += 1
        if len(self.skipped_names) < 5:
            self.skipped_names.append(name)

    def skip_summary(self) -> str:
        """'2 unreadable, 1 smaller than 8 px' (empty when nothing was skipped)."""
        return ", ".join(f"{n} {reason}" for reason, n in self.skip_reasons.items())

    def _grab(self) -> Frame | None:
        while self._position < len(self.paths):
            name = self.paths[self._position]
            self._position += 1
            image = read_image_bgr(name)
            if image is None:
                self._skip(name, "unreadable")
                continue
            if min(image.shape[:2]) < MIN_IMAGE_SIDE:
                self._skip(name, f"smaller than {MIN_IMAGE_SIDE} px")
                continue
            index = self._index
            self._index += 1
            return Frame(image, index, time.perf_counter(), 0.0, name)
        return None


def image_paths(paths: list[str | Path]) -> list[str]:
    """Image files named directly or found (recursively, sorted) in folders; paths kept as given."""
    found: list[str] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for sub in sorted(path.rglob("*")):
                if is_image_file(sub):
                    found.append(os.path.join(str(given), str(sub.relative_to(path))))
        elif path.is_file():
            found.append(str(given))  # decoded later; an undecodable file is skipped and counted
        else:
            raise InputError(f"{given}: no such file or folder")
    return found
