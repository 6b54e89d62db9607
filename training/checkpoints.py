"""A training run's checkpoints: `last.pt` (resumable: weights, optimizer, epoch, history) and `best.pt`
(the weights of the best epoch so far, with its metrics row), and the checks `--resume` makes.

Both are plain-dict checkpoints from `core.models.make_checkpoint`, written atomically, so an
interrupted write never leaves half a file; `train_config` is the run's TrainConfig as a dict. A dry run
(`dry_run=True`, `train --dry-run`) builds and serialises each checkpoint in memory and reads it back
(the same `weights_only` load), but writes no file.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

import torch

from core.errors import InputError, first_line
from core.models import make_checkpoint, read_checkpoint, save_checkpoint

RESUME_KEYS = ("optimizer", "epoch", "elapsed_s")  # what last.pt needs beyond the weights
# a resumed run may not change these; the value a last.pt without the key was trained with (None: any)
MUST_MATCH = {"model": None, "task": None, "input_size": None, "quality": False, "split_lookalikes": False}


class RunCheckpoints:
    """last.pt and best.pt of the run folder `out`, for model `model_name` trained with `train_config`."""

    def __init__(self, out: Path, model_name: str, train_config: dict, data_terms: str | None = None,
                 dry_run: bool = False):
        self.last_path, self.best_path = Path(out) / "last.pt", Path(out) / "best.pt"
        self.model_name = model_name
        self.train_config = train_config
        self.data_terms = data_terms  # the metadata's terms of use (core.meta.data_terms of the data)
        self.dry_run = dry_run  # checked in memory, never written

    def _write(self, path: Path, ckpt: dict) -> None:
        if not self.dry_run:
            save_checkpoint(path, ckpt)
            return
        buffer = io.BytesIO()
        torch.save(ckpt, buffer)
        buffer.seek(0)
        torch.load(buffer, map_location="cpu", weights_only=True)  # what read_checkpoint would load

    def _checkpoint(self, model: torch.nn.Module, **info) -> dict:
        ckpt = make_checkpoint(self.model_name, model, **info)
        if self.data_terms:
            ckpt["meta"]["data_terms"] = self.data_terms
        return ckpt

    def resume_state(self, log: Callable[[str], None] = print) -> dict | None:
        """last.pt's checkpoint dict to continue from, or None (logged) when there is none yet.

        Raises InputError (one line, naming the file) when last.pt is unreadable, not resumable, or
        from a run with another model, task or input size.
        """
        if not self.last_path.is_file():
            log(f"--resume: no {self.last_path} yet, starting fresh")
            return None
        try:
            state = read_checkpoint(self.last_path)
        except InputError as exc:
            raise InputError(f"{exc}; delete it or train without --resume") from None
        missing = [k for k in RESUME_KEYS if k not in state]
        if missing:
            raise InputError(f"{self.last_path}: not a resumable checkpoint (no {', '.join(missing)}); "
                             "train without --resume")
        saved = dict(state.get("train_config", {}))
        for key, old_default in MUST_MATCH.items():
            if key not in saved and old_default is not None and key in self.train_config:
                saved[key] = old_default
            if key in saved and saved[key] != self.train_config.get(key):
                raise InputError(f"{self.last_path}: was trained with {key}={saved[key]!r}, "
                                 f"not {self.train_config.get(key)!r}")
        return state

    def restore(self, state: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer
                ) -> tuple[int, float, list[dict]]:
        """Load weights (fp32) and optimizer state from `state`; returns (epochs done, seconds trained, history).

        Raises InputError when the weights or optimizer state do not fit this model.
        """
        try:
            model.load_state_dict({k: v.float() if v.is_floating_point() else v
                                   for k, v in state["state_dict"].items()})
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise InputError(f"{self.last_path}: does not fit this model or optimizer "
                             f"({first_line(exc, 160)}); train without --resume") from None
        return int(state["epoch"]), float(state["elapsed_s"]), list(state.get("history", []))

    def save_last(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, epoch: int, elapsed_s: float,
                  history: list[dict], extra: dict | None = None) -> None:
        """Write last.pt (a dry run: only check it): the weights as they are after `epoch` epochs, with what
        --resume needs and the task's `extra` entries (e.g. `convention_offsets`)."""
        self._write(self.last_path, self._checkpoint(
            model, optimizer=optimizer.state_dict(), epoch=epoch, elapsed_s=elapsed_s,
            history=history, train_config=self.train_config, **(extra or {})))

    def save_best(self, model: torch.nn.Module, epoch: int, row: dict, elapsed_s: float,
                  extra: dict | None = None) -> None:
        """Write best.pt (a dry run: only check it): the weights after `epoch` epochs, that epoch's metrics
        row and the task's `extra`."""
        self._write(self.best_path, self._checkpoint(model, epoch=epoch, metrics=row,
                                                         train_config=self.train_config, elapsed_s=elapsed_s,
                                                         **(extra or {})))
