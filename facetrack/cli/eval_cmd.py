"""`facetrack eval`: accuracy of the shipped (or given) models on a dataset, through the runtime's path."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from core.errors import InputError
from facetrack.cli import app, common
from facetrack.cli.common import handle_errors
from facetrack.cli.outputs import check_figure_file, check_image_file, check_output_file
from tracker.locate import DEFAULT_PASSES
from tracker.pipeline import DEFAULT_MIN_QUALITY


def check_eval_outputs(what: str, data: list[Path], json_out: Path | None, sheet: Path | None,
                       ced: Path | None, cut: bool = False, cut_sheet: Path | None = None) -> None:
    """Before any work: each of --json, --sheet, --ced can be written (`facetrack.cli.outputs`), is no
    dataset file and no other output, and is made by this --what; --cut only with landmarks (InputError
    otherwise)."""
    if sheet is not None and what == "box":
        raise InputError("--sheet draws faces for --what landmarks, both or detector, not for --what box")
    if cut and what not in ("landmarks", "both"):
        option = "--cut-sheet" if cut_sheet is not None else "--cut"
        raise InputError(f"{option} scores landmarks: use --what landmarks or both, not --what {what}")
    if ced is not None and what in ("box", "detector"):
        raise InputError(f"--ced plots landmark NME: use --what landmarks or both, not --what {what}")
    if json_out is not None:
        check_output_file(json_out, "--json", data, [sheet, ced, cut_sheet])
    if sheet is not None:
        check_image_file(sheet, "--sheet", data, [json_out, ced, cut_sheet])
    if ced is not None:
        check_figure_file(ced, "--ced", data, [json_out, sheet, cut_sheet])
    if cut_sheet is not None:
        check_image_file(cut_sheet, "--cut-sheet", data, [json_out, sheet, ced])


@app.command("eval")
@handle_errors
def eval_command(
    data: list[Path] = typer.Option(..., "--data", help="Dataset folder or file; repeat as in training, so "
                                    "--split picks the same identities training held out."),
    format: str = typer.Option(None, "--format", help="Force the dataset format: aflw, 300w, ytf-csv, dlib-xml, "
                                                      "mtfl, caltech."),
    weights: common.WeightsOption = None,
    landmark_model: common.LandmarkModelOption = None,
    backend: common.BackendOption = common.BackendKind.onnx,
    device: common.DeviceOption = common.DeviceKind.auto,
    precision: common.PrecisionOption = common.PrecisionKind.auto,
    passes: int = typer.Option(DEFAULT_PASSES, "--passes", min=1, max=3,
                               help="Landmark passes per face box, as at run time: 3 (default) refines on the "
                                    "de-rolled crop of the first pass's points and once more when that moved "
                                    "the crop; 2 refines once; 1 stops after the box's crop."),
    split: str = typer.Option("all", "--split", help="all, train, val or test (the identity split the landmark "
                                                     "model was trained with)."),
    seed: int = typer.Option(None, "--seed", help="Seed of the identity split (default: the training run's)."),
    what: str = typer.Option("both", "--what", help="landmarks, box, both (landmarks and box), or detector (AP "
                             "and recall of the face finder on whole photos, composed photos and no-face frames)."),
    detector: str = typer.Option(None, "--detector", help="--what detector: centernet (the multi-face detector) "
                                 "or regressor (the course project's box regressor); default: the weights' own."),
    min_score: float = typer.Option(None, "--min-score", min=0.0, max=1.0,
                                    help="--what detector: the detection threshold (default: the model's own)."),
    flip_test: bool = typer.Option(False, "--flip-test", help="Average the last pass with its mirrored crop, as "
                                   "`facetrack images` does by default (tracking does not: off by default)."),
    min_quality: common.MinQualityOption = DEFAULT_MIN_QUALITY,
    cut: bool = typer.Option(False, "--cut", help="Also score each upright face cut by the image border on each "
                             "side in turn (between an eye and the nose, the nose and the mouth): no face, or its "
                             "in-frame points within 10% of the inter-ocular distance (facetrack.cut_faces)."),
    json_out: Path = typer.Option(None, "--json", help="Write the metrics as one JSON object to this file."),
    sheet: Path = typer.Option(None, "--sheet", help="PNG of the worst faces: answers (dots) next to truth (rings); "
                               "with --what detector: of the faces the detector missed."),
    ced: Path = typer.Option(None, "--ced", help="PNG of the cumulative error distribution of NME, per source."),
    cut_sheet: Path = typer.Option(None, "--cut-sheet", help="PNG of the cut faces reported with the worst visible "
                                   "points (implies --cut): answers (dots) next to truth (rings), black beyond "
                                   "the cut."),
) -> None:
    """Landmark NME through the runtime's crops and backend on ground-truth boxes, per source and point;
    box IoU and presence accuracy on whole images; the face detector's AP@0.5 and recall."""
    cut = cut or cut_sheet is not None
    check_eval_outputs(what, data, json_out, sheet, ced, cut, cut_sheet)
    from facetrack.evaluate import EvalJob, evaluate

    job = EvalJob(tuple(str(p) for p in data), format, weights, landmark_model, backend.value, device.value, passes,
                  split, seed, what, flip_test, min_quality, detector=detector, min_score=min_score,
                  precision=precision.value, cut=cut)
    report = evaluate(job, typer.echo, ced=ced, sheet=sheet, cut_sheet=cut_sheet)
    if json_out:
        json_out.write_text(json.dumps(report, indent=2) + "\n")
