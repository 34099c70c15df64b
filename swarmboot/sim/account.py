"""The account's own records beside its Linodes: tags, the profile's SSH keys, events seen.

Models: they take the account's `World` and the time, never the engine."""

from __future__ import annotations

import re
from typing import Any

from swarmboot.sim import placement
from swarmboot.sim.errors import bad_request, not_found
from swarmboot.sim.inputs import Body
from swarmboot.sim.model import SshKey, World

__all__ = [
    "create_ssh_key",
    "create_tag",
    "delete_ssh_key",
    "delete_tag",
    "mark_seen",
    "ssh_key",
    "tagged",
    "tags",
    "update_ssh_key",
]

# What POST /tags may tag. Only Linodes are served; the other kinds belong to products
# outside the simulator's scope, so any id of theirs is one the account does not have.
_TAG_KINDS = ("linodes", "domains", "nodebalancers", "volumes", "reserved_ipv4_addresses")
# An SSH public key: a key type, base64, an optional comment (as Linode checks it).
_SSH_KEY = re.compile(
    r"(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)"
    r"@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\r\n]*)?"
)


# --- tags ----------------------------------------------------------------------------------


def tags(world: World) -> list[str]:
    """Every tag of the account: those made with POST /tags and those its objects carry."""
    found = set(world.tags)
    for inst in world.instances.values():
        found.update(inst.tags)
    for fw in world.firewalls.values():
        found.update(fw.tags)
    return sorted(found)


def _tag_label(value: Any) -> str:
    if not isinstance(value, str):
        raise bad_request("Must be a string", "label")
    if not 3 <= len(value) <= 50:
        raise bad_request("Length must be 3-50 characters", "label")
    return value


def create_tag(world: World, raw: Any) -> dict[str, Any]:
    """POST /tags: the tag, put on the Linodes named (all or none)."""
    body = Body(raw, frozenset({"label", *_TAG_KINDS}))
    label = _tag_label(body.raw.get("label"))
    linodes = []
    for linode_id in body.ints("linodes"):
        inst = world.instances.get(linode_id)
        if inst is None:
            raise bad_request(f"Linode {linode_id} not found", "linodes")
        linodes.append(inst)
    for kind in _TAG_KINDS[1:]:
        if body.raw.get(kind):
            raise bad_request(f"{kind}: not found", kind)
    if label not in world.tags:
        world.tags.append(label)
    for inst in linodes:
        if label not in inst.tags:
            inst.tags = sorted({*inst.tags, label})
    return {"label": label}


def tagged(world: World, label: str) -> list[dict[str, Any]]:
    """GET /tags/{label}: the objects that carry it, each as {type, data}."""
    if label not in tags(world):
        raise not_found()
    return [
        {"type": "linode", "data": placement.linode_api(world, inst)}
        for inst in world.instances.values()
        if label in inst.tags
    ]


def delete_tag(world: World, label: str) -> None:
    """DELETE /tags/{label}: gone from the account and from every object carrying it."""
    if label not in tags(world):
        raise not_found()
    world.tags = [t for t in world.tags if t != label]
    for inst in world.instances.values():
        inst.tags = [t for t in inst.tags if t != label]
    for fw in world.firewalls.values():
        fw.tags = [t for t in fw.tags if t != label]


# --- the profile's SSH keys ----------------------------------------------------------------


def ssh_key(world: World, key_id: int) -> SshKey:
    found = world.ssh_keys.get(key_id)
    if found is None:
        raise not_found()
    return found


def create_ssh_key(world: World, raw: Any, now: str) -> SshKey:
    body = Body(raw, frozenset({"label", "ssh_key"}), frozenset({"id", "created"}))
    text = body.str("ssh_key", required=True) or ""
    if not _SSH_KEY.fullmatch(text.strip()):
        raise bad_request("Invalid SSH key", "ssh_key")
    label = body.str("label", default="") or ""
    if len(label) > 64:
        raise bad_request("Length must be 0-64 characters", "label")
    key = SshKey(id=world.new_id("ssh_key"), label=label, ssh_key=text.strip(), created=now)
    world.ssh_keys[key.id] = key
    return key


def update_ssh_key(world: World, key_id: int, raw: Any) -> SshKey:
    key = ssh_key(world, key_id)
    body = Body(raw, frozenset({"label"}), frozenset({"id", "created", "ssh_key"}))
    if "label" in body:
        label = body.str("label") or ""
        if len(label) > 64:
            raise bad_request("Length must be 0-64 characters", "label")
        key.label = label
    return key


def delete_ssh_key(world: World, key_id: int) -> None:
    ssh_key(world, key_id)
    del world.ssh_keys[key_id]


# --- events --------------------------------------------------------------------------------


def mark_seen(world: World, event_id: int) -> None:
    """POST /account/events/{id}/seen: that event and every older one are seen."""
    if event_id not in world.events:
        raise not_found()
    for event in world.events.values():
        if event.id <= event_id:
            event.seen = True
