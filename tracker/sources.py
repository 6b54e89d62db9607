"""Where frames come from: a webcam, a video file or URL, image files, or a synthetic moving face.

Every source reads its first frame when it is opened, so a bad source fails fast with one clear
InputError instead of an empty run. `read()` returns the next `Frame` or None at the end.

Failures after the first frame are `SourceError`s (exit 1) raised by `read()`, after every frame
before them was delivered: a video whose frames stop decoding before its announced end raises
`DecodeError`; a live source (camera, stream) that stops delivering is retried for
`stall_timeout_s` seconds (reopened once halfway) and then raises `SourceStalled`.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

# FFmpeg's own decoder chatter ("moov atom not found", "header damaged") would add lines to our one-line
# errors; it is read once, when OpenCV first loads FFmpeg. A value the user set is kept.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from core.errors import FacetrackError, InputError  # noqa: E402
from core.frame import Frame  # noqa: E402
from core.imageio import is_image_file, read_image_bgr, to_bgr8  # noqa: E402

DEFAULT_FPS = 30.0
SYNTHETIC = "synthetic"
DEFAULT_STALL_TIMEOUT_S = 3.0  # a live source silent this long has stopped
RETRY_S = 0.05  # pause between reads of a live source that gave no frame
MIN_IMAGE_SIDE = 8  # still images smaller than this are skipped (nothing to find in them)


class SourceError(FacetrackError):
    """A source that failed after delivering frames (exit 1): what came before it is kept."""


class DecodeError(SourceError):
    """A video file whose frames stop decoding before its announced end."""


class SourceStalled(SourceError):
    """A live source (camera, stream) that stopped delivering frames."""


_NO_FRAME = object()  # a live read that gave nothing this time (retried), unlike None: the end


class Source:
    """Base of all sources: iterate, or `read()` until None; `close()` releases the device or file."""

    kind = "source"
    live = False  # live sources run in real time: keep only the newest frame, drop the rest
    fps = DEFAULT_FPS
    frame_count: int | None = None  # expected number of frames when known
    skipped = 0  # unreadable inputs passed over (image sources)
    stall_timeout_s = DEFAULT_STALL_TIMEOUT_S  # live sources: give up after this long without a frame

    def __init__(self) -> None:
        self._pending: Frame | None = None
        self._index = 0
        self._t0 = time.perf_counter()
        self._closed = threading.Event()
        self.width = 0
        self.height = 0
        self.reopened = 0  # live sources: times the device was reopened after it stopped delivering

    def describe(self) -> str:
        """One line saying what the source is and what it delivers."""
        return f"{self.kind}: {self.width}x{self.height} @ {self.fps:g} fps"

    def _prime(self) -> None:
        # The first frame is read here, synchronously, so a bad source fails when it is opened.
        first = self._next()
        if first is None:
            raise InputError(f"{self.describe_input()}: no frame could be read")
        self.height, self.width = first.image.shape[:2]
        self._pending = first

    def describe_input(self) -> str:
        return self.kind

    @property
    def delivered(self) -> int:
        """Frames handed out so far (including one read ahead at open)."""
        return self._index

    def _grab(self):
        """The next Frame, None at the end, or _NO_FRAME when a live source gave nothing this time."""
        raise NotImplementedError

    def _next(self) -> Frame | None:
        item = self._grab()
        if item is _NO_FRAME:
            item = self._wait_for_frame()
        return item

    def _wait_for_frame(self) -> Frame | None:
        """Retry a silent live source for `stall_timeout_s` (reopening it once halfway), then give up."""
        start = time.perf_counter()
        deadline = start + self.stall_timeout_s
        reopened = False
        while not self._closed.is_set():
            now = time.perf_counter()
            if now >= deadline:
                break
            if not reopened and now - start >= self.stall_timeout_s / 2:
                reopened = True
                if self._reopen():
                    self.reopened += 1
            self._closed.wait(RETRY_S)
            item = self._grab()
            if item is not _NO_FRAME:
                return item
        if self._closed.is_set():
            return None
        raise self.stalled(time.perf_counter() - start)

    def stalled(self, seconds: float) -> SourceStalled:
        """The error for a live source that gave no frame for `seconds`."""
        return SourceStalled(f"{self.describe_input()}: no frame for {seconds:.1f} s after {self.delivered} "
                             "frames (unplugged, or taken by another program?); stopped there")

    def _reopen(self) -> bool:
        """Try to reopen a live device that stopped delivering; True when it opened."""
        return False

    def read(self) -> Frame | None:
        """The next frame, or None when the source has ended; a SourceError when it failed."""
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        if self._closed.is_set():
            return None
        return self._next()

    def cancel(self) -> None:
        """Make a waiting or retrying read give up and every later read return None (keeps the device)."""
        self._closed.set()

    def close(self) -> None:
        """Release whatever the source holds (safe to call twice)."""
        self._closed.set()

    def __iter__(self):
        while True:
            frame = self.read()
            if frame is None:
                return
            yield frame

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
                return _NO_FRAME
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


class ImageSource(Source):
    """Image files and folders (recursive, sorted); unreadable or tiny images are skipped and counted."""

    kind = "images"

    def __init__(self, paths: list[str | Path]) -> None:
        super().__init__()
        self.paths = list(image_paths(paths))
        if not self.paths:
            raise InputError(f"no image files in {', '.join(str(p) for p in paths)}")
        self.frame_count = len(self.paths)
        self._position = 0
        self.skip_reasons: Counter = Counter()
        self.skipped_names: list[str] = []  # the first few, for the summary
        self._prime()

    def describe_input(self) -> str:
        return f"{len(self.paths)} image file(s)"

    def describe(self) -> str:
        return f"images: {len(self.paths)} file(s)"

    def _prime(self) -> None:
        first = self._next()
        if first is None:
            raise InputError(f"none of the {len(self.paths)} image file(s) could be used "
                             f"({self.skip_summary()}); check the files")
        self.height, self.width = first.image.shape[:2]
        self._pending = first

    def _skip(self, name: str, reason: str) -> None:
        self.skipped += 1
        self.skip_reasons[reason] += 1
        if len(self.skipped_names) < 5:
            self.skipped_names.append(name)

    def skip_summary(self) -> str:
        """'2 unreadable, 1 smaller than 8 px' (empty when nothing was skipped)."""
        return ", ".join(f"{n} {reason}" for reason, n in self.skip_reasons.items())

    def _grab(self) -> Frame | None:
        while self._position < len(self.paths):
            name = self.paths[self._position]
            self._position += 1
            image = read_image_bgr(name)
            if image is None:
                self._skip(name, "unreadable")
                continue
            if min(image.shape[:2]) < MIN_IMAGE_SIDE:
                self._skip(name, f"smaller than {MIN_IMAGE_SIDE} px")
                continue
            index = self._index
            self._index += 1
            return Frame(image, index, time.perf_counter(), 0.0, name)
        return None


def image_paths(paths: list[str | Path]) -> list[str]:
    """Image files named directly or found (recursively, sorted) in folders; paths kept as given."""
    found: list[str] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for sub in sorted(path.rglob("*")):
                if is_image_file(sub):
                    found.append(os.path.join(str(given), str(sub.relative_to(path))))
        elif path.is_file():
            found.append(str(given))  # decoded later; an undecodable file is skipped and counted
        else:
            raise InputError(f"{given}: no such file or folder")
    return found


# ---------------------------------------------------------------- synthetic
# Crop-normalised positions of the four points on the drawn face (right eye on the image's left).
_SYN_POINTS = np.array([[-0.32, -0.22], [0.32, -0.22], [0.0, 0.1], [0.0, 0.42]], dtype=np.float32)


class SyntheticSource(Source):
    """A drawn face-like pattern moving on a smooth path: deterministic, no files, no camera.

    Live synthetic sources are paced to `fps` (like a camera) unless `pace` is False. Frame times
    (`t_ms`) are the frames' nominal times, index / fps, as a camera's clock would give them.
    `stall_after=N` makes a live source stop delivering after N frames, like an unplugged camera
    (retried, then SourceStalled); `hang_after=N` makes its read block after N frames, like a stuck
    driver, until the source is closed (or 10 s pass; the threaded runtime's watchdog gives up sooner).
    """

    kind = SYNTHETIC

    def __init__(self, width: int = 320, height: int = 240, fps: float = DEFAULT_FPS, frames: int = 300,
                 live: bool = False, pace: bool | None = None, seed: int = 0, stall_after: int | None = None,
                 hang_after: int | None = None) -> None:
        super().__init__()
        if width < 32 or height < 32 or fps <= 0 or frames < 1:
            raise InputError("synthetic source needs width, height >= 32, fps > 0 and frames >= 1")
        if (stall_after is not None and stall_after < 1) or (hang_after is not None and hang_after < 1):
            raise InputError("synthetic source: stall_after and hang_after must be at least 1")
        self.width, self.height, self.fps = int(width), int(height), float(fps)
        self.frame_count = int(frames)
        self.live = live
        self.pace = live if pace is None else pace
        self.stall_after = stall_after
        self.hang_after = hang_after
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
        if self.hang_after is not None and index >= self.hang_after:
            # A stuck driver: the read blocks until the source is closed, or gives up much later (as
            # V4L2's select timeout does), so even a sequential run ends.
            if self._closed.wait(max(10.0, 5 * self.stall_timeout_s)):
                return None
            return _NO_FRAME if self.live else None
        if self.stall_after is not None and index >= self.stall_after:
            return _NO_FRAME if self.live else None
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


def parse_synthetic(spec: str, live: bool = False) -> SyntheticSource:
    """`synthetic[?width=W&height=H&fps=F&frames=N&live=1&pace=0&seed=S&stall_after=N&hang_after=N]`."""
    query = parse_qs(urlsplit(spec).query) if "?" in spec else {}
    unknown = set(query) - {"width", "height", "fps", "frames", "live", "pace", "seed", "stall_after", "hang_after"}
    if unknown:
        raise InputError(f"{spec}: unknown synthetic option(s) {', '.join(sorted(unknown))}")

    def get(key, cast, default):
        if key not in query:
            return default
        try:
            return cast(query[key][-1])
        except ValueError:
            raise InputError(f"{spec}: bad value for {key}") from None

    flag = lambda v: v.lower() in ("1", "true", "yes")  # noqa: E731
    return SyntheticSource(width=get("width", int, 320), height=get("height", int, 240),
                           fps=get("fps", float, DEFAULT_FPS), frames=get("frames", int, 300),
                           live=get("live", flag, live), pace=get("pace", flag, None), seed=get("seed", int, 0),
                           stall_after=get("stall_after", int, None), hang_after=get("hang_after", int, None))


def is_synthetic(spec: str) -> bool:
    return spec == SYNTHETIC or spec.startswith(SYNTHETIC + "?")


def is_url(spec: str) -> bool:
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", spec) is not None


def open_video(spec: str | Path) -> Source:
    """A video file, URL or synthetic spec, for `facetrack video`."""
    text = str(spec)
    if is_synthetic(text):
        return parse_synthetic(text, live=False)
    if is_url(text):
        return StreamSource(text)
    return VideoFileSource(text)


def open_camera(camera: str, width: int | None = None, height: int | None = None,
                fps: float | None = None) -> Source:
    """A webcam by index ('0') or device path, a stream URL, or a synthetic spec (live)."""
    text = str(camera).strip()
    if is_synthetic(text):
        return parse_synthetic(text, live=True)
    if is_url(text):
        return StreamSource(text)
    if text.isdigit():
        return CameraSource(int(text), width, height, fps)
    if not Path(text).exists():
        raise InputError(f"--camera {text}: no such camera index or device path; give an index (0, 1, ...) "
                         "or an existing device such as /dev/video0")
    return CameraSource(text, width, height, fps)
