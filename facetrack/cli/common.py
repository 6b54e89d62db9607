"""What every command shares: errors as one line and an exit code, messages, the tracker's options."""

from __future__ import annotations

import functools
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from core.errors import EXIT_FAILURE, EXIT_INTERRUPTED, FacetrackError, Interrupted
from core.signals import sigterm_as_interrupt


def fail(message: str, code: int) -> "typer.Exit":
    """Print `facetrack: error: message` to stderr and return the Exit to raise."""
    typer.echo(f"facetrack: error: {message}", err=True)
    return typer.Exit(code)


def _caused_by_interrupt(exc: BaseException) -> bool:
    """True when Ctrl+C/SIGTERM is what really stopped it (e.g. an import cut short becomes ImportError)."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def handle_errors(fn):
    """Decorate a command: FacetrackError -> one line + its exit code; Ctrl+C or SIGTERM -> 130.

    An interrupt is not an error: it prints `facetrack: interrupted ...` (what was finalised) and
    exits 130. SIGTERM is handled like Ctrl+C for the whole command, so both finalise outputs.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with sigterm_as_interrupt():
                return fn(*args, **kwargs)
        except Interrupted as exc:
            typer.echo(f"facetrack: {exc}", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except FacetrackError as exc:
            raise fail(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("facetrack: interrupted", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except BrokenPipeError:
            sys.stderr.close()
            raise typer.Exit(EXIT_FAILURE) from None
        except OSError as exc:  # disk full, permission lost mid-run...: one line, not a traceback
            if _caused_by_interrupt(exc):
                typer.echo("facetrack: interrupted", err=True)
                raise typer.Exit(EXIT_INTERRUPTED) from None
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            raise fail(f"{where}{exc.strerror or exc}", EXIT_FAILURE) from None
        except MemoryError:
            raise fail("out of memory; try smaller inputs or batches", EXIT_FAILURE) from None
        except Exception as exc:
            if _caused_by_interrupt(exc):
                typer.echo("facetrack: interrupted", err=True)
                raise typer.Exit(EXIT_INTERRUPTED) from None
            raise

    return wrapper


class BackendKind(str, Enum):
    """Model backends."""

    onnx = "onnx"
    torch = "torch"


class DeviceKind(str, Enum):
    """Devices."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


def say(line: str) -> None:
    """An informational line on stderr (stdout stays free for data)."""
    typer.echo(f"facetrack: {line}", err=True)


def echo_err(line: str) -> None:
    """A line on stderr as it is (a table's row), without the `facetrack: ` prefix."""
    typer.echo(line, err=True)


# Options shared by the commands that run the tracker (video, webcam, images).
BackendOption = Annotated[BackendKind, typer.Option("--backend",
                                                    help="onnx (ONNX Runtime, default) or torch (checkpoints).")]
DeviceOption = Annotated[DeviceKind, typer.Option("--device",
                                                  help="auto (CUDA when a usable GPU exists), cpu or cuda.")]
WeightsOption = Annotated[Path | None, typer.Option(
    "--weights", help="Weights folder with manifest.json (default: the shipped weights), or a training run "
                      "folder or checkpoint (RUN/best.pt): that model runs with torch, the other one from the "
                      "shipped weights.")]


class PrecisionKind(str, Enum):
    """ONNX graph precisions (core.manifest.GRAPH_TABLES)."""

    auto = "auto"
    fp32 = "fp32"
    fp16 = "fp16"
    int8 = "int8"


PrecisionOption = Annotated[PrecisionKind, typer.Option(
    "--precision", help="Which ONNX graph of each model runs: fp32, fp16 or int8, as the weights manifest lists "
                        "them; auto: each model's most precise graph, or on the CPU its int8 graph where the export "
                        "measured it within 0.1 NME points (0.01 IoU) of fp32 and faster (--backend torch: auto or "
                        "fp32).")]
LandmarkModelOption = Annotated[str | None, typer.Option(
    "--landmark-model", help="Landmark model named in the manifest (default: its default).")]
DetectEveryOption = Annotated[int, typer.Option("--detect-every", min=1,
                                                help="While tracking, run the face detector every N frames.")]
MinPresenceOption = Annotated[float | None, typer.Option(
    "--min-presence", "--threshold", min=0.0, max=1.0,
    help="Lowest face score (0..1) the face detector must give for a face, checked on every detector frame "
         "(default: the detector's own threshold, 0.95 for the regressor); with a landmark model that outputs "
         "a face quality, boxes from 0.5 up are candidates that --min-quality decides (--threshold: its old "
         "name, still accepted).")]
MinQualityOption = Annotated[float, typer.Option(
    "--min-quality", min=0.0, max=1.0,
    help="Lowest face quality (0..1) for a face, with landmark models that output one: below it a track is "
         "dropped and an image has no face. Models without a quality output ignore it.")]
DetectorOption = Annotated[str | None, typer.Option(
    "--detector", help="Face detector: centernet (the multi-face detector) or regressor (the course project's "
                       "single-face box regressor); default: the weights manifest's default_detector, else "
                       "the regressor.")]
MaxFacesOption = Annotated[int | None, typer.Option(
    "--max-faces", min=0, help="Most faces followed at once; the older tracks stay, new faces wait (0: no limit; "
                               "default: no limit for files and images, 4 for cameras and live streams).")]


class CodecKind(str, Enum):
    """Video codecs of an annotated .mp4 (tracker.mp4_codec)."""

    auto = "auto"
    h264 = "h264"
    mp4v = "mp4v"


CodecOption = Annotated[CodecKind, typer.Option(
    "--codec", help="Codec of the --out video: h264 (H.264, plays in browsers; even sizes), mp4v (MPEG-4 Part 2, "
                    "any size), or auto: H.264 where it can be written, else mp4v (odd sizes keep their size); "
                    "the 'wrote' line says which.")]
CsvOption = Annotated[Path | None, typer.Option(
    "--csv", help="Write one CSV row per face here, header first (- : standard output).")]
