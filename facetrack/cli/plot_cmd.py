"""`facetrack plot RUN... --out curves.png`: overlay the loss curves of training runs."""

from __future__ import annotations

from pathlib import Path

import typer

from core.errors import InputError
from facetrack.cli import app
from facetrack.cli.common import handle_errors
from facetrack.cli.outputs import check_figure_file


@app.command("plot")
@handle_errors
def plot_command(
    runs: list[Path] = typer.Argument(..., help="Run folders (each with metrics.jsonl)."),
    out: Path = typer.Option(Path("curves.png"), "--out",
                             help="Figure to write (.png, .pdf, .svg, ...); its folder must exist."),
) -> None:
    """Overlay train/val loss and validation NME (or IoU) of several runs, as the course project did."""
    check_figure_file(out, "--out", [r / "metrics.jsonl" for r in runs])
    from training.plots import plot_runs, read_metrics

    runs = [r for r in runs if r.is_dir()]
    usable = [r for r in runs if read_metrics(r)]
    if not usable:
        raise InputError("none of the given folders holds a metrics.jsonl")
    plot_runs(usable, out)
    typer.echo(f"wrote {out} ({len(usable)} runs)")
