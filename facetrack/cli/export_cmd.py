"""`facetrack export --format onnx`: write verified graphs of the weights folder's checkpoints."""

from __future__ import annotations

from pathlib import Path

import typer

from facetrack.cli import app
from facetrack.cli.common import handle_errors
from facetrack.cli.outputs import check_output_folder


def check_export_target(weights_dir: Path, out: Path | None, shipped: bool) -> None:
    """Before any work: --out can be made and written (InputError otherwise); without --out, the weights
    folder itself must be writable, and one line says that its graphs and manifest are rewritten in place
    (`shipped`: the repository's own weights/, used when --weights is not given)."""
    if out is not None:
        check_output_folder(out, "--out")
        return
    if not Path(weights_dir).is_dir():
        return  # export_weights says that the weights folder is missing
    which = "the shipped weights folder" if shipped else "the weights folder"
    check_output_folder(weights_dir, f"--out (not given: {which})")
    typer.echo(f"no --out: updating {which} {weights_dir} in place (its ONNX graphs and manifest.json are "
               "replaced once every graph passes its checks); give --out DIR to write elsewhere")


@app.command("export")
@handle_errors
def export_command(
    format: str = typer.Option("onnx", "--format", help="Output format (known: onnx)."),
    weights: Path = typer.Option(None, "--weights", help="Weights folder with manifest.json [default: weights/]."),
    out: Path = typer.Option(None, "--out", help="Folder for the graphs and their manifest (made when missing) "
                             "[default: the --weights folder itself, updated in place; said before the export "
                             "starts]."),
    opset: int = typer.Option(None, "--opset", min=7, help="ONNX opset [default: 18]."),
    fp16: bool = typer.Option(False, "--fp16", help="Also write *.fp16.onnx (float16 weights, float32 in/out)."),
    int8: bool = typer.Option(False, "--int8", help="Also write *.int8.onnx (static QDQ of the convolutions, "
                              "per-channel); needs --calib. An int8 graph that loses too much accuracy is refused "
                              "(exit 1); the other graphs are written all the same. Each one written has its cost "
                              "and speed in the manifest's int8_checks: --precision auto runs it on the CPU when it "
                              "is within 0.1 NME points (0.01 IoU) of fp32 and at least 1.25x faster (a note "
                              "says which)."),
    calib: Path = typer.Option(None, "--calib", help="Dataset of faces to calibrate int8 graphs on."),
    data: Path = typer.Option(None, "--data",
                              help="Dataset of real faces to verify on [default: $FACETRACK_SHARED_DATA or "
                                   "../shared/data/ytf-keypoints; random input only when none]."),
) -> None:
    """Export every checkpoint in the weights manifest, check each graph against PyTorch, update the manifest."""
    from export.formats import get_format

    get_format(format)  # an unknown format fails before torch is imported
    from core.manifest import default_weights_dir

    weights_dir = weights or default_weights_dir()
    check_export_target(weights_dir, out, shipped=weights is None)
    from export.pipeline import export_weights
    from export.report import format_table

    result = export_weights(weights_dir, out, fmt=format, opset=opset, fp16=fp16, int8=int8,
                            calib=calib, data=data, log=typer.echo)
    typer.echo("")
    typer.echo(format_table(result.rows))
    for note in result.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"manifest: {result.manifest}")
    if result.refused:  # the other graphs are installed; the int8 graph asked for is not: a failure
        from export.verify import VerificationError

        raise VerificationError("; ".join(result.refused) + f" (the other graphs were written to {result.out_dir} "
                                "and listed in its manifest)")
