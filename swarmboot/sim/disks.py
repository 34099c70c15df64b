"""A Linode's disks: made, renamed, resized, cloned, given a root password, deleted, within
the plan's disk space, as `/linode/instances/{id}/disks` serves them.

Models: they take the account's `World` and records, never the engine. A disk is `ready` at
once (the simulator's disks hold nothing to copy)."""

from __future__ import annotations

from typing import Any

from swarmboot.sim import catalog
from swarmboot.sim.errors import bad_request, not_found
from swarmboot.sim.inputs import Body
from swarmboot.sim.model import Disk, Instance, World

__all__ = ["clone", "create", "delete", "disk", "free_mb", "reset_password", "resize", "update"]

FILESYSTEMS = ("raw", "swap", "ext3", "ext4", "initrd")
_CREATE = frozenset(
    {
        "label",
        "size",
        "filesystem",
        "image",
        "root_pass",
        "authorized_keys",
        "authorized_users",
        "stackscript_id",
        "stackscript_data",
        # linode_api4's disk_create sends `read_only` (false) always, and the real API takes
        # it (`disk-create-read-only`); a disk takes its Linode's encryption.
        "read_only",
        "disk_encryption",
    }
)
_READ_ONLY = frozenset({"id", "status", "created", "updated", "disk_encryption"})
_QUIET = ("running", "offline")


def disk(inst: Instance, disk_id: int) -> Disk:
    found = inst.disks.get(disk_id)
    if found is None:
        raise not_found()
    return found


def free_mb(inst: Instance) -> int:
    """The plan's disk space not taken by the Linode's disks."""
    total = (catalog.type_(inst.type) or {}).get("disk", 0)
    return total - sum(d.size for d in inst.disks.values())


def _quiet(inst: Instance) -> None:
    if inst.status not in _QUIET:
        raise bad_request("Linode busy.")


def _label(value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 48:
        raise bad_request("Length must be 1-48 characters", "label")
    return value


def _root_pass(value: Any, field: str) -> str:
    if not isinstance(value, str) or not 11 <= len(value) <= 128:
        raise bad_request("Password must be 11-128 characters", field)
    kinds = sum(
        any(test(c) for c in value)
        for test in (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum())
    )
    if kinds < 2:
        raise bad_request("Password does not meet strength requirement", field)
    return value


def create(world: World, inst: Instance, raw: Any, now: str, ready_at: float | None = None) -> Disk:
    """A new disk, `not ready` until `ready_at` (epoch)."""
    _quiet(inst)
    body = Body(raw, _CREATE, _READ_ONLY)
    size = body.int("size", required=True) or 0
    if body.bool("read_only"):
        raise bad_request("Read-only disks are not simulated", "read_only")
    image = body.str("image")
    if image is not None and catalog.image(image) is None:
        raise bad_request(f"Image {image} not found", "image")
    if (
        image is not None
        and body.raw.get("root_pass") is None
        and not body.raw.get("authorized_keys")
    ):
        raise bad_request("root_pass is required when deploying an image", "root_pass")
    if body.raw.get("root_pass") is not None:
        _root_pass(body.raw["root_pass"], "root_pass")
    if not 1 <= size <= free_mb(inst):
        raise bad_request(f"Must be 1-{free_mb(inst)} MB (the space left)", "size")
    filesystem = body.str("filesystem") or "ext4"
    if filesystem not in FILESYSTEMS:
        raise bad_request(f"Must be one of {', '.join(FILESYSTEMS)}", "filesystem")
    label = _label(
        body.str("label") or f"{(catalog.image(image or '') or {}).get('label', 'New')} Disk"
    )
    made = Disk(
        id=world.new_id("disk"),
        label=label,
        size=size,
        filesystem=filesystem,
        status="ready",
        created=now,
        updated=now,
        disk_encryption=inst.disk_encryption,
        ready_at=ready_at,
    )
    inst.disks[made.id] = made
    return made


def update(inst: Instance, disk_id: int, raw: Any, now: str) -> Disk:
    found = disk(inst, disk_id)
    body = Body(raw, frozenset({"label"}), _READ_ONLY | {"size", "filesystem"})
    if "label" in body:
        found.label = _label(body.str("label"))
    found.updated = now
    return found


def resize(inst: Instance, disk_id: int, raw: Any, now: str) -> Disk:
    found = disk(inst, disk_id)
    _quiet(inst)
    if inst.status == "running":
        raise bad_request("Linode must be shut down to resize a disk")
    size = Body(raw, frozenset({"size"})).int("size", required=True) or 0
    room = free_mb(inst) + found.size
    if not 1 <= size <= room:
        raise bad_request(f"Must be 1-{room} MB (the space left)", "size")
    found.size, found.updated = size, now
    return found


def clone(world: World, inst: Instance, disk_id: int, now: str) -> Disk:
    found = disk(inst, disk_id)
    _quiet(inst)
    if found.size > free_mb(inst):
        raise bad_request("Not enough free space to clone this disk")
    copy = Disk(
        id=world.new_id("disk"),
        label=f"Copy of {found.label}"[:48],  # the real API's name (linode-cli's suite)
        size=found.size,
        filesystem=found.filesystem,
        status="ready",
        created=now,
        updated=now,
        disk_encryption=found.disk_encryption,
    )
    inst.disks[copy.id] = copy
    return copy


def reset_password(inst: Instance, disk_id: int, raw: Any) -> None:
    found = disk(inst, disk_id)
    if inst.status == "running":
        raise bad_request("Linode must be shut down to reset a disk's password")
    if found.filesystem in ("swap", "raw", "initrd"):
        raise bad_request("This disk has no filesystem to set a password on", "disk_id")
    _root_pass(Body(raw, frozenset({"password"})).raw.get("password"), "password")


def delete(inst: Instance, disk_id: int) -> None:
    disk(inst, disk_id)
    _quiet(inst)
    del inst.disks[disk_id]
    for cfg in inst.configs.values():
        for slot, device in cfg.devices.items():
            if device and device.get("disk_id") == disk_id:
                cfg.devices[slot] = None


def reset_root_password(inst: Instance, raw: Any) -> None:
    """POST /linode/instances/{id}/password: the root password of its first disk with a
    filesystem; the Linode must be offline."""
    if inst.status != "offline":
        raise bad_request("Linode must be shut down to reset its root password")
    if not any(d.filesystem in ("ext3", "ext4") for d in inst.disks.values()):
        raise bad_request("This Linode has no disk to set a password on")
    _root_pass(Body(raw, frozenset({"root_pass"})).raw.get("root_pass"), "root_pass")
