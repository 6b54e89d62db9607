"""`facetrack plot RUN... --out curves.png`: overlay the loss curves of training runs."""

from __future__ import annotations

from pathlib import Path

import typer

from core.errors import InputError
from facetrack.cli import app
from facetrack.cli.common import handle_errors, say
from facetrack.cli.outputs import check_figure_file


@app.command("plot")
@handle_errors
def plot_command(
    runs: list[Path] = typer.Argument(..., help="Run folders (each with metrics.jsonl)."),
    out: Path = typer.Option(Path("curves.png"), "--out",
                             help="Figure to write (.png, .pdf, .svg, ...); its folder must exist."),
) -> None:
    """Overlay train/val loss and the validation metric of several runs, as the course project did: landmark
    runs (NME), box runs (IoU) and detector runs (AP) on separate rows; runs it cannot draw are named."""
    check_figure_file(out, "--out", [r / "metrics.jsonl" for r in runs])
    from training.plots import plot_runs, sort_runs

    kinds, skipped = sort_runs(runs)
    for run, why in skipped.items():
        say(f"not drawn: {run} ({why})")
    if not kinds:
        raise InputError("nothing to draw: " + "; ".join(f"{run}: {why}" for run, why in skipped.items()))
    plot_runs(list(kinds), out)
    rows = sorted(set(kinds.values()), key=list(kinds.values()).index)
    layout = f"; {', '.join(rows)} runs on separate rows" if len(rows) > 1 else ""
    typer.echo(f"wrote {out} ({len(kinds)} run{'s' if len(kinds) > 1 else ''}{layout})")
