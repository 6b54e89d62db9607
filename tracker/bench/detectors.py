"""The detector against the regressor: what finding faces costs, per run and per tracked frame.

- **per run**: both face finders on the same frames (each frame read once, given to both, their order
  alternating from frame to frame): ms per `detect` call (median, p90; its letterbox, model and
  decoding apart) and the faces it returned; divided by the tracker's `detect_every`, the cost per
  frame when tracking (the detector runs every N frames).
- **single face, end to end**: sequential passes of read + `Tracker.step` over the one-face source with
  each finder (passes interleaved across repeats): frames/s, ms per frame, detector runs per frame.
- **budget** (issue 12): a one-face video may get slower with the detector than with the regressor by at
  most the detector's own cost every N frames: `slowdown_ms_per_frame` (mean ms per frame, detector minus
  regressor, medians over passes) against `allowed_ms_per_frame` (the detector's median ms per run /
  detect_every). `comparable` says whether both found the face on at least COMPARABLE_SHARE of the
  frames: a detector that finds nothing (an untrained one) runs on every frame and never runs the
  landmark model, and its slowdown says nothing about the rule.

Each finder is the `detector` of a tracker built by the caller (`make_tracker(finder backend)`), so its
score threshold and face limit are the tracker's.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from tracker.backends import Backend
from tracker.bench import measure
from tracker.pipeline import Tracker
from tracker.sources import Source

Log = Callable[[str], None]
REGRESSOR = "regressor"
DETECTOR = "centernet"
COMPARABLE_SHARE = 0.9  # faces per frame both finders need on the one-face source for the budget to speak
_STAGES = {"preprocess": "preprocess", "box_model": "model", "postprocess": "postprocess"}


def per_run(detectors: dict[str, object], source: Source, frames: int, warmup: int = 3) -> dict:
    """Every detector on each of up to `frames` frames of `source` (closed afterwards), their order
    alternating per frame. {name: {"runs", "ms_per_run": {median, p90, mean, min}, "stage_ms" (mean per
    run: preprocess, model, postprocess), "faces_per_run": {mean, max}}}."""
    names = list(detectors)
    ms: dict[str, list[float]] = {n: [] for n in names}
    faces: dict[str, list[int]] = {n: [] for n in names}
    stages = {n: dict.fromkeys(_STAGES.values(), 0.0) for n in names}
    try:
        k = 0
        while k < frames:
            frame = source.read()
            if frame is None:
                break
            if k == 0:
                for name in names:  # first calls allocate: never measured
                    for _ in range(max(0, warmup)):
                        detectors[name].detect(frame.image, {})
            for name in (names if k % 2 == 0 else names[::-1]):
                timings: dict[str, float] = {}
                t0 = time.perf_counter()
                found = detectors[name].detect(frame.image, timings)
                ms[name].append((time.perf_counter() - t0) * 1000.0)
                faces[name].append(len(found))
                for key, label in _STAGES.items():
                    stages[name][label] += timings.get(key, 0.0)
            k += 1
    finally:
        source.close()
    out = {}
    for name in names:
        t = np.asarray(ms[name] or [0.0])
        n = max(1, len(ms[name]))
        out[name] = {"runs": len(ms[name]),
                     "ms_per_run": {"median": round(float(np.median(t)), 4),
                                    "p90": round(float(np.percentile(t, 90)), 4),
                                    "mean": round(float(t.mean()), 4), "min": round(float(t.min()), 4)},
                     "stage_ms": {k: round(v / n, 4) for k, v in stages[name].items()},
                     "faces_per_run": {"mean": round(float(np.mean(faces[name] or [0])), 3),
                                       "max": int(max(faces[name] or [0]))}}
    return out


def detectors_scenario(finders: dict[str, Backend], make_tracker: Callable[[Backend], Tracker],
                       open_source: Callable[[], Source], *, detect_every: int, frames: int = 300,
                       repeat: int = 3, warmup: int = 20, skipped: dict[str, str] | None = None,
                       frame_sets: dict[str, Callable[[], Source]] | None = None, log: Log | None = None) -> dict:
    """The cost of each face finder in `finders` ({"centernet": backend, "regressor": backend}, those
    the weights have; `skipped`: {name: why not}) on the one-face source `open_source` opens, and per
    run also on each of `frame_sets` ({label: opener}, e.g. a composed clip with many faces)."""
    say = log or (lambda line: None)
    detectors = {name: make_tracker(backend).detector for name, backend in finders.items()}
    sets = {"source": open_source, **(frame_sets or {})}
    report: dict = {"detect_every": detect_every, "finders": list(finders), "skipped": dict(skipped or {}),
                    "per_run": {}, "single_face": {}}
    for label, opener in sets.items():
        say(f"face finders per run ({', '.join(finders)}) on {label} frames")
        runs = per_run(detectors, opener(), frames)
        for entry in runs.values():
            entry["ms_per_frame_at_detect_every"] = round(entry["ms_per_run"]["median"] / detect_every, 4)
        report["per_run"][label] = runs
    if warmup:
        for backend in finders.values():
            measure.frame_pass(open_source(), make_tracker(backend), warmup)
    passes: dict[str, list[dict]] = {name: [] for name in finders}
    for r in range(repeat):
        say(f"one-face source with {', '.join(finders)}: pass {r + 1} of {repeat}")
        for name, backend in finders.items():
            passes[name].append(measure.frame_pass(open_source(), make_tracker(backend), frames))
    for name in finders:
        clip_ms = [1000.0 * len(p["ms"]) / sum(p["ms"]) for p in passes[name] if p["ms"]]
        entry = measure.summarize_frames(passes[name])
        entry["clip_ms_per_frame"] = measure.spread([1000.0 / f for f in clip_ms], 4) if clip_ms else None
        report["single_face"][name] = entry
    report["budget"] = budget(report)
    return report


def budget(report: dict) -> dict | None:
    """Issue 12's rule on a one-face video, from a `detectors_scenario` report (None unless both ran):
    the slowdown with the detector (mean ms per frame over the regressor's, medians over passes) is at
    most the detector's own cost every `detect_every` frames (its median ms per run on the source's frames
    / detect_every)."""
    single, runs = report["single_face"], report["per_run"].get("source", {})
    if DETECTOR not in single or REGRESSOR not in single:
        return None
    det, reg = single[DETECTOR]["clip_ms_per_frame"], single[REGRESSOR]["clip_ms_per_frame"]
    if not det or not reg:
        return None
    slowdown = det["median"] - reg["median"]
    allowed = runs[DETECTOR]["ms_per_run"]["median"] / report["detect_every"]
    difference = (runs[DETECTOR]["ms_per_run"]["median"] - runs[REGRESSOR]["ms_per_run"]["median"]) \
        / report["detect_every"]
    found = {name: single[name]["faces_per_frame"]["mean"] for name in single}
    return {"slowdown_ms_per_frame": round(slowdown, 4), "allowed_ms_per_frame": round(allowed, 4),
            "run_cost_difference_ms_per_frame": round(difference, 4), "within": bool(slowdown <= allowed),
            "comparable": all(found.get(n, 0.0) >= COMPARABLE_SHARE for n in (DETECTOR, REGRESSOR)),
            "faces_per_frame": found,
            "fps_ratio": round(reg["median"] / det["median"], 4) if det["median"] > 0 else None,
            "detector_runs_per_frame": {name: single[name]["detector_runs_per_frame"] for name in single}}
