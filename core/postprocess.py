"""Model outputs to frame pixels: landmark crops back through the inverse crop, boxes out of the letterbox."""

from __future__ import annotations

import math

import numpy as np

from core.frame import Detection
from core.geometry import (
    apply_affine,
    apply_face_frame_offsets,
    clip_box,
    intersection_matrix,
    invert_affine,
    map_box,
    nms,
)
from core.meta import ModelMeta


def sigmoid(x: float) -> float:
    """Numerically safe logistic function."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def landmark_points(output_row: np.ndarray, frame_to_crop: np.ndarray, input_size: int,
                    offsets_iod: tuple[float, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """(points_px (P,2) in frame pixels, points_norm (P,2) in 0..1 of the crop) from the 2P point
    values of an output row (x y per point; pass the row without a trailing quality logit), corrected by
    the model's `offsets_iod` (`ModelMeta.point_offsets`, `calibrated_points`, in the crop) when it has
    them, mapped back through the inverse of the crop's 2x3 `frame_to_crop` (a turned crop included)."""
    points_norm = np.asarray(output_row, dtype=np.float32).reshape(-1, 2)
    if len(offsets_iod):
        points_norm = calibrated_points(points_norm, np.reshape(offsets_iod, (-1, 2)))
    crop_to_frame = invert_affine(frame_to_crop)
    points_px = apply_affine(points_norm * float(input_size), crop_to_frame)
    return points_px, points_norm


def calibrated_points(points: np.ndarray, offsets_iod: np.ndarray) -> np.ndarray:
    """`points` (P, 2) minus each point's offset `offsets_iod` (P, 2: across, down, in inter-ocular units)
    in the face frame of the points themselves (`core.geometry.face_axes`); float32. Pass points in the
    landmark crop's coordinates, where a mirrored crop's face is not mirrored (its labels follow the face
    it shows)."""
    off = -np.asarray(offsets_iod, dtype=np.float64).reshape(-1, 2)
    return apply_face_frame_offsets(np.asarray(points)[None], off)[0].astype(np.float32)


def landmark_quality(output_row: np.ndarray, meta: ModelMeta) -> float | None:
    """The face quality in 0..1 (sigmoid of the logit that ends the row, after the 2P point values) of
    a landmark model that gives one (`meta.quality`); None for a model without it."""
    if not meta.quality:
        return None
    return sigmoid(float(np.asarray(output_row, dtype=np.float32).reshape(-1)[2 * len(meta.point_names)]))


def landmark_point_scores(output_row: np.ndarray, meta: ModelMeta) -> np.ndarray | None:
    """(P,) float32 point scores 0..1 (the values that end the row, after the points and the quality
    logit; `core.models.SimCCLandmarks.point_scores`) of a model that gives them (`meta.point_scores`);
    None for a model without them."""
    if not meta.point_scores:
        return None
    n = len(meta.point_names)
    start = 2 * n + (1 if meta.quality else 0)
    return np.asarray(output_row, dtype=np.float32).reshape(-1)[start:start + n].copy()


def box_detection(output_row: np.ndarray, frame_to_letterbox: np.ndarray, input_size: int, width: int,
                  height: int) -> Detection:
    """The face box in frame pixels (clipped to width x height) and presence score (sigmoid of the
    logit) from one box-model output row (x1 y1 x2 y2 in 0..1 of the letterbox, presence logit)."""
    row = np.asarray(output_row, dtype=np.float32).reshape(-1)
    box_square = row[:4] * float(input_size)
    letterbox_to_frame = invert_affine(frame_to_letterbox)
    box = clip_box(map_box(box_square, letterbox_to_frame), width, height)
    x1, y1, x2, y2 = box
    box = np.array([min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)], dtype=np.float32)
    return Detection(box, sigmoid(float(row[4])), True)


def points_inside(points_norm: np.ndarray, margin: float = 0.0) -> bool:
    """True when every point lies in the crop (0..1, grown by `margin`)."""
    p = np.asarray(points_norm, dtype=np.float32)
    return bool(np.all(np.isfinite(p)) and np.all(p >= -margin) and np.all(p <= 1.0 + margin))


# A detection whose box lies this much (intersection / its own area) inside a better one's is a part of
# that face (an eye, a mouth corner seen as a small face), never a face of its own.
MAX_INSIDE_SHARE = 0.7


def contained(boxes_xyxy: np.ndarray, max_share: float = MAX_INSIDE_SHARE) -> np.ndarray:
    """(K,) bool: which boxes (K, 4), sorted best first, lie more than `max_share` of their area inside an
    earlier (better) one."""
    boxes = np.asarray(boxes_xyxy, np.float32).reshape(-1, 4)
    area = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-6)
    share = intersection_matrix(boxes, boxes) / area[:, None]  # [j, i]: the share of box j inside box i
    earlier = np.tril(np.ones((len(boxes), len(boxes)), bool), k=-1)  # i < j
    return (share * earlier > max_share).any(axis=1)


def grid_detections(output: np.ndarray, input_to_frame: np.ndarray, width: int, height: int, min_score: float,
                    nms_iou: float, max_faces: int | None = None) -> list[Detection]:
    """Faces from one image's detector output (N, 5 + 2P): the rows scoring at least `min_score`, greedy
    NMS at `nms_iou` (`core.geometry.nms`), without boxes lying inside a better one (`contained`), at
    most `max_faces` (None: all) by falling score; boxes and
    points mapped from input pixels to frame pixels through `input_to_frame` (2x3), boxes clipped to
    width x height. Returns Detections with `points_px` (P, 2), best first."""
    rows = np.asarray(output, dtype=np.float32).reshape(-1, output.shape[-1])
    rows = rows[rows[:, 0] >= min_score]
    if not len(rows):
        return []
    keep = nms(rows[:, 1:5], rows[:, 0], nms_iou)
    keep = keep[~contained(rows[keep, 1:5])]
    if max_faces is not None:
        keep = keep[:max_faces]
    found = []
    for row in rows[keep]:
        box = clip_box(map_box(row[1:5], input_to_frame), width, height)
        points = apply_affine(row[5:].reshape(-1, 2), input_to_frame)
        found.append(Detection(box, float(row[0]), True, points))
    return found
