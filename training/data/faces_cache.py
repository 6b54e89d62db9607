"""Decode once, keep in memory: what the multi-face detector's training images are composed from.

- face patches: every labelled face, a square of `PATCH_CONTEXT` x its face square (the face square of
  its four points, `core.geometry.face_square_from_points`: one box rule for every set) resized to
  `PATCH_PX`, with its points in patch pixels;
- whole photos: the images of the sets whose photos have every face labelled (`WHOLE_PHOTO_SOURCES`),
  their longer side resized to `PHOTO_PX`, with all their faces' points. HELEN and Caltech WebFaces
  photos often show people nobody labelled: their faces serve as patches only, never as whole photos or
  backgrounds, so an unlabelled face is never taught as background.

Backgrounds are windows of the whole photos away from every labelled face (`background_window`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np

from core.geometry import crop_affine, crop_matrix, face_square_from_points
from core.imageio import read_image_bgr
from training.data.cache import _map_threads
from training.data.samples import SKIP_UNREADABLE_IMAGE, FaceSample

PATCH_PX = 128
PATCH_CONTEXT = 1.8  # patch side / face-square side: room to turn the face and show its surroundings
PHOTO_PX = 320
WHOLE_PHOTO_SOURCES = ("ytf-csv", "mtfl", "dlib-xml", "aflw")
FACE_GROWTH = 0.35  # a background window keeps this many face sides away from every labelled face


@dataclass
class FacesCache:
    """uint8 BGR face patches (N, PATCH_PX, PATCH_PX, 3) with their points (N, 4, 2) in patch pixels;
    whole photos (list of uint8 BGR HxWx3, longer side PHOTO_PX) with, per photo, the points (K, 4, 2)
    of every labelled face in photo pixels; `photo_groups` and `patch_groups` say where each comes from
    (`FaceSample.group`)."""

    patches: np.ndarray
    patch_points: np.ndarray
    patch_groups: list[str]
    photos: list[np.ndarray]
    photo_points: list[np.ndarray]
    photo_groups: list[str]
    skipped: Counter
    items: int = 0  # composed images per epoch (len)

    def __len__(self) -> int:
        return self.items


def face_patch(image: np.ndarray, points_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The PATCH_PX patch around a face (PATCH_CONTEXT x its face square) and its points in patch px."""
    center, side = face_square_from_points(points_px)
    m = crop_matrix(center, side * PATCH_CONTEXT, PATCH_PX)
    patch = crop_affine(image, m, PATCH_PX)
    points = np.asarray(points_px, np.float32) @ m[:, :2].T.astype(np.float32) + m[:, 2].astype(np.float32)
    return patch, points


def build_faces_cache(samples: list[FaceSample], workers: int = 2, items_per_face: float = 0.5,
                      max_photos: int = 6000, seed: int = 0) -> FacesCache:
    """Every image decoded once: a patch per labelled face, and (for WHOLE_PHOTO_SOURCES, at most
    `max_photos`, drawn evenly) the whole photo. `items_per_face` composed images per epoch and face."""
    by_image: dict[str, list[FaceSample]] = {}
    for s in samples:
        by_image.setdefault(s.image_path, []).append(s)
    paths = sorted(by_image)
    whole = [p for p in paths if by_image[p][0].source in WHOLE_PHOTO_SOURCES]
    if len(whole) > max_photos:
        whole = list(np.random.default_rng(seed).choice(whole, max_photos, replace=False))
    keep_whole = set(whole)

    def one(path: str):
        image = read_image_bgr(path)
        if image is None:
            return None
        faces = by_image[path]
        patches = [face_patch(image, s.points_px) for s in faces]
        photo = None
        if path in keep_whole:
            h, w = image.shape[:2]
            k = PHOTO_PX / max(h, w)
            small = cv2.resize(image, (max(1, round(w * k)), max(1, round(h * k))),
                               interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
            photo = (small, np.stack([s.points_px for s in faces]).astype(np.float32) * k)
        return patches, photo, faces[0].group

    patches, points, patch_groups, photos, photo_points, photo_groups = [], [], [], [], [], []
    skipped = Counter()
    for result in _map_threads(one, paths, workers):
        if result is None:
            skipped[SKIP_UNREADABLE_IMAGE] += 1
            continue
        for patch, pts in result[0]:
            patches.append(patch)
            points.append(pts)
            patch_groups.append(result[2])
        if result[1] is not None:
            photos.append(result[1][0])
            photo_points.append(result[1][1])
            photo_groups.append(result[2])
    stack = np.stack(patches) if patches else np.zeros((0, PATCH_PX, PATCH_PX, 3), np.uint8)
    pts = np.stack(points).astype(np.float32) if points else np.zeros((0, 4, 2), np.float32)
    return FacesCache(stack, pts, patch_groups, photos, photo_points, photo_groups, skipped,
                      max(1, int(len(patches) * items_per_face)))
