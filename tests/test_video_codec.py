"""Issue 14: the annotated mp4 is H.264 where it can be written (MPEG-4 Part 2 for odd sizes, or when asked),
the "wrote" line says which, `--keep-audio` keeps the input's sound in sync, and `Tracker.step` refuses a
numpy image with a clear InputError.

Every input is generated here: clips of the synthetic face (`write_clip`), and clips with a sound track
written with PyAV (AAC, or PCM in a .mov, which is re-encoded).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from core.errors import InputError
from facetrack.cli import app
from tests.helpers import one_error_line, write_clip
from tracker import mp4_codec
from tracker.backends import open_models
from tracker.pipeline import Tracker
from tracker.sources.synthetic import SyntheticSource

runner = CliRunner()
FPS = 10
RATE = 16000


@pytest.fixture(autouse=True)
def _no_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


def _video(clip: Path, out: Path, weights: Path, *more: str):
    return runner.invoke(app, ["video", str(clip), "--out", str(out), "--weights", str(weights),
                               "--device", "cpu", *more])


def _streams(path: Path) -> dict[str, tuple[str, float, tuple[int, int]]]:
    """{kind: (codec name, duration s, (width, height))} of a file's first video and audio streams."""
    found = {}
    with av.open(str(path)) as container:
        for stream in container.streams:
            if stream.type in found or stream.type not in ("video", "audio"):
                continue
            duration = float(stream.duration * stream.time_base) if stream.duration else 0.0
            size = (stream.codec_context.width, stream.codec_context.height) if stream.type == "video" else (0, 0)
            found[stream.type] = (stream.codec_context.name, duration, size)
    return found


def _clip_with_sound(path: Path, seconds: float = 2.0, codec: str = "aac", fmt: str = "mp4",
                     size: tuple[int, int] = (160, 120)) -> Path:
    """`seconds` of the synthetic face at FPS frames/s with a mono tone (AAC, or `codec`) beside it."""
    source = SyntheticSource(size[0], size[1], FPS, int(seconds * FPS))
    with av.open(str(path), "w", format=fmt) as container:
        video = container.add_stream("mpeg4", rate=FPS)
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        audio = container.add_stream(codec, rate=RATE)
        audio.layout = "mono"
        for i in range(int(seconds * FPS)):
            frame = av.VideoFrame.from_ndarray(source.render(i), format="bgr24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            for packet in video.encode(frame):
                container.mux(packet)
        step = audio.codec_context.frame_size or 1024
        sample_format = audio.codec_context.format.name
        for i in range(int(seconds * RATE / step)):
            tone = np.sin(np.arange(i * step, (i + 1) * step) * 0.05)[None]
            samples = (tone * 0.3).astype(np.float32) if sample_format == "fltp" else (tone * 9000).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(samples, format=sample_format, layout="mono")
            frame.sample_rate, frame.pts = RATE, i * step
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in [*video.encode(None), *audio.encode(None)]:
            container.mux(packet)
    return path


def test_default_output_is_h264_and_says_so(face_weights, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", frames=8)
    result = _video(clip, tmp_path / "out.mp4", face_weights)
    assert result.exit_code == 0, result.output
    assert "(H.264)" in result.output
    codec, _, size = _streams(tmp_path / "out.mp4")["video"]
    assert codec == "h264" and size == (160, 120)
    data = (tmp_path / "out.mp4").read_bytes()
    assert data.find(b"moov") < data.find(b"mdat"), "+faststart: the index comes first"


def test_odd_size_falls_back_to_mp4v_at_the_exact_size(face_weights, tmp_path):
    clip = _clip_with_sound(tmp_path / "odd.mp4", seconds=0.6, size=(161, 121))
    result = _video(clip, tmp_path / "out.mp4", face_weights)
    assert result.exit_code == 0, result.output
    assert "(MPEG-4 Part 2: odd size 161x121)" in result.output
    assert _streams(tmp_path / "out.mp4")["video"][0::2] == ("mpeg4", (161, 121))


def test_codec_mp4v_when_asked_and_h264_refused_for_odd_sizes(face_weights, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", frames=6)
    result = _video(clip, tmp_path / "out.mp4", face_weights, "--codec", "mp4v")
    assert result.exit_code == 0, result.output
    assert "(MPEG-4 Part 2)" in result.output and _streams(tmp_path / "out.mp4")["video"][0] == "mpeg4"
    odd = _clip_with_sound(tmp_path / "odd.mp4", seconds=0.4, size=(161, 120))
    result = _video(odd, tmp_path / "odd_out.mp4", face_weights, "--codec", "h264")
    one_error_line(result, 2, "--codec h264", "161x120", "even")
    assert not (tmp_path / "odd_out.mp4").exists()


def test_without_an_h264_encoder(face_weights, tmp_path, monkeypatch):
    monkeypatch.setattr(mp4_codec, "h264_encoder", lambda: None)
    clip = write_clip(tmp_path / "clip.mp4", frames=4)
    result = _video(clip, tmp_path / "out.mp4", face_weights, "--codec", "h264")
    one_error_line(result, 2, "--codec h264", "no H.264 encoder")
    result = _video(clip, tmp_path / "out.mp4", face_weights)
    assert result.exit_code == 0 and "(MPEG-4 Part 2: no H.264 encoder here)" in result.output


def test_keep_audio_copies_the_sound_in_sync(face_weights, tmp_path):
    clip = _clip_with_sound(tmp_path / "talk.mp4")
    result = _video(clip, tmp_path / "out.mp4", face_weights, "--keep-audio")
    assert result.exit_code == 0, result.output
    streams = _streams(tmp_path / "out.mp4")
    assert streams["audio"][0] == "aac" and streams["video"][0] == "h264"
    assert abs(streams["audio"][1] - streams["video"][1]) <= 2.0 / FPS, streams
    assert streams["video"][1] == pytest.approx(2.0, abs=1.0 / FPS)


def test_keep_audio_keeps_the_time_range_of_the_frames(face_weights, tmp_path):
    clip = _clip_with_sound(tmp_path / "talk.mp4")
    result = _video(clip, tmp_path / "out.mp4", face_weights, "--keep-audio", "--start", "0.5", "--end", "1.5",
                    "--stride", "2")
    assert result.exit_code == 0, result.output
    streams = _streams(tmp_path / "out.mp4")
    assert streams["video"][1] == pytest.approx(1.0, abs=1.0 / FPS)
    assert abs(streams["audio"][1] - streams["video"][1]) <= 2.0 / FPS, streams


def test_keep_audio_reencodes_pcm_to_aac(face_weights, tmp_path):
    clip = _clip_with_sound(tmp_path / "talk.mov", codec="pcm_s16le", fmt="mov")
    result = _video(clip, tmp_path / "out.mp4", face_weights, "--keep-audio", "--max-frames", "10")
    assert result.exit_code == 0, result.output
    streams = _streams(tmp_path / "out.mp4")
    assert streams["audio"][0] == "aac"
    assert abs(streams["audio"][1] - streams["video"][1]) <= 2.0 / FPS, streams


def test_keep_audio_without_sound_warns_and_writes_the_video(face_weights, tmp_path):
    clip = write_clip(tmp_path / "silent.mp4", frames=6)
    result = _video(clip, tmp_path / "out.mp4", face_weights, "--keep-audio")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if "--keep-audio" in line]
    assert len(warnings) == 1 and "no audio stream" in warnings[0]
    assert set(_streams(tmp_path / "out.mp4")) == {"video"}


def test_keep_audio_with_out_dir(face_weights, tmp_path):
    (tmp_path / "in").mkdir()
    clip = _clip_with_sound(tmp_path / "in" / "talk.mp4")
    result = runner.invoke(app, ["video", str(clip), "--out-dir", str(tmp_path / "out"), "--keep-audio",
                                 "--weights", str(face_weights), "--device", "cpu", "--max-frames", "5"])
    assert result.exit_code == 0, result.output
    assert _streams(tmp_path / "out" / "talk.mp4")["audio"][0] == "aac"


def test_tracker_step_refuses_a_numpy_image(face_weights):
    box, landmarks = open_models(face_weights, "onnx", "cpu")
    with pytest.raises(InputError, match="FaceTracker"):
        Tracker(box, landmarks).step(np.zeros((120, 160, 3), np.uint8))


@pytest.mark.parametrize(("codec", "size"), [("h264", (160, 120)), ("mp4v", (160, 120)), ("mp4v", (161, 121))])
def test_written_colours_stay_near_the_source(tmp_path, codec, size):
    # the encoder gets yuv420p converted by OpenCV for even sizes (bgr24 through PyAV for odd ones): the
    # decoded pictures keep the drawn colours, with no shift of a whole colour channel
    from tracker.sinks import VideoSink

    width, height = size
    frames = []
    for k in range(6):
        image = np.zeros((height, width, 3), np.uint8)
        image[:, : width // 2] = (40 + 20 * k, 120, 200)  # flat colour blocks: what compression keeps best
        image[:, width // 2:] = (210, 90, 30 + 10 * k)
        frames.append(image)
    out = tmp_path / "colours.mp4"
    sink = VideoSink(out, 30.0, width, height, codec=codec)
    for k, image in enumerate(frames):
        sink.write(image, k * 33.3)
    sink.close()
    with av.open(str(out)) as container:
        decoded = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert len(decoded) == len(frames) and decoded[0].shape == (height, width, 3)
    inner = (slice(8, height - 8), np.r_[8:width // 2 - 8, width // 2 + 8:width - 8])
    errors = np.array([(d[inner[0]][:, inner[1]].astype(int) - f[inner[0]][:, inner[1]].astype(int)).mean(axis=(0, 1))
                       for d, f in zip(decoded, frames)])
    assert np.abs(errors).max() < 2.5, errors  # FFmpeg's own bgr24 conversion was 3.5 levels off here
