"""`facetrack eval`: accuracy of the shipped (or given) checkpoints on a dataset."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from core.errors import InputError
from facetrack.cli import app
from facetrack.cli.common import handle_errors


@app.command("eval")
@handle_errors
def eval_command(
    data: list[Path] = typer.Option(..., "--data", help="Dataset folder or file; repeat as in training, so "
                                    "--split picks the same identities training held out."),
    format: str = typer.Option(None, "--format", help="Force the dataset format: aflw, 300w, ytf-csv, dlib-xml."),
    weights: Path = typer.Option(None, "--weights", help="Weights folder with manifest.json (default: shipped)."),
    landmark_model: str = typer.Option(None, "--landmark-model", help="Landmark model name (default: manifest's)."),
    split: str = typer.Option("all", "--split", help="all, train, val or test (identity split, seed --seed)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the identity split (the one training used)."),
    what: str = typer.Option("both", "--what", help="landmarks, box or both."),
    flip_test: bool = typer.Option(False, "--flip-test", help="Average with a mirrored pass (landmarks)."),
    json_out: Path = typer.Option(None, "--json", help="Write the metrics as one JSON object to this file."),
    sheet: Path = typer.Option(None, "--sheet", help="PNG of predictions (dots) next to truth (rings)."),
    ced: Path = typer.Option(None, "--ced", help="PNG of the cumulative error distribution of NME."),
) -> None:
    """Landmark NME on ground-truth face crops; box IoU and presence accuracy on whole images."""
    if what not in ("landmarks", "box", "both"):
        raise InputError(f"--what must be landmarks, box or both, not {what!r}")
    for path in (json_out, sheet, ced):
        if path is not None and not path.parent.is_dir():
            raise InputError(f"{path}: folder {path.parent} does not exist")
    import torch

    from core.manifest import default_weights_dir, landmark_model_name, model_file, read_manifest
    from core.models import load_model
    from training.data import load_dataset
    from training.data.splits import select_split
    from training.evaluate import evaluate_box, evaluate_landmarks, prediction_sheet

    torch.set_num_threads(max(1, torch.get_num_threads()))
    weights_dir = weights or default_weights_dir()
    manifest = read_manifest(weights_dir)
    try:
        pooled = [s for path in data for s in load_dataset(path, format).samples]
        samples = select_split(pooled, split, seed)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if not samples:
        raise InputError(f"{', '.join(map(str, data))}: no faces in split {split!r}")
    report: dict = {"data": [str(p) for p in data], "split": split, "seed": seed}
    if what in ("landmarks", "both"):
        name = landmark_model_name(manifest, landmark_model)
        model, _ = load_model(model_file(weights_dir, name, "checkpoints"), expect_kind="landmarks")
        metrics, raw = evaluate_landmarks(model, samples, flip_test=flip_test)
        report["landmarks"] = {"model": name, "flip_test": flip_test, **metrics}
        typer.echo(f"landmarks ({name}) on {metrics['faces']} faces: NME mean {metrics['nme_mean']:.2f}% "
                   f"median {metrics['nme_median']:.2f}%  failure (>10%) {100 * metrics['failure_rate']:.1f}%")
        typer.echo("  per point: " + "  ".join(f"{k} {v:.2f}%" for k, v in metrics["per_point"].items()))
        if sheet:
            prediction_sheet(raw["crops"], raw["pred"], raw["target"], raw["nme"], sheet)
            typer.echo(f"  sheet: {sheet}")
        if ced:
            from training.plots import plot_ced

            plot_ced({name: raw["nme"]}, ced)
            typer.echo(f"  CED: {ced}")
    if what in ("box", "both"):
        model, _ = load_model(model_file(weights_dir, "box", "checkpoints"), expect_kind="box")
        box = evaluate_box(model, samples)
        report["box"] = box
        typer.echo(f"box on {box['images']} images: IoU mean {box['iou_mean']:.3f}  IoU>=0.5 "
                   f"{100 * box['iou_recall']:.1f}%  presence accuracy {100 * box['presence_accuracy']:.1f}% "
                   f"(with {box['no_face_crops']} no-face crops)")
    if json_out:
        json_out.write_text(json.dumps(report, indent=2) + "\n")
