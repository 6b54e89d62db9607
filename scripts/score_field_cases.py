#!/usr/bin/env python3
"""Score `facetrack images --json` rows against a field-case folder's truth.json and its `expect`.

Per file: faces found, NME (% of the true inter-ocular distance; faces matched to the nearest truth face by
their eye midpoints), eye order, the worst in-frame point error for cut-off faces, and PASS/FAIL against
what the truth says a correct tool does (../shared/field-cases/README.md).

usage: facetrack images ../shared/field-cases/rolled --json rolled.jsonl
       scripts/score_field_cases.py ../shared/field-cases/rolled rolled.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.meta import POINT_NAMES  # noqa: E402
from core.metrics import nme_per_face  # noqa: E402


def _points(face: dict) -> np.ndarray:
    return np.array([face["points"][name] for name in POINT_NAMES], dtype=np.float64)


def score_item(item: dict, found: list[dict]) -> dict:
    """What the tool gave for one truth item, and whether that is what the item expects."""
    expect, truths = item["expect"], item.get("faces", [])
    out = {"file": item["file"], "faces": len(found), "nme": [], "eyes_in_order": [], "in_frame_error_iod": None}
    for face in found:
        pts = _points(face)
        mid = (pts[0] + pts[1]) / 2
        truth = min(truths, key=lambda t: np.linalg.norm((_points(t)[0] + _points(t)[1]) / 2 - mid))
        ref = _points(truth)
        out["nme"].append(round(float(nme_per_face(pts[None], ref[None])[0]), 2))
        out["eyes_in_order"].append(bool(np.linalg.norm(pts[0] - ref[0]) < np.linalg.norm(pts[0] - ref[1])))
        inside = [name for name in POINT_NAMES if truth["in_frame"][name]]
        errors = [np.linalg.norm(pts[POINT_NAMES.index(n)] - ref[POINT_NAMES.index(n)]) / truth["iod"] for n in inside]
        out["in_frame_error_iod"] = round(float(max(errors)), 3) if errors else None
    wanted = expect["faces"]
    ok = len(found) in wanted if isinstance(wanted, list) else len(found) == wanted
    if "nme_max" in expect:
        ok &= all(n <= 100 * expect["nme_max"] for n in out["nme"])
    if expect.get("eyes_in_order"):
        ok &= all(out["eyes_in_order"])
    if "in_frame_point_error_max_iod" in expect and found:
        worst = out["in_frame_error_iod"]
        ok &= worst is not None and worst <= expect["in_frame_point_error_max_iod"]
    out["pass"] = bool(ok)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", type=Path, help="a field-case folder with truth.json")
    parser.add_argument("rows", type=Path, help="facetrack images --json output for that folder")
    args = parser.parse_args()
    truth = json.loads((args.case / "truth.json").read_text())
    lines = [line for line in args.rows.read_text().splitlines() if line.strip()]
    rows = {Path(r["image"]).name: r for r in map(json.loads, lines)}
    results = [score_item(item, rows.get(item["file"], {}).get("faces", [])) for item in truth["items"]
               if item["kind"] == "image"]
    for r in results:
        print(f"{r['file']:<20} faces {r['faces']}  NME {r['nme']}  eyes in order {r['eyes_in_order']}  "
              f"worst in-frame point {r['in_frame_error_iod']}  {'PASS' if r['pass'] else 'FAIL'}")
    print(f"{sum(r['pass'] for r in results)}/{len(results)} pass")


if __name__ == "__main__":
    main()
