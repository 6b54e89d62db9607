"""`facetrack webcam`: track the face live from a camera, with a window when a display exists."""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer

from core.errors import FacetrackError, Interrupted
from facetrack.cli import app
from facetrack.cli.common import (
    BackendKind,
    BackendOption,
    DetectEveryOption,
    DeviceKind,
    DeviceOption,
    LandmarkModelOption,
    ThresholdOption,
    WeightsOption,
    handle_errors,
    say,
)
from facetrack.cli.video_cmd import kept_outputs
from tracker.pipeline import DEFAULT_THRESHOLD


@app.command("webcam")
@handle_errors
def webcam_command(
    camera: str = typer.Option("0", "--camera", help="Camera index (0, 1, ...) or device path (/dev/video0); "
                                                    "also a stream URL or 'synthetic' for a drawn moving face."),
    width: int | None = typer.Option(None, "--width", min=1, help="Ask the camera for this frame width."),
    height: int | None = typer.Option(None, "--height", min=1, help="Ask the camera for this frame height."),
    fps: float | None = typer.Option(None, "--fps", min=1.0, help="Ask the camera for this frame rate."),
    out: Path | None = typer.Option(None, "--out", help="Record the annotated frames to this .mp4 (mp4v)."),
    json_path: Path | None = typer.Option(None, "--json", help="Write one JSON line per processed frame here."),
    no_show: bool = typer.Option(False, "--no-show", help="No window (implied when there is no display)."),
    backend: BackendOption = BackendKind.onnx,
    device: DeviceOption = DeviceKind.auto,
    weights: WeightsOption = None,
    landmark_model: LandmarkModelOption = None,
    detect_every: DetectEveryOption = 10,
    smooth: bool = typer.Option(True, "--smooth/--no-smooth", help="One-Euro smoothing of points and box."),
    no_draw: bool = typer.Option(False, "--no-draw", help="Show and record the frames raw, without overlays."),
    threshold: ThresholdOption = DEFAULT_THRESHOLD,
    max_frames: int = typer.Option(0, "--max-frames", min=0, help="Stop after N processed frames (0 = no limit)."),
    stall_timeout: float = typer.Option(3.0, "--stall-timeout", min=0.1,
                                        help="Seconds without a frame before the camera counts as gone "
                                             "(retried, reopened once, then the run stops with exit 1)."),
    sequential: bool = typer.Option(False, "--sequential",
                                    help="Capture, inference and output in one thread (for comparison)."),
) -> None:
    """Track the face live: newest frame only (latency never grows), window, optional recording and JSON."""
    from core.manifest import default_weights_dir
    from core.signals import deferred_signals
    from tracker.pipeline import build_tracker
    from tracker.runtime import run
    from tracker.sinks import JsonlSink, VideoSink, WindowSink, check_output_path, display_available
    from tracker.sources import open_camera

    if out is not None:
        check_output_path(out, "--out", suffixes=(".mp4",))
    if json_path is not None:
        check_output_path(json_path, "--json", others=[out] if out is not None else [])
    show = not no_show
    if show and not display_available():
        say("no display (DISPLAY / WAYLAND_DISPLAY unset): running without a window (--no-show implied)")
        show = False

    with contextlib.ExitStack() as stack:
        source = open_camera(camera, width, height, fps)
        stack.callback(source.close)
        say(source.describe())
        tracker = build_tracker(weights or default_weights_dir(), backend=backend.value, device=device.value,
                                landmark_model=landmark_model, detect_every=detect_every, threshold=threshold,
                                smooth=smooth, mode="live" if source.live else "video", log=say)
        say(f"models: box {tracker.box_backend.name}, landmarks {tracker.landmark_backend.meta.model} "
            f"{tracker.landmark_backend.name}")
        source.stall_timeout_s = stall_timeout
        with deferred_signals():  # each output is registered for closing before an interrupt can land
            video = stack.enter_context(VideoSink(out, source.fps, source.width, source.height)) if out else None
            jsonl = stack.enter_context(JsonlSink(json_path)) if json_path is not None else None
        window = None
        if show:
            window = WindowSink("facetrack webcam")
            stack.callback(window.close)
            say("press q or Esc in the window to stop")
        else:
            say("press Ctrl+C to stop")
        outputs = [str(p) for p in (out, json_path) if p is not None]
        try:
            stats = run(source, tracker, video=video, jsonl=jsonl, window=window, draw=not no_draw,
                        threaded=not sequential, max_frames=max_frames or None)
        except FacetrackError as exc:
            raise kept_outputs(exc, outputs) from None
    say(stats.summary())
    finalised = f"; outputs finalised: {', '.join(outputs)}" if outputs else ""
    if stats.interrupted:
        raise Interrupted(f"interrupted after {stats.written} frames{finalised}")
    if outputs:
        say(f"wrote {' and '.join(outputs)}")
