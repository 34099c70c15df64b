"""Linode instances: create, boot, reboot, shut down, rebuild, delete; configs, disks, IPs.

Each call checks its body as the API does, changes the records under the simulator's lock,
logs the event, and schedules the transition that takes time; the transitions themselves are
the engine's (`swarmboot.sim.engine`), which carries them out when a job is due.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from swarmboot import udf
from swarmboot.sim import catalog, interfaces, placement, profiles, resources, vpcs
from swarmboot.sim import ips as ips_model
from swarmboot.sim import ipv6 as ipv6_model
from swarmboot.sim.engine import Simulator, begin_boot, machine_of
from swarmboot.sim.errors import ApiError, Problem, bad_request
from swarmboot.sim.inputs import Body, check_label
from swarmboot.sim.model import Config, Disk, Instance
from swarmboot.sim.network import Exhausted, NoRange

__all__ = [
    "boot",
    "busy",
    "create",
    "delete",
    "reboot",
    "rebuild",
    "shutdown",
    "update",
    "update_config",
]

_CREATE_FIELDS = frozenset(
    {
        "region",
        "type",
        "image",
        "label",
        "tags",
        "group",
        "root_pass",
        "authorized_keys",
        "authorized_users",
        "stackscript_id",
        "stackscript_data",
        "private_ip",
        "firewall_id",
        "metadata",
        "booted",
        "backups_enabled",
        "backup_id",
        "swap_size",
        "interfaces",
        "interface_generation",
        "placement_group",
        # 4.229.1's additions that the simulator serves (maintenance_policy and ipv4, a
        # reserved address, are not: their products are out of its scope).
        "disk_encryption",
        "kernel",
        "boot_size",
        "network_helper",
    }
)
DISK_ENCRYPTION = "Disk Encryption"  # the region capability
_REBUILD_FIELDS = frozenset(
    {
        "image",
        "root_pass",
        "authorized_keys",
        "authorized_users",
        "stackscript_id",
        "stackscript_data",
        "booted",
        "metadata",
        "type",
        "disk_encryption",  # 4.229.1: the rebuilt disks' encryption
    }
)
_QUIET = ("running", "offline")
_SWAP_MB = 512


def _busy(inst: Instance) -> ApiError:
    return ApiError(400, (Problem("Linode busy."),))


def busy(inst: Instance) -> ApiError:
    """The API's answer to an action on a Linode in transition."""
    return _busy(inst)


def _require_quiet(inst: Instance) -> None:
    if inst.status not in _QUIET:
        raise _busy(inst)


# --- what an instance is deployed with ----------------------------------------------------


# Linode's limit on metadata.user_data: 65,535 bytes before base64.
MAX_USER_DATA_BYTES = 65_535


def _user_data(sim: Simulator, body: Body, region: str, image: str | None) -> str | None:
    """metadata.user_data as Linode takes it: base64 of at most 65,535 bytes, for an image
    with the cloud-init capability in a region with the Metadata service."""
    metadata = body.dict("metadata") or {}
    user_data = metadata.get("user_data")
    if user_data is None:
        return None
    if not isinstance(user_data, str):
        raise bad_request("user_data must be a base64 encoded string", "metadata.user_data")
    try:
        decoded = base64.b64decode(user_data, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(
            "user_data must be a base64 encoded string", "metadata.user_data"
        ) from None
    if len(decoded) > MAX_USER_DATA_BYTES:
        raise bad_request(
            f"user_data must not exceed {MAX_USER_DATA_BYTES} bytes before encoding",
            "metadata.user_data",
        )
    withheld = sim.config.withheld
    if catalog.METADATA not in (catalog.region(region, withheld) or {}).get("capabilities", ()):
        raise bad_request(
            f"Region {region} does not support the Metadata service", "metadata.user_data"
        )
    if image is None or catalog.CLOUD_INIT not in (catalog.image(image, withheld) or {}).get(
        "capabilities", ()
    ):
        raise bad_request(f"Image {image} does not support cloud-init", "metadata.user_data")
    return user_data


def _deployment(sim: Simulator, body: Body, region: str, *, rebuilding: bool) -> dict[str, Any]:
    """The image, credentials, StackScript and user data of a create or rebuild."""
    # The real API's words (linode-cli's own suite asserts them).
    image = body.str("image")
    if image is None and rebuilding:
        raise bad_request("You must specify an image", "image")
    if image is not None and catalog.image(image) is None:
        raise bad_request("image is not valid", "image")
    root_pass = body.str("root_pass")
    if root_pass is not None and (
        len(root_pass) < 11 or root_pass.isalpha() or root_pass.isdigit()
    ):
        raise bad_request("Password does not meet strength requirement.", "root_pass")
    keys = body.strings("authorized_keys")
    for key in keys:  # the real API takes even a bare key type (linode-cli's suite sends one)
        if not key.strip() or "\n" in key.strip():
            raise bad_request("Invalid SSH public key", "authorized_keys")
    if body.strings("authorized_users"):
        raise bad_request("No such user in this account", "authorized_users")
    if image is not None and root_pass is None and not keys:
        raise bad_request(
            "Must provide valid root_pass, authorized_keys, or authorized_users", "root_pass"
        )
    script_id = body.int("stackscript_id")
    script = None
    data: dict[str, str] = {}
    if script_id is not None:
        if image is None:
            raise bad_request("An image is required to deploy a StackScript", "image")
        script = sim.world.stackscripts.get(script_id) or resources.public_stackscript(script_id)
        if script is None or not (script.mine or script.is_public):
            raise bad_request("StackScript not found", "stackscript_id")
        if image not in script.images and "any/all" not in script.images:
            raise bad_request(f"StackScript is not compatible with image {image}", "image")
        raw_data = body.dict("stackscript_data") or {}
        declared = tuple(
            udf.Udf(
                name=u["name"],
                label=u["label"],
                default=u.get("default"),
                oneof=tuple(u["oneof"].split(",")) if u.get("oneof") else (),
                manyof=tuple(u["manyof"].split(",")) if u.get("manyof") else (),
            )
            for u in script.user_defined_fields
        )
        problems = udf.check_data(declared, raw_data)
        if problems:
            raise ApiError(
                400, tuple(Problem(p.split(": ", 1)[1], "stackscript_data") for p in problems)
            )
        data = {k: str(v) for k, v in raw_data.items()}
    elif "stackscript_data" in body and body.dict("stackscript_data"):
        raise bad_request("stackscript_data needs a stackscript_id", "stackscript_data")
    user_data = _user_data(sim, body, region, image)
    return {
        "image": image,
        "root_pass": root_pass,
        "authorized_keys": keys,
        "stackscript_id": script_id,
        "stackscript": script.script if script else None,
        "stackscript_data": data,
        "user_data": user_data,
        "script": script,
    }


def _lay_disks(
    sim: Simulator,
    inst: Instance,
    image: str | None,
    swap_mb: int,
    kernel: str | None = None,
    boot_size: int | None = None,
) -> None:
    """The disks and config profile Linode makes for an image: root (`boot_size` MB, else
    the rest of the plan's disk), swap, one profile (booting `kernel`, else the default)."""
    inst.disks.clear()
    inst.configs.clear()
    if image is None:
        return
    now = sim.now()
    spec = catalog.type_(inst.type) or {"disk": 25600}
    name = (catalog.image(image) or {"label": image})["label"]
    root = Disk(
        id=sim.world.new_id("disk"),
        label=f"{name} Disk",
        size=boot_size if boot_size is not None else spec["disk"] - swap_mb,
        filesystem="ext4",
        status="ready",
        created=now,
        updated=now,
        disk_encryption=inst.disk_encryption,
    )
    swap = Disk(
        id=sim.world.new_id("disk"),
        label=f"{swap_mb} MB Swap Image",
        size=swap_mb,
        filesystem="swap",
        status="ready",
        created=now,
        updated=now,
        disk_encryption=inst.disk_encryption,
    )
    inst.disks = {root.id: root, swap.id: swap}
    devices: dict[str, Any] = {f"sd{c}": None for c in "abcdefgh"}
    devices["sda"] = {"disk_id": root.id, "volume_id": None}
    devices["sdb"] = {"disk_id": swap.id, "volume_id": None}
    config = Config(
        id=sim.world.new_id("config"),
        label=f"My {name} Disk Profile",
        kernel=kernel or sim.config.default_kernel,
        devices=devices,
    )
    inst.configs = {config.id: config}


def _disk_encryption(body: Body, region: str, withheld: catalog.Withheld) -> str:
    """`enabled` or `disabled`; left out, enabled where the region offers it, as Linode
    does for new Linodes (linodego's recorded creates all come back `enabled`)."""
    offered = DISK_ENCRYPTION in (catalog.region(region, withheld) or {}).get("capabilities", ())
    wanted = body.str("disk_encryption")
    if wanted is None:
        return "enabled" if offered else "disabled"
    if wanted not in ("enabled", "disabled"):
        raise bad_request("Must be enabled or disabled", "disk_encryption")
    if wanted == "enabled" and not offered:
        raise bad_request(f"Disk encryption is not available in {region}", "disk_encryption")
    return wanted


# --- calls --------------------------------------------------------------------------------


def create(sim: Simulator, raw: Any) -> Instance:
    body = Body(raw, _CREATE_FIELDS)
    region = body.str("region", required=True) or ""
    type_id = body.str("type", required=True)
    # Both at once, in the real API's words and order (linode_api4's test_error_400).
    wrong = []
    if catalog.type_(type_id) is None:
        wrong.append(Problem("A valid plan type by that ID was not found", "type"))
    if catalog.region(region) is None:
        wrong.append(Problem("region is not valid", "region"))
    if wrong:
        raise ApiError(400, tuple(wrong))
    with sim.lock:  # it looks up the StackScript
        deployment = _deployment(sim, body, region, rebuilding=False)
    label = body.str("label")
    tags = body.strings("tags")
    for tag in tags:
        if not 3 <= len(tag) <= 50:
            raise bad_request("Length must be 3-50 characters", "tags")
    firewall_id = body.int("firewall_id")
    booted = body.bool("booted", default=deployment["image"] is not None)
    if booted and deployment["image"] is None:
        raise bad_request("You must provide an image to boot a Linode", "booted")
    private_ip = body.bool("private_ip", default=False)
    swap = body.int("swap_size", default=_SWAP_MB)
    encryption = _disk_encryption(body, region, sim.config.withheld)
    kernel = body.str("kernel")
    if kernel is not None and catalog.kernel(kernel) is None:
        raise bad_request(f"Kernel {kernel} not found", "kernel")
    boot_size = body.int("boot_size")
    if boot_size is not None:
        if deployment["image"] is None:
            raise bad_request("boot_size needs an image", "boot_size")
        room = (catalog.type_(type_id) or {}).get("disk", 0) - swap
        if not 1 <= boot_size <= room:
            raise bad_request(f"Must be 1-{room} MB (the plan's disk less swap)", "boot_size")
    network_helper = body.bool("network_helper", default=True)
    joins = body.dict("placement_group")
    generation = interfaces.new_generation(sim.world, body.str("interface_generation"))
    wanted_interfaces = body.raw.get("interfaces") or []
    if not isinstance(wanted_interfaces, list):
        raise bad_request("Must be a list of interfaces", "interfaces")
    # A `linode` Linode made without interfaces has none (linode_api4's suite adds a
    # public interface to such a Linode, which a Linode with one already would refuse),
    # though it has its public addresses.
    if generation == "linode" and firewall_id is not None:
        # linode-cli's own suite sends both, and the real API takes it: the simulator
        # puts it on each public or VPC interface that names no firewall of its own.
        wanted_interfaces = [
            {**item, "firewall_id": firewall_id}
            if isinstance(item, dict)
            and item.get("firewall_id") is None
            and ("public" in item or "vpc" in item)
            else item
            for item in wanted_interfaces
        ]
        firewall_id = None
    with sim.lock:
        if label is None:
            label = f"linode{sim.world.next_ids['linode']}"
        check_label(label, "label", low=3, high=64)
        if any(i.label == label for i in sim.world.instances.values()):
            raise bad_request("Label must be unique among your linodes", "label")
        firewall = None
        if firewall_id is not None:
            firewall = sim.world.firewalls.get(firewall_id)
            if firewall is None:
                raise bad_request(f"Firewall {firewall_id} not found", "firewall_id")
        # Its host: one of its own, or the region's crowded one (the shared_host fault).
        planned = sim.world.next_ids["linode"]  # its id, taken below under the same lock
        if sim.faults.lands_on_shared_host(label, sim.clock()):
            host = placement.shared_host(region)
        else:
            host = placement.own_host(planned)
        group = None
        if joins is not None:
            group = placement.group_for_new_linode(sim.world, joins, region, planned, host)
        try:
            public = sim.addresses.take_public(region)
        except NoRange:
            raise bad_request(
                f"The simulator has no public IPv4 range for {region}; start it "
                f"with --public-range {region}=CIDR",
                "region",
            ) from None
        except Exhausted:
            raise bad_request(f"No IPv4 addresses are left in {region}", "region") from None
        private = None
        if private_ip:
            try:
                private = sim.addresses.take_private(region)
            except Exhausted:
                sim.addresses.release(public)
                raise bad_request("No private IPv4 addresses are left", "private_ip") from None
        iid = sim.world.new_id("linode")
        now = sim.now()
        inst = Instance(
            id=iid,
            label=label,
            region=region,
            type=type_id,
            image=deployment["image"],
            status="provisioning",
            created=now,
            updated=now,
            ipv4_public=public,
            ipv4_private=private,
            ipv6=sim.addresses.slaac(region, iid),
            host_uuid=host,
            tags=sorted(set(tags)),
            group=body.str("group", default="") or "",
            root_pass=deployment["root_pass"],
            authorized_keys=deployment["authorized_keys"],
            stackscript_id=deployment["stackscript_id"],
            stackscript=deployment["stackscript"],
            stackscript_data=deployment["stackscript_data"],
            user_data=deployment["user_data"],
            has_user_data=deployment["user_data"] is not None,
            placement_group_id=group.id if group is not None else None,
            interface_generation=generation or "legacy_config",
            disk_encryption=encryption,
            network_helper=bool(network_helper),
        )
        if generation == "linode":
            try:
                for n, item in enumerate(wanted_interfaces):
                    interfaces.create(
                        sim.world, inst, item, now, f"interfaces[{n}].", book=sim.addresses
                    )
            except ApiError:
                for iface in inst.interfaces.values():  # all or none: no device left behind
                    interfaces.set_firewall(sim.world, inst, iface, None, now)
                sim.addresses.release(public, private, *inst.extra_public)
                ipv6_model.forget_linode(sim.world, inst.id)
                raise
        _lay_disks(sim, inst, deployment["image"], swap, kernel, boot_size)
        if generation != "linode" and wanted_interfaces:
            if not inst.configs:
                sim.addresses.release(public, private)
                raise bad_request("Interfaces need an image: they go in its profile", "interfaces")
            config = next(iter(inst.configs.values()))
            try:
                profiles.set_interfaces(sim.world, inst, config, wanted_interfaces, "interfaces")
            except ApiError:
                sim.addresses.release(public, private)
                raise
        sim.world.instances[iid] = inst
        if deployment["script"] is not None:
            deployment["script"].deployments_total += 1
            deployment["script"].deployments_active += 1
        event = sim.event("linode_create", sim.linode_entity(inst), "started")
        if firewall is not None:
            resources.attach(sim, firewall, inst)
        if not sim.faults.stuck_in_provisioning(label, sim.clock()):
            sim.schedule(
                sim.config.timings.of("provision"),
                "provisioned_boot" if booted else "provisioned",
                inst,
                event,
            )
        sim.count("instances_created")
        return inst


def update(sim: Simulator, iid: int, raw: Any) -> Instance:
    body = Body(raw)
    with sim.lock:
        inst = sim.instance(iid)
        if "label" in body:
            label = check_label(body.str("label"), "label", low=3, high=64)
            if any(i.label == label and i.id != iid for i in sim.world.instances.values()):
                raise bad_request("Label must be unique among your linodes", "label")
            inst.label = label
        if "tags" in body:
            inst.tags = sorted(set(body.strings("tags")))
        if "group" in body:
            inst.group = body.str("group") or ""
        if "watchdog_enabled" in body:
            inst.watchdog_enabled = bool(body.bool("watchdog_enabled"))
        inst.updated = sim.now()
        sim.event("linode_update", sim.linode_entity(inst), "notification")
        return inst


def _pick_config(inst: Instance, raw: Any) -> Config:
    config_id = Body(raw).int("config_id")
    if config_id is not None:
        config = inst.configs.get(config_id)
        if config is None:
            raise bad_request("Config not found", "config_id")
        return config
    if not inst.configs:
        raise bad_request("Linode has no configuration profiles to boot")
    return next(iter(inst.configs.values()))


def boot(sim: Simulator, iid: int, raw: Any) -> None:
    with sim.lock:
        inst = sim.instance(iid)
        _require_quiet(inst)
        config = _pick_config(inst, raw)
        if inst.status == "running":
            return
        begin_boot(sim, inst, "linode_boot", config)


def reboot(sim: Simulator, iid: int, raw: Any) -> None:
    with sim.lock:
        inst = sim.instance(iid)
        _require_quiet(inst)
        config = _pick_config(inst, raw)
        if inst.status == "offline":
            begin_boot(sim, inst, "linode_reboot", config)
            return
        inst.status = "rebooting"
        inst.updated = sim.now()
        event = sim.event("linode_reboot", sim.linode_entity(inst), "started")
        machine = machine_of(sim, inst)
        start = sim.machine_call(
            inst.id, lambda: (sim.backend.stop(inst.id), sim.backend.start(machine))
        )
        sim.pending_boots[inst.id] = start
        sim.schedule(sim.config.timings.of("reboot"), "booted", inst, event)


def shutdown(sim: Simulator, iid: int) -> None:
    with sim.lock:
        inst = sim.instance(iid)
        _require_quiet(inst)
        if inst.status == "offline":
            return
        inst.status = "shutting_down"
        inst.updated = sim.now()
        event = sim.event("linode_shutdown", sim.linode_entity(inst), "started")
        sim.pending_stops[iid] = sim.machine_call(inst.id, lambda: sim.backend.stop(iid))
        sim.schedule(sim.config.timings.of("shutdown"), "shut_down", inst, event)


def rebuild(sim: Simulator, iid: int, raw: Any) -> Instance:
    body = Body(raw, _REBUILD_FIELDS)
    booted = body.bool("booted", default=True)
    with sim.lock:
        inst = sim.instance(iid)
        _require_quiet(inst)
        deployment = _deployment(sim, body, inst.region, rebuilding=True)
        if "disk_encryption" in body:
            inst.disk_encryption = _disk_encryption(body, inst.region, sim.config.withheld)
        previous = sim.world.stackscripts.get(inst.stackscript_id or 0)
        if previous is not None:
            previous.deployments_active = max(0, previous.deployments_active - 1)
        inst.generation += 1
        inst.image = deployment["image"]
        inst.root_pass = deployment["root_pass"]
        inst.authorized_keys = deployment["authorized_keys"]
        inst.stackscript_id = deployment["stackscript_id"]
        inst.stackscript = deployment["stackscript"]
        inst.stackscript_data = deployment["stackscript_data"]
        inst.user_data = deployment["user_data"]
        inst.has_user_data = deployment["user_data"] is not None
        inst.first_boot = True
        if deployment["script"] is not None:
            deployment["script"].deployments_total += 1
            deployment["script"].deployments_active += 1
        _lay_disks(sim, inst, inst.image, _SWAP_MB)
        inst.status = "rebuilding"
        inst.updated = sim.now()
        event = sim.event("linode_rebuild", sim.linode_entity(inst), "started")
        machine = machine_of(sim, inst)
        sim.machine_call(inst.id, lambda: (sim.backend.stop(iid), sim.backend.rebuild(machine)))
        sim.schedule(
            sim.config.timings.of("rebuild"), "rebuilt_boot" if booted else "rebuilt", inst, event
        )
        return inst


def delete(sim: Simulator, iid: int) -> None:
    with sim.lock:
        inst = sim.instance(iid)
        inst.generation += 1
        del sim.world.instances[iid]
        sim.addresses.release(inst.ipv4_public, inst.ipv4_private, *inst.extra_public)
        ipv6_model.forget_linode(sim.world, iid)  # its ranges go with it
        for other in sim.world.instances.values():  # its addresses are no longer shared
            other.shared_ipv4 = [
                a
                for a in other.shared_ipv4
                if a not in (inst.ipv4_public, inst.ipv4_private, *inst.extra_public)
            ]
        script = sim.world.stackscripts.get(inst.stackscript_id or 0)
        if script is not None:
            script.deployments_active = max(0, script.deployments_active - 1)
        for firewall in sim.world.firewalls.values():
            for device_id, device in list(firewall.devices.items()):
                if device.entity_id == iid if device.parent_id is None else device.parent_id == iid:
                    del firewall.devices[device_id]
        sim.event("linode_delete", sim.linode_entity(inst), "notification")
        sim.machine_call(iid, lambda: sim.backend.delete(iid))
        sim.pending_boots.pop(iid, None)
        sim.pending_stops.pop(iid, None)
        sim.count("instances_deleted")


def update_config(sim: Simulator, iid: int, config_id: int, raw: Any) -> Config:
    body = Body(raw)
    with sim.lock:
        inst = sim.instance(iid)
        config = inst.configs.get(config_id)
        if config is None:
            raise ApiError(404, (Problem("Not found"),))
        if "kernel" in body:
            kernel = body.str("kernel")
            if catalog.kernel(kernel or "") is None:
                raise bad_request(f"Kernel {kernel} not found", "kernel")
            config.kernel = kernel  # type: ignore[assignment]
        if "label" in body:
            label = body.str("label") or ""
            if not 1 <= len(label) <= 48:
                raise bad_request("Label must be 1-48 characters", "label")
            config.label = label
        for key, choices in (
            ("run_level", ("default", "single", "binbash")),
            ("virt_mode", ("paravirt", "fullvirt")),
        ):
            if key in body:
                value = body.str(key)
                if value not in choices:
                    raise bad_request(f"Must be one of {', '.join(choices)}", key)
                setattr(config, key, value)
        if "root_device" in body:
            config.root_device = body.str("root_device") or "/dev/sda"
        if "comments" in body:
            config.comments = body.str("comments")
        if "memory_limit" in body:
            config.memory_limit = body.int("memory_limit") or 0
        if "helpers" in body:
            helpers = body.dict("helpers") or {}
            unknown = set(helpers) - set(config.helpers)
            if unknown or not all(isinstance(v, bool) for v in helpers.values()):
                raise bad_request("Invalid helpers", "helpers")
            config.helpers.update(helpers)
        if "devices" in body:
            devices = body.dict("devices") or {}
            for slot, device in devices.items():
                if slot not in config.devices:
                    raise bad_request(f"Invalid device slot {slot}", "devices")
                if device is not None and not isinstance(device, dict):
                    raise bad_request("Must be an object or null", f"devices.{slot}")
                if device is not None and device.get("disk_id") not in (*inst.disks, None):
                    raise bad_request("Disk not found", f"devices.{slot}.disk_id")
                config.devices[slot] = device
        if "interfaces" in body:
            profiles.set_interfaces(sim.world, inst, config, body.raw["interfaces"], "interfaces")
        inst.updated = sim.now()
        sim.event("linode_config_update", sim.linode_entity(inst), "notification")
        return config


def ips(sim: Simulator, iid: int) -> dict[str, Any]:
    with sim.lock:
        inst = sim.instance(iid)
        slaac = inst.ipv6.split("/")[0]
        v6 = {
            "address": slaac,
            "gateway": "fe80::1",
            "subnet_mask": "ffff:ffff:ffff:ffff::",
            "prefix": 64,
            "type": "ipv6",
            "public": True,
            "rdns": None,
            "linode_id": inst.id,
            "region": inst.region,
        }
        link_local = dict(
            v6,
            address="fe80::" + slaac.split("::", 1)[-1],
            public=False,
            rdns=None,
            subnet_mask="ffff:ffff:ffff:ffff::",
        )
        return {
            "ipv4": ips_model.linode_ips(sim.world, sim.addresses, inst),
            "ipv6": {
                "slaac": v6,
                "link_local": link_local,
                "global": ipv6_model.global_api(sim.world, inst),
                "vpc": vpcs.ipv6s(sim.world, linode_id=inst.id),
            },
        }
