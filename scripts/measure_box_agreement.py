#!/usr/bin/env python3
"""How well the landmarks of a box-model frame fit the box they came from, on validation photos.

For every validation face (the landmark run's own identity split; photos with one labelled face only, as the
single-face box model expects) this runs the runtime's box path on the whole photo (`Tracker` in image
mode, the agreement check and turn search off) and records `Landmarks.box_agreement` (centre shift in
face-square sides, box crop side / face crop side) and the NME of the answer (the set's own convention is
ignored: only right or wrong matters here). It prints percentiles of both for right answers (NME < 10 %)
and wrong ones (NME > 25 %): the limits `tracker.pipeline.MAX_BOX_SHIFT` and `MAX_BOX_SIDE_RATIO` come
from the right answers' tail. It also prints what the box model hands over: its crop against the face crop of
the true points (shift and side ratio), to set against the training crops' jitter.

usage: scripts/measure_box_agreement.py --weights DIR --landmark-model NAME --data D1 --data D2 ... [--json F]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.imageio import read_image_bgr  # noqa: E402
from core.manifest import landmark_model_name, read_manifest  # noqa: E402
from core.metrics import nme_per_face  # noqa: E402
from facetrack.evaluate import model_split  # noqa: E402
from tracker import pipeline  # noqa: E402
from tracker.locate import DEFAULT_PASSES  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, default=Path("weights"))
    ap.add_argument("--landmark-model", default=None)
    ap.add_argument("--data", action="append", required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--limit", type=int, default=800, help="at most this many faces (spread over the split)")
    ap.add_argument("--passes", type=int, default=DEFAULT_PASSES,
                    help="landmark passes per box (default: the runtime's)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    name = landmark_model_name(read_manifest(args.weights), args.landmark_model)
    samples = model_split(args.weights, name, tuple(args.data), args.split)
    per_photo = Counter(s.image_path for s in samples)
    samples = [s for s in samples if per_photo[s.image_path] == 1]
    if len(samples) > args.limit:
        samples = [samples[i] for i in np.linspace(0, len(samples) - 1, args.limit).astype(int)]
    pipeline.MAX_BOX_SHIFT, pipeline.MAX_BOX_SIDE_RATIO = np.inf, np.inf  # measure, never reject
    tracker = pipeline.build_tracker(args.weights, landmark_model=args.landmark_model, mode="image",
                                     log=lambda *_: None)
    tracker.locator.passes = args.passes
    rows = []
    for k, sample in enumerate(samples):
        image = read_image_bgr(sample.image_path)
        if image is None:
            continue
        timings = dict.fromkeys(pipeline.STAGES, 0.0)
        detections = tracker._detect(image, timings)  # best first; single-face photos: the first is the face
        if not detections:
            continue
        found = tracker.locator.from_crop(image, tracker._seed_crop(detections[0]), timings)
        shift, ratio = found.box_agreement(tracker.landmark_backend.meta.crop_scale)
        # what the box model hands over: its crop against the face crop of the true points
        true_shift, true_ratio = replace(found, points_px=sample.points_px).box_agreement(
            tracker.landmark_backend.meta.crop_scale)
        nme = float(nme_per_face(found.points_px.reshape(1, -1), sample.points_px.reshape(1, -1))[0])
        rows.append({"group": sample.group, "shift": shift, "ratio": ratio, "nme": nme, "quality": found.quality,
                     "true_shift": true_shift, "true_ratio": true_ratio})
        if (k + 1) % 100 == 0:
            print(f"{k + 1}/{len(samples)} faces", file=sys.stderr)
    right = [r for r in rows if r["nme"] < 10]
    wrong = [r for r in rows if r["nme"] > 25]
    qs = [50, 90, 95, 99, 99.5, 100]
    nmes = np.array([r["nme"] for r in rows])
    report = {"faces": len(rows), "right": len(right), "wrong": len(wrong), "passes": args.passes,
              "nme_mean": round(float(nmes.mean()), 3), "nme_median": round(float(np.median(nmes)), 3)}
    for name, part in (("right", right), ("wrong", wrong)):
        if not part:
            continue
        shift = np.array([r["shift"] for r in part])
        ratio = np.array([r["ratio"] for r in part])
        off = np.maximum(ratio, 1 / ratio)  # how far from 1, either way
        report[name + "_shift_percentiles"] = dict(zip(map(str, qs), np.round(np.percentile(shift, qs), 3).tolist()))
        report[name + "_ratio_off_percentiles"] = dict(zip(map(str, qs), np.round(np.percentile(off, qs), 3).tolist()))
        report[name + "_ratio_range"] = [round(float(ratio.min()), 3), round(float(ratio.max()), 3)]
    handed = np.array([[r["true_shift"], r["true_ratio"]] for r in rows])
    report["handed_over_shift_percentiles"] = dict(zip(map(str, qs), np.round(np.percentile(handed[:, 0], qs),
                                                                               3).tolist()))
    report["handed_over_ratio_percentiles"] = dict(zip(["5", "25", "50", "75", "95"], np.round(
        np.percentile(handed[:, 1], [5, 25, 50, 75, 95]), 3).tolist()))
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"report": report, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
