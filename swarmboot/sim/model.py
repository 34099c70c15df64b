"""The simulated account's records, and how each one looks in the API.

Records are plain dataclasses, saved to and loaded from JSON as they are. Secrets an instance
was created with (root password, StackScript data, user data) are kept for the machine backend
and never shown by `to_api`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from swarmboot.sim import catalog

__all__ = [
    "DEFAULT_SETTINGS",
    "DEFAULT_VPC_IPV4",
    "Config",
    "Device",
    "Disk",
    "Event",
    "Firewall",
    "Instance",
    "Ipv6Range",
    "LinodeInterface",
    "PlacementGroup",
    "StackScript",
    "Subnet",
    "Vpc",
    "World",
    "interface_mac",
    "slaac_address",
    "timestamp",
    "vpc_ipv6_api",
]

# A VPC's IPv4 ranges unless it is made with its own (linodego's recorded answers, 2026).
DEFAULT_VPC_IPV4 = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/17")


def timestamp(epoch: float) -> str:
    """Linode's time format: UTC, seconds, no zone suffix."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass
class Disk:
    id: int
    label: str
    size: int
    filesystem: str
    status: str
    created: str
    updated: str
    disk_encryption: str = "disabled"
    # A disk being made is `not ready` until then (epoch); None: ready.
    ready_at: float | None = None

    def to_api(self, now: float | None = None) -> dict[str, Any]:
        shown = dataclasses.asdict(self)
        ready_at = shown.pop("ready_at")
        if ready_at is not None and now is not None and now < ready_at:
            shown["status"] = "not ready"
        return shown


@dataclass
class Config:
    id: int
    label: str
    kernel: str
    devices: dict[str, Any]
    root_device: str = "/dev/sda"
    run_level: str = "default"
    virt_mode: str = "paravirt"
    memory_limit: int = 0
    comments: str | None = None
    helpers: dict[str, bool] = field(
        default_factory=lambda: {
            "updatedb_disabled": True,
            "distro": True,
            "modules_dep": True,
            "network": True,
            "devtmpfs_automount": True,
        }
    )
    interfaces: list[dict[str, Any]] = field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Instance:
    id: int
    label: str
    region: str
    type: str
    image: str | None
    status: str
    created: str
    updated: str
    ipv4_public: str
    ipv4_private: str | None
    ipv6: str
    host_uuid: str
    tags: list[str] = field(default_factory=list)
    group: str = ""
    watchdog_enabled: bool = True
    disks: dict[int, Disk] = field(default_factory=dict)
    configs: dict[int, Config] = field(default_factory=dict)
    # What the disk was deployed with, for the machine backend; never shown.
    root_pass: str | None = field(default=None, repr=False)
    authorized_keys: list[str] = field(default_factory=list, repr=False)
    stackscript_id: int | None = None
    stackscript: str | None = field(default=None, repr=False)
    stackscript_data: dict[str, str] = field(default_factory=dict, repr=False)
    user_data: str | None = field(default=None, repr=False)
    # Whether the disk was deployed with user data (kept after the first boot forgets it).
    has_user_data: bool = False
    # The disk was just deployed: the next boot is its first (when the StackScript runs).
    first_boot: bool = True
    # Bumped whenever a pending transition must be forgotten (delete, rebuild).
    generation: int = 0
    # The placement group the Linode belongs to (its one record of membership).
    placement_group_id: int | None = None
    # Where its interfaces live: its config profiles (`legacy_config`) or itself (`linode`).
    interface_generation: str = "legacy_config"
    interfaces: dict[int, LinodeInterface] = field(default_factory=dict)
    network_helper: bool = True
    # Its disks' encryption at rest ("enabled" or "disabled"), fixed at create.
    disk_encryption: str = "disabled"
    # More public IPv4 addresses (POST .../ips), others' addresses shared to it, and the
    # reverse DNS set for its addresses.
    extra_public: list[str] = field(default_factory=list)
    shared_ipv4: list[str] = field(default_factory=list)
    rdns: dict[str, str | None] = field(default_factory=dict)

    def to_api(self, group: PlacementGroup | None) -> dict[str, Any]:
        """The Linode as the API shows it; `group` is its placement group's record."""
        spec = catalog.type_(self.type) or {}
        ipv4 = [self.ipv4_public, *self.extra_public] + (
            [self.ipv4_private] if self.ipv4_private else []
        )
        return {
            "id": self.id,
            "label": self.label,
            "region": self.region,
            "type": self.type,
            "image": self.image,
            "status": self.status,
            "created": self.created,
            "updated": self.updated,
            "group": self.group,
            "tags": list(self.tags),
            "ipv4": ipv4,
            "ipv6": self.ipv6,
            "hypervisor": "kvm",
            "host_uuid": self.host_uuid,
            "watchdog_enabled": self.watchdog_enabled,
            "has_user_data": self.has_user_data,
            "lke_cluster_id": None,
            "placement_group": group.summary() if group is not None else None,
            "interface_generation": self.interface_generation,
            "disk_encryption": self.disk_encryption,
            "capabilities": [],
            "specs": {
                "disk": spec.get("disk", 0),
                "memory": spec.get("memory", 0),
                "vcpus": spec.get("vcpus", 0),
                "gpus": spec.get("gpus", 0),
                "transfer": spec.get("transfer", 0),
            },
            "alerts": {
                "cpu": 180,
                "io": 10000,
                "network_in": 10,
                "network_out": 10,
                "transfer_quota": 80,
            },
            "backups": {
                "enabled": False,
                "available": False,
                "last_successful": None,
                "schedule": {"day": None, "window": None},
            },
        }


@dataclass
class LinodeInterface:
    """A Linode interface (the `linode` generation): it belongs to the Linode, not to a
    config profile. Exactly one of its kinds is set: `public`, `vpc` (with the VPC and
    subnet and its address there) or `vlan`."""

    id: int
    kind: str
    mac_address: str
    created: str
    updated: str
    version: int = 1
    firewall_id: int | None = None
    default_ipv4: bool = False
    default_ipv6: bool = False
    vpc_id: int | None = None
    subnet_id: int | None = None
    vpc_address: str | None = None
    nat_1_1: str | None = None
    # Routed IPv4 ranges of the subnet and the SLAAC /64 of its IPv6 range (dual stack).
    vpc_ranges: list[str] = field(default_factory=list)
    vpc_ipv6: str | None = None
    vpc_ipv6_public: bool = False
    vlan_label: str | None = None
    ipam_address: str | None = None
    # A public interface's IPv4 addresses, each {"address", "primary"}: some of the
    # Linode's public addresses (empty in a state saved before they were kept: its first).
    ipv4_addresses: list[dict[str, Any]] = field(default_factory=list)

    def to_api(self, inst: Instance) -> dict[str, Any]:
        """The interface as the API shows it, but for what lives in the account rather than
        on the Linode: a public one's routed and shared ranges and shared IPv4 addresses,
        which `swarmboot.sim.interfaces.interface_api` adds."""
        public = vpc = vlan = None
        if self.kind == "public":
            public = {
                "ipv4": {
                    "addresses": [dict(a) for a in self.ipv4_addresses]
                    or [{"address": inst.ipv4_public, "primary": True}],
                    "shared": [],
                },
                "ipv6": {
                    "slaac": [{"address": inst.ipv6.split("/")[0], "prefix": 64}],
                    "shared": [],
                    "ranges": [],
                },
            }
        elif self.kind == "vpc":
            vpc = {
                "vpc_id": self.vpc_id,
                "subnet_id": self.subnet_id,
                "ipv4": {
                    "addresses": [
                        {
                            "address": self.vpc_address,
                            "primary": True,
                            "nat_1_1_address": self.nat_1_1,
                        }
                    ],
                    "ranges": [{"range": r} for r in self.vpc_ranges],
                },
                "ipv6": vpc_ipv6_api(self.vpc_ipv6, self.vpc_ipv6_public, self.id),
            }
        else:
            vlan = {"vlan_label": self.vlan_label, "ipam_address": self.ipam_address}
        return {
            "id": self.id,
            "mac_address": self.mac_address,
            "created": self.created,
            "updated": self.updated,
            "version": self.version,
            "firewall_id": self.firewall_id,
            "default_route": {"ipv4": self.default_ipv4, "ipv6": self.default_ipv6},
            "public": public,
            "vpc": vpc,
            "vlan": vlan,
            "rdma_vpc": None,
        }


def interface_mac(interface_id: int) -> str:
    """An interface's MAC address, Linode-style, from its id."""
    return "f2:3c:94:" + ":".join(f"{(interface_id >> s) & 0xFF:02x}" for s in (16, 8, 0))


def slaac_address(network: str, interface_id: int) -> str:
    """The SLAAC address an interface takes in its /64 (`network`): EUI-64 from its MAC."""
    octets = bytes.fromhex(interface_mac(interface_id).replace(":", ""))
    eui = bytes([octets[0] ^ 0x02]) + octets[1:3] + b"\xff\xfe" + octets[3:]
    net = ipaddress.ip_network(network)
    return str(net.network_address + int.from_bytes(eui, "big"))


def vpc_ipv6_api(network: str | None, public: bool, interface_id: int) -> dict[str, Any] | None:
    """A VPC interface's `ipv6` (config-profile and Linode interfaces alike): its SLAAC /64
    and address, or None in a subnet without IPv6."""
    if network is None:
        return None
    return {
        "slaac": [{"range": network, "address": slaac_address(network, interface_id)}],
        "ranges": [],
        "is_public": public,
    }


@dataclass
class Ipv6Range:
    """A routed IPv6 range (`/networking/ipv6/ranges`): a /64 or /56 of its region's pool,
    routed to one Linode's SLAAC address (its route target) and shared with others
    (`/networking/ips/share`)."""

    range: str  # its first address, compressed: 2001:db8:8000::
    prefix: int
    region: str
    linode_id: int
    shared_with: list[int] = field(default_factory=list)

    @property
    def cidr(self) -> str:
        return f"{self.range}/{self.prefix}"


@dataclass
class Subnet:
    id: int
    label: str
    ipv4: str
    created: str
    updated: str
    ipv6: list[str] | None = None  # its IPv6 ranges (from its VPC's), None without


@dataclass
class Vpc:
    id: int
    label: str
    region: str
    description: str
    created: str
    updated: str
    subnets: dict[int, Subnet] = field(default_factory=dict)
    # Its IPv4 ranges (the subnets' ranges lie in them), IPv6 ranges (None: IPv4 only), type.
    ipv4: list[str] = field(default_factory=lambda: list(DEFAULT_VPC_IPV4))
    ipv6: list[str] | None = None
    vpc_type: str = "regular"


@dataclass
class StackScript:
    id: int
    label: str
    script: str
    images: list[str]
    description: str
    is_public: bool
    rev_note: str
    user_defined_fields: list[dict[str, str]]
    created: str
    updated: str
    username: str
    mine: bool = True
    deployments_total: int = 0
    deployments_active: int = 0

    def to_api(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["user_gravatar_id"] = hashlib.md5(
            self.username.encode(), usedforsecurity=False
        ).hexdigest()
        return out


@dataclass
class Device:
    """A firewall's device: a Linode (`linode`, a legacy-config Linode's whole traffic) or
    one interface of a Linode (`linode_interface`, the `linode` generation), whose Linode is
    its `parent`."""

    id: int
    entity_id: int
    entity_type: str
    entity_label: str | None
    created: str
    updated: str
    parent_id: int | None = None
    parent_label: str | None = None

    def to_api(self) -> dict[str, Any]:
        parent = None
        url = f"/v4/linode/instances/{self.entity_id}"
        if self.parent_id is not None:
            url = f"/v4/linode/instances/{self.parent_id}/interfaces/{self.entity_id}"
            parent = {
                "id": self.parent_id,
                "type": "linode",
                "label": self.parent_label,
                "url": f"/v4/linode/instances/{self.parent_id}",
                "parent_entity": None,
            }
        return {
            "id": self.id,
            "created": self.created,
            "updated": self.updated,
            "entity": {
                "id": self.entity_id,
                "type": self.entity_type,
                "label": self.entity_label,
                "url": url,
                "parent_entity": parent,
            },
        }


@dataclass
class Firewall:
    id: int
    label: str
    rules: dict[str, Any]
    version: int
    created: str
    updated: str
    status: str = "enabled"
    tags: list[str] = field(default_factory=list)
    devices: dict[int, Device] = field(default_factory=dict)
    # Each version of its rules, oldest first: {"updated", "rules"} (rules_api of then).
    history: list[dict[str, Any]] = field(default_factory=list)

    def remember(self, now: str) -> None:
        """Keep the rules as they are now as their version."""
        self.history.append({"updated": now, "status": self.status, "rules": self.rules_api()})

    def rules_api(self) -> dict[str, Any]:
        body = {
            k: self.rules[k] for k in ("inbound", "inbound_policy", "outbound", "outbound_policy")
        }
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        return {**body, "version": self.version, "fingerprint": digest[:8]}

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "status": self.status,
            "tags": list(self.tags),
            "created": self.created,
            "updated": self.updated,
            "rules": self.rules_api(),
            "entities": [d.to_api()["entity"] for d in self.devices.values()],
        }


@dataclass
class PlacementGroup:
    """A placement group; its members are the Linodes whose `placement_group_id` is its id."""

    id: int
    label: str
    region: str
    placement_group_type: str
    placement_group_policy: str

    def summary(self) -> dict[str, Any]:
        """What a member Linode shows of its group (`migrating_to` left out: nothing moves)."""
        return {
            "id": self.id,
            "label": self.label,
            "placement_group_type": self.placement_group_type,
            "placement_group_policy": self.placement_group_policy,
        }

    def to_api(self, members: list[dict[str, Any]]) -> dict[str, Any]:
        """The group with its members (`linode_id`, `is_compliant`), as worked out by
        `swarmboot.sim.placement`."""
        return {
            "id": self.id,
            "label": self.label,
            "region": self.region,
            "placement_group_type": self.placement_group_type,
            "placement_group_policy": self.placement_group_policy,
            "is_compliant": all(m["is_compliant"] for m in members),
            "members": members,
        }


@dataclass
class Event:
    id: int
    action: str
    created: str
    entity: dict[str, Any] | None
    status: str
    username: str
    percent_complete: int | None = None
    duration: float | None = None
    message: str | None = None
    secondary_entity: dict[str, Any] | None = None
    read: bool = False
    seen: bool = False
    started_at: float = 0.0  # epoch, to work out the duration
    due_at: float | None = None  # epoch when a started event is due to end

    def progress(self, now: float | None) -> int | None:
        """percent_complete at `now`: a started event moves on with the time it has taken
        of the time it takes (at most 99 until it ends), as Linode's progress does."""
        if self.status != "started" or self.due_at is None or now is None:
            return self.percent_complete
        span = self.due_at - self.started_at
        if span <= 0:
            return 99
        return max(0, min(99, int(100 * (now - self.started_at) / span)))

    def to_api(self, now: float | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "created": self.created,
            "entity": dict(self.entity) if self.entity else None,
            "status": self.status,
            "username": self.username,
            "percent_complete": self.progress(now),
            "duration": self.duration,
            "message": self.message,
            "secondary_entity": self.secondary_entity,
            "read": self.read,
            "seen": self.seen,
            "rate": None,
            "time_remaining": None,
        }


# The settings of a new simulated account. `interfaces_for_new_linodes` says which interface
# generation a Linode made without `interface_generation` gets, and which one may be asked
# for: legacy_config_only, legacy_config_default_but_linode_allowed,
# linode_default_but_legacy_config_allowed, linode_only (linode_api4's
# AccountSettingsInterfacesForNewLinodes).
DEFAULT_SETTINGS: dict[str, Any] = {
    "backups_enabled": False,
    "interfaces_for_new_linodes": "legacy_config_default_but_linode_allowed",
    "longview_subscription": None,
    "managed": False,
    "network_helper": True,
    "object_storage": "disabled",
    # Shown as the real API shows it (linodego's recording); the maintenance policies
    # themselves (/maintenance/policies, changing this) are not served.
    "maintenance_policy": "linode/migrate",
}


@dataclass
class SshKey:
    """A public key of the profile (`/profile/sshkeys`)."""

    id: int
    label: str
    ssh_key: str
    created: str

    def to_api(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class World:
    """Everything the account holds, and the next id of each kind."""

    next_ids: dict[str, int] = field(
        default_factory=lambda: {
            "linode": 40000001,
            "config": 50000001,
            "disk": 60000001,
            "stackscript": 1000001,
            "firewall": 700001,
            "device": 800001,
            "event": 90000001,
            "placement_group": 528001,
            "vpc": 3001,
            "subnet": 4001,
            "interface": 5001,
            "ssh_key": 10001,
            "config_interface": 11001,
        }
    )
    instances: dict[int, Instance] = field(default_factory=dict)
    stackscripts: dict[int, StackScript] = field(default_factory=dict)
    firewalls: dict[int, Firewall] = field(default_factory=dict)
    events: dict[int, Event] = field(default_factory=dict)
    placement_groups: dict[int, PlacementGroup] = field(default_factory=dict)
    vpcs: dict[int, Vpc] = field(default_factory=dict)
    # The account's settings (`GET /account/settings`): which interfaces new Linodes get.
    settings: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_SETTINGS))
    # Tags made with `POST /tags` (a tag also exists while an object carries it).
    tags: list[str] = field(default_factory=list)
    ssh_keys: dict[int, SshKey] = field(default_factory=dict)
    # VLANs by "region/label": made with their first interface, kept until deleted.
    vlans: dict[str, str] = field(default_factory=dict)
    # The account's default firewalls (`/networking/firewalls/settings`), by kind.
    firewall_defaults: dict[str, int | None] = field(default_factory=dict)
    # Routed IPv6 ranges, by their first address (`Ipv6Range.range`).
    ipv6_ranges: dict[str, Ipv6Range] = field(default_factory=dict)

    def new_id(self, kind: str) -> int:
        value = self.next_ids[kind]
        self.next_ids[kind] = value + 1
        return value

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> World:
        def instance(d: dict[str, Any]) -> Instance:
            d = dict(d)
            d["disks"] = {int(k): Disk(**v) for k, v in d["disks"].items()}
            d["configs"] = {int(k): Config(**v) for k, v in d["configs"].items()}
            d["interfaces"] = {
                int(k): LinodeInterface(**v) for k, v in d.get("interfaces", {}).items()
            }
            return Instance(**d)

        def vpc(d: dict[str, Any]) -> Vpc:
            d = dict(d)
            d["subnets"] = {int(k): Subnet(**v) for k, v in d["subnets"].items()}
            return Vpc(**d)

        def firewall(d: dict[str, Any]) -> Firewall:
            d = dict(d)
            d["devices"] = {int(k): Device(**v) for k, v in d["devices"].items()}
            return Firewall(**d)

        # A state file from before a kind of record existed starts that kind afresh.
        return cls(
            next_ids={**cls().next_ids, **raw["next_ids"]},
            instances={int(k): instance(v) for k, v in raw["instances"].items()},
            stackscripts={int(k): StackScript(**v) for k, v in raw["stackscripts"].items()},
            firewalls={int(k): firewall(v) for k, v in raw["firewalls"].items()},
            events={int(k): Event(**v) for k, v in raw["events"].items()},
            placement_groups={
                int(k): PlacementGroup(**v) for k, v in raw.get("placement_groups", {}).items()
            },
            vpcs={int(k): vpc(v) for k, v in raw.get("vpcs", {}).items()},
            settings={**DEFAULT_SETTINGS, **raw.get("settings", {})},
            tags=list(raw.get("tags", [])),
            ssh_keys={int(k): SshKey(**v) for k, v in raw.get("ssh_keys", {}).items()},
            firewall_defaults=dict(raw.get("firewall_defaults", {})),
            vlans=dict(raw.get("vlans", {})),
            ipv6_ranges={k: Ipv6Range(**v) for k, v in raw.get("ipv6_ranges", {}).items()},
        )
