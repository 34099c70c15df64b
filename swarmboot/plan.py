"""The planning core: spec + observed state -> the ordered steps that converge them. Pure.

Steps are frozen data that describe themselves; `swarmboot plan` prints them and `swarmboot up`
carries them out. A step names nodes by label: addresses that do not exist yet (a new node's
IP) are resolved when the step runs. Running the plan of a converged cluster gives no steps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from swarmboot import facts
from swarmboot.errors import ExitCode, SwarmbootError
from swarmboot.firewall import FirewallRules, cloud_firewall_labels, cloud_rules
from swarmboot.interfaces import (
    LEGACY,
    LINODE,
    EnsureVpc,
    interface_firewall_changes,
    new_generation,
    vpc_problem,
    vpc_steps,
    wanted_vpcs,
)
from swarmboot.membership import cluster_addresses, firewall_devices, surplus
from swarmboot.placement import (
    AssignPlacementGroup,
    EnsurePlacementGroup,
    placement_problem,
    placement_steps,
    wanted_groups,
)
from swarmboot.quorum import has_quorum, quorum_problem
from swarmboot.readiness import esp_lacking, is_ready, silent_and_down, why_failed
from swarmboot.spec import NodePlan, Spec
from swarmboot.state import Instance, Observed, PublishedScript, SwarmNode

__all__ = [
    "Boot",
    "ClearRebuildMark",
    "CreateInstance",
    "DeleteInstance",
    "DemoteNode",
    "DrainNode",
    "EnsureCloudFirewall",
    "EnsureNetwork",
    "InitSwarm",
    "JoinManager",
    "JoinWorkers",
    "LabelNode",
    "LeaveSwarm",
    "LocalScript",
    "NotReady",
    "PlanError",
    "PublishStackScript",
    "QuorumError",
    "RebuildInstance",
    "RemoveStaleNode",
    "SetHeartbeat",
    "SetKernel",
    "Step",
    "SyncCloudFirewall",
    "SyncMembers",
    "WaitReady",
    "node_labels",
    "plan",
    "publish_steps",
    "rebuild_prep",
    "script_label",
    "step_data",
    "swarm_via",
]

GRUB = facts.GRUB_KERNEL


class PlanError(SwarmbootError):
    """The spec and the world cannot be converged without a decision from the user."""

    exit_code = ExitCode.BAD_SPEC


class QuorumError(PlanError):
    """Removing a manager would lose the swarm's raft quorum: refused unless forced."""

    exit_code = ExitCode.UNSAFE


def script_label(file: str) -> str:
    """The label a StackScript file is published under."""
    return "swarmboot-" + file.removesuffix(".sh")


@dataclass(frozen=True)
class LocalScript:
    """A rendered StackScript as it would be published, and its cloud-config (the same
    script as cloud-init user data: see swarmboot.userdata)."""

    file: str
    text: str
    images: tuple[str, ...]
    description: str
    cloud_config: str = field(default="", repr=False)

    @property
    def label(self) -> str:
        return script_label(self.file)

    @property
    def rev(self) -> str:
        return "swarmboot sha256:" + hashlib.sha256(self.text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PublishStackScript:
    file: str
    label: str
    action: Literal["create", "update"]
    script_id: int | None  # the published one to update; None to create
    rev: str  # the content hash of stackscripts/<file> that is to be published

    def describe(self) -> str:
        verb = "Publish" if self.action == "create" else "Update"
        return f"{verb} StackScript {self.label} from stackscripts/{self.file}"


@dataclass(frozen=True)
class EnsureCloudFirewall:
    label: str
    rules: FirewallRules  # before any member: SSH and ICMP (and the public ports)

    def describe(self) -> str:
        return f"Create Cloud Firewall {self.label}"


@dataclass(frozen=True)
class CreateInstance:
    label: str
    region: str
    type: str
    role: str
    firewall: str  # the Cloud Firewall it is made behind
    placement_group: str | None = None  # the label of the placement group it is made in
    # "linode": made with Linode interfaces, a public one and one in the VPC `vpc` (its
    # label), each behind `firewall`; "legacy_config": the account's default, as before.
    interface_generation: str = LEGACY
    vpc: str | None = None
    bootstrap: str = "stackscript"  # or "cloud-init": the script as user data

    def describe(self) -> str:
        made = f"Create {self.label} ({self.role}, {self.region}, {self.type})"
        if self.interface_generation == LINODE:
            made += f" with a public interface and one in VPC {self.vpc}"
        return made


@dataclass(frozen=True)
class SetKernel:
    label: str
    current: str | None  # None: not read yet (a new Linode)

    def describe(self) -> str:
        was = f" (was {self.current})" if self.current else ""
        return f"Set the kernel of {self.label} to {GRUB}{was}"


@dataclass(frozen=True)
class Boot:
    label: str

    def describe(self) -> str:
        return f"Boot {self.label}"


@dataclass(frozen=True)
class WaitReady:
    labels: tuple[str, ...]

    def describe(self) -> str:
        return (
            f"Wait until {_names(self.labels)} run, answer SSH with their pinned host key "
            "and report their StackScript done"
        )


@dataclass(frozen=True)
class NotReady:
    label: str
    reason: str

    def describe(self) -> str:
        return f"Leave {self.label} out of the swarm: {self.reason}"


@dataclass(frozen=True)
class SyncMembers:
    labels: tuple[str, ...]
    addresses: tuple[str, ...] | None  # None: planned before every node is made

    def describe(self) -> str:
        return f"Open the swarm ports to the cluster's addresses on {_names(self.labels)}"


@dataclass(frozen=True)
class SyncCloudFirewall:
    """The firewall's rules (when `rules` is set) and the Linodes behind it made what the
    plan wants. Planned before every node is made, it knows neither: `rules`, `devices` and
    `linode_ids` are None, and the round that would run it plans it again first.

    A Linode with legacy-config interfaces is behind it as a whole (`linode_ids`, the whole
    set); one with Linode interfaces by its public and VPC interfaces: those of the Linodes
    in `attach_interfaces` are put behind it, the interfaces in `detach_interfaces` (of
    Linodes that should not be behind it) are taken off."""

    label: str
    firewall_id: int | None  # None: made by this plan
    rules: FirewallRules | None  # None: the rules are right (or not known yet)
    devices: tuple[str, ...] | None  # the labels of the Linodes behind it, of both kinds
    linode_ids: tuple[int, ...] | None  # the ids of those behind it as a whole
    attach_interfaces: tuple[int, ...] = ()  # Linodes whose interfaces go behind it
    detach_interfaces: tuple[int, ...] = ()  # interfaces that leave it

    def describe(self) -> str:
        if self.devices is None:
            return f"Update Cloud Firewall {self.label}: rules for the cluster's addresses, devices"
        what = "rules and devices" if self.rules is not None else "devices"
        if self.attach_interfaces or self.detach_interfaces:
            what += " (Linode interfaces)"
        return f"Update Cloud Firewall {self.label}: {what}, behind it {_names(self.devices)}"


@dataclass(frozen=True)
class InitSwarm:
    label: str  # the swarm's first manager
    heartbeat: int  # the dispatcher's heartbeat, in seconds
    leave_first: bool = False  # it leaves a swarm of its own (or an ended join) first

    def describe(self) -> str:
        return f"Initialise the swarm on {self.label}"


@dataclass(frozen=True)
class SetHeartbeat:
    """Set the swarm's dispatcher heartbeat through the manager `via` (`was`: what the
    swarm has now)."""

    seconds: int
    was: int
    via: str

    def describe(self) -> str:
        return f"Set the swarm's heartbeat to {self.seconds} s (it is {self.was} s)"


@dataclass(frozen=True)
class JoinManager:
    """Join a node as a manager through the manager `via`: it leaves a swarm of its own
    first (`leave_first`), and one already in the swarm as a worker is promoted
    (`promote`, its node id) instead."""

    label: str
    via: str
    leave_first: bool = False
    promote: str | None = None

    def describe(self) -> str:
        return f"Join {self.label} as a manager"


@dataclass(frozen=True)
class JoinWorkers:
    """Join workers through the manager `via`; those in `leave_first` leave a swarm of
    their own first."""

    labels: tuple[str, ...]
    via: str
    leave_first: tuple[str, ...] = ()

    def describe(self) -> str:
        if len(self.labels) == 1:
            return f"Join {self.labels[0]} as a worker"
        return f"Join {_names(self.labels)} as workers"


@dataclass(frozen=True)
class RemoveStaleNode:
    node_id: str
    hostname: str
    via: str  # the manager that removes it

    def describe(self) -> str:
        return f"Remove the stale swarm entry {self.node_id[:12]} of {self.hostname}"


@dataclass(frozen=True)
class DrainNode:
    label: str
    node_id: str
    via: str

    def describe(self) -> str:
        return f"Drain {self.label} and wait for its tasks to move"


@dataclass(frozen=True)
class DemoteNode:
    label: str
    node_id: str
    via: str

    def describe(self) -> str:
        return f"Demote {self.label} from manager to worker"


@dataclass(frozen=True)
class LeaveSwarm:
    label: str

    def describe(self) -> str:
        return f"Make {self.label} leave the swarm"


@dataclass(frozen=True)
class RebuildInstance:
    label: str
    role: str
    region: str
    image: str
    bootstrap: str = "stackscript"  # or "cloud-init": the script as user data

    def describe(self) -> str:
        script = "the StackScript" if self.bootstrap == "stackscript" else "cloud-init user data"
        return f"Rebuild {self.label} from {self.image} and {script}, with a new pinned host key"


@dataclass(frozen=True)
class DeleteInstance:
    label: str
    linode_id: int

    def describe(self) -> str:
        return f"Delete the Linode {self.label}"


@dataclass(frozen=True)
class ClearRebuildMark:
    label: str

    def describe(self) -> str:
        return f"Finish the rebuild of {self.label}: it is back in the swarm"


@dataclass(frozen=True)
class LabelNode:
    label: str
    labels: tuple[tuple[str, str], ...]
    node_id: str | None  # None: it joins in this plan, and the join tells its id
    via: str

    def describe(self) -> str:
        text = ", ".join(f"{k}={v}" for k, v in self.labels)
        return f"Label {self.label}: {text}"


@dataclass(frozen=True)
class EnsureNetwork:
    name: str
    encrypted: bool
    subnet: str | None
    via: str

    def describe(self) -> str:
        kind = "encrypted overlay" if self.encrypted else "overlay"
        return f"Create the {kind} network {self.name}"


Step = (
    PublishStackScript
    | EnsureCloudFirewall
    | EnsureVpc
    | EnsurePlacementGroup
    | AssignPlacementGroup
    | CreateInstance
    | SetKernel
    | Boot
    | WaitReady
    | NotReady
    | SyncMembers
    | SyncCloudFirewall
    | InitSwarm
    | JoinManager
    | JoinWorkers
    | RemoveStaleNode
    | LabelNode
    | EnsureNetwork
    | SetHeartbeat
    | DrainNode
    | DemoteNode
    | LeaveSwarm
    | RebuildInstance
    | DeleteInstance
    | ClearRebuildMark
)


def _names(labels: tuple[str, ...]) -> str:
    if len(labels) <= 3:
        return ", ".join(labels)
    return f"{len(labels)} nodes ({', '.join(labels[:2])}, …)"


def publish_steps(
    scripts: Iterable[LocalScript], published: Iterable[PublishedScript]
) -> tuple[PublishStackScript, ...]:
    """The StackScripts to publish: those not published yet, and those whose published
    content hash (its rev note) or images differ from the rendered file's."""
    mine = {s.label: s for s in published}
    steps = []
    for script in scripts:
        current = mine.get(script.label)
        if current is None:
            steps.append(PublishStackScript(script.file, script.label, "create", None, script.rev))
        elif current.rev_note != script.rev or set(current.images) != set(script.images):
            steps.append(
                PublishStackScript(script.file, script.label, "update", current.id, script.rev)
            )
    return tuple(steps)


def step_data(step: Step) -> dict[str, Any]:
    """A step as `plan --json` prints it: its kind, its sentence and every field it carries
    for its runner (nested data as JSON objects and lists)."""
    return {"step": type(step).__name__, "description": step.describe(), "fields": asdict(step)}


def node_labels(spec: Spec, node: NodePlan) -> tuple[tuple[str, str], ...]:
    """The swarm node labels a node should carry."""
    return tuple(
        sorted(
            {
                "zone": node.region,
                "region": node.region,
                "role": node.role,
                "cluster": spec.cluster.name,
                **dict(node.labels),
            }.items()
        )
    )


def _check_strangers(spec: Spec, observed: Observed) -> None:
    wanted = {n.label for n in spec.nodes()}
    clash = sorted(i.label for i in observed.strangers if i.label in wanted)
    if clash:
        raise PlanError(
            f"Linodes {', '.join(clash)} exist without the tag {spec.tag}: they are not this "
            f"cluster's and swarmboot will not take them over",
            hint="rename them, or choose another cluster.name",
        )
    unproven = sorted(i.label for i in observed.unmarked if i.label in wanted)
    if unproven:
        raise PlanError(
            f"Linodes {', '.join(unproven)} carry the tag {spec.tag} but not the mark swarmboot "
            "makes for the Linodes it creates with this SSH identity: swarmboot will neither "
            "send them a join token nor open the swarm's ports to them",
            hint="if they are this cluster's (made before marks, or with another SSH key), "
            "`swarmboot adopt` on this spec marks them; otherwise rename or delete them",
        )
    taken = sorted(f.label for f in observed.foreign_firewalls)
    if taken:
        raise PlanError(
            f"Cloud Firewalls {', '.join(taken)} exist without the tag {spec.tag}: they are "
            f"not this cluster's and swarmboot will neither rewrite nor delete them",
            hint=f"rename them, tag them {spec.tag} if they are this cluster's, "
            "or choose another cluster.name",
        )
    problem = placement_problem(spec, observed) or vpc_problem(spec, observed)
    if problem is not None:
        raise PlanError(problem[0], hint=problem[1])


def _check_encryption(spec: Spec, observed: Observed) -> None:
    lacking = esp_lacking(spec, observed)
    if lacking:
        causes = sorted({observed.reports[label].esp_error or "" for label in lacking} - {""})
        blocked = any("modprobe" in cause for cause in causes)
        said = f" ({'; '.join(causes[:2])})" if causes else ""
        raise PlanError(
            f"the overlay network must be encrypted (the cluster spans regions), but "
            f"{', '.join(lacking)} report a kernel without IPsec ESP{said}: the encrypted "
            "traffic would be dropped silently",
            hint=(
                "that rule is a mitigation: lift it only once the kernel is fixed; meanwhile "
                if blocked
                else "boot them on a kernel with ESP, or "
            )
            + "opt out explicitly in the spec: network.encrypted = false (no encryption) or "
            "network.require_esp = false (the encrypted network anyway, its traffic lost on "
            "those nodes)",
        )


def _check_bootstrap(spec: Spec, observed: Observed) -> None:
    """cloud-init as the bootstrap needs Linode's Metadata service in every region of the
    spec and the cloud-init capability on its image (Linode refuses the user data without)."""
    if spec.cluster.bootstrap != "cloud-init":
        return
    lacking = []
    regions = sorted(observed.metadata_unsupported & set(spec.regions))
    if regions:
        lacking.append(f"no Metadata service in {', '.join(regions)}")
    if spec.cluster.image in observed.cloud_init_unsupported:
        lacking.append(f"no cloud-init capability for the image {spec.cluster.image}")
    if lacking:
        raise PlanError(
            f'cluster.bootstrap = "cloud-init", but Linode\'s catalogue has '
            f"{' and '.join(lacking)}: it would refuse the nodes' user data",
            hint='use the StackScript: cluster.bootstrap = "stackscript" (or --bootstrap '
            "stackscript), or regions and an image whose catalogue entries have Metadata "
            "and cloud-init",
        )


def swarm_via(observed: Observed, going: set[str] | frozenset[str] = frozenset()) -> str | None:
    """The manager swarm steps go through: the one the swarm was read from, unless it is
    going (rebuilt or pruned), else a reachable, ready manager that answers SSH."""
    swarm = observed.swarm
    if swarm is None:
        return None
    if swarm.manager not in going:
        return swarm.manager
    others = sorted(
        e.hostname
        for e in swarm.nodes
        if e.reachable_manager
        and e.state == "ready"
        and e.hostname not in going
        and e.hostname in observed.reports
    )
    return others[0] if others else swarm.manager


def rebuild_prep(observed: Observed, label: str, via: str | None = None) -> list[Step]:
    """What comes before a node's disk is replaced: drain it, demote it if it manages, and
    remove its swarm entries, so no stale or duplicate entry remains. The swarm's only
    manager keeps its entry: the swarm goes with it (a rebuild that was forced)."""
    swarm = observed.swarm
    if swarm is None:
        return []
    via = via or swarm_via(observed, {label}) or swarm.manager
    entries = [e for e in swarm.nodes if e.hostname == label]
    managers = [e for e in swarm.nodes if e.raft_member]
    if not has_quorum(swarm):
        return []  # no quorum: the swarm takes no change (a rebuild that was forced)
    steps: list[Step] = [
        DrainNode(label, e.id, via)
        for e in entries
        if e.state == "ready" and e.availability != "drain"
    ]
    if managers and all(e.hostname == label for e in managers):
        return steps
    steps += [DemoteNode(label, e.id, via) for e in entries if e.raft_member]
    steps += [RemoveStaleNode(e.id, label, via) for e in entries]
    return steps


def _prune(spec: Spec, observed: Observed, via: str | None) -> list[Step]:
    """Drain, demote, take out of the swarm and delete the Linodes the spec no longer has,
    newest first; refused if it would lose the swarm's quorum."""
    extra = surplus(spec, observed)
    problem = quorum_problem(observed.swarm, {i.label for i in extra})
    if problem:
        raise QuorumError(
            f"pruning would lose the swarm's quorum: {problem}",
            hint="bring the managers back first (`swarmboot repair`), or lower the manager "
            "count in smaller steps",
        )
    swarm = observed.swarm
    steps: list[Step] = []
    for inst in extra:
        entries = [e for e in swarm.nodes if e.hostname == inst.label] if swarm else []
        live = [e for e in entries if e.state == "ready"]
        if entries and via is not None:
            steps += [DrainNode(inst.label, e.id, via) for e in live if e.availability != "drain"]
            steps += [DemoteNode(inst.label, e.id, via) for e in entries if e.raft_member]
            if live and inst.status == "running":
                steps.append(LeaveSwarm(inst.label))
            steps += [RemoveStaleNode(e.id, inst.label, via) for e in entries]
        steps.append(DeleteInstance(inst.label, inst.id))
    return steps


def _concerns(step: Step) -> set[str]:
    """The node labels a step acts on."""
    found = set(getattr(step, "labels", ()) or ())
    for name in ("label", "hostname"):
        value = getattr(step, name, None)
        if isinstance(value, str):
            found.add(value)
    return found


def _cloud_firewalls(
    spec: Spec,
    observed: Observed,
    addresses: tuple[str, ...] | None,
    existing: dict[str, Instance],
) -> tuple[list[Step], list[Step]]:
    """(Cloud Firewalls to create before the Linodes, firewalls to bring up to date). The
    load balancers' one is made only for a cluster with load balancers (in the spec, or
    kept from it); once made, it is kept up to date."""
    create: list[Step] = []
    sync: list[Step] = []
    devices = firewall_devices(spec, existing)
    has_lb = any(n.role == "lb" for n in spec.nodes())
    for label, lb in cloud_firewall_labels(spec).items():
        current = observed.firewall(label)
        if current is None and lb and not has_lb and not devices[label]:
            continue
        if current is None:
            create.append(EnsureCloudFirewall(label, cloud_rules(spec, (), lb=lb)))
        if current is None or addresses is None:
            sync.append(SyncCloudFirewall(label, None, None, None, None))
            continue
        wanted = cloud_rules(spec, addresses, lb=lb)
        behind = devices[label]
        whole = tuple(sorted(existing[n].id for n in behind if not existing[n].linode_interfaces))
        attach, detach = interface_firewall_changes(
            current, [existing[n] for n in behind if existing[n].linode_interfaces]
        )
        rules_differ = not wanted.matches(current)
        if rules_differ or tuple(sorted(current.linode_ids)) != whole or attach or detach:
            sync.append(
                SyncCloudFirewall(
                    label,
                    current.id,
                    wanted if rules_differ else None,
                    behind,
                    whole,
                    attach,
                    detach,
                )
            )
    return create, sync


def plan(
    spec: Spec, observed: Observed, script: LocalScript, *, prune: bool = False
) -> tuple[Step, ...]:
    """The steps that take the observed world to the spec. With `prune`, the Linodes the
    spec no longer has are taken out of the swarm and deleted; without, they are kept."""
    _check_strangers(spec, observed)
    _check_encryption(spec, observed)
    _check_bootstrap(spec, observed)
    nodes = spec.nodes()
    existing: dict[str, Instance] = {i.label: i for i in observed.instances}
    steps: list[Step] = []

    # With cloud-init the script goes to each node in its user data: nothing is published.
    if spec.cluster.bootstrap == "stackscript":
        steps += publish_steps((script,), observed.scripts)

    addresses = cluster_addresses(nodes, existing)
    firewalls_to_create, firewalls_to_sync = _cloud_firewalls(spec, observed, addresses, existing)
    steps += firewalls_to_create
    steps += vpc_steps(spec, observed)
    groups_to_make, managers_to_place = placement_steps(spec, observed)
    steps += groups_to_make
    steps += managers_to_place

    # Linodes marked for a rebuild whose new disk is not there yet: out of the swarm, then
    # rebuilt. Until then the rest of the plan leaves them alone.
    redo = {
        n.label
        for n in nodes
        if n.label in existing
        and existing[n.label].rebuild_since is not None
        and n.label not in observed.rebuilt
    }
    going = redo | ({i.label for i in surplus(spec, observed)} if prune else set())
    via = swarm_via(observed, going)
    for node in nodes:
        if node.label in redo:
            steps += rebuild_prep(observed, node.label, via)
            steps.append(
                RebuildInstance(
                    node.label, node.role, node.region, spec.cluster.image, spec.cluster.bootstrap
                )
            )
    rest = tuple(n for n in nodes if n.label not in redo)

    # Linodes: made unbooted behind their Cloud Firewall (with Linode interfaces, each
    # interface behind it, one of them in the region's VPC), the kernel set to GRUB 2, booted.
    firewall_of = {lb: label for label, lb in cloud_firewall_labels(spec).items()}
    group_of = wanted_groups(spec, observed.placement_unsupported)
    generation = new_generation(spec, observed.account_interfaces)
    vpc_of = wanted_vpcs(spec, generation)
    steps += [
        CreateInstance(
            n.label,
            n.region,
            n.type,
            n.role,
            firewall_of[n.role == "lb"],
            group_of.get(n.region) if n.role == "manager" else None,
            generation,
            vpc_of.get(n.region),
            spec.cluster.bootstrap,
        )
        for n in rest
        if n.label not in existing
    ]
    failed = {
        n.label: reason
        for n in rest
        if (reason := why_failed(spec, observed, n.label) or silent_and_down(observed, n.label))
    }
    for node in rest:
        inst = existing.get(node.label)
        if is_ready(spec, observed, node.label) or node.label in failed:
            continue
        if inst is None or inst.config is None or inst.config[1] != GRUB:
            steps.append(SetKernel(node.label, inst.config[1] if inst and inst.config else None))
    steps += [
        Boot(n.label)
        for n in rest
        if n.label not in failed
        and (
            n.label not in existing
            or existing[n.label].status in ("offline", "provisioning", "rebuilding")
        )
    ]
    waiting = tuple(
        n.label for n in rest if not is_ready(spec, observed, n.label) and n.label not in failed
    )
    if waiting:
        steps.append(WaitReady(waiting))
    steps += [NotReady(label, reason) for label, reason in failed.items()]

    # Swarm traffic is let through before anyone joins.
    stale_sets = tuple(
        n.label
        for n in rest
        if n.label not in failed
        and (addresses is None or observed.members.get(n.label) != addresses)
    )
    if stale_sets:
        steps.append(SyncMembers(stale_sets, addresses))
    steps += firewalls_to_sync

    swarm = observed.swarm
    ready = {} if swarm is None else {n.hostname: n for n in swarm.nodes if n.state == "ready"}
    managers = [n for n in rest if n.role == "manager" and n.label not in failed]
    if managers:
        steps += _swarm_steps(spec, observed, rest, managers, failed, ready, via)
    if prune:
        steps += _prune(spec, observed, via)
    busy = set().union(*(_concerns(s) for s in steps)) if steps else set()
    steps += [
        ClearRebuildMark(n.label)
        for n in rest
        if n.label in existing
        and existing[n.label].rebuild_since is not None
        and n.label not in busy
        and n.label in ready
    ]
    return tuple(steps)


def _joins(
    observed: Observed,
    nodes: tuple[NodePlan, ...],
    managers: list[NodePlan],
    failed: dict[str, str],
    ready: dict[str, SwarmNode],
    via: str,
    heartbeat: int,
) -> tuple[list[Step], set[str]]:
    """(The steps that make the nodes members with their roles, the nodes that join.)

    A node's own view decides how: one in a swarm of its own (or whose join ended in error)
    leaves it first; one that is a member whose entry is not ready yet is left out, named;
    a manager that is in the swarm as a worker is promoted."""
    swarm = observed.swarm
    known = {e.id for e in swarm.nodes} if swarm else set()
    steps: list[Step] = []
    joining: set[str] = set()

    def must_leave(label: str) -> bool | None:
        """Whether it leaves first; None: it is a member already, not ready yet."""
        local = observed.local.get(label)
        if local is None or local.state in ("inactive", "pending"):
            return False
        if local.state == "active" and local.node_id in known:
            return None
        return True  # active in a swarm this one does not know, or its join ended in error

    def left_out(label: str) -> None:
        """A member by its own view whose entry is not ready: named, not joined again."""
        entry = swarm.node(label) if swarm else None
        state = entry.state if entry else "missing"
        reason = (
            f"it is in the swarm, but its entry is {state}, not ready; `swarmboot up` looks again"
        )
        steps.append(NotReady(label, reason))
        failed[label] = reason

    if swarm is None:
        steps.append(InitSwarm(via, heartbeat, leave_first=bool(must_leave(via))))
        joining.add(via)
    for node in managers:
        if node.label in joining:
            continue
        entry = ready.get(node.label)
        if entry is not None and entry.role == "manager":
            continue
        if entry is not None:
            steps.append(JoinManager(node.label, via, promote=entry.id))
            joining.add(node.label)
            continue
        leave = must_leave(node.label)
        if leave is None:
            left_out(node.label)
            continue
        steps.append(JoinManager(node.label, via, leave_first=leave))
        joining.add(node.label)
    workers: list[str] = []
    leaving: list[str] = []
    for node in nodes:
        if node.role == "manager" or node.label in ready or node.label in failed:
            continue
        leave = must_leave(node.label)
        if leave is None:
            left_out(node.label)
            continue
        workers.append(node.label)
        if leave:
            leaving.append(node.label)
    if workers:
        steps.append(JoinWorkers(tuple(workers), via, tuple(leaving)))
        joining.update(workers)
    return steps, joining


def _swarm_steps(
    spec: Spec,
    observed: Observed,
    nodes: tuple[NodePlan, ...],
    managers: list[NodePlan],
    failed: dict[str, str],
    ready: dict[str, SwarmNode],
    via: str | None,
) -> list[Step]:
    swarm = observed.swarm
    failed = dict(failed)  # and those found members that are not ready
    if swarm is None:
        answering = [
            n.label
            for n in managers
            if (local := observed.local.get(n.label)) and local.state == "active" and local.manager
        ]
        if answering:
            raise SwarmbootError(
                f"{', '.join(answering)} manage a swarm whose state cannot be read (no leader: "
                "its raft quorum may be lost)",
                hint="bring the lost managers back and rerun `swarmboot up`, or `swarmboot "
                "recover SPEC` makes a new swarm from the manager whose raft log goes furthest",
            )
        via = managers[0].label
    assert via is not None
    steps, joining = _joins(observed, nodes, managers, failed, ready, via, spec.cluster.heartbeat)
    if swarm is not None:
        wanted = {n.label for n in nodes}
        for entry in swarm.nodes:
            twin = ready.get(entry.hostname)
            if (
                entry.state != "ready"
                and entry.hostname in wanted
                and (entry.hostname in joining or (twin and twin.id != entry.id))
            ):
                steps.append(RemoveStaleNode(entry.id, entry.hostname, via))

    for node in nodes:
        if node.label in failed:
            continue
        want = node_labels(spec, node)
        entry = ready.get(node.label)
        current = dict(entry.labels) if entry else {}
        if node.label in joining or any(current.get(k) != v for k, v in want):
            node_id = entry.id if entry is not None else None  # None: it joins first
            steps.append(LabelNode(node.label, want, node_id, via))

    if swarm is not None and swarm.heartbeat not in (None, spec.cluster.heartbeat):
        steps.append(SetHeartbeat(spec.cluster.heartbeat, swarm.heartbeat, via))
    networks = dict(swarm.networks) if swarm else {}
    if spec.network_name not in networks:
        steps.append(EnsureNetwork(spec.network_name, spec.encrypted, spec.network.subnet, via))
    elif networks[spec.network_name] != spec.encrypted:
        state = "encrypted" if networks[spec.network_name] else "not encrypted"
        raise PlanError(
            f"the overlay network {spec.network_name} exists and is {state}, while the spec "
            f"wants it {'encrypted' if spec.encrypted else 'not encrypted'}: Docker cannot "
            "change that in place",
            hint="remove the network (docker network rm) after moving its services, or name "
            "another one in network.name",
        )
    return steps
