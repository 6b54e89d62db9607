"""`facetrack bench [SOURCE]`: frames per second of every backend, device and pipeline stage."""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer

from core.errors import InputError
from facetrack.cli import app, common
from facetrack.cli.common import handle_errors
from tracker.pipeline import DEFAULT_DETECT_EVERY

CHOICES = {"backend": ("all", "onnx", "torch"), "device": ("all", "cpu", "cuda"),
           "scenario": ("all", "pipeline", "faces", "detectors")}


def say(line: str) -> None:
    """Progress on stderr (stdout holds the table)."""
    typer.echo(f"facetrack: {line}", err=True)


def _choice(option: str, value: str) -> tuple[str, ...]:
    value = value.strip().lower()
    choices = CHOICES[option]
    if value not in choices:
        raise InputError(f"--{option} {value}: expected one of {', '.join(choices)}")
    return choices[1:] if value == "all" else (value,)


def _scenarios(text: str) -> tuple[str, ...]:
    names = [v.strip().lower() for v in text.split(",") if v.strip()]
    for name in names or [text]:
        _choice("scenario", name)
    return CHOICES["scenario"][1:] if "all" in names else tuple(n for n in CHOICES["scenario"] if n in names)


def _counts(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(f"--faces {text}: expected face counts like 1,2,4,8") from None
    if not values:
        raise InputError(f"--faces {text}: expected face counts like 1,2,4,8")
    return tuple(sorted(set(values)))


def _size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    try:
        width, height = (int(v) for v in parts)
    except ValueError:
        raise InputError(f"--faces-size {text}: expected WIDTHxHEIGHT like 1280x720") from None
    return width, height


def _batches(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(f"--batch {text}: expected batch sizes like 1,8,32") from None
    if not values or min(values) < 1:
        raise InputError(f"--batch {text}: expected batch sizes of at least 1, like 1,8,32")
    return tuple(sorted(set(values)))


@app.command("bench")
@handle_errors
def bench_command(
    source: str | None = typer.Argument(None, help="Video file, stream URL, or 'synthetic' (640x480, no file). "
                                                   "Default: the shipped demo clip demo/demo.mp4."),
    backend: str = typer.Option("all", "--backend", help="all, onnx or torch."),
    device: str = typer.Option("all", "--device", help="all, cpu or cuda (cuda is skipped, with the reason, "
                                                       "when no usable GPU exists)."),
    frames: int = typer.Option(300, "--frames", help="Frames per end-to-end run (a shorter file ends sooner); "
                                                     "also the batch-1 iterations of the model timings."),
    warmup: int = typer.Option(20, "--warmup", help="Unmeasured model calls and pipeline frames first."),
    batch: str = typer.Option("1,8,32", "--batch", help="Batch sizes for model throughput."),
    repeat: int = typer.Option(3, "--repeat", help="Runs of every end-to-end measurement (median, min-max)."),
    live_frames: int = typer.Option(150, "--live-frames", help="Frames of the live-latency run (synthetic "
                                                               "640x480 at 30 fps); 0 skips it."),
    weights: Path | None = typer.Option(None, "--weights",
                                        help="Weights folder with manifest.json (default: the shipped weights/)."),
    landmark_model: str | None = typer.Option(None, "--landmark-model",
                                              help="Landmark model named in the manifest (default: its default)."),
    threads: int | None = typer.Option(None, "--threads", help="Model intra-op threads (ONNX Runtime, torch); "
                                                               "default: what `facetrack video` uses."),
    cv_threads: int | None = typer.Option(None, "--cv-threads", help="cv2.setNumThreads for the benchmark "
                                                                     "(default: OpenCV's own setting)."),
    detector: common.DetectorOption = None,
    precision: common.PrecisionOption = common.PrecisionKind.auto,
    max_faces: common.MaxFacesOption = None,
    detect_every: common.DetectEveryOption = DEFAULT_DETECT_EVERY,
    scenario: str = typer.Option("all", "--scenario", help="all, or some of pipeline (one face: models, stages, "
                                                           "end to end, live), faces (composed clips with "
                                                           "--faces faces in view), detectors (detector vs "
                                                           "regressor), comma-separated."),
    faces: str = typer.Option("1,2,4,8", "--faces", help="Faces in view of the composed clips (SOURCE tiled)."),
    faces_size: str = typer.Option("1280x720", "--faces-size", help="Frame size of the composed clips."),
    json_path: Path | None = typer.Option(None, "--json", help="Also write the full report as JSON here."),
    compare: tuple[Path, Path] | None = typer.Option(None, "--compare", help="Compare two --json reports "
                                                                            "(A B) instead of measuring."),
    vs: str | None = typer.Option(None, "--vs", help="Instead: `facetrack video` against a peer tracker doing the "
                                                     "same job on SOURCE (a video file), whole processes "
                                                     "alternating: mediapipe (FaceMesh). See docs/benchmarks.md."),
    vs_python: Path | None = typer.Option(None, "--vs-python", envvar="FACETRACK_MEDIAPIPE_PYTHON",
                                          help="--vs: the Python of the peer's own virtual environment "
                                               "(mediapipe 0.10.21, protobuf<5, opencv)."),
    runs: int = typer.Option(5, "--runs", min=1, help="--vs: measured runs of each job."),
) -> None:
    """Measure model latency and throughput, per-stage ms and end-to-end FPS of the real video pipeline, with
    1, 2, 4, 8 faces in view, and the multi-face detector's cost against the box regressor's; or, with --vs,
    `facetrack video` against a peer tracker (mediapipe) doing the same job."""
    from core.manifest import default_weights_dir
    from tracker.bench import BenchConfig, compare_reports, format_report, load_report, run_bench

    if compare:
        a, b = compare
        typer.echo(compare_reports(load_report(a), load_report(b), str(a), str(b)))
        return
    if vs is not None:
        _versus(vs, vs_python, runs, source, device, weights, landmark_model, detector, max_faces, detect_every,
                json_path, precision.value)
        return
    backends, devices = _choice("backend", backend), _choice("device", device)
    batches = _batches(batch)
    scenarios, counts, size = _scenarios(scenario), _counts(faces), _size(faces_size)
    if frames < 1 or repeat < 1:
        raise InputError("--frames and --repeat must be at least 1")
    if warmup < 0 or live_frames < 0:
        raise InputError("--warmup and --live-frames must be at least 0")
    claim = _claim(json_path)
    cfg = BenchConfig(source=source, weights=weights or default_weights_dir(), backends=backends, devices=devices,
                      frames=frames, warmup=warmup, batches=batches, repeat=repeat, live_frames=live_frames,
                      landmark_model=landmark_model, threads=threads, cv_threads=cv_threads,
                      detector=detector, max_faces=max_faces, detect_every=detect_every,
                      scenarios=scenarios, faces=counts, faces_size=size, precision=precision.value)
    with claim:
        report = run_bench(cfg, log=say)
        _write_json(claim, json_path, report)
    typer.echo(format_report(report))


def _claim(json_path: Path | None):
    """The --json file claimed for this run (written whole at the end, tracker.outfile), or a no-op."""
    if json_path is None:
        return contextlib.nullcontext()
    from tracker.outfile import OutputFile
    from tracker.sinks import check_output_path

    check_output_path(json_path, "--json")
    return OutputFile(json_path, "--json")


def _write_json(claim, json_path: Path | None, report: dict) -> None:
    if json_path is None:
        return
    import json

    from core.pathnames import shown

    claim.part.write_text(json.dumps(report, indent=1) + "\n")
    claim.commit()
    say(f"wrote {shown(json_path)}")


def _versus(peer: str, python: Path | None, runs: int, source: str | None, device: str, weights: Path | None,
            landmark_model: str | None, detector: str | None, max_faces: int | None, detect_every: int,
            json_path: Path | None, precision: str = "auto") -> None:
    """`--vs PEER`: `facetrack video` and the peer's job on the same clip (tracker.bench.versus)."""
    from core.pathnames import shown
    from tracker.bench.suite import default_source
    from tracker.bench.versus import VersusConfig, check_peer, format_versus, run_versus

    peer = peer.strip().lower()
    clip = default_source() if source is None else Path(source)
    if not clip.is_file():
        raise InputError(f"{shown(clip)}: --vs needs a video file (both jobs read the same clip)")
    devices = _choice("device", device)
    version = check_peer(peer, python)
    # mp4v: the codec the peer's OpenCV writer uses, so both encode the same way
    video_args = ["--device", "cuda" if devices == ("cuda",) else "cpu", "--codec", "mp4v",
                  "--detect-every", str(detect_every), "--precision", precision]
    for option, value in (("--weights", weights), ("--landmark-model", landmark_model), ("--detector", detector),
                          ("--max-faces", max_faces)):
        if value is not None:
            video_args += [option, str(value)]
    claim = _claim(json_path)
    cfg = VersusConfig(clip=clip, peer=peer, python=python, runs=runs, video_args=video_args,
                       peer_version=version)
    say(f"facetrack video vs {peer} {version} on {shown(clip)}")
    with claim:
        report = run_versus(cfg, log=say)
        _write_json(claim, json_path, report)
    typer.echo(format_versus(report))
