"""Routed IPv6 ranges: /64 and /56 blocks of a region's pool, each routed to one Linode's
SLAAC address and shared with others of its region (`/networking/ipv6/ranges`,
`/networking/ips/share`, a Linode's `ipv6.global`, a public Linode interface's
`ipv6.ranges` and `ipv6.shared`).

The shapes are the real API's, as linode/linodego's recorded exchanges show them
(TestIPv6Range_Instance_List, TestIPv6Range_Share, TestIPAddress_Instance_Assign) and
spec 4.229.1 types them: a create answers `{range: "<first address>/<prefix>",
route_target}`; the list and a Linode's `ipv6.global` show `{range: "<first address>",
prefix, region, route_target}` (`route_target` null on a Linode the range is shared
with); one range shows `{range, prefix, region, is_bgp, linodes}`, `is_bgp` true while it
is shared and `linodes` its Linode and those it is shared with.

Models: they take the account's `World` and the address book, never the engine.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from swarmboot.sim.errors import bad_request, not_found
from swarmboot.sim.inputs import Body
from swarmboot.sim.model import Instance, Ipv6Range, World
from swarmboot.sim.network import AddressBook, Exhausted, NoRange

__all__ = [
    "PREFIXES",
    "allocate",
    "create",
    "delete",
    "forget_linode",
    "global_api",
    "list_api",
    "lookup",
    "one_api",
    "routed_to",
    "shared_to",
]

PREFIXES = (56, 64)


def _network(text: str) -> ipaddress.IPv6Network | None:
    """A range as a client names it: its first address, with or without its prefix."""
    try:
        if "/" in text:
            return ipaddress.IPv6Network(text, strict=True)
        return ipaddress.IPv6Network(f"{text}/128")
    except ValueError:
        return None


def lookup(world: World, text: str) -> Ipv6Range | None:
    """The account's range named by `text` (`2001:db8:8000::` or `2001:db8:8000::/64`)."""
    net = _network(text)
    if net is None:
        return None
    found = world.ipv6_ranges.get(str(net.network_address))
    if found is None or ("/" in text and net.prefixlen != found.prefix):
        return None
    return found


def routed_to(world: World, inst: Instance) -> list[Ipv6Range]:
    return [r for r in world.ipv6_ranges.values() if r.linode_id == inst.id]


def shared_to(world: World, inst: Instance) -> list[Ipv6Range]:
    return [r for r in world.ipv6_ranges.values() if inst.id in r.shared_with]


def _slaac(world: World, r: Ipv6Range) -> str | None:
    inst = world.instances.get(r.linode_id)
    return inst.ipv6.split("/")[0] if inst is not None else None


def allocate(world: World, book: AddressBook, inst: Instance, prefix: int, field: str) -> Ipv6Range:
    """A new range of the Linode's region, routed to its SLAAC address."""
    taken = [ipaddress.IPv6Network(r.cidr) for r in world.ipv6_ranges.values()]
    try:
        net = book.take_ipv6_range(inst.region, prefix, taken)
    except (Exhausted, NoRange):
        raise bad_request(f"No IPv6 /{prefix} ranges are left in {inst.region}", field) from None
    made = Ipv6Range(str(net.network_address), prefix, inst.region, inst.id)
    world.ipv6_ranges[made.range] = made
    return made


def create(world: World, book: AddressBook, raw: Any) -> dict[str, Any]:
    """POST /networking/ipv6/ranges: a range routed to a Linode, named by its id or by its
    SLAAC address (one of the two)."""
    body = Body(raw, frozenset({"prefix_length", "linode_id", "route_target"}))
    prefix = body.int("prefix_length", required=True)
    if prefix not in PREFIXES:
        raise bad_request("Must be 56 or 64", "prefix_length")
    linode_id, target = body.int("linode_id"), body.str("route_target")
    if linode_id is not None and target is not None:
        raise bad_request("Give linode_id or route_target, not both", "linode_id")
    if linode_id is not None:
        inst = world.instances.get(linode_id)
        if inst is None:
            raise bad_request(f"Linode {linode_id} not found", "linode_id")
    elif target is not None:
        inst = next(
            (i for i in world.instances.values() if _same_address(i.ipv6.split("/")[0], target)),
            None,
        )
        if inst is None:
            raise bad_request("Must be the SLAAC address of one of your Linodes", "route_target")
    else:
        raise bad_request("linode_id or route_target is required", "linode_id")
    made = allocate(world, book, inst, prefix, "prefix_length")
    return {"range": made.cidr, "route_target": inst.ipv6.split("/")[0]}


def _same_address(a: str, b: str) -> bool:
    try:
        return ipaddress.IPv6Address(a) == ipaddress.IPv6Address(b)
    except ValueError:
        return False


def _row(r: Ipv6Range, route_target: str | None) -> dict[str, Any]:
    return {"range": r.range, "prefix": r.prefix, "region": r.region, "route_target": route_target}


def list_api(world: World) -> list[dict[str, Any]]:
    """GET /networking/ipv6/ranges."""
    return [_row(r, _slaac(world, r)) for r in world.ipv6_ranges.values()]


def _in_path(world: World, text: str) -> Ipv6Range:
    """The range a path names: its first address alone, as the spec's path parameter says
    ("Omit the prefix length")."""
    r = lookup(world, text) if "/" not in text else None
    if r is None:
        raise not_found()
    return r


def one_api(world: World, text: str) -> dict[str, Any]:
    """GET /networking/ipv6/ranges/{range}."""
    r = _in_path(world, text)
    return {
        "range": r.range,
        "prefix": r.prefix,
        "region": r.region,
        "is_bgp": bool(r.shared_with),
        "linodes": [r.linode_id, *r.shared_with],
    }


def global_api(world: World, inst: Instance) -> list[dict[str, Any]]:
    """A Linode's `ipv6.global`: the ranges routed to it, then those shared with it."""
    slaac = inst.ipv6.split("/")[0]
    return [_row(r, slaac) for r in routed_to(world, inst)] + [
        _row(r, None) for r in shared_to(world, inst)
    ]


def delete(world: World, text: str) -> None:
    """DELETE /networking/ipv6/ranges/{range}: a shared range stays (the API reference:
    "Shared IPv6 ranges cannot be deleted at this time")."""
    r = _in_path(world, text)
    if r.shared_with:
        raise bad_request("Shared IPv6 ranges cannot be deleted", "range")
    del world.ipv6_ranges[r.range]


def forget_linode(world: World, linode_id: int) -> None:
    """A Linode is deleted: the ranges routed to it go, and it leaves those shared with it."""
    for key, r in list(world.ipv6_ranges.items()):
        if r.linode_id == linode_id:
            del world.ipv6_ranges[key]
        elif linode_id in r.shared_with:
            r.shared_with.remove(linode_id)
