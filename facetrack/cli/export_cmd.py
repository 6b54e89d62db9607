"""`facetrack export --format onnx`: write verified graphs of the weights folder's checkpoints."""

from __future__ import annotations

from pathlib import Path

import typer

from facetrack.cli import app
from facetrack.cli.common import handle_errors


@app.command("export")
@handle_errors
def export_command(
    format: str = typer.Option("onnx", "--format", help="Output format (known: onnx)."),
    weights: Path = typer.Option(None, "--weights", help="Weights folder with manifest.json [default: weights/]."),
    out: Path = typer.Option(None, "--out", help="Folder for the graphs and their manifest [default: --weights]."),
    opset: int = typer.Option(None, "--opset", min=7, help="ONNX opset [default: 18]."),
    fp16: bool = typer.Option(False, "--fp16", help="Also write *.fp16.onnx (float16 weights, float32 in/out)."),
    int8: bool = typer.Option(False, "--int8", help="Also write *.int8.onnx (static QDQ, per-channel); needs --calib."),
    calib: Path = typer.Option(None, "--calib", help="Dataset of faces to calibrate int8 graphs on."),
    data: Path = typer.Option(None, "--data",
                              help="Dataset of real faces to verify on [default: $FACETRACK_SHARED_DATA or "
                                   "../shared/data/ytf-keypoints; random input only when none]."),
) -> None:
    """Export every checkpoint in the weights manifest, check each graph against PyTorch, update the manifest."""
    from export.formats import get_format

    get_format(format)  # an unknown format fails before torch is imported
    from core.manifest import default_weights_dir
    from export.pipeline import export_weights
    from export.report import format_table

    result = export_weights(weights or default_weights_dir(), out, fmt=format, opset=opset, fp16=fp16, int8=int8,
                            calib=calib, data=data, log=typer.echo)
    typer.echo("")
    typer.echo(format_table(result.rows))
    for note in result.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"manifest: {result.manifest}")
