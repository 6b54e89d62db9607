"""Training the multi-face detector (`core.detector_net.CenterFaceNet`): composed images in
(`training.compose`), CenterNet targets and losses, AP at IoU 0.5 to select the model.

Targets on the stride-4 grid, per face (box = the face square of its four points,
`core.geometry.face_square_from_points`, the one box rule for every set):
- heat: a Gaussian of std max(MIN_SIGMA_CELLS, side / SIGMA_PER_SIDE cells) around the face's centre
  cell (1 there), the maximum where faces overlap; CenterNet's penalty-reduced focal loss (alpha 2,
  beta 4; Zhou et al. 2019, eq. 1), normalised by the number of faces;
- at the centre cell only: log(side / stride), the sub-cell offset of the centre, and the points as
  offsets from the centre in face sides; L1 each, averaged over faces.
"""

from __future__ import annotations

import numpy as np
import torch

from core.detector_net import STRIDE, decode_maps
from core.geometry import box_from_square, face_square_from_points
from core.metrics import average_precision, match_detections
from core.postprocess import grid_detections
from training.augment import normalize
from training.compose import compose
from training.data.faces_cache import FacesCache, build_faces_cache
from training.data.samples import FaceSample
from training.task_base import TrainingTask

# Composed training images are this square (the net is fully convolutional). The detector is
# scale-specific: it learns faces of `training.compose.FACE_SIDE_PX` only, and the runtime finds larger
# ones on an image pyramid (`tracker.detect.GridDetector`), so small images suffice.
TRAIN_SIZE = 128
MAX_FACES = 32  # validation targets are padded to this many faces per image
VAL_IMAGES = 400
MIN_SIGMA_CELLS = 0.7
SIGMA_PER_SIDE = 8.0  # heat std = face side (cells) / this
SIZE_WEIGHT, OFFSET_WEIGHT, POINTS_WEIGHT = 1.0, 1.0, 2.0
# The validation threshold behind the recall and false-positive figures (the runtime's default is
# chosen on validation: scripts/, docs/experiments.md)
VAL_MIN_SCORE = 0.4
NMS_IOU = 0.4


def face_targets(faces: list[np.ndarray], size: int) -> dict[str, np.ndarray]:
    """CenterNet targets of a batch: `faces` holds each image's (K, 4, 2) points (image px). Returns heat
    (B, 1, h, w) float32, and per face: index (F, 3) int64 (image, row, col of its centre cell), side_log
    (F,), offset (F, 2), points (F, 2P) float32."""
    cells = size // STRIDE
    heat = np.zeros((len(faces), 1, cells, cells), np.float32)
    yy, xx = np.mgrid[0:cells, 0:cells].astype(np.float32)
    index, side_log, offset, points = [], [], [], []
    for b, image_faces in enumerate(faces):
        for face in image_faces:
            center, side = face_square_from_points(face)
            c = center / STRIDE
            col, row = int(np.clip(np.floor(c[0]), 0, cells - 1)), int(np.clip(np.floor(c[1]), 0, cells - 1))
            sigma = max(MIN_SIGMA_CELLS, side / STRIDE / SIGMA_PER_SIDE)
            g = np.exp(-((xx - col) ** 2 + (yy - row) ** 2) / (2 * sigma * sigma))
            np.maximum(heat[b, 0], g, out=heat[b, 0])
            index.append((b, row, col))
            side_log.append(np.log(max(side, 1.0) / STRIDE))
            offset.append(c - (col, row))
            points.append(((face - center) / max(side, 1.0)).reshape(-1))
    n_pts = 2 * (faces[0].shape[1] if faces and len(faces[0]) else 4)
    return {"heat": heat, "index": np.array(index, np.int64).reshape(-1, 3),
            "side_log": np.array(side_log, np.float32), "offset": np.array(offset, np.float32).reshape(-1, 2),
            "points": np.array(points, np.float32).reshape(-1, n_pts)}


def focal_loss(logits: torch.Tensor, heat: torch.Tensor, n_faces: int) -> torch.Tensor:
    """CenterNet's penalty-reduced pixel-wise focal loss (alpha 2, beta 4), over max(1, faces)."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = heat.ge(1.0 - 1e-6).float()
    pos_loss = -torch.log(p) * (1 - p) ** 2 * pos
    neg_loss = -torch.log(1 - p) * p ** 2 * (1 - heat) ** 4 * (1 - pos)
    return (pos_loss.sum() + neg_loss.sum()) / max(n_faces, 1)


def detector_loss(maps: torch.Tensor, targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """Focal heat loss + L1 of log side, offset and points at the faces' centre cells (module docstring)."""
    index = targets["index"]
    loss = focal_loss(maps[:, 0:1], targets["heat"], len(index))
    if len(index):
        at = maps[index[:, 0], :, index[:, 1], index[:, 2]]  # (F, C)
        loss = loss + SIZE_WEIGHT * (at[:, 1] - targets["side_log"]).abs().mean()
        loss = loss + OFFSET_WEIGHT * (at[:, 2:4] - targets["offset"]).abs().mean()
        loss = loss + POINTS_WEIGHT * (at[:, 4:] - targets["points"]).abs().mean()
    return loss


def boxes_of(faces: np.ndarray) -> np.ndarray:
    """(K, 4) xyxy face squares of (K, 4, 2) points."""
    return np.array([box_from_square(*face_square_from_points(f)) for f in faces], np.float32).reshape(-1, 4)


def detection_metrics(outputs: np.ndarray, boxes: np.ndarray, counts: np.ndarray, min_score: float = VAL_MIN_SCORE,
                      iou: float = 0.5) -> dict:
    """AP at IoU `iou` (all scores above 0.05), recall and false detections per image at `min_score`
    (0..1 shares), false detections per image without faces, of decoded outputs (B, N, 5 + 2P) against
    padded true boxes (B, MAX_FACES, 4) and their counts (B,)."""
    scores, hits, n_truth = [], [], 0
    found, false_at, false_empty, empty = 0, 0, 0, 0
    for out, truth, k in zip(outputs, boxes, (int(c) for c in counts)):
        dets = grid_detections(out, np.array([[1.0, 0, 0], [0, 1.0, 0]]), 10**6, 10**6, 0.05, NMS_IOU)
        pred = np.array([d.box_xyxy for d in dets], np.float32).reshape(-1, 4)
        score = np.array([d.score for d in dets], np.float32)
        hit, _ = match_detections(pred, score, truth[:k])
        scores.append(score)
        hits.append(hit)
        n_truth += k
        strong = score >= min_score
        _, matched = match_detections(pred[strong], score[strong], truth[:k])
        found += int(matched.sum())
        false_at += int((~hit[strong]).sum())
        if k == 0:
            empty += 1
            false_empty += int(strong.sum() > 0)
    ap = average_precision(np.concatenate(scores), np.concatenate(hits), n_truth) if scores else 0.0
    return {"ap50": float(ap), "recall": float(found / max(n_truth, 1)),
            "false_per_image": float(false_at / max(len(outputs), 1)),
            "false_on_empty": float(false_empty / max(empty, 1))}


class DetectorTask(TrainingTask):
    """Faces (boxes, scores, coarse points) on composed images; 1 - AP@0.5 on validation selects."""

    name = "detector"
    target_keys = ("boxes", "counts")

    def build_cache(self, samples: list[FaceSample], workers: int = 2, train: bool = False) -> FacesCache:
        cache = build_faces_cache(samples, workers)
        if not train:
            cache.items = min(VAL_IMAGES, max(1, len(cache.patches)))
        return cache

    def make_batch(self, cache: FacesCache, idx, rng, gen, train, device):
        images, faces = [], []
        for i in idx:
            # validation images are the same every epoch: each item's own seed
            r = rng if train else np.random.default_rng(int(i))
            image, points = compose(cache, r, TRAIN_SIZE)
            images.append(image)
            faces.append(points)
        x = torch.from_numpy(np.stack(images)[..., ::-1].copy()).to(device).permute(0, 3, 1, 2).float() / 255.0
        targets = face_targets(faces, TRAIN_SIZE)
        batch = {"x": normalize(x), **{k: torch.from_numpy(v).to(device) for k, v in targets.items()}}
        boxes = np.full((len(faces), MAX_FACES, 4), np.nan, np.float32)
        for b, f in enumerate(faces):
            boxes[b, :min(len(f), MAX_FACES)] = boxes_of(f)[:MAX_FACES]
        batch["boxes"] = torch.from_numpy(boxes)
        batch["counts"] = torch.tensor([min(len(f), MAX_FACES) for f in faces], dtype=torch.float32)
        return batch

    def train_module(self, model):
        # channels-last runs the depthwise convolutions about 1.5x faster on CPU (and suits tensor cores)
        return model.to(memory_format=torch.channels_last)

    def loss(self, model, batch):
        core = model.module if hasattr(model, "module") else model
        maps = core.maps(batch["x"].contiguous(memory_format=torch.channels_last))
        loss = detector_loss(maps, batch)
        return loss, (decode_maps(maps.detach()) if not core.training else maps.detach()[:, :1])

    def val_metrics(self, outputs, targets):
        return detection_metrics(outputs, targets["boxes"], targets["counts"])

    def score(self, row):
        return 1.0 - row["ap50"]

    def describe(self, row):
        return (f"AP50 {100 * row['ap50']:.1f}%  recall {100 * row['recall']:.1f}%  "
                f"false/img {row['false_per_image']:.3f}  false on empty {100 * row['false_on_empty']:.1f}%")
