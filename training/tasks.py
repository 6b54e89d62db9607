"""What differs between training tasks, one class each: data cache, batches, loss, validation metric,
model selection and the epoch log line.

`training.train` talks to a task only through `TrainingTask`; a new task is one more subclass plus its
entry in `TASKS`, with no change to the training loop (the multi-face detector's is
`training.detector_task.DetectorTask`).
"""

from __future__ import annotations

import numpy as np
import torch

from core.errors import InputError
from core.geometry import apply_affine, crop_matrix
from core.meta import POINT_NAMES
from core.metrics import box_metrics, failure_rate, nme_per_face, quality_metrics
from core.models import LANDMARK_MODELS, init_points_bias, model_kind
from training.batches import box_batch, landmark_batch
from training.conventions import WithConventionOffsets, offsets_text
from training.data.cache import (
    CONTEXT_MARGIN,
    JPEG_SHARE,
    PATCH_MARGIN,
    FrameCache,
    LandmarkCache,
    build_frame_cache,
    build_landmark_cache,
)
from training.data.samples import FaceSample
from training.detector_task import DetectorTask
from training.losses import POINT_LOSSES, bin_loss, box_loss, point_loss
from training.task_base import TrainingTask

BOX_CACHE_PER_INPUT = 1.5  # frame cache side per box-model input side
# Weight of the face-quality BCE beside the point loss (MSE of crop-normalised points, ~1e-4 once trained):
# the quality row of the last layer learns at Adam's pace whatever the weight; a small one keeps the
# shared features the points' own.
QUALITY_WEIGHT = 0.01
# The convention offsets (a few numbers of order 0.01..0.2 inter-ocular distances) learn at this many times
# the model's learning rate, so they settle within the first few hundred steps.
OFFSETS_LR_SCALE = 10.0
# A SimCC model's Gaussian bin labels: std in crop-normalised units (2 px of a 128 px crop, about 5 % of
# the inter-ocular distance there; RTMPose uses 2.5-3 input px). Its cross-entropy (nats, ~2-5) drives the
# model; the point loss on the decoded points (~1e-4) mostly teaches the convention offsets.
BIN_SIGMA = 0.015
BIN_WEIGHT = 1.0


class LandmarkTask(TrainingTask):
    """Four points on a square face crop, in the iBUG-68 convention, and optionally a face-quality logit.

    Faces labelled in another convention are scored after that convention's learned offset
    (`training.conventions.WithConventionOffsets`), in the point loss and in validation alike. With
    `quality` a `negative_fraction` of the training crops hold no face (`training.negatives`): the
    quality logit learns face vs no face (BCE, weight `quality_weight`) and their points train nothing.
    NME in % of the inter-ocular distance, over all validation faces, selects the model.
    """

    name = "landmarks"
    target_keys = ("points", "face", "group")

    def __init__(self, input_size: int, loss: str = "mse", quality: bool = False, negative_fraction: float = 0.25,
                 quality_weight: float = QUALITY_WEIGHT):
        if loss not in POINT_LOSSES:
            raise InputError(f"unknown loss {loss!r}; known: {', '.join(POINT_LOSSES)}")
        super().__init__(input_size)
        self.point_loss = loss
        self.quality = quality
        self.negative_fraction = negative_fraction if quality else 0.0
        self.quality_weight = quality_weight
        self.group_names: list[str] = []  # group ids of batches index this list

    @classmethod
    def from_config(cls, cfg) -> LandmarkTask:
        return cls(cfg.input_size, cfg.loss, getattr(cfg, "quality", False))

    def build_cache(self, samples: list[FaceSample], workers: int = 2, train: bool = False) -> LandmarkCache:
        return build_landmark_cache(samples, self.input_size, workers, CONTEXT_MARGIN if self.quality else PATCH_MARGIN,
                                    JPEG_SHARE if train else 0.0)

    def group_id(self, name: str) -> int:
        """The index of group `name` in `group_names` (added when new)."""
        if name not in self.group_names:
            self.group_names.append(name)
        return self.group_names.index(name)

    def make_batch(self, cache: LandmarkCache, idx, rng, gen, train, device):
        batch = landmark_batch(cache, idx, self.input_size, rng, gen, train, device, self.negative_fraction)
        ids = [self.group_id(cache.groups[i]) for i in batch["item"].tolist()]
        batch["group"] = torch.tensor(ids, dtype=torch.long, device=device)
        return batch

    def train_module(self, model):
        return WithConventionOffsets(model)

    def param_groups(self, trainable, weight_decay):
        offsets = list(trainable.offsets.parameters())
        ids = {id(p) for p in offsets}
        rest = [p for p in trainable.parameters() if id(p) not in ids]
        return [{"params": rest, "weight_decay": weight_decay},
                {"params": offsets, "weight_decay": 0.0, "lr_scale": OFFSETS_LR_SCALE}]

    def loss(self, model, batch):
        points, quality, box, bins = model(batch["x"], batch["convention"], batch["flipped"])
        face = batch["face"] > 0.5
        loss = point_loss(self.point_loss, points[face], batch["points"][face]) if face.any() else points.sum() * 0
        if bins is not None and face.any():
            logits_x, logits_y, shift, centers = bins
            own = (batch["points"].reshape(len(points), -1, 2) - shift)[face]  # targets in the model's convention
            loss = loss + BIN_WEIGHT * bin_loss(logits_x[face], logits_y[face], own, centers, BIN_SIGMA)
        if box is not None and face.any():
            loss = loss + torch.nn.functional.smooth_l1_loss(box[face], batch["box"][face])
        if quality is None:
            return loss, points
        loss = loss + self.quality_weight * torch.nn.functional.binary_cross_entropy_with_logits(quality, batch["face"])
        return loss, torch.cat([points, quality[:, None]], dim=1)

    def val_metrics(self, outputs, targets):
        face = targets["face"] > 0.5
        n_values = targets["points"].shape[1]
        nme = nme_per_face(outputs[face, :n_values], targets["points"][face])
        groups = targets["group"][face]
        row = {"val_nme": float(nme.mean()), "val_failure": failure_rate(nme),
               "val_nme_by_group": {self.group_names[g]: float(nme[groups == g].mean()) for g in np.unique(groups)}}
        if self.quality:
            row.update({f"val_{k}": v for k, v in quality_metrics(outputs[:, n_values], targets["face"]).items()})
        return row

    def score(self, row):
        return row["val_nme"]

    def describe(self, row):
        text = f"NME {row['val_nme']:.2f}%  fail {100 * row['val_failure']:.1f}%"
        if "val_quality_accuracy" in row:
            text += f"  quality acc {100 * row['val_quality_accuracy']:.1f}% AUC {row['val_quality_auc']:.3f}"
        groups = row.get("val_nme_by_group", {})
        if len(groups) > 1:
            text += "  [" + " ".join(f"{g or '?'} {v:.2f}" for g, v in sorted(groups.items())) + "]"
        return text

    def init_model(self, model, train_cache: LandmarkCache) -> None:
        positive = 1.0 - self.negative_fraction
        logit = float(np.log(positive / max(1.0 - positive, 1e-6))) if self.quality else 0.0
        init_points_bias(model, torch.from_numpy(mean_crop_points(train_cache, self.input_size)), logit)

    def checkpoint_extra(self, trainable):
        return {"convention_offsets": trainable.offsets.as_dict()}

    def restore_extra(self, trainable, state):
        trainable.offsets.load_dict(state.get("convention_offsets", {}))

    def closing_lines(self, trainable):
        return ["learned convention offsets (face frame of the predicted points: dx along the eye line, dy "
                "towards the mouth, in inter-ocular distances; ibug68 is the model's own):",
                offsets_text(trainable.offsets.as_dict(), POINT_NAMES)]


class BoxTask(TrainingTask):
    """One face box and a presence logit on the letterboxed frame; 1 - IoU + presence error selects."""

    name = "box"
    target_keys = ("box", "presence")

    def build_cache(self, samples: list[FaceSample], workers: int = 2, train: bool = False) -> FrameCache:
        return build_frame_cache(samples, int(self.input_size * BOX_CACHE_PER_INPUT), workers)

    def make_batch(self, cache: FrameCache, idx, rng, gen, train, device, negative_fraction: float = 0.25):
        return box_batch(cache, idx, self.input_size, rng, gen, train, device, negative_fraction)

    def loss(self, model, batch):
        out = model(batch["x"])
        return box_loss(out, batch["box"], batch["presence"]), out

    def val_metrics(self, outputs, targets):
        return box_metrics(outputs, targets["box"], targets["presence"])

    def score(self, row):
        return (1 - row["iou_mean"]) + (1 - row["presence_accuracy"])

    def describe(self, row):
        return f"IoU {row['iou_mean']:.3f}  presence {100 * row['presence_accuracy']:.1f}%"


TASKS: dict[str, type[TrainingTask]] = {"landmarks": LandmarkTask, "box": BoxTask, "detector": DetectorTask}


def task_for(cfg) -> TrainingTask:
    """The task object of a training config; InputError when the model does not fit the task or the loss is unknown."""
    kind = model_kind(cfg.model)
    if kind != cfg.task or cfg.task not in TASKS:
        raise InputError(f"model {cfg.model!r} is a {kind} model, not a {cfg.task} model "
                         f"(landmark models: {', '.join(LANDMARK_MODELS)}; box model: box; detector: centernet)")
    return TASKS[cfg.task].from_config(cfg)


def mean_crop_points(cache: LandmarkCache, input_size: int) -> np.ndarray:
    """(4, 2) mean crop-normalised points of the un-augmented training crops."""
    m = crop_matrix(np.array([cache.center, cache.center]), cache.crop_side, input_size)
    return (apply_affine(cache.points.reshape(-1, 2), m).reshape(-1, 4, 2) / input_size).mean(axis=0)
