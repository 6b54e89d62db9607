"""Export formats: ONE table, name -> exporter function, file suffix, and what else the format offers.

Adding a format (TensorRT engines, say) is one more row: an exporter writing the file and a verifier
that checks it against the PyTorch model. No torch import here (the CLI checks --format cheaply).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from core.errors import InputError


@dataclass(frozen=True)
class ExportFormat:
    """How to write one model in a format and how to check the written file."""

    name: str
    suffix: str  # file suffix, e.g. ".onnx"
    export: Callable  # (model, meta, path, opset|None) -> Path
    verify: Callable  # (path, model, meta, probe) -> export.checks.Check
    variants: tuple[str, ...]  # lower-precision copies it can also write: "fp16", "int8"
    description: str


def _export_onnx(model, meta, path: Path, opset: int | None = None) -> Path:
    from export.onnx_graph import DEFAULT_OPSET, export_onnx

    return export_onnx(model, meta, path, opset or DEFAULT_OPSET)


def _verify_onnx(path: Path, model, meta, probe):
    from export.checks import verify_onnx_fp32

    return verify_onnx_fp32(path, model, meta, probe)


FORMATS: dict[str, ExportFormat] = {
    "onnx": ExportFormat("onnx", ".onnx", _export_onnx, _verify_onnx, ("fp16", "int8"),
                         "ONNX graph (dynamic batch, facetrack metadata), checked on ONNX Runtime CPU"),
}


def get_format(name: str) -> ExportFormat:
    """The row of a format; an unknown name is an InputError listing the known ones."""
    if name not in FORMATS:
        raise InputError(f"unknown export format {name!r}; known formats: {', '.join(FORMATS)}")
    return FORMATS[name]
