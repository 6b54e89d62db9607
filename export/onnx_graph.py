"""Write one model to a self-contained ONNX file with dynamic batch and facetrack metadata.

torch is imported by `export_onnx` only: the metadata helpers serve the fp16 and int8 writers too.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import onnx

from core.freshness import SOURCE_KEY, file_sha256
from core.meta import ModelMeta

if TYPE_CHECKING:
    import torch

INPUT_NAME = "input"
OUTPUT_NAME = "output"
DEFAULT_OPSET = 18


def export_onnx(model: torch.nn.Module, meta: ModelMeta, path: str | Path, opset: int = DEFAULT_OPSET) -> Path:
    """Export with torch.onnx's dynamo exporter (batch dimension dynamic; a detector's height and width
    too, in multiples of `meta.pad_multiple`), embed metadata, one file."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().float().cpu()
    batch = torch.export.Dim("batch", min=1, max=1024)
    dims = {0: batch}
    example = torch.zeros(2, 3, meta.input_size, meta.input_size)
    if meta.kind == "detector":
        step = meta.pad_multiple
        cells = meta.input_size // step
        example = torch.zeros(2, 3, (cells - 1) * step, cells * step)  # height != width: both stay dynamic
        dims = {0: batch, 2: step * torch.export.Dim("rows", min=1, max=64),
                3: step * torch.export.Dim("cols", min=1, max=64)}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (example,), dynamo=True, opset_version=opset,
                                    input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                    dynamic_shapes=(dims,), verbose=False, optimize=True)
    tmp = save_with_metadata(program.model_proto, meta, path.with_suffix(path.suffix + ".tmp"))
    tmp.replace(path)
    return path


def add_metadata(proto: onnx.ModelProto, meta: ModelMeta) -> None:
    """Replace the facetrack entries of a graph's metadata_props."""
    keep = [p for p in proto.metadata_props if not p.key.startswith("facetrack.")]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    for key, value in meta.to_props().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def with_precision(meta: ModelMeta, precision: str) -> ModelMeta:
    """The metadata with `precision` (fp32 / fp16 / int8) recorded in its extra entries."""
    return replace(meta, extra={**meta.extra, "precision": precision})


def with_source(meta: ModelMeta, checkpoint: str | Path) -> ModelMeta:
    """The metadata with the sha256 of the checkpoint file it is exported from (`core.freshness`: the
    runtime says when a weights folder's checkpoint no longer matches its graph)."""
    return replace(meta, extra={**meta.extra, SOURCE_KEY: file_sha256(checkpoint)})


def save_with_metadata(proto: onnx.ModelProto, meta: ModelMeta, path: str | Path) -> Path:
    """Write a graph (one self-contained file) after replacing its facetrack metadata with `meta`'s."""
    add_metadata(proto, meta)
    onnx.save_model(proto, str(path), save_as_external_data=False)
    return Path(path)
