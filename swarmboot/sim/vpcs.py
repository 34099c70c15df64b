"""VPCs and their subnets: the account's private networks, and the addresses interfaces
take in them.

A VPC lives in one region and has IPv4 ranges (Linode's defaults, 10.0.0.0/8,
172.16.0.0/12 and 192.168.0.0/17, or its own where the region has `Custom VPC IPv4
Ranges`), maybe an IPv6 range (a /52, dual stack, where the region has `VPC IPv6 Stack`)
and a type (`regular`, or `rdma`, which has no IPv6). Its subnets each have an IPv4 range
(prefix /1 to /29) inside the VPC's ranges and overlapping no other subnet of the VPC, and
maybe an IPv6 range carved from the VPC's (a /56 unless asked otherwise). A VPC interface
takes an address of its subnet: the one asked for, or the lowest free one past the gateway
(the range's first host); routed IPv4 ranges of the subnet; and in a subnet with IPv6, a
/64 of it for SLAAC. A subnet with interfaces in it, or a VPC with such a subnet, cannot be
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
from swarmboot.sim.errors import ApiError, Problem, bad_request, not_found
from swarmboot.sim.inputs import Body
from swarmboot.sim.model import (
    DEFAULT_VPC_IPV4,
    Config,
    Instance,
    LinodeInterface,
    Subnet,
    Vpc,
    World,
    slaac_address,
)

__all__ = [
    "CAPABILITY",
    "CUSTOM_IPV4",
    "IPV6_STACK",
    "config_interfaces_in",
    "create_subnet",
    "create_vpc",
    "default_ranges",
    "delete_subnet",
    "delete_vpc",
    "interface_ipv6",
    "ips",
    "ipv6s",
    "nat_1_1_of",
    "subnet",
    "subnet_api",
    "take_address",
    "take_ranges",
    "update_subnet",
    "update_vpc",
    "vpc",
    "vpc_api",
]

CAPABILITY = "VPCs"
CUSTOM_IPV4 = "Custom VPC IPv4 Ranges"
IPV6_STACK = "VPC IPv6 Stack"
VPC_TYPES = ("regular", "rdma")
# ASCII letters, digits and single hyphens (the spec: no two in a row).
_LABEL = re.compile(r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*")
# Ranges no VPC may use, beside the regions' public ranges: "this network", loopback,
# link-local, multicast (all in the real API's `forbidden_ipv4_ranges`) and Linode's
# private addresses.
_FORBIDDEN = ("0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "192.168.128.0/17", "224.0.0.0/4")
# VPC IPv6 ranges come from 3fff::/20, the IPv6 documentation prefix (RFC 9637): never
# routed, and apart from the Linodes' SLAAC addresses in 2001:db8::/32.
_IPV6_POOL = ipaddress.IPv6Network("3fff::/20")
_VPC_IPV6_PREFIX = 52  # a VPC's range (`auto`, or asked for as `/52`)
_SUBNET_IPV6_PREFIX = 56  # a subnet's unless asked otherwise (`/56` to `/64`)
_SLAAC_PREFIX = 64  # an interface's SLAAC range


def _label(value: Any, field: str) -> str:
    """The real API's words (linode_api4's and linode-cli's suites assert them)."""
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        raise bad_request("Length must be 1-64 characters", field)
    if not _LABEL.fullmatch(value):
        raise bad_request("Must only use ASCII letters, numbers, and dashes", field)
    return value


def _network(value: Any, field: str, version: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A network in CIDR form (`10.0.0.0/24`), as the real API's words have it: a bare
    address or anything else is "Must be an IPv4 network" (or IPv6)."""
    try:
        net = (
            ipaddress.ip_network(value, strict=False)
            if isinstance(value, str) and "/" in value
            else None
        )
    except ValueError:
        net = None
    if net is None or net.version != version:
        raise bad_request(f"Must be an IPv{version} network", field)
    if str(net) != value.lower():
        raise bad_request(f"Must be an IPv{version} network in canonical form ({net})", field)
    return net


def _range(value: Any, field: str, others: list[str], within: list[str]) -> str:
    net = _network(value, field, 4)
    if not 1 <= net.prefixlen <= 29:
        raise bad_request("Prefix length must be between 1 and 29", field)
    if not any(net.subnet_of(ipaddress.ip_network(r)) for r in within):
        raise bad_request(f"Must be within the VPC's IPv4 ranges ({', '.join(within)})", field)
    for other in others:
        if net.overlaps(ipaddress.ip_network(other)):
            raise bad_request(f"Overlaps subnet {other} of this VPC", field)
    return str(net)


def default_ranges(public: list[str]) -> dict[str, list[str]]:
    """GET /vpcs/default-ranges: a VPC's default IPv4 ranges (in the order the real API
    lists them there) and those none may use (the regions' `public` ranges among them)."""
    forbidden = sorted({*_FORBIDDEN, *public}, key=ipaddress.ip_network)
    return {
        "default_ipv4_ranges": ["10.0.0.0/8", "192.168.0.0/17", "172.16.0.0/12"],
        "forbidden_ipv4_ranges": forbidden,
    }


def _vpc_ipv4(raw: Any, region: dict[str, Any], forbidden: list[str]) -> list[str]:
    """A VPC's own IPv4 ranges (`ipv4: [{"range": ...}]`), where the region allows them."""
    if not isinstance(raw, list) or not raw or not all(isinstance(i, dict) for i in raw):
        raise bad_request("Must be a list of ranges", "ipv4")
    if CUSTOM_IPV4 not in region.get("capabilities", []):
        raise bad_request("Customer defined IPv4 ranges are not supported in this region", "ipv4")
    kept: list[ipaddress.IPv4Network] = []
    for n, item in enumerate(raw):
        field = f"ipv4[{n}].range"
        net = _network(Body(item, frozenset({"range"})).str("range", required=True), field, 4)
        if not 1 <= net.prefixlen <= 29:
            raise bad_request("Prefix length must be between 1 and 29", field)
        clash = next((f for f in forbidden if net.overlaps(ipaddress.ip_network(f))), None)
        if clash is not None:
            raise bad_request(f"Must not overlap the forbidden range {clash}", field)
        if any(net.overlaps(k) for k in kept):
            raise bad_request("Overlaps another range of this VPC", field)
        kept.append(net)
    return [str(k) for k in kept]


def _free_block(
    within: ipaddress.IPv6Network, prefix: int, used: list[str], field: str
) -> ipaddress.IPv6Network:
    taken = [ipaddress.ip_network(u) for u in used]
    for block in within.subnets(new_prefix=prefix):
        if not any(block.overlaps(t) for t in taken):
            return block
    raise bad_request(f"No /{prefix} is left in {within}", field)


def _ipv6_block(
    raw: Any, field: str, within: ipaddress.IPv6Network, prefixes: range, used: list[str]
) -> str:
    """One IPv6 range of `within`, free of `used`: `auto` (the lowest free block of the
    first, default prefix of `prefixes`), `/N` (the lowest free block of that prefix), or
    a range named."""
    value = raw if raw is not None else "auto"
    if value == "auto":
        return str(_free_block(within, prefixes[0], used, field))
    if isinstance(value, str) and value.startswith("/"):
        if not value[1:].isdigit() or int(value[1:]) not in prefixes:
            raise bad_request(
                f"Must be auto, a prefix length /{prefixes[0]} to /{prefixes[-1]}, or a range",
                field,
            )
        return str(_free_block(within, int(value[1:]), used, field))
    net = _network(value, field, 6)
    if net.prefixlen not in prefixes or not net.subnet_of(within):
        raise bad_request(f"Must be a /{prefixes[0]} to /{prefixes[-1]} range of {within}", field)
    if any(net.overlaps(ipaddress.ip_network(u)) for u in used):
        raise bad_request(f"{net} is already in use", field)
    return str(net)


def _one_range(raw: Any, field: str) -> Any:
    """The `range` of a one-item `ipv6: [{"range": ...}]` list (None: not given)."""
    if raw is None:
        return None
    if not isinstance(raw, list) or len(raw) != 1 or not isinstance(raw[0], dict):
        raise bad_request("Must be a list of one range", field)
    return Body(raw[0], frozenset({"range", "allocation_class"})).raw.get("range", "auto")


def _vpc_ipv6(world: World, raw: Any, region: dict[str, Any], vpc_type: str) -> list[str] | None:
    if raw is None:
        return None
    if vpc_type == "rdma":
        raise bad_request("RDMA VPCs cannot have IPv6 ranges", "ipv6")
    if IPV6_STACK not in region.get("capabilities", []):
        raise bad_request(f"Region {region['id']} does not support IPv6 VPCs", "ipv6")
    value = _one_range(raw, "ipv6")
    used = [r for v in world.vpcs.values() for r in v.ipv6 or []]
    # The pool's first /52 stays unused: no VPC's range is written as the bare prefix.
    used.append(str(next(_IPV6_POOL.subnets(new_prefix=_VPC_IPV6_PREFIX))))
    prefixes = range(_VPC_IPV6_PREFIX, _VPC_IPV6_PREFIX + 1)
    return [_ipv6_block(value, "ipv6[0].range", _IPV6_POOL, prefixes, used)]


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


def subnet_api(world: World, sub: Subnet, v: Vpc | None = None) -> dict[str, Any]:
    v = v or _vpc_of(world, sub.id)
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
        "ipv6": None if sub.ipv6 is None else [{"range": r} for r in sub.ipv6],
        "linodes": [{"id": i, "interfaces": f} for i, f in sorted(linodes.items())],
        "databases": [],
        "nodebalancers": [],
        "vpc_type": v.vpc_type,
        "created": sub.created,
        "updated": sub.updated,
    }


def vpc_api(world: World, v: Vpc) -> dict[str, Any]:
    return {
        "id": v.id,
        "label": v.label,
        "description": v.description,
        "region": v.region,
        "ipv4": [{"range": r} for r in v.ipv4],
        "ipv6": None if v.ipv6 is None else [{"range": r} for r in v.ipv6],
        "subnets": [subnet_api(world, s, v) for s in v.subnets.values()],
        "vpc_type": v.vpc_type,
        "created": v.created,
        "updated": v.updated,
    }


_SUBNET_FIELDS = frozenset({"label", "ipv4", "ipv6"})


def _subnet_ipv6(v: Vpc, raw: Any, field: str) -> list[str] | None:
    if raw is None:
        return None
    value = _one_range(raw, f"{field}ipv6")
    if v.ipv6 is None:
        raise bad_request("The VPC has no IPv6 range", f"{field}ipv6")
    used = [r for s in v.subnets.values() for r in s.ipv6 or []]
    prefixes = range(_SUBNET_IPV6_PREFIX, _SLAAC_PREFIX + 1)
    within = ipaddress.IPv6Network(v.ipv6[0])
    return [_ipv6_block(value, f"{field}ipv6[0].range", within, prefixes, used)]


def _new_subnet(world: World, v: Vpc, raw: Any, field: str, now: str) -> Subnet:
    """A subnet of `v`, its label, IPv4 and IPv6 checked each: every one wrong is named in
    one answer, as the real API's are (linode_api4's suite finds `ipv6[0].range` among
    them)."""
    body = Body(raw, _SUBNET_FIELDS)
    problems: list[Problem] = []

    def check(fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except ApiError as error:
            problems.extend(error.problems)
            return None

    label = check(_label, body.str("label", required=True), f"{field}label")
    if label is not None and any(s.label == label for s in v.subnets.values()):
        problems.append(Problem("Label must be unique among the VPC's subnets", f"{field}label"))
    others = [s.ipv4 for s in v.subnets.values()]
    ipv4 = check(_range, body.str("ipv4", required=True), f"{field}ipv4", others, v.ipv4)
    ipv6 = check(_subnet_ipv6, v, body.raw.get("ipv6"), field)
    if problems:
        raise ApiError(400, tuple(problems))
    sub = Subnet(world.new_id("subnet"), label, ipv4, now, now, ipv6)
    v.subnets[sub.id] = sub
    return sub


def create_vpc(
    world: World, raw: Any, now: str, withheld: Any = None, forbidden: list[str] = ()
) -> Vpc:
    """POST /vpcs (`withheld`: the catalogue's capabilities withheld; `forbidden`: the IPv4
    ranges no VPC may use, as `default_ranges` lists them)."""
    body = Body(raw, frozenset({"label", "region", "description", "subnets", *_VPC_EXTRA}))
    label = _label(body.str("label", required=True), "label")
    if any(v.label == label for v in world.vpcs.values()):
        raise bad_request("Label must be unique among your VPCs", "label")
    region = body.str("region", required=True) or ""
    found = catalog.region(region, withheld)
    if found is None:
        raise bad_request(f"Region {region} not found", "region")
    if CAPABILITY not in found.get("capabilities", []):
        raise bad_request(f"Region {region} does not support VPCs", "region")
    description = body.str("description", default="") or ""
    if len(description) > 255:
        raise bad_request("Description must be at most 255 characters", "description")
    vpc_type = body.str("vpc_type", default="regular") or "regular"
    if vpc_type not in VPC_TYPES:
        raise bad_request(f"Must be one of {', '.join(VPC_TYPES)}", "vpc_type")
    ipv4 = list(DEFAULT_VPC_IPV4)
    if body.raw.get("ipv4") is not None:
        ipv4 = _vpc_ipv4(body.raw["ipv4"], found, list(forbidden))
    ipv6 = _vpc_ipv6(world, body.raw.get("ipv6"), found, vpc_type)
    subnets = body.raw.get("subnets") or []
    if not isinstance(subnets, list):
        raise bad_request("Must be a list of subnets", "subnets")
    # Checked whole before anything is kept: a VPC is made with all its subnets or not at all.
    draft = Vpc(
        id=0,
        label=label,
        region=region,
        description=description,
        created=now,
        updated=now,
        ipv4=ipv4,
        ipv6=ipv6,
        vpc_type=vpc_type,
    )
    scratch = World(next_ids=dict(world.next_ids))
    for n, item in enumerate(subnets):
        _new_subnet(scratch, draft, item, f"subnets[{n}].", now)
    made = replace(draft, id=world.new_id("vpc"), subnets={})
    for item in draft.subnets.values():
        kept = replace(item, id=world.new_id("subnet"))
        made.subnets[kept.id] = kept
    world.vpcs[made.id] = made
    return made


_VPC_EXTRA = frozenset({"ipv4", "ipv6", "vpc_type"})


def update_vpc(
    world: World, vpc_id: int, raw: Any, now: str, withheld: Any = None, forbidden: list[str] = ()
) -> Vpc:
    """PUT /vpcs/{id}: its label, description and own IPv4 ranges (which must still hold
    its subnets), all checked before any is changed."""
    body = Body(raw, frozenset({"label", "description", "ipv4"}))
    v = vpc(world, vpc_id)
    ranges, label, description = v.ipv4, v.label, v.description
    if body.raw.get("ipv4") is not None:
        ranges = _vpc_ipv4(body.raw["ipv4"], catalog.region(v.region, withheld) or {}, forbidden)
        for sub in v.subnets.values():
            net = ipaddress.ip_network(sub.ipv4)
            if not any(net.subnet_of(ipaddress.ip_network(r)) for r in ranges):
                raise bad_request(f"Subnet {sub.label} ({sub.ipv4}) would lie outside", "ipv4")
    if "label" in body:
        label = _label(body.str("label"), "label")
        if any(o.label == label and o.id != vpc_id for o in world.vpcs.values()):
            raise bad_request("Label must be unique among your VPCs", "label")
    if "description" in body:
        description = body.str("description") or ""
        if len(description) > 255:
            raise bad_request("Description must be at most 255 characters", "description")
    v.ipv4, v.label, v.description, v.updated = ranges, label, description, now
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


def _vpc_of(world: World, subnet_id: int) -> Vpc:
    found = find_subnet(world, subnet_id)
    if found is None:
        raise not_found()
    return found[0]


def _held(world: World, subnet_id: int) -> list[str]:
    """The IPv4 addresses (as /32s) and routed ranges the subnet's interfaces hold."""
    held = []
    for _, iface in _interfaces_in(world, subnet_id):
        held += [f"{iface.vpc_address}/32", *iface.vpc_ranges]
    for _, _, legacy in config_interfaces_in(world, subnet_id):
        held += [f"{legacy['ipv4']['vpc']}/32", *(legacy.get("ip_ranges") or [])]
    return held


def _clashes(net: Any, held: list[str]) -> bool:
    return any(net.overlaps(ipaddress.ip_network(h)) for h in held)


def take_address(
    world: World,
    sub: Subnet,
    wanted: str | None,
    field: str,
    taken: set[str] = frozenset(),
    mine: list[str] = (),
) -> str:
    """An address of the subnet for a new interface: `wanted`, or the lowest free one past
    the gateway (`auto` or none); `taken` are held by interfaces not made yet, `mine` by
    the interface itself (free for its new choice)."""
    net = ipaddress.ip_network(sub.ipv4)
    held = [h for h in _held(world, sub.id) if h not in mine] + [f"{t}/32" for t in taken]
    gateway = net.network_address + 1
    if wanted not in (None, "auto"):
        try:
            address = ipaddress.ip_address(wanted)
        except ValueError:
            raise bad_request("Must be an IPv4 address or auto", field) from None
        if address not in net or address <= gateway or address == net.broadcast_address:
            raise bad_request(f"Must be a host address of {sub.ipv4} past its gateway", field)
        if _clashes(ipaddress.ip_network(f"{address}/32"), held):
            raise bad_request(f"{address} is already in use in this subnet", field)
        return str(address)
    address = gateway + 1
    while address < net.broadcast_address:
        if not _clashes(ipaddress.ip_network(f"{address}/32"), held):
            return str(address)
        address += 1
    raise bad_request(f"No addresses are left in {sub.ipv4}", field)


def take_ranges(
    world: World,
    sub: Subnet,
    wanted: list[str],
    field: str,
    mine: list[str] = (),
    taken: list[str] = (),
) -> list[str]:
    """Routed IPv4 ranges of the subnet for an interface: each `/N` (the lowest free block
    of that size past the gateway) or a range of the subnet, free of the addresses and
    ranges other interfaces hold (`mine`: the interface's own, free for it; `taken`: held
    by interfaces not made yet)."""
    net = ipaddress.ip_network(sub.ipv4)
    held = [h for h in _held(world, sub.id) if h not in mine] + list(taken)
    # The network's own address, the gateway and the broadcast address are no one's.
    held += [f"{a}/32" for a in (net.network_address, net.network_address + 1)]
    held.append(f"{net.broadcast_address}/32")
    made: list[str] = []
    for n, value in enumerate(wanted):
        where = f"{field}[{n}]"
        if isinstance(value, str) and value.startswith("/") and value[1:].isdigit():
            prefix = int(value[1:])
            if not net.prefixlen < prefix <= 32:
                raise bad_request(f"Must be /{net.prefixlen + 1} to /32", where)
            block = next(
                (b for b in net.subnets(new_prefix=prefix) if not _clashes(b, held + made)),
                None,
            )
            if block is None:
                raise bad_request(f"No {value} is left in {sub.ipv4}", where)
        else:
            block = _network(value, where, 4)
            if not block.subnet_of(net):
                raise bad_request(f"Must be a range of {sub.ipv4}", where)
            if _clashes(block, held + made):
                raise bad_request(f"{block} is already in use in this subnet", where)
        made.append(str(block))
    return made


def _held_ipv6(world: World, subnet_id: int) -> list[str]:
    held = [i.vpc_ipv6 for _, i in _interfaces_in(world, subnet_id) if i.vpc_ipv6]
    for _, _, legacy in config_interfaces_in(world, subnet_id):
        held += [s["range"] for s in (legacy.get("ipv6") or {}).get("slaac", [])]
    return held


def interface_ipv6(
    world: World, sub: Subnet, raw: Any, field: str, mine: str | None = None
) -> tuple[str | None, bool]:
    """A VPC interface's IPv6 (`ipv6: {"slaac": [{"range": ...}], "ranges": [],
    "is_public": ...}`): in a subnet with IPv6, a /64 of it for SLAAC (`auto`, `/64` or one
    named; `auto` when not asked for) and whether it is public (not unless asked); in a
    subnet without, none. Routed IPv6 ranges are not modelled."""
    body = Body(raw or {}, frozenset({"slaac", "ranges", "is_public"}))
    if body.raw.get("ranges"):
        raise bad_request(
            "The simulator routes no IPv6 ranges to VPC interfaces", f"{field}.ranges"
        )
    slaac = body.raw.get("slaac")
    if sub.ipv6 is None:
        if slaac or body.raw.get("is_public"):
            raise bad_request("The subnet has no IPv6 range", field)
        return None, False
    if slaac is not None and (not isinstance(slaac, list) or len(slaac) > 1):
        raise bad_request("Must be a list of one SLAAC range", f"{field}.slaac")
    item = Body((slaac or [{}])[0], frozenset({"range", "address"}))
    held = [h for h in _held_ipv6(world, sub.id) if h != mine]
    within = ipaddress.IPv6Network(sub.ipv6[0])
    value = item.raw.get("range", "auto")
    if value == mine and mine is not None:
        network = mine
    else:
        prefixes = range(_SLAAC_PREFIX, _SLAAC_PREFIX + 1)
        network = _ipv6_block(value, f"{field}.slaac[0].range", within, prefixes, held)
    return network, bool(body.bool("is_public", default=False))


def nat_1_1_of(world: World, inst: Instance, address: str) -> dict[str, Any] | None:
    """The VPC address a public IPv4 address of the Linode maps 1:1 to (`vpc_nat_1_1`)."""
    for iface in inst.interfaces.values():
        if iface.kind == "vpc" and iface.nat_1_1 == address:
            return {
                "vpc_id": iface.vpc_id,
                "subnet_id": iface.subnet_id,
                "address": iface.vpc_address,
            }
    for cfg in inst.configs.values():
        for legacy in cfg.interfaces:
            if legacy.get("purpose") == "vpc" and legacy["ipv4"].get("nat_1_1") == address:
                return {
                    "vpc_id": legacy["vpc_id"],
                    "subnet_id": legacy["subnet_id"],
                    "address": legacy["ipv4"]["vpc"],
                }
    return None


def _whose(v: Vpc, sub: Subnet, held: dict[str, Any]) -> dict[str, Any]:
    """The fields of a VPC address row (`/vpcs/ips`, `/vpcs/ipv6s`) that say whose it is."""
    inst = held["inst"]
    return {
        "vpc_id": v.id,
        "subnet_id": sub.id,
        "region": v.region,
        "linode_id": inst.id,
        "config_id": held["config_id"],
        "interface_id": held["interface_id"],
        "active": inst.status == "running",
    }


def _holders(world: World, v: Vpc, sub: Subnet) -> Iterator[dict[str, Any]]:
    """Each interface of the subnet as one record: its Linode, profile, id, addresses."""
    for inst, iface in _interfaces_in(world, sub.id):
        yield {
            "inst": inst,
            "config_id": None,
            "interface_id": iface.id,
            "address": iface.vpc_address,
            "ranges": iface.vpc_ranges,
            "nat_1_1": iface.nat_1_1,
            "ipv6": iface.vpc_ipv6,
            "ipv6_public": iface.vpc_ipv6_public,
        }
    for inst, cfg, legacy in config_interfaces_in(world, sub.id):
        slaac = (legacy.get("ipv6") or {}).get("slaac") or [{}]
        yield {
            "inst": inst,
            "config_id": cfg.id,
            "interface_id": legacy["id"],
            "address": legacy["ipv4"]["vpc"],
            "ranges": legacy.get("ip_ranges") or [],
            "nat_1_1": legacy["ipv4"]["nat_1_1"],
            "ipv6": slaac[0].get("range"),
            "ipv6_public": bool((legacy.get("ipv6") or {}).get("is_public")),
        }


def ips(
    world: World, vpc_id: int | None = None, linode_id: int | None = None
) -> list[dict[str, Any]]:
    """The VPC IPv4 addresses and routed ranges of interfaces (of one VPC with `vpc_id`, of
    one Linode with `linode_id`): an address's row, then one per range."""
    rows = []
    for v in world.vpcs.values():
        if vpc_id is not None and v.id != vpc_id:
            continue
        for sub in v.subnets.values():
            net = ipaddress.ip_network(sub.ipv4)
            for held in _holders(world, v, sub):
                inst = held["inst"]
                if linode_id is not None and inst.id != linode_id:
                    continue
                row = {
                    "address": held["address"],
                    "address_range": None,
                    **_whose(v, sub, held),
                    "nat_1_1": held["nat_1_1"],
                    "gateway": str(net.network_address + 1),
                    "prefix": net.prefixlen,
                    "subnet_mask": str(net.netmask),
                }
                rows.append(row)
                rows += [
                    {**row, "address": None, "address_range": r, "nat_1_1": None}
                    for r in held["ranges"]
                ]
    return rows


def ipv6s(
    world: World, vpc_id: int | None = None, linode_id: int | None = None
) -> list[dict[str, Any]]:
    """GET /vpcs/ipv6s (`/vpcs/{id}/ipv6s`): each VPC interface's IPv6 SLAAC range and
    address, in the rows linodego's recorded answers show (the IPv4 fields empty)."""
    rows = []
    for v in world.vpcs.values():
        if vpc_id is not None and v.id != vpc_id:
            continue
        for sub in v.subnets.values():
            for held in _holders(world, v, sub):
                inst = held["inst"]
                if held["ipv6"] is None or linode_id not in (None, inst.id):
                    continue
                rows.append(
                    {
                        "address": None,
                        "address_range": None,
                        **_whose(v, sub, held),
                        "nodebalancer_id": None,
                        "database_id": None,
                        "nat_1_1": "",
                        "gateway": None,
                        "prefix": _SLAAC_PREFIX,
                        "subnet_mask": "",
                        "ipv6_range": held["ipv6"],
                        "ipv6_is_public": held["ipv6_public"],
                        "ipv6_addresses": [
                            {"slaac_address": slaac_address(held["ipv6"], held["interface_id"])}
                        ],
                    }
                )
    return rows
