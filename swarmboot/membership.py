"""Who is in the cluster: its Linodes, their roles, their addresses and which Cloud Firewall
each sits behind. One place for these rules, which plan, apply, status and rebuild all use.

The cluster's Linodes are the ones carrying its tag under a node label and the mark swarmboot
made for them (`swarmboot.marks`): a tag, a label and a pin are anyone's on the account to
give. Those
the spec no longer has (a lowered count, not pruned) stay members in every sense until they
are pruned: their addresses are in every member set and they stay behind their firewall.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from swarmboot.firewall import cloud_firewall_labels
from swarmboot.interfaces import strangers_in_vpcs
from swarmboot.marks import MemberMarks
from swarmboot.placement import foreign_groups
from swarmboot.spec import CLUSTER_TAG, NodePlan, Spec
from swarmboot.state import CloudFirewall, Instance, Observed

__all__ = [
    "cluster_addresses",
    "cluster_firewalls",
    "cluster_linodes",
    "firewall_devices",
    "foreign_firewalls",
    "listing",
    "node_label",
    "node_roles",
    "not_members",
    "other_clusters",
    "outsiders",
    "strangers",
    "surplus",
    "unmarked",
]


def listing(spec: Spec) -> tuple[str, str]:
    """What to list the Linodes by (`CloudApi.instances`): the cluster's tag, and the start
    of its labels (to find Linodes that took a label the cluster wants)."""
    return spec.tag, f"{spec.cluster.name}-"


def node_label(spec: Spec) -> re.Pattern[str]:
    """The labels swarmboot gives the cluster's Linodes: `<cluster>-<region>-<role>-<n>`."""
    return re.compile(
        rf"{re.escape(spec.cluster.name)}-[a-z]{{2,}}(-[a-z0-9]+){{1,3}}-(manager|worker|lb)"
        r"-[1-9][0-9]{0,3}"
    )


def _marked(spec: Spec, inst: Instance, marks: MemberMarks) -> bool:
    return marks.valid(spec.cluster.name, inst.label, inst.host_key_fingerprint, inst.tags)


def cluster_linodes(
    spec: Spec, found: Iterable[Instance], marks: MemberMarks
) -> tuple[Instance, ...]:
    """Of a listing, the cluster's own Linodes: those carrying its tag under a node label and
    the mark swarmboot made for them. (A tag, a label and a pin are anyone's to give.)"""
    pattern = node_label(spec)
    return tuple(
        i
        for i in found
        if spec.tag in i.tags and pattern.fullmatch(i.label) and _marked(spec, i, marks)
    )


def unmarked(spec: Spec, found: Iterable[Instance], marks: MemberMarks) -> tuple[Instance, ...]:
    """Of a listing, the Linodes with the cluster's tag under a node label but without a mark
    this identity made: made by someone else, by another SSH identity, or before swarmboot
    marked its Linodes. Not members until `swarmboot adopt` marks them."""
    pattern = node_label(spec)
    return tuple(
        i
        for i in found
        if spec.tag in i.tags and pattern.fullmatch(i.label) and not _marked(spec, i, marks)
    )


def outsiders(spec: Spec, found: Iterable[Instance]) -> tuple[Instance, ...]:
    """Of a listing, the Linodes carrying the cluster's tag under a label swarmboot never
    gives: not members (no swarm port is opened to them, nothing deletes them)."""
    pattern = node_label(spec)
    return tuple(i for i in found if spec.tag in i.tags and not pattern.fullmatch(i.label))


def strangers(spec: Spec, found: Iterable[Instance]) -> tuple[Instance, ...]:
    """Of a listing, the Linodes without the cluster's tag that hold a label it wants."""
    wanted = {n.label for n in spec.nodes()}
    return tuple(i for i in found if spec.tag not in i.tags and i.label in wanted)


def cluster_firewalls(spec: Spec, found: Iterable[CloudFirewall]) -> tuple[CloudFirewall, ...]:
    """Of the Cloud Firewalls holding the cluster's labels, its own: those carrying its tag."""
    return tuple(f for f in found if spec.tag in f.tags)


def foreign_firewalls(spec: Spec, found: Iterable[CloudFirewall]) -> tuple[CloudFirewall, ...]:
    """Of the Cloud Firewalls holding the cluster's labels, those without its tag: another's,
    never rewritten or deleted (a label alone is anyone's to take)."""
    return tuple(f for f in found if spec.tag not in f.tags)


def other_clusters(spec: Spec, found: Iterable[Instance]) -> dict[str, tuple[str, ...]]:
    """Of every Linode on the account, those of other swarmboot clusters, by cluster name."""
    others: dict[str, list[str]] = {}
    for inst in found:
        for tag in inst.tags:
            if tag.startswith(CLUSTER_TAG) and tag != spec.tag:
                others.setdefault(tag.removeprefix(CLUSTER_TAG), []).append(inst.label)
    return {name: tuple(sorted(labels)) for name, labels in sorted(others.items())}


def not_members(spec: Spec, observed: Observed) -> tuple[str, ...]:
    """What holds the cluster's labels or tag without being its own, one line each, for
    `status`, `up` and `down` to name: another's, never rewritten, joined or deleted."""
    lines = [
        f"{kind} {label} (without the tag {spec.tag}: not this cluster's)"
        for kind, label in sorted(
            [("Cloud Firewall", f.label) for f in observed.foreign_firewalls]
            + [("Linode", i.label) for i in observed.strangers]
        )
    ]
    lines += [
        f"placement group {g.label} ({why}: not this cluster's)"
        for g, why in foreign_groups(spec, observed)
    ]
    lines += [f"VPC {v.label} ({why}: not this cluster's)" for v, why in observed.foreign_vpcs]
    lines += [
        f"VPC {v.label} holds interfaces of Linodes that are not members "
        f"({', '.join(map(str, ids))}): it is the cluster's, but `down` keeps it while they "
        "are in it"
        for v, ids in strangers_in_vpcs(observed)
    ]
    lines += [
        f"Linode {i.label} (it has the tag {spec.tag}, but not a label swarmboot gives a node: "
        "not a member)"
        for i in sorted(observed.outsiders, key=lambda i: i.label)
    ]
    lines += [
        f"Linode {i.label} (it has the tag {spec.tag}, but not the mark swarmboot made for "
        "its Linodes with this SSH identity: not a member; `swarmboot adopt` if it is this "
        "cluster's)"
        for i in sorted(observed.unmarked, key=lambda i: i.label)
    ]
    return tuple(lines)


def node_roles(spec: Spec, instances: Iterable[Instance]) -> dict[str, str]:
    """Each Linode's role: the spec's, or for one the spec no longer has, the one in the
    label swarmboot gave it (`<cluster>-<region>-<role>-<n>`)."""
    roles = {n.label: n.role for n in spec.nodes()}
    out = {}
    for inst in instances:
        parts = inst.label.rsplit("-", 2)
        out[inst.label] = roles.get(inst.label) or (parts[1] if len(parts) == 3 else "worker")
    return out


def surplus(spec: Spec, observed: Observed) -> tuple[Instance, ...]:
    """The cluster's Linodes the spec no longer has, newest first."""
    wanted = {n.label for n in spec.nodes()}
    return tuple(
        sorted((i for i in observed.instances if i.label not in wanted), key=lambda i: -i.id)
    )


def cluster_addresses(
    nodes: tuple[NodePlan, ...], existing: Mapping[str, Instance]
) -> tuple[str, ...] | None:
    """Every member address (public, private and VPC) of the cluster's Linodes, those the spec no
    longer has among them until they are pruned; None while a node is still to be made."""
    if any(node.label not in existing for node in nodes):
        return None
    found: set[str] = set()
    for inst in existing.values():
        found.update(a for a in (inst.ipv4_public, inst.ipv4_private, inst.ipv4_vpc) if a)
    return tuple(sorted(found))


def firewall_devices(spec: Spec, existing: Mapping[str, Instance]) -> dict[str, tuple[str, ...]]:
    """The labels of the Linodes behind each Cloud Firewall: the `lb` nodes behind the load
    balancers' one, every other Linode of the cluster (kept ones too) behind the nodes' one."""
    roles = node_roles(spec, existing.values())
    return {
        label: tuple(sorted(name for name in existing if (roles[name] == "lb") == lb))
        for label, lb in cloud_firewall_labels(spec).items()
    }
