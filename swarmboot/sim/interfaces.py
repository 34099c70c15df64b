"""Linode interfaces: the `linode` interface generation, where interfaces belong to the
Linode itself rather than to a config profile.

The rules are those of the API reference ("Add a Linode interface"): interfaces are made,
changed and deleted only while the Linode is offline or being created, though an
interface's firewall can change at any time; each sets exactly one kind, `public`, `vpc` or
`vlan`; a Linode has at most three, one public, one VPC, and VLANs with distinct labels;
firewalls apply to public and VPC interfaces, never to VLANs. A Linode of the
`legacy_config` generation has no Linode interfaces (its interfaces live in its config
profiles) and is refused them.

Records and rules only: each function is called with the simulator's lock held and raises
the API's errors.
"""

from __future__ import annotations

import copy
from typing import Any

from swarmboot.sim import public_interface, vpcs
from swarmboot.sim.errors import bad_request, not_found
from swarmboot.sim.inputs import Body
from swarmboot.sim.model import Device, Instance, LinodeInterface, World, interface_mac
from swarmboot.sim.network import AddressBook

__all__ = [
    "ACCOUNT_SETTINGS",
    "GENERATIONS",
    "KINDS",
    "create",
    "delete",
    "find",
    "interface",
    "interface_api",
    "new_generation",
    "set_firewall",
    "settings_api",
    "update",
    "update_account_settings",
    "update_settings",
    "upgrade",
]

GENERATIONS = ("legacy_config", "linode")
KINDS = ("public", "vpc", "vlan")
# `rdma_vpc` (GPUDirect RDMA VPCs) is taken only as null: the simulator has no RDMA VPCs.
_FIELDS = frozenset({"firewall_id", "default_route", "rdma_vpc", *KINDS})
# The account's `interfaces_for_new_linodes`: the generation a Linode made without
# `interface_generation` gets, and the generations a create may ask for.
ACCOUNT_SETTINGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "legacy_config_only": ("legacy_config", ("legacy_config",)),
    "legacy_config_default_but_linode_allowed": ("legacy_config", GENERATIONS),
    "linode_default_but_legacy_config_allowed": ("linode", GENERATIONS),
    "linode_only": ("linode", ("linode",)),
}
# While being made (created unbooted or provisioning), offline or shutting down, a Linode's
# interfaces may change. Shutting down: linode-cli's suite (`test_interface_add`) deletes
# an interface right after asking for a shutdown, without waiting for it to end.
_QUIET = ("offline", "provisioning", "shutting_down")


def interface(inst: Instance, interface_id: int) -> LinodeInterface:
    found = inst.interfaces.get(interface_id)
    if found is None:
        raise not_found()
    return found


def interface_api(world: World, inst: Instance, iface: LinodeInterface) -> dict[str, Any]:
    """The interface as the API shows it (a public one with its shared addresses and its
    routed and shared ranges, which the account holds)."""
    shown = iface.to_api(inst)
    if shown["public"] is not None:
        public_interface.shown(world, inst, shown["public"])
    return shown


def new_generation(world: World, asked: str | None) -> str:
    """The interface generation of a Linode being made: the one asked for, if the account
    allows it, else the account's default."""
    default, allowed = ACCOUNT_SETTINGS[world.settings["interfaces_for_new_linodes"]]
    if asked is None:
        return default
    if asked not in GENERATIONS:
        raise bad_request(f"Must be one of {', '.join(GENERATIONS)}", "interface_generation")
    if asked not in allowed:
        raise bad_request(
            f"This account makes {default} Linodes only (interfaces_for_new_linodes is "
            f"{world.settings['interfaces_for_new_linodes']})",
            "interface_generation",
        )
    return asked


def update_account_settings(world: World, raw: Any) -> dict[str, Any]:
    """`PUT /account/settings`: the settings the simulator keeps, changed."""
    body = Body(raw, frozenset({"backups_enabled", "network_helper", "interfaces_for_new_linodes"}))
    if "interfaces_for_new_linodes" in body:
        value = body.str("interfaces_for_new_linodes")
        if value not in ACCOUNT_SETTINGS:
            raise bad_request(
                f"Must be one of {', '.join(ACCOUNT_SETTINGS)}", "interfaces_for_new_linodes"
            )
        world.settings["interfaces_for_new_linodes"] = value
    for name in ("backups_enabled", "network_helper"):
        if name in body:
            world.settings[name] = bool(body.bool(name))
    return dict(world.settings)


def find(world: World, interface_id: int) -> tuple[Instance, LinodeInterface] | None:
    """The Linode interface with this id, and its Linode."""
    for inst in world.instances.values():
        if interface_id in inst.interfaces:
            return inst, inst.interfaces[interface_id]
    return None


def set_firewall(
    world: World, inst: Instance, iface: LinodeInterface, firewall_id: int | None, now: str
) -> None:
    """Put the interface behind a firewall (None: behind none). The firewall lists it among
    its devices, as a `linode_interface` whose parent is the Linode: the interface's
    `firewall_id` and the firewall's device are one attachment, seen from either side."""
    for fw in world.firewalls.values():
        for device_id, device in list(fw.devices.items()):
            if device.entity_type == "linode_interface" and device.entity_id == iface.id:
                del fw.devices[device_id]
    iface.firewall_id = firewall_id
    if firewall_id is None:
        return
    device = Device(
        id=world.new_id("device"),
        entity_id=iface.id,
        entity_type="linode_interface",
        entity_label=None,
        created=now,
        updated=now,
        parent_id=inst.id,
        parent_label=inst.label,
    )
    world.firewalls[firewall_id].devices[device.id] = device


def _linode_generation(inst: Instance) -> None:
    if inst.interface_generation != "linode":
        raise bad_request(
            "This Linode uses legacy config interfaces; use its config profiles", "interfaces"
        )


def _offline(inst: Instance) -> None:
    if inst.status not in _QUIET:
        raise bad_request("The Linode must be powered off to change its interfaces")


def _firewall(world: World, raw: Any, kind: str, field: str) -> int | None:
    if raw is None:
        return None
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise bad_request("Must be an integer", field)
    if kind == "vlan":
        raise bad_request("Firewalls do not apply to VLAN interfaces", field)
    if raw not in world.firewalls:
        raise bad_request(f"Firewall {raw} not found", field)
    return raw


def _ipv6_eligible(iface: LinodeInterface) -> bool:
    """A public interface, or a VPC one with IPv6 (dual stack), can be the IPv6 route."""
    return iface.kind == "public" or (iface.kind == "vpc" and iface.vpc_ipv6 is not None)


def _default_route(iface: LinodeInterface, raw: Any, field: str) -> None:
    if raw is None:
        return
    body = Body(raw, frozenset({"ipv4", "ipv6"}))
    ipv4, ipv6 = body.bool("ipv4"), body.bool("ipv6")
    if ipv4 and iface.kind == "vlan":
        raise bad_request("A VLAN interface cannot be the IPv4 default route", f"{field}.ipv4")
    if ipv6 and not _ipv6_eligible(iface):
        raise bad_request(
            "Only a public interface or a VPC one with IPv6 can be the IPv6 default route",
            f"{field}.ipv6",
        )
    if ipv4 is not None:
        iface.default_ipv4 = ipv4
    if ipv6 is not None:
        iface.default_ipv6 = ipv6


def _free_routes(inst: Instance, iface: LinodeInterface, raw: Any) -> None:
    """A new interface takes a default route no other interface of the Linode holds, when
    it can and its `default_route` does not say no (linode_api4's suite: a dual-stack VPC
    interface made with `default_route: {"ipv4": true}` on a Linode without others is its
    IPv6 route too)."""
    said = raw if isinstance(raw, dict) else {}
    others = [i for i in inst.interfaces.values() if i.id != iface.id]
    if "ipv4" not in said and iface.kind != "vlan" and not any(i.default_ipv4 for i in others):
        iface.default_ipv4 = True
    if "ipv6" not in said and _ipv6_eligible(iface) and not any(i.default_ipv6 for i in others):
        iface.default_ipv6 = True


def _one_default(inst: Instance, iface: LinodeInterface) -> None:
    """A Linode has one IPv4 and one IPv6 default route: the interface just set takes it."""
    for other in inst.interfaces.values():
        if other.id != iface.id:
            other.default_ipv4 = other.default_ipv4 and not iface.default_ipv4
            other.default_ipv6 = other.default_ipv6 and not iface.default_ipv6


def _first(items: Any, field: str) -> dict[str, Any]:
    """A VPC interface's one address."""
    if items is None:
        return {}
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise bad_request("Must be a list of objects", field)
    if len(items) > 1:
        raise bad_request("The simulator takes one address per interface", field)
    return items[0] if items else {}


def _vpc(world: World, inst: Instance, iface: LinodeInterface, raw: dict[str, Any], field: str):
    body = Body(raw, frozenset({"subnet_id", "ipv4", "ipv6"}))
    subnet_id = body.int("subnet_id", required=True) or 0
    vpc, sub = vpcs.subnet_for(world, subnet_id, inst.region, f"{field}.subnet_id")
    ipv4 = Body(body.dict("ipv4"), frozenset({"addresses", "ranges"}))
    first = Body(
        _first(ipv4.raw.get("addresses"), f"{field}.ipv4.addresses"),
        frozenset({"address", "primary", "nat_1_1_address"}),
    )
    where = f"{field}.ipv4.addresses[0]"
    same = iface.subnet_id == subnet_id
    mine = [f"{iface.vpc_address}/32", *iface.vpc_ranges] if same else []
    keep = iface.vpc_address if same else None
    wanted = first.str("address")
    if keep is not None and wanted in (None, "auto", keep):
        address = keep
    else:  # its own address is free for the new choice
        address = vpcs.take_address(world, sub, wanted, f"{where}.address", mine=mine)
    ranges = ipv4.raw.get("ranges") or []
    if not isinstance(ranges, list) or not all(isinstance(r, dict) for r in ranges):
        raise bad_request("Must be a list of ranges", f"{field}.ipv4.ranges")
    # A range it holds already, named again, stays; the others are taken afresh.
    asked = [Body(r, frozenset({"range"})).str("range", required=True) for r in ranges]
    kept = [a for a in asked if a in mine]
    fresh = vpcs.take_ranges(
        world,
        sub,
        [a for a in asked if a not in mine],
        f"{field}.ipv4.ranges",
        mine=mine,
        taken=[f"{address}/32", *kept],
    )
    nat = first.str("nat_1_1_address")
    if nat not in (None, "auto", inst.ipv4_public):
        raise bad_request(f"Must be auto or {inst.ipv4_public}", f"{where}.nat_1_1_address")
    ipv6, public = vpcs.interface_ipv6(
        world, sub, body.raw.get("ipv6"), f"{field}.ipv6", iface.vpc_ipv6 if same else None
    )
    iface.vpc_id, iface.subnet_id, iface.vpc_address = vpc.id, sub.id, address
    fresh_iter = iter(fresh)
    iface.vpc_ranges = [a if a in kept else next(fresh_iter) for a in asked]
    iface.vpc_ipv6, iface.vpc_ipv6_public = ipv6, public
    iface.nat_1_1 = inst.ipv4_public if nat is not None else None


def _vlan(iface: LinodeInterface, raw: dict[str, Any], field: str) -> None:
    body = Body(raw, frozenset({"vlan_label", "ipam_address"}))
    iface.vlan_label = body.str("vlan_label", required=True)
    iface.ipam_address = body.str("ipam_address")


def _kind(body: Body) -> str:
    if body.raw.get("rdma_vpc") is not None:
        raise bad_request("The simulator has no RDMA VPCs", "rdma_vpc")
    given = [k for k in KINDS if body.raw.get(k) is not None]
    if len(given) != 1:
        raise bad_request("Set exactly one of public, vpc and vlan", "public")
    return given[0]


def create(
    world: World, inst: Instance, raw: Any, now: str, field: str = "", *, book: AddressBook
) -> LinodeInterface:
    """A new interface on `inst` (`field` prefixes the names in errors: `interfaces[0].`);
    `book` gives a public one new addresses."""
    _linode_generation(inst)
    _offline(inst)
    body = Body(raw, _FIELDS)
    kind = _kind(body)
    kinds = [i.kind for i in inst.interfaces.values()]
    if len(kinds) >= 3:
        raise bad_request("A Linode has at most three interfaces", f"{field}{kind}")
    if kind in ("public", "vpc") and kind in kinds:
        raise bad_request(f"A Linode has at most one {kind} interface", f"{field}{kind}")
    iface_id = world.new_id("interface")
    iface = LinodeInterface(
        id=iface_id,
        kind=kind,
        mac_address=interface_mac(iface_id),
        created=now,
        updated=now,
    )
    firewall_id = _firewall(world, body.raw.get("firewall_id"), kind, f"{field}firewall_id")
    part = body.dict(kind) or {}
    public = None
    if kind == "public":
        public = public_interface.plan(world, inst, None, part, f"{field}public")
    elif kind == "vpc":
        _vpc(world, inst, iface, part, f"{field}vpc")
    else:
        _vlan(iface, part, f"{field}vlan")
        world.vlans.setdefault(f"{inst.region}/{iface.vlan_label}", now)
        if any(i.vlan_label == iface.vlan_label for i in inst.interfaces.values()):
            raise bad_request("The Linode has an interface on this VLAN", f"{field}vlan.vlan_label")
    _default_route(iface, body.raw.get("default_route"), f"{field}default_route")
    if public is not None:
        public_interface.apply(world, book, inst, iface, public)
    _free_routes(inst, iface, body.raw.get("default_route"))
    inst.interfaces[iface.id] = iface
    _one_default(inst, iface)
    set_firewall(world, inst, iface, firewall_id, now)
    return iface


def update(
    world: World, inst: Instance, interface_id: int, raw: Any, now: str, *, book: AddressBook
) -> LinodeInterface:
    _linode_generation(inst)
    iface = interface(inst, interface_id)
    body = Body(raw, _FIELDS)
    if body.raw.get("rdma_vpc") is not None:
        raise bad_request("The simulator has no RDMA VPCs", "rdma_vpc")
    for other in KINDS:
        if other != iface.kind and body.raw.get(other) is not None:
            raise bad_request(f"A {iface.kind} interface cannot become {other}", other)
    if "firewall_id" in body and body.raw["firewall_id"] is not None:
        # Its firewall may change at any time, and that alone is no new version.
        chosen = _firewall(world, body.raw["firewall_id"], iface.kind, "firewall_id")
        if chosen != iface.firewall_id:
            set_firewall(world, inst, iface, chosen, now)
    changes = {k: body.raw[k] for k in ("default_route", iface.kind) if body.raw.get(k) is not None}
    if not changes:
        return iface
    _offline(inst)
    public = None
    if iface.kind == "public" and "public" in changes:
        public = public_interface.plan(world, inst, iface, changes["public"], "public")
    elif iface.kind == "vpc" and "vpc" in changes:
        _vpc(world, inst, iface, changes["vpc"], "vpc")
        iface.default_ipv6 = iface.default_ipv6 and _ipv6_eligible(iface)  # IPv6 gone?
    elif iface.kind == "vlan" and "vlan" in changes:
        _vlan(iface, changes["vlan"], "vlan")
    _default_route(iface, changes.get("default_route"), "default_route")
    if public is not None:
        public_interface.apply(world, book, inst, iface, public)
    _one_default(inst, iface)
    iface.version += 1
    iface.updated = now
    return iface


def delete(world: World, inst: Instance, interface_id: int) -> None:
    _linode_generation(inst)
    iface = interface(inst, interface_id)
    _offline(inst)
    set_firewall(world, inst, iface, None, "")
    del inst.interfaces[interface_id]


def settings_api(inst: Instance) -> dict[str, Any]:
    _linode_generation(inst)
    ifaces = list(inst.interfaces.values())
    return {
        "network_helper": inst.network_helper,
        "default_route": {
            "ipv4_interface_id": next((i.id for i in ifaces if i.default_ipv4), None),
            "ipv4_eligible_interface_ids": [i.id for i in ifaces if i.kind != "vlan"],
            "ipv6_interface_id": next((i.id for i in ifaces if i.default_ipv6), None),
            "ipv6_eligible_interface_ids": [i.id for i in ifaces if _ipv6_eligible(i)],
        },
    }


def update_settings(inst: Instance, raw: Any) -> dict[str, Any]:
    _linode_generation(inst)
    body = Body(raw, frozenset({"network_helper", "default_route"}))
    if "network_helper" in body:
        inst.network_helper = bool(body.bool("network_helper"))
    route = Body(body.dict("default_route"), frozenset({"ipv4_interface_id", "ipv6_interface_id"}))
    for key, attr, eligible in (
        ("ipv4_interface_id", "default_ipv4", lambda i: i.kind != "vlan"),
        ("ipv6_interface_id", "default_ipv6", _ipv6_eligible),
    ):
        chosen = route.int(key)
        if chosen is None:
            continue
        target = inst.interfaces.get(chosen)
        if target is None or not eligible(target):
            raise bad_request(f"Interface {chosen} is not eligible", f"default_route.{key}")
        for iface in inst.interfaces.values():
            setattr(iface, attr, iface.id == chosen)
    return settings_api(inst)


def _upgraded_bodies(legacy: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Linode interface bodies for a profile's legacy interfaces (none: the implicit public
    eth0), each keeping its addresses, ranges and IPv6. The IPv4 default route goes on the
    primary one (else the public, else the first); the IPv6 one on the same when it can
    carry IPv6 (public, or a VPC one with IPv6, as linode_api4's suite has a primary
    dual-stack VPC interface take both), else on the public one."""
    legacy = legacy or [{"purpose": "public", "primary": False}]
    bodies: list[dict[str, Any]] = []
    for item in legacy:
        if item["purpose"] == "public":
            bodies.append({"public": {}})
        elif item["purpose"] == "vlan":
            bodies.append(
                {"vlan": {"vlan_label": item["label"], "ipam_address": item.get("ipam_address")}}
            )
        else:
            address = {"address": item["ipv4"]["vpc"]}
            if item["ipv4"].get("nat_1_1"):
                address["nat_1_1_address"] = "auto"
            vpc: dict[str, Any] = {
                "subnet_id": item["subnet_id"],
                "ipv4": {
                    "addresses": [address],
                    "ranges": [{"range": r} for r in item.get("ip_ranges") or []],
                },
            }
            if item.get("ipv6"):
                vpc["ipv6"] = {
                    "slaac": [{"range": item["ipv6"]["slaac"][0]["range"]}],
                    "is_public": item["ipv6"]["is_public"],
                }
            bodies.append({"vpc": vpc})
    routed = next((n for n, i in enumerate(legacy) if i.get("primary")), None)
    if routed is None:
        routed = next((n for n, i in enumerate(legacy) if i["purpose"] == "public"), 0)
    for body in bodies:
        body["default_route"] = {"ipv4": False, "ipv6": False}
    if legacy[routed]["purpose"] != "vlan":
        bodies[routed]["default_route"]["ipv4"] = True
    six = [n for n, i in enumerate(legacy) if i["purpose"] == "public" or i.get("ipv6")]
    if six:
        public = next((n for n in six if legacy[n]["purpose"] == "public"), six[0])
        bodies[routed if routed in six else public]["default_route"]["ipv6"] = True
    return bodies


def upgrade(
    world: World, inst: Instance, raw: Any, now: str, *, book: AddressBook
) -> dict[str, Any]:
    """POST /linode/instances/{id}/upgrade-interfaces: a `legacy_config` Linode's profile
    interfaces become Linode interfaces (`dry_run`: shown, nothing changed). The Linode's
    firewall moves onto its new public and VPC interfaces, its public IPv4 addresses onto
    its public one (the first primary), and its routed ranges with them."""
    body = Body(raw, frozenset({"config_id", "dry_run"}))
    dry_run = body.bool("dry_run", default=True)
    if inst.interface_generation == "linode":
        raise bad_request("This Linode already uses Linode interfaces", "interface_generation")
    _offline(inst)
    config_id = body.int("config_id")
    if config_id is None:
        if len(inst.configs) != 1:
            raise bad_request("Name the config profile to upgrade", "config_id")
        config_id = next(iter(inst.configs))
    if config_id not in inst.configs:
        raise bad_request(f"Config {config_id} not found", "config_id")
    if dry_run:  # on a copy: the answer is what would be made
        twin = World.from_json(world.to_json())
        shown = upgrade(
            twin,
            twin.instances[inst.id],
            {"config_id": config_id, "dry_run": False},
            now,
            book=copy.deepcopy(book),
        )
        return {**shown, "dry_run": True}
    config = inst.configs[config_id]
    bodies = _upgraded_bodies(config.interfaces)
    for item in bodies:  # the public interface takes all the Linode's public addresses
        if "public" in item:
            own = [inst.ipv4_public, *inst.extra_public]
            addresses = [{"address": a, "primary": n == 0} for n, a in enumerate(own)]
            item["public"] = {"ipv4": {"addresses": addresses}}
    firewalls = [
        fw
        for fw in world.firewalls.values()
        for device in fw.devices.values()
        if device.entity_type == "linode" and device.entity_id == inst.id
    ]
    for fw in firewalls:  # the Linode's own device goes; its interfaces take the firewall
        fw.devices = {
            k: d
            for k, d in fw.devices.items()
            if not (d.entity_type == "linode" and d.entity_id == inst.id)
        }
    if firewalls:
        for item in bodies:
            if "public" in item or "vpc" in item:
                item["firewall_id"] = firewalls[0].id
    config.interfaces = []
    inst.interface_generation = "linode"
    made = [
        create(world, inst, item, now, f"interfaces[{n}].", book=book)
        for n, item in enumerate(bodies)
    ]
    return {
        "config_id": config_id,
        "dry_run": False,
        "interfaces": [interface_api(world, inst, i) for i in made],
    }
