"""A live MPEG-TS stream over UDP for the tests, made with PyAV: the synthetic moving face, sent in real time.

`python -m tests.udp_stream PORT SECONDS [--fps F] [--size WxH]` sends SECONDS of video to
udp://127.0.0.1:PORT, paced like a camera, then stops (the stream just goes silent, as a network
feed that drops does). `start_stream` runs it in a process of its own and `free_udp_port` picks a port.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing is bound to right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_stream(port: int, seconds: float, fps: float = 25.0, size: tuple[int, int] = (160, 120)) -> subprocess.Popen:
    """Start sending the stream in a child process (the caller waits for it or kills it)."""
    args = [sys.executable, "-m", "tests.udp_stream", str(port), str(seconds), "--fps", str(fps),
            "--size", f"{size[0]}x{size[1]}"]
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def send(port: int, seconds: float, fps: float, width: int, height: int) -> int:
    """Send `seconds` of the synthetic face as MPEG-TS (mpeg2video) to udp://127.0.0.1:port; frames sent."""
    import av

    from tracker.sources.synthetic import SyntheticSource

    source = SyntheticSource(width, height, fps, frames=max(1, int(seconds * fps)))
    # pkt_size: one datagram per TS packet group, as streaming tools send them
    container = av.open(f"udp://127.0.0.1:{port}?pkt_size=1316", "w", format="mpegts")
    stream = container.add_stream("mpeg2video", rate=Fraction(fps).limit_denominator(1000))
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.codec_context.gop_size = int(fps)  # a key frame every second: a late reader starts soon
    t0 = time.perf_counter()
    sent = 0
    for index in range(source.frame_count):
        delay = t0 + index / fps - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        frame = av.VideoFrame.from_ndarray(source.render(index), format="bgr24").reformat(format="yuv420p")
        frame.pts = index
        for packet in stream.encode(frame):
            container.mux(packet)
        sent += 1
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("seconds", type=float)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--size", default="160x120")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    send(args.port, args.seconds, args.fps, width, height)


if __name__ == "__main__":
    main()
