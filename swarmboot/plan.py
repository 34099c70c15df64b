"""The planning core: spec + observed state -> the ordered steps that converge them. Pure.

Steps are frozen data that describe themselves; `swarmboot plan` prints them and `swarmboot up`
carries them out. A step names nodes by label: addresses that do not exist yet (a new node's
IP) are resolved when the step runs. Running the plan of a converged cluster gives no steps.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from swarmboot import facts
from swarmboot.errors import ExitCode, SwarmbootError
from swarmboot.firewall import cloud_firewall_labels, cloud_rules, rules_key
from swarmboot.nodestatus import NodeStatus
from swarmboot.spec import NodePlan, Spec
from swarmboot.state import Instance, Observed

__all__ = [
    "Boot",
    "CreateInstance",
    "EnsureCloudFirewall",
    "EnsureNetwork",
    "InitSwarm",
    "JoinManager",
    "JoinWorkers",
    "LabelNode",
    "LocalScript",
    "NotReady",
    "PlanError",
    "PublishStackScript",
    "RemoveStaleNode",
    "SetKernel",
    "Step",
    "SyncCloudFirewall",
    "SyncMembers",
    "WaitReady",
    "cluster_addresses",
    "node_labels",
    "plan",
    "script_label",
]

GRUB = facts.GRUB_KERNEL


class PlanError(SwarmbootError):
    """The spec and the world cannot be converged without a decision from the user."""

    exit_code = ExitCode.BAD_SPEC


def script_label(file: str) -> str:
    """The label a StackScript file is published under."""
    return "swarmboot-" + file.removesuffix(".sh")


@dataclass(frozen=True)
class LocalScript:
    """A rendered StackScript as it would be published."""

    file: str
    text: str
    images: tuple[str, ...]
    description: str

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

    def describe(self) -> str:
        verb = "Publish" if self.action == "create" else "Update"
        return f"{verb} StackScript {self.label} from stackscripts/{self.file}"


@dataclass(frozen=True)
class EnsureCloudFirewall:
    label: str

    def describe(self) -> str:
        return f"Create Cloud Firewall {self.label}"


@dataclass(frozen=True)
class CreateInstance:
    label: str
    region: str
    type: str
    role: str

    def describe(self) -> str:
        return f"Create {self.label} ({self.role}, {self.region}, {self.type})"


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

    def describe(self) -> str:
        return f"Open the swarm ports to the cluster's addresses on {_names(self.labels)}"


@dataclass(frozen=True)
class SyncCloudFirewall:
    label: str

    def describe(self) -> str:
        return f"Update Cloud Firewall {self.label}: rules for the cluster's addresses, devices"


@dataclass(frozen=True)
class InitSwarm:
    label: str

    def describe(self) -> str:
        return f"Initialise the swarm on {self.label}"


@dataclass(frozen=True)
class JoinManager:
    label: str

    def describe(self) -> str:
        return f"Join {self.label} as a manager"


@dataclass(frozen=True)
class JoinWorkers:
    labels: tuple[str, ...]

    def describe(self) -> str:
        if len(self.labels) == 1:
            return f"Join {self.labels[0]} as a worker"
        return f"Join {_names(self.labels)} as workers"


@dataclass(frozen=True)
class RemoveStaleNode:
    node_id: str
    hostname: str

    def describe(self) -> str:
        return f"Remove the stale swarm entry {self.node_id[:12]} of {self.hostname}"


@dataclass(frozen=True)
class LabelNode:
    label: str
    labels: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        text = ", ".join(f"{k}={v}" for k, v in self.labels)
        return f"Label {self.label}: {text}"


@dataclass(frozen=True)
class EnsureNetwork:
    name: str
    encrypted: bool
    subnet: str | None = None

    def describe(self) -> str:
        kind = "encrypted overlay" if self.encrypted else "overlay"
        return f"Create the {kind} network {self.name}"


Step = (
    PublishStackScript
    | EnsureCloudFirewall
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
)


def _names(labels: tuple[str, ...]) -> str:
    if len(labels) <= 3:
        return ", ".join(labels)
    return f"{len(labels)} nodes ({', '.join(labels[:2])}, …)"


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


def _problems(spec: Spec, report: NodeStatus) -> tuple[str, ...]:
    return report.problems(
        require_esp=False, require_distro_kernel=spec.cluster.require_grub_kernel
    )


def _ready(spec: Spec, observed: Observed, label: str) -> bool:
    report = observed.reports.get(label)
    return report is not None and _problems(spec, report) == ()


def _failed(spec: Spec, observed: Observed, label: str) -> str | None:
    """Why a node that has finished its StackScript cannot join, if it cannot."""
    if label in observed.failures:
        return observed.failures[label]
    report = observed.reports.get(label)
    if report is None or report.phase == "running":
        return None
    problems = _problems(spec, report)
    return "; ".join(problems) if problems else None


def _check_strangers(spec: Spec, observed: Observed) -> None:
    wanted = {n.label for n in spec.nodes()}
    clash = sorted(i.label for i in observed.strangers if i.label in wanted)
    if clash:
        raise PlanError(
            f"Linodes {', '.join(clash)} exist without the tag {spec.tag}: they are not this "
            f"cluster's and swarmboot will not take them over",
            hint="rename them, or choose another cluster.name",
        )


def _check_encryption(spec: Spec, observed: Observed) -> None:
    if not spec.encrypted or not spec.network.require_esp:
        return
    lacking = sorted(
        label
        for label, report in observed.reports.items()
        if report.phase == "done" and report.esp_ok is False
    )
    if lacking:
        raise PlanError(
            f"the overlay network must be encrypted (the cluster spans regions), but "
            f"{', '.join(lacking)} report a kernel without IPsec ESP: the encrypted traffic "
            "would be dropped silently",
            hint="boot them on a kernel with ESP, or opt out explicitly in the spec: "
            "network.encrypted = false (no encryption) or network.require_esp = false (the "
            "encrypted network anyway, its traffic lost on those nodes)",
        )


def cluster_addresses(
    nodes: tuple[NodePlan, ...], existing: dict[str, Instance]
) -> tuple[str, ...] | None:
    """Every member address (public and private), or None while a node is still to be made."""
    found: set[str] = set()
    for node in nodes:
        inst = existing.get(node.label)
        if inst is None:
            return None
        found.update(a for a in (inst.ipv4_public, inst.ipv4_private) if a)
    return tuple(sorted(found))


def _cloud_firewalls(
    spec: Spec, observed: Observed, nodes: tuple[NodePlan, ...], existing: dict[str, Instance]
) -> tuple[list[Step], list[Step]]:
    """(Cloud Firewalls to create before the Linodes, firewalls to bring up to date)."""
    create: list[Step] = []
    sync: list[Step] = []
    addresses = cluster_addresses(nodes, existing)
    for label, lb in cloud_firewall_labels(spec).items():
        current = observed.firewall(label)
        if current is None:
            create.append(EnsureCloudFirewall(label))
            sync.append(SyncCloudFirewall(label))
            continue
        if addresses is None:
            sync.append(SyncCloudFirewall(label))
            continue
        wanted = cloud_rules(spec, addresses, lb=lb)
        ids = tuple(sorted(existing[n.label].id for n in nodes if (n.role == "lb") == lb))
        if (
            current.inbound != rules_key(wanted["inbound"])
            or current.inbound_policy != wanted["inbound_policy"]
            or tuple(sorted(current.linode_ids)) != ids
        ):
            sync.append(SyncCloudFirewall(label))
    return create, sync


def plan(spec: Spec, observed: Observed, script: LocalScript) -> tuple[Step, ...]:
    """The steps that take the observed world to the spec."""
    _check_strangers(spec, observed)
    _check_encryption(spec, observed)
    nodes = spec.nodes()
    existing: dict[str, Instance] = {i.label: i for i in observed.instances}
    steps: list[Step] = []

    published = next((s for s in observed.scripts if s.label == script.label), None)
    if published is None:
        steps.append(PublishStackScript(script.file, script.label, "create"))
    elif published.rev_note != script.rev or set(published.images) != set(script.images):
        steps.append(PublishStackScript(script.file, script.label, "update"))

    firewalls_to_create, firewalls_to_sync = _cloud_firewalls(spec, observed, nodes, existing)
    steps += firewalls_to_create

    # Linodes: made unbooted, the kernel set to GRUB 2, then booted.
    steps += [
        CreateInstance(n.label, n.region, n.type, n.role) for n in nodes if n.label not in existing
    ]
    failed = {n.label: reason for n in nodes if (reason := _failed(spec, observed, n.label))}
    for node in nodes:
        inst = existing.get(node.label)
        if _ready(spec, observed, node.label) or node.label in failed:
            continue
        if inst is None or inst.config is None or inst.config[1] != GRUB:
            steps.append(SetKernel(node.label, inst.config[1] if inst and inst.config else None))
    steps += [
        Boot(n.label)
        for n in nodes
        if n.label not in failed
        and (n.label not in existing or existing[n.label].status in ("offline", "provisioning"))
    ]
    waiting = tuple(
        n.label for n in nodes if not _ready(spec, observed, n.label) and n.label not in failed
    )
    if waiting:
        steps.append(WaitReady(waiting))
    steps += [NotReady(label, reason) for label, reason in failed.items()]

    # Swarm traffic is let through before anyone joins.
    addresses = cluster_addresses(nodes, existing)
    stale_sets = tuple(
        n.label
        for n in nodes
        if n.label not in failed
        and (addresses is None or observed.members.get(n.label) != addresses)
    )
    if stale_sets:
        steps.append(SyncMembers(stale_sets))
    steps += firewalls_to_sync

    swarm = observed.swarm
    ready = {} if swarm is None else {n.hostname: n for n in swarm.nodes if n.state == "ready"}
    managers = [n for n in nodes if n.role == "manager" and n.label not in failed]
    if not managers:
        return tuple(steps)
    joining: set[str] = set()
    if swarm is None:
        steps.append(InitSwarm(managers[0].label))
        joining.add(managers[0].label)
    for node in managers:
        if node.label in joining:
            continue
        if node.label not in ready or ready[node.label].role != "manager":
            steps.append(JoinManager(node.label))
            joining.add(node.label)
    workers = tuple(
        n.label
        for n in nodes
        if n.role != "manager" and n.label not in ready and n.label not in failed
    )
    if workers:
        steps.append(JoinWorkers(workers))
        joining.update(workers)
    if swarm is not None:
        wanted = {n.label for n in nodes}
        for entry in swarm.nodes:
            twin = ready.get(entry.hostname)
            if (
                entry.state != "ready"
                and entry.hostname in wanted
                and (entry.hostname in joining or (twin and twin.id != entry.id))
            ):
                steps.append(RemoveStaleNode(entry.id, entry.hostname))

    for node in nodes:
        if node.label in failed:
            continue
        want = node_labels(spec, node)
        current = dict(ready[node.label].labels) if node.label in ready else {}
        if node.label in joining or any(current.get(k) != v for k, v in want):
            steps.append(LabelNode(node.label, want))

    networks = dict(swarm.networks) if swarm else {}
    if spec.network_name not in networks:
        steps.append(EnsureNetwork(spec.network_name, spec.encrypted, spec.network.subnet))
    elif networks[spec.network_name] != spec.encrypted:
        state = "encrypted" if networks[spec.network_name] else "not encrypted"
        raise PlanError(
            f"the overlay network {spec.network_name} exists and is {state}, while the spec "
            f"wants it {'encrypted' if spec.encrypted else 'not encrypted'}: Docker cannot "
            "change that in place",
            hint="remove the network (docker network rm) after moving its services, or name "
            "another one in network.name",
        )
    return tuple(steps)
