"""`facetrack images PATH...`: find every face in still images, one JSON row per image."""

from __future__ import annotations

from pathlib import Path

import typer

from facetrack.cli import app, common
from facetrack.cli.common import handle_errors, say
from tracker.pipeline import DEFAULT_MIN_QUALITY


@app.command("images")
@handle_errors
def images_command(
    paths: list[str] = typer.Argument(..., help="Image files, folders (searched recursively), quoted globs "
                                      "('shots/**/*.jpg') and/or - (paths on standard input, one a line). A file is "
                                      "taken, named or in a folder, when its content is an image OpenCV or "
                                      "Pillow reads (JPEG, PNG, HEIC, AVIF, GIF, WebP, TIFF, ...); other files "
                                      "are skipped and named. Animated GIF/WebP: the first frame, and a line "
                                      "says so (`facetrack video` tracks every frame)."),
    out_dir: Path | None = typer.Option(None, "--out-dir", help="Write annotated copies here, at their paths "
                                        "relative to the inputs (a/x.jpg and b/x.jpg stay apart), upright as "
                                        "viewers show the images (EXIF orientation applied). With no output "
                                        "option at all: runs/track/exp, exp2, ... with results.jsonl."),
    json_path: Path | None = typer.Option(None, "--json", help="Write one JSON line per readable image here (- : "
                                                               "standard output)."),
    csv_path: common.CsvOption = None,
    backend: common.BackendOption = common.BackendKind.onnx,
    device: common.DeviceOption = common.DeviceKind.auto,
    weights: common.WeightsOption = None,
    landmark_model: common.LandmarkModelOption = None,
    precision: common.PrecisionOption = common.PrecisionKind.auto,
    min_presence: common.MinPresenceOption = None,
    min_quality: common.MinQualityOption = DEFAULT_MIN_QUALITY,
    detector: common.DetectorOption = None,
    max_faces: common.MaxFacesOption = None,
    no_draw: bool = typer.Option(False, "--no-draw", help="Copy the images into --out-dir without overlays "
                                 "(still upright, as tracked)."),
    flip_test: bool = typer.Option(True, "--flip-test/--no-flip-test",
                                   help="Average each face's last landmark pass with its mirrored crop (one more "
                                        "model run per face; lower NME, see docs/evaluation.md)."),
) -> None:
    """Find every face in each image as viewers show it (EXIF orientation applied: width, height and points
    in that frame); files that are not images, or do not decode, are skipped, counted and named."""
    from tracker.batch import images_job, run_images
    from tracker.session import ImagesJob, ModelOptions

    models = ModelOptions(weights, backend.value, device.value, landmark_model, min_presence=min_presence,
                          min_quality=min_quality, flip_test=flip_test, detector=detector, max_faces=max_faces,
                          precision=precision.value)
    job, run_dir = images_job(paths, ImagesJob((), out_dir, json_path, models, draw=not no_draw, csv_path=csv_path))
    run_images(job, run_dir, log=say)
