#!/usr/bin/env python3
"""Measure where the data sets' "eye", "nose" and "mouth centre" lie relative to the 68-point ones.

Two measurements, offsets in the face's frame in units of inter-ocular distance (training/conventions.py):
1. On the 68-point sets, both definitions on the same faces: eye outline mean vs the midpoint of the eye
   corners, mean of the 20 mouth points vs the mean of the two mouth corners (MTFL's mouth).
2. Across sets, through a landmark model trained on 68-point faces only (the shipped one): the offset of
   each set's labels from the model's 68-convention points on the same faces, minus the model's own
   offset on held-out 68-point faces (validation split): what is left is the convention offset.

usage: scripts/measure_conventions.py [--data ../shared/data] [--faces 800] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.imageio import read_image_bgr  # noqa: E402
from core.manifest import default_weights_dir, landmark_model_name, model_file, read_manifest  # noqa: E402
from tracker.backends import create_backend  # noqa: E402
from tracker.locate import Crop, Locator  # noqa: E402
from training.conventions import ibug68_alternatives, offsets_in_face_frame, summarise  # noqa: E402
from training.data import load_dataset  # noqa: E402
from training.data.splits import split_by_identity  # noqa: E402

POINTS = ("right_eye", "left_eye", "nose_tip", "mouth_center")


def predict(backend, samples) -> np.ndarray:
    """(N, 4, 2) frame-pixel points of the landmark model, one pass on the level crop around each
    sample's box (the runtime's first pass, `tracker.locate`)."""
    locator = Locator(backend, passes=1)
    crops = [Crop.around_box(s.box_xyxy, backend.meta.crop_scale) for s in samples]
    return np.stack([locator.in_crop(read_image_bgr(s.image_path), c).points_px for s, c in zip(samples, crops)])


def table(title: str, summary: dict) -> str:
    lines = [title, f"  {'point':<14}{'dx median':>10}{'dy median':>10}{'dx IQR':>9}{'dy IQR':>9}"]
    for name, med, iqr in zip(POINTS, summary["median"], summary["iqr"]):
        lines.append(f"  {name:<14}{med[0]:>10.3f}{med[1]:>10.3f}{iqr[0]:>9.3f}{iqr[1]:>9.3f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--faces", type=int, default=800, help="faces per set for the cross-set measurement")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    report: dict = {}

    ibug = []
    for name in ("ytf-keypoints", "300w-helen-train"):
        ibug += load_dataset(args.data / name).samples
    pts68 = np.stack([s.points68_px for s in ibug])
    layouts = ibug68_alternatives(pts68)
    report["corners_vs_ibug68"] = summarise(offsets_in_face_frame(layouts["corners"], layouts["ibug68"]))
    print(table(f"1. eye-corner midpoints and mouth-corner mean vs the project's points ({len(ibug)} "
                "68-point faces)", report["corners_vs_ibug68"]))

    manifest = read_manifest(default_weights_dir())
    name = landmark_model_name(manifest, None, "onnx")
    backend = create_backend("onnx", model_file(default_weights_dir(), name, "onnx"), "cpu")
    val = split_by_identity(ibug, 0)["val"]  # the shipped model's own validation faces
    sets = {"ibug68 (val)": val}
    for folder in ("mtfl", "caltech-webfaces"):
        for group, faces in _by_group(load_dataset(args.data / folder).samples).items():
            sets[group] = faces
    base = None
    for label, faces in sets.items():
        pick = [faces[i] for i in sorted(rng.choice(len(faces), size=min(args.faces, len(faces)), replace=False))]
        pred = predict(backend, pick)
        truth = np.stack([s.points_px for s in pick])
        raw = offsets_in_face_frame(truth, pred)
        summary = summarise(raw)
        if base is None:
            base = np.asarray(summary["median"])
        corrected = {"median": np.round(np.asarray(summary["median"]) - base, 4).tolist(), "iqr": summary["iqr"]}
        report[label] = {"faces": len(pick), "labels_vs_model": summary, "convention_offset": corrected}
        print(table(f"2. {label}: labels minus the {name} model's points, minus its offset on 68-point val faces "
                    f"({len(pick)} faces)", corrected))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")


def _by_group(samples) -> dict[str, list]:
    groups: dict[str, list] = {}
    for s in samples:
        groups.setdefault(s.group, []).append(s)
    return groups


if __name__ == "__main__":
    main()
