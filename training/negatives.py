"""Landmark crops that do not hold the face, for the face-quality head (`LandmarkConfig.quality`).

The tracker must tell a face crop from a crop that only looks like one: a track that slid off the face,
a box far too large or too small, a face cut by the frame's edge. Four kinds of negatives, drawn
alike, each cut from the cached context patch around a labelled face (the cache holds
`training.data.cache.CONTEXT_MARGIN` crop sides when the quality head trains; beyond the patch the crop
is black, as beyond a frame's edge at run time):

- "off": shifted off the face: the crop shows less than `MAX_FACE_INSIDE` of the face square;
- "tiny": zoomed out: the face square covers less than `MAX_TINY_FACE_AREA` of the crop's area;
- "big": zoomed in: the crop's side is at most `MAX_BIG_CROP_PER_FACE` of the face square's, a cheek
  or an eye fills it;
- "border": a usual face crop with the frame's edge past the face centre: a black band from one side
  over `BORDER_NEGATIVE_SHARE` of the crop.

The face square is the nominal crop side / `core.meta.LANDMARK_CROP_SCALE` around the crop's centre (the
face box's square). Positive crops, too, get a narrow black band now and then (`BORDER_POSITIVE_SHARE`),
so black at the crop's edge alone never means "no face".
"""

from __future__ import annotations

import math

import numpy as np
import torch

from core.geometry import apply_affine, crop_matrix
from core.meta import LANDMARK_CROP_SCALE
from training.augment import landmark_crop_params, roll_angle

NEGATIVE_KINDS = ("off", "tiny", "big", "border")
MAX_FACE_INSIDE = 0.3  # "off": share of the face square's area the crop may still show
MAX_TINY_FACE_AREA = 0.15  # "tiny": face square area / crop area below this
MAX_BIG_CROP_PER_FACE = 0.55  # "big": crop side / face square side at most this
OFF_SCALES = (0.8, 1.5)  # crop side in nominal crop sides, per kind
TINY_SCALES = (2.0, 2.5)  # (1 / 1.3 / 2.0)^2 = 0.148 < MAX_TINY_FACE_AREA
BIG_SCALES = (0.25, 0.42)  # x 1.3 = 0.33..0.55 face sides
BORDER_NEGATIVE_SHARE = (0.55, 0.85)  # black band over this share of the crop: past the face centre
# ... and on some positives, short of the face's middle: up to between an eye and the nose (a face half
# outside the frame, ../shared/field-cases/half-outside), its points still trained where the band hides them
BORDER_POSITIVE_SHARE = (0.03, 0.42)
BORDER_POSITIVE_RATE = 0.15
EDGES = ("left", "right", "top", "bottom")
_GRID = (np.arange(8) + 0.5) / 8 - 0.5  # 8 x 8 sample points over a unit square, centred


def face_inside_share(frame_to_crop: np.ndarray, center_xy: np.ndarray, face_side: float, out_size: int) -> float:
    """Share (0..1) of the face square (side `face_side` px, axis-aligned around `center_xy`) that lies
    inside the `out_size` crop of the 2x3 map `frame_to_crop` (8 x 8 sample points)."""
    gx, gy = np.meshgrid(_GRID, _GRID)
    pts = np.stack([gx.ravel(), gy.ravel()], axis=1) * face_side + np.asarray(center_xy, dtype=np.float64)
    crop = apply_affine(pts, frame_to_crop)
    inside = (crop >= -0.5).all(axis=1) & (crop <= out_size - 0.5).all(axis=1)
    return float(inside.mean())


def negative_crop_params(rng: np.random.Generator, center_xy: np.ndarray, side: float, out_size: int
                         ) -> tuple[np.ndarray, bool, tuple[int, float] | None]:
    """A crop without the face around `center_xy` (nominal crop side `side` px): (2x3 map, mirrored,
    black band (edge index into EDGES, share of the crop) or None). The kind is drawn from NEGATIVE_KINDS."""
    kind = NEGATIVE_KINDS[int(rng.integers(len(NEGATIVE_KINDS)))]
    center = np.asarray(center_xy, dtype=np.float64)
    face = side / LANDMARK_CROP_SCALE
    angle, flip = roll_angle(rng), bool(rng.random() < 0.5)
    if kind == "border":
        m, flip = landmark_crop_params(rng, center, side, out_size, True)
        return m, flip, border_band(rng, BORDER_NEGATIVE_SHARE)
    if kind == "tiny":
        crop = side * rng.uniform(*TINY_SCALES)
        room = max(0.0, (crop - face * math.sqrt(2)) / 2)  # the face stays inside at any roll
        return crop_matrix(center + rng.uniform(-room, room, size=2), crop, out_size, angle, flip), flip, None
    if kind == "big":
        crop = side * rng.uniform(*BIG_SCALES)
        return crop_matrix(center + rng.uniform(-0.5, 0.5, size=2) * face, crop, out_size, angle, flip), flip, None
    crop = side * rng.uniform(*OFF_SCALES)
    for distance in np.linspace(0.5, 1.3, 9):  # "off": the nearest drawn distance that leaves the face
        theta = rng.uniform(0, 2 * math.pi)
        shift = rng.uniform(distance, distance + 0.1) * crop * np.array([math.cos(theta), math.sin(theta)])
        m = crop_matrix(center + shift, crop, out_size, angle, flip)
        if face_inside_share(m, center, face, out_size) < MAX_FACE_INSIDE:
            break
    return m, flip, None


def border_band(rng: np.random.Generator, share: tuple[float, float]) -> tuple[int, float]:
    """A black band: (edge index into EDGES, share of the crop it covers, drawn in `share`)."""
    return int(rng.integers(len(EDGES))), float(rng.uniform(*share))


def band_mask(bands: list[tuple[int, float] | None], size: int, device: torch.device) -> torch.Tensor:
    """(B, 1, S, S) float mask: 1, and 0 over each item's black band (None: no band)."""
    mask = torch.ones(len(bands), 1, size, size, device=device)
    for k, band in enumerate(bands):
        if band is None:
            continue
        edge, share = band
        n = int(round(share * size))
        if EDGES[edge] == "left":
            mask[k, :, :, :n] = 0
        elif EDGES[edge] == "right":
            mask[k, :, :, size - n:] = 0
        elif EDGES[edge] == "top":
            mask[k, :, :n, :] = 0
        else:
            mask[k, :, size - n:, :] = 0
    return mask

