"""StackScripts, Cloud Firewalls, the account and the profile of the simulated account."""

from __future__ import annotations

from typing import Any

from swarmboot import udf
from swarmboot.errors import UdfError
from swarmboot.sim import catalog, interfaces
from swarmboot.sim.engine import Simulator
from swarmboot.sim.errors import ApiError, Problem, bad_request, not_found
from swarmboot.sim.inputs import Body, check_label
from swarmboot.sim.model import Device, Firewall, Instance, StackScript

__all__ = [
    "account",
    "all_stackscripts",
    "attach",
    "create_device",
    "create_firewall",
    "create_stackscript",
    "delete_device",
    "delete_firewall",
    "delete_stackscript",
    "firewalls_of",
    "profile",
    "public_stackscript",
    "update_firewall",
    "update_rules",
    "update_stackscript",
]

# --- StackScripts -------------------------------------------------------------------------

# Community StackScripts every account sees besides its own (the "mine" filter tells them apart).
_PUBLIC_SCRIPTS = tuple(
    StackScript(
        id=sid,
        label=label,
        script=f"#!/bin/bash\n# {label}\n",
        images=images,
        description=description,
        is_public=True,
        rev_note="",
        user_defined_fields=[],
        created="2023-01-01T00:00:00",
        updated="2023-01-01T00:00:00",
        username="linode",
        mine=False,
        deployments_total=1000,
        deployments_active=100,
    )
    for sid, label, images, description in (
        (401697, "Docker", ["linode/debian12", "linode/ubuntu22.04"], "Installs Docker."),
        (401712, "WordPress", ["linode/debian12"], "Installs WordPress."),
    )
)


def public_stackscript(script_id: int) -> StackScript | None:
    return next((s for s in _PUBLIC_SCRIPTS if s.id == script_id), None)


def all_stackscripts(sim: Simulator) -> list[StackScript]:
    return [*_PUBLIC_SCRIPTS, *sim.world.stackscripts.values()]


_SCRIPT_FIELDS = frozenset({"label", "script", "images", "description", "is_public", "rev_note"})


def _stackscript_entity(script: StackScript) -> dict[str, Any]:
    return {
        "id": script.id,
        "label": script.label,
        "type": "stackscript",
        "url": f"/v4/linode/stackscripts/{script.id}",
    }


def _parse_script(text: str) -> list[dict[str, str]]:
    if not text.startswith("#!"):
        raise bad_request("StackScript must begin with a shebang (#!)", "script")
    try:
        fields = udf.parse_udfs(text, source="script")
    except UdfError as exc:
        raise bad_request(exc.message, "script") from None
    return [f.to_api() for f in fields]


def _images(body: Body) -> list[str]:
    images = body.strings("images")
    if not images:
        raise bad_request("images is required", "images")  # the real API's words
    for image in images:
        if image != "any/all" and catalog.image(image) is None:
            raise bad_request(f"Image {image} not found", "images")
    return images


def create_stackscript(sim: Simulator, raw: Any) -> StackScript:
    body = Body(raw, _SCRIPT_FIELDS)
    label = body.str("label", required=True) or ""
    if not 3 <= len(label) <= 128:
        raise bad_request("Label must be between 3 and 128 characters", "label")
    images = _images(body)  # before the script, as the real API reports them
    text = body.str("script", required=True) or ""
    fields = _parse_script(text)
    with sim.lock:
        now = sim.now()
        script = StackScript(
            id=sim.world.new_id("stackscript"),
            label=label,
            script=text,
            images=images,
            description=body.str("description", default="") or "",
            is_public=bool(body.bool("is_public", default=False)),
            rev_note=body.str("rev_note", default="") or "",
            user_defined_fields=fields,
            created=now,
            updated=now,
            username=sim.config.username,
        )
        sim.world.stackscripts[script.id] = script
        sim.event("stackscript_create", _stackscript_entity(script), "notification")
        return script


def _mine(sim: Simulator, script_id: int) -> StackScript:
    script = sim.world.stackscripts.get(script_id)
    if script is None:
        raise not_found()
    if not script.mine:
        raise ApiError(403, (Problem("Unauthorized"),))
    return script


def update_stackscript(sim: Simulator, script_id: int, raw: Any) -> StackScript:
    body = Body(raw, _SCRIPT_FIELDS)
    with sim.lock:
        script = _mine(sim, script_id)
        if "label" in body:
            label = body.str("label") or ""
            if not 3 <= len(label) <= 128:
                raise bad_request("Label must be between 3 and 128 characters", "label")
            script.label = label
        if "script" in body:
            text = body.str("script") or ""
            script.user_defined_fields = _parse_script(text)
            script.script = text
        if "images" in body:
            script.images = _images(body)
        if "description" in body:
            script.description = body.str("description") or ""
        if "rev_note" in body:
            script.rev_note = body.str("rev_note") or ""
        if "is_public" in body:
            if script.is_public and not body.bool("is_public"):
                raise bad_request("A public StackScript cannot be made private", "is_public")
            script.is_public = bool(body.bool("is_public"))
        script.updated = sim.now()
        sim.event("stackscript_update", _stackscript_entity(script), "notification")
        return script


def delete_stackscript(sim: Simulator, script_id: int) -> None:
    with sim.lock:
        script = _mine(sim, script_id)
        del sim.world.stackscripts[script_id]
        sim.event("stackscript_delete", _stackscript_entity(script), "notification")


# --- Cloud Firewalls ----------------------------------------------------------------------

# The spec's four, plus what the real API also takes: ALL, and IP protocol numbers ("50": ESP).
_PROTOCOLS = ("TCP", "UDP", "ICMP", "IPENCAP", "ALL")
_POLICIES = ("ACCEPT", "DROP")


def _firewall_entity(fw: Firewall) -> dict[str, Any]:
    return {
        "id": fw.id,
        "label": fw.label,
        "type": "firewall",
        "url": f"/v4/networking/firewalls/{fw.id}",
    }


_RULE_KEYS = ("inbound", "outbound", "inbound_policy", "outbound_policy")


def _check_rules(raw: Any, field: str, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """Rules as given; on an update (`current`), a policy or direction left out keeps the
    firewall's (linode-cli's `rules-update --inbound ...` sends only what changes, and the
    real API takes it)."""
    if current is not None and isinstance(raw, dict):
        raw = {**{k: v for k, v in current.items() if k in _RULE_KEYS}, **raw}
    body = Body(
        raw,
        frozenset(
            {"inbound", "outbound", "inbound_policy", "outbound_policy", "fingerprint", "version"}
        ),
    )
    rules: dict[str, Any] = {}
    for direction in ("inbound", "outbound"):
        policy = body.str(f"{direction}_policy", required=True)
        if policy not in _POLICIES:
            raise bad_request("Must be ACCEPT or DROP", f"{field}.{direction}_policy")
        rules[f"{direction}_policy"] = policy
        entries = body.raw.get(direction, [])
        if entries is None:  # the API keeps an explicit null
            rules[direction] = None
            continue
        if not isinstance(entries, list):
            raise bad_request("Must be a list of rules", f"{field}.{direction}")
        checked = []
        for n, entry in enumerate(entries):
            where = f"{field}.{direction}[{n}]"
            rule = Body(
                entry,
                frozenset({"action", "protocol", "ports", "addresses", "label", "description"}),
            )
            if rule.str("action", required=True) not in _POLICIES:
                raise bad_request("Must be ACCEPT or DROP", f"{where}.action")
            protocol = rule.str("protocol", required=True) or ""
            # ASCII digits: "²" passes str.isdigit() but not int() (a 500); Arabic-Indic both.
            numbered = (
                protocol.isascii()
                and protocol.isdigit()
                and len(protocol.lstrip("0")) <= 3
                and int(protocol) <= 255
            )
            if protocol not in _PROTOCOLS and not numbered:
                raise bad_request(
                    f"Must be one of {', '.join(_PROTOCOLS)} or an IP protocol number",
                    f"{where}.protocol",
                )
            ports = rule.str("ports")
            if ports is not None and protocol not in ("TCP", "UDP", "6", "17"):
                raise bad_request("Ports are not allowed for this protocol", f"{where}.ports")
            addresses = rule.dict("addresses", required=True) or {}
            if not set(addresses) <= {"ipv4", "ipv6"} or not any(addresses.values()):
                raise bad_request("At least one address is required", f"{where}.addresses")
            label = rule.str("label")
            if label is not None and not 3 <= len(label) <= 32:
                raise bad_request("Label must be 3-32 characters", f"{where}.label")
            checked.append(dict(entry))
        rules[direction] = checked
    return rules


# A firewall's fields that 4.229.1's create body marks readOnly.
_FIREWALL_READ_ONLY = frozenset({"created", "entities", "id", "status", "updated"})


def create_firewall(sim: Simulator, raw: Any) -> Firewall:
    body = Body(raw, frozenset({"label", "rules", "tags", "devices"}), _FIREWALL_READ_ONLY)
    label = check_label(body.str("label", required=True), "label", low=3, high=32)
    rules = _check_rules(body.dict("rules", required=True), "rules")
    devices = Body(
        body.dict("devices") or {}, frozenset({"linodes", "nodebalancers", "linode_interfaces"})
    )
    linode_ids = devices.ints("linodes")
    interface_ids = devices.ints("linode_interfaces")
    if devices.ints("nodebalancers"):  # NodeBalancers are out of the simulator's scope
        raise bad_request("NodeBalancer not found", "devices.nodebalancers")
    with sim.lock:
        if any(fw.label == label for fw in sim.world.firewalls.values()):
            raise bad_request("Label must be unique among your Cloud Firewalls", "label")
        targets = [_attachable(sim, iid, "devices.linodes") for iid in linode_ids]
        behind = []
        for interface_id in interface_ids:
            found = interfaces.find(sim.world, interface_id)
            if found is None or found[1].kind == "vlan" or found[1].firewall_id is not None:
                raise bad_request(
                    f"Linode interface {interface_id} cannot take this firewall",
                    "devices.linode_interfaces",
                )
            behind.append(found)
        now = sim.now()
        fw = Firewall(
            id=sim.world.new_id("firewall"),
            label=label,
            rules=rules,
            version=1,
            created=now,
            updated=now,
            tags=sorted(set(body.strings("tags"))),
        )
        fw.remember(now)
        sim.world.firewalls[fw.id] = fw
        sim.event("firewall_create", _firewall_entity(fw), "notification")
        for inst in targets:
            attach(sim, fw, inst)
        for inst, iface in behind:
            interfaces.set_firewall(sim.world, inst, iface, fw.id, now)
        return fw


def _firewall(sim: Simulator, firewall_id: int) -> Firewall:
    fw = sim.world.firewalls.get(firewall_id)
    if fw is None:
        raise not_found()
    return fw


def update_firewall(sim: Simulator, firewall_id: int, raw: Any) -> Firewall:
    body = Body(raw, frozenset({"label", "tags", "status"}))
    with sim.lock:
        fw = _firewall(sim, firewall_id)
        if "label" in body:
            fw.label = check_label(body.str("label"), "label", low=3, high=32)
        if "tags" in body:
            fw.tags = sorted(set(body.strings("tags")))
        if "status" in body:
            status = body.str("status")
            if status not in ("enabled", "disabled"):
                raise bad_request("Must be enabled or disabled", "status")
            fw.status = status  # type: ignore[assignment]
        fw.updated = sim.now()
        sim.event("firewall_update", _firewall_entity(fw), "notification")
        return fw


def update_rules(sim: Simulator, firewall_id: int, raw: Any) -> Firewall:
    with sim.lock:
        fw = _firewall(sim, firewall_id)
        rules = _check_rules(raw, "rules", fw.rules)
        if rules != {k: fw.rules.get(k) for k in rules}:
            fw.rules = rules
            fw.version += 1
            fw.remember(sim.now())
        fw.updated = sim.now()
        sim.event("firewall_update", _firewall_entity(fw), "notification")
        return fw


def delete_firewall(sim: Simulator, firewall_id: int) -> None:
    with sim.lock:
        fw = _firewall(sim, firewall_id)
        del sim.world.firewalls[firewall_id]
        for kind, default in sim.world.firewall_defaults.items():
            if default == firewall_id:
                sim.world.firewall_defaults[kind] = None
        for inst in sim.world.instances.values():  # Linode interfaces lose it too
            for iface in inst.interfaces.values():
                if iface.firewall_id == firewall_id:
                    iface.firewall_id = None
        sim.event("firewall_delete", _firewall_entity(fw), "notification")


def _attachable(sim: Simulator, iid: int, field: str) -> Instance:
    inst = sim.world.instances.get(iid)
    if inst is None:
        raise bad_request(f"Linode {iid} not found", field)
    if inst.interface_generation == "linode":
        raise bad_request(
            f"Linode {inst.label} uses Linode interfaces: attach the firewall to its "
            "interfaces (type linode_interface)",
            field,
        )
    for fw in sim.world.firewalls.values():
        if any(d.entity_type == "linode" and d.entity_id == iid for d in fw.devices.values()):
            raise bad_request(
                f"Linode {inst.label} already belongs to a firewall ({fw.label})", field
            )
    return inst


def attach(sim: Simulator, fw: Firewall, inst: Instance) -> Device:
    now = sim.now()
    device = Device(
        id=sim.world.new_id("device"),
        entity_id=inst.id,
        entity_type="linode",
        entity_label=inst.label,
        created=now,
        updated=now,
    )
    fw.devices[device.id] = device
    sim.event("firewall_device_add", _firewall_entity(fw), "notification")
    return device


def create_device(sim: Simulator, firewall_id: int, raw: Any) -> Device:
    body = Body(raw, frozenset({"id", "type"}))
    entity_id = body.int("id", required=True) or 0
    kind = body.str("type", required=True)
    if kind not in ("linode", "linode_interface"):
        raise bad_request("Only linode and linode_interface devices are simulated", "type")
    with sim.lock:
        fw = _firewall(sim, firewall_id)
        if kind == "linode":
            return attach(sim, fw, _attachable(sim, entity_id, "id"))
        found = interfaces.find(sim.world, entity_id)
        if found is None:
            raise bad_request(f"Linode interface {entity_id} not found", "id")
        inst, iface = found
        if iface.kind == "vlan":
            raise bad_request("Firewalls do not apply to VLAN interfaces", "id")
        if iface.firewall_id is not None:
            raise bad_request(f"Linode interface {entity_id} already belongs to a firewall", "id")
        interfaces.set_firewall(sim.world, inst, iface, fw.id, sim.now())
        sim.event("firewall_device_add", _firewall_entity(fw), "notification")
        return next(d for d in fw.devices.values() if d.entity_id == entity_id)


def delete_device(sim: Simulator, firewall_id: int, device_id: int) -> None:
    with sim.lock:
        fw = _firewall(sim, firewall_id)
        device = fw.devices.pop(device_id, None)
        if device is None:
            raise not_found()
        if device.entity_type == "linode_interface":  # the interface is behind none now
            found = interfaces.find(sim.world, device.entity_id)
            if found is not None:
                found[1].firewall_id = None
        sim.event("firewall_device_remove", _firewall_entity(fw), "notification")


def firewalls_of(sim: Simulator, iid: int) -> list[Firewall]:
    sim.instance(iid)
    return [
        fw
        for fw in sim.world.firewalls.values()
        if any(d.entity_type == "linode" and d.entity_id == iid for d in fw.devices.values())
    ]


# --- the account --------------------------------------------------------------------------


def profile(sim: Simulator) -> dict[str, Any]:
    return {
        "username": sim.config.username,
        "email": f"{sim.config.username}@example.com",
        "uid": 1001,
        "timezone": "UTC",
        "email_notifications": False,
        "ip_whitelist_enabled": False,
        "lish_auth_method": "keys_only",
        "authorized_keys": [],
        "two_factor_auth": False,
        "restricted": False,
        "verified_phone_number": None,
        "authentication_type": "password",
        "referrals": {"code": "", "url": "", "total": 0, "completed": 0, "pending": 0, "credit": 0},
    }


def account(sim: Simulator) -> dict[str, Any]:
    return {
        "euuid": "e1af5eec-526f-487d-b317-ebeb34c87d71",
        "company": "swarmboot simulator",
        "email": f"{sim.config.username}@example.com",
        "first_name": "Swarm",
        "last_name": "Boot",
        "address_1": "1 Example Street",
        "address_2": "",
        "city": "Example",
        "state": "",
        "zip": "00000",
        "country": "DE",
        "phone": "",
        "tax_id": "",
        "balance": 0,
        "balance_uninvoiced": 0,
        "active_since": "2024-01-01T00:00:00",
        "capabilities": [
            "Linodes",
            "NodeBalancers",
            "Block Storage",
            "Object Storage",
            "Cloud Firewall",
            "Vlans",
            "VPCs",
            "Kubernetes",
            "Placement Group",
        ],
        "active_promotions": [],
        "billing_source": "linode",
        "credit_card": {"last_four": "0000", "expiry": "12/2030"},
    }
