#!/usr/bin/env python3
"""Soak test: a long synthetic run through the threaded runtime, printing resident memory as it goes.

    .venv/bin/python scripts/soak.py                      # 20,000 frames, 160x120, file-like source
    .venv/bin/python scripts/soak.py --frames 3000 --live # a paced live source (frames may drop)

It checks, and exits 1 when one fails:
  * resident memory (RSS) after warm-up grows by less than --max-growth-mb;
  * the frame count is exact: every frame processed, one JSON row and one video frame per frame
    (file-like source; a live source: JSON rows == processed frames, recording on the source clock);
  * the hand-over queues never held more than their bound.

Uses the weights in --weights, else the shipped weights/ when they hold a manifest, else tiny random
models written to a temporary folder by a separate process (so torch never loads in this one).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rss_mb() -> float:
    """This process's resident set size in MiB (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (2**20 if sys.platform == "darwin" else 2**10)


def tiny_weights(folder: Path) -> Path:
    """Random tiny models (the test suite's), exported in a child process."""
    code = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
            "from tests.helpers import write_weights; write_weights(Path(sys.argv[2]))")
    subprocess.run([sys.executable, "-c", code, str(ROOT), str(folder)], check=True)
    return folder


def count_video_frames(path: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def soak(frames: int, width: int, height: int, weights: Path, out_dir: Path, every: int, live: bool,
         threaded: bool, warmup: int, log=print) -> dict:
    """Run once; returns the measurements (also logged as it goes)."""
    from tracker.pipeline import build_tracker
    from tracker.runtime import FILE_QUEUE_SIZE, LIVE_RENDER_QUEUE_SIZE, run
    from tracker.sinks import JsonlSink, VideoSink
    from tracker.sources.synthetic import SyntheticSource

    source = SyntheticSource(width, height, fps=30.0 if not live else 120.0, frames=frames, live=live)
    tracker = build_tracker(weights, device="cpu", mode="live" if live else "video", smooth=live)
    video_path, rows_path = out_dir / "soak.mp4", out_dir / "soak.jsonl"
    samples: list[tuple[int, float]] = [(0, rss_mb())]
    t0 = time.perf_counter()
    log(f"soak: {frames} frames {width}x{height} ({'live' if live else 'file-like'}, "
        f"{'threaded' if threaded else 'sequential'}), weights {weights}")
    log(f"{'frame':>8} {'rss_mb':>8} {'fps':>7}")
    log(f"{0:>8} {samples[0][1]:>8.1f} {'-':>7}")

    def sample(result, stats) -> None:
        if stats.processed % every == 0:
            rss = rss_mb()
            samples.append((stats.processed, rss))
            log(f"{stats.processed:>8} {rss:>8.1f} {stats.processed / (time.perf_counter() - t0):>7.0f}")

    stats = run(source, tracker, video=VideoSink(video_path, source.fps, width, height),
                jsonl=JsonlSink(rows_path), threaded=threaded, on_result=sample)
    rows = sum(1 for _ in open(rows_path, encoding="utf-8"))
    video_frames = count_video_frames(video_path)
    after = [rss for n, rss in samples if n >= warmup]
    base = after[0] if after else samples[-1][1]
    growth = max(after) - base if after else 0.0
    bounds = {"frames": 1 if live else FILE_QUEUE_SIZE,
              "results": LIVE_RENDER_QUEUE_SIZE if live else FILE_QUEUE_SIZE}
    return {"frames": frames, "captured": stats.captured, "processed": stats.processed, "dropped": stats.dropped,
            "rows": rows, "video_frames": video_frames, "video_repeated": stats.video_repeated,
            "rss_start_mb": round(samples[0][1], 1), "rss_after_warmup_mb": round(base, 1),
            "rss_end_mb": round(samples[-1][1], 1), "rss_growth_after_warmup_mb": round(growth, 2),
            "queue_peak": stats.queue_peak, "queue_bound": bounds, "fps": round(stats.fps, 1),
            "wall_s": round(stats.wall_s, 1)}


def check(result: dict, live: bool, max_growth_mb: float) -> list[str]:
    """What failed (empty when all is well)."""
    problems = []
    if result["rss_growth_after_warmup_mb"] > max_growth_mb:
        problems.append(f"RSS grew {result['rss_growth_after_warmup_mb']} MiB after warm-up (bound {max_growth_mb})")
    if live:
        if result["rows"] != result["processed"] or result["processed"] + result["dropped"] != result["captured"]:
            problems.append("live frame accounting is off")
    elif not (result["processed"] == result["rows"] == result["video_frames"] == result["frames"]):
        problems.append(f"frame count not exact: {result['frames']} in, {result['processed']} processed, "
                        f"{result['rows']} rows, {result['video_frames']} video frames")
    for name, peak in result["queue_peak"].items():
        if peak > result["queue_bound"][name]:
            problems.append(f"queue {name} held {peak} items (bound {result['queue_bound'][name]})")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--height", type=int, default=120)
    parser.add_argument("--every", type=int, default=1000, help="print an RSS sample every N frames")
    parser.add_argument("--warmup", type=int, default=None, help="frames of warm-up (default: 10%%, at least 500)")
    parser.add_argument("--max-growth-mb", type=float, default=20.0)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--live", action="store_true", help="a paced live source (120 fps) instead of a file")
    parser.add_argument("--sequential", action="store_true")
    parser.add_argument("--keep", type=Path, default=None, help="write soak.mp4/soak.jsonl here and keep them")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="facetrack-soak-") as tmp:
        weights = args.weights
        if weights is None:
            shipped = ROOT / "weights"
            weights = shipped if (shipped / "manifest.json").is_file() else tiny_weights(Path(tmp) / "weights")
        out_dir = args.keep or Path(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        warmup = args.warmup if args.warmup is not None else max(500, args.frames // 10)
        result = soak(args.frames, args.width, args.height, weights, out_dir, args.every, args.live,
                      not args.sequential, warmup)
    problems = check(result, args.live, args.max_growth_mb)
    print(json.dumps(result))
    for line in problems:
        print(f"soak: FAIL: {line}")
    print("soak: ok" if not problems else "soak: failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
