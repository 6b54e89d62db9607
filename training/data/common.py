"""Helpers shared by the dataset readers."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.geometry import box_from_square, face_square_from_points
from training.data.samples import (
    SKIP_BAD_IMAGE_FORMAT,
    SKIP_BAD_VALUES,
    SKIP_MISSING_IMAGE,
    SKIP_NAN,
    SKIP_OUTSIDE,
    SKIP_UNREADABLE_IMAGE,
    DatasetError,
    FaceSample,
    LoadResult,
    points_outside,
)

MIN_IMAGE_SIDE = 8  # smaller images are skipped as unsupported
# Readers return 0-based pixel coordinates (the centre of the top-left pixel is (0, 0), as OpenCV and
# the field cases' truth). Sets written 1-based (Matlab's convention) are moved by this many pixels:
# 300-W (documented), Caltech WebFaces (a Matlab-era release) and the YouTube-Faces keypoints CSV
# (whole-pixel labels); for the last two the trained models' validation errors showed a constant
# -0.4 .. -1.6 px on every point and axis, whatever the face's size (docs/experiments.md,
# scripts/measure_pixel_offsets.py).
ONE_BASED_SHIFT_PX = 1.0


def image_size(path: Path) -> tuple[int, int] | str:
    """(width, height) from the image header, or a skip reason.

    Grayscale, RGBA, palette and 16-bit images are fine (decoding converts them to 8-bit RGB); images
    under 8 px or too large to decode safely (Pillow's decompression-bomb limit) are unsupported.
    """
    if not path.is_file():
        return SKIP_MISSING_IMAGE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return SKIP_BAD_IMAGE_FORMAT
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        return SKIP_UNREADABLE_IMAGE
    if w < MIN_IMAGE_SIDE or h < MIN_IMAGE_SIDE:
        return SKIP_BAD_IMAGE_FORMAT
    return int(w), int(h)


def make_sample(image_path: Path, points4: np.ndarray, box_xyxy: np.ndarray, identity: str, source: str,
                size: tuple[int, int], **extra) -> FaceSample | str:
    """A FaceSample, or the reason to skip it (NaN, points far outside the image).

    `extra`: FaceSample's optional fields (convention, subset, attributes).
    """
    points4 = np.asarray(points4, dtype=np.float32).reshape(4, 2)
    box_xyxy = np.asarray(box_xyxy, dtype=np.float32).reshape(4)
    if not (np.isfinite(points4).all() and np.isfinite(box_xyxy).all()):
        return SKIP_NAN
    if points_outside(points4, *size):
        return SKIP_OUTSIDE
    return FaceSample(str(image_path), points4, box_xyxy, identity, source, size, **extra)


def box_from_four_points(points4: np.ndarray) -> np.ndarray:
    """A face box (xyxy px) for sets that give only points: the square the tracker builds from the four
    points (`core.geometry.face_square_from_points`, fitted to the 68-point sets' min/max boxes)."""
    return box_from_square(*face_square_from_points(points4))


def read_text_lines(path: Path) -> list[str]:
    """The non-blank lines of an annotation file, stripped (CRLF or LF, leading/trailing spaces)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not a text annotation file ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror})") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def parse_floats(tokens: list[str]) -> np.ndarray | str:
    """Numbers of an annotation row as float32, or the skip reason (not numbers / NaN or infinite)."""
    try:
        values = np.array([float(t) for t in tokens], dtype=np.float32)
    except ValueError:
        return SKIP_BAD_VALUES
    return values if np.isfinite(values).all() else SKIP_NAN


def first_tokens(path: Path) -> list[str]:
    """The whitespace-separated fields of a text file's first line (empty when unreadable): for sniffing."""
    try:
        with open(path, "rb") as fh:
            return fh.readline(4096).decode("utf-8", errors="replace").split()
    except OSError:
        return []


def annotation_rows(path: Path, fields: int, result: LoadResult):
    """Yield (tokens, numbers) of each row of a whitespace-separated annotation file with `fields` fields
    (a name, then numbers); rows with another count or with bad or non-finite numbers are counted in
    `result.skipped` and left out."""
    for line in read_text_lines(path):
        tokens = line.split()
        if len(tokens) != fields:
            result.skipped[SKIP_BAD_VALUES] += 1
            continue
        values = parse_floats(tokens[1:])
        if isinstance(values, str):
            result.skipped[values] += 1
            continue
        yield tokens, values


def start_load(root: Path, fmt: str, files: list[Path], what: str) -> LoadResult:
    """An empty LoadResult for `files`, or a DatasetError naming `what` was not found under `root`."""
    if not files:
        raise DatasetError(f"{root}: no {what} found")
    return LoadResult(fmt, str(root))
