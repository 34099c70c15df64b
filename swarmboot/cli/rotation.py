"""`swarmboot rotate SPEC --join-tokens | --ca`: the swarm's secrets made anew."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer

from swarmboot.cli._common import Ctx, JsonOpt, command, state_of
from swarmboot.cli._factory import ApiUrlOpt, SpecArg, SshKeyOpt, make_context
from swarmboot.cli.cluster import YesOpt, confirm, say_changes, show_result


@command
def rotate_cmd(
    ctx: Ctx,
    spec: SpecArg,
    join_tokens: Annotated[
        bool,
        typer.Option(
            "--join-tokens",
            help="Rotate the worker and manager join tokens: the old ones join no node any "
            "more (the nodes in the swarm are not touched).",
        ),
    ] = False,
    ca: Annotated[
        bool,
        typer.Option(
            "--ca",
            help="Rotate the swarm's CA: a new root key and certificate, and a new "
            "certificate for every node; waits until each node has its own.",
        ),
    ] = False,
    api_url: ApiUrlOpt = None,
    ssh_key: SshKeyOpt = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            metavar="SECONDS",
            min=1.0,
            help="How long the CA rotation may take to reach every node.",
        ),
    ] = 900.0,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Rotate the swarm's join tokens (--join-tokens), its CA (--ca), or both.

    `docker swarm join-token --rotate` for both tokens, and `docker swarm ca --rotate`,
    waiting until the swarm says the rotation is over and every node has a certificate from
    the new CA and trusts its root. Refused while no manager leads (`swarmboot recover`)
    and, for the CA, while a node is down (`swarmboot repair` first). Asks first (--yes for
    scripts); run again after a crash, a CA rotation in progress is waited for, not started
    again. No token is ever shown. Exit 2 when given neither option."""
    from swarmboot.cluster import observe
    from swarmboot.rotate import check_asked, plan_rotate, rotate

    check_asked(join_tokens, ca)
    reporter = state_of(ctx).reporter
    context = make_context(spec, api_url, ssh_key, reporter)
    context.settings = replace(context.settings, rotate_timeout=timeout)
    name = context.spec.cluster.name
    try:
        observed = observe(context)
        steps = plan_rotate(context.spec, observed, join_tokens=join_tokens, ca=ca)
        for n, step in enumerate(steps, start=1):
            typer.echo(f"{n:3}. {step.describe()}", err=as_json)
        what = " and ".join(w for w, asked in (("join tokens", join_tokens), ("CA", ca)) if asked)

        def ask() -> None:
            confirm(f"rotate {name}'s {what}", yes)

        result = rotate(context, observed, join_tokens=join_tokens, ca=ca, confirm=ask)
    finally:
        context.close()
    show_result(context.spec, result, as_json)
    reporter.ok(f"{name}: rotated {what} in {result.seconds:.0f} s")
    say_changes(reporter, result.changes, as_json)
