"""What every command shares: options, the reporter, output and error handling."""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from swarmboot.errors import ExitCode, SwarmbootError
from swarmboot.report import ConsoleReporter

__all__ = ["Ctx", "JsonOpt", "State", "command", "print_json"]

F = TypeVar("F", bound=Callable[..., Any])

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
TemplatesOpt = Annotated[
    Path | None,
    typer.Option(
        "--templates",
        metavar="DIR",
        file_okay=False,
        help="Template folder with a catalog.toml (default: swarmboot's templates/).",
    ),
]


@dataclass(frozen=True)
class State:
    """Settings from the global options, handed to each command through the context."""

    verbose: bool = False
    quiet: bool = False

    @property
    def reporter(self) -> ConsoleReporter:
        return ConsoleReporter(verbose=self.verbose, quiet=self.quiet)

    @property
    def debug(self) -> bool:
        return self.verbose or os.environ.get("SWARMBOOT_DEBUG") == "1"


Ctx = typer.Context


def state_of(ctx: typer.Context) -> State:
    """The global options' settings (defaults when the command runs outside the app)."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()


def fail(message: str, code: int, *, debug: bool) -> None:
    if debug:
        traceback.print_exc()
    for line in message.splitlines() or [message]:  # one line per problem
        typer.echo(f"Error: {line}", err=True)
    raise typer.Exit(code)


def command(fn: F) -> F:
    """Turn swarmboot's errors into one `Error: …` line and an exit code, no traceback.

    The wrapped command takes `ctx: typer.Context` as its first parameter.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = kwargs.get("ctx") or (args[0] if args else None)
        debug = state_of(ctx).debug if hasattr(ctx, "find_root") else State().debug
        try:
            return fn(*args, **kwargs)
        except SwarmbootError as exc:
            fail(str(exc), exc.exit_code, debug=debug)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            fail(f"{where}{exc.strerror or exc}", ExitCode.ERROR, debug=debug)
        except KeyboardInterrupt:
            typer.echo("Interrupted.", err=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
