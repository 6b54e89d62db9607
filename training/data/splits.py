"""Seeded 80/10/10 splits by identity: no person or photo lands in two splits."""

from __future__ import annotations

from collections import Counter

import numpy as np

from training.data.samples import FaceSample

SPLITS = ("train", "val", "test")


def split_by_identity(samples: list[FaceSample], seed: int = 0,
                      fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
                      merged: dict[str, str] | None = None) -> dict[str, list[FaceSample]]:
    """Assign whole identities to train/val/test so each gets about its fraction of faces.

    An identity is `source:identity`; `merged` maps some of them to a shared key (look-alike copies of
    one photo under different names, `training.data.lookalike.merge_lookalike_identities`), so they
    land in one split. Without `merged` the split is the one the shipped models were trained on.
    """
    merged = merged or {}

    def key(s: FaceSample) -> str:
        k = f"{s.source}:{s.identity}"
        return merged.get(k, k)

    counts = Counter(key(s) for s in samples)
    identities = sorted(counts)
    order = np.random.default_rng(seed).permutation(len(identities))
    total = sum(counts.values())
    bounds = np.cumsum(fractions) * total
    assignment: dict[str, str] = {}
    running = 0
    for idx in order:
        ident = identities[idx]
        split = "train" if running < bounds[0] else "val" if running < bounds[1] else "test"
        assignment[ident] = split
        running += counts[ident]
    out: dict[str, list[FaceSample]] = {name: [] for name in SPLITS}
    for s in samples:
        out[assignment[key(s)]].append(s)
    return out


def select_split(samples: list[FaceSample], split: str, seed: int = 0) -> list[FaceSample]:
    """One split ('train', 'val', 'test') or 'all'."""
    if split == "all":
        return list(samples)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected all, train, val or test")
    return split_by_identity(samples, seed)[split]
