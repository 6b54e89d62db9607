#!/usr/bin/env python3
"""Markdown table of landmark runs: val/test NME, parameters, epochs, minutes (docs/experiments.md).

usage: scripts/compare_table.py runs/compare/* [--data ../shared/data/ytf-keypoints --data ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from core.models import count_parameters, load_model
from training.data import load_dataset
from training.data.splits import select_split
from training.evaluate import evaluate_landmarks


def main() -> None:
    root = Path(__file__).resolve().parents[2] / "shared" / "data"
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--data", action="append", default=None)
    parser.add_argument("--flip-test", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = args.data or [str(root / "ytf-keypoints"), str(root / "300w-helen-train")]
    pooled = [s for d in data for s in load_dataset(d).samples]
    test = select_split(pooled, "test", 0)
    print("| run | model | loss | params | epochs | minutes | val NME % | test NME % | test failure % |")
    print("|---|---|---|---|---|---|---|---|---|")
    for run in map(Path, args.runs):
        if not (run / "best.pt").is_file():
            continue
        model, ckpt = load_model(run / "best.pt")
        cfg = ckpt.get("train_config", {})
        summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").is_file() else {}
        metrics, _ = evaluate_landmarks(model, test, flip_test=args.flip_test)
        print(f"| {run.name} | {ckpt['model']} | {cfg.get('loss')} | {count_parameters(model) / 1e6:.2f} M | "
              f"{summary.get('epochs_done', '?')} | {summary.get('minutes', 0):.1f} | "
              f"{ckpt['metrics']['val_nme']:.2f} | {metrics['nme_mean']:.2f} | {100 * metrics['failure_rate']:.1f} |")


if __name__ == "__main__":
    main()
