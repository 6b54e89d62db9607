"""The Python API: `FaceTracker`, the shipped models in one call, results as `tracker.results.Result`.

A thin layer over what the command line runs: the models and trackers are built by
`tracker.session.ModelOptions` (the options of `facetrack images` / `video` / `webcam`), the faces are
found by `tracker.pipeline.Tracker.step`, sources are opened as `facetrack video` and `webcam` open them.

    ft = FaceTracker()                    # weights/manifest.json, ONNX Runtime, CUDA when usable else CPU
    result = ft(image)                    # a still image: uint8 BGR numpy array, or an image file's path
    result = ft.step(frame)               # the next frame of your own video loop: ids kept between calls
    for result in ft.track("clip.mp4"):   # a video file, camera index, stream URL: frame by frame
        ...

Errors are `core.errors` ones: InputError for a bad image, source, option or weights folder (a
MetadataError, one of them, for a model file that is not what the manifest says), other FacetrackErrors
for a source that fails mid-run. A FaceTracker keeps state (`step`'s tracks): use one per thread.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from core.errors import InputError
from core.frame import Frame
from core.meta import POINT_NAMES
from tracker.results import Result

if TYPE_CHECKING:
    from tracker.pipeline import Tracker
    from tracker.sources import Source

__all__ = ["FaceTracker", "as_bgr_image"]

MIN_SIDE = 8  # as `facetrack images` (tracker.sources.images.MIN_IMAGE_SIDE): nothing to find in less
_log = logging.getLogger("facetrack").info  # what the CLI says on stderr (a device fallback) goes to logging


def as_bgr_image(image: np.ndarray) -> np.ndarray:
    """The uint8 HxWx3 BGR array the models take, from an OpenCV-style image: uint8 HxWx3 BGR (returned as
    is when contiguous), HxW or HxWx1 grey, HxWx2 grey + alpha and HxWx4 BGRA (converted, alpha dropped).

    Raises InputError for anything else: not a numpy array, another dtype (a float image is refused rather
    than guessed at: 0..1 or 0..255?), other channel counts, or a side under 8 pixels."""
    if not isinstance(image, np.ndarray):
        raise InputError(f"expected a numpy image (uint8 HxWx3 BGR, as cv2.imread gives), got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise InputError(f"image dtype {image.dtype}: expected uint8 0..255 (as cv2.imread gives); convert it, "
                         "e.g. (image * 255).round().astype(np.uint8) for a float image in 0..1")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 2, 3, 4)):
        raise InputError(f"image shape {image.shape}: expected HxWx3 BGR (or HxW grey, HxWx4 BGRA)")
    if min(image.shape[:2]) < MIN_SIDE:
        raise InputError(f"image of {image.shape[1]}x{image.shape[0]} pixels: too small to find a face in "
                         f"(at least {MIN_SIDE}x{MIN_SIDE})")
    if image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    from core.imageio import to_bgr8

    return to_bgr8(image)


def _read_image(path: str | Path) -> tuple[np.ndarray, str]:
    """(uint8 HxWx3 BGR pixels, the path as given) of an image file, upright as viewers show it (EXIF
    orientation applied), as `facetrack images` reads it; InputError when it is missing or does not decode."""
    from core.imageio import read_image_bgr

    name = str(path)
    if not Path(name).is_file():
        raise InputError(f"{name}: no such image file")
    image = read_image_bgr(name, upright=True)
    if image is None:
        raise InputError(f"{name}: cannot be decoded as an image")
    return as_bgr_image(image), name


def _open_source(source: str | int | Path | Source) -> Source:
    """A camera for an int, a string of digits or a /dev/ path (`facetrack webcam --camera`); a Source as
    given; else a video file, animated image or stream URL (`facetrack video`)."""
    from tracker.sources import Source

    if isinstance(source, Source):
        return source
    if isinstance(source, bool) or not isinstance(source, (str, int, Path)):
        raise InputError(f"expected a video path, camera index or stream URL, got {type(source).__name__}")
    text = str(source).strip()
    if isinstance(source, int) or text.isdigit() or text.startswith("/dev/"):
        from tracker.session import open_camera_input

        return open_camera_input(text)
    from tracker.sources.synthetic import open_video_spec

    return open_video_spec(text)


class FaceTracker:
    """Finds every face and its four points (eyes, nose tip, mouth centre) in images and videos.

    Loads the face detector and landmark model once, from `weights` (a folder with manifest.json; a
    training run folder or checkpoint file, whose model runs with torch beside the shipped weights' other
    one; None: the shipped weights), with `backend` "onnx" (ONNX Runtime, no torch) or "torch" on `device`
    "auto" (a usable CUDA GPU, else the CPU), "cpu" or "cuda"; `precision` "auto", "fp32", "fp16" or
    "int8" picks which ONNX graph of each model runs (auto: on the CPU its int8 graph where the weights'
    export measured it within 0.1 NME points / 0.01 IoU of fp32 and clearly faster, else its most precise
    one; `core.manifest.graph_table`). The other options are the command line's:

    - `detector`: "centernet" (multi-face) or "regressor" (the course project's one-face box model);
      None: the manifest's default. `landmark_model`: a model name in the manifest; None: its default.
    - `max_faces`: the most faces reported at once (the older tracks stay); None or 0: no limit, except
      on live sources in `track` (cameras, stream URLs), where None means 4 as in `facetrack webcam`.
    - `min_presence`: the detector score a face needs, 0..1 (None: the detector's own threshold);
      `min_quality`: the landmark model's face quality a face needs, 0..1.
    - `detect_every`: while tracking, the detector runs every this many frames (and when a face is lost).
    - `smooth`: One-Euro smoothing of the points in `track` and `step`; None: on for live sources in
      `track`, off for video files and `step`.
    - `flip_test`: still images average each face with its mirror image, as `facetrack images` does.

    Raises InputError for a bad option, a missing weights folder or model, or `device="cuda"` where
    CUDA cannot be used (MetadataError, an InputError, for a model file that is not what its slot needs).
    """

    def __init__(self, weights: str | Path | None = None, *, device: str = "auto", backend: str = "onnx",
                 detector: str | None = None, landmark_model: str | None = None, max_faces: int | None = None,
                 min_presence: float | None = None, min_quality: float | None = None,
                 detect_every: int | None = None, smooth: bool | None = None, flip_test: bool = True,
                 precision: str = "auto") -> None:
        from tracker.session import ModelOptions

        defaults = ModelOptions()
        self.options = ModelOptions(
            weights=None if weights is None else Path(weights), backend=backend, device=device,
            landmark_model=landmark_model,
            detect_every=defaults.detect_every if detect_every is None else detect_every,
            min_presence=min_presence, min_quality=defaults.min_quality if min_quality is None else min_quality,
            flip_test=flip_test, detector=detector, max_faces=max_faces, precision=precision)
        self.smooth = smooth
        self._still = self.options.build(mode="image", smooth=False, log=_log)  # loads the models
        self.point_names: tuple[str, ...] = POINT_NAMES
        self._stream: Tracker | None = None  # `step`'s tracker, made on the first step after a reset
        self._t0 = 0.0
        self._index = 0

    def __repr__(self) -> str:
        still = self._still
        limit = "no limit" if still.max_faces is None else still.max_faces
        return (f"FaceTracker(detector={still.detector.name} on {still.box_backend.name}, landmarks="
                f"{still.landmark_backend.meta.model} on {still.landmark_backend.name}, max_faces={limit})")

    def _tracker(self, mode: str, smooth: bool) -> Tracker:
        """A new tracker in `mode` on the models already loaded (its own tracks, ids from 1)."""
        return self.options.build(mode=mode, smooth=smooth, log=_log, models=self._still.models)

    def __call__(self, image: np.ndarray | str | Path) -> Result:
        """Every face in one still image: a numpy array (uint8 HxWx3 BGR as cv2.imread gives; HxW grey and
        HxWx4 BGRA are converted, see `as_bgr_image`) or an image file's path (read upright, as
        `facetrack images` reads it). The detector runs on the whole image (also turned 90/180/270 degrees
        for a face it does not find upright); faces are numbered 1..N by detector score; no tracking.

        Returns a Result (points and boxes in the image's pixels). Raises InputError for a bad image or a
        path that does not decode."""
        if isinstance(image, (str, Path)):
            pixels, name = _read_image(image)
        else:
            pixels, name = as_bgr_image(image), None
        return Result.of(self._still.step(Frame(pixels, 0, time.perf_counter(), 0.0, name)), self.point_names)

    def step(self, image: np.ndarray, t_ms: float | None = None) -> Result:
        """The next frame of a video you read yourself (same image rules as calling the tracker): faces are
        tracked from the previous `step`, keeping their ids; the detector runs on the first frame, every
        `detect_every` frames and when a face is lost. `t_ms`: the frame's time in ms (smoothing uses it;
        None: the time since the first step). `reset()` starts again. Raises InputError for a bad image."""
        pixels = as_bgr_image(image)
        now = time.perf_counter()
        if self._stream is None:
            self._stream = self._tracker("video", bool(self.smooth))
            self._t0, self._index = now, 0
        frame = Frame(pixels, self._index, now, (now - self._t0) * 1000.0 if t_ms is None else float(t_ms))
        self._index += 1
        return Result.of(self._stream.step(frame), self.point_names)

    def reset(self) -> None:
        """Forget `step`'s faces: the next step starts afresh (detector, ids from 1, time from 0)."""
        self._stream = None

    def track(self, source: str | int | Path | Source, *, smooth: bool | None = None) -> Iterator[Result]:
        """Frame by frame through a video, one Result per frame, faces tracked with their ids kept.

        `source`: a video file or animated GIF/WebP (every frame, in order, `t_ms` its presentation
        time), a camera index (0) or device path (/dev/video0), or a stream URL (rtsp://..., live: frames
        are read as fast as tracking goes; the driver drops the ones in between); or a
        `tracker.sources.Source`. `smooth` overrides the tracker's option for this run. Each call starts
        afresh (ids from 1; `step`'s faces are not touched).

        A generator: the source is opened when iteration starts and closed when it ends or stops (break,
        an error). Raises InputError (on the first iteration) when the source cannot be opened;
        `tracker.sources.SourceError` when it fails after some frames (a video that stops decoding, a
        camera that stops delivering)."""
        opened = _open_source(source)
        try:
            live = bool(opened.live)
            use = self.smooth if smooth is None else smooth
            tracker = self._tracker("live" if live else "video", live if use is None else bool(use))
            opened.start()
            for frame in opened:
                yield Result.of(tracker.step(frame), self.point_names)
        finally:
            opened.close()
