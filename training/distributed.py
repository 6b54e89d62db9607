"""Distributed training under `torchrun`: which process this is, its share of each epoch, agreement, teardown.

One process per GPU (or CPU, with gloo); `WORLD_SIZE` unset or 1 is a plain single-process run, where
every function here is a no-op. Rank 0 is the main process: it alone evaluates, logs and writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Dist:
    """This process's place in the run: rank of world; `epoch_seed` is the shuffle seed all ranks share."""

    rank: int = 0
    world: int = 1
    epoch_seed: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def epoch_order(self, n: int, rng: np.random.Generator, weights: np.ndarray | None = None) -> np.ndarray:
        """This rank's share of a shuffled 0..n-1: every rank shuffles alike and takes every world-th item.

        `weights` (n,) >= 0: how often each item comes in an epoch on average (`weighted_items`); None: once.
        """
        seed = int(rng.integers(1 << 31)) if self.world == 1 else self.epoch_seed
        shuffle = np.random.default_rng(seed)
        items = np.arange(n) if weights is None else weighted_items(weights, shuffle)
        return shuffle.permutation(items)[self.rank::self.world]

    def steps_per_epoch(self, n: int, batch_size: int) -> int:
        """Optimiser steps per epoch, the same on every rank (at least 1)."""
        return max(1, n // (batch_size * self.world))


def weighted_items(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Item indices for one epoch where item i comes floor(w_i) times, and once more with probability
    frac(w_i): on average w_i times (a weight of 2 doubles an item's share, 0.5 halves it). Unshuffled."""
    w = np.asarray(weights, dtype=np.float64)
    counts = np.floor(w).astype(np.int64) + (rng.random(len(w)) < w - np.floor(w))
    return np.repeat(np.arange(len(w)), counts)


def init_distributed(device: torch.device) -> Dist:
    """Join the process group torchrun set up (nccl on CUDA, gloo on CPU), or a single-process Dist."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as tdist

    if not tdist.is_initialized():
        tdist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(tdist.get_rank(), tdist.get_world_size())


def wrap_model(model: torch.nn.Module, dist: Dist) -> torch.nn.Module:
    """The model to train: DistributedDataParallel over all ranks, or the model itself when alone."""
    if dist.world == 1:
        return model
    # course models with a box head train only their points under DDP: the box head's weights get no gradient
    return torch.nn.parallel.DistributedDataParallel(model,
                                                     find_unused_parameters=getattr(model, "has_box_head", False))


def agree(flag: bool, dist: Dist) -> bool:
    """Rank 0's decision, shared with every rank (so all stop at the same epoch)."""
    if dist.world == 1:
        return flag
    import torch.distributed as tdist

    t = torch.tensor([int(flag)])
    tdist.broadcast(t, 0)
    return bool(t.item())


def finish(dist: Dist) -> None:
    """Wait for every rank, then leave the process group (no-op when alone)."""
    if dist.world == 1:
        return
    import torch.distributed as tdist

    tdist.barrier()
    tdist.destroy_process_group()
