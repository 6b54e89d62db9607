"""`facetrack video IN... [--out OUT.mp4 | --out-dir DIR [--jobs N | --ray [--ray-address ADDR]]
[--skip-existing]]`: track every face through video files, frame by frame (several files one after another,
N at once with --jobs, or as Ray tasks with --ray: `tracker.ray_pool`)."""

from __future__ import annotations

from pathlib import Path

import typer

from facetrack.cli import app, common
from facetrack.cli.common import handle_errors, say
from facetrack.cli.usage import usage_error
from tracker.pipeline import DEFAULT_MIN_QUALITY


@app.command("video")
@handle_errors
def video_command(
    sources: list[str] = typer.Argument(..., help="Video files, folders (their video files, searched recursively), "
                                        "quoted globs ('clips/*.mov'), - (paths on standard input), an animated "
                                        "GIF/WebP/PNG (each frame at its own duration), a stream URL OpenCV can "
                                        "open, or 'synthetic?width=W&height=H&frames=N' (a drawn moving face)."),
    out: Path | None = typer.Option(None, "--out", help="Annotated output video (.mp4, H.264 or mp4v: "
                                                        "--codec): the input's size (odd sizes too), one frame per "
                                                        "input frame, each at its own time "
                                                        "(variable frame rates keep their timing)."),
    json_path: Path | None = typer.Option(None, "--json", help="Write one JSON line per frame here (- : standard "
                                                               "output)."),
    csv_path: common.CsvOption = None,
    out_dir: Path | None = typer.Option(None, "--out-dir", help="Write each video's NAME.mp4 and NAME.jsonl here, "
                                        "at its path relative to the inputs (needed for several videos). With no "
                                        "output option at all: runs/track/exp, exp2, ..."),
    max_frames: int | None = typer.Option(None, "--max-frames", min=1, help="Stop after N frames."),
    stride: int = typer.Option(1, "--stride", min=1, help="Process every Nth frame (each keeps its own time)."),
    start: float | None = typer.Option(None, "--start", min=0.0, help="Begin at the first frame shown at or after "
                                                                      "this time (seconds, presentation time)."),
    end: float | None = typer.Option(None, "--end", min=0.0, help="Stop before the first frame shown at or after "
                                                                  "this time (seconds, presentation time)."),
    show: bool = typer.Option(False, "--show", help="Also show a window while processing (needs a display; "
                                                    "q or Esc stops)."),
    backend: common.BackendOption = common.BackendKind.onnx,
    device: common.DeviceOption = common.DeviceKind.auto,
    weights: common.WeightsOption = None,
    landmark_model: common.LandmarkModelOption = None,
    precision: common.PrecisionOption = common.PrecisionKind.auto,
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
    codec: common.CodecOption = common.CodecKind.auto,
    keep_audio: bool = typer.Option(False, "--keep-audio", help="Copy the input's sound into the --out video "
                                    "(as it is where mp4 takes the codec, else as AAC), cut to the frames kept "
                                    "and in sync with them; an input without sound is said and written silent."),
    jobs_n: int | None = typer.Option(None, "--jobs", min=1, show_default=False,
                                      help="Run N videos at once, in N worker processes (models loaded once "
                                           "each, the cores shared out among them). Default 1."),
    ray: bool = typer.Option(False, "--ray", help="Run each video as a Ray task (pip install 'facetrack[ray]'): "
                             "on the Ray cluster this machine knows (RAY_ADDRESS, a 'ray start'), else on a "
                             "local instance started for the run. On several machines the inputs and --out-dir "
                             "must be on a file system every node shares."),
    ray_address: str | None = typer.Option(None, "--ray-address", metavar="ADDR",
                                           help="Run the videos as Ray tasks on this cluster (implies --ray): "
                                                "auto, HOST:6379, or ray://HOST:10001."),
    ray_cpus: int = typer.Option(1, "--ray-cpus-per-task", min=1, help="CPUs Ray gives each video's task (its "
                                 "model and OpenCV threads)."),
    skip_existing: bool = typer.Option(False, "--skip-existing", help="Pass over a video whose outputs are "
                                       "already complete (a re-run finishes what is missing)."),
) -> None:
    """Track every face in a video: annotated .mp4 and JSON lines (default: into runs/track/expN), every frame
    in order, or the part --start/--end/--stride/--max-frames asks for."""
    from tracker.batch import run_videos, video_jobs
    from tracker.ray_pool import RayOptions, require_ray
    from tracker.session import ModelOptions, VideoJob

    ray_options = None
    if ray_address is not None and not ray_address.strip():
        raise usage_error("--ray-address: give an address (auto, HOST:6379 or ray://HOST:10001), or --ray")
    if ray or ray_address is not None:
        ray_options = RayOptions(ray_address.strip() if ray_address else None, ray_cpus)
        if jobs_n is not None:
            raise usage_error(f"{ray_options.option} and --jobs exclude each other: Ray places the videos "
                              "(--ray-cpus-per-task sets each one's CPUs)")
        require_ray(ray_options.option)  # before any output folder is made

    models = ModelOptions(weights, backend.value, device.value, landmark_model, detect_every, min_presence,
                          min_quality, detector=detector, max_faces=max_faces, precision=precision.value)
    template = VideoJob("", out, json_path, models, show=show, smooth=smooth, draw=not no_draw,
                        threaded=not sequential, csv_path=csv_path, start_s=start, end_s=end, stride=stride,
                        max_frames=max_frames, codec=codec.value, keep_audio=keep_audio)
    jobs, run_dir = video_jobs(sources, template, out_dir)
    run_videos(jobs, run_dir, log=say, workers=jobs_n or 1, skip_existing=skip_existing, table=common.echo_err,
               ray=ray_options)
