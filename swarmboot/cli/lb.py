"""`swarmboot lb render | deploy SPEC`: HAProxy per zone, published on each lb node's address."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from swarmboot.cli._common import Ctx, JsonOpt, command, print_json, state_of
from swarmboot.cli._factory import ApiUrlOpt, SpecArg, SshKeyOpt, TimeoutOpt, make_context

app = typer.Typer(
    help="Load balancers: HAProxy on the lb nodes, one swarm service per zone.",
    no_args_is_help=True,
)


@app.command("render")
@command
def render_cmd(
    ctx: Ctx,
    spec: SpecArg,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="DIR",
            file_okay=False,
            help="Write stack.yml and each zone's haproxy-<zone>.cfg there (default: print "
            "the stack file).",
        ),
    ] = None,
) -> None:
    """Render the stack file and each zone's HAProxy configuration from templates/lb/."""
    from swarmboot.lb import render_lb
    from swarmboot.spec import load_spec

    bundle = render_lb(load_spec(spec))
    if out is None:
        typer.echo(bundle.stack_file, nl=False)
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, content in bundle.files().items():
        (out / name).write_text(content)
        typer.echo(str(out / name))


@app.command("deploy")
@command
def deploy_cmd(
    ctx: Ctx,
    spec: SpecArg,
    api_url: ApiUrlOpt = None,
    ssh_key: SshKeyOpt = None,
    timeout: TimeoutOpt = 300.0,
    as_json: JsonOpt = False,
) -> None:
    """Deploy or update the load balancers; wait until each lb node runs its zone's HAProxy.

    Each zone's HAProxy runs once on every node labelled role=lb in that zone (mode global),
    publishes the [lb] ports on that node's own address (host mode, not the routing mesh), sits
    on the cluster's overlay network and finds the application's tasks with server-template
    over swarm DNS (tasks.<service>-<zone>, or tasks.<service> with backends = "global"),
    health-checked. A changed configuration is a new swarm config (named by its hash) and the
    service rolls onto it one node at a time. Prints each zone's endpoints.
    """
    from swarmboot.lb import deploy_lb

    context = make_context(spec, api_url, ssh_key, state_of(ctx).reporter)
    try:
        found = deploy_lb(context, timeout=timeout)
    finally:
        context.close()
    if as_json:
        print_json(found)
        return
    for zone, urls in found.items():
        typer.echo(f"{zone}\t{' '.join(urls)}")
