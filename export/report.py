"""The export table: one row per written graph, printed by `facetrack export`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Row:
    """One line of the export table."""

    file: str
    size: int  # bytes
    opset: int | None
    max_diff: float | None  # max |ONNX - PyTorch| over the parity inputs
    cpu_ms: float | None  # ONNX Runtime CPU batch-1 median latency, the runtime's session settings
    accuracy: str
    delta: float | None = None  # accuracy change against the fp32 graph: NME points or mean IoU


def human_size(n: int) -> str:
    """Bytes as B / KB / MB."""
    if n < 1024:
        return f"{n} B"
    if n < 1024 ** 2:
        return f"{n / 1024:.1f} KB"
    return f"{n / 1024 ** 2:.1f} MB"


def format_table(rows: list[Row]) -> str:
    """The export table: file, size, opset, max |ONNX - PyTorch|, ORT CPU batch-1 median ms, accuracy."""
    header = ("file", "size", "opset", "max|ONNX-PyTorch|", "ORT CPU b1 ms", "accuracy")
    cells = [(r.file, human_size(r.size), str(r.opset) if r.opset is not None else "-",
              f"{r.max_diff:.1e}" if r.max_diff is not None else "n/a",
              f"{r.cpu_ms:.2f}" if r.cpu_ms is not None else "n/a", r.accuracy) for r in rows]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]
    right = {1, 2, 3, 4}

    def line(c):
        return "  ".join(v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(c, widths))).rstrip()

    return "\n".join([line(header), line(tuple("-" * w for w in widths)), *(line(c) for c in cells)])
