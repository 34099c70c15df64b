"""The managers' placement groups: where a region has two or more managers, they go into a
Linode placement group with anti-affinity, so that one host's failure takes at most one of
them. Pure: the planner, `down`, `status` and `up` use these rules.

A group is labelled `<cluster>-<region>-managers`, its type is `anti_affinity:local` and its
policy the spec's `cluster.manager_placement` (`strict`: Linode refuses a Linode that would
share a host with a member; `flexible`: it takes it and reports the group non-compliant until
it has moved it). Placement groups have no tags in the API: a group is the cluster's by its
label and by its members, all of them the cluster's Linodes; one holding anything else (or in
another region, or of another type) is another's, never used or deleted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from swarmboot.spec import Spec
from swarmboot.state import Observed, PlacementGroup

__all__ = [
    "CAPABILITY",
    "PLACEMENT_TYPE",
    "AssignPlacementGroup",
    "EnsurePlacementGroup",
    "cluster_groups",
    "foreign_groups",
    "group_label",
    "group_labels",
    "is_group_label",
    "noncompliance",
    "placement_problem",
    "placement_steps",
    "wanted_groups",
]

PLACEMENT_TYPE = "anti_affinity:local"
# The region capability placement groups need, as the API's regions spell it.
CAPABILITY = "Placement Group"
# Linode's rule for a placement group's label: a letter or digit at each end; letters,
# digits, -, _ and . between.
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")


def group_label(spec: Spec, region: str) -> str:
    """The label of the managers' group in a region. A cluster name (a letter first, a
    letter or digit last) and a region id (letters, digits and hyphens) always make a valid
    one: see `is_group_label`."""
    return f"{spec.cluster.name}-{region}-managers"


def is_group_label(label: str) -> bool:
    """Whether Linode takes `label` as a placement group's label."""
    return bool(_LABEL.fullmatch(label))


def group_labels(spec: Spec, regions: Iterable[str]) -> tuple[str, ...]:
    """The group labels to list: the spec's regions' and those of `regions` (where the
    cluster's Linodes are, a region the spec may no longer have)."""
    return tuple(sorted({group_label(spec, r) for r in (*spec.regions, *regions)}))


def wanted_groups(spec: Spec, unsupported: Iterable[str] = ()) -> dict[str, str]:
    """The groups the spec asks for, {region: label}: each region with two or more managers,
    unless `manager_placement` is "none" or the region has no placement groups."""
    if spec.cluster.manager_placement == "none":
        return {}
    skip = set(unsupported)
    return {
        region: group_label(spec, region)
        for region, count in spec.managers_by_region().items()
        if count >= 2 and region not in skip
    }


def _region_of(spec: Spec, label: str) -> str:
    return label.removeprefix(f"{spec.cluster.name}-").removesuffix("-managers")


def _why_foreign(spec: Spec, observed: Observed, group: PlacementGroup) -> str | None:
    mine = {i.id for i in observed.instances}
    if any(linode_id not in mine for linode_id in group.linode_ids):
        return "it holds Linodes that are not the cluster's members"
    if group.region != _region_of(spec, group.label):
        return f"it is in {group.region}, not {_region_of(spec, group.label)}"
    if group.type != PLACEMENT_TYPE:
        return f"its type is {group.type}"
    return None


def foreign_groups(spec: Spec, observed: Observed) -> tuple[tuple[PlacementGroup, str], ...]:
    """The groups holding the cluster's group labels that are not its own, each with why."""
    return tuple(
        (g, why)
        for g in sorted(observed.placement_groups, key=lambda g: g.label)
        if (why := _why_foreign(spec, observed, g)) is not None
    )


def cluster_groups(spec: Spec, observed: Observed) -> tuple[PlacementGroup, ...]:
    """The cluster's own groups: every member one of its Linodes, in the region and of the
    type its label says."""
    return tuple(
        g
        for g in sorted(observed.placement_groups, key=lambda g: g.label)
        if _why_foreign(spec, observed, g) is None
    )


def noncompliance(spec: Spec, observed: Observed) -> tuple[str, ...]:
    """One line for each of the cluster's groups that is not compliant, naming the members
    that share a host."""
    names = {i.id: i.label for i in observed.instances}
    lines = []
    for group in cluster_groups(spec, observed):
        if group.compliant:
            continue
        shared = sorted(
            names.get(m.linode_id, str(m.linode_id)) for m in group.members if not m.compliant
        )
        lines.append(
            f"placement group {group.label} is not compliant: {', '.join(shared)} share a "
            "host, so one host failure can take them together (Linode moves them apart when "
            "it has room)"
        )
    return tuple(lines)


def placement_problem(spec: Spec, observed: Observed) -> tuple[str, str] | None:
    """What keeps the plan from using the groups it wants, as (problem, fix): one that is
    another's, one of another policy (Linode cannot change it), or a manager in another
    group (a Linode is in one at most). None: nothing."""
    wanted = wanted_groups(spec, observed.placement_unsupported)
    labels = set(wanted.values())
    taken = [(g, why) for g, why in foreign_groups(spec, observed) if g.label in labels]
    if taken:
        return (
            f"placement groups {', '.join(f'{g.label} ({why})' for g, why in taken)} carry "
            "this cluster's labels but are not its own: swarmboot will neither put its "
            "managers in them nor delete them",
            'rename them, choose another cluster.name, or set cluster.manager_placement = "none"',
        )
    policy = spec.cluster.manager_placement
    for label in sorted(labels):
        group = observed.placement_group(label)
        if group is not None and group.policy != policy:
            return (
                f"the placement group {label} exists with the policy {group.policy}, while "
                f"the spec wants {policy}: Linode cannot change a group's policy",
                f'set cluster.manager_placement = "{group.policy}", or delete the group '
                "(once its Linodes are unassigned) and `swarmboot up` makes it anew",
            )
    ids = {label: g.id for label in labels if (g := observed.placement_group(label))}
    elsewhere = sorted(
        inst.label
        for node in spec.nodes()
        if node.role == "manager"
        and node.region in wanted
        and (inst := observed.instance(node.label)) is not None
        and inst.placement_group_id is not None
        and inst.placement_group_id != ids.get(wanted[node.region])
    )
    if elsewhere:
        return (
            f"Linodes {', '.join(elsewhere)} are in another placement group than their "
            "region's managers' group, and a Linode is in one group at most",
            'unassign them from it, or set cluster.manager_placement = "none"',
        )
    return None


@dataclass(frozen=True)
class EnsurePlacementGroup:
    label: str
    region: str
    policy: str  # "strict" or "flexible"

    def describe(self) -> str:
        return (
            f"Create placement group {self.label} (anti-affinity, {self.policy}) for the "
            f"managers in {self.region}"
        )


@dataclass(frozen=True)
class AssignPlacementGroup:
    """Put existing managers into their region's group (a cluster made before the groups, or
    a group made again)."""

    group_label: str
    group_id: int | None  # None: made by this plan
    labels: tuple[str, ...]
    linode_ids: tuple[int, ...]

    def describe(self) -> str:
        return f"Put {', '.join(self.labels)} into placement group {self.group_label}"


def placement_steps(
    spec: Spec, observed: Observed
) -> tuple[list[EnsurePlacementGroup], list[AssignPlacementGroup]]:
    """(The groups to make before the Linodes, the existing managers to put into theirs.)"""
    ensure: list[EnsurePlacementGroup] = []
    assign: list[AssignPlacementGroup] = []
    for region, label in wanted_groups(spec, observed.placement_unsupported).items():
        group = observed.placement_group(label)
        if group is None:
            ensure.append(EnsurePlacementGroup(label, region, spec.cluster.manager_placement))
        inside = set(group.linode_ids) if group else set()
        outside = [
            inst
            for node in spec.nodes()
            if node.role == "manager"
            and node.region == region
            and (inst := observed.instance(node.label)) is not None
            and inst.id not in inside
        ]
        if outside:
            assign.append(
                AssignPlacementGroup(
                    label,
                    group.id if group else None,
                    tuple(i.label for i in outside),
                    tuple(i.id for i in outside),
                )
            )
    return ensure, assign
