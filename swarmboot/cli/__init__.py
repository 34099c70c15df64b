"""The `swarmboot` command: options and wiring only; each command calls into the core."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from swarmboot import __version__
from swarmboot.cli import (
    cluster,
    deploy,
    lb,
    node,
    recovery,
    render,
    rotation,
    sim,
    stackscript,
    upgrade,
)
from swarmboot.cli._common import State
from swarmboot.errors import ExitCode

__all__ = ["app", "main"]


class _Swarmboot(TyperGroup):
    """The root command, which says an unexpected argument is there without repeating it.

    Typer's usage error repeats extra arguments ("Got unexpected extra argument (…)"), and the
    likeliest one is a token pasted after the command: the usage error of every command,
    however deep, passes through here and is said in one line that names no value.
    """

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            message = getattr(exc, "message", None)
            where = getattr(exc, "ctx", None)
            if not (
                isinstance(message, str)
                and message.startswith("Got unexpected extra argument")
                and getattr(exc, "exit_code", None) == ExitCode.USAGE
                and where is not None
            ):
                raise
            typer.echo(f"Error: {_extra_arguments(where)}", err=True)
            raise typer.Exit(ExitCode.USAGE) from None


def _extra_arguments(ctx: typer.Context) -> str:
    names = [
        p.metavar or (p.name or "").upper()
        for p in ctx.command.params
        if p.param_type_name == "argument"
    ]
    takes = " and ".join(names) if names else "no arguments"
    return (
        f"{ctx.command_path} takes {takes} and was given more arguments, not repeated here "
        "(one may be a secret); remove them, and put a token in LINODE_TOKEN, never on the "
        f"command line (see {ctx.command_path} -h)"
    )


app = typer.Typer(
    cls=_Swarmboot,
    name="swarmboot",
    help="Turn a small cluster spec into a running Docker Swarm on Linode.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"swarmboot {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="Show more detail, and a traceback on errors.")
    ] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Show only errors.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    ctx.obj = State(verbose=verbose, quiet=quiet)
    # Libraries log through logging; without -v their noise (paramiko's connection errors,
    # which swarmboot reports itself) stays out of the terminal.
    logging.basicConfig(
        level=logging.WARNING if verbose else logging.CRITICAL, format="%(name)s: %(message)s"
    )
    logging.getLogger("paramiko").setLevel(logging.WARNING if verbose else logging.CRITICAL)


app.command("plan")(cluster.plan_cmd)
app.command("up")(cluster.up_cmd)
app.command("status")(cluster.status_cmd)
app.command("repair")(cluster.repair_cmd)
app.command("recover")(recovery.recover_cmd)
app.command("backup")(recovery.backup_cmd)
app.command("restore")(recovery.restore_cmd)
app.command("rotate")(rotation.rotate_cmd)
app.command("upgrade")(upgrade.upgrade_cmd)
app.add_typer(node.app, name="node")
app.add_typer(lb.app, name="lb")
app.command("deploy")(deploy.deploy_cmd)
app.add_typer(deploy.app, name="secret")
app.command("down")(cluster.down_cmd)
app.command("known-hosts")(cluster.known_hosts_cmd)
app.command("adopt")(cluster.adopt_cmd)
app.command("render")(render.render_cmd)
app.add_typer(stackscript.app, name="stackscript")
app.command("sim")(sim.sim_cmd)


def main() -> None:
    app()
