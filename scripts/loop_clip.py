#!/usr/bin/env python3
"""A longer clip from a short one, played forwards then backwards (no jump at the turns), for benchmarks
that want many frames: issue 15's comparison with MediaPipe was measured on a 1500-frame 640x480 clip,
where start-up (imports, model loading) weighs 8x less per frame than on the 180-frame demo.

usage: scripts/loop_clip.py [demo/demo.mp4] --frames 1500 [--size 1280x720] --out /tmp/demo1500.mp4

`--size WxH` scales each picture to cover that size and crops its centre (the scaling table of
docs/benchmarks.md: the same faces at 640x480, 1280x720, 1920x1080).

Written as MPEG-4 Part 2 (mp4v, the demo's own codec) at the source's size, frame rate and bit rate, so
decoding costs about the same per frame; the frames are the source's decoded pictures (one more generation of
compression).
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


def ping_pong(count: int, frames: int) -> list[int]:
    """Indices into a clip of `count` frames: 0..count-1, count-2..1, 0.., for `frames` frames."""
    if count < 1:
        raise ValueError("the clip has no frames")
    cycle = list(range(count)) + list(range(count - 2, 0, -1)) or [0]
    return [cycle[k % len(cycle)] for k in range(frames)]


def cover(picture: np.ndarray, width: int, height: int) -> np.ndarray:
    """`picture` scaled to cover width x height (aspect kept), its centre cropped to exactly that size."""
    h, w = picture.shape[:2]
    k = max(width / w, height / h)
    sw, sh = max(width, round(w * k)), max(height, round(h * k))
    scaled = cv2.resize(picture, (sw, sh), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
    x0, y0 = (sw - width) // 2, (sh - height) // 2
    return np.ascontiguousarray(scaled[y0:y0 + height, x0:x0 + width])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", nargs="?", default="demo/demo.mp4")
    parser.add_argument("--frames", type=int, default=1500)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", default=None, help="WxH: scale to cover it and crop the centre")
    args = parser.parse_args(argv)
    size = None
    if args.size:
        try:
            size = tuple(int(v) for v in args.size.lower().split("x"))
            assert len(size) == 2 and min(size) >= 2
        except (ValueError, AssertionError):
            print(f"loop_clip: --size {args.size}: expected WxH, e.g. 1280x720", file=sys.stderr)
            return 2
    if args.frames < 1:
        print(f"loop_clip: --frames {args.frames}: give 1 or more", file=sys.stderr)
        return 2
    if not args.out.parent.is_dir():
        print(f"loop_clip: {args.out.parent}: no such folder", file=sys.stderr)
        return 2
    try:
        with av.open(args.clip) as source:
            if not source.streams.video:
                raise ValueError("no video stream")
            stream = source.streams.video[0]
            rate = stream.average_rate or Fraction(30)
            # BGR pictures: any pixel format and range in, the encoder's own conversion out (odd sizes too)
            pictures = [frame.to_ndarray(format="bgr24") for frame in source.decode(stream)]
            bit_rate = stream.bit_rate or stream.codec_context.bit_rate or 2_000_000
            stream_pixels = stream.codec_context.width * stream.codec_context.height
    except (OSError, ValueError, av.FFmpegError) as exc:
        print(f"loop_clip: {args.clip}: cannot read it ({exc})", file=sys.stderr)
        return 2
    if not pictures:
        print(f"loop_clip: {args.clip}: no frames", file=sys.stderr)
        return 2
    if size is not None:
        pictures = [cover(p, *size) for p in pictures]
        bit_rate = int(bit_rate * size[0] * size[1] / max(1, stream_pixels))
    height, width = pictures[0].shape[:2]
    with av.open(str(args.out), "w") as out:
        video = out.add_stream("mpeg4", rate=rate)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.codec_tag = "mp4v"
        video.bit_rate = bit_rate  # the source's: decoding costs about the same per frame
        for k, index in enumerate(ping_pong(len(pictures), args.frames)):
            frame = av.VideoFrame.from_ndarray(pictures[index], format="bgr24")
            frame.pts, frame.time_base = k, 1 / rate
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
    print(f"wrote {args.out}: {args.frames} frames, {width}x{height} at {float(rate):g} fps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
