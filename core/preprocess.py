"""Frames to model inputs: square landmark crops and letterboxed frames, normalised as in training."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from core.geometry import crop_affine, crop_matrix, letterbox, square_from_box
from core.meta import ModelMeta


@lru_cache(maxsize=8)
def _scale_shift(mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    std32 = np.asarray(std, dtype=np.float32)
    scale = 1.0 / (255.0 * std32)
    shift = np.asarray(mean, dtype=np.float32) / std32
    return scale.reshape(3, 1, 1), shift.reshape(3, 1, 1)


def normalize(image_bgr: np.ndarray, meta: ModelMeta) -> np.ndarray:
    """uint8 HxWx3 BGR -> float32 3xHxW: RGB, /255, (x - mean) / std."""
    scale, shift = _scale_shift(tuple(meta.mean), tuple(meta.std))
    h, w = image_bgr.shape[:2]
    out = np.empty((3, h, w), dtype=np.float32)
    # One pass reads BGR as reversed channel planes (RGB) and scales into the CHW output, one pass
    # shifts in place: no colour-converted copy, no float HWC copy, no transposing copy.
    np.multiply(image_bgr.transpose(2, 0, 1)[::-1], scale, out=out, casting="unsafe")
    out -= shift
    return out


def landmark_input(image_bgr: np.ndarray, center_xy: np.ndarray, side: float, meta: ModelMeta,
                   angle_deg: float = 0.0, flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The normalised square crop (float32 3xSxS, S = `meta.input_size`) of side `side` px around
    `center_xy` (frame px), turned by `angle_deg` (`core.geometry.crop_matrix`: a face of that roll
    comes out upright) and mirrored when `flip`, and its 2x3 frame_to_crop affine (frame px -> crop
    px), which `core.postprocess.landmark_points` inverts to map the points back."""
    frame_to_crop = crop_matrix(center_xy, side, meta.input_size, angle_deg, flip)
    patch = crop_affine(image_bgr, frame_to_crop, meta.input_size)
    return normalize(patch, meta), frame_to_crop


def landmark_input_from_box(image_bgr: np.ndarray, box_xyxy: np.ndarray,
                            meta: ModelMeta) -> tuple[np.ndarray, np.ndarray]:
    """The landmark crop around a face box, `meta.crop_scale` x its longer side (as in training)."""
    center, side = square_from_box(box_xyxy, meta.crop_scale)
    return landmark_input(image_bgr, center, side, meta)


def box_input(image_bgr: np.ndarray, meta: ModelMeta) -> tuple[np.ndarray, np.ndarray]:
    """The normalised letterboxed frame (float32 3xSxS) and its 2x3 frame_to_letterbox affine."""
    square, frame_to_letterbox = letterbox(image_bgr, meta.input_size)
    return normalize(square, meta), frame_to_letterbox


def to_batch(inputs: list[np.ndarray]) -> np.ndarray:
    """Stack 3xHxW inputs into one contiguous NCHW float32 batch (a view, not a copy, for one input)."""
    if len(inputs) == 1:
        return np.ascontiguousarray(inputs[0][None], dtype=np.float32)
    return np.ascontiguousarray(np.stack(inputs, axis=0), dtype=np.float32)
