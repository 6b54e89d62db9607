#!/usr/bin/env python3
"""Score `facetrack video --json` rows against a clip's truth (demo/demo.truth.jsonl).

Prints the per-frame point error in % of the true inter-ocular distance (mean, median, p90), the share
of frames within 5 %, the share of frames with a face, and how far the reported box moves from one
frame to the next (`box_steps`: its centre's step in px, median / p95 / max, per face id). With
--no-face ROWS.jsonl, also the share of frames of a face-free clip on which a box was reported (false
detections).

usage: scripts/measure_tracking.py demo-out.jsonl [--truth demo/demo.truth.jsonl] [--no-face nf.jsonl]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from core.meta import POINT_NAMES
from core.metrics import nme_per_face


def read_rows(path: Path) -> list[dict]:
    """JSON lines of a file."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def tracking_error(rows: list[dict], truth: list[dict]) -> dict:
    """Per-frame NME (`core.metrics`: mean point error in % of the true inter-ocular distance).

    A frame where no face was reported counts as an infinite error (it fails every threshold).
    """
    by_frame = {r["frame"]: r for r in rows}
    errors = np.full(len(truth), np.inf)
    found, preds, trues = [], [], []
    for k, t in enumerate(truth):
        faces = by_frame.get(t["frame"], {}).get("faces", [])
        if faces:
            found.append(k)
            preds.append([faces[0]["points"][n] for n in POINT_NAMES])
            trues.append([t["points"][n] for n in POINT_NAMES])
    if found:
        errors[found] = nme_per_face(np.array(preds), np.array(trues))
    finite = errors[np.isfinite(errors)]
    return {"frames": len(truth), "face_found": len(found) / max(len(truth), 1),
            "nme_mean": float(finite.mean()) if len(finite) else None,
            "nme_median": float(np.median(errors)), "nme_p90": float(np.percentile(errors, 90)),
            "within_5pct": float((errors <= 5).mean())}


def _center_px(face: dict) -> np.ndarray:
    x1, y1, x2, y2 = face["box_xyxy"]
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2])


def _faces_by_id(row: dict) -> dict:
    """{id: box centre (2,) px} of a row's faces; rows from before ids: {0: the first face's}."""
    faces = row["faces"]
    if faces and "id" not in faces[0]:
        faces = [dict(faces[0], id=0)]
    return {face["id"]: _center_px(face) for face in faces}


def box_steps(rows: list[dict]) -> dict:
    """How far each face's box centre moves between consecutive frames (px): median, p95 and max over
    every pair of consecutive frames that both report the face. Faces are followed by their "id" (rows
    from before ids: the first face of each row)."""
    steps, last, last_frame = [], {}, None
    for row in sorted(rows, key=lambda r: r["frame"]):
        now = _faces_by_id(row)
        if last_frame is not None and row["frame"] == last_frame + 1:
            steps += [float(np.linalg.norm(center - last[key])) for key, center in now.items() if key in last]
        last, last_frame = now, row["frame"]
    if not steps:
        return {"steps": 0}
    values = np.array(steps)
    return {"steps": len(steps), "box_center_step_median_px": float(np.median(values)),
            "box_center_step_p95_px": float(np.percentile(values, 95)), "box_center_step_max_px": float(values.max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows")
    parser.add_argument("--truth", default="demo/demo.truth.jsonl")
    parser.add_argument("--no-face", default=None, help="rows of a run on demo/no-face.mp4")
    args = parser.parse_args()
    rows = read_rows(Path(args.rows))
    report = {"tracking": tracking_error(rows, read_rows(Path(args.truth))), "box": box_steps(rows)}
    if args.no_face:
        rows = read_rows(Path(args.no_face))
        report["no_face"] = {"frames": len(rows), "frames_with_box": sum(1 for r in rows if r["faces"]),
                             "share_with_box": sum(1 for r in rows if r["faces"]) / max(len(rows), 1)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
