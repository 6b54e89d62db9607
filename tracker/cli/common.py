"""What every command shares: turning known errors into one line and an exit code."""

from __future__ import annotations

import functools
import sys

import typer

from tracker.errors import EXIT_INTERRUPTED, FacetrackError


def fail(message: str, code: int) -> "typer.Exit":
    """Print `facetrack: error: message` to stderr and return the Exit to raise."""
    typer.echo(f"facetrack: error: {message}", err=True)
    return typer.Exit(code)


def handle_errors(fn):
    """Decorate a command: FacetrackError -> one line + its exit code; Ctrl+C -> 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FacetrackError as exc:
            raise fail(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("facetrack: interrupted", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except BrokenPipeError:
            sys.stderr.close()
            raise typer.Exit(1) from None

    return wrapper
