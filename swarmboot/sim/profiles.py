"""Config profiles and their interfaces (the `legacy_config` generation): a Linode's
profiles, each with up to three interfaces (`public`, `vlan`, `vpc`), as the API shows them
under `/linode/instances/{id}/configs/{id}/interfaces`.

Models: they take the account's `World` and records, never the engine."""

from __future__ import annotations

from typing import Any

from swarmboot.sim import catalog, vpcs
from swarmboot.sim.errors import bad_request, not_found
from swarmboot.sim.inputs import Body
from swarmboot.sim.model import Config, Instance, World, vpc_ipv6_api

__all__ = [
    "add_interface",
    "config",
    "delete_vlan",
    "interface",
    "interface_api",
    "new_config",
    "order_interfaces",
    "remove_interface",
    "set_interfaces",
    "update_interface",
    "vlans",
]

PURPOSES = ("public", "vlan", "vpc")
_FIELDS = frozenset(
    {"purpose", "label", "ipam_address", "primary", "subnet_id", "ipv4", "ip_ranges", "ipv6"}
)
_READ_ONLY = frozenset({"id", "active", "vpc_id"})
_CONFIG_FIELDS = frozenset(
    {
        "label",
        "kernel",
        "devices",
        "root_device",
        "run_level",
        "virt_mode",
        "memory_limit",
        "comments",
        "helpers",
        "interfaces",
        "initrd",
    }
)
MAX_INTERFACES = 3
_CREATED = "2024-01-01T00:00:00"  # a VLAN's: the simulator keeps no date for one


def config(inst: Instance, config_id: int) -> Config:
    found = inst.configs.get(config_id)
    if found is None:
        raise not_found()
    return found


def interface(cfg: Config, interface_id: int) -> dict[str, Any]:
    found = next((i for i in cfg.interfaces if i.get("id") == interface_id), None)
    if found is None:
        raise not_found()
    return found


def interface_api(inst: Instance, iface: dict[str, Any]) -> dict[str, Any]:
    """An interface as the API shows it: `active` while its Linode runs."""
    return {**iface, "active": inst.status == "running"}


def _new_interface(
    world: World,
    inst: Instance,
    raw: Any,
    field: str,
    taken: set[str] | None = None,
) -> dict[str, Any]:
    body = Body(raw, _FIELDS, _READ_ONLY)
    purpose = body.str("purpose", required=True)
    if purpose not in PURPOSES:
        raise bad_request(f"Must be one of {', '.join(PURPOSES)}", f"{field}purpose")
    iface: dict[str, Any] = {
        "id": world.new_id("config_interface"),
        "purpose": purpose,
        "primary": bool(body.bool("primary", default=False)),
        "label": None,
        "ipam_address": None,
        "vpc_id": None,
        "subnet_id": None,
        "ipv4": None,
        "ip_ranges": None,
        "ipv6": None,
    }
    if purpose == "vlan":
        label = body.str("label", required=True) or ""
        if not 1 <= len(label) <= 64:
            raise bad_request("Length must be 1-64 characters", f"{field}label")
        iface["label"] = label
        iface["ipam_address"] = body.str("ipam_address") or ""
        world.vlans.setdefault(f"{inst.region}/{label}", _CREATED)
    elif purpose == "vpc":
        subnet_id = body.int("subnet_id", required=True) or 0
        vpc, sub = vpcs.subnet_for(world, subnet_id, inst.region, f"{field}subnet_id")
        ipv4 = Body(body.dict("ipv4"), frozenset({"vpc", "nat_1_1"}))
        taken = taken if taken is not None else set()
        address = vpcs.take_address(world, sub, ipv4.str("vpc"), f"{field}ipv4.vpc", taken=taken)
        ranges = vpcs.take_ranges(
            world,
            sub,
            body.strings("ip_ranges"),
            f"{field}ip_ranges",
            taken=[f"{address}/32", *(t if "/" in t else f"{t}/32" for t in taken)],
        )
        nat = ipv4.str("nat_1_1")
        if nat not in (None, "any", inst.ipv4_public):
            raise bad_request(f"Must be any or {inst.ipv4_public}", f"{field}ipv4.nat_1_1")
        ipv6, public = vpcs.interface_ipv6(world, sub, body.raw.get("ipv6"), f"{field}ipv6", None)
        iface.update(
            vpc_id=vpc.id,
            subnet_id=sub.id,
            ipv4={"vpc": address, "nat_1_1": inst.ipv4_public if nat else None},
            ip_ranges=ranges,
            ipv6=vpc_ipv6_api(ipv6, public, iface["id"]),
        )
    elif "label" in body and body.raw.get("label") not in (None, ""):
        raise bad_request("Only a VLAN interface takes a label", f"{field}label")
    return iface


def _check_set(interfaces: list[dict[str, Any]], field: str) -> None:
    if len(interfaces) > MAX_INTERFACES:
        raise bad_request(f"At most {MAX_INTERFACES} interfaces", field or "interfaces")
    for purpose in ("public", "vpc"):
        if sum(i["purpose"] == purpose for i in interfaces) > 1:
            raise bad_request(f"Only one {purpose} interface is allowed", field or "interfaces")
    if sum(i["primary"] for i in interfaces) > 1:
        raise bad_request("Only one interface may be primary", field or "interfaces")
    labels = [i["label"] for i in interfaces if i["purpose"] == "vlan"]
    if len(labels) != len(set(labels)):
        raise bad_request("VLAN labels must be distinct", field or "interfaces")


def set_interfaces(world: World, inst: Instance, cfg: Config, raw: Any, field: str) -> None:
    """A profile's whole list of interfaces, replaced (all or none)."""
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise bad_request("Must be a list of interfaces", field.rstrip(".") or "interfaces")
    old, cfg.interfaces = cfg.interfaces, []  # their VPC addresses are free for the new ones
    try:
        made: list[dict[str, Any]] = []
        taken: set[str] = set()
        for n, item in enumerate(raw):
            iface = _new_interface(world, inst, item, f"{field}[{n}].", taken)
            if iface["ipv4"]:
                taken.add(iface["ipv4"]["vpc"])
            made.append(iface)
        _check_set(made, field.rstrip("."))
    except Exception:
        cfg.interfaces = old
        raise
    cfg.interfaces = made


def add_interface(world: World, inst: Instance, cfg: Config, raw: Any) -> dict[str, Any]:
    iface = _new_interface(world, inst, raw, "")
    _check_set([*cfg.interfaces, iface], "")
    cfg.interfaces.append(iface)
    return iface


def update_interface(
    world: World, inst: Instance, cfg: Config, interface_id: int, raw: Any
) -> dict[str, Any]:
    iface = interface(cfg, interface_id)
    allowed = frozenset({"primary", "ipv4", "ip_ranges", "ipv6"})
    body = Body(raw, allowed, (_READ_ONLY | _FIELDS) - allowed)
    if "primary" in body:
        primary = bool(body.bool("primary"))
        if primary:
            for other in cfg.interfaces:
                other["primary"] = False
        iface["primary"] = primary
    if iface["purpose"] == "vpc":
        if "ipv4" in body:
            ipv4 = Body(body.dict("ipv4"), frozenset({"vpc", "nat_1_1"}))
            wanted = ipv4.str("vpc")
            if wanted not in (None, "auto", iface["ipv4"]["vpc"]):
                found = vpcs.find_subnet(world, iface["subnet_id"])
                if found is None:  # its subnet is gone: nothing to take an address from
                    raise bad_request("The interface's subnet is gone", "ipv4.vpc")
                iface["ipv4"]["vpc"] = vpcs.take_address(world, found[1], wanted, "ipv4.vpc")
            if "nat_1_1" in ipv4:
                nat = ipv4.str("nat_1_1")
                if nat not in (None, "any", inst.ipv4_public):
                    raise bad_request(f"Must be any or {inst.ipv4_public}", "ipv4.nat_1_1")
                iface["ipv4"]["nat_1_1"] = inst.ipv4_public if nat else None
        found = vpcs.find_subnet(world, iface["subnet_id"])
        mine = [f"{iface['ipv4']['vpc']}/32", *(iface["ip_ranges"] or [])]
        if "ip_ranges" in body and found is not None:
            asked = body.strings("ip_ranges")
            kept = [r for r in asked if r in mine]
            fresh = iter(
                vpcs.take_ranges(
                    world,
                    found[1],
                    [r for r in asked if r not in mine],
                    "ip_ranges",
                    mine=mine,
                    taken=[f"{iface['ipv4']['vpc']}/32", *kept],
                )
            )
            iface["ip_ranges"] = [r if r in kept else next(fresh) for r in asked]
        if body.raw.get("ipv6") is not None and found is not None:
            own = ((iface.get("ipv6") or {}).get("slaac") or [{}])[0].get("range")
            ipv6, public = vpcs.interface_ipv6(world, found[1], body.raw["ipv6"], "ipv6", own)
            iface["ipv6"] = vpc_ipv6_api(ipv6, public, iface["id"])
    return iface


def remove_interface(cfg: Config, interface_id: int) -> None:
    iface = interface(cfg, interface_id)
    cfg.interfaces = [i for i in cfg.interfaces if i is not iface]


def order_interfaces(cfg: Config, raw: Any) -> None:
    ids = Body(raw, frozenset({"ids"})).ints("ids")
    if sorted(ids) != sorted(i["id"] for i in cfg.interfaces):
        raise bad_request("Must list each of the profile's interfaces once", "ids")
    by_id = {i["id"]: i for i in cfg.interfaces}
    cfg.interfaces = [by_id[i] for i in ids]


def new_config(world: World, inst: Instance, raw: Any) -> Config:
    """POST /linode/instances/{id}/configs: a profile (its interfaces set as given)."""
    body = Body(raw, _CONFIG_FIELDS, frozenset({"id", "created", "updated"}))
    label = body.str("label", required=True) or ""
    if not 1 <= len(label) <= 48:
        raise bad_request("Length must be 1-48 characters", "label")
    devices = body.dict("devices", required=True) or {}
    slots = {f"sd{c}": None for c in "abcdefgh"}
    for slot, device in devices.items():
        if slot not in slots:
            raise bad_request(f"Invalid device slot {slot}", "devices")
        if device is not None and not isinstance(device, dict):
            raise bad_request("Must be an object or null", f"devices.{slot}")
        if device is not None and device.get("disk_id") not in (*inst.disks, None):
            raise bad_request("Disk not found", f"devices.{slot}.disk_id")
        slots[slot] = device and {"disk_id": device.get("disk_id"), "volume_id": None}
    kernel = body.str("kernel") or "linode/latest-64bit"
    if catalog.kernel(kernel) is None:
        raise bad_request(f"Kernel {kernel} not found", "kernel")
    cfg = Config(id=world.new_id("config"), label=label, kernel=kernel, devices=slots)
    for key in ("root_device", "run_level", "virt_mode", "comments"):
        if body.raw.get(key) is not None:
            setattr(cfg, key, body.str(key))
    if "memory_limit" in body:
        cfg.memory_limit = body.int("memory_limit") or 0
    set_interfaces(world, inst, cfg, body.raw.get("interfaces"), "interfaces")
    inst.configs[cfg.id] = cfg
    return cfg


def _attached(world: World) -> dict[tuple[str, str], set[int]]:
    found: dict[tuple[str, str], set[int]] = {}
    for inst in world.instances.values():
        labels = {
            i["label"]
            for cfg in inst.configs.values()
            for i in cfg.interfaces
            if i.get("purpose") == "vlan"
        }
        labels |= {i.vlan_label for i in inst.interfaces.values() if i.kind == "vlan"}
        for label in labels:
            found.setdefault((inst.region, label), set()).add(inst.id)
    return found


def vlans(world: World) -> list[dict[str, Any]]:
    """GET /networking/vlans: each VLAN (a label in a region, made with its first interface
    and kept until deleted) and the Linodes on it, from config-profile and Linode interfaces
    alike."""
    found = _attached(world)
    for key in world.vlans:
        region, _, label = key.partition("/")
        found.setdefault((region, label), set())
    return [
        {
            "label": label,
            "region": region,
            "linodes": sorted(ids),
            "created": world.vlans.get(f"{region}/{label}", _CREATED),
        }
        for (region, label), ids in sorted(found.items())
    ]


def delete_vlan(world: World, region: str, label: str) -> None:
    """DELETE /networking/vlans/{region}/{label}: one no Linode is on."""
    if _attached(world).get((region, label)):
        raise bad_request("The VLAN has Linodes on it; remove their interfaces first", "label")
    if world.vlans.pop(f"{region}/{label}", None) is None:
        raise not_found()
