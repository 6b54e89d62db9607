"""Which video codec an annotated .mp4 is written with (`facetrack video/webcam --codec auto|h264|mp4v`).

- **H.264** (FFmpeg's `libx264`, yuv420p, preset `ultrafast`, CRF 23): plays in every browser. Used by
  `auto` when this PyAV/FFmpeg build has the encoder (PyAV's wheels bundle it) and the frame size is
  even in both directions (yuv420p halves the chroma planes).
- **MPEG-4 Part 2** (FFmpeg's `mpeg4`, tag mp4v, constant quality 4): any size, odd ones too, but most
  browsers do not play it (desktop players do). `auto` falls back to it for an odd width or height, so
  the output keeps the input's exact size, and when there is no H.264 encoder.

`choose_codec` says which and why (`Codec.label`: `H.264`, `MPEG-4 Part 2: odd size 641x481`); asking for
`h264` where it cannot be written is an InputError (exit 2). `open_video_stream` adds the stream to an
open PyAV output container. Every mp4 is written with `+faststart` (index first: a browser starts playing
before the whole file arrived).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction

import av

from core.devices import helper_threads
from core.errors import InputError

AUTO, H264, MP4V = "auto", "h264", "mp4v"
CHOICES = (AUTO, H264, MP4V)
TIME_BASE_HZ = 60000  # timestamps in 1/60000 s (MPEG-4 Part 2 allows up to 65535): exact for 24/25/30/29.97 fps
MP4V_QSCALE = 4  # constant quality 1 (best) .. 31; 4 looks like OpenCV's mp4v writer at a similar size
LAMBDA_PER_QP = 118  # FFmpeg's FF_QP2LAMBDA
H264_OPTIONS = {"preset": "ultrafast", "crf": "23"}  # x264's cheapest preset: the encoder is on the
# critical path of a real-time tool (2.4 CPU ms a 640x480 frame against 6.0 with veryfast and 1.65 for mp4v;
# docs/benchmarks.md), at 0.7x mp4v's file size
MUXER_OPTIONS = {"movflags": "+faststart"}  # the mp4 index before the frames


@dataclass(frozen=True)
class Codec:
    """The codec of one output: `name` (H264 or MP4V), `encoder` (FFmpeg's), `label` for the "wrote" line."""

    name: str
    encoder: str
    label: str


@functools.lru_cache(maxsize=1)
def h264_encoder() -> str | None:
    """`libx264` when this PyAV/FFmpeg build can encode H.264 with it, else None."""
    try:
        av.codec.Codec("libx264", "w")
    except (av.FFmpegError, ValueError, KeyError):  # UnknownCodecError is a ValueError
        return None
    return "libx264"


def check_choice(choice: str) -> None:
    """InputError (before any work) for an unknown `--codec`, or `h264` without an H.264 encoder."""
    if choice not in CHOICES:
        raise InputError(f"--codec {choice}: give auto, h264 or mp4v")
    if choice == H264 and h264_encoder() is None:
        raise InputError("--codec h264: this PyAV/FFmpeg build has no H.264 encoder (libx264); use --codec mp4v "
                         "or auto")


def choose_codec(choice: str, width: int, height: int) -> Codec:
    """The codec for a `width` x `height` (pixels) output under `--codec choice`; InputError for `h264` at
    an odd size or without the encoder (`check_choice`)."""
    check_choice(choice)
    odd = width % 2 or height % 2
    if choice == H264 and odd:
        raise InputError(f"--codec h264: the video is {width}x{height}, and H.264 (yuv420p) needs an even width "
                         "and height; use --codec auto (MPEG-4 Part 2 at the exact size) or mp4v")
    if choice == MP4V:
        return Codec(MP4V, "mpeg4", "MPEG-4 Part 2")
    if odd:
        return Codec(MP4V, "mpeg4", f"MPEG-4 Part 2: odd size {width}x{height}")
    if h264_encoder() is None:
        return Codec(MP4V, "mpeg4", "MPEG-4 Part 2: no H.264 encoder here")
    return Codec(H264, h264_encoder(), "H.264")


def open_video_stream(container, codec: Codec, size: tuple[int, int], fps: float):
    """Add and open `codec`'s video stream of `size` (pixels) at nominal `fps` in the PyAV output
    `container`; timestamps in 1 / TIME_BASE_HZ s. FFmpeg's errors propagate (av.FFmpegError, ValueError)."""
    stream = container.add_stream(codec.encoder, rate=Fraction(fps).limit_denominator(1001))
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    stream.codec_context.time_base = Fraction(1, TIME_BASE_HZ)
    if codec.name == H264:
        # x264's own threads (1.5 x cores by default) fight the pipeline's for the cores: helper_threads()
        stream.codec_context.options = {**H264_OPTIONS, "threads": str(helper_threads())}
    else:
        stream.codec_context.codec_tag = "mp4v"
        stream.codec_context.qscale = True  # constant quality (as ffmpeg -q:v MP4V_QSCALE)
        stream.codec_context.global_quality = MP4V_QSCALE * LAMBDA_PER_QP
    stream.codec_context.open()
    return stream
