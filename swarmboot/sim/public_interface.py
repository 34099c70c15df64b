"""A public Linode interface's addresses: some of the Linode's public IPv4 addresses, one
of them primary, its SLAAC address, and the IPv6 ranges routed to that address.

What each request part means, from the API reference ("Add a Linode interface", "Update a
Linode interface", "Allocate an IP address", "Delete an IPv4 address") and the clients'
suites (linode-cli's `test_linode_interfaces.py`, linode_api4's `test_interfaces.py`):

- `ipv4.addresses`: each `{address, primary}`. `address` is `auto` (or left out), or one
  of the Linode's public IPv4 addresses. `auto` takes an address of the Linode that no
  interface carries (the one a Linode is made with, or one its deleted public interface
  left), else a new one from the region's range, as `POST .../ips` would (which Linodes
  with Linode interfaces are refused). At most one is `primary`; none marked: the first.
  An update's list replaces the interface's: an address left out is deleted from the
  Linode ("Delete an IPv4 address" sends you to the interface for those), unless it is a
  VPC interface's 1:1 NAT address. At least one address (the simulator's rule: a Linode
  keeps a public IPv4 address). Left out of a create: one `auto` primary address.
- `ipv6.ranges`: each `{range}`, `/64` or `/56` for a new range of the region routed to
  the Linode's SLAAC address, or a range already routed to it (`2001:db8:8000::/64`,
  from `POST /networking/ipv6/ranges`). An update's list replaces the ranges routed to
  the Linode: one left out is deleted, unless shared. Left out: unchanged.
- Shown: `ipv4.shared` (others' addresses shared with the Linode, `{address,
  linode_id}`), `ipv6.slaac`, `ipv6.ranges` (`{range, route_target}`: the ranges routed
  to the Linode, route target its SLAAC address), `ipv6.shared` (ranges of others shared
  with it, `{range, route_target: null}`, as its `ipv6.global` shows them).

The limits the API reference gives for ranges made with `POST /networking/ipv6/ranges`
(one per Linode, one per region and account, lifted by a support ticket) are not applied:
Linode's own example of a public interface, and linode-cli's suite, give one Linode two.

Records and rules only: called with the simulator's lock held; a plan is checked whole
before anything changes, and a refused request changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from swarmboot.sim import ips, ipv6
from swarmboot.sim.errors import ApiError, bad_request
from swarmboot.sim.inputs import Body
from swarmboot.sim.model import Instance, LinodeInterface, World
from swarmboot.sim.network import AddressBook, Exhausted, NoRange

__all__ = ["Plan", "apply", "plan", "shown"]


@dataclass(frozen=True)
class Plan:
    """What a create or update asks of a public interface, checked."""

    field: str
    # (address or None for auto, primary as given); None: the addresses stay as they are.
    addresses: tuple[tuple[str | None, bool | None], ...] | None
    # Ranges kept (their keys) and new ones (prefixes); None: the ranges stay as they are.
    keep_ranges: tuple[str, ...] | None
    new_ranges: tuple[int, ...] = ()


def _public_addresses(inst: Instance) -> list[str]:
    return [inst.ipv4_public, *inst.extra_public]


def _items(raw: Any, field: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not all(isinstance(i, dict) for i in raw):
        raise bad_request("Must be a list of objects", field)
    return raw


def _addresses_plan(
    inst: Instance, iface: LinodeInterface | None, raw: Any, field: str
) -> tuple[tuple[str | None, bool | None], ...]:
    items = _items(raw, field)
    if not items:
        raise bad_request("A public interface needs an IPv4 address", field)
    own = _public_addresses(inst)
    wanted: list[tuple[str | None, bool | None]] = []
    for n, item in enumerate(items):
        body = Body(item, frozenset({"address", "primary"}))
        address = body.str("address")
        where = f"{field}[{n}].address"
        if address is not None and address != "auto":
            if address not in own:
                raise bad_request(
                    f"{address} is not a public IPv4 address of this Linode: give one of "
                    f"{', '.join(own)}, or auto",
                    where,
                )
            if any(address == a for a, _ in wanted):
                raise bad_request(f"{address} is listed twice", where)
        wanted.append((None if address in (None, "auto") else address, body.bool("primary")))
    primaries = [n for n, (_, primary) in enumerate(wanted) if primary]
    if len(primaries) > 1:
        raise bad_request("Only one address can be primary", f"{field}[{primaries[1]}].primary")
    named = {a for a, _ in wanted if a is not None}
    current = [a["address"] for a in iface.ipv4_addresses] if iface is not None else []
    for address in current:
        if address in named:
            continue
        for other in inst.interfaces.values():
            if other.nat_1_1 == address:
                raise bad_request(
                    f"{address} is the 1:1 NAT address of VPC interface {other.id}", field
                )
    return tuple(wanted)


def _ranges_plan(world: World, inst: Instance, raw: Any, field: str) -> tuple[tuple, tuple]:
    keep: list[str] = []
    new: list[int] = []
    for n, item in enumerate(_items(raw, field)):
        text = Body(item, frozenset({"range"})).str("range", required=True) or ""
        where = f"{field}[{n}].range"
        if text.startswith("/"):
            if text not in ("/56", "/64"):
                raise bad_request("Must be /64, /56 or a range routed to this Linode", where)
            new.append(int(text[1:]))
            continue
        found = ipv6.lookup(world, text)
        if found is None or found.linode_id != inst.id:
            raise bad_request(f"{text} is not an IPv6 range routed to this Linode", where)
        if found.range in keep:
            raise bad_request(f"{text} is listed twice", where)
        keep.append(found.range)
    for r in ipv6.routed_to(world, inst):
        if r.range not in keep and r.shared_with:
            raise bad_request(f"{r.cidr} is shared and cannot be deleted", field)
    return tuple(keep), tuple(new)


def plan(world: World, inst: Instance, iface: LinodeInterface | None, raw: Any, field: str) -> Plan:
    """Check a create's (`iface` None) or an update's `public` part; nothing changes."""
    body = Body(raw if raw is not None else {}, frozenset({"ipv4", "ipv6"}))
    ipv4 = Body(body.dict("ipv4"), frozenset({"addresses"}))
    v6 = Body(body.dict("ipv6"), frozenset({"ranges"}))
    wanted = ipv4.raw.get("addresses")
    if wanted is None and iface is None:
        wanted = [{"address": "auto", "primary": True}]
    addresses = (
        None if wanted is None else _addresses_plan(inst, iface, wanted, f"{field}.ipv4.addresses")
    )
    keep = new = None
    if v6.raw.get("ranges") is not None:
        keep, new = _ranges_plan(world, inst, v6.raw["ranges"], f"{field}.ipv6.ranges")
    return Plan(field, addresses, keep, new or ())


def apply(
    world: World, book: AddressBook, inst: Instance, iface: LinodeInterface, checked: Plan
) -> None:
    """Carry out a checked plan: new addresses and ranges are taken first (all or none),
    then what was left out is deleted."""
    taken: list[str] = []
    made: list[str] = []
    try:
        if checked.addresses is not None:
            named = {a for a, _ in checked.addresses if a is not None}
            free = [
                a
                for a in _public_addresses(inst)
                if a not in named and ips.carrier(inst, a) is None
            ]
            resolved: list[str] = []
            for address, _ in checked.addresses:
                if address is None:
                    if free:
                        address = free.pop(0)
                    else:
                        try:
                            address = book.take_public(inst.region)
                        except (Exhausted, NoRange):
                            raise bad_request(
                                f"No IPv4 addresses are left in {inst.region}",
                                f"{checked.field}.ipv4.addresses",
                            ) from None
                        taken.append(address)
                resolved.append(address)
        for prefix in checked.new_ranges:
            made.append(
                ipv6.allocate(world, book, inst, prefix, f"{checked.field}.ipv6.ranges").range
            )
    except ApiError:
        book.release(*taken)
        for key in made:
            del world.ipv6_ranges[key]
        raise
    if checked.addresses is not None:
        inst.extra_public.extend(taken)
        marked = [n for n, (_, primary) in enumerate(checked.addresses) if primary]
        first = marked[0] if marked else 0
        before = [a["address"] for a in iface.ipv4_addresses]
        iface.ipv4_addresses = [
            {"address": a, "primary": n == first} for n, a in enumerate(resolved)
        ]
        for address in before:
            if address not in resolved:
                ips.remove(world, book, inst, address, by_interface=True)
    if checked.keep_ranges is not None:
        for r in ipv6.routed_to(world, inst):
            if r.range not in checked.keep_ranges and r.range not in made:
                del world.ipv6_ranges[r.range]


def shown(world: World, inst: Instance, public: dict[str, Any]) -> dict[str, Any]:
    """A public interface's `public` part with what the account holds filled in: shared
    IPv4 addresses, routed and shared ranges."""
    slaac = inst.ipv6.split("/")[0]
    shared = []
    for address in inst.shared_ipv4:
        try:
            owner, _ = ips.find(world, address)
        except ApiError:
            continue
        shared.append({"address": address, "linode_id": owner.id})
    public["ipv4"]["shared"] = shared
    public["ipv6"]["ranges"] = [
        {"range": r.cidr, "route_target": slaac} for r in ipv6.routed_to(world, inst)
    ]
    public["ipv6"]["shared"] = [
        {"range": r.cidr, "route_target": None} for r in ipv6.shared_to(world, inst)
    ]
    return public
