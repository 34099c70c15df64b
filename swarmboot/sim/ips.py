"""A Linode's IPv4 addresses beyond its first: more public ones, a private one, reverse DNS,
and addresses (and IPv6 ranges) shared to it by other Linodes of its region
(`/networking/ips`, `/linode/instances/{id}/ips`).

A Linode of the `linode` interface generation gets more public addresses through its
public interface (`auto`) and loses them by leaving them out of it, not here: the API
reference's "Allocate an IP address" and "Delete an IPv4 address" refuse those Linodes and
their interfaces' addresses.

Models: they take the account's `World` and the address book, never the engine."""

from __future__ import annotations

import ipaddress
from typing import Any

from swarmboot.sim import ipv6, vpcs
from swarmboot.sim.errors import bad_request, not_found
from swarmboot.sim.inputs import Body
from swarmboot.sim.model import Instance, World
from swarmboot.sim.network import AddressBook, Exhausted, NoRange

__all__ = [
    "address_api",
    "all_addresses",
    "allocate",
    "carrier",
    "find",
    "linode_ips",
    "remove",
    "set_rdns",
    "share",
]


def _rdns(inst: Instance, address: str, public: bool) -> str | None:
    if address in inst.rdns:
        return inst.rdns[address]
    return f"{address.replace('.', '-')}.ip.linodeusercontent.com" if public else None


def carrier(inst: Instance, address: str) -> int | None:
    """The id of the Linode interface that carries this address of the Linode, if any."""
    for iface in inst.interfaces.values():
        if any(a["address"] == address for a in iface.ipv4_addresses):
            return iface.id
    return None


def address_api(
    book: AddressBook, inst: Instance, address: str, world: World | None = None
) -> dict[str, Any]:
    """One IPv4 address of a Linode as the API shows it (`interface_id`: the Linode
    interface it is on; with `world`: the VPC address it maps 1:1 to, if any, as
    `vpc_nat_1_1`)."""
    public = address != inst.ipv4_private
    net = book.public_network(inst.region) if public else book.private_network(inst.region)
    return {
        "address": address,
        "gateway": str(net.network_address + 1) if public else None,
        "subnet_mask": str(net.netmask),
        "prefix": net.prefixlen,
        "type": "ipv4",
        "public": public,
        "rdns": _rdns(inst, address, public),
        "linode_id": inst.id,
        "interface_id": carrier(inst, address),
        "region": inst.region,
        "vpc_nat_1_1": vpcs.nat_1_1_of(world, inst, address) if world else None,
        "reserved": False,
    }


def _own(inst: Instance) -> list[str]:
    return [inst.ipv4_public, *inst.extra_public] + (
        [inst.ipv4_private] if inst.ipv4_private else []
    )


def find(world: World, address: str) -> tuple[Instance, str]:
    for inst in world.instances.values():
        if address in _own(inst):
            return inst, address
    raise not_found()


def _slaac_api(inst: Instance) -> dict[str, Any]:
    return {
        "address": inst.ipv6.split("/")[0],
        "gateway": "fe80::1",
        "subnet_mask": "ffff:ffff:ffff:ffff::",
        "prefix": 64,
        "type": "ipv6",
        "public": True,
        "rdns": None,
        "linode_id": inst.id,
        "interface_id": None,
        "region": inst.region,
        "vpc_nat_1_1": None,
        "reserved": False,
    }


def all_addresses(world: World, book: AddressBook) -> list[dict[str, Any]]:
    """GET /networking/ips: every IPv4 address of the account's Linodes, and each one's
    IPv6 SLAAC address (as linode-cli's suite finds them listed)."""
    return [
        row
        for inst in world.instances.values()
        for row in [*(address_api(book, inst, a, world) for a in _own(inst)), _slaac_api(inst)]
    ]


def linode_ips(world: World, book: AddressBook, inst: Instance) -> dict[str, Any]:
    """The `ipv4` part of GET /linode/instances/{id}/ips."""
    shared = []
    for address in inst.shared_ipv4:
        try:
            owner, _ = find(world, address)
        except Exception:
            continue
        shared.append(address_api(book, owner, address, world))
    public = [inst.ipv4_public, *inst.extra_public]
    return {
        "public": [address_api(book, inst, a, world) for a in public],
        "private": [address_api(book, inst, inst.ipv4_private)] if inst.ipv4_private else [],
        "shared": shared,
        "reserved": [],
        "vpc": vpcs.ips(world, linode_id=inst.id),
    }


def allocate(
    world: World,
    book: AddressBook,
    inst: Instance,
    raw: Any,
    fields=(),
    linode_field: str | None = None,
) -> str:
    """A new IPv4 address for the Linode: public (from its region's range) or its private one.
    A Linode with Linode interfaces is refused (`linode_field`: the body's field naming it)."""
    body = Body(raw, frozenset({"type", "public", "linode_id", *fields}))
    if inst.interface_generation == "linode":
        raise bad_request(
            "This Linode uses Linode interfaces: add an address to its public interface "
            "(auto) instead",
            linode_field,
        )
    if body.str("type", required=True) != "ipv4":
        raise bad_request("Only ipv4 addresses can be allocated", "type")
    public = body.bool("public")
    if public is None:
        raise bad_request("public is required", "public")
    try:
        if public:
            address = book.take_public(inst.region)
            inst.extra_public.append(address)
        else:
            if inst.ipv4_private:
                raise bad_request("This Linode already has a private IPv4 address", "public")
            address = book.take_private(inst.region)
            inst.ipv4_private = address
    except (Exhausted, NoRange):
        raise bad_request(f"No IPv4 addresses are left in {inst.region}", "public") from None
    return address


def remove(
    world: World, book: AddressBook, inst: Instance, address: str, by_interface: bool = False
) -> None:
    """DELETE /linode/instances/{id}/ips/{address}: not its only public address, nor one on
    a Linode interface (`by_interface`: the interface is letting it go)."""
    if not by_interface and carrier(inst, address) is not None:
        raise bad_request(
            "This address is on a Linode interface: update the interface instead", "address"
        )
    if address == inst.ipv4_public:
        if not inst.extra_public:
            raise bad_request("A Linode must keep one public IPv4 address", "address")
        inst.ipv4_public = inst.extra_public.pop(0)
    elif address in inst.extra_public:
        inst.extra_public.remove(address)
    elif address == inst.ipv4_private:
        inst.ipv4_private = None
    else:
        raise not_found()
    inst.rdns.pop(address, None)
    book.release(address)
    for other in world.instances.values():
        if address in other.shared_ipv4:
            other.shared_ipv4.remove(address)


def set_rdns(book: AddressBook, inst: Instance, address: str, raw: Any) -> dict[str, Any]:
    body = Body(raw, frozenset({"rdns"}))
    rdns = body.str("rdns")
    if rdns is not None and (len(rdns) > 255 or " " in rdns):
        raise bad_request("Must be a domain name", "rdns")
    if address == inst.ipv4_private:
        raise bad_request("A private address has no reverse DNS", "rdns")
    inst.rdns[address] = rdns
    return address_api(book, inst, address)


def share(world: World, raw: Any) -> None:
    """POST /networking/ips/share: the Linode's shared addresses become `ips` (none: unshared),
    each a public IPv4 address of another Linode of its region or an IPv6 range of its
    region. A range routed to the Linode itself may be named (linodego's recording
    TestIPv6Range_Share shares a range with its own Linode first) and changes nothing."""
    body = Body(raw, frozenset({"ips", "linode_id"}))
    linode_id = body.int("linode_id", required=True)
    target = world.instances.get(linode_id or 0)
    if target is None:
        raise bad_request(f"Linode {linode_id} not found", "linode_id")
    wanted = body.strings("ips")
    addresses, ranges = [], []
    for address in wanted:
        found = ipv6.lookup(world, address) if ":" in address else None
        if found is not None:
            if found.region != target.region:
                raise bad_request(f"{address} is not in {target.region}", "ips")
            if found.linode_id != target.id:
                ranges.append(found)
            continue
        try:
            ipaddress.IPv4Address(address)
            owner, _ = find(world, address)
        except Exception:
            raise bad_request(f"{address} is not an address of this account", "ips") from None
        if owner.id == target.id or address == owner.ipv4_private:
            raise bad_request(f"{address} cannot be shared with this Linode", "ips")
        if owner.region != target.region:
            raise bad_request(f"{address} is not in {target.region}", "ips")
        addresses.append(address)
    target.shared_ipv4 = list(dict.fromkeys(addresses))
    for r in world.ipv6_ranges.values():
        if target.id in r.shared_with:
            r.shared_with.remove(target.id)
        if r in ranges:
            r.shared_with.append(target.id)
