"""The swarm ports in the lab: closed to a stranger on the same subnet, open to members, and a
removed node's address gone from every member set.

A probe namespace (this test's own, named with the lab's prefix so the leftover check would
catch it) is plugged into a region's bridge with an unused address of that region's public
range: as close to the nodes as a stranger can get. Members are probed from a node's own
network namespace. TCP is probed (2377, 7946): a dropped SYN times out, an open port answers;
the UDP and ESP rules use the same member set, and are checked in the loaded ruleset.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from .lab import REPO, LabSim, linodes, on_node, pinned, swarmboot

pytestmark = pytest.mark.lab

SPEC = REPO / "examples" / "itframe-lab.toml"
PROBE = r"""
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
s = socket.socket()
s.settimeout(3)
try:
    s.connect((host, port))
    print("open")
except socket.timeout:
    print("timeout")
except OSError as exc:
    print("refused" if exc.errno == 111 else f"error {exc.errno}")
"""


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout


def _connect(netns: str, host: str, port: int) -> str:
    done = subprocess.run(
        ["ip", "netns", "exec", netns, "python3", "-c", PROBE, host, str(port)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip()


@contextmanager
def _stranger(sim: LabSim, neighbour: str):
    """A namespace on the bridge of `neighbour`'s region, at an unused address of its range."""
    router = f"swblab-{sim.lab_id}-r"
    net = ipaddress.ip_network(f"{neighbour}/26", strict=False)
    gateway = str(net.network_address + 1)
    links = json.loads(_ip("-n", router, "-j", "addr", "show"))
    bridge = next(
        link["ifname"] for link in links if any(a["local"] == gateway for a in link["addr_info"])
    )
    taken = {i.ipv4[0] for i in linodes(sim)}
    address = next(str(a) for a in reversed(list(net.hosts())) if str(a) not in taken)
    name, port = f"swblab-{sim.lab_id}-probe", f"probe{sim.lab_id}"
    _ip("netns", "add", name)
    try:
        _ip(
            "-n", router, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", name
        )
        _ip("-n", router, "link", "set", port, "master", bridge, "up")
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", name, "addr", "add", f"{address}/{net.prefixlen}", "dev", "eth0")
        _ip("-n", name, "link", "set", "eth0", "up")
        _ip("-n", name, "route", "add", "default", "via", gateway)
        yield name, address
    finally:
        subprocess.run(["ip", "-n", router, "link", "del", port], check=False)
        subprocess.run(["ip", "netns", "del", name], check=False)


def _node_netns(sim: LabSim, label: str) -> str:
    inst = next(i for i in linodes(sim) if i.label == label)
    return f"swblab-{sim.lab_id}-{inst.id}"


def _members(known: Path, key: Path, address: str) -> set[str]:
    listed = json.loads(
        on_node(known, key, address, "nft -j list set inet swarmboot swarm_members")
    )
    elements = next(e["set"] for e in listed["nftables"] if "set" in e).get("elem", [])
    found: set[str] = set()
    for element in elements:  # an interval set merges neighbours into ranges and prefixes
        if isinstance(element, str):
            found.add(element)
        elif "range" in element:
            first, last = (ipaddress.ip_address(a) for a in element["range"])
            found.update(str(first + n) for n in range(int(last) - int(first) + 1))
        else:
            net = ipaddress.ip_network(
                f"{element['prefix']['addr']}/{element['prefix']['len']}", strict=False
            )
            found.update(str(a) for a in net)
    return found


def test_swarm_ports_are_closed_to_strangers_open_to_members_and_forget_removed_nodes(
    lab, key, tmp_path
):
    swarmboot(lab, "up", str(SPEC), "--ssh-key", str(key))
    known = tmp_path / "known_hosts"
    known.write_text(swarmboot(lab, "known-hosts", str(SPEC), "--ssh-key", str(key)).stdout)
    pins = pinned(lab)
    manager = pins["itframe-gb-lon-manager-1"][0]
    targets = {label: address for label, (address, _) in pins.items()}

    with _stranger(lab, manager) as (probe, address):
        assert address not in _members(known, key, manager)
        for label, target in sorted(targets.items()):
            # Reachable (SSH answers), but the swarm ports drop its packets.
            assert _connect(probe, target, 22) == "open", label
            assert _connect(probe, target, 7946) == "timeout", label
            if "-manager-" in label:
                assert _connect(probe, target, 2377) == "timeout", label

    member = _node_netns(lab, "itframe-eu-central-worker-1")
    for label, target in sorted(targets.items()):
        if label == "itframe-eu-central-worker-1":
            continue
        assert _connect(member, target, 7946) == "open", label
        if "-manager-" in label:
            assert _connect(member, target, 2377) == "open", label

    # The rules behind it, as loaded on a node: every swarm port and ESP from members only.
    ruleset = on_node(known, key, manager, "nft list table inet swarmboot")
    for rule in (
        "ip saddr @swarm_members tcp dport 2377 accept",
        "ip saddr @swarm_members tcp dport 7946 accept",
        "ip saddr @swarm_members udp dport 7946 accept",
        "ip saddr @swarm_members udp dport 4789 accept",
        "ip saddr @swarm_members meta l4proto esp accept",
    ):
        assert rule in ruleset, rule
    assert "policy drop" in ruleset

    # A worker removed (its pool lowered, then up --prune): its address leaves every set.
    gone = targets["itframe-gb-lon-worker-2"]
    assert all(gone in _members(known, key, a) for a in targets.values())
    fewer = tmp_path / "fewer.toml"
    fewer.write_text(
        SPEC.read_text().replace(
            '[regions.gb-lon]\npools = [\n  { role = "manager", count = 1 },\n  { role = "lb", '
            'count = 1, type = "g6-standard-1" },\n  { role = "worker", count = 2 },',
            '[regions.gb-lon]\npools = [\n  { role = "manager", count = 1 },\n  { role = "lb", '
            'count = 1, type = "g6-standard-1" },\n  { role = "worker", count = 1 },',
        )
    )
    done = swarmboot(lab, "up", str(fewer), "--ssh-key", str(key), "--prune")
    assert "Delete the Linode itframe-gb-lon-worker-2" in done.stderr
    left = {label: a for label, a in targets.items() if label != "itframe-gb-lon-worker-2"}
    for label, address in left.items():
        assert gone not in _members(known, key, address), label
        assert _members(known, key, address) == set(left.values()), label
    with socket.socket() as s:  # nothing answers at the removed node's address any more
        s.settimeout(2)
        assert s.connect_ex((gone, 22)) != 0
