"""Image formats by content: what Pillow reads besides OpenCV, what nothing here reads, what is animated.

OpenCV decodes the common formats (`core.imageio` asks it first). Pillow takes what OpenCV does not:
HEIF/HEIC, the format phones save, through the pillow-heif plugin (registered here, once), and AVIF where
OpenCV is built without it. Pillow is asked only about `PILLOW_FORMATS`, formats with a real signature:
its readers of signature-less formats (TGA, PCX, ...) would take a text file for an image.

A file that no decoder here reads but whose signature names an image format (HEIF without pillow-heif,
JPEG XL) is named by `format_without_decoder`, so that the message says which format it is and what
would read it.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

# Formats Pillow is asked to open (Pillow's format names); each has a signature its opener checks.
PILLOW_FORMATS = ("HEIF", "AVIF", "JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", "JPEG2000", "PPM", "ICO", "QOI",
                  "JXL")  # JXL: only where a plugin registers it
# Formats that can hold an animation (several frames with their own durations): GIF, WebP, APNG, AVIF sequences.
ANIMATED_FORMATS = ("GIF", "WEBP", "PNG", "AVIF")
# ISO base media files (HEIF, AVIF, but also MP4) start with an `ftyp` box: its brands name the format.
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1",
                          b"mif2", b"msf1"})
_JXL_SIGNATURES = (b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")
# Pillow's name of each format `signature_format` names (JPEG XL: no reader in Pillow itself).
_PILLOW_NAMES = {"HEIF": "HEIF", "AVIF": "AVIF", "JPEG XL": "JXL"}
# What would read a format named by its signature when nothing installed does.
MISSING_DECODER_HINTS = {
    "HEIF": "pip install pillow-heif",
    "AVIF": "pip install -U pillow (recent Pillow reads AVIF)",
    "JPEG XL": "convert it to JPEG or PNG",
}


@functools.cache
def pillow():
    """The PIL.Image module with all its plugins loaded and the HEIF opener of pillow-heif registered (when
    it is installed)."""
    from PIL import Image

    Image.init()  # every plugin of Pillow's own, so that `open_pillow` knows which formats this Pillow reads
    try:
        import pillow_heif
    except ImportError:  # HEIF files are then named as such, with the hint to install it
        return Image
    pillow_heif.register_heif_opener()
    return Image


@functools.cache
def pillow_errors() -> tuple[type[BaseException], ...]:
    """The exceptions Pillow (and its plugins) raise for a file they cannot open or decode."""
    from PIL import Image

    # UnidentifiedImageError is an OSError; plugins raise the others on broken or unsupported data
    return (OSError, ValueError, SyntaxError, EOFError, RuntimeError, IndexError, TypeError,
            Image.DecompressionBombError)


def open_pillow(source: str | Path | bytes, formats: tuple[str, ...] = PILLOW_FORMATS):
    """A lazily decoded PIL image of a file path or encoded bytes, trying only `formats` (by signature).

    Raises one of `pillow_errors()` when none of them opens it (UnidentifiedImageError, an OSError, for
    other content). Pillow's own formats only: a format whose plugin is not installed is never tried."""
    image_module = pillow()
    fp = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    known = tuple(name for name in formats if name in image_module.OPEN)
    return image_module.open(fp, formats=known)


def pillow_reads(path: str | Path) -> bool:
    """True when Pillow recognises the file's content as one of PILLOW_FORMATS (header only, no decoding)."""
    try:
        with open_pillow(path):
            return True
    except pillow_errors():
        return False


def is_animated_image(path: str | Path) -> bool:
    """True for a GIF, WebP, PNG (APNG) or AVIF file that holds more than one frame; False for a still
    image, any other file, or one Pillow cannot open. Reads at most the first two frames' headers."""
    try:
        with open_pillow(path, ANIMATED_FORMATS) as image:
            return bool(getattr(image, "is_animated", False))
    except pillow_errors():
        return False


def signature_format(path: str | Path) -> str | None:
    """'HEIF', 'AVIF' or 'JPEG XL' when the file's first bytes are that format's signature (whether or not
    anything here decodes it); None for any other content or a file that cannot be read."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError:
        return None
    if head.startswith(_JXL_SIGNATURES):
        return "JPEG XL"
    if head[4:8] != b"ftyp":
        return None
    box_end = min(len(head), int.from_bytes(head[:4], "big"))
    brands = {head[8:12]} | {head[at:at + 4] for at in range(16, box_end - 3, 4)}  # major, then compatible
    if brands & _AVIF_BRANDS:
        return "AVIF"
    if brands & _HEIF_BRANDS:
        return "HEIF"
    return None


def format_without_decoder(path: str | Path) -> str | None:
    """The format `signature_format` names when no installed reader takes it (HEIF without pillow-heif,
    JPEG XL); None otherwise: a broken file of a format that is read here is not named as unsupported.
    For files OpenCV does not recognise (`core.imageio.is_image_file` asks OpenCV first)."""
    file_format = signature_format(path)
    if file_format is None or _PILLOW_NAMES[file_format] in pillow().OPEN:
        return None
    return file_format
