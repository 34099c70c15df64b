"""The lab's network: a router namespace with a bridge per region, reached from the host.

Every region's public range (its first address the gateway) and private range sit on one
bridge in a router namespace of the lab's own; the router forwards between the bridges and has
no default route. The host reaches the router over a veth pair on a link-local /30 and holds a
route for every lab range into it, so a packet for a lab address never leaves the machine.
Ranges that overlap the host's own addresses, routes or the addresses its package registries
resolve to are refused before anything is made.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import secrets
import socket
import subprocess
from dataclasses import dataclass, field

from swarmboot.errors import SwarmbootError

__all__ = ["LabError", "LabNetwork", "Region", "check_ranges"]

REGISTRIES = (
    "deb.debian.org",
    "security.debian.org",
    "pypi.org",
    "files.pythonhosted.org",
    "registry.npmjs.org",
)


class LabError(SwarmbootError):
    pass


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise LabError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def _json(*args: str) -> list[dict]:
    done = ip("-j", *args, check=False)
    try:
        return json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        return []


@dataclass(frozen=True)
class Region:
    name: str
    index: int
    public: ipaddress.IPv4Network
    private: ipaddress.IPv4Network

    @property
    def bridge(self) -> str:
        return f"br{self.index}"

    @property
    def public_gateway(self) -> str:
        return str(self.public.network_address + 1)

    @property
    def private_gateway(self) -> str:
        return str(self.private.network_address + 1)


def _host_networks() -> list[tuple[str, ipaddress.IPv4Network]]:
    found = []
    for link in _json("addr", "show"):
        for info in link.get("addr_info", []):
            if info.get("family") == "inet":
                net = ipaddress.ip_network(f"{info['local']}/{info['prefixlen']}", strict=False)
                found.append((f"address {info['local']} on {link['ifname']}", net))
    for route in _json("route", "show", "table", "all"):
        dst = route.get("dst")
        if dst in (None, "default") or route.get("type") in ("local", "broadcast"):
            continue
        try:
            net = ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False)
        except ValueError:
            continue
        if net.version == 4:
            found.append((f"route {dst} via {route.get('dev')}", net))
    for host in REGISTRIES:
        try:
            for info in socket.getaddrinfo(host, 443, socket.AF_INET, socket.SOCK_STREAM):
                address = info[4][0]
                found.append((f"{host} ({address})", ipaddress.ip_network(f"{address}/32")))
        except OSError:
            continue
    return found


def check_ranges(ranges: dict[str, ipaddress.IPv4Network]) -> None:
    """Refuse lab ranges that clash with what this machine already uses or reaches."""
    taken = _host_networks()
    problems = []
    for what, net in ranges.items():
        for owner, other in taken:
            if net.overlaps(other):
                problems.append(f"{what} {net} overlaps {owner}")
    if problems:
        raise LabError(
            "the lab's ranges clash with this machine's network: " + "; ".join(problems),
            hint="choose other ranges with --public-range/--private-range "
            "(198.51.100.0/24 is the usual choice)",
        )


@dataclass
class LabNetwork:
    regions: dict[str, Region]
    lab_id: str = field(default_factory=lambda: secrets.token_hex(2))
    up: bool = False

    @property
    def router(self) -> str:
        return f"swblab-{self.lab_id}-r"

    @property
    def host_link(self) -> str:
        return f"swb{self.lab_id}h"

    @property
    def router_link(self) -> str:
        return f"swb{self.lab_id}r"

    def _transfer(self) -> ipaddress.IPv4Network:
        # A link-local /30 between the host and the router, chosen per lab.
        n = int(self.lab_id, 16) % (1 << 14)
        base = ipaddress.ip_address("169.254.0.0") + (n << 2)
        return ipaddress.ip_network(f"{base}/30")

    def ranges(self) -> dict[str, ipaddress.IPv4Network]:
        out = {}
        for region in self.regions.values():
            out[f"{region.name} public range"] = region.public
            out[f"{region.name} private range"] = region.private
        out["the host-lab link"] = self._transfer()
        return out

    def create(self) -> None:
        check_ranges(self.ranges())
        link = self._transfer()
        host_ip, router_ip = str(link.network_address + 1), str(link.network_address + 2)
        try:
            self.up = True
            ip("netns", "add", self.router)
            self.exec_router("ip", "link", "set", "lo", "up")
            self.exec_router("sysctl", "-qw", "net.ipv4.ip_forward=1")
            for region in self.regions.values():
                self.exec_router("ip", "link", "add", region.bridge, "type", "bridge")
                self.exec_router(
                    "ip",
                    "addr",
                    "add",
                    f"{region.public_gateway}/{region.public.prefixlen}",
                    "dev",
                    region.bridge,
                )
                self.exec_router(
                    "ip",
                    "addr",
                    "add",
                    f"{region.private_gateway}/{region.private.prefixlen}",
                    "dev",
                    region.bridge,
                )
                self.exec_router("ip", "link", "set", region.bridge, "up")
            ip(
                "link",
                "add",
                self.host_link,
                "type",
                "veth",
                "peer",
                "name",
                self.router_link,
                "netns",
                self.router,
            )
            ip("addr", "add", f"{host_ip}/30", "dev", self.host_link)
            ip("link", "set", self.host_link, "up")
            self.exec_router("ip", "addr", "add", f"{router_ip}/30", "dev", self.router_link)
            self.exec_router("ip", "link", "set", self.router_link, "up")
            # The routes into the lab are in place before any node exists.
            for region in self.regions.values():
                for net in (region.public, region.private):
                    ip("route", "add", str(net), "via", router_ip, "dev", self.host_link)
        except BaseException:
            self.destroy()
            raise

    def exec_router(self, *cmd: str) -> None:
        done = subprocess.run(
            ["ip", "netns", "exec", self.router, *cmd], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise LabError(f"{' '.join(cmd)} in the lab router: {done.stderr.strip()}")

    def attach(self, netns: str, region: str, port: str, public: str, private: str | None) -> None:
        """Give a node's network namespace its eth0 on the region's bridge."""
        r = self.regions[region]
        ip(
            "-n",
            self.router,
            "link",
            "add",
            port,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            netns,
        )
        ip("-n", self.router, "link", "set", port, "master", r.bridge)
        ip("-n", self.router, "link", "set", port, "up")
        ip("-n", netns, "link", "set", "lo", "up")
        ip("-n", netns, "addr", "add", f"{public}/{r.public.prefixlen}", "dev", "eth0")
        if private:
            ip("-n", netns, "addr", "add", f"{private}/{r.private.prefixlen}", "dev", "eth0")
        ip("-n", netns, "link", "set", "eth0", "up")
        ip("-n", netns, "route", "add", "default", "via", r.public_gateway)

    def detach(self, port: str) -> None:
        ip("-n", self.router, "link", "del", port, check=False)

    def destroy(self) -> None:
        if not self.up:
            return
        for region in self.regions.values():
            for net in (region.public, region.private):
                ip("route", "del", str(net), check=False)
        ip("link", "del", self.host_link, check=False)
        with contextlib.suppress(Exception):
            ip("netns", "del", self.router, check=False)
        self.up = False
