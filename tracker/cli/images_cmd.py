"""`facetrack images PATH...`: find the face in still images, one JSON row per image."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import cv2
import typer

from tracker.cli import app
from tracker.cli.common import handle_errors
from tracker.cli.video_cmd import BackendKind, DeviceKind, say
from tracker.errors import FacetrackError, InputError

WRITABLE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


@app.command("images")
@handle_errors
def images_command(
    paths: list[str] = typer.Argument(..., help="Image files and/or folders (searched recursively)."),
    out_dir: Path | None = typer.Option(None, "--out-dir", help="Write annotated copies here (same file names)."),
    json_path: Path | None = typer.Option(None, "--json", help="Write one JSON line per readable image here."),
    backend: BackendKind = typer.Option(BackendKind.onnx, "--backend",
                                        help="onnx (ONNX Runtime, default) or torch (checkpoints)."),
    device: DeviceKind = typer.Option(DeviceKind.auto, "--device",
                                      help="auto (CUDA when a usable GPU exists), cpu or cuda."),
    weights: Path | None = typer.Option(None, "--weights",
                                        help="Weights folder with manifest.json (default: the shipped weights/)."),
    landmark_model: str | None = typer.Option(None, "--landmark-model",
                                              help="Landmark model named in the manifest (default: its default)."),
    threshold: float = typer.Option(0.5, "--threshold", min=0.0, max=1.0, help="Face presence score needed."),
    no_draw: bool = typer.Option(False, "--no-draw", help="Copy the images raw into --out-dir, without overlays."),
) -> None:
    """Find the face in each image (box model, then landmarks); unreadable images are skipped and counted."""
    from tracker.draw import draw_frame_result
    from tracker.pipeline import build_tracker
    from tracker.sinks import JsonlSink, check_output_path, result_row
    from tracker.sources import ImageSource, image_paths
    from tracker.weights import default_weights_dir

    names = image_paths(paths)
    if not names:
        raise InputError(f"no image files in {', '.join(paths)}")
    targets: dict[str, Path] = {}
    if out_dir is not None:
        targets = _plan_outputs(names, out_dir)
    if json_path is not None:
        check_output_path(json_path, "--json", [Path(n) for n in names])
    if out_dir is not None:
        out_dir.mkdir(exist_ok=True)

    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    with contextlib.ExitStack() as stack:
        stack.callback(signal.signal, signal.SIGTERM, previous)
        tracker = build_tracker(weights or default_weights_dir(), backend=backend.value, device=device.value,
                                landmark_model=landmark_model, threshold=threshold, mode="image", log=say)
        jsonl = None
        if json_path is not None:
            jsonl = JsonlSink(json_path)
            stack.callback(jsonl.close)
        source = ImageSource(names)
        stack.callback(source.close)
        done = with_face = 0
        for frame in source:
            result = tracker.step(frame)
            done += 1
            with_face += result.has_face
            if jsonl is not None:
                jsonl.write(result_row(result, tracker.point_names))
            if out_dir is not None:
                image = frame.image if no_draw else draw_frame_result(result)
                _write_image(targets[frame.name], image)
    skipped = f", {source.skipped} unreadable skipped" if source.skipped else ""
    say(f"{done} images, {with_face} with a face{skipped}")


def _plan_outputs(names: list[str], out_dir: Path) -> dict[str, Path]:
    """Output file per input (same name; a numbered suffix on clashes); refuses to overwrite an input."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out-dir {out_dir}: is a file, not a folder")
    if not out_dir.exists() and not out_dir.parent.is_dir():
        raise InputError(f"--out-dir {out_dir}: folder {out_dir.parent} does not exist")
    targets: dict[str, Path] = {}
    used: set[str] = set()
    for name in names:
        src = Path(name)
        suffix = src.suffix.lower() if src.suffix.lower() in WRITABLE_SUFFIXES else ".png"
        stem, candidate, n = src.stem, src.stem + suffix, 1
        while candidate.lower() in used:
            candidate, n = f"{stem}_{n}{suffix}", n + 1
        used.add(candidate.lower())
        target = out_dir / candidate
        if target.exists() and src.exists() and os.path.samefile(target, src):
            raise InputError(f"--out-dir {out_dir}: would overwrite the input {name}")
        targets[name] = target
    return targets


def _write_image(path: Path, image) -> None:
    ok, data = cv2.imencode(path.suffix, image)
    if not ok:
        raise FacetrackError(f"{path}: cannot encode the image")
    data.tofile(str(path))


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt
