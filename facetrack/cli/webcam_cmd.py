"""`facetrack webcam`: track the faces live from a camera, with a window when a display exists."""

from __future__ import annotations

from pathlib import Path

import typer

from facetrack.cli import app, common
from facetrack.cli.common import handle_errors, say
from tracker.pipeline import DEFAULT_MIN_QUALITY


@app.command("webcam")
@handle_errors
def webcam_command(
    camera: str = typer.Option("0", "--camera", help="Camera index (0, 1, ...) or device path (/dev/video0); "
                                                    "also a stream URL or 'synthetic' for a drawn moving face; "
                                                    "a video file is read once, every frame, to its end."),
    width: int | None = typer.Option(None, "--width", min=1, help="Ask the camera for this frame width."),
    height: int | None = typer.Option(None, "--height", min=1, help="Ask the camera for this frame height."),
    fps: float | None = typer.Option(None, "--fps", min=1.0, help="Ask the camera for this frame rate."),
    out: Path | None = typer.Option(None, "--out", help="Record the annotated frames to this .mp4 (H.264 or "
                                                        "mp4v: --codec)."),
    json_path: Path | None = typer.Option(None, "--json", help="Write one JSON line per processed frame here."),
    no_show: bool = typer.Option(False, "--no-show", help="No window (implied when there is no display)."),
    backend: common.BackendOption = common.BackendKind.onnx,
    device: common.DeviceOption = common.DeviceKind.auto,
    weights: common.WeightsOption = None,
    landmark_model: common.LandmarkModelOption = None,
    precision: common.PrecisionOption = common.PrecisionKind.auto,
    detect_every: common.DetectEveryOption = 10,
    smooth: bool = typer.Option(True, "--smooth/--no-smooth", help="One-Euro smoothing of points and box."),
    no_draw: bool = typer.Option(False, "--no-draw", help="Show and record the frames raw, without overlays."),
    min_presence: common.MinPresenceOption = None,
    min_quality: common.MinQualityOption = DEFAULT_MIN_QUALITY,
    detector: common.DetectorOption = None,
    max_faces: common.MaxFacesOption = None,
    max_frames: int = typer.Option(0, "--max-frames", min=0, help="Stop after N processed frames (0 = no limit)."),
    stall_timeout: float = typer.Option(3.0, "--stall-timeout", min=0.1,
                                        help="Seconds without a frame before the camera counts as gone "
                                             "(retried, reopened once, then the run stops with exit 1)."),
    sequential: bool = typer.Option(False, "--sequential",
                                    help="Capture, inference and output in one thread (for comparison)."),
    codec: common.CodecOption = common.CodecKind.auto,
) -> None:
    """Track the faces live: newest frame only (latency never grows), window, optional recording and JSON."""
    from tracker.session import ModelOptions, WebcamJob, run_job

    models = ModelOptions(weights, backend.value, device.value, landmark_model, detect_every, min_presence,
                          min_quality, detector=detector, max_faces=max_faces, precision=precision.value)
    run_job(WebcamJob(camera, width, height, fps, out, json_path, models, show=not no_show, smooth=smooth,
                      draw=not no_draw, threaded=not sequential, max_frames=max_frames or None,
                      stall_timeout_s=stall_timeout, codec=codec.value), log=say)
