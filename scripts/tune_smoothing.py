#!/usr/bin/env python3
"""Tune the One-Euro smoothing on clips with per-frame truth: NME and jitter for a grid of parameters.

Runs the tracker once per clip without smoothing (video mode, every frame, on the CPU), saves its raw
rows under --cache (reused when there), then replays the filter offline for each (min_cutoff, beta,
d_cutoff) (`tracker.smoothing_eval`: the same filter, per face id, on the frames' times). Prints a
markdown table: per clip NME % and jitter % (of the true inter-ocular distance; definitions in
`tracker/smoothing_eval.py`), unsmoothed first, then the old and current defaults, then the grid's
Pareto front (--front; else a few reference settings); last, the setting the rule in `choose` picks
(the defaults in tracker/smoothing.py). The clips: demo/demo.mp4 and, when ../shared/field-cases is
there, file-as-camera/cam160x120.mp4 and vfr/vfr.mp4 (faces that move all the time: they show the lag), and
`still`: the demo's first frame 90 times with sensor noise (a face held still before a webcam: it shows
the calm), its truth the demo's first truth row.

usage: scripts/tune_smoothing.py [--weights DIR] [--cache runs/tune-smoothing] [--front]
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from core.meta import POINT_NAMES
from tracker import smoothing
from tracker.smoothing_eval import RawFace, score, smooth_offline

ROOT = Path(__file__).resolve().parents[1]
FIELD = ROOT.parent / "shared" / "field-cases"
MIN_CUTOFFS = (0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0)
BETAS = (0.0, 3.0, 10.0, 20.0, 30.0, 50.0, 100.0)
D_CUTOFFS = (1.0, 2.0, 4.0, 8.0, 16.0)
OLD_DEFAULTS = (1.0, 1.5, 1.0)  # the defaults before issue 14
STILL_FRAMES, STILL_NOISE = 90, 4.0  # the generated still clip: frames, sensor noise (std, grey levels)
REFERENCE = [(8.0, 100.0, 8.0), (3.0, 50.0, 8.0), (2.0, 30.0, 4.0), (0.5, 20.0, 4.0)]  # the short table's rows
NME_BUDGET = 0.15  # points of NME % that smoothing may add on a clip


def _points(named: dict) -> list:
    return [named[name] for name in POINT_NAMES]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def clips() -> dict[str, tuple[Path, np.ndarray]]:
    """name -> (video, truth (N,4,2) px, one per decoded frame) for the clips found."""
    found = {"demo": (ROOT / "demo" / "demo.mp4", [_points(r["points"]) for r in _jsonl(ROOT / "demo" /
                                                                                          "demo.truth.jsonl")])}
    cam = FIELD / "file-as-camera"
    if (cam / "truth_cam160x120.jsonl").is_file():
        found["cam160x120"] = (cam / "cam160x120.mp4", [_points(r["points"]) for r in
                                                        _jsonl(cam / "truth_cam160x120.jsonl")])
    vfr = FIELD / "vfr" / "truth.json"
    if vfr.is_file():
        item = json.loads(vfr.read_text())["items"][0]
        found["vfr"] = (vfr.parent / item["file"], [_points(f["faces"][0]["points"]) for f in item["frames"]])
    found["still"] = (ROOT / "demo" / "demo.mp4", [found["demo"][1][0]] * STILL_FRAMES)
    return {name: (video, np.asarray(truth, dtype=np.float64)) for name, (video, truth) in found.items()}


def still_frames(video: Path, count: int = STILL_FRAMES, noise: float = STILL_NOISE, seed: int = 0):
    """(t_ms, BGR frame) of a still face as a webcam sees it: the video's first frame `count` times at 30 fps,
    each with its own Gaussian sensor noise (std `noise` grey levels)."""
    import cv2

    capture = cv2.VideoCapture(str(video))
    ok, first = capture.read()
    capture.release()
    if not ok:
        raise SystemExit(f"cannot read {video}")
    rng = np.random.default_rng(seed)
    for i in range(count):
        noisy = first.astype(np.float32) + rng.normal(0.0, noise, first.shape)
        yield i * 1000.0 / 30.0, np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def raw_rows(video: Path, cache: Path, weights: str | None, still: bool = False) -> list[RawFace]:
    """The clip's unsmoothed first face per frame, from `cache` when there, else tracked and saved
    (`still`: the `still_frames` of the video, through `FaceTracker.step`)."""
    if not cache.is_file():
        from tracker import FaceTracker

        tracker = FaceTracker(weights, device="cpu", smooth=False)
        results = ((tracker.step(frame, t_ms) for t_ms, frame in still_frames(video)) if still
                   else tracker.track(str(video), smooth=False))
        rows = []
        for result in results:
            face = result.faces[0] if result.faces else None
            rows.append({"t_ms": result.t_ms, "id": None if face is None else face.id,
                         "points": None if face is None else np.asarray(face.points_px).tolist()})
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return [RawFace(r["t_ms"] / 1000.0, r["id"], None if r["points"] is None else np.asarray(r["points"]))
            for r in _jsonl(cache)]


def _scores(raws: dict, params: tuple | None) -> list[dict]:
    return [score(raw if params is None else smooth_offline(raw, *params), truth) for raw, truth in raws.values()]


def _row(label: str, scores: list[dict]) -> str:
    cells = [f"{s[key]:.2f}" for s in scores for key in ("nme", "jitter")]
    cells += [f"{np.mean([s['nme'] for s in scores]):.2f}", f"{np.mean([s['jitter'] for s in scores]):.2f}"]
    return f"| {label} | " + " | ".join(cells) + " |"


def choose(raws: dict, grid: list[tuple]) -> tuple | None:
    """The grid setting with the least mean jitter among those that, on every clip, raise NME by at most
    NME_BUDGET points and lower the jitter (None when none does)."""
    plain = _scores(raws, None)
    best, best_jitter = None, np.inf
    for params in grid:
        scores = _scores(raws, params)
        ok = all(s["nme"] <= p["nme"] + NME_BUDGET and s["jitter"] < p["jitter"] for s, p in zip(scores, plain))
        jitter = float(np.mean([s["jitter"] for s in scores]))
        if ok and jitter < best_jitter:
            best, best_jitter = params, jitter
    return best


def table(raws: dict[str, tuple[list[RawFace], np.ndarray]], grid: list[tuple]) -> str:
    """Markdown table: unsmoothed, the old and current defaults, then the grid's Pareto front (no other
    setting has both a lower mean NME and a lower mean jitter) up to NME_BUDGET above the unsmoothed NME;
    with `grid` = REFERENCE, those settings only."""
    head = "| setting (min_cutoff Hz, beta, d_cutoff Hz) | " + " | ".join(
        f"{n} NME | {n} jitter" for n in raws) + " | mean NME | mean jitter |"
    plain = _scores(raws, None)
    lines = [head, "|" + "---|" * (3 + 2 * len(raws)), _row("unsmoothed", plain),
             _row(f"old defaults {OLD_DEFAULTS}", _scores(raws, OLD_DEFAULTS))]
    defaults = (smoothing.MIN_CUTOFF_HZ, smoothing.BETA, smoothing.D_CUTOFF_HZ)
    lines.append(_row(f"**defaults {defaults}**", _scores(raws, defaults)))
    limit = float(np.mean([s["nme"] for s in plain])) + NME_BUDGET
    scored = sorted((float(np.mean([s["nme"] for s in sc])), float(np.mean([s["jitter"] for s in sc])), p, sc)
                    for p in grid for sc in [_scores(raws, p)])
    lowest = np.inf
    for nme, jitter, params, scores in scored:
        if grid is REFERENCE or (nme <= limit and jitter < lowest):
            lowest = jitter
            lines.append(_row(str(params), scores))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="weights folder (default: the shipped weights/)")
    parser.add_argument("--cache", type=Path, default=ROOT / "runs" / "tune-smoothing",
                        help="folder of the raw rows (one NAME.raw.jsonl per clip; delete to re-track)")
    parser.add_argument("--front", action="store_true", help="list the whole Pareto front of the grid, not "
                        "just the reference settings")
    args = parser.parse_args()
    raws = {name: (raw_rows(video, args.cache / f"{name}.raw.jsonl", args.weights, still=name == "still"), truth)
            for name, (video, truth) in clips().items()}
    grid = [tuple(float(v) for v in p) for p in itertools.product(MIN_CUTOFFS, BETAS, D_CUTOFFS)]
    print(table(raws, grid if args.front else REFERENCE))
    print(f"\nchosen (least mean jitter; on every clip NME at most {NME_BUDGET} above unsmoothed, jitter lower): "
          f"{choose(raws, grid)}")


if __name__ == "__main__":
    main()
