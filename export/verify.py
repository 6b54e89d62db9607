"""Checking exported ONNX graphs: read them with their metadata, run sessions on them, time them.

Sessions come from `core.onnx_session.open_session` (the runtime's), so the latency measured here is
the runtime's. No torch here.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnx

from core.errors import FacetrackError, InputError, first_line
from core.meta import ModelMeta
from core.onnx_session import graph_meta

FP32_TOLERANCE = 1e-4  # max |ONNX - PyTorch| an fp32 graph may differ by


class VerificationError(FacetrackError):
    """An exported graph that is invalid, differs from its PyTorch model or loses too much accuracy."""


def read_onnx(path: str | Path) -> onnx.ModelProto:
    """Parse an ONNX file; a missing, truncated or foreign file is an InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: ONNX model not found")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise InputError(f"{path}: not a readable ONNX model ({first_line(exc)})") from None
    if not proto.graph.node or not proto.graph.input or not proto.graph.output:
        raise InputError(f"{path}: not an ONNX model (no graph inside)")
    return proto


def _dims(value: onnx.ValueInfoProto) -> list:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in value.type.tensor_type.shape.dim]


def meta_of(proto: onnx.ModelProto, source: str) -> ModelMeta:
    """The facetrack metadata of a parsed graph, checked against its input and output shapes
    (`core.onnx_session.graph_meta`, the check every session gets); a MetadataError when it fails."""
    initializers = {t.name for t in proto.graph.initializer}
    inputs = [_dims(v) for v in proto.graph.input if v.name not in initializers]
    return graph_meta({p.key: p.value for p in proto.metadata_props}, inputs, _dims(proto.graph.output[0]), source)


def load_onnx_meta(path: str | Path) -> ModelMeta:
    """The ModelMeta of a facetrack ONNX file: InputError when unreadable, MetadataError when not facetrack's."""
    return meta_of(read_onnx(path), str(path))


def opset_of(proto: onnx.ModelProto) -> int | None:
    """The default-domain opset a graph uses."""
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)


def check_graph(path: str | Path) -> None:
    """onnx.checker with shape inference; a failure is a VerificationError."""
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:
        raise VerificationError(f"{Path(path).name}: ONNX checker rejects it ({first_line(exc)})") from None


def run(session, x: np.ndarray) -> np.ndarray:
    """The first output of a one-input session on a float32 batch."""
    name = session.get_inputs()[0].name
    return session.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| (inf when shapes differ or values are not finite)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    diff = np.abs(a - b)
    return float(diff.max()) if np.isfinite(diff).all() else float("inf")


# A detector's rows compared: those scoring above this in either output (the cells a face could come from)
DETECTION_ROW_MIN_SCORE = 0.05  # the lowest score that counts for AP (facetrack.detector_eval.AP_MIN_SCORE)


def output_diff(a: np.ndarray, b: np.ndarray, kind: str, input_size: int) -> float:
    """How far two outputs of one model differ: `max_abs_diff`, except for a detector (B, N, 5 + 2P): its
    scores count where either output scores at least DETECTION_ROW_MIN_SCORE (below it a cell is never a
    detection, and the 3x3-peak test of an untrained, flat heatmap flips on rounding), and its box and
    point columns (input pixels) in units of `input_size`, on the rows both score that high."""
    if kind != "detector":
        return max_abs_diff(a, b)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 3 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("inf")
    sa = np.where(a[..., 0] >= DETECTION_ROW_MIN_SCORE, a[..., 0], 0.0)
    sb = np.where(b[..., 0] >= DETECTION_ROW_MIN_SCORE, b[..., 0], 0.0)
    worst = float(np.abs(sa - sb).max())
    both = (sa > 0) & (sb > 0)
    if both.any():
        worst = max(worst, float(np.abs(a[..., 1:][both] - b[..., 1:][both]).max()) / input_size)
    return worst


def latency_ms(session, input_size: int, runs: int = 30, warmup: int = 3, budget_s: float = 2.0) -> float:
    """Median wall time of one batch-1 run in ms (fewer runs when a run is slow)."""
    x = np.random.default_rng(0).standard_normal((1, 3, input_size, input_size)).astype(np.float32)
    for _ in range(warmup):
        run(session, x)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < runs and (len(times) < 5 or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        run(session, x)
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times))


def paired_latency_ms(session_a, session_b, input_size: int, rounds: int = 7, runs: int = 10) -> tuple[float, float]:
    """Batch-1 median ms of two sessions timed in alternating rounds (`rounds` of `runs` runs each), so a
    change in the machine's load weighs on both alike: (a's median of its round medians, b's)."""
    a, b = [], []
    for _ in range(rounds):
        a.append(latency_ms(session_a, input_size, runs=runs, warmup=1, budget_s=0.5))
        b.append(latency_ms(session_b, input_size, runs=runs, warmup=1, budget_s=0.5))
    return float(np.median(a)), float(np.median(b))
