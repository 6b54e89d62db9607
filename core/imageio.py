"""Reading still images into 8-bit BGR, whatever their depth or channels."""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """Convert grayscale / gray+alpha / BGRA / 16-bit / float images (any channel count) to HxWx3 uint8 BGR."""
    image = np.asarray(image)
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype == np.bool_:
        image = image.astype(np.uint8) * 255
    elif image.dtype != np.uint8:
        values = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=255.0, neginf=0.0)
        peak = float(values.max()) if values.size else 0.0
        image = np.clip(values * (255.0 if peak <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    channels = image.shape[2]
    if channels in (1, 2):  # gray, gray + alpha
        return cv2.cvtColor(np.ascontiguousarray(image[:, :, 0]), cv2.COLOR_GRAY2BGR)
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image[:, :, :3])


def read_image_bgr(path: str | Path) -> np.ndarray | None:
    """Decode an image file to uint8 BGR, or None when it cannot be decoded."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except (OSError, ValueError):
        return None
    if data.size == 0:
        return None
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error:  # some decoders raise on corrupt data instead of returning None
        return None
    if image is None or image.size == 0 or image.ndim not in (2, 3):
        return None
    return to_bgr8(image)


def is_image_file(path: Path) -> bool:
    """True for a file whose suffix names an image format."""
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def read_ahead(items: list, workers: int, ahead: int = 16):
    """(item, uint8 BGR image or None) for items with an `image_path` (FaceSamples, photos), in order,
    decoded in `workers` threads at most `ahead` images ahead."""
    with ThreadPoolExecutor(max(1, workers)) as pool:
        pending: deque = deque()
        for item in items:
            pending.append((item, pool.submit(read_image_bgr, item.image_path)))
            if len(pending) > ahead:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()
