"""The input's sound in the annotated .mp4 (`facetrack video --keep-audio`).

`AudioCopy` opens the input file a second time, for its audio streams only, and writes each into the
output container beside the video: copied packet by packet (no re-encoding) when the mp4 container
takes the codec (REMUXED: AAC, MP3, Opus, FLAC, ALAC, AC-3, E-AC-3), otherwise decoded and encoded to
AAC. The sound is cut to the frames' time range: from the first written frame's presentation time (the
output's 0) to the last one's plus one frame interval, so `--start/--end/--stride/--max-frames` keep the
sound of the part they keep; timestamps are shifted by the same offset as the frames', so sound and
picture stay in sync. Packets are interleaved with the frames as they are written (`pump`).

Nothing here stops the video from being written: an input without sound, one that cannot be opened a
second time, or a stream that cannot be written is said in one line (`notes`) and left out.
"""

from __future__ import annotations

import contextlib
from fractions import Fraction
from pathlib import Path

import av

from core.pathnames import shown

REMUXED = frozenset({"aac", "mp3", "opus", "flac", "alac", "ac3", "eac3"})  # into mp4 as they are
AAC_BIT_RATE = 128_000  # bits/s of a re-encoded stream


class _Track:
    """One input audio stream and its output stream: copied, or decoded and re-encoded to AAC."""

    def __init__(self, source, out, copy: bool) -> None:
        self.source, self.out, self.copy = source, out, copy
        self.resampler = None if copy else av.AudioResampler(format=out.codec_context.format.name,
                                                             layout=out.codec_context.layout.name,
                                                             rate=out.codec_context.sample_rate,
                                                             frame_size=out.codec_context.frame_size or None)
        self.samples = None  # re-encoded: output samples so far (None before the first)

    def write(self, container, packet, offset_s: float) -> None:
        """Write one input packet shown `offset_s` seconds before the output's 0 (dropped when it starts before)."""
        tb = packet.time_base
        shift = int(round(offset_s / tb))
        if packet.pts < shift:
            return
        if self.copy:
            packet.pts -= shift
            packet.dts = packet.pts if packet.dts is None else packet.dts - shift
            packet.stream = self.out
            container.mux(packet)
            return
        for frame in packet.decode():
            if frame.pts is not None and self.samples is None:
                self.samples = int(round((float(frame.pts * frame.time_base) - offset_s) * frame.sample_rate))
            self._encode(container, frame)

    def _encode(self, container, frame) -> None:
        rate = self.out.codec_context.sample_rate
        for chunk in self.resampler.resample(frame):
            chunk.pts, chunk.time_base = self.samples or 0, Fraction(1, rate)
            self.samples = (self.samples or 0) + chunk.samples
            for packet in self.out.encode(chunk):
                container.mux(packet)

    def flush(self, container) -> None:
        if self.copy:
            return
        self._encode(container, None)
        for packet in self.out.encode(None):
            container.mux(packet)


class AudioCopy:
    """The audio streams of `source_path` written into the PyAV output `container` (made before its first
    packet is written). `notes`: what was left out and why, one line each (empty when all went in).
    `start(t0_s)` with the first frame's presentation time (s); `pump(until_s)` before each frame shown at
    `until_s` (s, output time); `finish(end_s)` before the container is closed."""

    def __init__(self, source_path: str | Path, container, name: str) -> None:
        self.notes: list[str] = []
        self.tracks: dict[int, _Track] = {}
        self.name = name
        self._container = container
        self._input = None
        self._packets = None
        self._pending = None
        self._offset_s = 0.0
        label = shown(source_path)
        try:
            self._input = av.open(str(source_path))
        except (av.FFmpegError, OSError, ValueError) as exc:
            self.notes.append(f"--keep-audio: cannot read the sound of {label} ({exc}); the video has none")
            return
        streams = list(self._input.streams.audio)
        if not streams:
            self.notes.append(f"--keep-audio: {label} has no audio stream; the video is written without sound")
        for stream in streams:
            codec = stream.codec_context.name
            try:
                if codec in REMUXED:
                    self.tracks[stream.index] = _Track(stream, container.add_stream_from_template(stream), True)
                else:
                    out = container.add_stream("aac", rate=stream.codec_context.sample_rate or 48000)
                    out.layout = stream.codec_context.layout.name if stream.codec_context.channels <= 2 else "stereo"
                    out.bit_rate = AAC_BIT_RATE
                    out.codec_context.open()
                    self.tracks[stream.index] = _Track(stream, out, False)
            except (av.FFmpegError, ValueError) as exc:
                self.notes.append(f"--keep-audio: audio stream {stream.index} of {label} ({codec}) left out ({exc})")
        if not self.tracks:
            self.close()

    def start(self, t0_s: float) -> None:
        """The output's 0 is the input's `t0_s` (s): seek there (to the packet at or before it)."""
        if self._input is None:
            return
        self._offset_s = float(t0_s)
        if t0_s > 1.0:
            with contextlib.suppress(av.FFmpegError, OSError, ValueError):
                self._input.seek(int(t0_s * av.time_base), backward=True)
        self._packets = self._input.demux(*[track.source for track in self.tracks.values()])

    def pump(self, until_s: float) -> None:
        """Write every packet shown before `until_s` (s, output time)."""
        if self._packets is None:
            return
        while True:
            packet = self._pending or next(self._packets, None)
            self._pending = None
            if packet is None:
                self._packets = None
                return
            if packet.pts is None or packet.stream.index not in self.tracks:
                continue  # a demuxer's flush packet, or no time to place it at
            if float(packet.pts * packet.time_base) - self._offset_s >= until_s:
                self._pending = packet
                return
            self.tracks[packet.stream.index].write(self._container, packet, self._offset_s)

    def finish(self, end_s: float) -> None:
        """Write the sound up to `end_s` (s, output time), flush the encoders, close the input."""
        if self._input is None:
            return
        try:
            if self._packets is not None:
                self.pump(end_s)
            for track in self.tracks.values():
                track.flush(self._container)
        finally:
            self.close()

    def close(self) -> None:
        """Close the input (idempotent)."""
        self._packets = self._pending = None
        if self._input is not None:
            with contextlib.suppress(av.FFmpegError, OSError):
                self._input.close()
            self._input = None
