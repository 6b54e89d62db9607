"""Accuracy measures: NME by inter-ocular distance, box IoU, presence accuracy."""

from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import box_iou


def nme_per_face(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Mean point error of each face in % of its inter-ocular distance; arrays (N, 2P) or (N, P, 2)."""
    p = np.asarray(pred, dtype=np.float64).reshape(len(pred), -1, 2)
    t = np.asarray(target, dtype=np.float64).reshape(len(target), -1, 2)
    iod = np.linalg.norm(t[:, 1] - t[:, 0], axis=1).clip(min=1e-6)
    return 100 * np.linalg.norm(p - t, axis=2).mean(axis=1) / iod


def nme_per_point(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(N, P) error of each point in % of the face's inter-ocular distance."""
    p = np.asarray(pred, dtype=np.float64).reshape(len(pred), -1, 2)
    t = np.asarray(target, dtype=np.float64).reshape(len(target), -1, 2)
    iod = np.linalg.norm(t[:, 1] - t[:, 0], axis=1).clip(min=1e-6)
    return 100 * np.linalg.norm(p - t, axis=2) / iod[:, None]


def box_metrics(pred: np.ndarray, target_box: np.ndarray, presence: np.ndarray, threshold: float = 0.5) -> dict:
    """Mean IoU and IoU>=0.5 share over faces, presence accuracy over faces and non-faces."""
    pred = np.asarray(pred, dtype=np.float32)
    face = np.asarray(presence) > 0.5
    prob = 1 / (1 + np.exp(-pred[:, 4]))
    accuracy = float(((prob >= threshold) == face).mean()) if len(face) else 0.0
    if face.any():
        p = torch.from_numpy(pred[face, :4])
        p = torch.cat([torch.minimum(p[:, :2], p[:, 2:]), torch.maximum(p[:, :2], p[:, 2:])], dim=1)
        ious = box_iou(p, torch.from_numpy(np.asarray(target_box, dtype=np.float32)[face])).diagonal().numpy()
    else:
        ious = np.zeros(0)
    return {"iou_mean": float(ious.mean()) if len(ious) else 0.0,
            "iou_recall": float((ious >= 0.5).mean()) if len(ious) else 0.0,
            "presence_accuracy": accuracy}
