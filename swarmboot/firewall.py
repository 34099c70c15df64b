"""Firewall contents, computed: the node's nftables member set and the Cloud Firewalls. Pure.

Two layers keep the swarm's ports to its members: each node's own nftables table (the member
set swarmboot rewrites over SSH) and Linode Cloud Firewalls in front of the nodes. Load
balancers sit behind their own Cloud Firewall, which also opens the spec's public ports.
The Cloud Firewalls' inbound policy is DROP; ESP is let in from members by IP protocol number
(50), which the API takes besides TCP, UDP and ICMP.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from swarmboot import facts
from swarmboot.spec import Spec

__all__ = ["cloud_firewall_labels", "cloud_rules", "members_file", "rules_key"]


def members_file(addresses: Iterable[str]) -> str:
    """The content of /etc/swarmboot/swarm-members.nft for these member addresses."""
    members = sorted(set(addresses), key=ipaddress.ip_address)
    lines = ["# Managed by swarmboot: the addresses allowed to reach the swarm ports."]
    if members:
        lines.append(
            f"add element inet {facts.NFT_TABLE} {facts.NFT_MEMBERS_SET} {{ {', '.join(members)} }}"
        )
    return "\n".join(lines) + "\n"


def cloud_firewall_labels(spec: Spec) -> dict[str, bool]:
    """Each Cloud Firewall's label, and whether it is the load balancers' one."""
    return {f"{spec.cluster.name}-nodes": False, f"{spec.cluster.name}-lb": True}


def _sources(items: Iterable[str]) -> dict[str, list[str]]:
    v4, v6 = [], []
    for item in items:
        net = ipaddress.ip_network(item, strict=False)
        (v4 if net.version == 4 else v6).append(str(net))
    out: dict[str, list[str]] = {}
    if v4:
        out["ipv4"] = v4
    if v6:
        out["ipv6"] = v6
    return out


def _rule(
    label: str, protocol: str, sources: Iterable[str], ports: str | None = None
) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "action": "ACCEPT",
        "label": label,
        "protocol": protocol,
        "addresses": _sources(sources),
    }
    if ports is not None:
        rule["ports"] = ports
    return rule


def cloud_rules(spec: Spec, members: Iterable[str], *, lb: bool) -> dict[str, Any]:
    """The rules of a cluster Cloud Firewall, given every member's address."""
    member_sources = [f"{a}/32" for a in sorted(set(members), key=ipaddress.ip_address)]
    inbound = [
        _rule("ssh", "TCP", spec.firewall.ssh_from, "22"),
        _rule("icmp", "ICMP", ["0.0.0.0/0", "::/0"]),
    ]
    if member_sources:
        tcp = ",".join(str(p.number) for p in facts.SWARM_PORTS if p.protocol == "tcp")
        udp = ",".join(str(p.number) for p in facts.SWARM_PORTS if p.protocol == "udp")
        inbound += [
            _rule("swarm-tcp", "TCP", member_sources, tcp),
            _rule("swarm-udp", "UDP", member_sources, udp),
            _rule("swarm-esp", str(facts.ESP_PROTOCOL), member_sources),
        ]
    if lb:
        for n, (port, sources) in enumerate(sorted(spec.firewall.public.items()), start=1):
            number, protocol = port.split("/")
            inbound.append(_rule(f"public-{n}", protocol.upper(), sources, number))
    return {
        "inbound_policy": "DROP",
        "inbound": inbound,
        "outbound_policy": "ACCEPT",
        "outbound": [],
    }


def rules_key(inbound: Iterable[dict[str, Any]]) -> tuple:
    """Rules in a comparable form (what the API returns may order keys differently)."""

    def norm(value: Any) -> Any:
        if isinstance(value, dict):
            return tuple(sorted((k, norm(v)) for k, v in value.items()))
        if isinstance(value, list):
            return tuple(norm(v) for v in value)
        return value

    return tuple(norm(r) for r in inbound)
