"""Decode once, keep in memory: face patches for landmark training, whole frames for the box model."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from core.geometry import apply_affine, crop_affine, crop_matrix, square_from_box
from core.imageio import read_image_bgr
from core.meta import LANDMARK_CROP_SCALE
from training.data.samples import SKIP_UNREADABLE_IMAGE, FaceSample

# cached patches hold this many crop sides, so jittered crops stay inside real pixels
PATCH_MARGIN = 1.6


@dataclass
class LandmarkCache:
    """uint8 RGB patches (N, P, P, 3) centred on each face, with points and boxes in patch pixels."""

    images: torch.Tensor
    points: np.ndarray  # (N, 4, 2)
    boxes: np.ndarray  # (N, 4)
    crop_side: float  # side of the nominal landmark crop in patch pixels
    skipped: Counter

    def __len__(self) -> int:
        return len(self.points)


@dataclass
class FrameCache:
    """uint8 RGB frames stretched to (N, C, C, 3); boxes (faces per frame) in original pixels."""

    images: torch.Tensor
    stretch: np.ndarray  # (N, 2): cache pixels per original pixel in x and y
    boxes: list[np.ndarray]  # per frame: (K, 4) every labelled face box
    face_index: list[int]  # per frame: which box is the training target
    skipped: Counter

    def __len__(self) -> int:
        return len(self.boxes)


def _map_threads(fn, items, workers: int):
    if workers <= 1:
        return [fn(x) for x in items]
    pool = ThreadPoolExecutor(workers)
    try:
        return list(pool.map(fn, items))
    finally:
        # On Ctrl+C the images not started yet are dropped, not decoded first (a big cache takes minutes).
        pool.shutdown(wait=True, cancel_futures=True)


def build_landmark_cache(samples: list[FaceSample], input_size: int, workers: int = 2) -> LandmarkCache:
    """Crop and resize every face once (decode cost paid once, not every epoch)."""
    patch = int(round(input_size * PATCH_MARGIN))

    def one(sample: FaceSample):
        image = read_image_bgr(sample.image_path)
        if image is None:
            return None
        center, side = square_from_box(sample.box_xyxy, LANDMARK_CROP_SCALE)
        m = crop_matrix(center, side * PATCH_MARGIN, patch)
        out = crop_affine(image, m, patch)  # the runtime's crop, large faces area-averaged the same way
        pts = apply_affine(sample.points_px, m)
        box = apply_affine(sample.box_xyxy.reshape(2, 2), m).reshape(4)
        return cv2.cvtColor(out, cv2.COLOR_BGR2RGB), pts, box

    results = _map_threads(one, samples, workers)
    kept = [r for r in results if r is not None]
    skipped = Counter({SKIP_UNREADABLE_IMAGE: len(results) - len(kept)}) if len(kept) < len(results) else Counter()
    if not kept:
        return LandmarkCache(torch.zeros(0, patch, patch, 3, dtype=torch.uint8), np.zeros((0, 4, 2), np.float32),
                             np.zeros((0, 4), np.float32), patch / PATCH_MARGIN, skipped)
    images = torch.from_numpy(np.stack([r[0] for r in kept]))
    return LandmarkCache(images, np.stack([r[1] for r in kept]).astype(np.float32),
                         np.stack([r[2] for r in kept]).astype(np.float32), patch / PATCH_MARGIN, skipped)


def build_frame_cache(samples: list[FaceSample], cache_size: int, workers: int = 2) -> FrameCache:
    """Every image once, stretched to cache_size^2, with all of its labelled face boxes."""
    by_image: dict[str, list[FaceSample]] = {}
    for s in samples:
        by_image.setdefault(s.image_path, []).append(s)
    paths = sorted(by_image)

    def one(path: str):
        image = read_image_bgr(path)
        if image is None:
            return None
        h, w = image.shape[:2]
        small = cv2.resize(image, (cache_size, cache_size), interpolation=cv2.INTER_AREA)
        boxes = np.stack([s.box_xyxy for s in by_image[path]]).astype(np.float32)
        return cv2.cvtColor(small, cv2.COLOR_BGR2RGB), boxes, (cache_size / w, cache_size / h)

    results = _map_threads(one, paths, workers)
    images, boxes, face_index, stretch = [], [], [], []
    skipped = Counter()
    for r in results:
        if r is None:
            skipped[SKIP_UNREADABLE_IMAGE] += 1
            continue
        for k in range(len(r[1])):  # one training frame per face; other faces stay known for negatives
            images.append(r[0])
            boxes.append(r[1])
            stretch.append(r[2])
            face_index.append(k)
    tensor = torch.from_numpy(np.stack(images)) if images else torch.zeros(0, cache_size, cache_size, 3,
                                                                             dtype=torch.uint8)
    return FrameCache(tensor, np.array(stretch, dtype=np.float64).reshape(-1, 2), boxes, face_index, skipped)
