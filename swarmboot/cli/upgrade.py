"""`swarmboot upgrade SPEC`: the nodes upgraded one at a time; the options `plan --upgrade`
shares."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from swarmboot.cli._common import (
    Ctx,
    DockerOpt,
    ImageOpt,
    JsonOpt,
    PackagesOpt,
    command,
    print_json,
    state_of,
    upgrade_mode,
)
from swarmboot.cli._factory import ApiUrlOpt, SpecArg, SshKeyOpt, TimeoutOpt, make_context
from swarmboot.cli.cluster import YesOpt, confirm, say_changes

if TYPE_CHECKING:
    from swarmboot.report import Reporter
    from swarmboot.upgrade import Intent


def say_intent(planned: Intent, reporter: Reporter, err: bool) -> None:
    """The order, numbered, and the warnings (a zone whose endpoint goes down)."""
    for n, line in enumerate(planned.lines, start=1):
        typer.echo(f"{n:3}. {line}", err=err)
    for line in planned.warnings:
        reporter.warn(line)


@command
def upgrade_cmd(
    ctx: Ctx,
    spec: SpecArg,
    packages: PackagesOpt = False,
    docker: DockerOpt = False,
    image: ImageOpt = None,
    api_url: ApiUrlOpt = None,
    ssh_key: SshKeyOpt = None,
    timeout: TimeoutOpt = 1200.0,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Upgrade the nodes one at a time while the swarm serves.

    Workers and load balancers zone by zone, managers last (a manager only while the
    others keep the raft quorum): each node is drained and waited for until its tasks run
    elsewhere, upgraded (apt-get; or rebuilt onto --image), rebooted through GRUB when its
    kernel changed, waited for until ready as `up` has it, made active again and checked
    with its labels. A load balancer alone in its zone is named, with how long the zone's
    endpoint is down. It stops at the first node that fails, which stays drained and
    named; run it again and it carries on (its progress is marked on the Linodes). Asks
    first (--yes for scripts); `plan --upgrade` shows the order."""
    from swarmboot.upgrade import intent, observe_upgrade, upgrade

    mode = upgrade_mode(packages, docker, image)
    reporter = state_of(ctx).reporter
    context = make_context(spec, api_url, ssh_key, reporter, timeout=timeout)
    name = context.spec.cluster.name
    try:
        world = observe_upgrade(context, mode)
        planned = intent(context.spec, world, mode)
        say_intent(planned, reporter, as_json)

        def ask() -> None:
            what = f"upgrade {len(planned.labels)} node(s) of {name} one at a time ({mode.option})"
            down = [w.split(" is the only", 1)[0] for w in planned.warnings]
            if down:
                what += (
                    f", taking out {', '.join(down)}, each its zone's only load balancer "
                    "(the zone's endpoint down meanwhile)"
                )
            confirm(what, yes)

        result = upgrade(context, mode, world, confirm=ask if planned.labels else None)
    finally:
        context.close()
    if as_json:
        from swarmboot.apply import changes_data

        print_json(
            {
                "cluster": name,
                "run": result.run,
                "mode": mode.kind,
                "upgraded": [
                    {"node": label, "seconds": round(seconds, 1)}
                    for label, seconds in result.upgraded
                ],
                "changed": changes_data(result.changes),
            }
        )
    if result.upgraded:
        reporter.ok(
            f"{name}: {len(result.upgraded)} node(s) upgraded in {result.seconds:.0f} s "
            f"(run {result.run})"
        )
    else:
        reporter.ok(f"{name}: every node is upgraded (run {result.run}): nothing to do")
    say_changes(reporter, result.changes, as_json)
