"""What a loaded dataset holds: counts, skips, splits, face sizes, and a contact sheet to look at."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from core.colors import BOX_COLOR_BGR, POINT_COLORS_BGR
from core.errors import InputError
from core.geometry import apply_affine, crop_affine, crop_matrix, map_box, square_from_box
from core.imageio import read_image_bgr
from core.meta import POINT_NAMES
from training.data.samples import FaceSample, LoadResult
from training.data.splits import split_by_identity

PERCENTILES = (5, 50, 95)
SHEET_MARGIN = 1.6  # crop side / box longer side
_LEGEND_HEIGHT = 28
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p5/p50/p95 of values (None when there are none)."""
    if not values:
        return {f"p{p}": None for p in PERCENTILES}
    qs = np.percentile(np.asarray(values, dtype=np.float64), PERCENTILES)
    return {f"p{p}": round(float(q), 2) for p, q in zip(PERCENTILES, qs)}


def face_size_px(sample: FaceSample) -> float:
    """The longer side of a face's box in pixels."""
    x1, y1, x2, y2 = (float(v) for v in sample.box_xyxy)
    return max(x2 - x1, y2 - y1)


def inspect_dataset(result: LoadResult, seed: int = 0) -> dict:
    """Counts, skip reasons, split sizes and face-size / inter-ocular percentiles of a dataset."""
    splits = split_by_identity(result.samples, seed)
    return {
        "format": result.format,
        "root": result.root,
        "images": result.images,
        "faces": len(result.samples),
        "identities": len({s.identity for s in result.samples}),
        "groups": dict(sorted(Counter(s.group for s in result.samples).items())),
        "conventions": dict(sorted(Counter(s.convention for s in result.samples).items())),
        "skipped": dict(sorted(result.skipped.items())),
        "seed": seed,
        "splits": {name: len(faces) for name, faces in splits.items()},
        "face_size_px": percentiles([face_size_px(s) for s in result.samples]),
        "iod_px": percentiles([s.iod for s in result.samples]),
    }


def draw_face(tile_bgr: np.ndarray, box_xyxy: np.ndarray, points_px: np.ndarray) -> np.ndarray:
    """Draw a box and the four points (POINT_COLORS_BGR) on an image, in place; returns it."""
    x1, y1, x2, y2 = (int(round(float(v))) for v in box_xyxy)
    cv2.rectangle(tile_bgr, (x1, y1), (x2, y2), BOX_COLOR_BGR, 1, cv2.LINE_AA)
    radius = max(2, tile_bgr.shape[0] // 50)
    for (x, y), color in zip(np.asarray(points_px, dtype=np.float32).reshape(-1, 2), POINT_COLORS_BGR):
        cv2.circle(tile_bgr, (int(round(float(x))), int(round(float(y)))), radius, color, -1, cv2.LINE_AA)
    return tile_bgr


def face_tile(sample: FaceSample, tile: int = 160) -> np.ndarray:
    """A square crop around a face's box with its box and points drawn (grey when unreadable)."""
    image = read_image_bgr(sample.image_path)
    if image is None:
        out = np.full((tile, tile, 3), 96, dtype=np.uint8)
        cv2.putText(out, "unreadable", (8, tile // 2), _FONT, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        return out
    center, side = square_from_box(sample.box_xyxy, SHEET_MARGIN)
    m = crop_matrix(center, side, tile)
    out = crop_affine(image, m, tile)
    box = map_box(sample.box_xyxy, m)
    return draw_face(out, box, apply_affine(sample.points_px, m))


def _legend_steps() -> list[int]:
    return [24 + cv2.getTextSize(name, _FONT, 0.45, 1)[0][0] for name in POINT_NAMES]


def legend(width: int) -> np.ndarray:
    """A strip naming each point's colour (at least as wide as its text)."""
    steps = _legend_steps()
    strip = np.full((_LEGEND_HEIGHT, max(width, 8 + sum(steps)), 3), 32, dtype=np.uint8)
    x = 8
    for name, color, step in zip(POINT_NAMES, POINT_COLORS_BGR, steps):
        cv2.circle(strip, (x + 5, _LEGEND_HEIGHT // 2), 5, color, -1, cv2.LINE_AA)
        cv2.putText(strip, name, (x + 14, _LEGEND_HEIGHT // 2 + 5), _FONT, 0.45, (235, 235, 235), 1, cv2.LINE_AA)
        x += step
    return strip


def contact_sheet(samples: list[FaceSample], out_path: str | Path, n: int = 24, seed: int = 0,
                  tile: int = 160) -> Path:
    """Write a PNG grid of up to n randomly chosen faces with their box and four points; returns its path."""
    if not samples:
        raise InputError("no faces to draw on a contact sheet")
    out_path = Path(out_path)
    picks = np.random.default_rng(seed).choice(len(samples), size=min(n, len(samples)), replace=False)
    cols = min(len(picks), max(4, math.ceil(math.sqrt(len(picks)))))
    rows = math.ceil(len(picks) / cols)
    top = legend(cols * tile)
    grid = np.zeros((rows * tile, top.shape[1], 3), dtype=np.uint8)
    for k, idx in enumerate(sorted(int(i) for i in picks)):
        r, c = divmod(k, cols)
        grid[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] = face_tile(samples[idx], tile)
    sheet = np.vstack([top, grid])
    ok, png = cv2.imencode(".png", sheet)
    if not ok:
        raise InputError(f"{out_path}: could not encode the contact sheet")
    try:
        out_path.write_bytes(png.tobytes())
    except OSError as exc:
        raise InputError(f"{out_path}: cannot write the contact sheet ({exc.strerror})") from None
    return out_path
