"""Reading still images into 8-bit BGR, whatever their depth or channels, as stored or as viewers show them.

Two pixel frames:

- stored (`read_image_bgr(path)`, the default): the pixels in the order the file stores them. The
  datasets' labels are in this frame (no image in ../shared/data carries an EXIF Orientation tag other
  than 1), so the training and evaluation readers use it.
- displayed (`read_image_bgr(path, upright=True)`): turned and mirrored as the file's EXIF Orientation
  tag (1..8) says, as every viewer shows a phone photo. `facetrack images` reads, reports, scores and
  draws in this frame. The tag is read with Pillow.

OpenCV decodes the pixels when it reads the format; Pillow decodes the rest (`core.image_formats`: HEIF/HEIC
through pillow-heif, AVIF where OpenCV lacks it). HEIF stores its turn and mirror in the container (as well
as in EXIF), and libheif always applies them: a HEIF photo reads as displayed in both frames, like a TIFF.
An animated file (GIF, WebP, APNG) reads as its first frame here; `tracker.sources.animated` reads every frame.
"""

from __future__ import annotations

import io
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from core.image_formats import open_pillow, pillow_errors, pillow_reads
from core.pathnames import is_utf8

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

EXIF_ORIENTATION_TAG = 0x0112  # 274; 1 = as stored, 2..8 = mirrored and/or turned
# Formats whose OpenCV decoder applies the Orientation tag itself (libtiff), in either frame.
_DECODER_ORIENTED_FORMATS = frozenset({"TIFF"})
# Stored HxW[xC] pixels -> displayed, per Orientation value (the transposes of Pillow's exif_transpose).
_EXIF_TRANSPOSES = {
    2: lambda im: im[:, ::-1],  # mirrored left-right
    3: lambda im: im[::-1, ::-1],  # turned 180
    4: lambda im: im[::-1],  # mirrored top-bottom
    5: lambda im: im.swapaxes(0, 1),  # transposed
    6: lambda im: im.swapaxes(0, 1)[:, ::-1],  # turned 90 clockwise
    7: lambda im: im.swapaxes(0, 1)[::-1, ::-1],  # transversed
    8: lambda im: im.swapaxes(0, 1)[::-1],  # turned 90 counter-clockwise
}


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


def read_image_bgr(path: str | Path, *, upright: bool = False) -> np.ndarray | None:
    """Decode an image file (OpenCV, else Pillow) to uint8 HxWx3 BGR, or None when it cannot be decoded
    (never raises). An animated file gives its first frame.

    `upright`: turn/mirror the pixels as the file's EXIF Orientation tag says (the image as viewers
    show it; width and height swap for tags 5..8). Default False: the pixels as stored, the frame the
    datasets' labels use. (OpenCV's TIFF decoder applies the tag itself, and libheif a HEIF file's own
    turn, so a TIFF or a HEIF photo is upright either way.)
    """
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except (OSError, ValueError):
        return None
    if data.size == 0:
        return None
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)  # IMREAD_UNCHANGED ignores the Orientation tag
    except cv2.error:  # some decoders raise on corrupt data instead of returning None
        image = None
    if image is None or image.size == 0 or image.ndim not in (2, 3):
        return _read_with_pillow(data.tobytes(), upright)  # a format OpenCV does not read (HEIF, ...)
    image = to_bgr8(image)
    if upright:
        file_format, orientation = exif_orientation(data.tobytes())
        if file_format not in _DECODER_ORIENTED_FORMATS:
            image = apply_exif_orientation(image, orientation)
    return image


def _read_with_pillow(data: bytes, upright: bool) -> np.ndarray | None:
    """`read_image_bgr` through Pillow (`core.image_formats.PILLOW_FORMATS`): BGR, or None when it fails."""
    try:
        with open_pillow(data) as image:
            image.load()
            pixels = pillow_to_bgr(image)
            orientation = image.getexif().get(EXIF_ORIENTATION_TAG, 1) if upright else 1
    except pillow_errors():
        return None
    if pixels.size == 0:
        return None
    try:
        orientation = int(orientation)
    except (TypeError, ValueError):
        orientation = 1
    return apply_exif_orientation(pixels, orientation)


def pillow_to_bgr(image) -> np.ndarray:
    """A PIL image (its current frame, as stored) as uint8 HxWx3 BGR: alpha dropped, palettes expanded,
    16-bit and float scaled as `to_bgr8` does. Raises what Pillow raises for data that does not decode."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return to_bgr8(np.asarray(image))
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    pixels = np.asarray(image)
    return to_bgr8(pixels if pixels.ndim == 2 else pixels[:, :, ::-1])


def exif_orientation(data: bytes) -> tuple[str | None, int]:
    """(Pillow's format name, EXIF Orientation 1..8) of an encoded image; (None, 1) when Pillow cannot
    read the file or the tag is missing or out of range."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            value = image.getexif().get(EXIF_ORIENTATION_TAG, 1)
            file_format = image.format
    except (OSError, ValueError, SyntaxError, UnidentifiedImageError, Image.DecompressionBombError):
        return None, 1
    try:
        value = int(value)
    except (TypeError, ValueError):
        return file_format, 1
    return file_format, value if 1 <= value <= 8 else 1


def apply_exif_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """The stored pixels `image` (HxW[xC]) as a viewer shows them for EXIF Orientation 1..8: the same
    transposes as Pillow's `ImageOps.exif_transpose` (2 mirror, 3 turn 180, 4 flip, 5 transpose,
    6 turn 90 clockwise, 7 transverse, 8 turn 90 counter-clockwise). Other values: unchanged."""
    op = _EXIF_TRANSPOSES.get(int(orientation))
    return image if op is None else np.ascontiguousarray(op(image))


def is_image_file(path: str | Path) -> bool:
    """True for a file whose content OpenCV or Pillow recognises as an image format it decodes (its
    signature, not its name: a GIF, a HEIC photo or an image without a suffix counts, a text file named
    .jpg does not; `core.image_formats`). False for a folder, a missing or unreadable file. Whether it
    then decodes is `read_image_bgr`'s answer."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:  # unreadable files: False here, without OpenCV's warning
            handle.read(1)
    except OSError:
        return False
    if not is_utf8(path):  # OpenCV crashes (SIGSEGV) on such a name: Pillow alone judges it (it opens the file
        return pillow_reads(path)  # through Python), and `read_image_bgr` decodes the bytes
    return bool(cv2.haveImageReader(str(path))) or pillow_reads(path)


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
