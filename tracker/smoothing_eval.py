"""Scoring the One-Euro smoothing against per-frame truth: point error (NME) and jitter.

Used by `scripts/tune_smoothing.py` (the table in docs/evaluation.md) and the smoothing tests. A clip's
tracked output is a list of `RawFace` (one per frame, the first face only, unsmoothed); the filter is
replayed offline on it exactly as `tracker.pipeline.Tracker` runs it (per face id, on the frame times, the
speed measured in face sizes per second), so one tracker run serves every parameter set.

Definitions (all in % of the true inter-ocular distance `iod`, the distance between the true eye points):

- NME of a frame: mean over the four points of |output - truth| / iod (`core.metrics.nme_per_face`).
- Jitter of a frame i with output and truth on frames i-1, i, i+1 (same face id): the mean over the
  points of |e[i+1] - 2 e[i] + e[i-1]| / iod[i], where e = output - truth (px). The truth's own motion
  cancels in e, so what is left is the motion the truth does not have: a second difference of the
  error is the frame-to-frame acceleration of the points relative to the truth (high-frequency motion);
  a slow lag behind the truth adds little to it but adds to NME.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.geometry import face_square_from_points
from core.metrics import nme_per_face
from tracker.smoothing import BETA, D_CUTOFF_HZ, MIN_CUTOFF_HZ, FaceSmoother


@dataclass(frozen=True)
class RawFace:
    """One frame's first face as tracked: `t_s` frame time (s), `face_id` (None: no face), `points` (4,2) px."""

    t_s: float
    face_id: int | None
    points: np.ndarray | None


def smooth_offline(raw: list[RawFace], min_cutoff: float = MIN_CUTOFF_HZ, beta: float = BETA,
                   d_cutoff: float = D_CUTOFF_HZ) -> list[RawFace]:
    """The frames as `Tracker` with smoothing would report them: one FaceSmoother per face id, a new one
    when the id changes or the face was lost, fed (points, t_s, face side of the raw points)."""
    out: list[RawFace] = []
    smoother, last_id = None, None
    for face in raw:
        if face.points is None:
            smoother, last_id = None, None
            out.append(face)
            continue
        if smoother is None or face.face_id != last_id:
            smoother, last_id = FaceSmoother(min_cutoff, beta, d_cutoff), face.face_id
        side = face_square_from_points(face.points)[1]
        points, _ = smoother(face.points, None, face.t_s, side)
        out.append(RawFace(face.t_s, face.face_id, np.asarray(points, dtype=np.float64)))
    return out


def _iod(truth: np.ndarray) -> np.ndarray:
    return np.linalg.norm(truth[:, 1] - truth[:, 0], axis=-1)


def score(faces: list[RawFace], truth: np.ndarray) -> dict:
    """{"nme": mean NME %, "jitter": mean jitter %, "frames": frames scored, "missed": frames without a face}
    of per-frame output `faces` against `truth` (N,4,2) px, frame i against truth[i] (see the module text)."""
    truth = np.asarray(truth, dtype=np.float64)
    n = min(len(faces), len(truth))
    have = np.array([faces[i].points is not None for i in range(n)])
    pred = np.stack([faces[i].points if have[i] else truth[i] for i in range(n)])
    nme = nme_per_face(pred[have], truth[:n][have])
    err = pred - truth[:n]
    same = np.array([have[i] and have[i - 1] and have[i + 1] and faces[i - 1].face_id == faces[i].face_id
                     == faces[i + 1].face_id for i in range(1, n - 1)], dtype=bool)
    accel = np.linalg.norm(err[2:] - 2 * err[1:-1] + err[:-2], axis=-1).mean(axis=1)  # (n-2,) px
    jitter = 100.0 * accel / _iod(truth[1:n - 1])
    return {"nme": float(nme.mean()) if len(nme) else float("nan"),
            "jitter": float(jitter[same].mean()) if same.any() else float("nan"),
            "frames": int(have.sum()), "missed": int(n - have.sum())}
