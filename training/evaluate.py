"""`facetrack eval`: landmark NME on ground-truth face crops and box IoU / presence on whole images."""

from __future__ import annotations

import numpy as np
import torch

from core.metrics import box_metrics, landmark_metrics, nme_per_face, presence_accuracy
from training.data.samples import FaceSample
from training.tasks import BoxTask, LandmarkTask

POINT_SWAP = [1, 0, 2, 3]  # mirror: the eyes change places


@torch.no_grad()
def predict_points(model: torch.nn.Module, x: torch.Tensor, flip_test: bool = False) -> torch.Tensor:
    """Crop-normalised points (B, 2P); with flip_test, averaged with the mirrored crop's prediction."""
    pts = model(x)
    if not flip_test:
        return pts
    mirrored = model(torch.flip(x, dims=[3])).view(len(x), -1, 2)[:, POINT_SWAP]
    # a pixel at x maps to S-1-x; in 0..S/S units with pixel centres at integers that is (S-1)/S - x
    size = x.shape[-1]
    mirrored = torch.stack([(size - 1) / size - mirrored[..., 0], mirrored[..., 1]], dim=-1)
    return (pts.view(len(x), -1, 2) + mirrored).reshape(len(x), -1) / 2


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
def evaluate_box(model: torch.nn.Module, samples: list[FaceSample], workers: int = 2,
                 batch_size: int = 64) -> dict:
    """Mean IoU and IoU>=0.5 share on whole letterboxed images; presence accuracy on faces and no-face crops."""
    task = BoxTask(model.config.input_size)
    cache = task.build_cache(samples, workers)
    dev = torch.device("cpu")
    parts = []
    for negative_fraction in (0.0, 1.0):
        rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
        preds, boxes, presence = [], [], []
        for start in range(0, len(cache), batch_size):
            idx = np.arange(start, min(len(cache), start + batch_size))
            batch = task.make_batch(cache, idx, rng, gen, False, dev, negative_fraction=negative_fraction)
            preds.append(model(batch["x"]).numpy())
            boxes.append(batch["box"].numpy())
            presence.append(batch["presence"].numpy())
        parts.append((np.concatenate(preds), np.concatenate(boxes), np.concatenate(presence)))
    faces = box_metrics(*parts[0])
    logits = np.concatenate([parts[0][0][:, 4], parts[1][0][:, 4]])
    accuracy = presence_accuracy(logits, np.concatenate([parts[0][2], parts[1][2]]))
    return {"images": len(cache), "iou_mean": faces["iou_mean"], "iou_recall": faces["iou_recall"],
            "presence_accuracy": accuracy, "no_face_crops": int((parts[1][2] < 0.5).sum())}


def prediction_sheet(crops: torch.Tensor, pred: np.ndarray, target: np.ndarray, nme: np.ndarray, out_path,
                     n: int = 24, seed: int = 0) -> None:
    """PNG grid of sampled crops: truth as rings, predictions as dots, NME written on each."""
    import cv2

    from core.colors import POINT_COLORS_BGR
    from core.meta import IMAGENET_MEAN, IMAGENET_STD

    rng = np.random.default_rng(seed)
    pick = rng.choice(len(crops), size=min(n, len(crops)), replace=False)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    tiles = []
    for i in pick:
        img = ((crops[i] * std + mean).clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        img = cv2.resize(img[:, :, ::-1], (192, 192), interpolation=cv2.INTER_LINEAR).copy()
        for j, color in enumerate(POINT_COLORS_BGR):
            gx, gy = target[i].reshape(-1, 2)[j] * 192
            px, py = pred[i].reshape(-1, 2)[j] * 192
            cv2.circle(img, (int(gx), int(gy)), 5, color, 1, cv2.LINE_AA)
            cv2.circle(img, (int(px), int(py)), 3, color, -1, cv2.LINE_AA)
        cv2.putText(img, f"NME {nme[i]:.1f}%", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(img)
    while len(tiles) % 6:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[k:k + 6]) for k in range(0, len(tiles), 6)]
    cv2.imwrite(str(out_path), np.vstack(rows))
