"""300-W: a `.pts` file of 68 points beside each image (one face per file)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from core.geometry import box_from_points
from core.imageio import IMAGE_SUFFIXES
from training.data.common import ONE_BASED_SHIFT_PX, image_size, make_sample, start_load
from training.data.samples import (
    SKIP_BAD_VALUES,
    SKIP_MISSING_IMAGE,
    SKIP_NAN,
    LoadResult,
    four_points_from_68,
)

FORMAT = "300w"
_FACE_SUFFIX = re.compile(r"^(.*)_\d+$")


def pts_files(root: Path) -> list[Path]:
    """Every .pts file under root (folders named *.pts are not files)."""
    return sorted(p for p in root.rglob("*.pts") if p.is_file())


def parse_pts(text: str) -> np.ndarray:
    """The (N,2) points of a .pts file, with or without the `version/n_points/{ }` header."""
    body = text
    if "{" in text:
        body = text[text.index("{") + 1: text.rindex("}") if "}" in text else len(text)]
    values = [float(v) for v in body.split()]
    if len(values) % 2:
        raise ValueError("odd number of values")
    m = re.search(r"n_points\s*:\s*(\d+)", text)
    if m and int(m.group(1)) * 2 != len(values):
        raise ValueError("n_points does not match the values")
    return np.array(values, dtype=np.float32).reshape(-1, 2)


def _image_for(pts_path: Path) -> Path | None:
    for suffix in IMAGE_SUFFIXES + tuple(s.upper() for s in IMAGE_SUFFIXES):
        candidate = pts_path.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def photo_of(pts_path: Path) -> str:
    """The photo a face comes from: 300-W names faces `<photo>_<n>`."""
    m = _FACE_SUFFIX.match(pts_path.stem)
    return m.group(1) if m else pts_path.stem


def load(root: Path) -> LoadResult:
    """Read every .pts under `root` with its image; bad files are skipped and counted."""
    files = pts_files(root)
    result = start_load(root, FORMAT, files, ".pts files")
    for pts_path in files:
        try:
            text = pts_path.read_text(errors="replace")
        except OSError:  # unreadable (permissions, I/O error): counted like a file with bad values
            result.skipped[SKIP_BAD_VALUES] += 1
            continue
        try:
            pts = parse_pts(text)
        except ValueError:
            result.skipped[SKIP_NAN if "nan" in text.lower() else SKIP_BAD_VALUES] += 1
            continue
        if len(pts) != 68:
            result.skipped[SKIP_BAD_VALUES] += 1
            continue
        if not np.isfinite(pts).all():
            result.skipped[SKIP_NAN] += 1
            continue
        image_path = _image_for(pts_path)
        if image_path is None:
            result.skipped[SKIP_MISSING_IMAGE] += 1
            continue
        size = image_size(image_path)
        if isinstance(size, str):
            result.skipped[size] += 1
            continue
        pts = pts - ONE_BASED_SHIFT_PX  # 300-W points are 1-based (Matlab convention)
        sample = make_sample(image_path, four_points_from_68(pts), box_from_points(pts),
                             photo_of(pts_path), FORMAT, size, points68_px=pts)
        if isinstance(sample, str):
            result.skipped[sample] += 1
        else:
            result.samples.append(sample)
    return result
