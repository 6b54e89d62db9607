"""Scoring `facetrack images --json` rows against a field case's truth (../shared/field-cases/README.md):
per file, faces found, NME (% of the true inter-ocular distance; each face matched to the truth face
nearest its eye midpoint), eye order, the worst in-frame point error of cut-off faces, the reported
width and height, and whether that is what the item's `expect` says a correct tool does.
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


def score_size(scored: dict, item: dict, row: dict) -> dict:
    """`scored` with the row's reported `size` [width, height] added and, when the item's `expect` gives
    a width and height (the image as displayed, e.g. after EXIF orientation), `pass` only if they match."""
    expect = item["expect"]
    scored["size"] = [row.get("width"), row.get("height")]
    if "width" in expect and "height" in expect:
        scored["pass"] = bool(scored["pass"] and scored["size"] == [expect["width"], expect["height"]])
    return scored


def score_case(case_dir: str | Path, rows: list[dict]) -> list[dict]:
    """`score_item` and `score_size` for every image item of a field-case folder, given `images --json` rows."""
    truth = json.loads((Path(case_dir) / "truth.json").read_text())
    by_file = {Path(r["image"]).name: r for r in rows}
    scored = []
    for item in truth["items"]:
        if item["kind"] == "image":
            row = by_file.get(item["file"], {})
            scored.append(score_size(score_item(item, row.get("faces", [])), item, row))
    return scored


def video_timing(path: str | Path) -> tuple[list[float], int, int]:
    """(presentation times in ms of every frame, width, height) of a written video, read with PyAV."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [frame.time * 1000.0 for frame in container.decode(stream)]
        return times, stream.codec_context.width, stream.codec_context.height


def score_video_item(item: dict, rows: list[dict], exit_code: int, messages: str, out_video: str | Path) -> dict:
    """What `facetrack video --json` gave for one video truth item, and whether that is what it expects.

    `rows` are the JSON lines, `messages` what the command printed, `out_video` the mp4 it wrote.
    Reports frames tracked, the largest |t_ms - truth| (ms), the output's size and the largest error
    of its frame intervals against the truth's (ms), the median NME (%) over frames with a face.
    """
    expect, truth_frames = item["expect"], item["frames"]
    times, width, height = video_timing(out_video)
    out = {"file": item["file"], "exit_code": exit_code, "frames_tracked": len(rows),
           "json_size": sorted({(r["width"], r["height"]) for r in rows}), "output_size": [width, height]}
    if len(rows) == len(truth_frames):
        out["t_ms_max_error"] = round(max(abs(r["t_ms"] - f["t_ms"]) for r, f in zip(rows, truth_frames)), 3)
        truth_gaps = np.diff([f["t_ms"] for f in truth_frames])
        out["output_interval_max_error_ms"] = round(float(np.abs(np.diff(times) - truth_gaps).max()), 3) \
            if len(times) == len(truth_frames) else None
        nmes = [nme_per_face(_points(r["faces"][0])[None], _points(f["faces"][0])[None])[0]
                for r, f in zip(rows, truth_frames) if r["faces"] and f["faces"]]
        out["nme_median"] = round(float(np.median(nmes)), 2) if nmes else None
    ok = True
    if "frames_tracked" in expect:
        ok &= out["frames_tracked"] == expect["frames_tracked"]
    if "exit_code" in expect:
        ok &= exit_code == expect["exit_code"]
    if "messages_absent" in expect:
        ok &= not any(word in messages.lower() for word in expect["messages_absent"])
    if "t_ms_equals_presentation_time_within_ms" in expect:
        ok &= out.get("t_ms_max_error", 1e9) <= expect["t_ms_equals_presentation_time_within_ms"]
    if expect.get("output_keeps_timing"):
        interval_error = out.get("output_interval_max_error_ms")
        ok &= interval_error is not None and interval_error <= 1.0
    if "output_size" in expect:
        ok &= out["output_size"] == list(expect["output_size"]) and out["json_size"] == [tuple(out["output_size"])]
    out["pass"] = bool(ok)
    return out


def score_point_truth(case_dir: str | Path, rows: list[dict]) -> dict[str, dict]:
    """`images --json` rows scored against a field case whose `truth.json` maps each file (relative to the
    case folder) to its four points by name (the `dark/` and `mask/` cases). Per file: `found` (a face
    matched: the face whose eye midpoint lies nearest the truth's), `nme` (%), `errors` (per point, % of
    the true inter-ocular distance, POINT_NAMES order), `point_scores` (the face's, or None) and `quality`;
    a file without a face gets found False and None for the rest."""
    case_dir = Path(case_dir)
    truth = json.loads((case_dir / "truth.json").read_text())
    by_file = {}
    for row in rows:
        path = Path(row["image"])
        try:
            key = path.resolve().relative_to(case_dir.resolve()).as_posix()
        except ValueError:
            key = path.name
        by_file[key] = row
    scored = {}
    for key, named in truth.items():
        ref = np.array([named[name] for name in POINT_NAMES], dtype=np.float64)
        iod = float(np.linalg.norm(ref[0] - ref[1]))
        faces = by_file.get(key, {}).get("faces", [])
        if not faces:
            scored[key] = {"found": False, "nme": None, "errors": None, "point_scores": None, "quality": None}
            continue
        face = min(faces, key=lambda f: float(np.linalg.norm(_points(f)[:2].mean(0) - ref[:2].mean(0))))
        errors = np.linalg.norm(_points(face) - ref, axis=1) / iod * 100
        scores = face.get("point_scores")
        scored[key] = {"found": True, "nme": float(errors.mean()), "errors": errors.tolist(),
                       "point_scores": None if scores is None else [scores[name] for name in POINT_NAMES],
                       "quality": face.get("quality")}
    return scored
