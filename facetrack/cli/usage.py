"""Usage errors as one line, like every other error (README "Exit codes").

typer renders a bad option, value or command as a boxed, multi-line message. `OneLineErrorsGroup`, the
root app's group class, catches them where click raises them (parsing the root's options, resolving and
parsing a command, a `BadParameter` a command raises) and prints instead

    facetrack: error: No such option: --nope (Possible options: --no-flip-test); see 'facetrack images --help'

on stderr, exiting with the error's code (2 for usage errors). Running a command with no arguments where
that means "show the help" (`no_args_is_help`) still shows the help.
"""

from __future__ import annotations

import contextlib
from typing import Any

import typer
from typer.core import TyperGroup

try:  # typer >= 0.20 carries its own copy of click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - older typer on click itself
    from click.exceptions import ClickException, NoArgsIsHelpError, UsageError

PYDANTIC_PREFIX = "Value error, "  # what typer's value checks put before an enum's message


def usage_line(exc: ClickException) -> str:
    """The one line for a click error: `facetrack: error: <message>; see '<command> --help'`."""
    message = " ".join(exc.format_message().replace(PYDANTIC_PREFIX, "").split())  # click wraps some in lines
    ctx = getattr(exc, "ctx", None)
    if ctx is not None and ctx.command.get_help_option(ctx) is not None:
        message = f"{message.rstrip('.')}; see '{ctx.command_path} {max(ctx.help_option_names, key=len)}'"
    return f"facetrack: error: {message}"


def usage_error(message: str) -> UsageError:
    """A usage error for a command to raise (options that exclude each other, ...): its one line, exit 2."""
    return UsageError(message)


@contextlib.contextmanager
def one_line_errors():
    """Turn a click error raised inside into its one line on stderr and `typer.Exit(its exit code)`."""
    try:
        yield
    except NoArgsIsHelpError:
        raise  # typer prints the help for it
    except ClickException as exc:
        typer.echo(usage_line(exc), err=True)
        raise typer.Exit(exc.exit_code) from None


class OneLineErrorsGroup(TyperGroup):
    """The root group: its option parsing and everything it invokes report click errors as one line."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        with one_line_errors():
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: Any) -> Any:
        with one_line_errors():
            return super().invoke(ctx)
