"""Where the data sets put "the eye", "the nose" and "the mouth centre", relative to each other.

Offsets are measured in the face's own frame, so they do not depend on where the face is, how large it
is or how it is rolled: x runs along the eye line (from the subject's right eye to the left eye), y is
perpendicular to it (towards the mouth in an upright face), and the unit is the inter-ocular distance
of the reference points. An offset (dx, dy) = (0.05, 0.10) on the mouth means that set's mouth lies 5 %
of the inter-ocular distance towards the left eye and 10 % further down than the reference mouth.
"""

from __future__ import annotations

import numpy as np

from training.data.samples import IBUG_LEFT_EYE, IBUG_MOUTH, IBUG_NOSE_TIP, IBUG_RIGHT_EYE

# iBUG-68 indices (0-based) of the eye and mouth corners
IBUG_RIGHT_EYE_CORNERS = (36, 39)
IBUG_LEFT_EYE_CORNERS = (42, 45)
IBUG_MOUTH_CORNERS = (48, 54)


def face_axes(reference: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x axis (N,2), y axis (N,2), inter-ocular distance (N,)) of faces given as (N, P>=2, 2) points.

    x is the unit vector from point 0 (right eye) to point 1 (left eye); y is x turned by +90 degrees in
    image coordinates (y down), i.e. towards the mouth of an upright face.
    """
    ref = np.asarray(reference, dtype=np.float64)
    eye_line = ref[:, 1] - ref[:, 0]
    iod = np.linalg.norm(eye_line, axis=1).clip(min=1e-6)
    x = eye_line / iod[:, None]
    y = np.stack([-x[:, 1], x[:, 0]], axis=1)
    return x, y, iod


def offsets_in_face_frame(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(N, P, 2) offsets of `points` from `reference` (both (N, P, 2) px) in the reference face's frame,
    in units of its inter-ocular distance (see the module docstring)."""
    pts = np.asarray(points, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    x, y, iod = face_axes(ref)
    d = pts - ref
    return np.stack([(d * x[:, None]).sum(axis=2), (d * y[:, None]).sum(axis=2)], axis=2) / iod[:, None, None]


def apply_face_frame_offsets(points: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Inverse of `offsets_in_face_frame`: move (N, P, 2) points by (P, 2) or (N, P, 2) face-frame offsets."""
    pts = np.asarray(points, dtype=np.float64)
    x, y, iod = face_axes(pts)
    off = np.broadcast_to(np.asarray(offsets, dtype=np.float64), pts.shape)
    return pts + (off[..., :1] * x[:, None] + off[..., 1:] * y[:, None]) * iod[:, None, None]


def ibug68_alternatives(points68: np.ndarray) -> dict[str, np.ndarray]:
    """Four-point layouts computable from (N, 68, 2) iBUG points: the project's own ('ibug68': eye
    outline means, point 30, mean of the 20 mouth points) and one with the other sets' definitions where
    the 68 points allow them ('corners': eye = midpoint of its two corners, mouth = mean of the two mouth
    corners as MTFL defines it, nose unchanged)."""
    p = np.asarray(points68, dtype=np.float64).reshape(-1, 68, 2)
    own = np.stack([p[:, list(IBUG_RIGHT_EYE)].mean(1), p[:, list(IBUG_LEFT_EYE)].mean(1), p[:, IBUG_NOSE_TIP],
                    p[:, list(IBUG_MOUTH)].mean(1)], axis=1)
    corners = np.stack([p[:, list(IBUG_RIGHT_EYE_CORNERS)].mean(1), p[:, list(IBUG_LEFT_EYE_CORNERS)].mean(1),
                        p[:, IBUG_NOSE_TIP], p[:, list(IBUG_MOUTH_CORNERS)].mean(1)], axis=1)
    return {"ibug68": own, "corners": corners}


def summarise(offsets: np.ndarray) -> dict[str, list[list[float]]]:
    """Median and inter-quartile range of (N, P, 2) offsets, per point and axis (rounded to 1e-4)."""
    q25, q50, q75 = np.percentile(np.asarray(offsets, dtype=np.float64), [25, 50, 75], axis=0)
    return {"median": np.round(q50, 4).tolist(), "iqr": np.round(q75 - q25, 4).tolist()}
