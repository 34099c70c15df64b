"""`swarmboot stackscript …`: StackScripts and their user-defined fields."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from swarmboot import udf
from swarmboot.cli._common import Ctx, JsonOpt, command, print_json, state_of

app = typer.Typer(help="StackScripts and their user-defined fields (UDFs).", no_args_is_help=True)


@app.command("udfs")
@command
def udfs_cmd(
    ctx: Ctx,
    script: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            metavar="SCRIPT",
            help="A StackScript file, e.g. stackscripts/debian12-swarm-node.sh.",
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """List a StackScript's UDFs as Linode parses them; a broken header names its line."""
    fields = udf.parse_udfs(script.read_text(encoding="utf-8"), source=str(script))
    if as_json:
        print_json([f.to_api() for f in fields])
        return
    for f in fields:
        if f.oneof:
            kind = "one of " + ", ".join(f.oneof)
        elif f.manyof:
            kind = "any of " + ", ".join(f.manyof)
        else:
            kind = "text"
        need = "required" if f.required else f"default {f.default!r}"
        typer.echo(f"{f.name}\t{kind}\t{need}\t{f.label}")
    state_of(ctx).reporter.ok(
        f"{script}: {len(fields)} UDFs, {sum(f.required for f in fields)} required"
    )
