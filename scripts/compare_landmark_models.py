#!/usr/bin/env python3
"""Compare landmark models on faces none of them trained on, through the runtime's own path.

Each model's `--split test` depends on its training run (the sets pooled, look-alike merging), so two
models' test splits differ, and faces one held out the other may have trained on (or tuned on: val).
This script rebuilds every model's own train and val faces from its checkpoint's `train_config` (its
data sets, seed, look-alike merging), takes the faces of the `--data` pool that NO model saw, runs each
model the way
`facetrack eval` does (`facetrack.evaluate`: runtime crops, first pass plus the de-rolled second pass,
each set scored in its own point convention through the model's learned offsets when it has them) and
prints NME per source group and per model, plus the same on each model's own whole test split.

usage: scripts/compare_landmark_models.py --weights DIR --model resnet --model resnet-all \\
           --data ../shared/data/ytf-keypoints --data ... [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.manifest import model_file  # noqa: E402
from core.metrics import landmark_metrics  # noqa: E402
from facetrack.evaluate import (  # noqa: E402
    convention_offsets,
    in_own_conventions,
    locate_faces,
    model_split,
    select_faces,
    training_settings,
)
from tracker.backends import create_backend  # noqa: E402
from tracker.locate import Locator  # noqa: E402


def _key(sample) -> tuple:
    return os.path.realpath(sample.image_path), sample.points_px.tobytes()


def test_faces(weights: Path, model: str, data: tuple[str, ...]) -> list:
    """The model's `--split test` on the `--data` pool (what `facetrack eval` scores it on)."""
    return model_split(weights, model, data, "test")


def seen_faces(weights: Path, model: str) -> set:
    """Keys of the faces the model trained or was selected on: train and val of its own training data."""
    own = tuple(training_settings(weights, model).get("data", ()))
    if not own:
        raise SystemExit(f"{model}: its checkpoint does not say what it was trained on")
    return {_key(s) for split in ("train", "val") for s in model_split(weights, model, own, split)}


def scores(weights: Path, model: str, samples: list) -> dict:
    backend = create_backend("onnx", model_file(weights, model, "onnx"), "cpu", expect_kind="landmarks")
    run = in_own_conventions(locate_faces(Locator(backend), samples), convention_offsets(weights, model))
    groups = np.array([s.group for s in run.samples])
    out = {"all": landmark_metrics(run.points_px, run.truth_px)}
    for g in sorted(set(groups)):
        out[g] = landmark_metrics(run.points_px[groups == g], run.truth_px[groups == g])
    return out


def _cell(row: dict | None) -> str:
    return f"{row['nme_mean']:.2f} ({row['faces']})" if row else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--data", action="append", required=True)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    data = tuple(args.data)
    splits = {m: test_faces(args.weights, m, data) for m in args.model}
    seen = set().union(*(seen_faces(args.weights, m) for m in args.model))
    shared = [s for s in select_faces(data, None, "all", 0, False) if _key(s) not in seen]
    report = {"shared_test_faces": len(shared), "models": {}}
    for m in args.model:
        report["models"][m] = {"shared": scores(args.weights, m, shared),
                               "own_test": scores(args.weights, m, splits[m]), "own_test_faces": len(splits[m])}
    groups = sorted({g for m in args.model for g in report["models"][m]["shared"]})
    print(f"faces no model trained or was selected on: {len(shared)}; NME mean % (faces)")
    print(f"{'group':<12}" + "".join(f"{m + ' shared':>24}{m + ' own test':>24}" for m in args.model))
    for g in groups:
        cells = [_cell(report["models"][m][part].get(g)) for m in args.model for part in ("shared", "own_test")]
        print(f"{g:<12}" + "".join(f"{c:>24}" for c in cells))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
