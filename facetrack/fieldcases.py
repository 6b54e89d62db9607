"""Scoring `facetrack images --json` rows against a field case's truth (../shared/field-cases/README.md):
per file, faces found, NME (% of the true inter-ocular distance; each face matched to the truth face
nearest its eye midpoint), eye order, the worst in-frame point error of cut-off faces, and whether that is
what the item's `expect` says a correct tool does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.meta import POINT_NAMES
from core.metrics import nme_per_face


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


def score_case(case_dir: str | Path, rows: list[dict]) -> list[dict]:
    """`score_item` for every image item of a field-case folder, given `images --json` rows."""
    truth = json.loads((Path(case_dir) / "truth.json").read_text())
    by_file = {Path(r["image"]).name: r for r in rows}
    return [score_item(item, by_file.get(item["file"], {}).get("faces", [])) for item in truth["items"]
            if item["kind"] == "image"]
