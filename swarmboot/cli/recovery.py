"""`swarmboot recover SPEC`: the swarm brought back after a datacenter went down."""

from __future__ import annotations

import typer

from swarmboot.cli._common import Ctx, JsonOpt, command, state_of
from swarmboot.cli._factory import ApiUrlOpt, SpecArg, SshKeyOpt, TimeoutOpt, make_context
from swarmboot.cli.cluster import YesOpt, confirm, show


@command
def recover_cmd(
    ctx: Ctx,
    spec: SpecArg,
    api_url: ApiUrlOpt = None,
    ssh_key: SshKeyOpt = None,
    timeout: TimeoutOpt = 1200.0,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Bring the swarm back after losing a region or most of its managers.

    When no manager leads (the raft quorum is lost), the answering manager whose raft log
    goes furthest gets `docker swarm init --force-new-cluster` (the managers that do not
    answer are shut down first); then every node that is gone, stopped or not Ready is
    rebuilt and joined again with its labels, managers one at a time. Services, configs,
    secrets, networks and node labels stay. Asks first (--yes for scripts); run it again
    after a crash: it carries on. With the quorum kept, it rebuilds the lost nodes."""
    from swarmboot.recover import intent, observe_recovery, recover
    from swarmboot.status import summary

    reporter = state_of(ctx).reporter
    context = make_context(spec, api_url, ssh_key, reporter, timeout=timeout)
    name = context.spec.cluster.name
    try:
        observed = observe_recovery(context)
        lines = intent(context.spec, observed)
        for n, line in enumerate(lines, start=1):
            typer.echo(f"{n:3}. {line}", err=as_json)

        def ask() -> None:
            confirm(f"recover {name} as listed", yes)

        result = recover(context, observed, confirm=ask if lines else None)
    finally:
        context.close()
    show(summary(context.spec, result.observed), as_json)
    if result.steps_run:
        reporter.ok(
            f"{name} recovered: {len(result.steps_run)} change(s) in {result.seconds:.0f} s"
        )
    else:
        reporter.ok(f"{name}: a manager leads and every node is Ready: nothing to recover")
