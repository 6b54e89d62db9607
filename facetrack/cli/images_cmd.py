"""`facetrack images PATH...`: find the face in still images, one JSON row per image."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import cv2
import typer

from core.errors import FacetrackError, InputError, Interrupted
from facetrack.cli import app
from facetrack.cli.common import (
    BackendKind,
    BackendOption,
    DeviceKind,
    DeviceOption,
    LandmarkModelOption,
    ThresholdOption,
    WeightsOption,
    handle_errors,
    say,
)
from tracker.pipeline import DEFAULT_THRESHOLD

WRITABLE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


@app.command("images")
@handle_errors
def images_command(
    paths: list[str] = typer.Argument(..., help="Image files and/or folders (searched recursively)."),
    out_dir: Path | None = typer.Option(None, "--out-dir", help="Write annotated copies here (same file names)."),
    json_path: Path | None = typer.Option(None, "--json", help="Write one JSON line per readable image here."),
    backend: BackendOption = BackendKind.onnx,
    device: DeviceOption = DeviceKind.auto,
    weights: WeightsOption = None,
    landmark_model: LandmarkModelOption = None,
    threshold: ThresholdOption = DEFAULT_THRESHOLD,
    no_draw: bool = typer.Option(False, "--no-draw", help="Copy the images raw into --out-dir, without overlays."),
) -> None:
    """Find the face in each image (box model, then landmarks); unreadable images are skipped and counted."""
    from core.manifest import default_weights_dir
    from core.signals import StopSignals, deferred_signals
    from tracker.draw import draw_frame_result
    from tracker.pipeline import build_tracker
    from tracker.sinks import JsonlSink, check_output_path, check_writable_folder, result_row
    from tracker.sources import ImageSource, image_paths

    names = image_paths(paths)
    if not names:
        raise InputError(f"no image files in {', '.join(paths)}")
    targets: dict[str, Path] = {}
    if out_dir is not None:
        targets = _plan_outputs(names, out_dir)
        check_writable_folder(out_dir if out_dir.is_dir() else out_dir.parent, f"--out-dir {out_dir}")
    if json_path is not None:
        check_output_path(json_path, "--json", [Path(n) for n in names])
        if out_dir is not None and json_path.resolve().parent == out_dir.resolve() and \
                json_path.name.lower() in {t.name.lower() for t in targets.values()}:
            raise InputError(f"--json {json_path}: is also an annotated image in --out-dir")

    outputs = [str(p) for p in (json_path, out_dir) if p is not None]
    done = with_face = 0
    interrupted = False
    with contextlib.ExitStack() as stack:
        tracker = build_tracker(weights or default_weights_dir(), backend=backend.value, device=device.value,
                                landmark_model=landmark_model, threshold=threshold, mode="image", log=say)
        source = stack.enter_context(ImageSource(names))
        if out_dir is not None:
            out_dir.mkdir(exist_ok=True)
        with deferred_signals():
            jsonl = stack.enter_context(JsonlSink(json_path)) if json_path is not None else None
        # Signals only set a flag from here: the image in hand is finished, then the loop stops.
        signals = stack.enter_context(StopSignals())
        for frame in source:
            try:
                result = tracker.step(frame)
            except FacetrackError:
                raise
            except Exception as exc:
                raise FacetrackError(f"{frame.name}: tracking failed ({type(exc).__name__}: {exc}); "
                                     f"{done} images done before it") from exc
            done += 1
            with_face += result.has_face
            if jsonl is not None:
                jsonl.write(result_row(result, tracker.point_names))
            if out_dir is not None:
                image = frame.image if no_draw else draw_frame_result(result)
                _write_image(targets[frame.name], image)
            if signals.event.is_set():
                interrupted = True
                break
        signals.closing = True
    skipped = ""
    if source.skipped:
        shown = ", ".join(source.skipped_names) + (", ..." if source.skipped > len(source.skipped_names) else "")
        reasons = ", ".join(f"{n} {reason} skipped" for reason, n in source.skip_reasons.items())
        skipped = f", {reasons} ({shown})"
    if interrupted:
        finalised = f"; outputs finalised: {', '.join(outputs)}" if outputs else ""
        raise Interrupted(f"interrupted after {done} images, {with_face} with a face{finalised}")
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
    """Encode and write atomically (a temporary file renamed into place): never half an image."""
    ok, data = cv2.imencode(path.suffix, image)
    if not ok:
        raise FacetrackError(f"{path}: cannot encode the image")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        data.tofile(str(tmp))
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise FacetrackError(f"{path}: cannot write ({exc.strerror})") from None
