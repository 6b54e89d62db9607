"""Clips with many faces in view, composed from a one-face clip: its frames tiled into a grid.

`compose_clip` tiles the frames of a source (the demo clip by default) into a `grid_for(n)` grid at one
output size (1280x720 by default): tile k shows the source `k * length // n` frames later (looping at
its end), mirrored when k is odd, so no two tiles show the same face in the same pose. Each tile is the
source frame cut to the tile's aspect around its centre and scaled to fill the tile ("cover": no bars,
the faces as large as the tile allows). The clip is written as an mp4 in a folder the caller owns (the
benchmark uses a temporary folder): generated video is never kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from core.errors import InputError
from tracker.sources import Source

DEFAULT_SIZE = (1280, 720)
DEFAULT_FACES = (1, 2, 4, 8)


def grid_for(n: int) -> tuple[int, int]:
    """(rows, columns) of a grid of `n` tiles, as square as `n` allows, never more rows than columns:
    1 -> 1x1, 2 -> 1x2, 4 -> 2x2, 6 -> 2x3, 8 -> 2x4. InputError for n < 1."""
    if n < 1:
        raise InputError(f"{n} faces: a composed clip needs at least 1")
    rows = max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0)
    return rows, n // rows


def tile_rects(width: int, height: int, rows: int, cols: int) -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) of each tile, row by row; the grid covers the whole frame."""
    xs = [round(c * width / cols) for c in range(cols + 1)]
    ys = [round(r * height / rows) for r in range(rows + 1)]
    return [(xs[c], ys[r], xs[c + 1] - xs[c], ys[r + 1] - ys[r]) for r in range(rows) for c in range(cols)]


def fill_tile(image: np.ndarray, width: int, height: int, mirror: bool = False) -> np.ndarray:
    """`image` cut around its centre to the tile's aspect and scaled to width x height, mirrored if asked."""
    h, w = image.shape[:2]
    scale = max(width / w, height / h)
    cw, ch = min(w, round(width / scale)), min(h, round(height / scale))
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    cut = image[y0:y0 + ch, x0:x0 + cw]
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    tile = cv2.resize(cut, (width, height), interpolation=interpolation)
    return cv2.flip(tile, 1) if mirror else tile


@dataclass(frozen=True)
class ComposedClip:
    """A composed clip on disk and how it was made."""

    path: Path
    faces: int  # tiles: one face each when the source shows one face
    grid: tuple[int, int]  # rows, columns
    size: tuple[int, int]  # width, height of the clip
    tile: tuple[int, int]  # width, height of the smallest tile
    frames: int
    fps: float
    offsets: tuple[int, ...]  # each tile's start frame in the source
    mirrored: tuple[bool, ...]

    def describe(self) -> str:
        rows, cols = self.grid
        return (f"{self.faces} face(s): {rows}x{cols} grid of {self.tile[0]}x{self.tile[1]} tiles in "
                f"{self.size[0]}x{self.size[1]}, {self.frames} frames")

    def as_dict(self) -> dict:
        return {"file": self.path.name, "faces": self.faces, "grid": list(self.grid), "size": list(self.size),
                "tile": list(self.tile), "frames": self.frames, "fps": self.fps, "offsets": list(self.offsets),
                "mirrored": list(self.mirrored)}


class _Looping:
    """A source read from frame `start` on, opened again at its end (`length` frames make one loop)."""

    def __init__(self, open_source: Callable[[], Source], start: int) -> None:
        self.open_source = open_source
        self.source = open_source()
        for _ in range(start):
            if self.source.read() is None:
                break

    def read(self) -> np.ndarray:
        frame = self.source.read()
        if frame is None:
            self.source.close()
            self.source = self.open_source()
            frame = self.source.read()
            if frame is None:
                raise InputError(f"{self.source.describe()}: no frame to compose")
        return frame.image

    def close(self) -> None:
        self.source.close()


def source_length(open_source: Callable[[], Source], frames: int) -> tuple[int, float]:
    """(frames of the source to use, at most `frames`, counted when the source does not say; its fps)."""
    source = open_source()
    try:
        fps = float(source.fps or 30.0)
        if source.frame_count:
            return max(1, min(frames, int(source.frame_count))), fps
        n = 0
        while n < frames and source.read() is not None:
            n += 1
        return max(1, n), fps
    finally:
        source.close()


def compose_clip(open_source: Callable[[], Source], faces: int, path: Path, frames: int,
                 size: tuple[int, int] = DEFAULT_SIZE, fourcc: str = "mp4v") -> ComposedClip:
    """Write `frames` frames (at most the source's length) of `faces` tiles of the source to `path`.

    `open_source` opens the source anew (each tile reads its own copy, from its own start frame).
    InputError when the clip cannot be written or a tile would be under 16 px.
    """
    width, height = size
    rows, cols = grid_for(faces)
    rects = tile_rects(width, height, rows, cols)
    if min(min(w, h) for _, _, w, h in rects) < 16:
        raise InputError(f"{width}x{height} is too small for {faces} tiles of at least 16 px")
    length, fps = source_length(open_source, frames)
    offsets = tuple(k * length // faces for k in range(faces))
    mirrored = tuple(k % 2 == 1 for k in range(faces))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    if not writer.isOpened():
        raise InputError(f"{path}: cannot write a {fourcc} video here")
    tiles = []
    try:
        for offset in offsets:
            tiles.append(_Looping(open_source, offset))
        canvas = np.zeros((height, width, 3), np.uint8)
        for _ in range(length):
            for tile, (x, y, w, h), mirror in zip(tiles, rects, mirrored):
                canvas[y:y + h, x:x + w] = fill_tile(tile.read(), w, h, mirror)
            writer.write(canvas)
    finally:
        writer.release()
        for tile in tiles:
            tile.close()
    smallest = min(rects, key=lambda r: r[2] * r[3])
    return ComposedClip(Path(path), faces, (rows, cols), (width, height), (smallest[2], smallest[3]), length, fps,
                        offsets, mirrored)
