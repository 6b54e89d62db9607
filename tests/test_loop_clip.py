"""scripts/loop_clip.py: the long benchmark clip made from a short one (forwards, then backwards)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av

from tests.helpers import write_clip

ROOT = Path(__file__).resolve().parents[1]


def test_loop_clip_plays_forwards_then_backwards(tmp_path):
    clip = write_clip(tmp_path / "short.mp4", frames=5, width=160, height=120, fps=25.0)
    out = tmp_path / "long.mp4"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "loop_clip.py"), str(clip), "--frames", "13",
                           "--out", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    with av.open(str(clip)) as source:
        originals = [f.to_ndarray(format="gray") for f in source.decode(video=0)]
    with av.open(str(out)) as looped:
        stream = looped.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height, float(stream.average_rate)) == (160, 120, 25.0)
        frames = [f.to_ndarray(format="gray") for f in looped.decode(stream)]
    assert len(frames) == 13
    expected = [0, 1, 2, 3, 4, 3, 2, 1, 0, 1, 2, 3, 4]  # ping-pong: no jump where it turns
    for frame, index in zip(frames, expected):
        nearest = min(range(len(originals)), key=lambda k: abs(frame.astype(int) - originals[k].astype(int)).mean())
        assert nearest == index


def test_loop_clip_takes_odd_sizes_and_says_what_is_wrong_in_one_line(tmp_path):
    # review: odd sizes failed an assertion, a missing file or folder gave a traceback, --frames 0 "wrote" nothing
    script = [sys.executable, str(ROOT / "scripts" / "loop_clip.py")]
    import numpy as np

    from tracker.sinks import VideoSink

    odd = tmp_path / "odd.mp4"
    sink = VideoSink(odd, 25.0, 161, 121, codec="mp4v")  # the exact odd size (OpenCV's writer rounds it)
    for k in range(3):
        sink.write(np.full((121, 161, 3), 40 * k, np.uint8), k * 40.0)
    sink.close()
    done = subprocess.run([*script, str(odd), "--frames", "5", "--out", str(tmp_path / "o.mp4")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with av.open(str(tmp_path / "o.mp4")) as looped:
        frames = [f.to_ndarray(format="bgr24") for f in looped.decode(video=0)]
    assert len(frames) == 5 and frames[0].shape == (121, 161, 3)
    for args in ([str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "x.mp4")],
                 [str(odd), "--frames", "0", "--out", str(tmp_path / "x.mp4")],
                 [str(odd), "--out", str(tmp_path / "no" / "x.mp4")]):
        done = subprocess.run([*script, *args], capture_output=True, text=True)
        assert done.returncode == 2 and "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1, done
    assert not (tmp_path / "x.mp4").exists()


def test_loop_clip_size_covers_and_crops_the_centre(tmp_path):
    clip = write_clip(tmp_path / "short.mp4", frames=2, width=160, height=120)
    out = tmp_path / "wide.mp4"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "loop_clip.py"), str(clip), "--frames", "3",
                           "--size", "320x180", "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with av.open(str(out)) as looped:
        frames = [f.to_ndarray(format="bgr24") for f in looped.decode(video=0)]
    assert len(frames) == 3 and frames[0].shape == (180, 320, 3)
    bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "loop_clip.py"), str(clip), "--size", "wide",
                          "--out", str(out)], capture_output=True, text=True)
    assert bad.returncode == 2 and "--size wide" in bad.stderr and "Traceback" not in bad.stderr
