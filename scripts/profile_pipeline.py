#!/usr/bin/env python3
"""Where does a frame's time go? cProfile and per-stage timers over the real `facetrack video` path.

Two jobs:
  make-weights DIR [--size default|tiny]   random-weight models of the real architectures (or tiny ones),
                                           steered so the tracker keeps a face; a weights folder with a
                                           manifest, for measuring before trained weights exist.
  profile [SOURCE] [--weights DIR] [--frames N] [--threaded] [--no-output] [--detect-every N] [--top K]
                                           run the video pipeline once under cProfile; print per-stage
                                           ms/frame and the top functions by own time and by total time.

usage: scripts/profile_pipeline.py make-weights /tmp/ft-weights
       scripts/profile_pipeline.py profile demo/demo.mp4 --weights /tmp/ft-weights --frames 180
"""

from __future__ import annotations

import argparse
import cProfile
import io
import math
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# ---------------------------------------------------------------- random weights
def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _fixed_point_points(crop_scale: float, iod: float = 0.32):
    """Crop-normalised points whose implied crop is the same crop: tracking stays put on them."""
    import numpy as np

    from core.geometry import FACE_CENTER_SHIFT, FACE_SIDE_PER_EYE_MOUTH

    d = 1.0 / (FACE_SIDE_PER_EYE_MOUTH * crop_scale)
    eye_y = 0.5 - (0.5 + FACE_CENTER_SHIFT) * d
    return np.array([[0.5 - iod / 2, eye_y], [0.5 + iod / 2, eye_y], [0.5, eye_y + 0.55 * d], [0.5, eye_y + d]],
                    dtype=np.float32)


def make_weights(folder: Path, size: str = "default", landmark_model: str = "resnet", seed: int = 0) -> Path:
    """A weights folder of random models (real architectures for 'default'), ONNX + checkpoints + manifest."""
    import torch

    from core.manifest import write_manifest
    from core.meta import LANDMARK_CROP_SCALE
    from core.models import build_model, make_checkpoint, make_config, model_meta, points_layer, save_checkpoint
    from export.onnx_graph import export_onnx

    torch.manual_seed(seed)
    if size == "tiny":
        box_cfg = make_config("box", input_size=64, widths=(8, 16), hidden=32)
        lm_cfg = make_config(landmark_model, input_size=48, widths=(8, 16), head_channels=8, hidden=32)
    else:
        box_cfg, lm_cfg = make_config("box"), make_config(landmark_model)
    box = build_model("box", box_cfg).eval()
    landmarks = build_model(landmark_model, lm_cfg).eval()
    with torch.no_grad():
        last = box.head[-1]
        last.weight.mul_(0.01)
        last.weight[4].zero_()
        last.bias.copy_(torch.tensor([_logit(0.3), _logit(0.3), _logit(0.7), _logit(0.7), 8.0]))
        last = points_layer(landmarks)
        last.weight.mul_(0.002)
        last.bias.copy_(torch.from_numpy(_fixed_point_points(LANDMARK_CROP_SCALE).reshape(-1)))
    folder.mkdir(parents=True, exist_ok=True)
    export_onnx(box, model_meta("box", box.config), folder / "box.onnx")
    export_onnx(landmarks, model_meta(landmark_model, landmarks.config), folder / "landmarks.onnx")
    save_checkpoint(folder / "box.pt", make_checkpoint("box", box))
    save_checkpoint(folder / f"landmarks-{landmark_model}.pt", make_checkpoint(landmark_model, landmarks))
    write_manifest(folder, {"default_landmarks": landmark_model,
                            "onnx": {"box": "box.onnx", landmark_model: "landmarks.onnx"},
                            "checkpoints": {"box": "box.pt", landmark_model: f"landmarks-{landmark_model}.pt"},
                            "note": f"random {size} weights made by scripts/profile_pipeline.py: for timing only"})
    return folder


# ---------------------------------------------------------------- profiling
def profile(args: argparse.Namespace) -> None:
    from tracker.bench import TimedSink, TimedSource, open_bench_source
    from tracker.pipeline import build_tracker
    from tracker.runtime import run
    from tracker.sinks import VideoSink

    tracker = build_tracker(args.weights, backend=args.backend, device="cpu", detect_every=args.detect_every)
    source = TimedSource(open_bench_source(args.source, args.frames))
    print(f"source: {source.describe()}; models {tracker.box_backend.name} / {tracker.landmark_backend.name}")
    with tempfile.TemporaryDirectory() as tmp:
        video = None
        if not args.no_output:
            video = TimedSink(VideoSink(Path(tmp) / "out.mp4", source.fps, source.width, source.height))
        profiler = cProfile.Profile() if not args.no_cprofile else None
        t0 = time.perf_counter()
        if profiler:
            profiler.enable()
        stats = run(source, tracker, video=video, threaded=args.threaded, max_frames=args.frames,
                    handle_signals=False)
        if profiler:
            profiler.disable()
        wall = time.perf_counter() - t0
    n = max(1, stats.processed)
    print(f"{stats.processed} frames in {wall:.2f} s = {stats.processed / wall:.1f} fps "
          f"({'threaded' if args.threaded else 'sequential'}; cProfile {'on' if profiler else 'off'})")
    parts = {"read": source.total_ms / n}
    parts.update({k: v / n for k, v in stats.stage_ms.items() if k != "total"})
    if video is not None:
        parts["encode"] = video.total_ms / n
    print("ms/frame: " + ", ".join(f"{k} {v:.2f}" for k, v in parts.items()))
    if profiler:
        for key in ("tottime", "cumulative"):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(key).print_stats(args.top)
            text = out.getvalue()
            print(f"\n--- top {args.top} by {key} ---")
            print(text[text.find("   ncalls"):].rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="job", required=True)
    mk = sub.add_parser("make-weights", help="write a random-weight weights folder")
    mk.add_argument("folder", type=Path)
    mk.add_argument("--size", choices=("default", "tiny"), default="default")
    mk.add_argument("--landmark-model", default="resnet")
    pr = sub.add_parser("profile", help="profile the video pipeline")
    pr.add_argument("source", nargs="?", default=str(ROOT / "demo" / "demo.mp4"))
    pr.add_argument("--weights", type=Path, default=ROOT / "weights")
    pr.add_argument("--backend", default="onnx", choices=("onnx", "torch"))
    pr.add_argument("--frames", type=int, default=180)
    pr.add_argument("--detect-every", type=int, default=10)
    pr.add_argument("--threaded", action="store_true", help="threaded runtime (default: sequential, clearer profile)")
    pr.add_argument("--no-output", action="store_true", help="no mp4 writing (and so no drawing)")
    pr.add_argument("--no-cprofile", action="store_true", help="stage timers only (no profiler overhead)")
    pr.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    if args.job == "make-weights":
        print(make_weights(args.folder, args.size, args.landmark_model))
    else:
        profile(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
