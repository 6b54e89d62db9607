"""Pictures people judge models by: loss curves of runs, cumulative error curves."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def read_metrics(run: Path) -> list[dict]:
    """The per-epoch rows of a run folder (metrics.jsonl)."""
    path = Path(run) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_runs(runs: list[Path], out: Path, labels: list[str] | None = None) -> Path:
    """Train vs val loss (and val NME or IoU) of one or more runs, overlaid, to a PNG."""
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 4))
    for k, run in enumerate(runs):
        rows = read_metrics(run)
        if not rows:
            continue
        label = labels[k] if labels else Path(run).name
        ep = [r["epoch"] for r in rows]
        minutes = [r.get("elapsed_min", r["epoch"]) for r in rows]
        line, = ax_loss.plot(ep, [r["train_loss"] for r in rows], "--", marker=".", label=f"{label} train")
        ax_loss.plot(ep, [r["val_loss"] for r in rows], "-", marker="o", ms=3, color=line.get_color(),
                     label=f"{label} val")
        def series(key: str) -> tuple[list, list]:  # (minutes, values) of the rows that have `key`
            kept = [(m, r[key]) for m, r in zip(minutes, rows) if key in r]
            return [m for m, _ in kept], [v for _, v in kept]

        if any("val_nme" in r for r in rows):
            ax_metric.plot(*series("val_nme"), marker="o", ms=3, color=line.get_color(), label=label)
            ax_metric.set_ylabel("val NME (% inter-ocular)")
        elif any("iou_mean" in r for r in rows):
            ax_metric.plot(*series("iou_mean"), marker="o", ms=3, color=line.get_color(), label=f"{label} IoU")
            ax_metric.plot(*series("presence_accuracy"), ":", color=line.get_color(),
                           label=f"{label} presence acc.")
            ax_metric.set_ylabel("val IoU / presence accuracy")
        elif any("ap50" in r for r in rows):
            ax_metric.plot(*series("ap50"), marker="o", ms=3, color=line.get_color(), label=f"{label} AP@0.5")
            ax_metric.plot(*series("recall"), ":", color=line.get_color(), label=f"{label} recall")
            ax_metric.set_ylabel("val AP@0.5 / recall (composed images)")
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_metric.set_xlabel("training minutes")
    for ax in (ax_loss, ax_metric):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, out)


def plot_ced(nme_by_label: dict[str, np.ndarray], out: Path, max_nme: float = 20.0) -> Path:
    """Cumulative error distribution: share of faces with NME below x."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    xs = np.linspace(0, max_nme, 200)
    for label, nme in nme_by_label.items():
        nme = np.sort(np.asarray(nme))
        ax.plot(xs, np.searchsorted(nme, xs, side="right") / max(len(nme), 1), label=label)
    ax.axvline(10, color="gray", ls=":", lw=1)
    ax.set_xlabel("NME (% of inter-ocular distance)")
    ax.set_ylabel("share of faces")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out)


def _save(fig, out: Path) -> Path:
    """Lay out, write (creating the folder) and close a figure; the path written."""
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
