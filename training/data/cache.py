"""Decode once, keep in memory: face patches for landmark training, whole frames for the box model."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from core.geometry import apply_affine, crop_affine, crop_matrix, map_box, square_from_box
from core.imageio import read_image_bgr
from core.meta import LANDMARK_CROP_SCALE
from training.data.samples import CONVENTION_IBUG68, CONVENTIONS, SKIP_UNREADABLE_IMAGE, FaceSample

# cached patches hold this many crop sides, so jittered crops stay inside real pixels
PATCH_MARGIN = 1.6
# ... and this many when the face-quality head trains: room to cut crops beside the face (training.negatives)
CONTEXT_MARGIN = 2.4
# a share of the training patches is stored after a JPEG round trip at a random quality (compression
# artefacts, as in web photos and webcam streams); validation patches never are
JPEG_SHARE = 0.3
JPEG_QUALITY = (15, 75)


@dataclass
class LandmarkCache:
    """uint8 RGB patches (N, P, P, 3) around each face, with points and boxes in patch pixels.

    The face square of side `crop_side` (patch px) around (`center`, `center`) is the nominal landmark
    crop (the runtime's crop of the face box). `build_landmark_cache` makes `crop_side` the model's input
    side and `center` S/2 plus a whole number of pixels, so the nominal crop is a plain pixel copy of the
    patch (no second resampling). `conventions` (N,) holds each face's row in CONVENTIONS, `groups` (N,)
    where it comes from (`FaceSample.group`).
    """

    images: torch.Tensor
    points: np.ndarray  # (N, 4, 2)
    boxes: np.ndarray  # (N, 4)
    crop_side: float  # side of the nominal landmark crop in patch pixels
    skipped: Counter
    center: float | None = None  # patch coordinate (x and y) of the nominal crop's centre; None: patch / 2
    conventions: np.ndarray | None = None  # (N,) int; None: all CONVENTION_IBUG68
    groups: np.ndarray | None = None  # (N,) str; None: all ""

    def __post_init__(self):
        n = len(self.points)
        if self.center is None:
            self.center = self.images.shape[1] / 2
        if self.conventions is None:
            self.conventions = np.full(n, CONVENTIONS.index(CONVENTION_IBUG68), dtype=np.int64)
        if self.groups is None:
            self.groups = np.full(n, "", dtype=object)

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
    return list(_imap_threads(fn, items, workers))


def _imap_threads(fn, items, workers: int):
    """fn over items in order, `workers` threads at a time (lazily: each result is yielded as it comes)."""
    if workers <= 1:
        yield from (fn(x) for x in items)
        return
    pool = ThreadPoolExecutor(workers)
    try:
        yield from pool.map(fn, items)
    finally:
        # On Ctrl+C the images not started yet are dropped, not decoded first (a big cache takes minutes).
        pool.shutdown(wait=True, cancel_futures=True)


def patch_geometry(input_size: int, margin: float) -> tuple[int, float]:
    """(patch side P, nominal crop centre in patch px) of a cache for `input_size` crops holding about
    `margin` crop sides: the centre is input_size / 2 plus whole pixels, so a crop of side input_size
    around it copies patch pixels exactly, as the runtime's own crop has them."""
    patch = int(round(input_size * margin))
    return patch, input_size / 2 + (patch - input_size) // 2


def build_landmark_cache(samples: list[FaceSample], input_size: int, workers: int = 2, margin: float = PATCH_MARGIN,
                         jpeg_share: float = 0.0, seed: int = 0) -> LandmarkCache:
    """Crop every face once (decode cost paid once, not every epoch) into a patch of about `margin`
    crop sides, at the runtime crop's scale (the face square's side is `input_size` patch pixels); a
    `jpeg_share` of the patches (drawn with `seed`) go through a JPEG round trip at a quality in
    JPEG_QUALITY. Unreadable images are left out and counted in `skipped`."""
    patch, center = patch_geometry(input_size, margin)
    n = len(samples)
    jpeg = np.random.default_rng(seed).random(n) < jpeg_share
    quality = np.random.default_rng(seed + 1).integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1, size=n)

    def one(k: int):
        sample = samples[k]
        image = read_image_bgr(sample.image_path)
        if image is None:
            return None
        face_center, side = square_from_box(sample.box_xyxy, LANDMARK_CROP_SCALE)
        m = crop_matrix(face_center, side * patch / input_size, patch)
        m[:, 2] += center - patch / 2  # the face square's centre onto `center`
        out = crop_affine(image, m, patch)  # the runtime's crop, large faces area-averaged the same way
        if jpeg[k]:
            ok, data = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(quality[k])])
            out = cv2.imdecode(data, cv2.IMREAD_COLOR) if ok else out
        pts = apply_affine(sample.points_px, m)
        box = map_box(sample.box_xyxy, m)
        return cv2.cvtColor(out, cv2.COLOR_BGR2RGB), pts, box

    images = torch.empty((n, patch, patch, 3), dtype=torch.uint8)
    target = images.numpy()
    points, boxes, kept = [], [], []
    for k, r in enumerate(_imap_threads(one, range(n), workers)):
        if r is None:
            continue
        target[len(kept)] = r[0]  # filled in place: no second copy of a cache that may take gigabytes
        points.append(r[1])
        boxes.append(r[2])
        kept.append(k)
    skipped = Counter({SKIP_UNREADABLE_IMAGE: n - len(kept)}) if len(kept) < n else Counter()
    return LandmarkCache(images[:len(kept)], np.array(points, np.float32).reshape(-1, 4, 2),
                         np.array(boxes, np.float32).reshape(-1, 4), float(input_size), skipped, center,
                         np.array([CONVENTIONS.index(samples[k].convention) for k in kept], dtype=np.int64),
                         np.array([samples[k].group for k in kept], dtype=object))


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
