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
from dataclasses import dataclass
from typing import Any

from swarmboot import facts
from swarmboot.spec import Spec
from swarmboot.state import CloudFirewall

__all__ = [
    "FirewallRules",
    "Rule",
    "cloud_firewall_labels",
    "cloud_rules",
    "members_file",
    "rules_key",
]


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


@dataclass(frozen=True)
class Rule:
    """One inbound ACCEPT rule of a Cloud Firewall."""

    label: str
    protocol: str
    ipv4: tuple[str, ...] = ()
    ipv6: tuple[str, ...] = ()
    ports: str | None = None

    def api(self) -> dict[str, Any]:
        addresses: dict[str, list[str]] = {}
        if self.ipv4:
            addresses["ipv4"] = list(self.ipv4)
        if self.ipv6:
            addresses["ipv6"] = list(self.ipv6)
        rule: dict[str, Any] = {
            "action": "ACCEPT",
            "label": self.label,
            "protocol": self.protocol,
            "addresses": addresses,
        }
        if self.ports is not None:
            rule["ports"] = self.ports
        return rule


@dataclass(frozen=True)
class FirewallRules:
    """A Cloud Firewall's rules as swarmboot wants them: inbound DROP but for `inbound`,
    outbound ACCEPT."""

    inbound: tuple[Rule, ...]
    inbound_policy: str = "DROP"
    outbound_policy: str = "ACCEPT"

    def api(self) -> dict[str, Any]:
        return {
            "inbound_policy": self.inbound_policy,
            "inbound": [r.api() for r in self.inbound],
            "outbound_policy": self.outbound_policy,
            "outbound": [],
        }

    def key(self) -> tuple:
        """The inbound rules in `rules_key` form, as an observed firewall holds them."""
        return rules_key(self.api()["inbound"])

    def matches(self, firewall: CloudFirewall) -> bool:
        return firewall.inbound == self.key() and firewall.inbound_policy == self.inbound_policy


def _rule(label: str, protocol: str, sources: Iterable[str], ports: str | None = None) -> Rule:
    v4: list[str] = []
    v6: list[str] = []
    for item in sources:
        net = ipaddress.ip_network(item, strict=False)
        (v4 if net.version == 4 else v6).append(str(net))
    return Rule(label, protocol, tuple(v4), tuple(v6), ports)


def cloud_rules(spec: Spec, members: Iterable[str], *, lb: bool) -> FirewallRules:
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
    return FirewallRules(tuple(inbound))


def rules_key(inbound: Iterable[dict[str, Any]]) -> tuple:
    """Rules in a comparable form (what the API returns may order keys differently)."""

    def norm(value: Any) -> Any:
        if isinstance(value, dict):
            return tuple(sorted((k, norm(v)) for k, v in value.items()))
        if isinstance(value, list):
            return tuple(norm(v) for v in value)
        return value

    return tuple(norm(r) for r in inbound)
