"""Checks of a written graph against its PyTorch model: metadata read back, parity, latency, accuracy.

Sessions come from `core.onnx_session.open_session` on the CPU with the runtime's own settings
(threads, no spinning), so the latency in the export table is what the runtime gets per model run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
import torch

from core.errors import InputError, first_line
from core.meta import ModelMeta
from core.onnx_session import open_session
from export.probe import Probe
from export.report import Row
from export.verify import (
    FP32_TOLERANCE,
    VerificationError,
    check_graph,
    latency_ms,
    meta_of,
    opset_of,
    output_diff,
    read_onnx,
    run,
)

RANDOM_ONLY = "n/a (random input only)"


@dataclass
class Check:
    """A verified graph: its table row and its accuracy score on the real inputs (None without faces)."""

    row: Row
    score: float | None


def torch_outputs(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """The PyTorch model's output on a float32 batch."""
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()


def score(meta: ModelMeta, pred: np.ndarray, target: np.ndarray) -> float:
    """Mean NME in % of inter-ocular distance (landmarks) or mean IoU (box) on real inputs."""
    from core.metrics import box_metrics, nme_per_face

    if meta.kind == "box":
        return box_metrics(pred, target, np.ones(len(pred)))["iou_mean"]
    if meta.kind == "detector":  # the best-scoring detection of each image against its largest face
        best = np.asarray(pred)[np.arange(len(pred)), np.argmax(np.asarray(pred)[..., 0], axis=1)]
        return box_metrics(np.concatenate([best[:, 1:5] / meta.input_size, best[:, :1]], axis=1), target,
                           np.ones(len(pred)))["iou_mean"]
    points = np.asarray(pred)[:, : 2 * len(meta.point_names)]  # a face-quality logit may follow the points
    return float(nme_per_face(points, target).mean())


def score_text(meta: ModelMeta, value: float, base: float | None = None, n: int = 0) -> str:
    """The accuracy cell: the score on n real inputs, or (with `base`) its change against the fp32 graph."""
    whole = meta.kind in ("box", "detector")
    name, fmt = ("IoU", "{:.3f}") if whole else ("NME", "{:.2f}")
    if base is None:
        return f"{name} {fmt.format(value)} on {n} real {'images' if whole else 'crops'}"
    return f"{name} {value - base:+.3f} vs fp32 ({fmt.format(value)})"


def cpu_session(path: Path):
    """The graph's ONNX Runtime CPU session, made as the runtime makes it.

    One it cannot load is a VerificationError: it is our own file, so a failed export, not a user mistake.
    """
    try:
        return open_session(path, "cpu").session
    except InputError as exc:
        raise VerificationError(str(exc)) from None


def read_back(path: Path, meta: ModelMeta) -> onnx.ModelProto:
    """onnx.checker, then the graph's metadata read back: VerificationError when it differs from `meta`."""
    check_graph(path)
    proto = read_onnx(path)
    got = meta_of(proto, path.name)
    if replace(got, extra={}).to_props() != replace(meta, extra={}).to_props():
        raise VerificationError(f"{path.name}: metadata read back differs from the checkpoint's")
    return proto


def _latency_and_score(session, meta: ModelMeta, probe: Probe) -> tuple[float, float | None]:
    """Batch-1 median latency in ms and the score on the probe's real inputs (None without any)."""
    ms = latency_ms(session, meta.input_size)
    real = probe.real(meta)
    return ms, score(meta, run(session, real.x), real.target) if len(real) else None


def verify_onnx_fp32(path: Path, model: torch.nn.Module, meta: ModelMeta, probe: Probe) -> Check:
    """Checker, metadata, ORT CPU vs PyTorch (<= FP32_TOLERANCE), latency, accuracy on real faces.

    A VerificationError when any check fails.
    """
    proto = read_back(path, meta)
    session = cpu_session(path)
    worst = 0.0
    for label, x in probe.parity_inputs(meta):
        diff = output_diff(run(session, x), torch_outputs(model, x), meta.kind, meta.input_size)
        if not diff <= FP32_TOLERANCE:
            raise VerificationError(f"{path.name}: ONNX Runtime differs from PyTorch by {diff:.2e} on {label} "
                                    f"input (limit {FP32_TOLERANCE:.0e})")
        worst = max(worst, diff)
    ms, value = _latency_and_score(session, meta, probe)
    accuracy = score_text(meta, value, n=len(probe.real(meta))) if value is not None else RANDOM_ONLY
    return Check(Row(path.name, path.stat().st_size, opset_of(proto), worst, ms, accuracy), value)


def verify_variant(path: Path, model: torch.nn.Module, meta: ModelMeta, probe: Probe, base: float | None,
                   precision: str) -> tuple[Check, str | None]:
    """Checks of an fp16 / int8 graph: differences reported, not limited.

    (check, note) where note says why ONNX Runtime CPU could not run it (the row then has no numbers).
    base: the fp32 graph's score, for the accuracy change. A VerificationError when the metadata read
    back is wrong or the outputs are non-finite or misshapen.
    """
    proto = read_back(path, meta)
    try:
        session = cpu_session(path)
        outputs = [(run(session, x), x) for _, x in probe.parity_inputs(meta)]
    except Exception as exc:
        note = f"{path.name}: ONNX Runtime CPU cannot run this {precision} graph ({first_line(exc)}); " \
               f"written anyway, it is meant for CUDA"
        row = Row(path.name, path.stat().st_size, opset_of(proto), None, None, "n/a (CPU cannot run it)")
        return Check(row, None), note
    worst = max(output_diff(out, torch_outputs(model, x), meta.kind, meta.input_size) for out, x in outputs)
    if not np.isfinite(worst):
        raise VerificationError(f"{path.name}: the {precision} graph gives non-finite or misshapen outputs")
    ms, value = _latency_and_score(session, meta, probe)
    if value is None or base is None:
        accuracy, delta = RANDOM_ONLY, None
    else:
        accuracy, delta = score_text(meta, value, base), value - base
    return Check(Row(path.name, path.stat().st_size, opset_of(proto), worst, ms, accuracy, delta), value), None
