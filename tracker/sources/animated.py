"""An animated image (GIF, WebP, APNG, AVIF sequence) as a video: every frame in order, decoded with Pillow.

Each frame is shown for its own duration, as browsers play it: `Frame.t_ms` of frame i is the sum of
the durations of frames 0..i-1 (frame 0 at 0 ms), so `facetrack video` writes JSON rows and an mp4 with
those times. A duration of 10 ms or less (0 in many GIFs) counts as 100 ms, as in browsers. Frames are
the full canvas (Pillow composes partial GIF/WebP frames and applies their disposal), turned upright by
the file's EXIF Orientation tag, converted to uint8 BGR.
"""

from __future__ import annotations

import time
from pathlib import Path

from core.errors import InputError
from core.frame import Frame
from core.image_formats import ANIMATED_FORMATS, open_pillow, pillow_errors
from core.imageio import EXIF_ORIENTATION_TAG, apply_exif_orientation, pillow_to_bgr
from tracker.sources.base import DecodeError, Source

SHORTEST_FRAME_MS = 10  # a frame this short or shorter (or without a duration) is shown for DEFAULT_FRAME_MS
DEFAULT_FRAME_MS = 100


def frame_duration_ms(duration) -> float:
    """A frame's display time in ms from Pillow's `info["duration"]` (ms; None or <= 10 ms -> 100 ms)."""
    try:
        value = float(duration)
    except (TypeError, ValueError):
        return float(DEFAULT_FRAME_MS)
    return value if value > SHORTEST_FRAME_MS else float(DEFAULT_FRAME_MS)


class AnimatedImageSource(Source):
    """Every frame of an animated GIF / WebP / APNG / AVIF file, each at its own time (see the module doc).

    Raises InputError (exit 2) when the file cannot be opened as an animated image or its first frame
    does not decode; `read()` raises DecodeError (exit 1) when a later frame does not decode.
    """

    kind = "video"
    live = False

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.target = str(path)
        try:
            self._image = open_pillow(self.target, ANIMATED_FORMATS)
        except pillow_errors() as exc:
            raise InputError(f"{self.target}: cannot open as an animated image ({exc})") from None
        try:
            self.format = self._image.format
            self.frame_count = int(getattr(self._image, "n_frames", 1))
            orientation = self._image.getexif().get(EXIF_ORIENTATION_TAG, 1)
            self._orientation = int(orientation) if str(orientation).isdigit() else 1
            self._next_t_ms = 0.0
            self._prime()
        except pillow_errors() as exc:
            self._image.close()
            raise InputError(f"{self.target}: cannot read the animated {self._image.format} ({exc})") from None
        except BaseException:
            self._image.close()
            raise

    def describe_input(self) -> str:
        return f"{self.kind} {self.target}"

    def describe(self) -> str:
        return (f"animated {self.format} {self.target}: {self.width}x{self.height}, {self.frame_count} frames, "
                "each at its own duration")

    def _grab(self) -> Frame | None:
        index = self._index
        if index >= self.frame_count:
            return None
        try:
            self._image.seek(index)
            self._image.load()
            image = apply_exif_orientation(pillow_to_bgr(self._image), self._orientation)
            duration = frame_duration_ms(self._image.info.get("duration"))
        except pillow_errors() as exc:
            if not self._primed:
                return None  # the first frame: `_prime` reports it as bad input
            raise DecodeError(f"{self.describe_input()}: frame {index} of {self.frame_count} does not decode "
                              f"({exc}) (file truncated or corrupt); stopped there") from None
        if index == 0:
            self.fps = 1000.0 / duration  # nominal only: every frame is written at its own time
        t_ms, self._next_t_ms = self._next_t_ms, self._next_t_ms + duration
        self._index += 1
        return Frame(image, index, time.perf_counter(), t_ms)

    def _release(self) -> None:
        self._image.close()
