"""Linode interfaces and the cluster's VPCs. Pure: the planner, `down`, `status` and `up` use
these rules.

A Linode's interfaces live either in its config profile (`legacy_config`: a Cloud Firewall
takes the whole Linode as a device) or with the Linode itself (`linode`: a public interface
and one in its region's VPC, each behind the Cloud Firewall). `cluster.interfaces` chooses the
generation of the Linodes swarmboot makes: "legacy", "linode", or "auto" (the account's
default, its setting `interfaces_for_new_linodes`). A Linode keeps its generation for life
(a rebuild keeps its interfaces), so a cluster may hold both; each is handled as it is.

With Linode interfaces each region of the spec has a VPC, `<cluster>-<region>`, with one
subnet, `nodes`, of `network.vpc_subnet`. VPCs have no tags: swarmboot writes the cluster's
tag and a mark (`swarmboot.marks`, over the cluster, the label and the region) into the
description. A VPC holding the label is the cluster's only with both, in the region its label
names; another is refused where `up` would use it, named by `status` and `down`, and never
deleted. One of the cluster's that holds interfaces of Linodes that are not members is kept
by `down` (Linode refuses to delete a VPC in use) and named.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from swarmboot.marks import MemberMarks
from swarmboot.spec import Spec
from swarmboot.state import CloudFirewall, Instance, Observed, Vpc

__all__ = [
    "ACCOUNT_DEFAULTS",
    "CAPABILITIES",
    "LEGACY",
    "LINODE",
    "SUBNET_LABEL",
    "DeleteVpc",
    "EnsureVpc",
    "MarkVpc",
    "account_allows",
    "cluster_vpcs",
    "foreign_vpcs",
    "interface_firewall_changes",
    "is_vpc_label",
    "new_generation",
    "strangers_in_vpcs",
    "unmarked_vpcs",
    "vpc_description",
    "vpc_label",
    "vpc_labels",
    "vpc_problem",
    "vpc_steps",
    "wanted_vpcs",
]

LEGACY, LINODE = "legacy_config", "linode"
SUBNET_LABEL = "nodes"
# The region capabilities Linode interfaces in a VPC need, as the API's regions spell them.
CAPABILITIES = ("VPCs", "Linode Interfaces")
# The account's `interfaces_for_new_linodes`: the generation a Linode gets by default.
ACCOUNT_DEFAULTS = {
    "legacy_config_only": LEGACY,
    "legacy_config_default_but_linode_allowed": LEGACY,
    "linode_default_but_legacy_config_allowed": LINODE,
    "linode_only": LINODE,
}
_SPEC_CHOICE = {"legacy": LEGACY, "linode": LINODE}
# The "fingerprint" a VPC's mark is made over (see `swarmboot.marks`): a Linode's is its
# pinned host key's.
_MARK_SUBJECT = "vpc:"


def new_generation(spec: Spec, account: str | None) -> str:
    """The interface generation of the Linodes swarmboot makes: the spec's choice, or with
    "auto" the account's default (`account`, its `interfaces_for_new_linodes`)."""
    choice = spec.cluster.interfaces
    if choice != "auto":
        return _SPEC_CHOICE[choice]
    if account is None:
        raise ValueError('cluster.interfaces = "auto" needs the account\'s setting read')
    return ACCOUNT_DEFAULTS.get(account, LEGACY)


def account_allows(account: str, generation: str) -> bool:
    """Whether an account with this `interfaces_for_new_linodes` makes Linodes of the
    generation (an unknown setting allows both: the API will say)."""
    return not (
        (account == "legacy_config_only" and generation == LINODE)
        or (account == "linode_only" and generation == LEGACY)
    )


def vpc_label(spec: Spec, region: str) -> str:
    """The label of the region's VPC: a cluster name and a region id (letters, digits and
    single hyphens both) always make one Linode takes: see `is_vpc_label`."""
    return f"{spec.cluster.name}-{region}"


def is_vpc_label(label: str) -> bool:
    """Whether Linode takes `label` as a VPC's label: 1 to 64 ASCII letters, digits and
    single hyphens, a letter or digit at each end."""
    parts = label.split("-")
    return 1 <= len(label) <= 64 and all(p.isascii() and p.isalnum() for p in parts)


def vpc_labels(spec: Spec, regions: Iterable[str]) -> tuple[str, ...]:
    """The VPC labels to list: the spec's regions' and those of `regions` (where the
    cluster's Linodes are, a region the spec may no longer have)."""
    return tuple(sorted({vpc_label(spec, r) for r in (*spec.regions, *regions)}))


def wanted_vpcs(spec: Spec, generation: str) -> dict[str, str]:
    """The VPCs the spec asks for, {region: label}: one per region with nodes, when the
    Linodes swarmboot makes have Linode interfaces."""
    if generation != LINODE:
        return {}
    return {n.region: vpc_label(spec, n.region) for n in spec.nodes()}


def vpc_description(spec: Spec, marks: MemberMarks, label: str, region: str) -> str:
    """What swarmboot writes into a VPC it makes: the cluster's tag and its mark, which only
    this SSH identity makes, then words for people."""
    mark = marks.mark(spec.cluster.name, label, _MARK_SUBJECT + region)
    return f"{spec.tag} {mark} made by swarmboot for the nodes of {spec.cluster.name} in {region}"


def _region_of(spec: Spec, label: str) -> str:
    return label.removeprefix(f"{spec.cluster.name}-")


def _why_foreign(spec: Spec, marks: MemberMarks, vpc: Vpc) -> str | None:
    region = _region_of(spec, vpc.label)
    if vpc.region != region:
        return f"it is in {vpc.region}, not {region}"
    words = vpc.description.split()
    if spec.tag not in words or not marks.valid(
        spec.cluster.name, vpc.label, _MARK_SUBJECT + region, words
    ):
        return f"its description lacks the tag {spec.tag} and the mark this SSH identity makes"
    return None


def cluster_vpcs(spec: Spec, found: Iterable[Vpc], marks: MemberMarks) -> tuple[Vpc, ...]:
    """Of the VPCs holding the cluster's VPC labels, its own: in the region the label names,
    with its tag and this identity's mark in the description."""
    return tuple(v for v in found if _why_foreign(spec, marks, v) is None)


def foreign_vpcs(
    spec: Spec, found: Iterable[Vpc], marks: MemberMarks
) -> tuple[tuple[Vpc, str], ...]:
    """Of the VPCs holding the cluster's VPC labels, those that are not its own, with why."""
    return tuple(
        (v, why)
        for v in sorted(found, key=lambda v: v.label)
        if (why := _why_foreign(spec, marks, v)) is not None
    )


def strangers_in_vpcs(observed: Observed) -> tuple[tuple[Vpc, tuple[int, ...]], ...]:
    """The cluster's VPCs that hold interfaces of Linodes that are not its members, with
    those Linodes' ids: `down` keeps them (Linode refuses to delete a VPC in use)."""
    members = {i.id for i in observed.instances}
    out = []
    for vpc in sorted(observed.vpcs, key=lambda v: v.label):
        others = tuple(sorted(vpc.linode_ids - members))
        if others:
            out.append((vpc, others))
    return tuple(out)


def vpc_problem(spec: Spec, observed: Observed) -> tuple[str, str] | None:
    """What keeps the plan from using the VPCs it wants, as (problem, fix): one that is
    another's, or a subnet of another range (Linode cannot change it). None: nothing."""
    wanted = set(wanted_vpcs(spec, new_generation(spec, observed.account_interfaces)).values())
    taken = [(v, why) for v, why in observed.foreign_vpcs if v.label in wanted]
    if taken:
        return (
            f"VPCs {', '.join(f'{v.label} ({why})' for v, why in taken)} carry this "
            "cluster's labels but are not its own: swarmboot will neither put its nodes in "
            "them nor delete them",
            'rename them, choose another cluster.name, or set cluster.interfaces = "legacy"',
        )
    for label in sorted(wanted):
        vpc = observed.vpc(label)
        subnet = vpc.subnet(SUBNET_LABEL) if vpc else None
        if subnet is not None and subnet.ipv4 != spec.network.vpc_subnet:
            return (
                f"the subnet {SUBNET_LABEL} of VPC {label} is {subnet.ipv4}, while the spec "
                f"wants network.vpc_subnet = {spec.network.vpc_subnet}: Linode cannot change "
                "a subnet's range",
                f'set network.vpc_subnet = "{subnet.ipv4}"',
            )
    return None


@dataclass(frozen=True)
class EnsureVpc:
    """Make the region's VPC with its subnet, or add the subnet to the VPC (`vpc_id`)."""

    label: str
    region: str
    subnet: str  # the subnet's IPv4 range
    vpc_id: int | None = None  # the VPC, when it is there without its subnet

    def describe(self) -> str:
        if self.vpc_id is not None:
            return f"Add subnet {SUBNET_LABEL} ({self.subnet}) to VPC {self.label}"
        return (
            f"Create VPC {self.label} with subnet {SUBNET_LABEL} ({self.subnet}) for the "
            f"nodes in {self.region}"
        )


def unmarked_vpcs(spec: Spec, observed: Observed) -> tuple[Vpc, ...]:
    """Of the VPCs under the cluster's VPC labels that are not its own, those with its tag in
    their description, in the region their label names: made by swarmboot with another SSH
    identity (or copied by someone); `adopt` marks them, once the operator says they are."""
    return tuple(
        v
        for v, _ in observed.foreign_vpcs
        if v.region == _region_of(spec, v.label) and spec.tag in v.description.split()
    )


@dataclass(frozen=True)
class MarkVpc:
    """Write the cluster's tag and this identity's mark into a VPC's description."""

    label: str
    vpc_id: int
    description: str

    def describe(self) -> str:
        return f"Mark VPC {self.label} (VPC {self.vpc_id}) as this cluster's"


@dataclass(frozen=True)
class DeleteVpc:
    label: str
    vpc_id: int

    def describe(self) -> str:
        return f"Delete the VPC {self.label}"


def vpc_steps(spec: Spec, observed: Observed) -> list[EnsureVpc]:
    """The VPCs (and subnets) to make before the Linodes that go into them."""
    generation = new_generation(spec, observed.account_interfaces)
    steps = []
    for region, label in wanted_vpcs(spec, generation).items():
        vpc = observed.vpc(label)
        if vpc is None:
            steps.append(EnsureVpc(label, region, spec.network.vpc_subnet))
        elif vpc.subnet(SUBNET_LABEL) is None:
            steps.append(EnsureVpc(label, region, spec.network.vpc_subnet, vpc.id))
    return steps


def interface_firewall_changes(
    firewall: CloudFirewall, behind: Iterable[Instance]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """For a Cloud Firewall and the Linodes with Linode interfaces that should be behind it:
    (the Linodes whose public or VPC interface is not behind it, the interfaces behind it of
    Linodes that should not be). A Linode's VPC interface is known by its id; any other of
    its interfaces behind the firewall is taken as its public one (the listings do not say
    which an interface is, and swarmboot gives its Linodes no third)."""
    wanted = {i.id: i for i in behind}
    attach = []
    for inst in sorted(wanted.values(), key=lambda i: i.id):
        held = firewall.interfaces_of(inst.id)
        vpc_ok = inst.vpc_interface_id is None or inst.vpc_interface_id in held
        public_ok = any(i != inst.vpc_interface_id for i in held)
        if not (vpc_ok and public_ok):
            attach.append(inst.id)
    detach = sorted(i for owner, i in firewall.interfaces if owner not in wanted)
    return tuple(attach), tuple(detach)
