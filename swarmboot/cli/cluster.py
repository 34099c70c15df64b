"""`swarmboot plan | up | status | repair | down SPEC`: a cluster from its spec."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

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
from swarmboot.cli._factory import (
    ApiUrlOpt,
    BootstrapOpt,
    SpecArg,
    SshKeyOpt,
    TimeoutOpt,
    make_cloud_context,
    make_context,
)
from swarmboot.errors import SwarmbootError

if TYPE_CHECKING:
    from swarmboot.apply import Change, UpResult
    from swarmboot.cluster import Context
    from swarmboot.rebuild import RepairResult
    from swarmboot.recover import RecoverResult
    from swarmboot.report import Reporter
    from swarmboot.rotate import RotateResult
    from swarmboot.spec import Spec

PruneOpt = Annotated[
    bool,
    typer.Option(
        "--prune",
        help="Also drain, take out of the swarm and delete the cluster's Linodes the spec no "
        "longer has (a lowered count), newest first, never below the managers' quorum.",
    ),
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")]
ForceOpt = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Rebuild a manager even when the swarm would lose its raft quorum (the swarm "
        "then takes no change until enough managers are back).",
    ),
]


def confirm(what: str, yes: bool) -> None:
    """Ask before destroying something; without a terminal, only --yes says yes."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise SwarmbootError(f"refusing to {what} without --yes", hint="pass --yes to confirm")
    typer.confirm(f"{what[0].upper()}{what[1:]}?", abort=True, err=True)


def _print_table(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    def mark(value: object) -> str:
        return {True: "yes", False: "NO", None: "-"}.get(value, str(value))  # type: ignore[arg-type]

    table = Table(
        title=f"{summary['cluster']}: {summary['managers']} managers, network "
        f"{summary['network']['name']}"
        f"{' (encrypted)' if summary['network']['encrypted'] else ''}",
        title_justify="left",
    )
    # With Linode interfaces (any node's, or those of the nodes to come), each node's
    # interfaces and VPC address too.
    interfaces = summary.get("interfaces") == "linode" or any(
        row.get("interfaces") == "linode" for row in summary["nodes"]
    )
    columns = ["node", "region", "role", "linode", "ipv4"]
    columns += ["interfaces", "vpc ipv4"] if interfaces else []
    columns += ["kernel", "vxlan", "esp", "swarm"]
    # The certificates' expiry, where it was read (`status`).
    certs = any(row.get("cert_expires") for row in summary["nodes"])
    for column in columns + (["certificate"] if certs else []):
        table.add_column(column)
    for row in summary["nodes"]:
        kernel = row["kernel"] or "-"
        if row["distro_kernel"] is False:
            kernel += " (not Debian's)"
        cells = [row["node"], row["region"], row["role"], row["linode"], row["ipv4"] or "-"]
        if interfaces:
            kind = {"linode": "linode", "legacy_config": "legacy"}.get(row["interfaces"], "-")
            cells += [kind, row["vpc_ipv4"] or "-"]
        cells += [
            kernel,
            mark(row["vxlan"]),
            mark(row["esp"]),
            row["swarm"],
        ]
        if certs:
            expires = row.get("cert_expires")
            cells.append(f"{expires} ({row['cert_days_left']} d)" if expires else "-")
        table.add_row(*cells)
    console = Console(file=sys.stdout, soft_wrap=False, width=160)
    console.print(table)
    for zone, urls in summary.get("lb", {}).items():
        console.print(f"load balancers in {zone}: {' '.join(urls) or '-'}")
    for row in summary.get("placement", ()):
        console.print(_placement_line(row), markup=False, highlight=False)
    for row in summary.get("vpcs", ()):
        console.print(_vpc_line(row), markup=False, highlight=False)
    for line in summary.get("not_members", ()):
        console.print(f"not a member: {line}", markup=False, highlight=False)


def _placement_line(row: dict[str, Any]) -> str:
    """A region's managers' placement group, in one line of the status table's footer."""
    head = f"managers' placement group in {row['region']}"
    if row["state"] == "unsupported":
        return f"{head}: none (Linode offers no placement groups there)"
    head += f": {row['group']} ({row['policy']})"
    if row["state"] == "missing":
        return f"{head}: missing; `swarmboot up` makes it"
    line = f"{head}: {row['state']}"
    if row["sharing_a_host"]:
        line += f"; sharing a host: {', '.join(row['sharing_a_host'])}"
    if row["outside"]:
        line += f"; not in it: {', '.join(row['outside'])}"
    return line


def _vpc_line(row: dict[str, Any]) -> str:
    """A region's VPC, in one line of the status table's footer."""
    head = f"VPC in {row['region']}: {row['vpc']} (subnet {row['subnet']})"
    if row["state"] == "missing":
        return f"{head}: missing; `swarmboot up` makes it"
    if row["state"] == "no subnet":
        return f"{head}: without its subnet; `swarmboot up` adds it"
    return f"{head}: {len(row['nodes'])} node(s) in it"


def _key_for_up(context: Context, reporter: Reporter) -> None:
    """For a cluster not made yet, on stderr: the SSH key `up` would install on its nodes
    and log in with (where it comes from, and its fingerprint), or that `up` will need one
    and how to give it."""
    import base64

    from swarmboot.keys import KEY_HINT, fingerprint

    if not context.identity_public:
        reporter.warn(
            "`swarmboot up` will need an SSH key to install on the nodes and log in with: "
            + KEY_HINT
        )
        return
    key = fingerprint(base64.b64decode(context.identity_public.split()[1]))
    reporter.info(
        f"`swarmboot up` would install and log in with the SSH key from "
        f"{context.identity_source} ({key})"
    )


def _region_losses(spec: Any, reporter: Any) -> None:
    """Which one region's loss the managers survive, for a spec over several regions."""
    from swarmboot.quorum import region_report

    if not spec.multi_region:
        return
    for survives, line in region_report(spec.managers_by_region()):
        (reporter.info if survives else reporter.warn)(line)


@command
def plan_cmd(
    ctx: Ctx,
    spec: SpecArg,
    api_url: ApiUrlOpt = None,
    ssh_key: SshKeyOpt = None,
    as_json: JsonOpt = False,
    prune: PruneOpt = False,
    down: Annotated[
        bool, typer.Option("--down", help="Show what `swarmboot down` would delete instead.")
    ] = False,
    stackscripts: StackScriptsOpt = False,
    bootstrap: BootstrapOpt = None,
    upgrade: Annotated[
        bool,
        typer.Option(
            "--upgrade", help="Show the order in which `swarmboot upgrade` would take the nodes."
        ),
    ] = False,
    packages: PackagesOpt = False,
    docker: DockerOpt = False,
    image: ImageOpt = None,
) -> None:
    """Print what `up` would do, from the cloud and the swarm as they are now. Changes nothing.

    A cluster not made yet needs no SSH key: `plan` names the key `up` would install and
    log in with, or says that `up` will need one. With --down, what `down` would delete
    (from the cloud alone: no node is contacted). With --upgrade (and --packages, --docker
    or --image), the nodes in the order `upgrade` takes them, refused as it would be."""
    from swarmboot.cluster import observe, observe_cloud
    from swarmboot.down import left_alone, plan_down
    from swarmboot.plan import plan, step_data

    reporter = state_of(ctx).reporter
    if upgrade or packages or docker or image is not None:
        _plan_upgrade(
            spec,
            api_url,
            ssh_key,
            reporter,
            as_json,
            upgrade_mode(packages, docker, image),
            upgrade and not down,
        )
        return
    if down:
        context = make_cloud_context(spec, api_url, ssh_key, reporter)
    else:
        context = make_context(
            spec, api_url, ssh_key, reporter, need_key=False, bootstrap=bootstrap
        )
    alone: tuple[str, ...] = ()
    try:
        if down:
            observed = observe_cloud(context, account=stackscripts, vpcs=True)
            steps: tuple = plan_down(context.spec, observed, stackscripts=stackscripts)
            alone = left_alone(context.spec, observed)
        else:
            observed = observe(context)
            steps = plan(context.spec, observed, context.script, prune=prune)
    finally:
        context.close()
    for line in alone:  # on stderr: also with --json
        reporter.info(line)
    if not down and not observed.instances:
        _key_for_up(context, reporter)
    if as_json:
        print_json([step_data(s) for s in steps])
        return
    for n, step in enumerate(steps, start=1):
        typer.echo(f"{n:3}. {step.describe()}")
    name = context.spec.cluster.name
    if not down:
        _region_losses(context.spec, reporter)
    if down:
        reporter.ok(
            f"{name}: {len(steps)} step(s) to delete it" if steps else f"{name}: nothing to delete"
        )
        return
    reporter.ok(
        f"{name}: {len(steps)} step(s) to converge"
        if steps
        else f"{name} is as the spec says: nothing to do"
    )


def _plan_upgrade(
    spec: Any,
    api_url: str | None,
    ssh_key: Any,
    reporter: Reporter,
    as_json: bool,
    mode: Any,
    asked: bool,
) -> None:
    """`plan --upgrade`: the order, the warnings, the refusals."""
    from swarmboot.cli.upgrade import say_intent
    from swarmboot.upgrade import UpgradeUsage, intent, observe_upgrade

    if not asked:
        raise UpgradeUsage(
            "--packages, --docker and --image go with --upgrade (and not with --down)",
            hint="add --upgrade: `plan --upgrade --packages` shows the order of an upgrade",
        )
    context = make_context(spec, api_url, ssh_key, reporter)
    try:
        planned = intent(context.spec, observe_upgrade(context, mode), mode)
    finally:
        context.close()
    name = context.spec.cluster.name
    if as_json:
        print_json(
            {
                "cluster": name,
                "mode": mode.kind,
                "run": planned.run,
                "order": list(planned.labels),
                "warnings": list(planned.warnings),
            }
        )
    say_intent(planned, reporter, as_json)
    reporter.ok(
        f"{name}: {len(planned.labels)} node(s) to upgrade, one at a time"
        if planned.labels
        else f"{name}: every node is upgraded (run {planned.run}): nothing to do"
    )


@command
def up_cmd(
    ctx: Ctx,
    spec: SpecArg,
    api_url: ApiUrlOpt = None,
    ssh_key: SshKeyOpt = None,
    timeout: TimeoutOpt = 1200.0,
    as_json: JsonOpt = False,
    prune: PruneOpt = False,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Make the cluster what the spec says: create, boot, wait, join, label, secure.

    A raised count adds nodes; a lowered one leaves the surplus nodes alone (and says so)
    unless --prune is given. Says what it changed (Linodes created, nodes joined, firewalls
    updated, …) in one line; --json prints the status with the list under `changed`, each
    change's kind, name and id (empty when nothing changed)."""
    from swarmboot.apply import NotReadyError, up

    reporter = state_of(ctx).reporter
    context = make_context(spec, api_url, ssh_key, reporter, timeout=timeout, bootstrap=bootstrap)
    try:
        try:
            result = up(context, prune=prune)
        except NotReadyError as exc:
            result = getattr(exc, "result", None)
            if result is not None:
                show_result(context.spec, result, as_json)
                say_changes(reporter, result.changes, as_json)
            raise
    finally:
        context.close()
    show_result(context.spec, result, as_json)
    _region_losses(context.spec, reporter)
    reporter.ok(
        f"{context.spec.cluster.name} is up: {len(result.observed.instances)} nodes, "
        f"{len(result.changes)} change(s) in {result.seconds:.0f} s"
    )
    say_changes(reporter, result.changes, as_json)


@command
def repair_cmd(
    ctx: Ctx,
    spec: SpecArg,
    api_url: ApiUrlOpt = None,
    ssh_key: SshKeyOpt = None,
    timeout: TimeoutOpt = 1200.0,
    yes: YesOpt = False,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Rebuild the nodes that are Down in the swarm or not running in Linode.

    One at a time, each as `swarmboot node rebuild` does, and only while the managers keep
    their raft quorum (exit 7 names a manager that cannot be rebuilt safely; --force). Says
    what it changed in one line; --json lists it under `changed`."""
    from swarmboot.cluster import observe
    from swarmboot.rebuild import repair, unhealthy
    from swarmboot.recover import refuse_lost_quorum

    reporter = state_of(ctx).reporter
    context = make_context(spec, api_url, ssh_key, reporter, timeout=timeout, bootstrap=bootstrap)
    try:
        observed = observe(context)
        refuse_lost_quorum(observed)
        todo = unhealthy(context.spec, observed)
        if todo:
            confirm(
                f"rebuild {len(todo)} node(s): "
                + "; ".join(f"{label} ({why})" for label, why in todo),
                yes,
            )
        result = repair(context, force=force, observed=observed)
    finally:
        context.close()
    show_result(context.spec, result, as_json)
    say_changes(reporter, result.changes, as_json)
    if not result.repaired:
        reporter.ok(f"{context.spec.cluster.name}: every node runs and is Ready: nothing to repair")
    for label, why, seconds in result.repaired:
        reporter.ok(f"repaired {label} ({why}) in {seconds:.0f} s")


def show(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(data)
    else:
        _print_table(data)


def show_result(
    spec: Spec, result: UpResult | RecoverResult | RotateResult | RepairResult, as_json: bool
) -> None:
    """The status after a run that changes the cluster (`up`, `recover`, `restore`, `rotate`,
    `repair`, `node rebuild`): the
    table, or the status as JSON with what the run changed under "changed" (an empty list
    when it changed nothing)."""
    from swarmboot.apply import changes_data
    from swarmboot.status import summary

    data = summary(spec, result.observed)
    show({**data, "changed": changes_data(result.changes)} if as_json else data, as_json)


def say_changes(reporter: Reporter, changes: list[Change], as_json: bool) -> None:
    """What a run changed, in one line on stderr (`--json` has it under "changed")."""
    from swarmboot.apply import changes_line

    if not as_json:
        reporter.info(changes_line(changes))


@command
def status_cmd(
    ctx: Ctx,
    spec: SpecArg,
    api_url: ApiUrlOpt = None,
    ssh_key: SshKeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show each node: Linode status, address (and with Linode interfaces its interfaces and
    VPC address), kernel, vxlan, ESP, swarm state and labels; each region's placement group and
    VPC.

    And when each node's swarm certificate expires, with a warning for one that expires
    within 30 days and for a node down in the swarm longer than a certificate lives (it must
    be rebuilt: `swarmboot node rebuild`)."""
    from swarmboot.certs import observe_certificates
    from swarmboot.cluster import observe
    from swarmboot.status import summary

    reporter = state_of(ctx).reporter
    context = make_context(spec, api_url, ssh_key, reporter)
    try:
        data = summary(context.spec, observe_certificates(context, observe(context)))
    finally:
        context.close()
    show(data, as_json)
    for line in data["warnings"]:
        reporter.warn(line)


@command
def known_hosts_cmd(
    ctx: Ctx,
    spec: SpecArg,
    api_url: ApiUrlOpt = None,
    ssh_key: SshKeyOpt = None,
) -> None:
    """Print known_hosts lines for the cluster's nodes, each key checked against its pin.

    For OpenSSH and tools that read known_hosts: `swarmboot known-hosts spec.toml >
    ~/.ssh/known_hosts.d/CLUSTER`, then `ssh -o UserKnownHostsFile=… root@ADDRESS`. A node
    whose key is not the pinned one fails the command; one that does not answer is named and
    left out (exit 6).
    """
    from swarmboot.cluster import known_hosts
    from swarmboot.errors import ExitCode

    reporter = state_of(ctx).reporter
    context = make_context(spec, api_url, ssh_key, reporter)
    try:
        lines, skipped = known_hosts(context)
    finally:
        context.close()
    for line in lines:
        typer.echo(line)
    for why in skipped:
        reporter.failed(f"left out: {why}")
    if skipped:
        raise typer.Exit(int(ExitCode.NOT_READY))


StackScriptsOpt = Annotated[
    bool,
    typer.Option("--stackscripts", help="Also delete the StackScript the cluster was made with."),
]


@command
def down_cmd(
    ctx: Ctx,
    spec: SpecArg,
    api_url: ApiUrlOpt = None,
    ssh_key: SshKeyOpt = None,
    yes: YesOpt = False,
    stackscripts: StackScriptsOpt = False,
) -> None:
    """Delete the cluster: its Linodes (its tag, a node label and swarmboot's mark), its
    Cloud Firewalls (its tag), its managers' placement groups (only its Linodes in them) and
    its VPCs (its tag and mark in their description, no other Linode in them). No node is
    contacted; the SSH key tells the marks."""
    from swarmboot.apply import run_steps
    from swarmboot.cluster import observe_cloud
    from swarmboot.down import check_unmarked, left_alone, plan_down, summary

    reporter = state_of(ctx).reporter
    context = make_cloud_context(spec, api_url, ssh_key, reporter)
    try:
        observed = observe_cloud(context, account=stackscripts, vpcs=True)
        steps = plan_down(context.spec, observed, stackscripts=stackscripts)
        for line in left_alone(context.spec, observed):
            reporter.info(line)
        if steps:
            what = summary(context.spec, steps)
            confirm(f"delete {what}", yes)
            run_steps(context, observed, steps)
            typer.echo(f"deleted\t{what}")
        else:
            reporter.ok(f"{context.spec.cluster.name}: nothing to delete")
    finally:
        context.close()
    check_unmarked(context.spec, observed)


@command
def adopt_cmd(
    ctx: Ctx,
    spec: SpecArg,
    labels: Annotated[
        list[str] | None,
        typer.Argument(help="Only these Linodes (their labels); all unmarked ones if none."),
    ] = None,
    api_url: ApiUrlOpt = None,
    ssh_key: SshKeyOpt = None,
    yes: YesOpt = False,
) -> None:
    """Mark as the cluster's the Linodes with its tag and a node label but not the mark this
    SSH key makes (made before marks, or with another key), and its VPCs likewise (the tag
    and mark in their description). Asks first; only the cloud's tags and descriptions
    change. A Linode you do not know is not yours: rename or delete it instead."""
    from swarmboot.adopt import plan_adopt
    from swarmboot.apply import run_steps
    from swarmboot.cluster import observe_cloud
    from swarmboot.interfaces import MarkVpc

    reporter = state_of(ctx).reporter
    context = make_cloud_context(spec, api_url, ssh_key, reporter)
    try:
        observed = observe_cloud(context, vpcs=True)
        steps = plan_adopt(context.spec, observed, context.marks, tuple(labels or ()))
        name = context.spec.cluster.name
        if not steps:
            reporter.ok(f"{name}: every Linode with its tag and a node label is marked")
            return
        for n, step in enumerate(steps, start=1):
            typer.echo(f"{n:3}. {step.describe()}")
        vpcs = sum(isinstance(s, MarkVpc) for s in steps)
        what = f"{len(steps) - vpcs} Linode(s)" + (f" and {vpcs} VPC(s)" if vpcs else "")
        confirm(f"mark {what} as {name}'s, to be joined and managed", yes)
        run_steps(context, observed, steps)
    finally:
        context.close()
    reporter.ok(f"{name}: {what} marked")
