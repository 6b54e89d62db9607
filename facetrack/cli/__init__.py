"""The `facetrack` command: one root typer app, one module per command."""

from __future__ import annotations

import typer

from core import __version__
from facetrack.cli.usage import OneLineErrorsGroup

app = typer.Typer(
    name="facetrack",
    help="Real-time four-point face landmark tracker: eyes, nose tip, mouth centre.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=OneLineErrorsGroup,  # usage errors: one `facetrack: error: ...` line, exit 2
    rich_markup_mode=None,  # plain help: full option names, no <bool> placeholders, [default: ...] shown as written
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"facetrack {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Real-time four-point face landmark tracker: eyes, nose tip, mouth centre."""


def _register() -> None:
    # Each command module adds itself to `app`; imports stay light (no torch) until a command runs.
    import importlib

    for name in ("data", "train", "eval", "plot", "export", "video", "webcam", "images", "bench"):
        try:
            importlib.import_module(f"facetrack.cli.{name}_cmd")
        except ModuleNotFoundError as exc:
            if exc.name != f"facetrack.cli.{name}_cmd":
                raise


_register()


def main() -> None:
    """Console-script entry point."""
    app()
