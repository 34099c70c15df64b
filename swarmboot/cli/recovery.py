"""`swarmboot recover | backup | restore SPEC`: the swarm brought back after a datacenter
(or every manager) went down, and its raft state kept off the cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from swarmboot.cli._common import Ctx, JsonOpt, command, print_json, state_of
from swarmboot.cli._factory import ApiUrlOpt, SpecArg, SshKeyOpt, TimeoutOpt, make_context
from swarmboot.cli.cluster import YesOpt, confirm, say_changes, show_result
from swarmboot.errors import SwarmbootError


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
    after a crash: it carries on. With the quorum kept, it rebuilds the lost nodes. Says
    what it changed, as `up` does (--json: under `changed`)."""
    from swarmboot.recover import intent, observe_recovery, recover

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
    show_result(context.spec, result, as_json)
    if result.steps_run:
        reporter.ok(f"{name} recovered: {len(result.changes)} change(s) in {result.seconds:.0f} s")
    else:
        reporter.ok(f"{name}: a manager leads and every node is Ready: nothing to recover")
    say_changes(reporter, result.changes, as_json)


KeyFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        metavar="FILE",
        dir_okay=False,
        help="A file holding the backup passphrase (default: SWARMBOOT_BACKUP_KEY; never "
        "give the passphrase itself on the command line).",
    ),
]


@command
def backup_cmd(
    ctx: Ctx,
    spec: SpecArg,
    out: Annotated[
        Path,
        typer.Option("--out", metavar="FILE", dir_okay=False, help="Where to write the backup."),
    ],
    key_file: KeyFileOpt = None,
    api_url: ApiUrlOpt = None,
    ssh_key: SshKeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Back up the swarm's raft state (services, configs, secrets, networks, nodes).

    On a manager that does not lead, and only while the others keep the quorum: its engine
    is stopped, /var/lib/docker/swarm archived and the engine started again (Docker's
    documented procedure). The file is sealed (AES-256-GCM) with a passphrase from
    SWARMBOOT_BACKUP_KEY or --key-file; it holds the unlock key when autolock is on."""
    from swarmboot.backup import backup, backup_key, describe_manifest, open_backup
    from swarmboot.cluster import observe

    passphrase = backup_key(key_file)
    reporter = state_of(ctx).reporter
    context = make_context(spec, api_url, ssh_key, reporter)
    try:
        backup(context, observe(context), out, passphrase)
    finally:
        context.close()
    written = open_backup(out.read_bytes(), passphrase, str(out))
    if as_json:
        print_json({"file": str(out), "manifest": written.manifest})
        return
    for line in describe_manifest(written.manifest):
        typer.echo(line)
    reporter.ok(f"backed up to {out} ({out.stat().st_size} bytes)")


@command
def restore_cmd(
    ctx: Ctx,
    spec: SpecArg,
    file: Annotated[
        Path, typer.Argument(metavar="FILE", dir_okay=False, help="A `swarmboot backup` file.")
    ],
    key_file: KeyFileOpt = None,
    api_url: ApiUrlOpt = None,
    ssh_key: SshKeyOpt = None,
    timeout: TimeoutOpt = 1200.0,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Make the swarm again from a backup, after every manager was lost.

    The backup's raft state goes on the manager it was taken from (rebuilt first when it is
    dead), a new cluster is forced there (unlocked with the backup's key if autolock is on),
    and the other lost nodes are rebuilt and joined as `recover` does. Asks first."""
    from swarmboot.backup import backup_key, describe_manifest, open_backup, restore

    passphrase = backup_key(key_file)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise SwarmbootError(
            f"{file}: cannot read it ({exc.strerror})", hint="give a `swarmboot backup` file"
        ) from None
    found = open_backup(data, passphrase, str(file))
    reporter = state_of(ctx).reporter
    context = make_context(spec, api_url, ssh_key, reporter, timeout=timeout)
    for line in describe_manifest(found.manifest):
        typer.echo(line, err=as_json)

    def ask() -> None:
        confirm(
            f"restore {context.spec.cluster.name}'s swarm from {file} and rebuild its lost nodes",
            yes,
        )

    try:
        result = restore(context, found, confirm=ask)
    finally:
        context.close()
    show_result(context.spec, result, as_json)
    reporter.ok(
        f"{context.spec.cluster.name} restored: {len(result.changes)} change(s) in "
        f"{result.seconds:.0f} s"
    )
    say_changes(reporter, result.changes, as_json)
