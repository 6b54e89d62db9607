"""What a `--weights` value names: a weights folder, a training run folder, or one checkpoint file.

A weights folder has a manifest.json (`core.manifest`). A training run folder (`facetrack train ... --out
RUN`: best.pt, last.pt, metrics.jsonl, no manifest) stands for its best.pt; a file stands for itself. A
checkpoint replaces the one model it holds (its kind, read from the file, decides which: `tracker.backends.
open_models`), and the other model comes from the shipped weights, so a freshly trained model runs without
copying it anywhere. No torch here: paths only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.errors import InputError
from core.manifest import MANIFEST, default_weights_dir

RUN_CHECKPOINT = "best.pt"  # what a training run folder stands for (training.checkpoints.RunCheckpoints)


@dataclass(frozen=True)
class WeightsSource:
    """The weights folder the models come from, and a training checkpoint that stands in for one of them."""

    folder: Path  # a folder with manifest.json (checked when it is read)
    checkpoint: Path | None = None  # a checkpoint file replacing the model of its kind; None: the folder's own


def weights_source(path: str | Path | None) -> WeightsSource:
    """The WeightsSource of a --weights value: None is the shipped weights folder; a folder with
    manifest.json is that weights folder; a folder without one but with best.pt (a training run) and a
    file (a checkpoint, e.g. a run's best.pt or last.pt) are a checkpoint, run with the shipped weights
    for the other model. InputError for a path that does not exist, or a folder that is neither (a run
    folder that has no best.pt yet included)."""
    if path is None:
        return WeightsSource(default_weights_dir())
    given = Path(path)
    if given.is_file():
        return WeightsSource(default_weights_dir(), given)
    if not given.is_dir():
        raise InputError(f"{given}: weights folder not found (pass --weights DIR: a weights folder, a training "
                         f"run folder or a checkpoint file)")
    if (given / MANIFEST).is_file():
        return WeightsSource(given)
    if (given / RUN_CHECKPOINT).is_file():
        return WeightsSource(default_weights_dir(), given / RUN_CHECKPOINT)
    if (given / "last.pt").is_file():
        raise InputError(f"{given}: a training run without {RUN_CHECKPOINT} yet (written after its first "
                         f"validated epoch); pass --weights {given / 'last.pt'} for its latest weights")
    raise InputError(f"{given}: no {MANIFEST} and no {RUN_CHECKPOINT}; not a facetrack weights folder or "
                     "training run")
