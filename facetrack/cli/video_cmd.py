"""`facetrack video IN --out OUT.mp4`: track every face through a video file, frame by frame."""

from __future__ import annotations

from pathlib import Path

import typer

from facetrack.cli import app, common
from facetrack.cli.common import handle_errors, say
from tracker.pipeline import DEFAULT_MIN_QUALITY


@app.command("video")
@handle_errors
def video_command(
    source: str = typer.Argument(..., help="Input video file, an animated GIF/WebP/PNG (each frame at its own "
                                           "duration), a stream URL OpenCV can open, or "
                                           "'synthetic?width=W&height=H&frames=N' (a drawn moving face)."),
    out: Path = typer.Option(..., "--out", help="Annotated output video (.mp4, mp4v): the input's size (odd "
                                                "sizes too), one frame per input frame, each at its own time "
                                                "(variable frame rates keep their timing)."),
    json_path: Path | None = typer.Option(None, "--json", help="Also write one JSON line per frame here."),
    show: bool = typer.Option(False, "--show", help="Also show a window while processing (needs a display; "
                                                    "q or Esc stops)."),
    backend: common.BackendOption = common.BackendKind.onnx,
    device: common.DeviceOption = common.DeviceKind.auto,
    weights: common.WeightsOption = None,
    landmark_model: common.LandmarkModelOption = None,
    detect_every: common.DetectEveryOption = 10,
    smooth: bool | None = typer.Option(None, "--smooth/--no-smooth",
                                       help="One-Euro smoothing of points and box (default: off for files, "
                                            "on for live streams)."),
    no_draw: bool = typer.Option(False, "--no-draw", help="Write the frames raw, without box, points or text."),
    min_presence: common.MinPresenceOption = None,
    min_quality: common.MinQualityOption = DEFAULT_MIN_QUALITY,
    detector: common.DetectorOption = None,
    max_faces: common.MaxFacesOption = None,
    sequential: bool = typer.Option(False, "--sequential",
                                    help="Capture, inference and output in one thread (for comparison)."),
) -> None:
    """Track every face in a video: annotated .mp4 and optional JSON lines, every frame in order."""
    from tracker.session import ModelOptions, VideoJob, run_job

    models = ModelOptions(weights, backend.value, device.value, landmark_model, detect_every, min_presence,
                          min_quality, detector=detector, max_faces=max_faces)
    run_job(VideoJob(source, out, json_path, models, show=show, smooth=smooth, draw=not no_draw,
                     threaded=not sequential), log=say)
