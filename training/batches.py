"""Turn cached faces/frames into augmented, normalised batches with targets, on the training device."""

from __future__ import annotations

import numpy as np
import torch

from core.geometry import apply_affine, box_through, crop_matrix, face_square_from_points, letterbox_matrix
from core.meta import LANDMARK_CROP_SCALE
from training.augment import (
    box_frame_params,
    face_occluders,
    flip_points,
    landmark_crop_params,
    normalize,
    photometric,
    warp_batch,
)
from training.data.cache import FrameCache, LandmarkCache
from training.negatives import BORDER_POSITIVE_RATE, BORDER_POSITIVE_SHARE, band_mask, border_band, negative_crop_params

# Share of training crops built as the runtime's second and third passes build theirs: the face square of
# the four points x LANDMARK_CROP_SCALE (`tracker.locate.Crop.of_face`), not the square of the face box.
# A model trained on box crops alone scored 0.4-0.6 NME points worse on crops of the true points than on
# the box's (docs/evaluation.md), which every pass after the first is.
POINT_CROP_SHARE = 0.5
# The face-quality target of a crop whose face an occluder covers: 1 - OCCLUDED_QUALITY_DROP x the covered
# share of its face square (issue 17: the per-face confidence drops when a face is mostly covered). A
# medical mask hides about half of it (target ~0.75), sunglasses a tenth: all stay above the runtime's
# min_quality 0.5, so covered faces are still tracked.
OCCLUDED_QUALITY_DROP = 0.5


def landmark_batch(cache: LandmarkCache, idx: np.ndarray, input_size: int, rng: np.random.Generator,
                   gen: torch.Generator, train: bool, device: torch.device, negative_fraction: float = 0.0
                   ) -> dict[str, torch.Tensor]:
    """Crops of cached faces with their targets, on `device`:

    - "x" (B,3,S,S) ImageNet-normalised RGB;
    - "points" (B,2P) and "box" (B,4), crop-normalised (crop pixels / S, pixel centres at integers), in
      the face's own convention (its row of `cache.conventions`);
    - "face" (B,) 1.0 for a crop of the face, 0.0 for a negative (`training.negatives`: its points and
      box are where the face would be, for nobody to train on); with negatives, a training crop whose face
      an occluder covers gets 1 - OCCLUDED_QUALITY_DROP x the covered share of its face square (> 0.5);
    - "item" (B,) the cache row of each crop, "convention" (B,) its convention row (CONVENTIONS),
      "flipped" (B,) bool: a mirrored crop (its eyes' labels swapped).

    With `train` the crop is the face box's square or, for a POINT_CROP_SHARE of items, the face square of
    the points (as the runtime's later passes crop), jittered (scale, shift, roll, mirror with the eyes
    swapped), photometrically augmented, sometimes cut by a narrow black band (the frame's edge), and
    each item is a negative with probability `negative_fraction`. Without it, the crops are the nominal
    ones: the face square of side `cache.crop_side` around `cache.center` (the runtime's crop of the face
    box), followed, when
    `negative_fraction` > 0, by one negative per item (a fixed validation set, given a fixed `rng`).
    """
    center = np.array([cache.center, cache.center])
    items = [int(i) for i in idx]
    plan = [(i, False) for i in items]
    if not train and negative_fraction > 0:
        plan += [(i, True) for i in items]
    matrices, points, boxes, faces, flips, bands = [], [], [], [], [], []
    for i, negative in plan:
        negative = negative or (train and negative_fraction > 0 and rng.random() < negative_fraction)
        band = None
        if negative:
            m, flipped, band = negative_crop_params(rng, center, cache.crop_side, input_size)
        else:
            crop_center, crop_side = center, cache.crop_side
            if train and rng.random() < POINT_CROP_SHARE:
                crop_center, face_side = face_square_from_points(cache.points[i])
                crop_side = face_side * LANDMARK_CROP_SCALE
            m, flipped = landmark_crop_params(rng, crop_center, crop_side, input_size, train)
            if train and negative_fraction > 0 and rng.random() < BORDER_POSITIVE_RATE:
                band = border_band(rng, BORDER_POSITIVE_SHARE)
        pts = apply_affine(cache.points[i], m)
        if flipped:
            pts = flip_points(pts)
        matrices.append(m)
        points.append(pts / input_size)
        boxes.append(box_through(m, cache.boxes[i]) / input_size)
        faces.append(0.0 if negative else 1.0)
        flips.append(flipped)
        bands.append(band)
    rows = [i for i, _ in plan]
    images = cache.images[torch.as_tensor(rows, device=cache.images.device)].to(device, non_blocking=True)
    x = warp_batch(images, matrices, input_size)
    pts = torch.tensor(np.stack(points), dtype=torch.float32, device=device)
    if train:
        x = photometric(x, gen)
        face_px = np.stack(points) * input_size
        face_px[np.array(faces) == 0.0] = np.nan  # no face, nothing to cover
        covered = np.zeros(len(plan), np.float32)
        x = face_occluders(x, face_px, rng, covered=covered)
        if negative_fraction > 0:  # the face quality says how much of a face the crop shows
            faces = [f * (1.0 - OCCLUDED_QUALITY_DROP * c) for f, c in zip(faces, covered)]
    if any(b is not None for b in bands):
        x = x * band_mask(bands, input_size, device)  # after the photometric changes: the edge stays black
    return {"x": normalize(x), "points": pts.reshape(len(plan), -1),
            "box": torch.tensor(np.stack(boxes), dtype=torch.float32, device=device),
            "face": torch.tensor(faces, dtype=torch.float32, device=device),
            "item": torch.tensor(rows, dtype=torch.long, device=device),
            "convention": torch.as_tensor(cache.conventions[rows], dtype=torch.long, device=device),
            "flipped": torch.tensor(flips, dtype=torch.bool, device=device)}


def _cache_map(m_src: np.ndarray, stretch: np.ndarray) -> np.ndarray:
    """Re-express a map from original pixels as a map from stretched cache pixels."""
    m = m_src.copy()
    m[:, 0] /= stretch[0]
    m[:, 1] /= stretch[1]
    return m


def _negative_window(rng: np.random.Generator, cache: FrameCache, i: int, tries: int = 8) -> np.ndarray | None:
    """A square window (cx, cy, side) of frame i that overlaps none of its faces, in original pixels."""
    w, h = cache.images.shape[2] / cache.stretch[i][0], cache.images.shape[1] / cache.stretch[i][1]
    grown = cache.boxes[i].copy()
    gw, gh = grown[:, 2] - grown[:, 0], grown[:, 3] - grown[:, 1]
    grown += np.stack([-0.25 * gw, -0.4 * gh, 0.25 * gw, 0.25 * gh], axis=1)
    for _ in range(tries):
        side = rng.uniform(0.2, 0.6) * min(w, h)
        cx, cy = rng.uniform(side / 2, w - side / 2), rng.uniform(side / 2, h - side / 2)
        x1, y1, x2, y2 = cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2
        overlap = (np.minimum(x2, grown[:, 2]) > np.maximum(x1, grown[:, 0])) & \
                  (np.minimum(y2, grown[:, 3]) > np.maximum(y1, grown[:, 1]))
        if not overlap.any():
            return np.array([cx, cy, side])
    return None


def box_batch(cache: FrameCache, idx: np.ndarray, input_size: int, rng: np.random.Generator,
              gen: torch.Generator, train: bool, device: torch.device, negative_fraction: float = 0.25
              ) -> dict[str, torch.Tensor]:
    """Letterboxed frames (B,3,S,S), target boxes (B,4) in 0..1 and presence (B,) in {0,1}."""
    matrices, boxes, presence, contents, sources = [], [], [], [], []
    n = len(cache)
    for i in idx:
        i = int(i)
        face = cache.boxes[i][cache.face_index[i]]
        want_negative = rng.random() < negative_fraction
        window = None
        if want_negative:
            for j in [i] + list(rng.integers(0, n, size=6)):
                window = _negative_window(rng, cache, int(j))
                if window is not None:
                    i = int(j)
                    break
        if window is not None:
            aspect = float(rng.choice([4 / 3, 16 / 9, 1.0]))
            ch = input_size / aspect
            m = crop_matrix(window[:2], window[2], input_size, float(rng.uniform(-8, 8)), bool(rng.random() < 0.5))
            y0 = (input_size - ch) / 2
            content = (0, int(round(y0)), input_size, int(round(y0 + ch)))
            boxes.append(np.zeros(4, np.float32))
            presence.append(0.0)
        elif train:
            m, content = box_frame_params(rng, face, input_size)
            boxes.append(np.clip(box_through(m, face), [content[0], content[1]] * 2, [content[2], content[3]] * 2)
                         / input_size)
            presence.append(1.0)
        else:
            w = cache.images.shape[2] / cache.stretch[i][0]
            h = cache.images.shape[1] / cache.stretch[i][1]
            m = letterbox_matrix(round(w), round(h), input_size)
            x0, y0 = m[0, 2], m[1, 2]
            content = (int(round(x0)), int(round(y0)), int(round(input_size - x0)), int(round(input_size - y0)))
            boxes.append(box_through(m, face) / input_size)
            presence.append(1.0)
        matrices.append(_cache_map(m, cache.stretch[i]))
        contents.append(content)
        sources.append(i)
    images = cache.images[torch.as_tensor(sources, device=cache.images.device)].to(device, non_blocking=True)
    x = warp_batch(images, matrices, input_size, padding_mode="border")
    if train:
        x = photometric(x, gen, strength=0.8)
    mask = torch.zeros(len(idx), 1, input_size, input_size, device=device)
    for k, (x0, y0, x1, y1) in enumerate(contents):
        mask[k, :, y0:y1, x0:x1] = 1.0
    x = x * mask  # letterbox bars are black, as at run time
    return {"x": normalize(x), "box": torch.tensor(np.stack(boxes), dtype=torch.float32, device=device),
            "presence": torch.tensor(presence, dtype=torch.float32, device=device)}
