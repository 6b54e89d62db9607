"""A synthetic moving face: frames drawn on the fly, deterministic, no files and no camera.

The benchmark's source (`facetrack bench synthetic`, the live-latency run) and the tests'; the commands
take it as a spec too: `facetrack video 'synthetic?frames=300'`, `facetrack webcam --camera synthetic`
(`open_video_spec`, and `tracker.session` for cameras).
"""

from __future__ import annotations

import math
import time
from typing import Callable
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np

from core.errors import InputError
from core.frame import Frame
from tracker.sources import DEFAULT_FPS, Source, open_video

SYNTHETIC = "synthetic"


def _flag(value: str) -> bool:
    return value.lower() in ("1", "true", "yes")


# The spec's options: name -> how its text becomes a SyntheticSource argument.
OPTIONS: dict[str, Callable[[str], object]] = {"width": int, "height": int, "fps": float, "frames": int,
                                               "live": _flag, "pace": _flag, "seed": int}


# Crop-normalised positions of the four points on the drawn face (right eye on the image's left).
_SYN_POINTS = np.array([[-0.32, -0.22], [0.32, -0.22], [0.0, 0.1], [0.0, 0.42]], dtype=np.float32)


class SyntheticSource(Source):
    """A drawn face-like pattern moving on a smooth path: deterministic, no files, no camera.

    Live synthetic sources are paced to `fps` (like a camera) unless `pace` is False. Frame times
    (`t_ms`) are the frames' nominal times, index / fps, as a camera's clock would give them.
    Raises InputError for a size under 32 px, fps <= 0 or no frames.
    """

    kind = SYNTHETIC

    def __init__(self, width: int = 320, height: int = 240, fps: float = DEFAULT_FPS, frames: int = 300,
                 live: bool = False, pace: bool | None = None, seed: int = 0) -> None:
        super().__init__()
        if width < 32 or height < 32 or fps <= 0 or frames < 1:
            raise InputError("synthetic source needs width, height >= 32, fps > 0 and frames >= 1")
        self.width, self.height, self.fps = int(width), int(height), float(fps)
        self.frame_count = int(frames)
        self.live = live
        self.pace = live if pace is None else pace
        rng = np.random.default_rng(seed)
        self._background = self._make_background(rng)
        self._phase = rng.uniform(0, 2 * math.pi, 2)
        self._prime()

    def describe(self) -> str:
        mode = "live" if self.live else "file-like"
        return f"synthetic: {self.width}x{self.height} @ {self.fps:g} fps, {self.frame_count} frames ({mode})"

    def _make_background(self, rng: np.random.Generator) -> np.ndarray:
        xs = np.linspace(40, 120, self.width, dtype=np.float32)
        ys = np.linspace(0, 60, self.height, dtype=np.float32)
        base = xs[None, :] + ys[:, None]
        image = np.stack([base, base * 0.9 + 20, base * 0.8 + 30], axis=2).clip(0, 255).astype(np.uint8)
        for _ in range(6):
            center = (int(rng.integers(0, self.width)), int(rng.integers(0, self.height)))
            color = tuple(int(c) for c in rng.integers(0, 120, 3))
            cv2.circle(image, center, int(rng.integers(4, max(5, self.width // 10))), color, -1)
        return image

    def face_at(self, index: int) -> tuple[np.ndarray, float]:
        """Centre (2,) and size in pixels of the drawn face in frame `index`."""
        t = index / self.fps
        size = 0.45 * min(self.width, self.height) * (1.0 + 0.1 * math.sin(0.7 * t))
        margin_x = max(0.0, self.width / 2 - size * 0.6)
        margin_y = max(0.0, self.height / 2 - size * 0.7)
        cx = self.width / 2 + 0.6 * margin_x * math.sin(1.1 * t + self._phase[0])
        cy = self.height / 2 + 0.6 * margin_y * math.sin(0.8 * t + self._phase[1])
        return np.array([cx, cy], dtype=np.float32), float(size)

    def points_at(self, index: int) -> np.ndarray:
        """The four drawn points (right eye, left eye, nose tip, mouth centre) of frame `index`, px."""
        center, size = self.face_at(index)
        return center + _SYN_POINTS * (size / 2)

    def render(self, index: int) -> np.ndarray:
        """The image of frame `index` (pure: the same index always gives the same pixels)."""
        image = self._background.copy()
        center, size = self.face_at(index)
        half = size / 2
        c = (int(round(center[0])), int(round(center[1])))
        cv2.ellipse(image, c, (int(half * 0.8), int(half)), 0, 0, 360, (150, 180, 225), -1, cv2.LINE_AA)
        pts = self.points_at(index)
        eye_r = max(2, int(half * 0.1))
        for p in pts[:2]:
            cv2.circle(image, (int(p[0]), int(p[1])), eye_r + 2, (250, 250, 250), -1, cv2.LINE_AA)
            cv2.circle(image, (int(p[0]), int(p[1])), eye_r, (40, 30, 20), -1, cv2.LINE_AA)
        nose = pts[2]
        tri = np.array([[nose[0], nose[1] - half * 0.25], [nose[0] - half * 0.09, nose[1]],
                        [nose[0] + half * 0.09, nose[1]]], dtype=np.int32)
        cv2.fillConvexPoly(image, tri, (110, 140, 200), cv2.LINE_AA)
        mouth = pts[3]
        cv2.ellipse(image, (int(mouth[0]), int(mouth[1])), (max(2, int(half * 0.28)), max(1, int(half * 0.08))),
                    0, 0, 360, (70, 60, 170), -1, cv2.LINE_AA)
        return image

    def read(self) -> Frame | None:
        if self._pending is not None and self.pace:
            # The frame read ahead at open is handed out now: pace the rest from here, as a camera
            # started now would (else the time spent loading models comes out as a burst of late frames).
            self._t0 = time.perf_counter()
        return super().read()

    def _grab(self):
        index = self._index
        if index >= self.frame_count:
            return None
        if self.pace and index > 0:
            delay = self._t0 + index / self.fps - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        image = self.render(index)
        t_capture = time.perf_counter()
        self._index += 1
        if index == 0:
            self._t0 = t_capture
        return Frame(image, index, t_capture, index * 1000.0 / self.fps)


def synthetic_options(spec: str, extra: dict[str, Callable[[str], object]] | None = None) -> dict:
    """The keyword arguments a `synthetic[?name=value&...]` spec gives (only those it names).

    `extra` adds options a subclass accepts (name -> parser). InputError for an unknown option or a
    value that does not parse.
    """
    parsers = {**OPTIONS, **(extra or {})}
    query = parse_qs(urlsplit(spec).query) if "?" in spec else {}
    unknown = set(query) - set(parsers)
    if unknown:
        raise InputError(f"{spec}: unknown synthetic option(s) {', '.join(sorted(unknown))}")
    options = {}
    for key, values in query.items():
        try:
            options[key] = parsers[key](values[-1])
        except ValueError:
            raise InputError(f"{spec}: bad value for {key}") from None
    return options


def parse_synthetic(spec: str, live: bool = False) -> SyntheticSource:
    """`synthetic[?width=W&height=H&fps=F&frames=N&live=1&pace=0&seed=S]`; `live` unless the spec says."""
    options = synthetic_options(spec)
    options.setdefault("live", live)
    return SyntheticSource(**options)


def is_synthetic(spec: str) -> bool:
    """True for `synthetic` and `synthetic?...` specs."""
    return spec == SYNTHETIC or spec.startswith(SYNTHETIC + "?")


def open_video_spec(spec: str) -> Source:
    """What `facetrack video` and `facetrack bench` open: a synthetic spec, else a video file or stream URL
    (`tracker.sources.open_video`). InputError when it cannot be opened."""
    return parse_synthetic(spec) if is_synthetic(spec) else open_video(spec)
