"""`swarmboot deploy SPEC STACK.yml` and `swarmboot secret set SPEC NAME`: the application
deployed to the swarm and waited for, and the secrets it reads."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from swarmboot.cli._common import Ctx, JsonOpt, command, print_json, state_of
from swarmboot.cli._factory import ApiUrlOpt, SpecArg, SshKeyOpt, make_context
from swarmboot.errors import SwarmbootError

app = typer.Typer(help="The swarm secrets a stack reads, under versioned names.")


class Resolve(StrEnum):
    always = "always"
    changed = "changed"
    never = "never"


StackFileArg = Annotated[
    Path,
    typer.Argument(
        metavar="STACK", dir_okay=False, help="The Compose file to deploy, e.g. stack.yml."
    ),
]


@command
def deploy_cmd(
    ctx: Ctx,
    spec: SpecArg,
    stack_file: StackFileArg,
    stack: Annotated[
        str | None,
        typer.Option("--stack", metavar="NAME", help="The stack's name (default: the cluster's)."),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            metavar="SECONDS",
            min=1.0,
            help="How long the rollout may take before it counts as failed and rolls back.",
        ),
    ] = 600.0,
    prune: Annotated[
        bool, typer.Option("--prune", help="Remove the stack's services the file no longer has.")
    ] = False,
    resolve_image: Annotated[
        Resolve,
        typer.Option(
            "--resolve-image",
            help="Whether the manager asks the registry for each image's digest (docker's "
            "option; `never` for images only the nodes hold).",
        ),
    ] = Resolve.always,
    api_url: ApiUrlOpt = None,
    ssh_key: SshKeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Deploy a Compose file as a swarm stack and wait until its rollout is done.

    The file is interpolated here from the environment (every ${VAR} must be set), a service
    with `x-swarmboot: {per_zone: true}` becomes one per zone (`app-<zone>`, placed by
    node.labels.zone), files under `configs:` become configs named by their content, and
    external secrets their newest `swarmboot secret set` version. Then it waits until every
    service runs the new spec at its replicas. A failed rollout is rolled back and exits 8
    naming the service and its last task error; a deploy that changes nothing says so.
    A registry login comes from SWARMBOOT_REGISTRY_USER and SWARMBOOT_REGISTRY_PASSWORD (or
    SWARMBOOT_REGISTRY_CONFIG) and is handed to the swarm for every node's pulls."""
    from swarmboot.compose import StackError, stack_name_ok
    from swarmboot.deploy import deploy, prepare

    if stack is not None and not stack_name_ok(stack):
        raise StackError(
            "--stack is not a valid stack name",
            hint="use 1 to 40 lowercase letters, digits and '-', starting and ending with a "
            "letter or digit",
        )
    reporter = state_of(ctx).reporter
    context = make_context(spec, api_url, ssh_key, reporter)
    name = stack or context.spec.cluster.name
    try:
        from swarmboot.cluster import observe

        # The file checked before anything is contacted; rendered again only when it has
        # secrets, whose newest versions the manager knows.
        rendered = prepare(context, None, stack_file, name, os.environ)
        observed = observe(context)
        if rendered.secrets:
            rendered = prepare(context, observed, stack_file, name, os.environ)
        registries = context.registry_auth.registries() if context.registry_auth else ()
        result = deploy(
            context,
            rendered,
            timeout=timeout,
            prune=prune,
            registries=registries,
            resolve=resolve_image.value,
            observed=observed,
        )
    except SwarmbootError as exc:
        found = getattr(exc, "result", None)
        if as_json and found is not None:
            print_json({**found.data(), "error": exc.message})
        raise
    finally:
        context.close()
    if as_json:
        print_json(result.data())
    if result.changed:
        reporter.ok(
            f"Deployed {name}: {len(result.services)} services converged in {result.seconds:.0f} s"
        )
    else:
        reporter.ok(f"{name} already runs this deploy ({rendered.digest[:12]}): nothing to change")


@app.command("set")
@command
def set_cmd(
    ctx: Ctx,
    spec: SpecArg,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The secret's name in stacks.")],
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from-file",
            metavar="FILE",
            dir_okay=False,
            help="Read the value from FILE (default: stdin; never give it on the command line).",
        ),
    ] = None,
    api_url: ApiUrlOpt = None,
    ssh_key: SshKeyOpt = None,
) -> None:
    """Set a swarm secret's value (from stdin or --from-file) as its next version.

    Makes NAME.v1, NAME.v2, …: a stack that declares `secrets: NAME: {external: true}` gets
    the newest at its next deploy, which rolls the services that use it (they still read
    /run/secrets/NAME). The same value again makes nothing. Older versions are removed once
    no service uses them (the previous one stays, for a rollback)."""
    from swarmboot.stack_secrets import check_name, check_value, set_secret

    check_name(name)
    if from_file is not None:
        try:
            value = from_file.read_bytes()
        except OSError as exc:
            raise SwarmbootError(
                f"--from-file: {from_file} cannot be read ({exc.strerror})",
                hint="name a readable file",
            ) from None
        source = str(from_file)
    else:
        if sys.stdin.isatty():
            value = typer.prompt(f"Value of {name}", hide_input=True, err=True).encode()
        else:
            value = sys.stdin.buffer.read()
        source = "stdin"
    value = check_value(value, source)
    reporter = state_of(ctx).reporter
    context = make_context(spec, api_url, ssh_key, reporter)
    try:
        done = set_secret(context, name, value)
    finally:
        context.close()
    if not done:
        reporter.ok(f"{name}: its newest version holds this value already: nothing to change")
