"""Training images for the multi-face detector, composed from `training.data.faces_cache.FacesCache`.

Few real photos have every face labelled, so most images are composed (the copy-paste / mosaic
augmentation of detector training): a background, then one of
- "photo" (`PHOTO_SHARE`): a whole photo whose every face is labelled, scaled so its face has a random
  size, turned a little, placed anywhere;
- "mosaic" (`MOSAIC_SHARE`): 1..`MAX_PASTED` face patches pasted with soft edges at random sizes (face
  square `FACE_SIDE_PX`, log-uniform: the scale-specific detector's range, inter-ocular distances of
  about 4 to 27 px), positions, rolls and mirrorings, overlapping little;
- "empty" (the rest): no face.
Faces may be covered (`occlude`): a medical mask, sunglasses or a hand drawn from their own points, as the
landmark model's crops are (`training.augment.face_occluders`, the same rates), so masked faces are found.
Any image may also get decoys: face patches cut into blocks and shuffled, face-coloured and face-textured
but no face (`DECOY_SHARE`), and a black band at the right or bottom, as a letterbox pads (`BAR_SHARE`).
Backgrounds are windows of the whole photos away from every labelled face, or synthetic textures.
Photometric changes (brightness, contrast, grey, blur, noise, JPEG, low resolution) end it.

Everything is numpy / OpenCV on uint8 BGR: `compose` returns the image and the (K, 4, 2) points of the
faces whose centre lies in it.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from core.detector_net import DetectorConfig
from core.geometry import face_square_from_points
from core.meta import MIRRORED_ORDER
from training.augment import HAND_RATE, MASK_RATE, SUNGLASSES_RATE, face_occluders
from training.data.faces_cache import PATCH_CONTEXT, PATCH_PX, FacesCache

PHOTO_SHARE = 0.3
MOSAIC_SHARE = 0.6
MAX_PASTED = 10
# Face-square side in the composed image (inter-ocular ~ side / 2.4): the sizes the scale-specific
# detector learns; the runtime's image pyramid (halving) brings every larger face into this range.
FACE_SIDE_PX = DetectorConfig().face_side_px
NEAR_LEVEL_SHARE = 0.85  # the rest turned anywhere (faces on their side, upside down)
NEAR_LEVEL_DEG = 20.0
MAX_OVERLAP_IOU = 0.2
DECOY_SHARE = 0.3
BAR_SHARE = 0.2
SYNTHETIC_BACKGROUND_SHARE = 0.35
MIN_WINDOW_PX = 40
# Whole photos whose every face is labelled; from other sets a photo is pasted only within PHOTO_CONTEXT
# face sides of its labelled faces, and only these give background windows.
FULLY_LABELLED_SOURCES = ("ytf-csv", "dlib-xml")
PHOTO_CONTEXT = 2.2
FACE_GROWTH = 0.35  # background windows keep this many face sides off every labelled face


def _soft_mask(size: int, radius_share: float = 0.47, edge_px: float = 6.0) -> np.ndarray:
    """A float32 (size, size) disc of ones fading to zero over about `edge_px` at its rim."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    r = np.hypot(xx - size / 2, yy - size / 2)
    return np.clip((radius_share * size - r) / edge_px + 0.5, 0.0, 1.0).astype(np.float32)


PATCH_MASK = _soft_mask(PATCH_PX)
FACE_IN_PATCH_PX = PATCH_PX / PATCH_CONTEXT


def _angle(rng: np.random.Generator) -> float:
    if rng.random() < NEAR_LEVEL_SHARE:
        return float(np.clip(rng.normal(0, NEAR_LEVEL_DEG / 2), -NEAR_LEVEL_DEG, NEAR_LEVEL_DEG))
    return float(rng.uniform(-180, 180))


def _similarity(center_src: np.ndarray, center_dst: np.ndarray, scale: float, angle_deg: float,
                flip: bool) -> np.ndarray:
    """2x3 map: mirror (optional) about center_src, turn by angle, scale, move center_src to center_dst."""
    a = math.radians(angle_deg)
    c, s = math.cos(a) * scale, math.sin(a) * scale
    rot = np.array([[c, -s], [s, c]])
    if flip:
        rot = rot @ np.array([[-1.0, 0.0], [0.0, 1.0]])
    t = np.asarray(center_dst, np.float64) - rot @ np.asarray(center_src, np.float64)
    return np.hstack([rot, t[:, None]])


def _map_points(points: np.ndarray, m: np.ndarray, flip: bool) -> np.ndarray:
    out = points.reshape(-1, 2) @ m[:, :2].T + m[:, 2]
    out = out.reshape(points.shape).astype(np.float32)
    return out[..., list(MIRRORED_ORDER), :] if flip else out


def _synthetic_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth colour noise with a few lines and rectangles: texture without any face."""
    cells = int(rng.integers(2, 12))
    small = rng.integers(0, 256, size=(cells, cells, 3)).astype(np.float32)
    small = small * 0.4 + small.mean(axis=2, keepdims=True) * 0.6  # muted colours, as in photos
    image = cv2.resize(small.astype(np.uint8), (size, size), interpolation=cv2.INTER_CUBIC)
    for _ in range(int(rng.integers(0, 6))):
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        p1 = tuple(int(v) for v in rng.integers(0, size, 2))
        p2 = tuple(int(v) for v in rng.integers(0, size, 2))
        if rng.random() < 0.5:
            cv2.line(image, p1, p2, color, int(rng.integers(1, 6)))
        else:
            cv2.rectangle(image, p1, p2, color, -1 if rng.random() < 0.5 else 2)
    return image


def background_window(rng: np.random.Generator, photo: np.ndarray, points: np.ndarray, tries: int = 8
                      ) -> np.ndarray | None:
    """A square window (x, y, side) of a photo that overlaps no labelled face (grown by FACE_GROWTH), or None."""
    h, w = photo.shape[:2]
    grown = []
    for face in points:
        center, side = face_square_from_points(face)
        half = side * (0.5 + FACE_GROWTH)
        grown.append((center[0] - half, center[1] - half, center[0] + half, center[1] + half))
    grown_arr = np.array(grown, np.float32).reshape(-1, 4)
    for _ in range(tries):
        side = rng.uniform(MIN_WINDOW_PX, max(MIN_WINDOW_PX + 1, min(h, w)))
        if side > min(h, w):
            return None
        x, y = rng.uniform(0, w - side), rng.uniform(0, h - side)
        overlap = (np.minimum(x + side, grown_arr[:, 2]) > np.maximum(x, grown_arr[:, 0])) & \
                  (np.minimum(y + side, grown_arr[:, 3]) > np.maximum(y, grown_arr[:, 1]))
        if not overlap.any():
            return np.array([x, y, side])
    return None


def _background(cache: FacesCache, rng: np.random.Generator, size: int) -> np.ndarray:
    sources = [i for i, g in enumerate(cache.photo_groups) if g in FULLY_LABELLED_SOURCES]
    if sources and rng.random() >= SYNTHETIC_BACKGROUND_SHARE:
        for _ in range(4):
            i = sources[int(rng.integers(len(sources)))]
            window = background_window(rng, cache.photos[i], cache.photo_points[i])
            if window is not None:
                x, y, side = window
                k = size / side
                m = np.array([[k, 0, -x * k], [0, k, -y * k]])
                out = cv2.warpAffine(cache.photos[i], m, (size, size), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REFLECT)
                return out[:, ::-1].copy() if rng.random() < 0.5 else out
    return _synthetic_background(rng, size)


def _paste(canvas: np.ndarray, patch: np.ndarray, m: np.ndarray) -> None:
    """Blend a PATCH_PX patch into the canvas through the 2x3 map m, with PATCH_MASK's soft rim."""
    size = canvas.shape[1], canvas.shape[0]
    warped = cv2.warpAffine(patch, m, size, flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(PATCH_MASK, m, size, flags=cv2.INTER_LINEAR)[..., None]
    canvas[:] = (canvas * (1.0 - alpha) + warped * alpha).astype(np.uint8)


def _face_side(rng: np.random.Generator) -> float:
    lo, hi = FACE_SIDE_PX
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _square_iou(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    (ax, ay, asd), (bx, by, bsd) = a, b
    ix = max(0.0, min(ax + asd / 2, bx + bsd / 2) - max(ax - asd / 2, bx - bsd / 2))
    iy = max(0.0, min(ay + asd / 2, by + bsd / 2) - max(ay - asd / 2, by - bsd / 2))
    inter = ix * iy
    return inter / (asd * asd + bsd * bsd - inter)


def _mosaic(canvas: np.ndarray, cache: FacesCache, rng: np.random.Generator) -> list[np.ndarray]:
    size = canvas.shape[0]
    placed: list[tuple[float, float, float]] = []
    faces = []
    count = min(MAX_PASTED, 1 + int(rng.geometric(0.3)) - 1)
    for _ in range(count):
        side = _face_side(rng)
        for _ in range(6):
            cx, cy = rng.uniform(0, size), rng.uniform(0, size)
            if all(_square_iou((cx, cy, side), p) <= MAX_OVERLAP_IOU for p in placed):
                break
        else:
            continue
        i = int(rng.integers(len(cache.patches)))
        flip = bool(rng.random() < 0.5)
        m = _similarity(np.array([PATCH_PX / 2, PATCH_PX / 2]), np.array([cx, cy]), side / FACE_IN_PATCH_PX,
                        _angle(rng), flip)
        _paste(canvas, cache.patches[i], m)
        placed.append((cx, cy, side))
        faces.append(_map_points(cache.patch_points[i], m, flip))
    return faces


def _photo_mask(photo: np.ndarray, points: np.ndarray, whole: bool) -> np.ndarray:
    """uint8 mask of the part of a photo that is pasted: all of it for sets whose every face is labelled
    (`FULLY_LABELLED_SOURCES`), else the squares of PHOTO_CONTEXT face sides around its labelled faces
    (LFW and web photos show other people, unlabelled, beside the labelled face)."""
    if whole:
        return np.full(photo.shape[:2], 255, np.uint8)
    mask = np.zeros(photo.shape[:2], np.uint8)
    for face in points:
        center, side = face_square_from_points(face)
        half = side * PHOTO_CONTEXT / 2
        x1, y1 = (int(max(0, v - half)) for v in center)
        x2, y2 = (int(v + half) for v in center)
        mask[y1:y2, x1:x2] = 255
    return mask


def _photo(canvas: np.ndarray, cache: FacesCache, rng: np.random.Generator) -> list[np.ndarray]:
    size = canvas.shape[0]
    i = int(rng.integers(len(cache.photos)))
    photo, points = cache.photos[i], cache.photo_points[i]
    sides = [face_square_from_points(p)[1] for p in points]
    j = int(np.argmax(sides))
    center, side = face_square_from_points(points[j])
    scale = _face_side(rng) / max(side, 1.0)
    target = np.array([rng.uniform(0.1, 0.9) * size, rng.uniform(0.1, 0.9) * size])
    flip = bool(rng.random() < 0.5)
    m = _similarity(center, target, scale, _angle(rng) if rng.random() < 0.5 else 0.0, flip)
    mask = _photo_mask(photo, points, cache.photo_groups[i] in FULLY_LABELLED_SOURCES)
    warped = cv2.warpAffine(photo, m, (size, size), flags=cv2.INTER_LINEAR)
    inside = cv2.warpAffine(mask, m, (size, size), flags=cv2.INTER_NEAREST) > 0
    canvas[inside] = warped[inside]
    return [_map_points(p, m, flip) for p in points]


def _decoys(canvas: np.ndarray, cache: FacesCache, rng: np.random.Generator, faces: list[np.ndarray]) -> None:
    """1..3 face patches cut into 3x3 or 4x4 shuffled blocks, pasted away from the faces."""
    size = canvas.shape[0]
    placed = [(*face_square_from_points(f)[0], face_square_from_points(f)[1]) for f in faces]
    for _ in range(int(rng.integers(1, 4))):
        side = _face_side(rng)
        cx, cy = rng.uniform(0, size), rng.uniform(0, size)
        if any(_square_iou((cx, cy, side), p) > 0.05 for p in placed):
            continue
        patch = cache.patches[int(rng.integers(len(cache.patches)))]
        n = int(rng.choice([3, 4]))
        b = PATCH_PX // n
        blocks = [patch[r * b:(r + 1) * b, c * b:(c + 1) * b] for r in range(n) for c in range(n)]
        order = rng.permutation(len(blocks))
        shuffled = patch.copy()
        for k, src in enumerate(order):
            r, c = divmod(k, n)
            shuffled[r * b:(r + 1) * b, c * b:(c + 1) * b] = blocks[src]
        m = _similarity(np.array([PATCH_PX / 2, PATCH_PX / 2]), np.array([cx, cy]), side / FACE_IN_PATCH_PX,
                        float(rng.uniform(-180, 180)), False)
        _paste(canvas, shuffled, m)
        placed.append((cx, cy, side))


def _photometric(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = image.astype(np.float32)
    out = out * rng.uniform(0.6, 1.4) + rng.uniform(-30, 30)
    if rng.random() < 0.1:
        out[:] = out.mean(axis=2, keepdims=True)
    if rng.random() < 0.2:
        out += rng.normal(0, rng.uniform(2, 10), out.shape)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.15:
        k = int(rng.choice([3, 5]))
        out = cv2.GaussianBlur(out, (k, k), 0)
    if rng.random() < 0.1:
        size = out.shape[0]
        small = max(8, int(size * rng.uniform(0.35, 0.7)))
        out = cv2.resize(cv2.resize(out, (small, small), interpolation=cv2.INTER_AREA), (size, size),
                         interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.25:
        ok, data = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 90))])
        if ok:
            out = cv2.imdecode(data, cv2.IMREAD_COLOR)
    return out


KINDS = ("photo", "mosaic", "empty")


def occlude(canvas: np.ndarray, faces: list[np.ndarray], rng: np.random.Generator,
            rates: tuple[float, float, float] = (MASK_RATE, SUNGLASSES_RATE, HAND_RATE)) -> None:
    """Cover some faces in place (uint8 SxSx3 BGR canvas, square as composed images are; faces: (4, 2)
    points each): each gets a medical mask, sunglasses or a hand with the landmark training's rates
    (`training.augment.face_occluders`)."""
    if not faces or sum(rates) <= 0:
        return
    import torch

    x = torch.from_numpy(np.ascontiguousarray(canvas[..., ::-1].transpose(2, 0, 1))).float()[None] / 255.0
    for face in faces:
        face_occluders(x, np.asarray(face, np.float32)[None], rng, rates)
    canvas[:] = (x[0].numpy().transpose(1, 2, 0)[..., ::-1] * 255.0 + 0.5).clip(0, 255).astype(np.uint8)


def compose(cache: FacesCache, rng: np.random.Generator, size: int, kind: str | None = None,
            decoys: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One composed training image (uint8 size x size x 3 BGR) and the (K, 4, 2) float32 points of
    the faces whose face-square centre lies inside it (module docstring); `kind` (KINDS) forces the
    kind, else it is drawn (PHOTO_SHARE, MOSAIC_SHARE, the rest empty); `decoys` forces shuffled-face
    decoys on or off, else they come with DECOY_SHARE."""
    canvas = _background(cache, rng, size)
    if kind is None:
        draw = rng.random()
        kind = "photo" if draw < PHOTO_SHARE else "mosaic" if draw < PHOTO_SHARE + MOSAIC_SHARE else "empty"
    if kind == "photo" and cache.photos:
        faces = _photo(canvas, cache, rng)
    elif kind == "mosaic" and len(cache.patches):
        faces = _mosaic(canvas, cache, rng)
    else:
        faces = []
    occlude(canvas, faces, rng)
    with_decoys = rng.random() < DECOY_SHARE if decoys is None else decoys
    if len(cache.patches) and with_decoys:
        _decoys(canvas, cache, rng, faces)
    width, height = size, size  # the part not covered by a letterbox band
    if rng.random() < BAR_SHARE:  # a letterbox's black band (the runtime pads right and bottom)
        cut = int(size * rng.uniform(0.6, 0.95))
        if rng.random() < 0.5:
            canvas[:, cut:], width = 0, cut
        else:
            canvas[cut:], height = 0, cut
    canvas = _photometric(canvas, rng)
    kept = []
    for face in faces:
        center, _ = face_square_from_points(face)
        if 0 <= center[0] < width and 0 <= center[1] < height:
            kept.append(face)
    points = np.stack(kept).astype(np.float32) if kept else np.zeros((0, 4, 2), np.float32)
    return canvas, points
