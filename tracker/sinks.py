"""Where results go: an mp4 video, JSON lines (one row per frame or image), a window when asked.

Output paths are checked before any work (`check_output_path`). The window sink is only made when a
window was asked for and a display exists: the GUI build of OpenCV aborts the process otherwise.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from tracker.errors import FacetrackError, InputError
from tracker.meta import POINT_NAMES

FOURCC = "mp4v"
VIDEO_SUFFIXES = (".mp4",)
ESC = 27


def display_available() -> bool:
    """True when a window can be opened (an X11 or Wayland display on Linux)."""
    if sys.platform.startswith("linux") or "bsd" in sys.platform:
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def check_output_path(path: Path, option: str, inputs: list[Path] = (), suffixes: tuple[str, ...] = (),
                      others: list[Path] = ()) -> Path:
    """Fail before any work when `path` cannot be written: missing folder, a folder, an input, a clash."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{option} {path}: is a folder; give a file path")
    if not path.parent.is_dir():
        raise InputError(f"{option} {path}: folder {path.parent} does not exist")
    if suffixes and path.suffix.lower() not in suffixes:
        raise InputError(f"{option} {path}: expected a {' or '.join(suffixes)} file name")
    for given in inputs:
        if _same_file(path, Path(given)):
            raise InputError(f"{option} {path}: is the input; refusing to overwrite it")
    for other in others:
        if other is not None and _same_file(path, Path(other)):
            raise InputError(f"{option} {path}: is also another output")
    return path


class VideoSink:
    """An mp4v .mp4 writer at the input's size and fps; one `write` per input frame."""

    def __init__(self, path: str | Path, fps: float, width: int, height: int) -> None:
        self.path = Path(path)
        self.size = (int(width), int(height))
        self.fps = float(fps)
        self.frames = 0
        self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*FOURCC), self.fps, self.size)
        if not self._writer.isOpened():
            raise FacetrackError(f"{self.path}: cannot open a {FOURCC} video writer")

    def write(self, image: np.ndarray) -> None:
        """Append one frame (resized only if a source changed size mid-stream)."""
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        self._writer.write(np.ascontiguousarray(image))
        self.frames += 1

    def close(self) -> None:
        """Finish the file so it plays (writes the mp4 index)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None


class JsonlSink:
    """JSON lines, one object per frame or image, flushed per row so an interrupted run keeps its rows."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.rows = 0
        try:
            self._file = open(self.path, "w", encoding="utf-8")
        except OSError as exc:
            raise FacetrackError(f"{self.path}: cannot write ({exc.strerror})") from None

    def write(self, row: dict) -> None:
        """Write and flush one row."""
        self._file.write(json.dumps(row, separators=(",", ":")) + "\n")
        self._file.flush()
        self.rows += 1

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


class WindowSink:
    """An OpenCV window; `show` returns False once the user pressed q or Esc (or closed it)."""

    def __init__(self, title: str = "facetrack") -> None:
        if not display_available():
            raise InputError("no display available for a window (DISPLAY / WAYLAND_DISPLAY unset)")
        self.title = title
        self._opened = False

    def show(self, image: np.ndarray) -> bool:
        """Show one frame; must run on the main thread."""
        if not self._opened:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
            self._opened = True
        cv2.imshow(self.title, image)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), ord("Q"), ESC):
            return False
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:
            return False

    def close(self) -> None:
        if self._opened:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
            self._opened = False


def _r(v: float) -> float:
    return round(float(v), 2)


def face_rows(result, point_names: tuple[str, ...] = POINT_NAMES) -> list[dict]:
    """The "faces" list of a FrameResult: [] when none, else one dict with box, score and points."""
    if result.detection is None or result.points_px is None:
        return []
    points = np.asarray(result.points_px, dtype=np.float32).reshape(-1, 2)
    return [{
        "box_xyxy": [_r(v) for v in result.detection.box_xyxy],
        "score": round(float(result.detection.score), 4),
        "points": {name: [_r(x), _r(y)] for name, (x, y) in zip(point_names, points)},
    }]


def result_row(result, point_names: tuple[str, ...] = POINT_NAMES) -> dict:
    """One JSON row: {"frame", "t_ms"} or {"image"}, then "width", "height", "faces"."""
    frame = result.frame
    if frame.name is not None:
        row: dict = {"image": frame.name}
    else:
        row = {"frame": frame.index, "t_ms": round(float(frame.t_ms), 3)}
    row["width"], row["height"] = frame.width, frame.height
    row["faces"] = face_rows(result, point_names)
    return row
