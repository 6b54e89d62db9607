"""Accuracy measures, the one home of them: NME by inter-ocular distance, box IoU, presence accuracy,
face-quality accuracy and AUC.

Numpy only (no torch): training's validation, `facetrack eval`, export's int8 check and
`scripts/measure_tracking.py` all score through these functions. The two distances they rest on are
`core.geometry.inter_ocular` (the eye-centre distance the tracker also uses) and `core.geometry.box_iou`.

NME (normalised mean error) follows the 300-W convention with inter-ocular normalisation: the
Euclidean point error divided by the distance between the true eye centres (points 0 and 1), in %.
"""

from __future__ import annotations

import numpy as np

from core.geometry import box_iou, inter_ocular, iou_matrix
from core.meta import POINT_NAMES

FAILURE_NME_PCT = 10.0  # a face whose NME exceeds this many % counts as a failure
MIN_IOD = 1e-6  # inter-ocular distances are clipped to this (same unit as the points)


def _faces(points: np.ndarray) -> np.ndarray:
    """Points (N, 2P) or (N, P, 2) as float64 (N, P, 2)."""
    a = np.asarray(points, dtype=np.float64)
    return a.reshape(len(a), -1, 2)


def nme_per_point(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(N, P) error of each point in % of its face's true inter-ocular distance.

    pred, target: (N, 2P) or (N, P, 2) in any one unit (pixels or crop-normalised); points 0 and 1
    of `target` are the eye centres.
    """
    p, t = _faces(pred), _faces(target)
    iod = np.array([inter_ocular(face) for face in t], dtype=np.float64).clip(min=MIN_IOD)
    return 100 * np.linalg.norm(p - t, axis=2) / iod[:, None]


def nme_per_face(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(N,) mean point error of each face in % of its inter-ocular distance (shapes as nme_per_point)."""
    return nme_per_point(pred, target).mean(axis=1)


def failure_rate(nme: np.ndarray, threshold: float = FAILURE_NME_PCT) -> float:
    """Share (0..1) of faces whose NME (%) is above `threshold` (%); 0 for no faces."""
    nme = np.asarray(nme)
    return float((nme > threshold).mean()) if len(nme) else 0.0


def landmark_metrics(pred: np.ndarray, target: np.ndarray, point_names: tuple[str, ...] = POINT_NAMES) -> dict:
    """Faces, NME mean/median (%), failure rate (0..1) and mean NME (%) of each named point."""
    per_point = nme_per_point(pred, target)
    nme = per_point.mean(axis=1)
    return {"faces": int(len(nme)), "nme_mean": float(nme.mean()), "nme_median": float(np.median(nme)),
            "failure_rate": failure_rate(nme),
            "per_point": {name: float(v) for name, v in zip(point_names, per_point.mean(axis=0))}}


def box_iou_pairs(pred_xyxy: np.ndarray, target_xyxy: np.ndarray) -> np.ndarray:
    """(N,) float32 IoU of each predicted box with its own target box (row k with row k), xyxy.

    Computed in float32 as `torchvision.ops.box_iou(...).diagonal()` did, so the numbers are the same.
    """
    p = np.asarray(pred_xyxy, dtype=np.float32).reshape(-1, 4)
    t = np.asarray(target_xyxy, dtype=np.float32).reshape(-1, 4)
    return np.array([box_iou(a, b) for a, b in zip(p, t)], dtype=np.float32)


def presence_accuracy(logits: np.ndarray, presence: np.ndarray, threshold: float = 0.5) -> float:
    """Share (0..1) of items where sigmoid(logit) >= threshold agrees with presence > 0.5; 0 for none."""
    face = np.asarray(presence) > 0.5
    prob = 1 / (1 + np.exp(-np.asarray(logits, dtype=np.float32)))
    return float(((prob >= threshold) == face).mean()) if len(face) else 0.0


def box_metrics(pred: np.ndarray, target_box: np.ndarray, presence: np.ndarray, threshold: float = 0.5) -> dict:
    """Mean IoU and IoU>=0.5 share over faces, presence accuracy over faces and non-faces.

    pred: (N, 5) box-model outputs (x1, y1, x2, y2 in 0..1, presence logit); target_box: (N, 4) in the
    same unit; presence: (N,) 1 for a face, 0 for none. Predicted corners are put in order first.
    """
    pred = np.asarray(pred, dtype=np.float32)
    face = np.asarray(presence) > 0.5
    accuracy = presence_accuracy(pred[:, 4], presence, threshold)
    if face.any():
        p = pred[face, :4]
        p = np.concatenate([np.minimum(p[:, :2], p[:, 2:]), np.maximum(p[:, :2], p[:, 2:])], axis=1)
        ious = box_iou_pairs(p, np.asarray(target_box, dtype=np.float32)[face])
    else:
        ious = np.zeros(0)
    return {"iou_mean": float(ious.mean()) if len(ious) else 0.0,
            "iou_recall": float((ious >= 0.5).mean()) if len(ious) else 0.0,
            "presence_accuracy": accuracy}


def quality_metrics(logits: np.ndarray, face: np.ndarray) -> dict[str, float]:
    """Face-quality accuracy (sigmoid >= 0.5 vs `face` > 0.5, 0..1) and ROC AUC (0..1, the chance that a
    face crop scores above a negative: Mann-Whitney U with ties counted half; 0.5 without both kinds)."""
    logits = np.asarray(logits, dtype=np.float64).reshape(-1)
    positive = np.asarray(face).reshape(-1) > 0.5
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    auc = 0.5
    if n_pos and n_neg:
        _, inverse, counts = np.unique(logits, return_inverse=True, return_counts=True)
        ends = np.cumsum(counts)
        ranks = ((ends - counts + 1 + ends) / 2)[inverse]  # 1-based ranks, tied scores at their mean rank
        auc = float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return {"quality_accuracy": presence_accuracy(logits, positive.astype(np.float32)), "quality_auc": auc}


def match_partners(pred_xyxy: np.ndarray, pred_scores: np.ndarray, truth_xyxy: np.ndarray,
                   iou_threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """PASCAL VOC matching of one image's detections to its true faces: by falling score, each
    detection takes the unmatched true face it overlaps most if that IoU is at least `iou_threshold`.
    Returns (partner (D,) int64: the true face each detection took, -1 none, in the order given;
    matched_truth (T,) bool)."""
    pred = np.asarray(pred_xyxy, np.float32).reshape(-1, 4)
    truth = np.asarray(truth_xyxy, np.float32).reshape(-1, 4)
    partner = np.full(len(pred), -1, np.int64)
    taken = np.zeros(len(truth), bool)
    if not len(pred) or not len(truth):
        return partner, taken
    iou = iou_matrix(pred, truth)
    for d in np.argsort(-np.asarray(pred_scores, np.float32), kind="stable"):
        free = np.where(taken, -1.0, iou[d])
        t = int(np.argmax(free))
        if free[t] >= iou_threshold:
            partner[d], taken[t] = t, True
    return partner, taken


def match_detections(pred_xyxy: np.ndarray, pred_scores: np.ndarray, truth_xyxy: np.ndarray,
                     iou_threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """`match_partners` as (hit (D,) bool, in the order given; matched_truth (T,) bool)."""
    partner, taken = match_partners(pred_xyxy, pred_scores, truth_xyxy, iou_threshold)
    return partner >= 0, taken


def average_precision(scores: np.ndarray, hits: np.ndarray, n_truth: int) -> float:
    """Area under the precision-recall curve of detections pooled over images (all-point interpolation,
    PASCAL VOC 2010+): `scores` (D,), `hits` (D,) bool from `match_detections`, `n_truth` true faces.
    0..1; 0 when there are no true faces."""
    if n_truth <= 0:
        return 0.0
    order = np.argsort(-np.asarray(scores, np.float32), kind="stable")
    tp = np.cumsum(np.asarray(hits, bool)[order])
    fp = np.cumsum(~np.asarray(hits, bool)[order])
    recall = tp / n_truth
    precision = tp / np.maximum(tp + fp, 1)
    r = np.concatenate([[0.0], recall, [recall[-1] if len(recall) else 0.0]])
    p = np.concatenate([[1.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    return float(np.sum((r[1:] - r[:-1]) * p[1:]))
