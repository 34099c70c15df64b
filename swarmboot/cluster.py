"""Everything a cluster command needs, and how the world is observed.

`Context` carries the adapters (`CloudApi`, a `Connector` for SSH, a `SwarmDriver`), the
reporter and the settings; the CLI builds it in one place. `observe` reads the cloud (one
listing for the cluster's Linodes), the nodes' status files and firewall member sets over
SSH, and the swarm from a manager, into an `Observed`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from swarmboot import facts
from swarmboot.clock import Clock, SystemClock
from swarmboot.cloud import CloudApi
from swarmboot.errors import SwarmbootError
from swarmboot.firewall import cloud_firewall_labels
from swarmboot.interfaces import cluster_vpcs, foreign_vpcs, vpc_labels
from swarmboot.marks import MemberMarks
from swarmboot.membership import (
    cluster_firewalls,
    cluster_linodes,
    foreign_firewalls,
    listing,
    other_clusters,
    outsiders,
    strangers,
    unmarked,
)
from swarmboot.nodestatus import NodeStatus, StatusError, parse_status
from swarmboot.placement import group_labels
from swarmboot.plan import LocalScript
from swarmboot.remote import Connector, HostKeyMismatch, Remote, RemoteError
from swarmboot.report import Reporter
from swarmboot.routes import NotRoutable
from swarmboot.spec import Spec
from swarmboot.stacks import RegistryAuth
from swarmboot.state import Instance, LocalSwarm, Observed, SwarmState, Vpc
from swarmboot.swarm import SwarmDriver, SwarmError

__all__ = [
    "FIREWALLS",
    "GROUPS",
    "LINODES",
    "SCRIPTS",
    "VPCS",
    "Context",
    "Settings",
    "advertise_address",
    "known_hosts",
    "observe",
    "observe_cloud",
]


@dataclass(frozen=True)
class Settings:
    poll_interval: float = 5.0  # seconds between list polls while waiting
    ready_timeout: float = 1200.0  # seconds a node may take to become ready
    # Linode's instance-create limit (20 per 15 s); the API's answers can only lower it.
    create_limit: tuple[int, float] = (20, 15.0)
    workers: int = 8  # parallel creates, SSH sessions, joins
    drain_timeout: float = 300.0  # seconds a drained node's tasks may take to move
    heard_timeout: float = 180.0  # seconds a new leader may take to hear from every node
    rotate_timeout: float = 900.0  # seconds a CA rotation may take to reach every node


@dataclass
class Context:
    spec: Spec
    spec_path: Path
    cloud: CloudApi
    connector: Connector
    swarm: SwarmDriver
    reporter: Reporter
    script: LocalScript
    identity_public: str
    # The marks of the identity in use: which Linodes swarmboot made (see swarmboot.marks).
    marks: MemberMarks
    # Where the identity came from (a key file's path, or the SSH agent); empty: none was
    # found, and `marks` are `NoMarks` (`plan` of a cluster not made yet needs none).
    identity_source: str = ""
    admin_keys: tuple[str, ...] = ()
    settings: Settings = field(default_factory=Settings)
    # Root's password on new and rebuilt Linodes; None: a random one each (a secret either way).
    root_password: str | None = field(default=None, repr=False)
    # The key that unlocks the swarm's managers when autolock is on (a secret).
    unlock_key: str | None = field(default=None, repr=False)
    # `backup`'s passphrase, and the archive `restore` puts on a node (secrets both).
    backup_key: bytes | None = field(default=None, repr=False)
    restore_archive: bytes | None = field(default=None, repr=False)
    # The registry logins `deploy` hands to the swarm (secrets: never shown).
    registry_auth: RegistryAuth | None = field(default=None, repr=False)
    # The spec's regions whose catalogue entry lacks placement groups, and what cloud-init
    # as the bootstrap needs that the catalogue lacks (`preflight`).
    placement_unsupported: frozenset[str] = frozenset()
    # The account's `interfaces_for_new_linodes`, read by `preflight` when the spec's
    # `cluster.interfaces` needs it (None: not read yet, or not needed).
    account_interfaces: str | None = None
    metadata_unsupported: frozenset[str] = frozenset()
    cloud_init_unsupported: frozenset[str] = frozenset()
    clock: Clock = field(default_factory=SystemClock)
    _remotes: dict[str, Remote] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def remote(self, inst: Instance) -> Remote:
        """An SSH session to a node, verified against its pinned host key; kept for reuse."""
        with self._lock:
            found = self._remotes.get(inst.label)
        if found is not None:
            return found
        address = inst.ipv4_public or inst.ipv4_private
        if address is None:
            raise RemoteError(f"{inst.label} has no IPv4 address")
        remote = self.connector.connect(inst.label, address, inst.host_key_fingerprint)
        with self._lock:
            self._remotes[inst.label] = remote
        return remote

    def forget(self, label: str) -> None:
        with self._lock:
            remote = self._remotes.pop(label, None)
        if remote is not None:
            with contextlib.suppress(Exception):
                remote.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.swarm.close()
        for label in list(self._remotes):
            self.forget(label)

    def parallel(self, fn: Callable, items: list) -> list:
        if not items:
            return []
        with ThreadPoolExecutor(max_workers=min(self.settings.workers, len(items))) as pool:
            return list(pool.map(fn, items))


def advertise_address(spec: Spec, inst: Instance) -> str:
    """The IPv4 address a node advertises to the swarm."""
    policy = spec.cluster.advertise
    if policy == "auto":
        policy = "public" if spec.multi_region else "private"
    address = inst.private_address if policy == "private" else inst.ipv4_public
    if address is None and policy == "private" and spec.cluster.advertise == "auto":
        address = inst.ipv4_public
    if address is None:
        raise SwarmbootError(
            f"{inst.label} has no {policy} IPv4 address to advertise",
            hint="private addresses (a VPC address, with Linode interfaces) come with the "
            'Linode; recreate it or set cluster.advertise = "public"',
        )
    if ipaddress.ip_address(address).version != 4:
        raise SwarmbootError(
            f"{inst.label}: {address} is IPv6; swarm's memberlist cannot advertise on it "
            '("too many colons in address")',
            hint="advertise an IPv4 address",
        )
    return address


def _read_node(
    ctx: Context, inst: Instance
) -> tuple[NodeStatus | None, tuple[str, ...] | None, str | None]:
    """The node's status report and firewall member set, (None, None) if it does not answer
    (yet), and why it never will, if that is known."""
    try:
        remote = ctx.remote(inst)
        status_text = remote.read_file(facts.STATUS_PATH)
        members_text = remote.read_file(facts.MEMBERS_FILE)
    except NotRoutable as exc:
        return None, None, exc.message.removeprefix(f"{inst.label}: ")
    except RemoteError:
        ctx.forget(inst.label)
        return None, None, None
    report = None
    if status_text and status_text.strip():
        try:
            report = parse_status(status_text, source=f"{inst.label}:{facts.STATUS_PATH}")
        except StatusError:
            report = None
    return report, _members(members_text or ""), None


def _members(text: str) -> tuple[str, ...]:
    for line in text.splitlines():
        if line.startswith("add element") and "{" in line:
            inner = line.split("{", 1)[1].rsplit("}", 1)[0]
            return tuple(sorted(a.strip() for a in inner.split(",") if a.strip()))
    return ()


# What `observe_cloud` lists, each of which `keep` can stand in for.
LINODES, SCRIPTS, FIREWALLS, GROUPS, VPCS = (
    "linodes",
    "stackscripts",
    "firewalls",
    "placement_groups",
    "vpcs",
)


def _with_vpc_addresses(
    instances: tuple[Instance, ...], addresses: dict[int, tuple[int, str]]
) -> tuple[Instance, ...]:
    """The Linodes with their VPC interface and its address ({Linode id: (interface id,
    address)}), where they have one."""
    return tuple(
        replace(i, vpc_interface_id=found[0], ipv4_vpc=found[1])
        if (found := addresses.get(i.id)) is not None
        else i
        for i in instances
    )


def observe_cloud(
    ctx: Context,
    *,
    account: bool = False,
    keep: Observed | None = None,
    unchanged: frozenset[str] = frozenset(),
    vpcs: bool | None = None,
) -> Observed:
    """The cloud alone, four listings: the cluster's Linodes (and strangers holding its
    labels), the StackScripts, the Cloud Firewalls holding its labels, and the placement
    groups holding its group labels (of the spec's regions and those its Linodes are in),
    with their members; and, with Linode interfaces, two more: the VPCs holding its VPC
    labels, and its Linodes' addresses in them. No node is contacted. With `account`, every
    Linode of the account is listed instead, to name the other clusters on it (who else may
    use the StackScript). The lists named in `unchanged` (LINODES, SCRIPTS, FIREWALLS,
    GROUPS, VPCS) are taken from `keep`: an earlier look, brought up to date with what the
    API answered to every change made since (see swarmboot.apply.engine). `vpcs`: whether to
    list the VPCs; None: when the spec asks for Linode interfaces ("linode" or "auto") or a
    Linode of the cluster has them."""
    spec = ctx.spec
    if keep is not None and LINODES in unchanged and not account:
        linodes = Observed(
            keep.instances, keep.strangers, outsiders=keep.outsiders, unmarked=keep.unmarked
        )
        regions = {
            i.region for i in (*keep.instances, *keep.strangers, *keep.outsiders, *keep.unmarked)
        }
    else:
        found = ctx.cloud.instances() if account else ctx.cloud.instances(*listing(spec))
        prefix = listing(spec)[1]
        mine = [i for i in found if spec.tag in i.tags or i.label.startswith(prefix)]
        linodes = Observed(
            tuple(cluster_linodes(spec, mine, ctx.marks)),
            tuple(strangers(spec, mine)),
            outsiders=outsiders(spec, mine),
            unmarked=unmarked(spec, mine, ctx.marks),
            other_clusters=other_clusters(spec, found) if account else None,
        )
        regions = {i.region for i in mine}
    if keep is not None and FIREWALLS in unchanged:
        firewalls = [*keep.firewalls, *keep.foreign_firewalls]
    else:
        firewalls = ctx.cloud.firewalls(cloud_firewall_labels(spec))
    # The groups listed are those of the spec's regions and of its Linodes' regions.
    listed = {*spec.regions, *(i.region for i in keep.instances)} if keep else set()
    if keep is not None and GROUPS in unchanged and regions <= listed:
        groups = list(keep.placement_groups)
    else:
        groups = ctx.cloud.placement_groups(group_labels(spec, regions))
    if keep is not None and SCRIPTS in unchanged:
        scripts = keep.scripts
    elif spec.cluster.bootstrap == "cloud-init" and not account:
        scripts = ()  # nothing is published for it, nor made from a StackScript
    else:
        scripts = tuple(ctx.cloud.stackscripts())
    members = linodes.instances
    if vpcs is None:
        vpcs = spec.cluster.interfaces != "legacy" or any(i.linode_interfaces for i in members)
    found_vpcs: list[Vpc] = []
    addresses: dict[int, tuple[int, str]] = {}
    if keep is not None and VPCS in unchanged and regions <= listed:
        found_vpcs = [*keep.vpcs, *(v for v, _ in keep.foreign_vpcs)]
        addresses = {
            i.id: (i.vpc_interface_id, i.ipv4_vpc)
            for i in keep.instances
            if i.vpc_interface_id is not None and i.ipv4_vpc is not None
        }
    elif vpcs:
        found_vpcs = ctx.cloud.vpcs(vpc_labels(spec, regions))
        owned = cluster_vpcs(spec, found_vpcs, ctx.marks)
        addresses = {
            a.linode_id: (a.interface_id, a.address)
            for a in ctx.cloud.vpc_addresses(v.id for v in owned)
        }
    return replace(
        linodes,
        instances=_with_vpc_addresses(members, addresses),
        scripts=scripts,
        firewalls=cluster_firewalls(spec, firewalls),
        foreign_firewalls=foreign_firewalls(spec, firewalls),
        placement_groups=tuple(groups),
        placement_unsupported=ctx.placement_unsupported,
        vpcs=cluster_vpcs(spec, found_vpcs, ctx.marks),
        foreign_vpcs=foreign_vpcs(spec, found_vpcs, ctx.marks),
        account_interfaces=ctx.account_interfaces,
        metadata_unsupported=ctx.metadata_unsupported,
        cloud_init_unsupported=ctx.cloud_init_unsupported,
    )


def observe(
    ctx: Context,
    *,
    nodes: bool = True,
    keep: Observed | None = None,
    unchanged: frozenset[str] = frozenset(),
) -> Observed:
    """Read the world. With `nodes`, also each running node and the swarm over SSH. `keep`
    and `unchanged`: lists of the cloud not read again (see `observe_cloud`); the Linodes
    are listed all the same when a node that `keep` has running does not answer."""
    cloud = observe_cloud(ctx, keep=keep, unchanged=unchanged)
    mine = list(cloud.instances)
    reports: dict[str, NodeStatus] = {}
    members: dict[str, tuple[str, ...]] = {}
    failures: dict[str, str] = {}
    swarm = None
    local: dict[str, LocalSwarm] = {}
    if nodes:
        running = [i for i in mine if i.status == "running"]
        for inst, (report, held, failure) in zip(
            running, ctx.parallel(lambda i: _read_node(ctx, i), running), strict=True
        ):
            if report is not None:
                reports[inst.label] = report
            if held is not None:
                members[inst.label] = held
            if failure is not None:
                failures[inst.label] = failure
        silent = [i for i in running if i.label not in {*members, *failures}]
        if silent and LINODES in unchanged and keep is not None:
            # Is its Linode still there (and running)?
            cloud = observe_cloud(ctx, keep=keep, unchanged=unchanged - {LINODES})
            mine = list(cloud.instances)
        swarm = _swarm_state(ctx, mine, reports)
        local = _local_views(ctx, mine, reports, swarm)
    # The config profile (kernel) matters only for nodes that are not ready yet.
    pending = [i for i in mine if i.label not in reports or reports[i.label].phase != "done"]
    configs = dict(
        zip(
            (i.label for i in pending),
            ctx.parallel(lambda i: ctx.cloud.config(i.id), pending),
            strict=True,
        )
    )
    instances = tuple(
        Instance(**{**i.__dict__, "config": configs.get(i.label, i.config)}) for i in mine
    )
    # A Linode marked for a rebuild: has it got its new disk yet (one request each)?
    marked = [i for i in mine if i.rebuild_since is not None]
    done = ctx.parallel(lambda i: ctx.cloud.rebuilt_since(i.id, i.rebuild_since), marked)
    rebuilt = frozenset(i.label for i, yes in zip(marked, done, strict=True) if yes)
    # What the cloud alone said stays as observe_cloud found it; the rest is the nodes'.
    return replace(
        cloud,
        instances=instances,
        swarm=swarm,
        reports=reports,
        members=members,
        failures=failures,
        rebuilt=rebuilt,
        local=local,
    )


def known_hosts(ctx: Context) -> tuple[list[str], list[str]]:
    """known_hosts lines for the cluster's running nodes, each key verified against the
    fingerprint pinned in its Linode's tags; and why any node was left out."""
    spec = ctx.spec
    found = cluster_linodes(spec, ctx.cloud.instances(*listing(spec)), ctx.marks)
    mine = [i for i in found if i.status == "running"]

    def line(inst: Instance) -> tuple[str | None, str | None]:
        try:
            key = ctx.remote(inst).host_key()
        except HostKeyMismatch:
            raise  # never skipped quietly: someone may be in the middle
        except (RemoteError, NotRoutable) as exc:
            return None, exc.message
        addresses = ",".join(a for a in (inst.ipv4_public, inst.ipv4_private) if a)
        return f"{addresses} {key}", None

    lines, skipped = [], []
    for found, why in ctx.parallel(line, sorted(mine, key=lambda i: i.label)):
        if found:
            lines.append(found)
        if why:
            skipped.append(why)
    return lines, skipped


def _swarm_state(ctx: Context, mine: list[Instance], reports: dict[str, NodeStatus]):
    by_label = {i.label: i for i in mine}
    # The spec's managers first, then any other node of the cluster (a manager the spec no
    # longer has, waiting to be pruned, may be the only one that answers).
    spec_managers = [n.label for n in ctx.spec.nodes() if n.role == "manager"]
    for label in spec_managers + sorted(set(by_label) - set(spec_managers)):
        if label not in reports:
            continue
        inst = by_label[label]
        try:
            remote = ctx.remote(inst)
            local = ctx.swarm.local(remote)
            if local.state == "active" and local.manager:
                return ctx.swarm.state(remote, label)
        except (RemoteError, SwarmError):
            continue
    return None


def _local_views(
    ctx: Context, mine: list[Instance], reports: dict[str, NodeStatus], swarm: SwarmState | None
) -> dict[str, LocalSwarm]:
    """Each answering node's own view of the swarm, for those that are not ready members of
    `swarm`: whether it joins, leaves a swarm of its own first, or is a member not ready yet.
    A converged cluster costs no call here."""
    members = {e.hostname for e in swarm.nodes if e.state == "ready"} if swarm else set()
    candidates = [i for i in mine if i.label in reports and i.label not in members]

    def read(inst: Instance) -> LocalSwarm | None:
        try:
            return ctx.swarm.local(ctx.remote(inst))
        except (RemoteError, SwarmError):
            return None

    views = ctx.parallel(read, candidates)
    return {i.label: v for i, v in zip(candidates, views, strict=True) if v is not None}


@contextlib.contextmanager
def context(ctx: Context) -> Iterator[Context]:
    try:
        yield ctx
    finally:
        ctx.close()
