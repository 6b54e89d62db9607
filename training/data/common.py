"""Helpers shared by the dataset readers."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from training.data.samples import (
    SKIP_BAD_IMAGE_FORMAT,
    SKIP_MISSING_IMAGE,
    SKIP_NAN,
    SKIP_OUTSIDE,
    SKIP_UNREADABLE_IMAGE,
    FaceSample,
    points_outside,
)

MIN_IMAGE_SIDE = 8  # smaller images are skipped as unsupported


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
                size: tuple[int, int], visible: np.ndarray | None = None) -> FaceSample | str:
    """A FaceSample, or the reason to skip it (NaN, points far outside the image)."""
    points4 = np.asarray(points4, dtype=np.float32).reshape(4, 2)
    box_xyxy = np.asarray(box_xyxy, dtype=np.float32).reshape(4)
    if not (np.isfinite(points4).all() and np.isfinite(box_xyxy).all()):
        return SKIP_NAN
    if points_outside(points4, *size):
        return SKIP_OUTSIDE
    vis = np.ones(4, dtype=bool) if visible is None else np.asarray(visible, dtype=bool)
    return FaceSample(str(image_path), points4, vis, box_xyxy, identity, source, size)
