#!/usr/bin/env python3
"""Is a data set's labelling off by a constant number of image pixels (a 1-based or pixel-corner
coordinate convention) against the others?

A landmark model works in crop units, so it cannot learn a constant image-pixel shift of one set's labels:
that shift stays in its signed errors as a part independent of face size. Per source group of the
training run's validation faces (runtime path on the ground-truth boxes), this fits each point's signed
error (prediction - label, image px) as a + b x inter-ocular distance (a: constant px, b: a point
definition, which scales with the face), and prints NME per group with all predictions shifted by
(d, d) px: a group whose NME falls under a shift is labelled that far off the run's mixture.
Predictions stay in the model's own convention (no learned offsets), so MTFL and Caltech NMEs include
their point definitions.

usage: scripts/measure_pixel_offsets.py --weights DIR --landmark-model NAME [--backend torch] --data D ...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.manifest import landmark_model_name, model_file, read_manifest  # noqa: E402
from core.meta import POINT_NAMES  # noqa: E402
from core.metrics import nme_per_face  # noqa: E402
from facetrack.evaluate import locate_faces, model_split  # noqa: E402
from tracker.backends import create_backend  # noqa: E402
from tracker.locate import Locator  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, default=Path("weights"))
    ap.add_argument("--landmark-model", default=None)
    ap.add_argument("--backend", default="onnx", choices=("onnx", "torch"))
    ap.add_argument("--data", action="append", required=True)
    ap.add_argument("--split", default="val")
    args = ap.parse_args()
    fmt = "onnx" if args.backend == "onnx" else "checkpoints"
    name = landmark_model_name(read_manifest(args.weights), args.landmark_model, fmt)
    samples = model_split(args.weights, name, tuple(args.data), args.split)
    backend = create_backend(args.backend, model_file(args.weights, name, fmt), "cpu", expect_kind="landmarks")
    run = locate_faces(Locator(backend), samples)
    groups = np.array([s.group for s in run.samples])
    iod = np.array([s.iod for s in run.samples])
    err = run.points_px - run.truth_px
    for g in sorted(set(groups)):
        m = groups == g
        print(f"{g:10s} faces {m.sum():4d}, inter-ocular median {np.median(iod[m]):.1f} px")
        for axis, axis_name in ((0, "x"), (1, "y")):
            fits = []
            for k, point in enumerate(POINT_NAMES):
                design = np.stack([np.ones(m.sum()), iod[m]], axis=1)
                (a, b), *_ = np.linalg.lstsq(design, err[m, k, axis], rcond=None)
                fits.append(f"{point} {a:+.2f} px {b:+.3f} iod")
            print(f"   {axis_name}: " + " | ".join(fits))
    print("NME % per group with every prediction shifted by (d, d) image px:")
    for d in (0.0, 0.5, 1.0, 1.5):
        nme = nme_per_face(run.points_px + d, run.truth_px)
        print(f"  d={d:+.1f} " + " ".join(f"{g} {nme[groups == g].mean():.2f}" for g in sorted(set(groups))))


if __name__ == "__main__":
    main()
