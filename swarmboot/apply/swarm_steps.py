"""The runners of the swarm's steps: member sets, init, joins, labels, drains and removals.

Each goes through the manager its step names (`via`), joins with the role and the leave
its step carries, and labels a node by the swarm id its step carries or its join told."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from swarmboot import facts
from swarmboot.apply.run import Replan, Run
from swarmboot.backup import Backup, BackupSwarm, RestoreSwarm, manifest, seal
from swarmboot.cluster import advertise_address
from swarmboot.errors import SwarmbootError
from swarmboot.firewall import members_file
from swarmboot.plan import (
    DemoteNode,
    DrainNode,
    EnsureNetwork,
    InitSwarm,
    JoinManager,
    JoinWorkers,
    LabelNode,
    LeaveSwarm,
    RemoveStaleNode,
    SetHeartbeat,
    SyncMembers,
)
from swarmboot.recover import ForceNewCluster, UnlockSwarm
from swarmboot.remote import Remote, RemoteError
from swarmboot.rotate import RotateCA, RotateJoinTokens
from swarmboot.swarm import SwarmError

__all__ = ["JOIN_ATTEMPTS", "RUNNERS"]

log = logging.getLogger("swarmboot.apply")

# A worker whose join failed this many times in one `up` is named and left out (exit 6).
JOIN_ATTEMPTS = 2


def _via(run: Run, label: str) -> Remote:
    """The session to the manager a step goes through."""
    return run.ctx.remote(run.instance(label))


def _sync_members(run: Run, step: SyncMembers) -> None:
    ctx = run.ctx
    if step.addresses is None:
        raise Replan(f"{step.describe()}: the cluster's addresses were not known when planned")
    content = members_file(step.addresses)

    def sync(label: str) -> None:
        remote = ctx.remote(run.instance(label))
        remote.put_file(facts.MEMBERS_FILE, content)
        remote.run("nft -f /etc/nftables.conf")

    labels = [label for label in step.labels if label not in run.not_ready]
    ctx.parallel(sync, labels)
    run.report(step.describe())
    for label in labels:
        run.changed("member_set_updated", label)


def _init(run: Run, step: InitSwarm) -> None:
    ctx = run.ctx
    inst = run.instance(step.label)
    remote = ctx.remote(inst)
    if step.leave_first:
        ctx.swarm.leave(remote)
    state = ctx.swarm.local(remote).state
    if state != "inactive":
        raise Replan(f"{step.label} is {state} in a swarm since it was planned")
    ctx.swarm.init(remote, advertise_address(ctx.spec, inst), step.heartbeat)
    run.joined[step.label] = ctx.swarm.local(remote).node_id
    run.report(step.describe())
    run.changed("swarm_initialised", step.label, run.joined[step.label])


def _tokens(run: Run, manager: Remote) -> tuple[str, str]:
    if run.tokens is None:
        run.tokens = run.ctx.swarm.join_tokens(manager)
    return run.tokens


def _join(run: Run, label: str, via: str, as_manager: bool, leave_first: bool) -> None:
    ctx = run.ctx
    manager = _via(run, via)
    inst = run.instance(label)
    remote = ctx.remote(inst)
    if leave_first:
        # In a swarm this one does not know (the one whose only manager was rebuilt), or
        # its join ended in error: it leaves that to join this one.
        ctx.swarm.leave(remote)
    worker_token, manager_token = _tokens(run, manager)
    ctx.swarm.join(
        remote,
        advertise_address(ctx.spec, run.instance(via)),
        manager_token if as_manager else worker_token,
        advertise_address(ctx.spec, inst),
    )
    run.joined[label] = ctx.swarm.local(remote).node_id


def _join_manager(run: Run, step: JoinManager) -> None:
    if step.promote is not None:
        promoted = run.ctx.swarm.promote(_via(run, step.via), step.promote)
        run.report(step.describe())
        if promoted:
            run.changed("node_promoted", step.label, step.promote)
        return
    _join(run, step.label, step.via, as_manager=True, leave_first=step.leave_first)
    run.report(step.describe())
    run.changed("node_joined", step.label, run.joined[step.label])


def _join_workers(run: Run, step: JoinWorkers) -> None:
    """Join the workers in parallel. One whose join fails does not stop the others: the
    next round observes it and tries again, and after JOIN_ATTEMPTS it is named."""
    labels = [label for label in step.labels if label not in run.not_ready]
    leaving = set(step.leave_first)

    def join(label: str) -> str | None:
        try:
            _join(run, label, step.via, as_manager=False, leave_first=label in leaving)
        except (SwarmError, RemoteError) as exc:
            return exc.message
        return None

    failed = {
        label: why for label, why in zip(labels, run.ctx.parallel(join, labels), strict=True) if why
    }
    run.unjoined = set(failed)
    for label, why in sorted(failed.items()):
        run.join_failures[label] += 1
        if run.join_failures[label] >= JOIN_ATTEMPTS:
            run.not_ready[label] = f"its join failed {JOIN_ATTEMPTS} times: {why}"
            run.ctx.reporter.failed(f"{label}: {run.not_ready[label]}")
        else:
            run.ctx.reporter.failed(f"{label}: its join failed, tried again next round: {why}")
    joined = [label for label in labels if label not in failed]
    if joined:
        run.report(
            step.describe() if not failed else f"Join {len(joined)} of {len(labels)} workers"
        )
    for label in joined:
        run.changed("node_joined", label, run.joined[label])


def _label(run: Run, step: LabelNode) -> None:
    if step.label in run.unjoined or step.label in run.not_ready:
        return  # it did not join this round: the next round labels it once it has
    node_id = step.node_id or run.joined.get(step.label)
    if node_id is None:
        raise Replan(f"{step.label} was to join before its labels, and did not")
    labelled = run.ctx.swarm.set_labels(_via(run, step.via), node_id, dict(step.labels))
    run.report(step.describe())
    if labelled:
        run.changed("node_labelled", step.label, node_id)


def _remove_stale(run: Run, step: RemoveStaleNode) -> None:
    removed = run.ctx.swarm.remove(_via(run, step.via), step.node_id)
    run.report(step.describe())
    if removed:
        run.changed("node_removed", step.hostname, step.node_id)


def _drain(run: Run, step: DrainNode) -> None:
    """Drain the node and wait (up to settings.drain_timeout) until its tasks have moved."""
    ctx = run.ctx
    manager = _via(run, step.via)
    drained = ctx.swarm.drain(manager, step.node_id)
    if not run.until(lambda: ctx.swarm.drained(manager, step.node_id), ctx.settings.drain_timeout):
        ctx.reporter.failed(
            f"{step.label}: its tasks had not all moved after {ctx.settings.drain_timeout:.0f} s;"
            " going on"
        )
    run.report(step.describe())
    if drained:
        run.changed("node_drained", step.label, step.node_id)


def _demote(run: Run, step: DemoteNode) -> None:
    demoted = run.ctx.swarm.demote(_via(run, step.via), step.node_id)
    run.report(step.describe())
    if demoted:
        run.changed("node_demoted", step.label, step.node_id)


def _leave(run: Run, step: LeaveSwarm) -> None:
    try:
        run.ctx.swarm.leave(run.ctx.remote(run.instance(step.label)))
    except (RemoteError, SwarmError) as exc:
        # Its entry is removed from a manager next, whether it left or not.
        log.info("%s did not leave the swarm itself: %s", step.label, exc)
        run.report(step.describe())
        return
    run.report(step.describe())
    run.changed("node_left", step.label)


def _network(run: Run, step: EnsureNetwork) -> None:
    made = run.ctx.swarm.ensure_network(_via(run, step.via), step.name, step.encrypted, step.subnet)
    run.report(step.describe())
    if made:
        run.changed("network_created", step.name)


def _set_heartbeat(run: Run, step: SetHeartbeat) -> None:
    changed = run.ctx.swarm.set_heartbeat(_via(run, step.via), step.seconds)
    run.report(step.describe())
    if changed:
        run.changed("heartbeat_set", str(step.seconds))


def _rotate_join_tokens(run: Run, step: RotateJoinTokens) -> None:
    run.ctx.swarm.rotate_join_tokens(_via(run, step.via))
    run.tokens = None  # the ones this run may have read join no node any more
    run.report(step.describe())
    run.changed("join_tokens_rotated", "worker and manager")


def _rotate_ca(run: Run, step: RotateCA) -> None:
    started = run.ctx.swarm.rotate_ca(_via(run, step.via), step.force_rotate)
    run.report(step.describe())
    if started:
        run.changed("ca_rotated", "swarm CA", step.force_rotate)


def _force_new_cluster(run: Run, step: ForceNewCluster) -> None:
    run.ctx.swarm.force_new_cluster(run.ctx.remote(run.instance(step.label)), step.advertise)
    run.report(step.describe())
    run.changed("swarm_forced_new", step.label)


def _unlock(run: Run, step: UnlockSwarm) -> None:
    key = run.ctx.unlock_key
    if key is None:
        raise SwarmbootError(
            f"{step.label} is locked (the swarm has autolock on) and no unlock key was given",
            hint="set SWARMBOOT_UNLOCK_KEY to the key `docker swarm unlock-key` showed",
        )
    run.ctx.swarm.unlock(run.ctx.remote(run.instance(step.label)), key)
    run.report(step.describe())
    run.changed("node_unlocked", step.label)


def _backup(run: Run, step: BackupSwarm) -> None:
    """Read what the swarm holds, archive the manager's raft state (its engine stopped and
    started again on the node), wait until it is back in raft, and write the sealed file."""
    ctx = run.ctx
    if ctx.backup_key is None:
        raise SwarmbootError("no backup passphrase was given", hint="set SWARMBOOT_BACKUP_KEY")
    via = _via(run, step.via)
    inventory = ctx.swarm.inventory(via)
    entry = ctx.swarm.state(via, step.via).node(step.label)
    if entry is None:
        raise Replan(f"{step.label} is not in the swarm since it was planned")
    archive = ctx.swarm.archive_swarm(ctx.remote(run.instance(step.label)))

    def back() -> bool:
        entry = ctx.swarm.state(via, step.via).node(step.label)
        return entry is not None and entry.state == "ready" and entry.reachable_manager

    if not run.until(back, ctx.settings.heard_timeout):
        ctx.reporter.failed(
            f"{step.label} was not back in raft {ctx.settings.heard_timeout:.0f} s after the "
            "copy; `swarmboot status` shows it"
        )
    sealed = seal(
        Backup(
            manifest(ctx.spec, step.label, entry.id, inventory, archive),
            archive,
            inventory.unlock_key,
        ),
        ctx.backup_key,
    )
    out = Path(step.out)
    part = out.with_name(out.name + ".part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(sealed)
    os.replace(part, out)
    run.report(step.describe())


def _restore(run: Run, step: RestoreSwarm) -> None:
    ctx = run.ctx
    archive = ctx.restore_archive
    if archive is None or hashlib.sha256(archive).hexdigest() != step.archive_sha256:
        raise Replan("the backup this restore was planned with is not the one at hand")
    remote = ctx.remote(run.instance(step.label))
    state = ctx.swarm.local(remote).state
    if state != "inactive":
        raise Replan(f"{step.label} is {state} in a swarm since it was planned")
    ctx.swarm.restore_swarm(remote, archive)
    run.report(step.describe())
    run.changed("swarm_restored", step.label)


RUNNERS: dict[type, Callable[[Run, Any], None]] = {
    BackupSwarm: _backup,
    RestoreSwarm: _restore,
    ForceNewCluster: _force_new_cluster,
    UnlockSwarm: _unlock,
    SyncMembers: _sync_members,
    InitSwarm: _init,
    JoinManager: _join_manager,
    JoinWorkers: _join_workers,
    RemoveStaleNode: _remove_stale,
    LabelNode: _label,
    EnsureNetwork: _network,
    SetHeartbeat: _set_heartbeat,
    DrainNode: _drain,
    DemoteNode: _demote,
    LeaveSwarm: _leave,
    RotateJoinTokens: _rotate_join_tokens,
    RotateCA: _rotate_ca,
}
