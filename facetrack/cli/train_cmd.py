"""`facetrack train landmarks|box|detector`: train a landmark net, the box regressor or the multi-face detector."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from core.errors import InputError
from facetrack.cli import app
from facetrack.cli.common import handle_errors
from facetrack.cli.outputs import check_run_folder


class Task(str, Enum):
    landmarks = "landmarks"
    box = "box"
    detector = "detector"


DEFAULT_MODEL = {"landmarks": "resnet", "box": "box", "detector": "centernet"}
DEFAULT_INPUT_SIZE = {"landmarks": 128, "box": 128, "detector": 384}


MAX_SOURCE_WEIGHT = 100.0  # a source shown 100x as often: beyond that an epoch is mostly copies


def parse_source_weights(items: list[str]) -> dict[str, float]:
    """`["ytf-csv=2", "300w=1.5"]` -> {"ytf-csv": 2.0, "300w": 1.5}. Raises InputError (one line) for an item
    that is not SOURCE=W with W a number from 0 to MAX_SOURCE_WEIGHT."""
    weights: dict[str, float] = {}
    for item in items:
        name, sep, value = item.rpartition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = -1.0
        if not sep or not name or not 0 <= weight <= MAX_SOURCE_WEIGHT:
            raise InputError(f"--source-weight {item!r}: expected SOURCE=W with W a number from 0 to "
                             f"{MAX_SOURCE_WEIGHT:g} (e.g. ytf-csv=2)")
        weights[name] = weight
    return weights


@app.command("train")
@handle_errors
def train_command(
    task: Task = typer.Argument(..., help="What to train: 'landmarks' (face crops), 'box' (the course project's "
                                "single-face box regressor, whole frames) or 'detector' (the multi-face "
                                "detector, on images composed from every labelled face)."),
    data: list[Path] = typer.Option(..., "--data", help="Dataset folder or file; repeat to train on several."),
    format: str = typer.Option(None, "--format", help="Force the dataset format: aflw, 300w, ytf-csv, dlib-xml, mtfl, "
                              "caltech."),
    single_face_only: bool = typer.Option(False, "--single-face-only", help="Drop images with several faces."),
    model: str = typer.Option(None, "--model",
                              help="Landmarks: resnet (default), resnet-simcc, nalbert, net, landmark-bbox. Box: box. "
                                   "Detector: centernet."),
    epochs: int = typer.Option(50, "--epochs", min=1, help="Number of epochs."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Faces or frames per step."),
    lr: float = typer.Option(1e-3, "--lr", min=0.0, help="Peak learning rate (AdamW, warm-up then cosine)."),
    workers: int = typer.Option(2, "--workers", min=0, help="Threads decoding images into the cache."),
    input_size: int = typer.Option(None, "--input-size", min=32,
                                   help="Model input in pixels: the square crop or frame (default 128); the "
                                        "detector's: the longer side of the frame at run time (default 384; "
                                        "it trains on 256-px composed images)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    seed: int = typer.Option(0, "--seed", help="Seed for the identity split and augmentation."),
    out: Path = typer.Option(Path("runs/exp"), "--out", help="Run folder: logs, curves.png, last.pt, best.pt "
                             "(made when missing). A folder that already holds a run needs --resume or --overwrite."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/last.pt when it exists."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start a fresh run in an --out folder that already "
                                   "holds one, replacing its metrics.jsonl, last.pt and best.pt."),
    loss: str = typer.Option("mse", "--loss", help="Landmark loss: mse (default; course project; won the "
                             "equal-budget test), wing or l1."),
    time_budget: float = typer.Option(0.0, "--time-budget", min=0.0,
                                      help="Minutes of training at most (lr anneals over it), checked before "
                                           "every step: an epoch is cut short when it runs out; 0 = no limit."),
    threads: int = typer.Option(0, "--threads", min=0, help="Torch CPU threads (0 = default)."),
    max_samples: int = typer.Option(0, "--max-samples", min=0, help="Use at most N faces per split (0 = all)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="One batch of training and validation, then stop; "
                                 "last.pt and best.pt are built and checked in memory, not written."),
    quality: bool = typer.Option(False, "--quality/--no-quality",
                                 help="Landmarks: also output a face-quality logit, trained on crops without "
                                      "the face (the runtime drops faces it scores low)."),
    split_lookalikes: bool = typer.Option(True, "--split-lookalikes/--no-split-lookalikes",
                                          help="Keep look-alike copies of a photo under different names in one "
                                               "split (runs from before this option: --no-split-lookalikes)."),
    recipe: str = typer.Option("modern", "--recipe", help="modern (default): AdamW, warm-up + cosine lr, augmented "
                               "crops. course: the course project's Adam at a constant lr on un-augmented crops."),
    init_from: Path = typer.Option(None, "--init-from", help="Start from this checkpoint's weights where name and "
                                   "shape match (e.g. a trained backbone under a new head or input size)."),
    source_weight: list[str] = typer.Option(None, "--source-weight", metavar="SOURCE=W",
                                            help="Landmarks: show a source's faces W times as often in an epoch "
                                                 "(e.g. ytf-csv=2; sources as the validation rows name them); "
                                                 "repeat for several."),
) -> None:
    """Train the landmark model on face crops, the separate box regressor on whole frames, or the
    multi-face detector on composed images."""
    source_weights = parse_source_weights(source_weight or [])
    check_run_folder(out, resume, overwrite)  # before any data is read: exit 2, one line
    from training.train import TrainConfig, train

    name = model or DEFAULT_MODEL[task.value]
    input_size = input_size or DEFAULT_INPUT_SIZE[task.value]
    cfg = TrainConfig(task=task.value, model=name, data=tuple(str(p) for p in data), format=format,
                      single_face_only=single_face_only, epochs=epochs, batch_size=batch_size, lr=lr,
                      workers=workers, input_size=input_size, device=device, seed=seed, out=str(out),
                      resume=resume, loss=loss, time_budget_min=time_budget, dry_run=dry_run,
                      max_samples=max_samples, threads=threads, quality=quality, split_lookalikes=split_lookalikes,
                      init_from=str(init_from) if init_from else "", recipe=recipe,
                      source_weights=source_weights)
    summary = train(cfg, log=typer.echo)  # handle_errors already turns SIGTERM into KeyboardInterrupt
    best = summary["best"] or {}
    kept = "(dry run: no checkpoint written)" if dry_run else f"-> {out / 'best.pt'}"
    typer.echo(f"done: {summary['epochs_done']} epochs in {summary['minutes']:.1f} min; best epoch "
               f"{best.get('epoch')} {kept}")

