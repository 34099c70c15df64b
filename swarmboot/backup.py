"""`backup` and `restore`: the swarm's raft state kept off the cluster, and a swarm made
again from it after every manager was lost.

A backup is Docker's documented procedure, planned and run by the engine `up` uses: on a
manager that does not lead, and only where the others keep the quorum while it is away, the
engine is stopped, `/var/lib/docker/swarm` archived and the engine started again (detached
on the node, so it starts again whatever becomes of swarmboot); the engine waits until the
manager is back in raft. The file holds that archive, a manifest (the services, configs and
secrets by name, networks, nodes and labels) and, with autolock, the unlock key, sealed with
AES-256-GCM under a key derived (scrypt) from a passphrase read from SWARMBOOT_BACKUP_KEY or
a file, never from the command line.

A restore puts that state on one manager of the spec (the one it was taken from, rebuilt
when it is dead), then hands over to `recover`, which forces a new cluster there and
rebuilds the other lost nodes. What comes back: the services (their specs), configs,
secrets, networks, node entries and labels as they were when the backup was taken. What does
not: changes after it, the containers' own data (volumes), images (the nodes pull them),
and nodes that joined after it (they join again).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from swarmboot.cluster import Context
from swarmboot.errors import SwarmbootError
from swarmboot.plan import QuorumError
from swarmboot.quorum import quorum_problem
from swarmboot.readiness import unhealthy
from swarmboot.recover import MarkRebuild, force_steps, quorum_lost
from swarmboot.spec import Spec
from swarmboot.state import Observed
from swarmboot.swarm import Inventory

if TYPE_CHECKING:
    from swarmboot.apply.changes import Change

__all__ = [
    "BACKUP_KEY_ENV",
    "Backup",
    "BackupError",
    "BackupSwarm",
    "RestoreSwarm",
    "backup",
    "backup_key",
    "describe_manifest",
    "manifest",
    "node_up_steps",
    "open_backup",
    "plan_backup",
    "plan_restore",
    "restore",
    "restore_target",
    "seal",
]

BACKUP_KEY_ENV = "SWARMBOOT_BACKUP_KEY"
_MAGIC = b"SWARMBOOT-BACKUP 1\n"
# scrypt's cost: about 0.1 s and 32 MiB here; the header records it.
_SCRYPT = {"n": 2**15, "r": 8, "p": 1}


class BackupError(SwarmbootError):
    """A backup file that cannot be read (not one, or another key)."""


def backup_key(key_file: Path | None, env: Mapping[str, str] | None = None) -> bytes:
    """The passphrase that seals and opens backups: a file's content, else
    SWARMBOOT_BACKUP_KEY. Never an argument (it would be in every process listing)."""
    env = os.environ if env is None else env
    if key_file is not None:
        try:
            data = key_file.read_bytes()[:4096].strip()
        except OSError as exc:
            raise SwarmbootError(
                f"--key-file {key_file}: cannot read it ({exc.strerror})",
                hint="give a readable file holding the backup passphrase",
            ) from None
        if data:
            return data
        raise SwarmbootError(f"--key-file {key_file} is empty", hint="write a passphrase in it")
    value = env.get(BACKUP_KEY_ENV, "")
    if len(value) < 12:
        raise SwarmbootError(
            f"no backup passphrase: {BACKUP_KEY_ENV} is "
            + ("too short (12 characters at least)" if value else "not set"),
            hint=f"set {BACKUP_KEY_ENV}, or pass --key-file FILE; keep it apart from the backups",
        )
    return value.encode()


@dataclass(frozen=True)
class Backup:
    """What a backup file holds: its manifest, the node's archive of /var/lib/docker/swarm,
    and the unlock key when the swarm has autolock on."""

    manifest: dict
    archive: bytes = field(repr=False)
    unlock_key: str | None = field(default=None, repr=False)


def _derive(passphrase: bytes, salt: bytes, cost: Mapping[str, int]) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, **cost).derive(passphrase)


def seal(backup: Backup, passphrase: bytes) -> bytes:
    """The backup as a file: a header line (how it is sealed, nothing secret), then the
    manifest, archive and unlock key in a tar, sealed with AES-256-GCM."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as tar:
        members = {
            "manifest.json": json.dumps(backup.manifest, indent=1, sort_keys=True).encode(),
            "swarm.tar.gz": backup.archive,
        }
        if backup.unlock_key:
            members["unlock-key"] = backup.unlock_key.encode()
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o600
            tar.addfile(info, io.BytesIO(data))
    salt, nonce = os.urandom(16), os.urandom(12)
    header = json.dumps(
        {
            "format": 1,
            "kdf": {"name": "scrypt", "salt": base64.b64encode(salt).decode(), **_SCRYPT},
            "cipher": "AES-256-GCM",
            "nonce": base64.b64encode(nonce).decode(),
        },
        sort_keys=True,
    ).encode()
    sealed = AESGCM(_derive(passphrase, salt, _SCRYPT)).encrypt(
        nonce, payload.getvalue(), _MAGIC + header
    )
    return _MAGIC + header + b"\n" + sealed


def open_backup(data: bytes, passphrase: bytes, source: str) -> Backup:
    """A backup file's content, checked (a file changed or opened with another key is
    refused with one line)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not data.startswith(_MAGIC):
        raise BackupError(
            f"{source} is not a swarmboot backup", hint="give a file `swarmboot backup` wrote"
        )
    header, _, sealed = data[len(_MAGIC) :].partition(b"\n")
    try:
        meta = json.loads(header)
        kdf = meta["kdf"]
        salt = base64.b64decode(kdf["salt"])
        nonce = base64.b64decode(meta["nonce"])
        cost = {k: int(kdf[k]) for k in ("n", "r", "p")}
    except (ValueError, KeyError, TypeError):
        raise BackupError(f"{source}: its header is damaged") from None
    if meta.get("format") != 1 or cost["n"] > 2**20 or cost["r"] > 32 or cost["p"] > 16:
        raise BackupError(f"{source}: a backup format this swarmboot does not read")
    try:
        payload = AESGCM(_derive(passphrase, salt, cost)).decrypt(nonce, sealed, _MAGIC + header)
    except InvalidTag:
        raise BackupError(
            f"{source} cannot be opened with this passphrase (or it was changed since it was "
            "written)",
            hint=f"set {BACKUP_KEY_ENV} (or --key-file) to the passphrase it was made with",
        ) from None
    with tarfile.open(fileobj=io.BytesIO(payload)) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    unlock = files.get("unlock-key")
    return Backup(
        json.loads(files["manifest.json"]),
        files["swarm.tar.gz"],
        unlock.decode() if unlock else None,
    )


def manifest(spec: Spec, label: str, node_id: str, inventory: Inventory, archive: bytes) -> dict:
    """What a backup holds, by name (nothing secret): shown by `restore` before it acts.
    `node_id`: the swarm node id of the manager it was taken from, which the node it is
    restored on takes."""
    data = asdict(replace(inventory, unlock_key=None))
    data.pop("unlock_key")
    return {
        "cluster": spec.cluster.name,
        "taken_from": label,
        "node_id": node_id,
        "taken_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "archive_sha256": hashlib.sha256(archive).hexdigest(),
        **data,
    }


def describe_manifest(data: Mapping) -> tuple[str, ...]:
    """A backup's manifest in a few lines."""
    services = ", ".join(f"{name} ({kind})" for name, kind in data.get("services", [])) or "-"
    return (
        f"cluster {data['cluster']}, swarm {data.get('cluster_id', '?')[:12]}, taken from "
        f"{data['taken_from']} at {data['taken_at']}",
        f"services: {services}",
        f"configs: {', '.join(data.get('configs', [])) or '-'}",
        f"secrets (names only): {', '.join(data.get('secrets', [])) or '-'}",
        f"networks: {', '.join(data.get('networks', [])) or '-'}",
        f"nodes: {len(data.get('nodes', []))}"
        + (", autolock on (the unlock key is in the backup)" if data.get("autolock") else ""),
    )


@dataclass(frozen=True)
class BackupSwarm:
    """Archive a manager's raft state (its engine stopped meanwhile) through the manager
    `via`, which reads the inventory and waits for it to come back; sealed into `out`."""

    label: str
    via: str
    out: str

    def describe(self) -> str:
        return (
            f"Back up the swarm from {self.label} (a manager that does not lead): stop its "
            f"engine, archive /var/lib/docker/swarm, start it again; sealed into {self.out}"
        )


@dataclass(frozen=True)
class RestoreSwarm:
    """Put a backup's raft state on `label`, a node in no swarm (its engine restarted)."""

    label: str
    archive_sha256: str  # of the archive the restore command opened (the context holds it)

    def describe(self) -> str:
        return (
            f"Restore the swarm's raft state on {self.label} (archive "
            f"{self.archive_sha256[:12]}): stop its engine, put /var/lib/docker/swarm in "
            "place, start it again"
        )


def plan_backup(spec: Spec, observed: Observed, out: Path) -> tuple[BackupSwarm, ...]:
    """The manager to back up from: reachable and ready in raft, not the leader, and one
    whose engine stopping leaves the others their quorum."""
    swarm = observed.swarm
    if swarm is None:
        raise SwarmbootError(
            "no manager leads the swarm: there is no consistent state to back up",
            hint="`swarmboot recover SPEC` first"
            if quorum_lost(observed)
            else "`swarmboot up` makes the swarm",
        )
    managers = [e for e in swarm.nodes if e.raft_member]
    order = {n.label: i for i, n in enumerate(spec.nodes())}
    candidates = sorted(
        (
            e
            for e in managers
            if not e.leader
            and e.reachable_manager
            and e.state == "ready"
            and e.hostname in observed.reports
        ),
        key=lambda e: order.get(e.hostname, len(order)),
    )
    for entry in candidates:
        if quorum_problem(swarm, {entry.hostname}) is None:
            leader = next((e.hostname for e in managers if e.leader), swarm.manager)
            return (BackupSwarm(entry.hostname, leader, str(out)),)
    if len(managers) == 1:
        problem = (
            f"{managers[0].hostname} is the swarm's only manager: stopping its engine for "
            "the copy stops the swarm"
        )
    else:
        problem = (
            "no manager but the leader can stop its engine for the copy while the others "
            "keep the quorum"
            + (f" ({quorum_problem(swarm, {candidates[0].hostname})})" if candidates else "")
        )
    raise QuorumError(
        f"refusing to back up: {problem}",
        hint="bring the managers back first (`swarmboot repair`), or run 3 managers",
    )


def restore_target(spec: Spec, backup: Backup) -> str:
    """The manager a backup is restored on: the one it was taken from, if the spec has it."""
    managers = [n.label for n in spec.nodes() if n.role == "manager"]
    taken = backup.manifest.get("taken_from")
    return taken if taken in managers else managers[0]


def plan_restore(
    spec: Spec, observed: Observed, backup: Backup, cloud_steps: Callable[[str], tuple]
) -> tuple:
    """Steps that put the backup on its target: the target rebuilt first when it is dead
    (`cloud_steps(label)` gives the steps `up` would take to bring one node up), then its
    raft state restored. None once it holds it (`recover` goes on from there)."""
    if spec.cluster.name != backup.manifest.get("cluster"):
        raise SwarmbootError(
            f"the backup is of the cluster {backup.manifest.get('cluster')!r}, the spec is "
            f"{spec.cluster.name!r}",
            hint="restore it with that cluster's spec",
        )
    if observed.swarm is not None:
        target = restore_target(spec, backup)
        led = observed.swarm.node(target)
        if led is not None and led.id == backup.manifest.get("node_id") and led.leader:
            return ()  # made again from the backup: `recover` goes on
        raise SwarmbootError(
            f"a manager ({observed.swarm.manager}) leads the swarm: a restore would replace "
            "a working swarm's state",
            hint="`swarmboot backup` keeps it; restore only after every manager is lost",
        )
    target = restore_target(spec, backup)
    local = observed.local.get(target)
    restored = local is not None and local.node_id == backup.manifest.get("node_id")
    if restored and local.state in ("active", "pending", "locked"):
        # It holds the backup's raft state, without a leader (its old managers are gone):
        # a new cluster is forced on it; `recover` goes on from there.
        taken = backup.manifest.get("taken_at", "?")
        return tuple(force_steps(spec, observed, target, f"restored from the backup of {taken}"))
    if quorum_lost(observed):
        raise SwarmbootError(
            "managers of the swarm answer with its raft state: it is not lost",
            hint="`swarmboot recover SPEC` makes a new swarm from the one whose log goes furthest",
        )
    inst = observed.instance(target)
    answering = target in observed.reports and local is not None
    if answering and local.state == "inactive":
        return (RestoreSwarm(target, backup.manifest["archive_sha256"]),)
    if inst is not None and inst.rebuild_since is None:
        why = dict(unhealthy(spec, observed)).get(target) or (
            "it does not answer" if not answering else f"its engine is {local.state}"
        )
        return (MarkRebuild(target, inst.id, inst.tags, why),)
    steps = cloud_steps(target)
    if not steps:
        # Up as far as the cloud goes, and yet no engine answers it as a node in no swarm.
        state = local.state if local is not None else "not answering"
        raise SwarmbootError(
            f"{target} is up, but its Docker engine is {state}: the backup cannot go on it",
            hint="`swarmboot status` shows it; run `swarmboot restore` again",
        )
    return steps


def node_up_steps(ctx: Context, observed: Observed, label: str) -> tuple:
    """The steps `up` takes to bring one node up (published script, firewalls and group,
    the Linode rebuilt or made, its kernel, its boot, the wait, its member set), without
    anything of the swarm: restore puts the swarm on it next."""
    from swarmboot.placement import EnsurePlacementGroup
    from swarmboot.plan import (
        Boot,
        CreateInstance,
        EnsureCloudFirewall,
        NotReady,
        PublishStackScript,
        RebuildInstance,
        SetKernel,
        SyncCloudFirewall,
        SyncMembers,
        WaitReady,
        plan,
    )

    kept: list = []
    for step in plan(ctx.spec, observed, ctx.script):
        if isinstance(step, PublishStackScript | EnsureCloudFirewall | EnsurePlacementGroup):
            kept.append(step)
        elif isinstance(step, RebuildInstance | CreateInstance | SetKernel | Boot | NotReady):
            if step.label == label:
                kept.append(step)
        elif isinstance(step, WaitReady | SyncMembers) and label in step.labels:
            kept.append(replace(step, labels=(label,)))
        elif isinstance(step, SyncCloudFirewall):
            kept.append(step)
    return tuple(kept)


def backup(ctx: Context, observed: Observed, out: Path, passphrase: bytes) -> list[str]:
    """Carry out `plan_backup`: the file sealed with `passphrase` at `out`."""
    from swarmboot.apply import run_steps

    ctx.backup_key = passphrase
    return run_steps(ctx, observed, plan_backup(ctx.spec, observed, out))


def restore(
    ctx: Context,
    found: Backup,
    *,
    rounds: int = 8,
    confirm: Callable[[], None] | None = None,
):
    """Rounds of `plan_restore` until the target holds the backup's raft state, then
    `recover` from there (a new cluster forced on it, the lost nodes rebuilt)."""
    from swarmboot.apply import run_steps
    from swarmboot.recover import observe_recovery, recover

    if found.unlock_key and ctx.unlock_key is None:
        ctx.unlock_key = found.unlock_key  # an unlock key in the environment wins
    ctx.restore_archive = found.archive
    started = ctx.clock.monotonic()
    done: list[str] = []
    changes: list[Change] = []
    observed = observe_recovery(ctx)
    for _ in range(rounds):
        steps = plan_restore(
            ctx.spec, observed, found, lambda label, o=observed: node_up_steps(ctx, o, label)
        )
        if not steps:
            break
        if confirm is not None:
            confirm()
            confirm = None
        done += run_steps(ctx, observed, steps, changes=changes)
        observed = observe_recovery(ctx)
    else:
        raise SwarmbootError(
            f"the backup was not restored on {restore_target(ctx.spec, found)} after {rounds} "
            "rounds",
            hint="run `swarmboot restore` again; `swarmboot status` shows each node",
        )
    if confirm is not None:
        confirm()
    result = recover(ctx, observed)
    result.steps_run[:0] = done
    result.changes[:0] = changes
    result.seconds = ctx.clock.monotonic() - started
    return result
