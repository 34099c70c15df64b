"""What swarmboot observed of the world, as plain immutable data for the planner.

The cloud is the source of truth: Linodes carry the cluster's tag and unique labels, and the
fingerprint of the host key swarmboot pinned for them in a tag; the swarm and the nodes'
status files are read over SSH. Nothing is kept in a local state file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from swarmboot.nodestatus import NodeStatus
from swarmboot.raft import RaftStatus

__all__ = [
    "HOST_KEY_TAG",
    "REBUILD_TAG",
    "CloudFirewall",
    "Instance",
    "LocalSwarm",
    "NodeCert",
    "Observed",
    "PlacementGroup",
    "PlacementMember",
    "PublishedScript",
    "SwarmCA",
    "SwarmNode",
    "SwarmState",
    "Vpc",
    "VpcSubnet",
    "host_key_tag",
    "rebuild_tag",
]

# A tag holds at most 50 characters: "hk:" and the 43 characters of a SHA256 fingerprint.
HOST_KEY_TAG = "hk:"
# A Linode being rebuilt carries "rebuild:<E>", E the newest event id on the account when the
# rebuild was decided: a linode_rebuild (or linode_create) event after E says the Linode has a
# fresh disk. The tag goes once the node is back in the swarm, so a rebuild cut short by a
# crash is carried on by the next run, not started again.
REBUILD_TAG = "rebuild:"


def host_key_tag(fingerprint: str) -> str:
    """The tag pinning a host key, from its `SHA256:…` fingerprint."""
    return HOST_KEY_TAG + fingerprint.removeprefix("SHA256:")


def rebuild_tag(since_event: int) -> str:
    """The tag marking a rebuild decided when `since_event` was the newest event."""
    return f"{REBUILD_TAG}{since_event}"


@dataclass(frozen=True)
class Instance:
    id: int
    label: str
    region: str
    type: str
    status: str
    tags: tuple[str, ...]
    ipv4_public: str | None
    ipv4_private: str | None
    image: str | None = None
    # The config profile, when it was read: (id, kernel).
    config: tuple[int, str] | None = None
    # The placement group it is in (the API's `placement_group.id`), None if none.
    placement_group_id: int | None = None
    # Where its interfaces live: "legacy_config" (its config profile; a firewall takes the
    # whole Linode as a device) or "linode" (Linode interfaces: a firewall per interface).
    interface_generation: str = "legacy_config"
    # Its VPC interface (a Linode interface in one of the cluster's VPCs) and that
    # interface's address, when it has one.
    vpc_interface_id: int | None = None
    ipv4_vpc: str | None = None

    @property
    def linode_interfaces(self) -> bool:
        return self.interface_generation == "linode"

    @property
    def private_address(self) -> str | None:
        """Its address inside its region: the VPC one, else Linode's private IPv4."""
        return self.ipv4_vpc or self.ipv4_private

    # When it was made, as the API tells time (`created`, to the second, UTC).
    created: str | None = None

    @property
    def rebuild_since(self) -> int | None:
        """The event id of the rebuild this Linode is marked for, None if it is not."""
        for tag in self.tags:
            since = tag.removeprefix(REBUILD_TAG)
            # ASCII digits: a tag is anyone's to write, and "²" passes str.isdigit() but not int().
            if tag.startswith(REBUILD_TAG) and since.isascii() and since.isdigit():
                return int(since)
        return None

    @property
    def host_key_fingerprint(self) -> str | None:
        """The pinned host key's `SHA256:…` fingerprint, from its tag."""
        for tag in self.tags:
            if tag.startswith(HOST_KEY_TAG):
                return "SHA256:" + tag.removeprefix(HOST_KEY_TAG)
        return None


@dataclass(frozen=True)
class PublishedScript:
    id: int
    label: str
    rev_note: str
    images: tuple[str, ...]


@dataclass(frozen=True)
class CloudFirewall:
    id: int
    label: str
    inbound_policy: str
    inbound: tuple  # the rules in `firewall.rules_key` form
    linode_ids: tuple[int, ...]  # the Linodes behind it as a whole (legacy-config ones)
    tags: tuple[str, ...] = ()
    # The Linode interfaces behind it, each as (its Linode's id, the interface's id).
    interfaces: tuple[tuple[int, int], ...] = ()

    def interfaces_of(self, linode_id: int) -> frozenset[int]:
        """The ids of the Linode's interfaces behind it."""
        return frozenset(i for owner, i in self.interfaces if owner == linode_id)


@dataclass(frozen=True)
class VpcSubnet:
    id: int
    label: str
    ipv4: str
    linode_ids: tuple[int, ...] = ()  # the Linodes with an interface in it


@dataclass(frozen=True)
class Vpc:
    """A VPC as the API shows it. VPCs have no tags: swarmboot writes the cluster's tag and
    its mark into the description (see `swarmboot.vpc`)."""

    id: int
    label: str
    region: str
    description: str
    subnets: tuple[VpcSubnet, ...] = ()

    def subnet(self, label: str) -> VpcSubnet | None:
        return next((s for s in self.subnets if s.label == label), None)

    @property
    def linode_ids(self) -> frozenset[int]:
        return frozenset(i for s in self.subnets for i in s.linode_ids)


@dataclass(frozen=True)
class PlacementMember:
    linode_id: int
    compliant: bool  # no other member of its group on its host


@dataclass(frozen=True)
class PlacementGroup:
    """A Linode placement group as the API shows it: its members and their compliance."""

    id: int
    label: str
    region: str
    type: str  # "anti_affinity:local"
    policy: str  # "strict" or "flexible"
    compliant: bool
    members: tuple[PlacementMember, ...] = ()

    @property
    def linode_ids(self) -> tuple[int, ...]:
        return tuple(m.linode_id for m in self.members)


@dataclass(frozen=True)
class SwarmNode:
    id: str
    hostname: str
    role: str  # "manager" or "worker"
    state: str  # "ready", "down", ...
    availability: str  # "active", "drain", "pause"
    address: str
    labels: tuple[tuple[str, str], ...] = ()
    leader: bool = False
    reachability: str = ""  # a manager's raft reachability: "reachable", "unreachable"
    # The CA that issued its certificate and the root it trusts, as it last told the
    # managers (digests of its Description.TLSInfo: see `SwarmCA`), and when its entry last
    # changed (`UpdatedAt`: for a node that is down, about when it went down; epoch seconds).
    issuer: str = ""
    trust_root: str = ""
    updated_at: float | None = None

    @property
    def raft_member(self) -> bool:
        """A manager raft counts: one with a manager status. A manager entry without one (a
        promotion not carried out yet, or one that a forced new cluster left behind on
        another node) is not in raft; read without a status, a ready one is taken as a
        member (a swarm read before the status was known)."""
        return self.role == "manager" and (bool(self.reachability) or self.state == "ready")

    @property
    def reachable_manager(self) -> bool:
        return self.raft_member and (
            self.reachability == "reachable" or (not self.reachability and self.state == "ready")
        )


@dataclass(frozen=True)
class LocalSwarm:
    """A node's own view: its swarm node id, whether it is in a swarm, whether it manages."""

    node_id: str
    state: str  # "inactive", "pending", "active", "error", "locked"
    manager: bool


@dataclass(frozen=True)
class SwarmCA:
    """The swarm's certificate authority as `GET /swarm` shows it. `issuer` and `trust_root`
    are digests of its TLSInfo (the issuer's subject and public key; the root certificate),
    compared with each node's as `docker swarm ca --rotate` does to tell who has its new
    certificate."""

    issuer: str
    trust_root: str
    rotating: bool  # RootRotationInProgress: nodes are still being given new certificates
    force_rotate: int  # Spec.CAConfig.ForceRotate: raised by one to rotate the CA
    node_cert_expiry: int  # seconds a node's certificate is valid (Spec.CAConfig)


@dataclass(frozen=True)
class NodeCert:
    """A node's swarm certificate (/var/lib/docker/swarm/certificates/swarm-node.crt) as
    read on the node: when it expires (epoch seconds) and the key of the CA that signed it
    (its authority key identifier, in hex; empty when the certificate names none)."""

    not_after: float
    issuer_key: str = ""


@dataclass(frozen=True)
class SwarmState:
    """The swarm as a manager sees it."""

    manager: str  # label of the manager it was read from
    nodes: tuple[SwarmNode, ...]
    networks: tuple[tuple[str, bool], ...] = ()  # (overlay name, encrypted)
    heartbeat: int | None = None  # the dispatcher's heartbeat in seconds (None: not read)
    ca: SwarmCA | None = None  # its CA (None: not read)

    def node(self, hostname: str) -> SwarmNode | None:
        found = [n for n in self.nodes if n.hostname == hostname]
        ready = [n for n in found if n.state == "ready"]
        return (ready or found or [None])[0]


@dataclass(frozen=True)
class Observed:
    instances: tuple[Instance, ...] = ()
    # Linodes whose labels a cluster node would take, without the cluster's tag.
    strangers: tuple[Instance, ...] = ()
    scripts: tuple[PublishedScript, ...] = ()
    firewalls: tuple[CloudFirewall, ...] = ()
    swarm: SwarmState | None = None
    reports: dict[str, NodeStatus] = field(default_factory=dict)
    # The addresses each node's firewall member set holds now.
    members: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Nodes found unable to join, and why (a failed probe, no machine behind the address).
    failures: dict[str, str] = field(default_factory=dict)
    # Linodes marked for a rebuild whose fresh disk is there (the rebuild call went through).
    rebuilt: frozenset[str] = frozenset()
    # The nodes' own view of the swarm, read for those that are not ready members of the
    # observed swarm (to be joined, or in a swarm of their own).
    local: dict[str, LocalSwarm] = field(default_factory=dict)
    # Cloud Firewalls holding a label the cluster's would take, without the cluster's tag.
    foreign_firewalls: tuple[CloudFirewall, ...] = ()
    # Linodes with the cluster's tag under a label swarmboot never gives: not members.
    outsiders: tuple[Instance, ...] = ()
    # Linodes with the cluster's tag under a node label, without a mark this identity made.
    unmarked: tuple[Instance, ...] = ()
    # Other swarmboot clusters on the account and their Linodes (looked for by `down
    # --stackscripts` only: None when not looked for).
    other_clusters: dict[str, tuple[str, ...]] | None = None
    # How far each answering manager's raft log goes, read by `recover` when no manager
    # leads (the swarm has lost its quorum).
    raft: dict[str, RaftStatus] = field(default_factory=dict)
    # The placement groups holding the cluster's group labels (`<cluster>-<region>-managers`),
    # whoever's they are: one whose members are not all the cluster's is another's.
    placement_groups: tuple[PlacementGroup, ...] = ()
    # The spec's regions whose catalogue entry lacks placement groups: no group is made there.
    placement_unsupported: frozenset[str] = frozenset()
    # The cluster's VPCs (its label, its tag and this identity's mark in the description),
    # and those holding a label its VPCs would take without them.
    vpcs: tuple[Vpc, ...] = ()
    foreign_vpcs: tuple[tuple[Vpc, str], ...] = ()  # each with why it is not the cluster's
    # The account's `interfaces_for_new_linodes`, read when the spec's `cluster.interfaces`
    # needs it (None: not read).
    account_interfaces: str | None = None
    # What cloud-init as the bootstrap needs and the catalogue lacks: the spec's regions
    # without Linode's Metadata service, and its image if it lacks the cloud-init capability.
    metadata_unsupported: frozenset[str] = frozenset()
    cloud_init_unsupported: frozenset[str] = frozenset()
    # Each answering node's swarm certificate, and when they were read (epoch seconds), read
    # by `status` and `rotate` only (`observe_certificates`); None: not read.
    certificates: dict[str, NodeCert] = field(default_factory=dict)
    certificates_read_at: float | None = None

    def instance(self, label: str) -> Instance | None:
        return next((i for i in self.instances if i.label == label), None)

    def firewall(self, label: str) -> CloudFirewall | None:
        return next((f for f in self.firewalls if f.label == label), None)

    def placement_group(self, label: str) -> PlacementGroup | None:
        return next((g for g in self.placement_groups if g.label == label), None)

    def vpc(self, label: str) -> Vpc | None:
        return next((v for v in self.vpcs if v.label == label), None)
