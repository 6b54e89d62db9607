"""Pictures people judge models by: loss curves of runs, cumulative error curves."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# what each kind of run validates on: the metric that names the kind, the axis label, the lines drawn
# ((row key, label suffix, line style)); a figure keeps kinds on separate rows, never on one axis
METRIC_KINDS = {
    "landmarks": ("val_nme", "val NME (% inter-ocular)", (("val_nme", "", "-"),)),
    "box": ("iou_mean", "val IoU / presence accuracy",
            (("iou_mean", " IoU", "-"), ("presence_accuracy", " presence acc.", ":"))),
    "detector": ("ap50", "val AP@0.5 / recall (composed images)",
                 (("ap50", " AP@0.5", "-"), ("recall", " recall", ":"))),
}


def read_metrics(run: Path) -> list[dict]:
    """The per-epoch rows of a run folder (metrics.jsonl); [] when there is none. ValueError (naming the
    line) for a line that is not JSON."""
    path = Path(run) / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise ValueError(f"{path}: line {number} is not JSON") from None
    return rows


def metric_kind(rows: list[dict]) -> str | None:
    """The kind of run its rows come from: 'landmarks' (val_nme), 'box' (iou_mean), 'detector' (ap50), or
    None (no metric known)."""
    for kind, (key, _, _) in METRIC_KINDS.items():
        if any(key in r for r in rows):
            return kind
    return None


def sort_runs(runs: list[Path]) -> tuple[dict[Path, str], dict[Path, str]]:
    """({run: its kind} for the runs `plot_runs` can draw, {run: why not} for the others: not a folder, no
    metrics.jsonl, none of its rows, a line that is not JSON, rows without an epoch, losses or a known metric)."""
    kinds: dict[Path, str] = {}
    skipped: dict[Path, str] = {}
    for run in map(Path, runs):
        if not run.is_dir():
            skipped[run] = "not a folder" if run.exists() else "no such folder"
            continue
        if not (run / "metrics.jsonl").is_file():
            skipped[run] = "no metrics.jsonl"
            continue
        try:
            rows = read_metrics(run)
        except (ValueError, OSError) as exc:
            skipped[run] = str(exc).replace(f"{run / 'metrics.jsonl'}: ", "metrics.jsonl ")
            continue
        kind = metric_kind(rows)
        if not rows:
            skipped[run] = "metrics.jsonl holds no epoch yet"
        elif not all({"epoch", "train_loss", "val_loss"} <= set(r) for r in rows):
            skipped[run] = "metrics.jsonl rows lack epoch, train_loss or val_loss"
        elif kind is None:
            skipped[run] = "metrics.jsonl has no val_nme, iou_mean or ap50"
        else:
            kinds[run] = kind
    return kinds, skipped


def plot_runs(runs: list[Path], out: Path, labels: list[str] | None = None) -> Path:
    """Train vs val loss (left, log scale, per epoch) and the validation metric (right, per training minute)
    of one or more runs, overlaid, to an image file; returns `out`. Runs of different kinds (`metric_kind`:
    landmarks, box, detector) go on separate rows, so no axis mixes NME with IoU or AP; runs without
    usable rows (`sort_runs`) are left out. ValueError when none is left."""
    kinds, _ = sort_runs(runs)
    names = {Path(run): labels[k] if labels else Path(run).name for k, run in enumerate(runs)}
    order = [kind for kind in METRIC_KINDS if kind in kinds.values()]
    if not order:
        raise ValueError("no run with training metrics to draw")
    fig, axes = plt.subplots(len(order), 2, figsize=(11, 4 * len(order)), squeeze=False)
    for (ax_loss, ax_metric), kind in zip(axes, order):
        _, ylabel, lines = METRIC_KINDS[kind]
        for run in (r for r, k in kinds.items() if k == kind):
            rows, label = read_metrics(run), names[run]
            ep = [r["epoch"] for r in rows]
            minutes = [r.get("elapsed_min", r["epoch"]) for r in rows]
            line, = ax_loss.plot(ep, [r["train_loss"] for r in rows], "--", marker=".", label=f"{label} train")
            ax_loss.plot(ep, [r["val_loss"] for r in rows], "-", marker="o", ms=3, color=line.get_color(),
                         label=f"{label} val")
            for key, suffix, style in lines:
                kept = [(m, r[key]) for m, r in zip(minutes, rows) if key in r]
                ax_metric.plot([m for m, _ in kept], [v for _, v in kept], style, marker="o" if style == "-" else None,
                               ms=3, color=line.get_color(), label=f"{label}{suffix}")
        ax_loss.set_title(f"{kind} runs", fontsize=9, loc="left")
        ax_loss.set_yscale("log")
        ax_loss.set_xlabel("epoch")
        ax_loss.set_ylabel("loss")
        ax_metric.set_xlabel("training minutes")
        ax_metric.set_ylabel(ylabel)
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
