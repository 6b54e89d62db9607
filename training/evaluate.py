"""Scoring on training's own crops and batches: landmark NME on the un-augmented validation crops (what
training's validation sees) and box IoU / presence on letterboxed images and no-face crops.

`facetrack eval` (`facetrack/evaluate.py`) scores landmarks through the runtime's crops and backends
instead, and uses `evaluate_box` here with the runtime's box backend.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from core.meta import MIRRORED_ORDER, POINT_NAMES
from core.metrics import box_metrics, landmark_metrics, nme_per_face, presence_accuracy
from training.data.samples import FaceSample
from training.tasks import BoxTask, LandmarkTask


@torch.no_grad()
def predict_points(model: torch.nn.Module, x: torch.Tensor, flip_test: bool = False) -> torch.Tensor:
    """Crop-normalised points (B, 2P) (a quality logit after them is left out); with flip_test,
    averaged with the mirrored crop's prediction."""
    width = 2 * len(POINT_NAMES)
    pts = model(x)[:, :width]
    if not flip_test:
        return pts
    mirrored = model(torch.flip(x, dims=[3]))[:, :width].reshape(len(x), -1, 2)[:, list(MIRRORED_ORDER)]
    # a pixel at x maps to S-1-x; in 0..S/S units with pixel centres at integers that is (S-1)/S - x
    size = x.shape[-1]
    mirrored = torch.stack([(size - 1) / size - mirrored[..., 0], mirrored[..., 1]], dim=-1)
    return (pts.reshape(len(x), -1, 2) + mirrored).reshape(len(x), -1) / 2


@torch.no_grad()
def evaluate_landmarks(model: torch.nn.Module, samples: list[FaceSample], flip_test: bool = False,
                       workers: int = 2, batch_size: int = 64) -> tuple[dict, dict]:
    """Metrics dict (NME in % of inter-ocular distance) and raw arrays (per-face NME, crops, points).

    The crops are training's un-augmented crops (`LandmarkTask`), the same ones validation scores.
    """
    task = LandmarkTask(model.config.input_size)
    cache = task.build_cache(samples, workers)
    rng, gen, dev = np.random.default_rng(0), torch.Generator().manual_seed(0), torch.device("cpu")
    preds, targets, crops = [], [], []
    for start in range(0, len(cache), batch_size):
        idx = np.arange(start, min(len(cache), start + batch_size))
        batch = task.make_batch(cache, idx, rng, gen, False, dev)
        preds.append(predict_points(model, batch["x"], flip_test).numpy())
        targets.append(batch["points"].numpy())
        crops.append(batch["x"])
    pred, target = np.concatenate(preds), np.concatenate(targets)
    metrics = landmark_metrics(pred, target)
    return metrics, {"nme": nme_per_face(pred, target), "pred": pred, "target": target, "crops": torch.cat(crops)}


@torch.no_grad()
def evaluate_box(predict: Callable[[np.ndarray], np.ndarray], input_size: int, samples: list[FaceSample],
                 workers: int = 2, batch_size: int = 64) -> dict:
    """Mean IoU and IoU>=0.5 share on whole letterboxed images; presence accuracy on faces and no-face crops.

    `predict` maps an NCHW float32 batch (numpy) of `input_size` inputs to the box model's (B, 5) output,
    e.g. a runtime backend's `predict` (`tracker.backends`: ONNX Runtime or the torch checkpoint).
    "images" counts the readable photos, "faces" their labelled faces (each one a scored frame); progress
    over the batches goes to stderr (`core.progress`).
    """
    from core.progress import Progress

    task = BoxTask(input_size)
    cache = task.build_cache(samples, workers)
    dev = torch.device("cpu")
    parts = []
    starts = range(0, len(cache), batch_size)
    with Progress("box", 2 * len(starts), "batch") as progress:
        for negative_fraction in (0.0, 1.0):
            rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
            preds, boxes, presence = [], [], []
            for start in starts:
                idx = np.arange(start, min(len(cache), start + batch_size))
                batch = task.make_batch(cache, idx, rng, gen, False, dev, negative_fraction=negative_fraction)
                preds.append(np.asarray(predict(batch["x"].numpy()), dtype=np.float32))
                boxes.append(batch["box"].numpy())
                presence.append(batch["presence"].numpy())
                progress.update()
            parts.append((np.concatenate(preds), np.concatenate(boxes), np.concatenate(presence)))
    faces = box_metrics(*parts[0])
    logits = np.concatenate([parts[0][0][:, 4], parts[1][0][:, 4]])
    accuracy = presence_accuracy(logits, np.concatenate([parts[0][2], parts[1][2]]))
    photos = sum(1 for k in cache.face_index if k == 0)  # one frame per face; a photo's first face counts it
    return {"images": photos, "faces": len(cache), "iou_mean": faces["iou_mean"], "iou_recall": faces["iou_recall"],
            "presence_accuracy": accuracy, "no_face_crops": int((parts[1][2] < 0.5).sum())}

