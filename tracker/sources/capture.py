"""Sources read through OpenCV's VideoCapture: a webcam, a video file, a stream URL; and their openers.

Files are read frame by frame in order (`live` False); cameras and live streams are `live`: they run in
real time, and a device that stops delivering is retried, reopened once, then given up
(`tracker.sources.base.Source`).
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
from core.imageio import to_bgr8  # noqa: E402
from tracker.sources.base import DEFAULT_FPS, NO_FRAME, DecodeError, Source  # noqa: E402


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


def _open_capture(target: int | str) -> cv2.VideoCapture:
    with quiet_opencv():
        return cv2.VideoCapture(target)


def _frame_count(cap: cv2.VideoCapture) -> int:
    count = float(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0)
    return int(count) if math.isfinite(count) and count > 0 else 0


_CANNOT_OPEN = {
    "camera": "cannot open (no camera there, or another program holds it); try another --camera index "
              "or device path (ls /dev/video*)",
    "video": "cannot open (not a video file OpenCV can decode); check the file, or convert it to mp4 with ffmpeg",
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
            if self._index == 0:
                return None  # nothing at all: _prime reports it as bad input
            if self.live:
                return NO_FRAME
            self._check_complete()
            return None
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            image = to_bgr8(image)
        index = self._index
        self._index += 1
        # Files: the frame's place in the video; live: time since the source started.
        t_ms = (t_capture - self._t0) * 1000.0 if self.live else index * 1000.0 / self.fps
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

    def close(self) -> None:
        super().close()
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


class VideoFileSource(CaptureSource):
    """A video file, read frame by frame in order."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if not path.exists():
            raise InputError(f"{path}: no such file")
        if path.is_dir():
            raise InputError(f"{path}: is a folder, not a video file")
        if not os.access(path, os.R_OK):
            raise InputError(f"{path}: not readable (permission denied)")
        if path.is_file() and path.stat().st_size == 0:
            raise InputError(f"{path}: empty file (0 bytes), not a video")
        super().__init__(str(path), "video", False)

    def describe(self) -> str:
        count = f", {self.frame_count} frames" if self.frame_count else ""
        return f"video {self.target}: {self.width}x{self.height} @ {self.fps:g} fps{count}"


class StreamSource(CaptureSource):
    """Any URL OpenCV can open; live unless it reports a frame count (a remote file)."""

    def __init__(self, url: str) -> None:
        cap = _open_capture(url)
        count = _frame_count(cap) if cap.isOpened() else 0
        super().__init__(url, "stream", count <= 0, cap)


def is_url(spec: str) -> bool:
    """True for `scheme://...` (a stream URL, not a file path)."""
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", spec) is not None


def open_video(spec: str | Path) -> Source:
    """A video file or a stream URL, for `facetrack video` (InputError when it cannot be opened)."""
    text = str(spec)
    if is_url(text):
        return StreamSource(text)
    return VideoFileSource(text)


def open_camera(camera: str, width: int | None = None, height: int | None = None,
                fps: float | None = None) -> Source:
    """A webcam by index ('0') or device path, or a stream URL (InputError when it cannot be opened)."""
    text = str(camera).strip()
    if is_url(text):
        return StreamSource(text)
    if text.isdigit():
        return CameraSource(int(text), width, height, fps)
    if not Path(text).exists():
        raise InputError(f"--camera {text}: no such camera index or device path; give an index (0, 1, ...) "
                         "or an existing device such as /dev/video0")
    return CameraSource(text, width, height, fps)
