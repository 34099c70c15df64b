"""`down` as a plan: every Linode carrying the cluster's tag, its Cloud Firewalls, the
managers' placement groups, its VPCs and, when asked, its StackScript, each deleted by a step
the engine runs (`plan --down` shows them).

It reads the cloud only: no node is contacted; the SSH identity is needed only to tell the
cluster's Linodes by their marks. A `down` cut
short is run again and deletes what is left; one with nothing left plans nothing."""

from __future__ import annotations

from dataclasses import dataclass

from swarmboot.errors import SwarmbootError
from swarmboot.interfaces import DeleteVpc, strangers_in_vpcs
from swarmboot.membership import not_members
from swarmboot.placement import cluster_groups
from swarmboot.plan import DeleteInstance, PlanError, script_label
from swarmboot.spec import Spec
from swarmboot.state import Observed

__all__ = [
    "DeleteCloudFirewall",
    "DeletePlacementGroup",
    "DeleteStackScript",
    "check_unmarked",
    "left_alone",
    "plan_down",
    "summary",
]


@dataclass(frozen=True)
class DeleteCloudFirewall:
    label: str
    firewall_id: int

    def describe(self) -> str:
        return f"Delete the Cloud Firewall {self.label}"


@dataclass(frozen=True)
class DeletePlacementGroup:
    label: str
    group_id: int

    def describe(self) -> str:
        return f"Delete the placement group {self.label}"


@dataclass(frozen=True)
class DeleteStackScript:
    label: str
    script_id: int

    def describe(self) -> str:
        return f"Delete the StackScript {self.label}"


DownStep = (
    DeleteInstance | DeleteCloudFirewall | DeletePlacementGroup | DeleteVpc | DeleteStackScript
)


def plan_down(
    spec: Spec, observed: Observed, *, stackscripts: bool = False
) -> tuple[DownStep, ...]:
    """The Linodes first (a firewall with devices behind it is still in use, and Linode
    deletes a placement group only once it has no members, a VPC once no interface is in
    it), then the Cloud Firewalls, then the placement groups whose members are all the
    cluster's (so none once its Linodes are gone), then the VPCs that hold no other Linode's
    interface, then the StackScript if `stackscripts`."""
    linodes = sorted(observed.instances, key=lambda i: i.label)
    steps: list[DownStep] = [DeleteInstance(i.label, i.id) for i in linodes]
    steps += [
        DeleteCloudFirewall(f.label, f.id)
        for f in sorted(observed.firewalls, key=lambda f: f.label)
    ]
    steps += [DeletePlacementGroup(g.label, g.id) for g in cluster_groups(spec, observed)]
    kept = {v.id for v, _ in strangers_in_vpcs(observed)}
    steps += [
        DeleteVpc(v.label, v.id)
        for v in sorted(observed.vpcs, key=lambda v: v.label)
        if v.id not in kept
    ]
    if stackscripts:
        label = script_label(spec.cluster.stackscript)
        mine = [DeleteStackScript(s.label, s.id) for s in observed.scripts if s.label == label]
        if mine:
            _check_shared(spec, observed, label)
        steps += mine
    return tuple(steps)


def _check_shared(spec: Spec, observed: Observed, label: str) -> None:
    """The StackScript is the account's, shared by every cluster made from the same
    template: it is deleted only when no other cluster's Linodes are left to be rebuilt
    from it (the API does not say which StackScript a Linode was made from)."""
    if observed.other_clusters is None:
        raise ValueError("down --stackscripts needs the account's clusters observed")
    if observed.other_clusters:
        names = ", ".join(
            f"{name} ({len(labels)} Linode(s))" for name, labels in observed.other_clusters.items()
        )
        raise PlanError(
            f"the StackScript {label} is shared: the clusters {names} are on this account "
            f"and may rebuild from it",
            hint="run `swarmboot down` without --stackscripts, or take those clusters down first",
        )


def left_alone(spec: Spec, observed: Observed) -> tuple[str, ...]:
    """What holds the cluster's labels or tag but is not its own: never deleted."""
    return tuple(f"left alone: {line}" for line in not_members(spec, observed))


def check_unmarked(spec: Spec, observed: Observed) -> None:
    """A `down` that left Linodes under the cluster's node labels and tag, without this
    identity's mark, fails (exit 1) after deleting the rest: they look like the cluster's and
    may be billed (made with another SSH key, or before marks), so they are named rather
    than passed over in a success."""
    if observed.unmarked:
        labels = ", ".join(sorted(i.label for i in observed.unmarked))
        raise SwarmbootError(
            f"{len(observed.unmarked)} Linode(s) with the tag {spec.tag} under node labels were "
            f"not deleted: {labels} (not marked by this SSH identity)",
            hint="if they are this cluster's, `swarmboot adopt` with its SSH key and "
            "run down again; if not, they are someone else's",
        )


def summary(spec: Spec, steps: tuple[DownStep, ...]) -> str:
    """What a `down` deletes, in one line (the confirmation and the final report)."""
    linodes = sum(isinstance(s, DeleteInstance) for s in steps)
    firewalls = sum(isinstance(s, DeleteCloudFirewall) for s in steps)
    groups = sum(isinstance(s, DeletePlacementGroup) for s in steps)
    vpcs = sum(isinstance(s, DeleteVpc) for s in steps)
    scripts = [s.label for s in steps if isinstance(s, DeleteStackScript)]
    return (
        f"{linodes} Linode(s) tagged {spec.tag}, {firewalls} Cloud Firewall(s)"
        + (f", {groups} placement group(s)" if groups else "")
        + (f", {vpcs} VPC(s)" if vpcs else "")
        + (f", StackScript {scripts[0]}" if scripts else "")
    )
