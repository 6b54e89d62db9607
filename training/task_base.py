"""The interface between the training loop and what it trains (`TrainingTask`): data cache, batches,
loss, validation metric, model selection and the epoch log line. The tasks: `training.tasks`
(landmarks, box) and `training.detector_task` (the multi-face detector)."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch

from training.data.samples import FaceSample


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
    def build_cache(self, samples: list[FaceSample], workers: int = 2, train: bool = False):
        """Decode the samples once into the in-memory cache that `make_batch` draws from (`train`: the
        training split's, which may hold augmented pixels)."""

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

    def train_module(self, model: torch.nn.Module) -> torch.nn.Module:
        """What the optimiser trains and `loss` is given: the model, or the model with training-only parts."""
        return model

    def param_groups(self, trainable: torch.nn.Module, weight_decay: float) -> list[dict]:
        """The optimiser's parameter groups of `train_module`'s result (their order is in last.pt)."""
        return [{"params": list(trainable.parameters()), "weight_decay": weight_decay}]

    def checkpoint_extra(self, trainable: torch.nn.Module) -> dict:
        """What checkpoints keep beside the model's weights (plain values)."""
        return {}

    def restore_extra(self, trainable: torch.nn.Module, state: dict) -> None:
        """Load `checkpoint_extra`'s values from a checkpoint dict (missing ones keep their start)."""

    def closing_lines(self, trainable: torch.nn.Module) -> list[str]:
        """What the end of a training prints beyond the summary."""
        return []
