"""`swarmboot node rebuild SPEC LABEL`: one node replaced without hurting the swarm."""

from __future__ import annotations

from typing import Annotated

import typer

from swarmboot.cli._common import Ctx, JsonOpt, command, state_of
from swarmboot.cli._factory import (
    ApiUrlOpt,
    BootstrapOpt,
    SpecArg,
    SshKeyOpt,
    TimeoutOpt,
    make_context,
)
from swarmboot.cli.cluster import ForceOpt, YesOpt, confirm, say_changes, show_result

app = typer.Typer(help="One node of a cluster.", no_args_is_help=True)

LabelArg = Annotated[
    str, typer.Argument(metavar="LABEL", help="The node's label, e.g. itframe-gb-lon-worker-2.")
]


@app.command("rebuild")
@command
def rebuild_cmd(
    ctx: Ctx,
    spec: SpecArg,
    label: LabelArg,
    api_url: ApiUrlOpt = None,
    ssh_key: SshKeyOpt = None,
    timeout: TimeoutOpt = 1200.0,
    yes: YesOpt = False,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Rebuild a node, alive, unreachable or gone, and bring it back with its role and labels.

    Drains it (if it answers) and waits for its tasks to move, demotes it if it manages,
    removes its swarm entry, rebuilds the Linode from the same image and StackScript (or
    cloud-init user data: --bootstrap) with a new pinned host key (or makes it again if it
    is gone), sets the kernel to linode/grub2, boots it, waits as `up` does, joins it with
    the same role and labels and brings every node's firewall member set up to date. A
    manager whose removal would lose the swarm's raft quorum is refused (exit 7) unless
    --force. Run it again after a crash: it carries on. Says what it changed in one line;
    --json lists it under `changed`.
    """
    from swarmboot.rebuild import rebuild

    reporter = state_of(ctx).reporter
    context = make_context(spec, api_url, ssh_key, reporter, timeout=timeout, bootstrap=bootstrap)
    try:
        confirm(f"rebuild {label}: its disk is wiped and made again", yes)
        result = rebuild(context, label, force=force)
    finally:
        context.close()
    show_result(context.spec, result, as_json)
    say_changes(reporter, result.changes, as_json)
    reporter.ok(f"rebuilt {label} in {result.seconds:.0f} s")
