"""Real faces for checking exports: where to find them and model inputs made from them.

Inputs are made by the runtime's own preprocessing (`core.preprocess`): landmark crops around the
face box (`meta.crop_scale` x its longer side) and whole images letterboxed to the model's square.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.geometry import apply_affine, map_box
from core.imageio import read_image_bgr
from core.meta import ModelMeta
from core.preprocess import box_input, landmark_input_from_box

SHARED_DATA_ENV = "FACETRACK_SHARED_DATA"
DEFAULT_SET = "ytf-keypoints"


def default_data_path() -> Path | None:
    """$FACETRACK_SHARED_DATA (the data folder or its ytf-keypoints set), else ../shared/data/ytf-keypoints."""
    candidates: list[Path] = []
    env = os.environ.get(SHARED_DATA_ENV)
    if env:
        candidates += [Path(env) / DEFAULT_SET, Path(env)]
    repo_root = Path(__file__).resolve().parent.parent
    candidates.append(repo_root.parent / "shared" / "data" / DEFAULT_SET)
    for path in candidates:
        if path.is_dir() and any(path.glob("*_frames_keypoints.csv")):
            return path
    return None


def pick(samples: list, n: int, seed: int = 0) -> list:
    """Up to n samples, drawn without replacement in a fixed order (same seed, same faces)."""
    order = np.random.default_rng(seed).permutation(len(samples))
    return [samples[i] for i in order[:n]]


class ImageCache:
    """Decoded BGR images by path (each decoded once; None when unreadable)."""

    def __init__(self) -> None:
        self._images: dict[str, np.ndarray | None] = {}

    def get(self, path: str) -> np.ndarray | None:
        if path not in self._images:
            self._images[path] = read_image_bgr(path)
        return self._images[path]


@dataclass
class RealInputs:
    """Model inputs (N,3,S,S) float32 and their targets in the model's output coordinates."""

    x: np.ndarray
    target: np.ndarray  # landmarks: (N, 2P) crop-normalised points; box: (N, 4) letterbox-normalised box

    def __len__(self) -> int:
        return len(self.x)


def landmark_inputs(samples: list, meta: ModelMeta, images: ImageCache) -> RealInputs:
    """Face crops and their points (0..1 of the crop)."""
    xs, targets = [], []
    for s in samples:
        image = images.get(s.image_path)
        if image is None:
            continue
        x, m = landmark_input_from_box(image, s.box_xyxy, meta)
        xs.append(x)
        targets.append(apply_affine(s.points_px, m).reshape(-1) / meta.input_size)
    return _stack(xs, targets, meta, 2 * len(meta.point_names))


def box_inputs(samples: list, meta: ModelMeta, images: ImageCache) -> RealInputs:
    """Letterboxed whole images (one per image) and their largest labelled face box (0..1 of the square)."""
    largest: dict[str, np.ndarray] = {}
    for s in samples:
        b = np.asarray(s.box_xyxy, np.float32)
        area = (b[2] - b[0]) * (b[3] - b[1])
        old = largest.get(s.image_path)
        if old is None or area > (old[2] - old[0]) * (old[3] - old[1]):
            largest[s.image_path] = b
    xs, targets = [], []
    for path, box in largest.items():
        image = images.get(path)
        if image is None:
            continue
        x, m = box_input(image, meta)
        xs.append(x)
        targets.append(map_box(box, m) / meta.input_size)
    return _stack(xs, targets, meta, 4)


# The scale-specific detector is checked on faces of this side (input px): inside the sizes it learned
DETECTOR_CHECK_FACE_PX = 40.0


def detector_inputs(samples: list, meta: ModelMeta, images: ImageCache) -> RealInputs:
    """For the scale-specific detector: one square input per face, the photo scaled so the face's square
    (the face square of its points, the box rule the detector learns) is DETECTOR_CHECK_FACE_PX a side and
    centred, and that box (0..1 of the square); the runtime reaches other sizes through its pyramid."""
    from core.geometry import box_from_square, crop_affine, crop_matrix, face_square_from_points
    from core.preprocess import normalize

    xs, targets = [], []
    s = meta.input_size
    for sample in samples:
        image = images.get(sample.image_path)
        if image is None:
            continue
        center, side = face_square_from_points(sample.points_px)
        m = crop_matrix(center, side * s / DETECTOR_CHECK_FACE_PX, s)
        xs.append(normalize(crop_affine(image, m, s), meta))
        targets.append(map_box(box_from_square(center, side), m) / s)
    return _stack(xs, targets, meta, 4)


def model_inputs(samples: list, meta: ModelMeta, images: ImageCache) -> RealInputs:
    """Real inputs for a landmark model (face crops), the box model (whole images letterboxed to its
    square) or the detector (`detector_inputs`)."""
    if meta.kind == "box":
        return box_inputs(samples, meta, images)
    if meta.kind == "detector":
        return detector_inputs(samples, meta, images)
    return landmark_inputs(samples, meta, images)


def _stack(xs: list, targets: list, meta: ModelMeta, width: int) -> RealInputs:
    if not xs:
        s = meta.input_size
        return RealInputs(np.zeros((0, 3, s, s), np.float32), np.zeros((0, width), np.float32))
    return RealInputs(np.stack(xs).astype(np.float32), np.stack(targets).astype(np.float32))
