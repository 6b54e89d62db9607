"""What an export writes: one graph per checkpoint the weights manifest lists, and each one's metadata."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from core.errors import InputError, first_line
from core.manifest import BOX_MODEL, DETECTOR_MODELS, FACE_FINDERS, MANIFEST, landmark_model_name
from core.meta import ModelMeta

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Planned:
    """One checkpoint to export and the file stem it becomes."""

    name: str
    kind: str
    checkpoint: Path
    stem: str


def plan(weights_dir: Path, manifest: dict) -> tuple[list[Planned], list[str]]:
    """What to export: the default landmark model as `landmarks`, other landmark models as
    `landmarks-<name>`, the box model as `box`; plus notes on what is missing."""
    ckpts = manifest.get("checkpoints")
    source = weights_dir / MANIFEST
    if not isinstance(ckpts, dict) or not ckpts:
        raise InputError(f"{source}: lists no checkpoints to export")
    for name, file in ckpts.items():
        if not _SAFE_NAME.match(str(name)) or not isinstance(file, str):
            raise InputError(f"{source}: bad checkpoints entry {name!r}: {file!r}")
        if not (weights_dir / file).is_file():
            raise InputError(f"{weights_dir / file}: listed in {source} but missing")
    items, notes = [], []
    landmarks = [n for n in ckpts if n not in FACE_FINDERS]
    if landmarks:
        default = landmark_model_name(manifest, None)
        if default not in ckpts:
            raise InputError(f"{source}: default_landmarks {default!r} has no checkpoint "
                             f"(have: {', '.join(sorted(ckpts))})")
        items.append(Planned(default, "landmarks", weights_dir / ckpts[default], "landmarks"))
        items += [Planned(n, "landmarks", weights_dir / ckpts[n], f"landmarks-{n}")
                  for n in sorted(landmarks) if n != default]
    else:
        notes.append(f"{source} lists no landmark checkpoint: no landmarks graph written")
    if BOX_MODEL in ckpts:
        items.append(Planned(BOX_MODEL, "box", weights_dir / ckpts[BOX_MODEL], "box"))
    else:
        notes.append(f"{source} lists no '{BOX_MODEL}' checkpoint: no box graph written")
    items += [Planned(n, "detector", weights_dir / ckpts[n], "detector") for n in DETECTOR_MODELS if n in ckpts]
    return items, notes


def checkpoint_meta(ckpt: dict, model: torch.nn.Module, kind: str, path: Path) -> ModelMeta:
    """The checkpoint's stored metadata (or the model's standard one), checked against the model."""
    from core.models import aligned_meta, model_meta

    meta = model_meta(ckpt["model"], model.config)
    stored = ckpt.get("meta")
    if isinstance(stored, dict):
        try:
            meta = aligned_meta(ModelMeta.from_dict(stored), model)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{path}: malformed metadata in checkpoint ({first_line(exc)})") from None
    if meta.kind != kind or meta.input_size != model.config.input_size:
        raise InputError(f"{path}: checkpoint metadata ({meta.kind}, input {meta.input_size}) does not match "
                         f"its model ({kind}, input {model.config.input_size})")
    return meta
