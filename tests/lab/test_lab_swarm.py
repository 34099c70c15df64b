"""End to end in the lab: `swarmboot up` forms a real Docker Swarm of real nodes on this machine.

The simulator runs as users run it (`swarmboot sim --lab`, its own process); every Linode that
boots becomes a node with its own namespaces, sshd and Docker daemon, set up by the rendered
StackScript. swarmboot is run through its command line; what it made is checked with tools
that are not swarmboot's: OpenSSH's client (host keys checked against the pins in the Linodes'
tags) and the real `docker` CLI on a manager. Needs root; `make host-deps` installs the rest.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import time

import pytest

from swarmboot.spec import load_spec

from .lab import (
    EXE,
    REPO,
    LabSim,
    fingerprint_of,
    host_snapshot,
    lab_netns,
    linodes,
    on_node,
    pinned,
    swarmboot,
)

pytestmark = pytest.mark.lab

SPEC = REPO / "examples" / "itframe-lab.toml"


def test_up_forms_the_swarm_and_a_second_up_changes_nothing(lab, key, tmp_path):
    spec = load_spec(SPEC)
    wanted = {n.label: n for n in spec.nodes()}

    first = swarmboot(lab, "up", str(SPEC), "--ssh-key", str(key), "--json")
    summary = json.loads(first.stdout)
    assert summary["managers"] == 3
    assert {row["node"] for row in summary["nodes"]} == set(wanted)
    assert lab_netns(lab.lab_id) == sorted(str(i.id) for i in linodes(lab))

    # known_hosts from swarmboot, each key checked here too against the pin in the tags.
    hosts = swarmboot(lab, "known-hosts", str(SPEC), "--ssh-key", str(key)).stdout.splitlines()
    pins = pinned(lab)
    assert len(hosts) == len(wanted)
    by_address = {line.split()[0].split(",")[0]: line for line in hosts}
    for label, (address, fp) in pins.items():
        assert fingerprint_of(by_address[address]) == fp, label
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("\n".join(hosts) + "\n")

    # The real docker CLI on a manager: every node Ready, its labels, three managers.
    manager = pins["itframe-eu-central-manager-1"][0]
    listed = [
        json.loads(line)
        for line in on_node(
            known_hosts, key, manager, "docker node ls --format '{{json .}}'"
        ).splitlines()
    ]
    assert {n["Hostname"] for n in listed} == set(wanted)
    assert all(n["Status"] == "Ready" and n["Availability"] == "Active" for n in listed)
    assert sum(n["ManagerStatus"] in ("Leader", "Reachable") for n in listed) == 3
    inspected = json.loads(
        on_node(known_hosts, key, manager, "docker node inspect $(docker node ls -q)")
    )
    for node in inspected:
        hostname = node["Description"]["Hostname"]
        plan = wanted[hostname]
        labels = node["Spec"]["Labels"]
        assert labels["zone"] == plan.region and labels["role"] == plan.role, hostname
        assert labels["cluster"] == "itframe", hostname
        assert node["Spec"]["Role"] == ("manager" if plan.role == "manager" else "worker")
        # Advertised on its public IPv4: the cluster spans two regions.
        assert node["Status"]["Addr"] == pins[hostname][0], hostname
    network = json.loads(on_node(known_hosts, key, manager, "docker network inspect itframe"))[0]
    assert network["Driver"] == "overlay" and network["Scope"] == "swarm"
    assert "encrypted" in network["Options"]

    # Each node's own view: its status file written by the real StackScript.
    worker = pins["itframe-gb-lon-worker-2"][0]
    status = json.loads(on_node(known_hosts, key, worker, "cat /var/lib/swarmboot/status.json"))
    assert status["phase"] == "done" and status["vxlan_ok"] is True
    assert status["esp_ok"] is False  # this kernel has no ESP, and the node says so
    assert on_node(known_hosts, key, worker, "hostname").strip() == "itframe-gb-lon-worker-2"

    # A second up: nothing to do, nothing sent but reads.
    requests = len(lab.admin.requests())
    plan_now = json.loads(swarmboot(lab, "plan", str(SPEC), "--ssh-key", str(key), "--json").stdout)
    assert plan_now == []
    again = swarmboot(lab, "up", str(SPEC), "--ssh-key", str(key))
    assert "0 change(s)" in again.stderr
    assert {r["method"] for r in lab.admin.requests()[requests:]} == {"GET"}


def _wait_status(sim: LabSim, label: str, status: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        inst = next(i for i in linodes(sim) if i.label == label)
        if inst.status == status:
            return
        assert time.monotonic() < deadline, f"{label} stayed {inst.status}, not {status}"
        time.sleep(0.2)


def test_a_node_shut_down_stops_and_comes_back_with_its_disk(lab, key, tmp_path):
    if not linodes(lab):
        swarmboot(lab, "up", str(SPEC), "--ssh-key", str(key))
    label = "itframe-eu-central-worker-1"
    inst = next(i for i in linodes(lab) if i.label == label)
    status_file = lab.nodes_dir() / str(inst.id) / "upper" / "var/lib/swarmboot/status.json"
    status = json.loads(status_file.read_text())
    before = set(lab.node_processes())
    inst.shutdown()
    _wait_status(lab, label, "offline")
    # Its processes are gone (a Linode that is off runs nothing); the others run on.
    assert str(inst.id) not in lab_netns(lab.lab_id)
    gone = before - set(lab.node_processes())
    assert any("dockerd" in p for p in gone) and any("sshd" in p for p in gone)
    assert json.loads(status_file.read_text()) == status  # its disk is kept

    # Booted again, it comes back from its own disk (no StackScript run: it is not a first
    # boot), Docker starts as enabled, and it is a Ready swarm node again.
    inst.boot()
    _wait_status(lab, label, "running")
    swarmboot(lab, "up", str(SPEC), "--ssh-key", str(key))
    hosts = swarmboot(lab, "known-hosts", str(SPEC), "--ssh-key", str(key)).stdout
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(hosts)
    manager = pinned(lab)["itframe-eu-central-manager-1"][0]
    deadline = time.monotonic() + 60
    while True:
        listed = on_node(
            known_hosts, key, manager, "docker node ls --format '{{.Hostname}} {{.Status}}'"
        ).split("\n")
        if f"{label} Ready" in listed:
            break
        assert time.monotonic() < deadline, listed
        time.sleep(1)
    assert sum(line.startswith(label + " ") for line in listed) == 1  # one entry, not two
    # The StackScript ran once, at the first boot: its status file is the one from then.
    assert json.loads(status_file.read_text()) == status


def _fingerprint(pem: str) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    return x509.load_pem_x509_certificate(pem.encode()).fingerprint(hashes.SHA256())


def _certificates(known_hosts, key, pins) -> dict[str, tuple[bytes, bytes]]:
    """Each node's certificate as the node holds it: the key id of the CA that signed it,
    and the fingerprint of the root it trusts (read with OpenSSH, parsed here)."""
    from cryptography import x509

    found = {}
    for label, (address, _) in sorted(pins.items()):
        pem = on_node(
            known_hosts, key, address, "cat /var/lib/docker/swarm/certificates/swarm-node.crt"
        )
        cert = x509.load_pem_x509_certificate(pem.encode())
        issuer = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
        root = on_node(
            known_hosts, key, address, "cat /var/lib/docker/swarm/certificates/swarm-root-ca.crt"
        )
        found[label] = (issuer.value.key_identifier, _fingerprint(root))
    return found


def test_rotate_gives_every_node_a_new_certificate_and_new_join_tokens(lab, key, tmp_path):
    """The swarm's CA and join tokens rotated on the live cluster: every node's certificate
    is signed by the new CA and trusts its root, the old join token is gone (and shown
    nowhere), and the swarm goes on as it was."""
    if not linodes(lab):
        swarmboot(lab, "up", str(SPEC), "--ssh-key", str(key))
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(swarmboot(lab, "known-hosts", str(SPEC), "--ssh-key", str(key)).stdout)
    pins = pinned(lab)
    manager = pins["itframe-eu-central-manager-1"][0]
    old_worker = on_node(known_hosts, key, manager, "docker swarm join-token -q worker").strip()
    old_manager = on_node(known_hosts, key, manager, "docker swarm join-token -q manager").strip()
    before = _certificates(known_hosts, key, pins)
    assert len({issuer for issuer, _ in before.values()}) == 1  # one CA signed them all

    # `status` shows each node's certificate expiry (Docker's default life: 90 days).
    status = json.loads(swarmboot(lab, "status", str(SPEC), "--ssh-key", str(key), "--json").stdout)
    assert all(88 <= row["cert_days_left"] <= 90 for row in status["nodes"]), status["nodes"]
    assert status["warnings"] == []

    done = swarmboot(
        lab, "rotate", str(SPEC), "--join-tokens", "--ca", "--yes", "--ssh-key", str(key), "--json"
    )
    said = done.stdout + done.stderr
    leaked = any(t in said for t in (old_worker, old_manager))
    assert not leaked  # (the tokens themselves are never put in an assertion's message)
    assert "Wait until each of the 9 nodes has its certificate from the new CA" in done.stderr
    result = json.loads(done.stdout)
    assert [c["kind"] for c in result["changed"]] == ["join_tokens_rotated", "ca_rotated"]

    # Every node: a certificate from another CA than before, all from the same one, and the
    # root it trusts changed to the one the swarm now has (the real docker CLI says which).
    after = _certificates(known_hosts, key, pins)
    assert set(after) == set(before)
    assert all(after[label][0] != before[label][0] for label in before)
    assert len({issuer for issuer, _ in after.values()}) == 1
    root = _fingerprint(on_node(known_hosts, key, manager, "docker swarm ca"))
    assert {trusted for _, trusted in after.values()} == {root}
    assert all(after[label][1] != before[label][1] for label in before)
    info = json.loads(on_node(known_hosts, key, manager, "docker info --format '{{json .Swarm}}'"))
    assert info["Cluster"]["RootRotationInProgress"] is False

    # New join tokens: neither old one is the swarm's any more.
    new_worker = on_node(known_hosts, key, manager, "docker swarm join-token -q worker").strip()
    new_manager = on_node(known_hosts, key, manager, "docker swarm join-token -q manager").strip()
    unchanged = new_worker == old_worker or new_manager == old_manager
    assert not unchanged
    assert new_worker.startswith("SWMTKN-1-")

    # The swarm goes on: every node Ready, and `up` has nothing to do.
    listed = on_node(known_hosts, key, manager, "docker node ls --format '{{.Status}}'").split()
    assert listed == ["Ready"] * len(pins)
    assert (
        json.loads(swarmboot(lab, "plan", str(SPEC), "--ssh-key", str(key), "--json").stdout) == []
    )


def test_down_leaves_no_linode_and_no_lab_node(lab, key):
    if not linodes(lab):
        swarmboot(lab, "up", str(SPEC), "--ssh-key", str(key))
    swarmboot(lab, "down", str(SPEC), "--ssh-key", str(key), "--yes")
    assert linodes(lab) == []
    lab.wait_for_no_nodes()
    assert lab_netns(lab.lab_id) == []
    assert list(lab.nodes_dir().iterdir()) == []
    # Nothing of the nodes runs any more: no dockerd or sshd in a namespace of the lab.
    assert lab.node_processes() == []


def test_ranges_that_clash_with_the_host_are_refused_before_anything_is_made():
    before = host_snapshot()
    host = subprocess.run(
        ["ip", "-j", "-4", "addr", "show"], capture_output=True, text=True, check=True
    )
    taken = next(
        str(ipaddress.ip_network(f"{a['local']}/{a['prefixlen']}", strict=False))
        for link in json.loads(host.stdout)
        for a in link["addr_info"]
        if link["ifname"] != "lo"
    )
    done = subprocess.run(
        [EXE, "sim", "--lab", "--port", "0", "--public-range", f"eu-central={taken}"],
        env={**os.environ, "SWARMBOOT_SIM_TOKEN": "clash", **LabSim.cache_env()},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode != 0
    assert "clash with this machine's network" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert host_snapshot() == before
    assert f"eu-central public range {taken} overlaps" in done.stderr, done.stderr
