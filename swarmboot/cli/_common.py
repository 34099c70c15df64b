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
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from swarmboot.errors import ExitCode, SwarmbootError
from swarmboot.report import ConsoleReporter

if TYPE_CHECKING:
    from swarmboot.upgrade import UpgradeMode

__all__ = [
    "Ctx",
    "DockerOpt",
    "ImageOpt",
    "JsonOpt",
    "PackagesOpt",
    "State",
    "command",
    "print_json",
    "upgrade_mode",
]

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

PackagesOpt = Annotated[
    bool,
    typer.Option(
        "--packages",
        help="Upgrade every package (apt-get dist-upgrade), rebooting through GRUB when the "
        "kernel changed. The default.",
    ),
]
DockerOpt = Annotated[
    bool, typer.Option("--docker", help="Upgrade Docker's packages only (containerd with them).")
]
ImageOpt = Annotated[
    str | None,
    typer.Option(
        "--image",
        metavar="IMAGE",
        help="Rebuild each node onto IMAGE (e.g. linode/debian13) with the spec's script; the "
        "spec's cluster.image must say IMAGE.",
    ),
]


def upgrade_mode(packages: bool, docker: bool, image: str | None) -> UpgradeMode:
    """The mode the options ask for (packages when none); two of them: a usage error."""
    from swarmboot.upgrade import UpgradeMode, UpgradeUsage

    given = [name for name, on in (("--packages", packages), ("--docker", docker)) if on]
    if image is not None:
        given.append("--image")
    if len(given) > 1:
        raise UpgradeUsage(
            f"{' and '.join(given)} were given together: an upgrade has one mode",
            hint="give one of --packages (the default), --docker and --image IMAGE",
        )
    if image is not None:
        return UpgradeMode("image", image)
    return UpgradeMode("docker" if docker else "packages")


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
