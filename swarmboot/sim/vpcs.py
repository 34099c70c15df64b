"""VPCs and their subnets: the account's private networks, and the addresses interfaces
take in them.

A VPC lives in one region and holds subnets, each an RFC 1918 IPv4 range (prefix /1 to
/29) that overlaps neither 192.168.128.0/17 (Linode's private addresses) nor another subnet
of the VPC, as the spec's subnet description gives the rules. A VPC interface takes an
address of its subnet: the one asked for, or the lowest free one past the gateway (the
range's first host). A subnet with interfaces in it, or a VPC with such a subnet, cannot be
deleted.

These are records and rules, nothing of HTTP: each function is called with the simulator's
lock held and raises the API's errors.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from swarmboot.sim import catalog
from swarmboot.sim.errors import bad_request, not_found
from swarmboot.sim.inputs import Body
from swarmboot.sim.model import Config, Instance, LinodeInterface, Subnet, Vpc, World

__all__ = [
    "CAPABILITY",
    "config_interfaces_in",
    "create_subnet",
    "create_vpc",
    "delete_subnet",
    "delete_vpc",
    "ips",
    "subnet",
    "subnet_api",
    "take_address",
    "update_subnet",
    "update_vpc",
    "vpc",
    "vpc_api",
]

CAPABILITY = "VPCs"
# ASCII letters, digits and single hyphens (the spec: no two in a row).
_LABEL = re.compile(r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*")
_PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_LINODE_PRIVATE = ipaddress.ip_network("192.168.128.0/17")


def _label(value: Any, field: str) -> str:
    """The real API's words (linode_api4's and linode-cli's suites assert them)."""
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        raise bad_request("Length must be 1-64 characters", field)
    if not _LABEL.fullmatch(value):
        raise bad_request("Must only use ASCII letters, numbers, and dashes", field)
    return value


def _range(value: Any, field: str, others: list[str]) -> str:
    try:
        net = ipaddress.ip_network(value, strict=True) if isinstance(value, str) else None
    except ValueError:
        net = None
    if not isinstance(net, ipaddress.IPv4Network):
        raise bad_request("Must be an IPv4 range in CIDR canonical form", field)
    if not any(net.subnet_of(p) for p in _PRIVATE):
        raise bad_request("Must be an RFC 1918 private range", field)
    if not 1 <= net.prefixlen <= 29:
        raise bad_request("Prefix length must be between 1 and 29", field)
    if net.overlaps(_LINODE_PRIVATE):
        raise bad_request("Must not overlap 192.168.128.0/17", field)
    for other in others:
        if net.overlaps(ipaddress.ip_network(other)):
            raise bad_request(f"Overlaps subnet {other} of this VPC", field)
    return str(net)


def vpc(world: World, vpc_id: int) -> Vpc:
    found = world.vpcs.get(vpc_id)
    if found is None:
        raise not_found()
    return found


def subnet(world: World, vpc_id: int, subnet_id: int) -> Subnet:
    found = vpc(world, vpc_id).subnets.get(subnet_id)
    if found is None:
        raise not_found()
    return found


def _interfaces_in(world: World, subnet_id: int) -> Iterator[tuple[Instance, LinodeInterface]]:
    for inst in world.instances.values():
        for iface in inst.interfaces.values():
            if iface.kind == "vpc" and iface.subnet_id == subnet_id:
                yield inst, iface


def config_interfaces_in(
    world: World, subnet_id: int
) -> Iterator[tuple[Instance, Config, dict[str, Any]]]:
    """The config-profile (legacy) VPC interfaces in a subnet, with their Linode and profile."""
    for inst in world.instances.values():
        for cfg in inst.configs.values():
            for iface in cfg.interfaces:
                if iface.get("purpose") == "vpc" and iface.get("subnet_id") == subnet_id:
                    yield inst, cfg, iface


def _in_use(world: World, subnet_id: int) -> bool:
    return any(True for _ in _interfaces_in(world, subnet_id)) or any(
        True for _ in config_interfaces_in(world, subnet_id)
    )


def subnet_api(world: World, sub: Subnet) -> dict[str, Any]:
    linodes: dict[int, list[dict[str, Any]]] = {}
    for inst, iface in _interfaces_in(world, sub.id):
        linodes.setdefault(inst.id, []).append(
            {"id": iface.id, "active": inst.status == "running", "config_id": None}
        )
    for inst, cfg, legacy in config_interfaces_in(world, sub.id):
        linodes.setdefault(inst.id, []).append(
            {"id": legacy["id"], "active": inst.status == "running", "config_id": cfg.id}
        )
    return {
        "id": sub.id,
        "label": sub.label,
        "ipv4": sub.ipv4,
        "linodes": [{"id": i, "interfaces": f} for i, f in sorted(linodes.items())],
        "created": sub.created,
        "updated": sub.updated,
    }


def vpc_api(world: World, v: Vpc) -> dict[str, Any]:
    return {
        "id": v.id,
        "label": v.label,
        "description": v.description,
        "region": v.region,
        "subnets": [subnet_api(world, s) for s in v.subnets.values()],
        "created": v.created,
        "updated": v.updated,
    }


_SUBNET_FIELDS = frozenset({"label", "ipv4"})


def _new_subnet(world: World, v: Vpc, raw: Any, field: str, now: str) -> Subnet:
    body = Body(raw, _SUBNET_FIELDS)
    label = _label(body.str("label", required=True), f"{field}label")
    if any(s.label == label for s in v.subnets.values()):
        raise bad_request("Label must be unique among the VPC's subnets", f"{field}label")
    ipv4 = _range(
        body.str("ipv4", required=True), f"{field}ipv4", [s.ipv4 for s in v.subnets.values()]
    )
    sub = Subnet(id=world.new_id("subnet"), label=label, ipv4=ipv4, created=now, updated=now)
    v.subnets[sub.id] = sub
    return sub


def create_vpc(world: World, raw: Any, now: str) -> Vpc:
    body = Body(raw, frozenset({"label", "region", "description", "subnets"}))
    label = _label(body.str("label", required=True), "label")
    if any(v.label == label for v in world.vpcs.values()):
        raise bad_request("Label must be unique among your VPCs", "label")
    region = body.str("region", required=True) or ""
    found = catalog.region(region)
    if found is None:
        raise bad_request(f"Region {region} not found", "region")
    if CAPABILITY not in found.get("capabilities", []):
        raise bad_request(f"Region {region} does not support VPCs", "region")
    description = body.str("description", default="") or ""
    if len(description) > 255:
        raise bad_request("Description must be at most 255 characters", "description")
    subnets = body.raw.get("subnets") or []
    if not isinstance(subnets, list):
        raise bad_request("Must be a list of subnets", "subnets")
    # Checked whole before anything is kept: a VPC is made with all its subnets or not at all.
    draft = Vpc(id=0, label=label, region=region, description=description, created=now, updated=now)
    scratch = World(next_ids=dict(world.next_ids))
    for n, item in enumerate(subnets):
        _new_subnet(scratch, draft, item, f"subnets[{n}].", now)
    made = replace(draft, id=world.new_id("vpc"), subnets={})
    for item in draft.subnets.values():
        kept = Subnet(world.new_id("subnet"), item.label, item.ipv4, now, now)
        made.subnets[kept.id] = kept
    world.vpcs[made.id] = made
    return made


def update_vpc(world: World, vpc_id: int, raw: Any, now: str) -> Vpc:
    body = Body(raw, frozenset({"label", "description"}))
    v = vpc(world, vpc_id)
    if "label" in body:
        label = _label(body.str("label"), "label")
        if any(o.label == label and o.id != vpc_id for o in world.vpcs.values()):
            raise bad_request("Label must be unique among your VPCs", "label")
        v.label = label
    if "description" in body:
        description = body.str("description") or ""
        if len(description) > 255:
            raise bad_request("Description must be at most 255 characters", "description")
        v.description = description
    v.updated = now
    return v


def delete_vpc(world: World, vpc_id: int) -> None:
    v = vpc(world, vpc_id)
    for sub in v.subnets.values():
        if _in_use(world, sub.id):
            raise bad_request(
                f"Subnet {sub.label} has interfaces; delete them before the VPC", "vpc_id"
            )
    del world.vpcs[vpc_id]


def create_subnet(world: World, vpc_id: int, raw: Any, now: str) -> Subnet:
    Body(raw, _SUBNET_FIELDS)  # a body that is no object is refused before the VPC is looked for
    v = vpc(world, vpc_id)
    sub = _new_subnet(world, v, raw, "", now)
    v.updated = now
    return sub


def update_subnet(world: World, vpc_id: int, subnet_id: int, raw: Any, now: str) -> Subnet:
    body = Body(raw, frozenset({"label"}))
    v = vpc(world, vpc_id)
    sub = subnet(world, vpc_id, subnet_id)
    if "label" in body:
        label = _label(body.str("label"), "label")
        if any(s.label == label and s.id != subnet_id for s in v.subnets.values()):
            raise bad_request("Label must be unique among the VPC's subnets", "label")
        sub.label = label
    sub.updated = now
    return sub


def delete_subnet(world: World, vpc_id: int, subnet_id: int) -> None:
    v = vpc(world, vpc_id)
    subnet(world, vpc_id, subnet_id)
    if _in_use(world, subnet_id):
        raise bad_request("The subnet has interfaces; delete them first", "subnet_id")
    del v.subnets[subnet_id]


def find_subnet(world: World, subnet_id: int) -> tuple[Vpc, Subnet] | None:
    for v in world.vpcs.values():
        if subnet_id in v.subnets:
            return v, v.subnets[subnet_id]
    return None


def subnet_for(world: World, subnet_id: int, region: str, field: str) -> tuple[Vpc, Subnet]:
    """The subnet an interface of a Linode in `region` names (`field`: where the body names
    it): a 400 when there is none, or when it is in another region."""
    found = find_subnet(world, subnet_id)
    if found is None:
        raise bad_request(f"Subnet {subnet_id} not found", field)
    if found[0].region != region:
        raise bad_request(
            f"Subnet {subnet_id} is in {found[0].region}, the Linode in {region}", field
        )
    return found


def take_address(
    world: World, sub: Subnet, wanted: str | None, field: str, taken: set[str] = frozenset()
) -> str:
    """An address of the subnet for a new interface: `wanted`, or the lowest free one past
    the gateway (`auto` or none); `taken` are held by interfaces not made yet."""
    net = ipaddress.ip_network(sub.ipv4)
    used = {iface.vpc_address for _, iface in _interfaces_in(world, sub.id)} | set(taken)
    used |= {i["ipv4"]["vpc"] for _, _, i in config_interfaces_in(world, sub.id)}
    hosts = list(net.hosts())
    gateway = str(hosts[0])
    if wanted not in (None, "auto"):
        try:
            address = ipaddress.ip_address(wanted)
        except ValueError:
            raise bad_request("Must be an IPv4 address or auto", field) from None
        if address not in net or str(address) == gateway or address == net.broadcast_address:
            raise bad_request(f"Must be a host address of {sub.ipv4} past its gateway", field)
        if str(address) in used:
            raise bad_request(f"{address} is already in use in this subnet", field)
        return str(address)
    for host in hosts[1:]:
        if str(host) not in used:
            return str(host)
    raise bad_request(f"No addresses are left in {sub.ipv4}", field)


def ips(world: World, vpc_id: int | None = None) -> list[dict[str, Any]]:
    """The VPC addresses of the account's interfaces (of one VPC with `vpc_id`)."""
    rows = []
    for v in world.vpcs.values():
        if vpc_id is not None and v.id != vpc_id:
            continue
        for sub in v.subnets.values():
            net = ipaddress.ip_network(sub.ipv4)
            for inst, iface in _interfaces_in(world, sub.id):
                rows.append(
                    {
                        "address": iface.vpc_address,
                        "address_range": None,
                        "vpc_id": v.id,
                        "subnet_id": sub.id,
                        "region": v.region,
                        "linode_id": inst.id,
                        "config_id": None,
                        "interface_id": iface.id,
                        "active": inst.status == "running",
                        "nat_1_1": iface.nat_1_1,
                        "gateway": str(next(net.hosts())),
                        "prefix": net.prefixlen,
                        "subnet_mask": str(net.netmask),
                    }
                )
            for inst, cfg, legacy in config_interfaces_in(world, sub.id):
                rows.append(
                    {
                        "address": legacy["ipv4"]["vpc"],
                        "address_range": None,
                        "vpc_id": v.id,
                        "subnet_id": sub.id,
                        "region": v.region,
                        "linode_id": inst.id,
                        "config_id": cfg.id,
                        "interface_id": legacy["id"],
                        "active": inst.status == "running",
                        "nat_1_1": legacy["ipv4"]["nat_1_1"],
                        "gateway": str(next(net.hosts())),
                        "prefix": net.prefixlen,
                        "subnet_mask": str(net.netmask),
                    }
                )
    return rows
