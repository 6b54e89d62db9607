"""Sources read through OpenCV's VideoCapture: a webcam, a stream URL; and the openers of every video input.

Video files are decoded with PyAV (`tracker.sources.video_file`: presentation times, the real end of the
data), animated images with Pillow (`tracker.sources.animated`: each frame at its own duration). Cameras
and live streams are `live`: they run in real time, and a device that stops delivering is retried,
reopened once, then given up (`tracker.sources.base.Source`). A stream's reads (and its reopen) time out
after its stall timeout, so a network stream that goes silent frees its reading thread instead of holding
it for OpenCV's default 30 s; closing never races a read in progress (`Source.close`).
A URL that reports a frame count (a remote file) is read in order like a file, through OpenCV.
A regular file given as a camera is a video file (`open_camera`): read once, every frame, to its end.
OpenCV is never handed a name that is not valid UTF-8 (its binding crashes on one): InputError instead.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import time
from pathlib import Path

# FFmpeg's own decoder chatter ("moov atom not found", "header damaged") would add lines to our one-line
# errors; it is read once, when OpenCV first loads FFmpeg. A value the user set is kept.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from core.errors import InputError  # noqa: E402
from core.frame import Frame  # noqa: E402
from core.image_formats import is_animated_image  # noqa: E402
from core.imageio import to_bgr8  # noqa: E402
from core.pathnames import is_utf8, shown  # noqa: E402
from tracker.sources.animated import AnimatedImageSource  # noqa: E402
from tracker.sources.base import DEFAULT_FPS, DEFAULT_STALL_TIMEOUT_S, NO_FRAME, DecodeError, Source  # noqa: E402
from tracker.sources.video_file import VideoFileSource  # noqa: E402


@contextlib.contextmanager
def quiet_opencv():
    """Silence OpenCV's own warnings while probing a source: a failure becomes one InputError instead."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:
        yield
        return
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(level)


def _open_capture(target: int | str, params: list[int] | None = None) -> cv2.VideoCapture:
    """cv2.VideoCapture(target), with FFmpeg open parameters (`stream_params`) when given; OpenCV's
    own warnings silenced. InputError for a name that is not valid UTF-8 (OpenCV's binding would crash)."""
    if isinstance(target, str) and not is_utf8(target):
        raise InputError(f"{shown(target)}: the name is not valid UTF-8, which OpenCV cannot open; rename it, "
                         "or link to it under a UTF-8 name")
    with quiet_opencv():
        if params:
            return cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)
        return cv2.VideoCapture(target)


def stream_params(read_timeout_s: float, open_timeout_s: float | None = None) -> list[int]:
    """FFmpeg parameters for a stream URL: a read (and optionally an open) gives up after that many seconds."""
    params = [cv2.CAP_PROP_READ_TIMEOUT_MSEC, max(100, int(read_timeout_s * 1000))]
    if open_timeout_s is not None:
        params += [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, max(100, int(open_timeout_s * 1000))]
    return params


def _frame_count(cap: cv2.VideoCapture) -> int:
    count = float(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0)
    return int(count) if math.isfinite(count) and count > 0 else 0


_CANNOT_OPEN = {
    "camera": "cannot open (no camera there, or another program holds it); try another --camera index "
              "or device path (ls /dev/video*)",
    "stream": "cannot open the stream; check the URL and that it is reachable",
}


class CaptureSource(Source):
    """A cv2.VideoCapture: webcam (index or device path), video file, or stream URL."""

    def __init__(self, target: int | str, kind: str, live: bool, cap: cv2.VideoCapture | None = None) -> None:
        super().__init__()
        self.target = target
        self.kind = kind
        self.live = live
        self.cap = cap if cap is not None else _open_capture(target)
        if not self.cap.isOpened():
            self.cap.release()
            raise InputError(f"{self.describe_input()}: {_CANNOT_OPEN.get(kind, 'cannot open')}")
        fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if math.isfinite(fps) and 0.5 < fps < 1000 else DEFAULT_FPS
        count = _frame_count(self.cap)
        self.frame_count = count if count > 0 and not live else None
        try:
            with quiet_opencv():
                self._prime()
        except InputError:
            self.cap.release()
            raise

    def describe_input(self) -> str:
        return f"{self.kind} {self.target}"

    def _read_image(self) -> np.ndarray | None:
        try:
            with quiet_opencv():  # a stream's read timeout is reported by the source, not as OpenCV warnings
                ok, image = self.cap.read()
        except cv2.error:  # some backends raise instead of returning False
            return None
        if not ok or image is None or image.size == 0:
            return None
        return image

    def _grab(self):
        image = self._read_image()
        t_capture = time.perf_counter()
        if image is None:
            if not self._primed:
                return None  # nothing at all: _prime reports it as bad input
            if self.live:
                return NO_FRAME
            self._check_complete()
            return None
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            image = to_bgr8(image)
        index = self._index
        self._index += 1
        # Remote files: the frame's place in the video; live: time since the first frame (`Source.live_t_ms`).
        t_ms = self.live_t_ms(t_capture) if self.live else index * 1000.0 / self.fps
        return Frame(image, index, t_capture, t_ms)

    def _check_complete(self) -> None:
        """A file that announced N frames but stops decoding well before N is truncated or corrupt."""
        count = self.frame_count or 0
        # Containers without an index estimate their count from duration x fps: allow a little slack.
        if count and self._index < count - max(2, count // 50):
            raise DecodeError(f"{self.describe_input()}: frame {self._index} of {count} does not decode "
                              "(file truncated or corrupt); stopped there")

    def _make_capture(self) -> cv2.VideoCapture:
        return _open_capture(self.target)

    def _reopen(self) -> bool:
        if self._closed.is_set():
            return False
        with quiet_opencv():
            cap = self._make_capture()
        if not cap.isOpened():
            cap.release()
            return False
        old, self.cap = self.cap, cap
        old.release()
        return True

    def _release(self) -> None:
        self.cap.release()


class CameraSource(CaptureSource):
    """A webcam; width/height/fps are requests, and `describe()` says what the camera gave."""

    def __init__(self, camera: int | str, width: int | None = None, height: int | None = None,
                 fps: float | None = None) -> None:
        self.requested = (width, height, fps)
        self.target = camera
        super().__init__(camera, "camera", True, self._make_capture())

    def _make_capture(self) -> cv2.VideoCapture:
        """Open the camera with the requested size and rate (also when it is reopened after a stall)."""
        width, height, fps = self.requested
        cap = _open_capture(self.target)
        if cap.isOpened():
            if width:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, float(width))
            if height:
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, float(height))
            if fps:
                cap.set(cv2.CAP_PROP_FPS, float(fps))
        return cap

    def describe(self) -> str:
        width, height, fps = self.requested
        asked = ""
        if width or height or fps:
            asked = (f" (asked {width or '-'}x{height or '-'}"
                     f"{f' @ {fps:g} fps' if fps else ''})")
        return f"camera {self.target}: {self.width}x{self.height} @ {self.fps:g} fps{asked}"


class StreamSource(CaptureSource):
    """Any URL OpenCV can open; live unless it reports a frame count (a remote file).

    Reads give up after `stall_timeout_s` (then retried as any silent live source); a reopen after a
    stall also gives up after that long.
    """

    def __init__(self, url: str, stall_timeout_s: float = DEFAULT_STALL_TIMEOUT_S) -> None:
        self.stall_timeout_s = stall_timeout_s
        cap = _open_capture(url, stream_params(stall_timeout_s))
        count = _frame_count(cap) if cap.isOpened() else 0
        super().__init__(url, "stream", count <= 0, cap)

    def _make_capture(self) -> cv2.VideoCapture:
        return _open_capture(self.target, stream_params(self.stall_timeout_s, self.stall_timeout_s))


def is_url(spec: str) -> bool:
    """True for `scheme://...` (a stream URL, not a file path)."""
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", spec) is not None


def open_video(spec: str | Path) -> Source:
    """A video file (PyAV), an animated GIF / WebP / APNG (Pillow: each frame at its own duration) or a
    stream URL, for `facetrack video` (InputError when it cannot be opened)."""
    text = str(spec)
    if is_url(text):
        return StreamSource(text)
    if is_animated_image(text):
        return AnimatedImageSource(text)
    return VideoFileSource(text)


def open_camera(camera: str, width: int | None = None, height: int | None = None,
                fps: float | None = None, stall_timeout_s: float = DEFAULT_STALL_TIMEOUT_S) -> Source:
    """A webcam by index ('0') or device path, or a stream URL (InputError when it cannot be opened);
    `stall_timeout_s`: seconds without a frame before it counts as stopped.

    A regular file is a video, not a camera: it is opened as `facetrack video` opens it (`open_video`:
    not live, every frame in order) and the run ends at its end, instead of OpenCV replaying it.
    """
    text = str(camera).strip()
    if is_url(text):
        return StreamSource(text, stall_timeout_s)
    if not text.isdigit() and Path(text).is_file():
        return open_video(text)
    if not text.isdigit() and not Path(text).exists():
        raise InputError(f"--camera {shown(text)}: no such camera index or device path; give an index (0, 1, "
                         "...) or an existing device such as /dev/video0")
    source = CameraSource(int(text) if text.isdigit() else text, width, height, fps)
    source.stall_timeout_s = stall_timeout_s
    return source
