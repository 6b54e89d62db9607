#!/usr/bin/env python3
"""Score `facetrack video --json` rows against a clip's truth (demo/demo.truth.jsonl).

Prints the per-frame point error in % of the true inter-ocular distance (mean, median, p90), the share
of frames within 5 %, and the share of frames with a face. With --no-face ROWS.jsonl, also the share of
frames of a face-free clip on which a box was reported (false detections).

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows")
    parser.add_argument("--truth", default="demo/demo.truth.jsonl")
    parser.add_argument("--no-face", default=None, help="rows of a run on demo/no-face.mp4")
    args = parser.parse_args()
    report = {"tracking": tracking_error(read_rows(Path(args.rows)), read_rows(Path(args.truth)))}
    if args.no_face:
        rows = read_rows(Path(args.no_face))
        report["no_face"] = {"frames": len(rows), "frames_with_box": sum(1 for r in rows if r["faces"]),
                             "share_with_box": sum(1 for r in rows if r["faces"]) / max(len(rows), 1)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
