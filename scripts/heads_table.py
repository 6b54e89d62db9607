#!/usr/bin/env python3
"""Markdown table of an equal-budget comparison of landmark runs (docs/experiments.md, issue 11): each
run's best validation epoch (NME over all sources and per source, quality accuracy), its epochs and
minutes, parameters, and the exported ONNX graph's size and ONNX Runtime CPU batch-1 latency (the
runtime's session settings, measured by `facetrack export`'s own check on real faces).

Validation only: the test split chooses nothing.

usage: scripts/heads_table.py runs/heads/resnet-128 runs/heads/simcc-128 ... [--data ../shared/data/ytf-keypoints]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.models import count_parameters, load_model  # noqa: E402
from export.pipeline import export_weights  # noqa: E402
from training.ship import ship_checkpoint  # noqa: E402

GROUPS = ("ytf-csv", "300w", "mtfl/lfw", "mtfl/net", "mtfl/aflw", "caltech")


def onnx_row(best: Path, data: str | None):
    """(size MB, CPU ms) of the run's best checkpoint exported as fp32 ONNX."""
    with tempfile.TemporaryDirectory() as tmp:
        ship_checkpoint(best, tmp, default=True, name="candidate")
        result = export_weights(tmp, data=data, log=lambda *_: None)
        row = next(r for r in result.rows if r.file.endswith(".onnx") and "fp16" not in r.file)
        return row.size / 1e6, row.cpu_ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--data", default=None, help="faces for the export's check (default: the shared data)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    head = ("| run | model | input | params | epochs | minutes | val NME % | fail % | quality acc % | "
            + " | ".join(GROUPS) + " | ONNX MB | ONNX CPU ms |")
    print(head)
    print("|" + "|".join(["---"] * (head.count("|") - 1)) + "|")
    out = []
    for run in args.runs:
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
        best = min(rows, key=lambda r: r["val_nme"])
        model, ckpt = load_model(run / "best.pt")
        size_mb, cpu_ms = onnx_row(run / "best.pt", args.data)
        groups = best.get("val_nme_by_group", {})
        rec = {"run": run.name, "model": ckpt["model"], "input": model.config.input_size,
               "params_m": count_parameters(model) / 1e6, "epochs": len(rows), "best_epoch": best["epoch"],
               "minutes": rows[-1].get("elapsed_min"), "val_nme": best["val_nme"],
               "val_failure": best["val_failure"], "quality_accuracy": best.get("val_quality_accuracy"),
               "groups": groups, "onnx_mb": size_mb, "onnx_cpu_ms": cpu_ms}
        out.append(rec)
        q = f"{100 * rec['quality_accuracy']:.1f}" if rec["quality_accuracy"] is not None else "-"
        cells = [run.name, rec["model"], f"{rec['input']} px", f"{rec['params_m']:.2f} M",
                 f"{rec['epochs']} (best {rec['best_epoch']})", f"{rec['minutes']:.1f}", f"{rec['val_nme']:.2f}",
                 f"{100 * rec['val_failure']:.1f}", q, *[f"{groups[g]:.2f}" if g in groups else "-" for g in GROUPS],
                 f"{size_mb:.1f}", f"{cpu_ms:.2f}" if cpu_ms is not None else "-"]
        print("| " + " | ".join(cells) + " |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
