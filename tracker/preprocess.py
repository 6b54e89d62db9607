"""Frames to model inputs: square landmark crops and letterboxed frames, normalised as in training."""

from __future__ import annotations

import cv2
import numpy as np

from tracker.geometry import crop_affine, crop_matrix, letterbox, square_from_box
from tracker.meta import ModelMeta


def normalize(image_bgr: np.ndarray, meta: ModelMeta) -> np.ndarray:
    """uint8 HxWx3 BGR -> float32 3xHxW: RGB, /255, (x - mean) / std."""
    rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB).astype(np.float32)
    scale = 1.0 / (255.0 * np.asarray(meta.std, dtype=np.float32))
    shift = np.asarray(meta.mean, dtype=np.float32) / np.asarray(meta.std, dtype=np.float32)
    return np.ascontiguousarray((rgb * scale - shift).transpose(2, 0, 1))


def landmark_input(image_bgr: np.ndarray, center_xy: np.ndarray, side: float,
                   meta: ModelMeta) -> tuple[np.ndarray, np.ndarray]:
    """The normalised square crop (3xSxS) of side `side` px around `center_xy`, and its 2x3 matrix."""
    m = crop_matrix(center_xy, side, meta.input_size)
    patch = crop_affine(image_bgr, m, meta.input_size)
    return normalize(patch, meta), m


def landmark_input_from_box(image_bgr: np.ndarray, box_xyxy: np.ndarray,
                            meta: ModelMeta) -> tuple[np.ndarray, np.ndarray]:
    """The landmark crop around a face box, `meta.crop_scale` x its longer side (as in training)."""
    center, side = square_from_box(box_xyxy, meta.crop_scale)
    return landmark_input(image_bgr, center, side, meta)


def box_input(image_bgr: np.ndarray, meta: ModelMeta) -> tuple[np.ndarray, np.ndarray]:
    """The normalised letterboxed frame (3xSxS) and the 2x3 frame-to-square matrix."""
    square, m = letterbox(image_bgr, meta.input_size)
    return normalize(square, meta), m


def to_batch(inputs: list[np.ndarray]) -> np.ndarray:
    """Stack 3xHxW inputs into one contiguous NCHW float32 batch."""
    return np.ascontiguousarray(np.stack(inputs, axis=0), dtype=np.float32)
