"""Cloud Firewall templates (`/networking/firewalls/templates`) and the account's default
firewalls (`/networking/firewalls/settings`), as 4.229.1 has them.

The templates' shapes are linodego's recorded ones (TestFirewallTemplates_List,
TestFirewallTemplate_Get), with documentation addresses where Linode lists its own proxies.
The default firewalls are kept and shown; the simulator does not put them on new Linodes or
interfaces (not modelled)."""

from __future__ import annotations

import copy
from typing import Any

from swarmboot.sim.errors import bad_request, not_found
from swarmboot.sim.inputs import Body
from swarmboot.sim.model import World

__all__ = ["DEFAULT_KINDS", "settings", "template", "templates", "update_settings"]

_ANYWHERE = {"ipv4": ["0.0.0.0/0"], "ipv6": ["::/0"]}
_SSH = {
    "protocol": "TCP",
    "ports": "22",
    "addresses": _ANYWHERE,
    "action": "ACCEPT",
    "label": "accept-inbound-ssh",
    "description": "Accept inbound SSH",
}
_ICMP = {
    "protocol": "ICMP",
    "addresses": _ANYWHERE,
    "action": "ACCEPT",
    "label": "accept-inbound-icmp",
    "description": "Accept inbound ICMP",
}
_PROXIES = {
    "protocol": "TCP",
    "ports": "22,443",
    "addresses": {"ipv4": ["192.0.2.4/30", "198.51.100.4/30"], "ipv6": ["2001:db8::4/128"]},
    "action": "ACCEPT",
    "label": "accept-inbound-tcp-ssh-proxies",
    "description": "Accept inbound TCP from SSH proxies",
}
_TEMPLATES: dict[str, dict[str, Any]] = {
    "akamai-non-prod": {"inbound": [_ICMP, _PROXIES]},
    "vpc": {"inbound": [_SSH, _ICMP]},
    "public": {"inbound": [_SSH, _ICMP]},
}
DEFAULT_KINDS = ("linode", "nodebalancer", "public_interface", "vpc_interface")


def _api(slug: str) -> dict[str, Any]:
    rules = {
        "inbound": copy.deepcopy(_TEMPLATES[slug]["inbound"]),
        "inbound_policy": "DROP",
        "outbound": [],
        "outbound_policy": "ACCEPT",
    }
    return {"slug": slug, "rules": rules}


def templates() -> list[dict[str, Any]]:
    return [_api(slug) for slug in _TEMPLATES]


def template(slug: str) -> dict[str, Any]:
    if slug not in _TEMPLATES:
        raise not_found()
    return _api(slug)


def settings(world: World) -> dict[str, Any]:
    ids = {kind: world.firewall_defaults.get(kind) for kind in DEFAULT_KINDS}
    return {"default_firewall_ids": ids}


def update_settings(world: World, raw: Any) -> dict[str, Any]:
    """PUT /networking/firewalls/settings: each default a firewall of the account, or null."""
    body = Body(raw, frozenset({"default_firewall_ids"}))
    wanted = Body(body.dict("default_firewall_ids") or {}, frozenset(DEFAULT_KINDS))
    for kind in DEFAULT_KINDS:
        if kind not in wanted:
            continue
        firewall_id = wanted.int(kind)
        if firewall_id is not None and firewall_id not in world.firewalls:
            raise bad_request(f"Firewall {firewall_id} not found", f"default_firewall_ids.{kind}")
    for kind in DEFAULT_KINDS:
        if kind in wanted:
            world.firewall_defaults[kind] = wanted.int(kind)
    return settings(world)
