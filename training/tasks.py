"""What differs between training tasks, one class each: data cache, batches, loss, validation metric,
model selection and the epoch log line.

`training.train` talks to a task only through `TrainingTask`; a new task (the multi-face detector is
next) is one more subclass here plus its entry in `TASKS`, with no change to the training loop.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch

from core.errors import InputError
from core.geometry import apply_affine, crop_matrix
from core.metrics import box_metrics, failure_rate, nme_per_face
from core.models import LANDMARK_MODELS, init_points_bias, model_kind
from training.batches import box_batch, landmark_batch
from training.data.cache import FrameCache, LandmarkCache, build_frame_cache, build_landmark_cache
from training.data.samples import FaceSample
from training.losses import POINT_LOSSES, box_loss, point_loss

BOX_CACHE_PER_INPUT = 1.5  # frame cache side per box-model input side


class TrainingTask(ABC):
    """One kind of model to train; `input_size` is the square model input in pixels."""

    name: str = ""
    target_keys: tuple[str, ...] = ()  # batch entries `val_metrics` scores the outputs against

    def __init__(self, input_size: int):
        self.input_size = input_size

    @classmethod
    def from_config(cls, cfg) -> TrainingTask:
        """The task for a `training.train.TrainConfig` (reads only the fields it needs)."""
        return cls(cfg.input_size)

    @abstractmethod
    def build_cache(self, samples: list[FaceSample], workers: int = 2):
        """Decode the samples once into the in-memory cache that `make_batch` draws from."""

    @abstractmethod
    def make_batch(self, cache, idx: np.ndarray, rng: np.random.Generator, gen: torch.Generator, train: bool,
                   device: torch.device) -> dict[str, torch.Tensor]:
        """A batch of items `idx` of the cache: model input "x" plus the targets; augmented if `train`."""

    @abstractmethod
    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(scalar loss, model output that `val_metrics` scores)."""

    @abstractmethod
    def val_metrics(self, outputs: np.ndarray, targets: dict[str, np.ndarray]) -> dict:
        """Validation metrics (the metrics.jsonl keys of this task) of stacked outputs and `target_keys`."""

    @abstractmethod
    def score(self, row: dict) -> float:
        """Model selection from an epoch's metrics row: lower is better."""

    @abstractmethod
    def describe(self, row: dict) -> str:
        """The task's part of the epoch log line."""

    def init_model(self, model: torch.nn.Module, train_cache) -> None:
        """Set starting weights that depend on the data, before a fresh (not resumed) training."""


class LandmarkTask(TrainingTask):
    """Four points on a square face crop; NME in % of the inter-ocular distance selects the model."""

    name = "landmarks"
    target_keys = ("points",)

    def __init__(self, input_size: int, loss: str = "mse"):
        if loss not in POINT_LOSSES:
            raise InputError(f"unknown loss {loss!r}; known: {', '.join(POINT_LOSSES)}")
        super().__init__(input_size)
        self.point_loss = loss

    @classmethod
    def from_config(cls, cfg) -> LandmarkTask:
        return cls(cfg.input_size, cfg.loss)

    def build_cache(self, samples: list[FaceSample], workers: int = 2) -> LandmarkCache:
        return build_landmark_cache(samples, self.input_size, workers)

    def make_batch(self, cache: LandmarkCache, idx, rng, gen, train, device):
        return landmark_batch(cache, idx, self.input_size, rng, gen, train, device)

    def loss(self, model, batch):
        if getattr(model, "has_box_head", False):  # course models with a box head (not under DDP)
            pts, box = model.forward_all(batch["x"])
            loss = point_loss(self.point_loss, pts, batch["points"]) + \
                torch.nn.functional.smooth_l1_loss(box, batch["box"])
        else:
            pts = model(batch["x"])
            loss = point_loss(self.point_loss, pts, batch["points"])
        return loss, pts

    def val_metrics(self, outputs, targets):
        nme = nme_per_face(outputs, targets["points"])
        return {"val_nme": float(nme.mean()), "val_failure": failure_rate(nme)}

    def score(self, row):
        return row["val_nme"]

    def describe(self, row):
        return f"NME {row['val_nme']:.2f}%  fail {100 * row['val_failure']:.1f}%"

    def init_model(self, model, train_cache: LandmarkCache) -> None:
        init_points_bias(model, torch.from_numpy(mean_crop_points(train_cache, self.input_size)))


class BoxTask(TrainingTask):
    """One face box and a presence logit on the letterboxed frame; 1 - IoU + presence error selects."""

    name = "box"
    target_keys = ("box", "presence")

    def build_cache(self, samples: list[FaceSample], workers: int = 2) -> FrameCache:
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


TASKS: dict[str, type[TrainingTask]] = {"landmarks": LandmarkTask, "box": BoxTask}


def task_for(cfg) -> TrainingTask:
    """The task object of a training config; InputError when the model does not fit the task or the loss is unknown."""
    kind = model_kind(cfg.model)
    if kind != cfg.task or cfg.task not in TASKS:
        raise InputError(f"model {cfg.model!r} is a {kind} model, not a {cfg.task} model "
                         f"(landmark models: {', '.join(LANDMARK_MODELS)}; box model: box)")
    return TASKS[cfg.task].from_config(cfg)


def mean_crop_points(cache: LandmarkCache, input_size: int) -> np.ndarray:
    """(4, 2) mean crop-normalised points of the un-augmented training crops."""
    patch = cache.images.shape[1]
    m = crop_matrix(np.array([(patch - 1) / 2, (patch - 1) / 2]), cache.crop_side, input_size)
    return (apply_affine(cache.points.reshape(-1, 2), m).reshape(-1, 4, 2) / input_size).mean(axis=0)
