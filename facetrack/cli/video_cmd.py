"""`facetrack video IN --out OUT.mp4`: track the face through a video file, frame by frame."""

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
from tracker.pipeline import DEFAULT_THRESHOLD


@app.command("video")
@handle_errors
def video_command(
    source: str = typer.Argument(..., help="Input video file, a stream URL OpenCV can open, or "
                                           "'synthetic?width=W&height=H&frames=N' (a drawn moving face)."),
    out: Path = typer.Option(..., "--out", help="Annotated output video (.mp4, mp4v): the input's size and fps, "
                                                "one frame per input frame."),
    json_path: Path | None = typer.Option(None, "--json", help="Also write one JSON line per frame here."),
    show: bool = typer.Option(False, "--show", help="Also show a window while processing (needs a display; "
                                                    "q or Esc stops)."),
    backend: BackendOption = BackendKind.onnx,
    device: DeviceOption = DeviceKind.auto,
    weights: WeightsOption = None,
    landmark_model: LandmarkModelOption = None,
    detect_every: DetectEveryOption = 10,
    smooth: bool | None = typer.Option(None, "--smooth/--no-smooth",
                                       help="One-Euro smoothing of points and box (default: off for files, "
                                            "on for live streams)."),
    no_draw: bool = typer.Option(False, "--no-draw", help="Write the frames raw, without box, points or text."),
    threshold: ThresholdOption = DEFAULT_THRESHOLD,
    sequential: bool = typer.Option(False, "--sequential",
                                    help="Capture, inference and output in one thread (for comparison)."),
) -> None:
    """Track the face in a video: annotated .mp4 and optional JSON lines, every frame in order."""
    from core.manifest import default_weights_dir
    from core.signals import deferred_signals
    from tracker.pipeline import build_tracker
    from tracker.runtime import run
    from tracker.sinks import JsonlSink, VideoSink, WindowSink, check_output_path, display_available
    from tracker.sources import is_synthetic, is_url, open_video

    inputs = [] if is_url(source) or is_synthetic(source) else [Path(source)]
    check_output_path(out, "--out", inputs, suffixes=(".mp4",))
    if json_path is not None:
        check_output_path(json_path, "--json", inputs, others=[out])
    if show and not display_available():
        say("no display (DISPLAY / WAYLAND_DISPLAY unset): not showing a window")
        show = False

    with contextlib.ExitStack() as stack:
        video_source = open_video(source)
        stack.callback(video_source.close)
        say(video_source.describe())
        tracker = build_tracker(weights or default_weights_dir(), backend=backend.value, device=device.value,
                                landmark_model=landmark_model, detect_every=detect_every, threshold=threshold,
                                smooth=video_source.live if smooth is None else smooth,
                                mode="live" if video_source.live else "video", log=say)
        say(f"models: box {tracker.box_backend.name}, landmarks {tracker.landmark_backend.meta.model} "
            f"{tracker.landmark_backend.name}")
        with deferred_signals():  # each output is registered for closing before an interrupt can land
            video = stack.enter_context(VideoSink(out, video_source.fps, video_source.width, video_source.height))
            jsonl = stack.enter_context(JsonlSink(json_path)) if json_path is not None else None
        window = WindowSink("facetrack video") if show else None
        if window is not None:
            stack.callback(window.close)
        outputs = [str(out)] + ([str(json_path)] if json_path is not None else [])
        try:
            stats = run(video_source, tracker, video=video, jsonl=jsonl, window=window, draw=not no_draw,
                        threaded=not sequential, on_result=_progress(video_source.frame_count, stack))
        except FacetrackError as exc:
            raise kept_outputs(exc, outputs) from None
    say(stats.summary())
    if stats.interrupted:
        raise Interrupted(f"interrupted after {stats.written} frames; outputs finalised: {', '.join(outputs)}")
    say(f"wrote {' and '.join(outputs)}")


def kept_outputs(exc: FacetrackError, outputs: list[str]) -> FacetrackError:
    """The run's error with what was kept appended: `...; kept 25 frames in out.mp4, out.jsonl`."""
    stats = getattr(exc, "stats", None)
    if stats is not None and outputs:
        exc.args = (f"{exc}; kept {stats.written} frames in {', '.join(outputs)}",)
    return exc


def _progress(total: int | None, stack: contextlib.ExitStack):
    """A tqdm bar (frames, FPS, latency) fed by the runtime; silent when stderr is not a terminal."""
    from tqdm import tqdm

    bar = tqdm(total=total, unit="frame", dynamic_ncols=True, disable=None, leave=True)
    stack.callback(bar.close)

    def update(result, stats) -> None:
        bar.update(1)
        if stats.processed % 15 == 0:
            bar.set_postfix_str(f"latency {stats.latency_ms(50):.0f} ms", refresh=False)

    return update
