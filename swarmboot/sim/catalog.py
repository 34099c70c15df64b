"""The read-only part of the simulated account: regions, plans, kernels and images.

Shapes follow Linode's OpenAPI spec; ids, labels and figures follow the real catalogue, so a
spec written for the real API (`eu-central`, `g6-standard-2`, `linode/debian12`) works here.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CLOUD_INIT",
    "IMAGES",
    "KERNELS",
    "METADATA",
    "REGIONS",
    "TYPES",
    "image",
    "images",
    "kernel",
    "region",
    "regions",
    "type_",
]

_CREATED = "2024-01-01T00:00:00"

# What metadata.user_data needs (Linode's spec, POST /linode/instances): a region offering the
# Metadata service and an image that runs cloud-init.
METADATA = "Metadata"
CLOUD_INIT = "cloud-init"

_CORE = [
    "Linodes",
    "Backups",
    "NodeBalancers",
    "Block Storage",
    "Object Storage",
    "Kubernetes",
    "Cloud Firewall",
    "Disk Encryption",
    "Vlans",
    "VPCs",
    # Custom IPv4 ranges and dual stack, as linodego's recorded region lists show them.
    "Custom VPC IPv4 Ranges",
    "VPC Dual Stack",
    "VPC IPv6 Stack",
    "Linode Interfaces",
    "Metadata",
    "Placement Group",
]

# (id, label, country): the core regions.
_REGION_ROWS = (
    ("us-east", "Newark, NJ", "us"),
    ("us-central", "Dallas, TX", "us"),
    ("us-west", "Fremont, CA", "us"),
    ("us-southeast", "Atlanta, GA", "us"),
    ("us-iad", "Washington, DC", "us"),
    ("us-ord", "Chicago, IL", "us"),
    ("us-sea", "Seattle, WA", "us"),
    ("us-lax", "Los Angeles, CA", "us"),
    ("us-mia", "Miami, FL", "us"),
    ("ca-central", "Toronto, CA", "ca"),
    ("eu-west", "London, UK", "gb"),
    ("gb-lon", "London 2, UK", "gb"),
    ("eu-central", "Frankfurt, DE", "de"),
    ("de-fra-2", "Frankfurt 2, DE", "de"),
    ("fr-par", "Paris, FR", "fr"),
    ("nl-ams", "Amsterdam, NL", "nl"),
    ("se-sto", "Stockholm, SE", "se"),
    ("es-mad", "Madrid, ES", "es"),
    ("it-mil", "Milan, IT", "it"),
    ("ap-south", "Singapore, SG", "sg"),
    ("sg-sin-2", "Singapore 2, SG", "sg"),
    ("ap-northeast", "Tokyo 2, JP", "jp"),
    ("jp-osa", "Osaka, JP", "jp"),
    ("ap-west", "Mumbai, IN", "in"),
    ("in-maa", "Chennai, IN", "in"),
    ("ap-southeast", "Sydney, AU", "au"),
    ("au-mel", "Melbourne, AU", "au"),
    ("id-cgk", "Jakarta, ID", "id"),
    ("br-gru", "Sao Paulo, BR", "br"),
)

REGIONS: tuple[dict[str, Any], ...] = tuple(
    {
        "id": rid,
        "label": label,
        "country": country,
        "capabilities": list(_CORE),
        "status": "ok",
        # Name servers of the documentation ranges: the simulator's nodes never reach them.
        "resolvers": {"ipv4": "192.0.2.53,192.0.2.54", "ipv6": "2001:db8::53,2001:db8::54"},
        "placement_group_limits": {"maximum_pgs_per_customer": None, "maximum_linodes_per_pg": 5},
        "site_type": "core",
    }
    for rid, label, country in _REGION_ROWS
)

# (id, label, class, vcpus, memory MB, disk MB, transfer GB, network_out Mbps, monthly $)
_TYPE_ROWS = (
    ("g6-nanode-1", "Nanode 1GB", "nanode", 1, 1024, 25600, 1000, 1000, 5.0),
    ("g6-standard-1", "Linode 2GB", "standard", 1, 2048, 51200, 2000, 2000, 12.0),
    ("g6-standard-2", "Linode 4GB", "standard", 2, 4096, 81920, 4000, 4000, 24.0),
    ("g6-standard-4", "Linode 8GB", "standard", 4, 8192, 163840, 5000, 5000, 48.0),
    ("g6-standard-6", "Linode 16GB", "standard", 6, 16384, 327680, 8000, 6000, 96.0),
    ("g6-standard-8", "Linode 32GB", "standard", 8, 32768, 655360, 16000, 7000, 192.0),
    ("g6-dedicated-2", "Dedicated 4GB", "dedicated", 2, 4096, 81920, 4000, 4000, 36.0),
    ("g6-dedicated-4", "Dedicated 8GB", "dedicated", 4, 8192, 163840, 5000, 5000, 72.0),
    ("g6-dedicated-8", "Dedicated 16GB", "dedicated", 8, 16384, 327680, 6000, 6000, 144.0),
    ("g7-highmem-1", "Linode 24GB", "highmem", 2, 24576, 20480, 5000, 5000, 60.0),
)


def _price(monthly: float) -> dict[str, float]:
    return {"hourly": round(monthly / 730, 4), "monthly": monthly}


def _type(row: tuple[Any, ...], successor: str | None = None) -> dict[str, Any]:
    tid, label, klass, vcpus, memory, disk, transfer, network_out, monthly = row
    return {
        "id": tid,
        "label": label,
        "class": klass,
        "vcpus": vcpus,
        "memory": memory,
        "disk": disk,
        "transfer": transfer,
        "network_out": network_out,
        "gpus": 0,
        "price": _price(monthly),
        "region_prices": [],
        "addons": {"backups": {"price": _price(round(monthly / 5, 2)), "region_prices": []}},
        "successor": successor,
    }


TYPES: tuple[dict[str, Any], ...] = tuple(_type(row) for row in _TYPE_ROWS)
# Retired plans: not listed, yet a Linode can still be made of one (linode_api4's suite
# makes a g5-standard-1 Linode) and each is shown by its id, with its successor.
LEGACY_TYPES: tuple[dict[str, Any], ...] = (
    _type(
        ("g5-standard-1", "Linode 2GB", "standard", 1, 2048, 30720, 2000, 1000, 10.0),
        successor="g6-standard-1",
    ),
)

KERNELS: tuple[dict[str, Any], ...] = (
    {
        "id": "linode/grub2",
        "label": "GRUB 2",
        "version": "2.06",
        "kvm": True,
        "architecture": "x86_64",
        "pvops": True,
        "deprecated": False,
        "built": _CREATED,
    },
    {
        "id": "linode/latest-64bit",
        "label": "Latest 64 bit (6.8.9-x86_64-linode165)",
        "version": "6.8.9",
        "kvm": True,
        "architecture": "x86_64",
        "pvops": True,
        "deprecated": False,
        "built": _CREATED,
    },
    {
        "id": "linode/direct-disk",
        "label": "Direct Disk",
        "version": "",
        "kvm": True,
        "architecture": "x86_64",
        "pvops": False,
        "deprecated": False,
        "built": _CREATED,
    },
    {
        "id": "linode/grub-legacy",
        "label": "GRUB (Legacy)",
        "version": "2.06",
        "kvm": True,
        "architecture": "x86_64",
        "pvops": False,
        "deprecated": False,
        "built": _CREATED,
    },
    {
        "id": "linode/6.8.9-x86_64-linode165",
        "label": "6.8.9-x86_64-linode165",
        "version": "6.8.9",
        "kvm": True,
        "architecture": "x86_64",
        "pvops": True,
        "deprecated": False,
        "built": _CREATED,
    },
    {
        "id": "linode/latest-32bit",
        "label": "Latest 32 bit (4.19.x-linode)",
        "version": "4.19.0",
        "kvm": True,
        "architecture": "i386",
        "pvops": True,
        "deprecated": True,
        "built": _CREATED,
    },
)

# (id, label, vendor, size MB, deprecated[, capabilities]): cloud-init unless given. Older
# images are still listed, and deployable, as linodego's recorded listings show (debian10
# and debian9 without cloud-init); linode-cli's own suite deploys debian10 StackScripts.
_IMAGE_ROWS: tuple[tuple[Any, ...], ...] = (
    ("linode/debian13", "Debian 13", "Debian", 1500, False),
    ("linode/debian12", "Debian 12", "Debian", 1300, False),
    ("linode/debian11", "Debian 11", "Debian", 1100, True),
    ("linode/debian10", "Debian 10", "Debian", 1000, False, ()),
    ("linode/debian9", "Debian 9", "Debian", 1000, False, ()),
    ("linode/ubuntu24.04", "Ubuntu 24.04 LTS", "Ubuntu", 2500, False),
    ("linode/ubuntu22.04", "Ubuntu 22.04 LTS", "Ubuntu", 2500, False),
    ("linode/ubuntu20.04", "Ubuntu 20.04 LTS", "Ubuntu", 2500, True),
    ("linode/alpine3.20", "Alpine 3.20", "Alpine", 100, False),
    ("linode/alpine3.22", "Alpine 3.22", "Alpine", 100, False),
    ("linode/arch", "Arch Linux", "Arch", 1500, False),
)

IMAGES: tuple[dict[str, Any], ...] = tuple(
    {
        "id": iid,
        "label": label,
        "description": None,
        "created": _CREATED,
        "updated": _CREATED,
        "created_by": "linode",
        "deprecated": deprecated,
        "is_public": True,
        "size": size,
        "total_size": size,
        "status": "available",
        "type": "manual",
        "vendor": vendor,
        "expiry": None,
        "eol": None,
        "capabilities": list(rest[0] if rest else ("cloud-init",)),
        "tags": [],
        "regions": [],
    }
    for iid, label, vendor, size, deprecated, *rest in _IMAGE_ROWS
)


def _by_id(rows: tuple[dict[str, Any], ...]) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in rows}


_REGIONS, _TYPES, _KERNELS, _IMAGES = map(_by_id, (REGIONS, TYPES + LEGACY_TYPES, KERNELS, IMAGES))


Withheld = dict[str, tuple[str, ...]]


def _less(row: dict[str, Any] | None, withheld: Withheld | None) -> dict[str, Any] | None:
    """The row without the capabilities withheld from its id (an account or a moment where
    Linode does not offer them there: `swarmboot sim --withhold`)."""
    if row is None or not withheld or row["id"] not in withheld:
        return row
    gone = set(withheld[row["id"]])
    return {**row, "capabilities": [c for c in row["capabilities"] if c not in gone]}


def region(rid: str, withheld: Withheld | None = None) -> dict[str, Any] | None:
    return _less(_REGIONS.get(rid), withheld)


def plan_availability(row: dict[str, Any]) -> list[dict[str, Any]]:
    """A region's plans and whether each can be had there: all, where it has Linodes."""
    offered = "Linodes" in row["capabilities"]
    return [{"region": row["id"], "plan": t["id"], "available": offered} for t in TYPES]


def vpc_availability(row: dict[str, Any]) -> dict[str, Any]:
    """A region's VPC availability: where it has the VPCs capability; no IPv6 prefix lengths
    listed (the real API lists none, even where VPCs have IPv6: linodego's recordings)."""
    return {
        "region": row["id"],
        "available": "VPCs" in row["capabilities"],
        "available_ipv6_prefix_lengths": [],
    }


def regions(withheld: Withheld | None = None) -> list[dict[str, Any]]:
    return [_less(dict(r), withheld) for r in REGIONS]  # type: ignore[misc]


def type_(tid: str) -> dict[str, Any] | None:
    return _TYPES.get(tid)


def kernel(kid: str) -> dict[str, Any] | None:
    return _KERNELS.get(kid)


def image(iid: str, withheld: Withheld | None = None) -> dict[str, Any] | None:
    return _less(_IMAGES.get(iid), withheld)


def images(withheld: Withheld | None = None) -> list[dict[str, Any]]:
    return [_less(dict(i), withheld) for i in IMAGES]  # type: ignore[misc]
