"""A video file decoded with PyAV (FFmpeg): every frame in order, with its own presentation time.

Three things come from the decoder and the data, never from the header's estimates:

- `Frame.t_ms` is the frame's presentation time in the file (pts x time base, in ms; the first frame
  may be later than 0, as in a file whose audio starts first). Variable-frame-rate files keep their
  real timing. A frame without a timestamp is placed one nominal frame interval after the one before.
- The end of the video is when the demuxer says the data ended. The header's frame count (often
  duration x fps, and in Matroska/WebM the duration is the longest stream's, audio included) is only
  `frame_count`, the progress bar's total.
- A file is called truncated or corrupt (`DecodeError`, exit 1, after every frame before it) only when
  the decoder or demuxer reports an error, or when the data of every stream (audio too) ends well
  before the duration the container announces (by more than 3 frame intervals or 2 % of it).

Frames are the full coded size (odd widths and heights too), turned upright by the stream's display
matrix as players do (rotated phone videos), and converted to uint8 BGR.

The video is the first video stream that is not an attached picture (the cover art of a music file):
a file with none (audio only, `.m4a`) is InputError "no video stream". File names that are not valid
UTF-8 are opened as their bytes (PyAV) and shown as `ls -b` does (`core.pathnames`).
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from pathlib import Path

import av
import cv2
import numpy as np

from core.errors import InputError, os_reason
from core.frame import Frame
from core.pathnames import shown
from tracker.sources.base import DEFAULT_FPS, DecodeError, Source

TRUNCATED_SLACK_FRAMES = 3  # the data may end this many nominal frame intervals before the announced end,
TRUNCATED_SLACK_FRACTION = 0.02  # or this part of the duration, whichever is longer


def _nominal_fps(stream) -> float:
    """The stream's nominal frame rate (average, else guessed), DEFAULT_FPS when it gives none sensible."""
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate:
            fps = float(rate)
            if math.isfinite(fps) and 0.5 < fps < 1000:
                return fps
    return DEFAULT_FPS


def _announced_end_s(container) -> float | None:
    """Where the container says its data ends, in seconds on the streams' clock (None when it does not say)."""
    if container.duration is None or container.duration <= 0:
        return None
    start = container.start_time if container.start_time is not None else 0
    return (start + container.duration) / av.time_base


def _frame_estimate(container, stream, fps: float) -> tuple[int | None, bool]:
    """(frames the header announces, whether that is an estimate from duration x fps); (None, True) if unknown."""
    if stream.frames and stream.frames > 0:
        return int(stream.frames), False
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration:
        seconds = container.duration / av.time_base
    else:
        return None, True
    return (max(1, int(round(seconds * fps))), True) if seconds > 0 else (None, True)


def _packet_end_s(packet) -> float | None:
    """When a demuxed packet's data ends, in seconds (None for a flush packet or one without times)."""
    ts = packet.pts if packet.pts is not None else packet.dts
    if ts is None or packet.time_base is None:
        return None
    return float((ts + (packet.duration or 0)) * packet.time_base)


# AVColorSpace / AVColorRange values (libavutil/pixfmt.h) whose yuv420p frames OpenCV converts as FFmpeg
# does by default: BT.601 limited range (unspecified, BT.470BG, SMPTE 170M; unspecified or MPEG range).
BT601_SPACES = (2, 5, 6)
LIMITED_RANGES = (0, 1)


def upright_bgr(frame) -> np.ndarray:
    """A decoded av.VideoFrame as uint8 HxWx3 BGR, turned as its display matrix says (multiples of 90 deg).

    BT.601 limited-range yuv420p frames of even size (most camera and web video at SD sizes) are converted
    by OpenCV (`cv2.COLOR_YUV2BGR_I420`): 0.3 ms a 640x480 frame less than FFmpeg's bgr24 path
    (docs/benchmarks.md), within about one level of it; other formats, colour spaces (BT.709 HD video)
    and ranges go through FFmpeg's conversion, which reads them from the frame."""
    if (frame.format.name == "yuv420p" and frame.colorspace in BT601_SPACES and frame.color_range in LIMITED_RANGES
            and frame.width % 2 == 0 and frame.height % 2 == 0):
        image = cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2BGR_I420)
    else:
        image = frame.to_ndarray(format="bgr24")
    quarter_turns = int(round((frame.rotation or 0) / 90.0)) % 4  # counter-clockwise
    if quarter_turns:
        image = np.ascontiguousarray(np.rot90(image, quarter_turns))
    return image


def _check_file(path: Path) -> None:
    """InputError for a path that cannot be a readable video file (before FFmpeg sees it)."""
    name = shown(path)
    if not path.exists():
        raise InputError(f"{name}: no such file")
    if path.is_dir():
        raise InputError(f"{name}: is a folder, not a video file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{name}: not readable (permission denied)")
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"{name}: empty file (0 bytes), not a video")


def _is_picture(stream) -> bool:
    """True for a video stream that is an attached picture (cover art), not a video."""
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _no_video(container) -> str:
    """What the file holds instead of a video: 'audio only: aac', with a cover picture when it has one."""
    audio = sorted({s.codec_context.name for s in container.streams.audio if s.codec_context is not None})
    held = f"audio only: {', '.join(audio)}" if audio else "no audio either"
    if any(_is_picture(s) for s in container.streams.video):
        held += ", and a cover picture"
    return held


class VideoFileSource(Source):
    """A video file, read frame by frame in order through PyAV (see the module's doc for timing and the end).

    Raises InputError (exit 2) when the file is missing, unreadable, not a video or has no frame;
    `read()` raises DecodeError (exit 1) when the data stops decoding before its end.
    """

    kind = "video"
    live = False

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        path = Path(path)
        _check_file(path)
        self.target = shown(path)  # for messages
        try:
            self._container = av.open(str(path), mode="r")
        except (av.FFmpegError, OSError, ValueError):
            raise InputError(f"{self.target}: cannot open (not a video file FFmpeg can decode); check the file, "
                             "or convert it to mp4 with ffmpeg") from None
        try:
            self._setup()
            self._prime()
        except BaseException:
            self._container.close()
            raise

    def _setup(self) -> None:
        """Pick the first video stream and read what its header announces (InputError when there is none)."""
        videos = [s for s in self._container.streams.video if not _is_picture(s)]
        if not videos:
            raise InputError(f"{self.target}: no video stream in the file ({_no_video(self._container)}); "
                             "give a video file")
        self._stream = videos[0]
        self._stream.thread_type = "AUTO"  # frame and slice threads: decoding keeps up with the tracker
        self.fps = _nominal_fps(self._stream)
        self.frame_count, self.count_estimated = _frame_estimate(self._container, self._stream, self.fps)
        self._announced_end_s = _announced_end_s(self._container)
        self._data_end_s: float | None = None  # where the demuxed data (all streams) ended so far
        self._packets = self._container.demux()  # every stream: their packets' times tell a cut-off file
        self._decoded: deque = deque()
        self._failure: DecodeError | None = None  # raised once the frames decoded before it are handed out
        self._ended = False
        self._last_t_ms: float | None = None

    def describe_input(self) -> str:
        return f"{self.kind} {self.target}"

    def describe(self) -> str:
        count = ""
        if self.frame_count:
            count = f", {'about ' if self.count_estimated else ''}{self.frame_count} frames"
        return f"video {self.target}: {self.width}x{self.height} @ {self.fps:g} fps{count}"

    def _grab(self):
        while not self._decoded:
            if self._failure is not None:
                raise self._failure
            if self._ended:
                self._check_complete()
                return None
            self._decode_next_packet()
        return self._make_frame(self._decoded.popleft())

    def _decode_next_packet(self) -> None:
        """Demux one packet (any stream); decode it when it is video. Sets `_ended` or `_failure`."""
        try:
            packet = next(self._packets)
        except StopIteration:
            self._ended = True
            return
        except (av.FFmpegError, OSError) as exc:
            self._fail(f"the data cannot be read ({os_reason(exc)})")
            return
        end_s = _packet_end_s(packet)
        if end_s is not None:
            self._data_end_s = end_s if self._data_end_s is None else max(self._data_end_s, end_s)
        if packet.stream.index != self._stream.index:
            return
        try:
            self._decoded.extend(packet.decode())
        except (av.FFmpegError, OSError) as exc:
            self._fail(f"does not decode ({os_reason(exc)})")

    def _fail(self, what: str) -> None:
        """Remember a failure, after draining the frames the decoder still holds (they came before it)."""
        try:
            self._decoded.extend(self._stream.codec_context.decode(None))
        except (av.FFmpegError, OSError, ValueError):
            pass
        index = self._index + len(self._decoded)
        of = f" of {'about ' if self.count_estimated else ''}{self.frame_count}" if self.frame_count else ""
        self._failure = DecodeError(f"{self.describe_input()}: frame {index}{of} {what} (file truncated or "
                                    "corrupt); stopped there")

    def _make_frame(self, decoded) -> Frame:
        t_ms = decoded.time * 1000.0 if decoded.time is not None else None
        if t_ms is None:  # no timestamp: one nominal interval after the previous frame
            t_ms = 0.0 if self._last_t_ms is None else self._last_t_ms + 1000.0 / self.fps
        self._last_t_ms = t_ms
        frame = Frame(upright_bgr(decoded), self._index, time.perf_counter(), t_ms)
        self._index += 1
        return frame

    def _check_complete(self) -> None:
        """At the end of the data: DecodeError when every stream's data stopped well before the announced end."""
        announced, data_end = self._announced_end_s, self._data_end_s
        if announced is None or data_end is None or self._index == 0:
            return
        duration = self._container.duration / av.time_base
        if data_end < announced - max(TRUNCATED_SLACK_FRAMES / self.fps, TRUNCATED_SLACK_FRACTION * duration):
            raise DecodeError(f"{self.describe_input()}: the data ends at {data_end:.1f} s of the {announced:.1f} s "
                              f"the file announces, after frame {self._index - 1} (file truncated or corrupt); "
                              "stopped there")

    def _release(self) -> None:
        self._container.close()


