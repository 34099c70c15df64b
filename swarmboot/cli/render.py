"""`swarmboot render`: StackScript templates → stackscripts/ (with their cloud-configs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from swarmboot import paths
from swarmboot.cli._common import Ctx, JsonOpt, TemplatesOpt, command, print_json, state_of


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@command
def render_cmd(
    ctx: Ctx,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Change nothing; exit 3 naming each file in the output folder that "
            "differs from its template.",
        ),
    ] = False,
    templates: TemplatesOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="DIR",
            file_okay=False,
            help="Where the StackScripts and their cloud-configs go (default: swarmboot's "
            "stackscripts/).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Render the StackScript templates into stackscripts/ (or check that they are fresh).

    Each StackScript is written with its cloud-config (NAME.cloud-config.yaml: the same
    script as cloud-init user data, for cluster.bootstrap = "cloud-init")."""
    from swarmboot import render  # pydantic and jinja2 load only when rendering

    reporter = state_of(ctx).reporter
    templates_dir = templates or paths.templates_dir()
    out_dir = out or paths.stackscripts_dir()
    scripts = render.render_all(templates_dir)
    configs = render.render_cloud_configs(templates_dir, scripts)
    outputs = (*scripts, *configs)
    what = f"{len(scripts)} StackScripts and {len(configs)} cloud-configs"
    if check:
        drift = render.check(outputs, out_dir)
        if as_json:
            print_json(
                {
                    "fresh": not drift,
                    "drift": [{"file": str(out_dir / d.name), "kind": d.kind} for d in drift],
                }
            )
        render.require_fresh(outputs, out_dir)
        reporter.ok(f"{what} in {_display(out_dir)} match their templates")
        return
    results = render.write(outputs, out_dir)
    changed = sum(1 for _, written in results if written)
    if as_json:
        print_json([{"file": str(out_dir / name), "written": written} for name, written in results])
    else:
        for name, written in results:
            typer.echo(f"{'written' if written else 'unchanged'}\t{_display(out_dir / name)}")
    reporter.ok(f"Rendered {what} into {_display(out_dir)} ({changed} changed)")
