"""`swarmboot stackscript …`: StackScripts and their user-defined fields."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from swarmboot import udf
from swarmboot.cli._common import Ctx, JsonOpt, command, print_json, state_of
from swarmboot.cli._factory import ApiUrlOpt, make_cloud

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
    fields = udf.parse_udfs(udf.read_script(script), source=str(script))
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


@app.command("publish")
@command
def publish_cmd(
    ctx: Ctx,
    api_url: ApiUrlOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Change nothing; show what would be sent, as a diff.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create or update the account's StackScripts from stackscripts/, by label; unchanged
    ones (same content hash in rev_note) are not sent again."""
    from swarmboot.publish import local_scripts, publish

    reporter = state_of(ctx).reporter
    results = publish(make_cloud(api_url), local_scripts(), dry_run=dry_run)
    if as_json:
        print_json(
            [
                {
                    "label": r.label,
                    "action": r.action,
                    "id": r.script_id,
                    **({"diff": r.diff} if dry_run else {}),
                }
                for r in results
            ]
        )
        return
    for result in results:
        verb = (
            result.action
            if not dry_run
            else {"created": "would create", "updated": "would update"}.get(
                result.action, result.action
            )
        )
        typer.echo(
            f"{verb}\t{result.label}" + (f"\t{result.script_id}" if result.script_id else "")
        )
        if result.diff:
            typer.echo(result.diff, nl=False)
    changed = sum(r.action != "unchanged" for r in results)
    reporter.ok(f"{len(results)} StackScripts, {changed} {'to change' if dry_run else 'changed'}")


@app.command("list")
@command
def list_cmd(ctx: Ctx, api_url: ApiUrlOpt = None, as_json: JsonOpt = False) -> None:
    """List the account's own StackScripts with their UDFs."""
    cloud = make_cloud(api_url)
    found = []
    for script in cloud.stackscripts():
        detail = cloud.stackscript_detail(script.id)
        found.append(
            {
                "id": script.id,
                "label": script.label,
                "rev_note": script.rev_note,
                "images": list(script.images),
                "udfs": detail.get("user_defined_fields") or [],
            }
        )
    if as_json:
        print_json(found)
        return
    for item in found:
        names = ", ".join(u["name"] + ("" if "default" in u else "*") for u in item["udfs"])
        typer.echo(
            f"{item['id']}\t{item['label']}\t{item['rev_note']}\t"
            f"{' '.join(item['images'])}\t{names}"
        )
    state_of(ctx).reporter.ok(f"{len(found)} StackScript(s) of yours (* required field)")
