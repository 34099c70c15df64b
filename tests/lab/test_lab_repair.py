"""A dead node brought back in the lab: `repair` and `node rebuild` on real swarm nodes.

A node dies as a Linode whose host died would: every process of it is killed (sshd and
dockerd with them) while the API still says running. What swarmboot made of it is checked
with OpenSSH (host keys from `known-hosts`, checked against the pins) and the real docker
CLI on a manager: the node Ready again, its labels, exactly one swarm entry per node.

The module's cluster is made with `up --bootstrap cloud-init` (one cluster for both, as each
costs a minute or more to form): each Linode gets the node script as metadata.user_data, and
the lab hands it to Debian's own cloud-init on the node (a NoCloud seed stands in for Linode's
Metadata service), whose stages put the pinned host key in place and run the script. The
first test checks that path and rebuilds a worker the same way, before any StackScript is on
the account; the repairs after it rebuild with the spec's bootstrap, the StackScript, so the
cluster also holds nodes made both ways, as one moved from one to the other does.
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from linode_api4 import LinodeClient

from ..conftest import STACKSCRIPTS
from .apps import assert_whole, known_hosts, swarm_nodes
from .lab import EXE, REPO, TOKEN, LabSim, linodes, on_node, pinned, swarmboot

pytestmark = pytest.mark.lab

SPEC = REPO / "examples" / "itframe-lab.toml"
REBUILD = (EXE, "node", "rebuild")
USERDATA_WORKER = "itframe-gb-lon-worker-2"
SCRIPT_SHA256 = hashlib.sha256((STACKSCRIPTS / "debian12-swarm-node.sh").read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def cluster(lab, key):
    made = swarmboot(
        lab, "up", str(SPEC), "--ssh-key", str(key), "--bootstrap", "cloud-init", "--json"
    )
    assert json.loads(made.stdout)["managers"] == 3
    assert "Publish StackScript" not in made.stderr
    return lab


def _booted_by_cloud_init(known, key, address: str) -> dict:
    """The node's status file, after checking cloud-init ran its user data to the end."""
    said = on_node(known, key, address, "cloud-init status --long")
    assert "status: done" in said, said
    assert on_node(known, key, address, "test -e /var/lib/cloud/instance/boot-finished && echo y")
    status = json.loads(on_node(known, key, address, "cat /var/lib/swarmboot/status.json"))
    assert status["phase"] == "done" and status["vxlan_ok"] is True, status
    assert status["script_sha256"] == SCRIPT_SHA256  # the StackScript's very bytes
    return status


def test_up_and_node_rebuild_with_cloud_init(cluster, key, tmp_path):
    lab = cluster
    client = LinodeClient(TOKEN, base_url=lab.url)
    assert list(client.linode.stackscripts(mine_only=True)) == []
    assert all(i.has_user_data for i in client.linode.instances())
    known = known_hosts(lab, SPEC, key, tmp_path / "known_hosts")
    pins = pinned(lab)
    assert_whole(lab, SPEC, known, key, "itframe-eu-central-manager-1")
    status = _booted_by_cloud_init(known, key, pins[USERDATA_WORKER][0])
    assert (status["hostname"], status["role"], status["zone"]) == (
        USERDATA_WORKER,
        "worker",
        "gb-lon",
    )

    rebuilt = swarmboot(
        lab,
        "node",
        "rebuild",
        str(SPEC),
        USERDATA_WORKER,
        "--ssh-key",
        str(key),
        "--yes",
        "--bootstrap",
        "cloud-init",
    )
    assert (
        f"Rebuild {USERDATA_WORKER} from linode/debian12 and cloud-init user data" in rebuilt.stderr
    )
    assert pinned(lab)[USERDATA_WORKER][1] != pins[USERDATA_WORKER][1]  # a new pinned host key
    known = known_hosts(lab, SPEC, key, tmp_path / "known_hosts")
    assert_whole(lab, SPEC, known, key, "itframe-eu-central-manager-1")
    _booted_by_cloud_init(known, key, pinned(lab)[USERDATA_WORKER][0])
    assert list(client.linode.stackscripts(mine_only=True)) == []


def _known(sim: LabSim, key: Path, tmp_path: Path) -> Path:
    return known_hosts(sim, SPEC, key, tmp_path / "known_hosts")


def _wait_down(sim: LabSim, key: Path, tmp_path: Path, label: str, via: str) -> None:
    deadline = time.monotonic() + 120
    while True:
        known = _known(sim, key, tmp_path)
        states = {
            n["Description"]["Hostname"]: n["Status"]["State"]
            for n in swarm_nodes(known, key, pinned(sim)[via][0])
        }
        if states[label] == "down":
            return
        assert time.monotonic() < deadline, f"{label} is still {states[label]} in the swarm"
        time.sleep(2)


def _kill(sim: LabSim, label: str) -> None:
    inst = next(i for i in linodes(sim) if i.label == label)
    assert sim.kill_node(inst.id), f"no process of {label} to kill"


def _assert_whole(sim: LabSim, key: Path, tmp_path: Path, via: str) -> list[dict]:
    return assert_whole(sim, SPEC, _known(sim, key, tmp_path), key, via)


def _seconds(stderr: str, label: str) -> float:
    found = re.search(rf"{re.escape(label)}\S* in (\d+) s", stderr)
    assert found, stderr[-2000:]
    return float(found.group(1))


def test_repair_brings_back_two_dead_workers(cluster, key, tmp_path):
    """Two workers dead at once, one per zone: `up` names them without waiting for them,
    and one `repair` rebuilds both, each rebuild leaving the other to the next."""
    labels = ["itframe-gb-lon-worker-2", "itframe-eu-central-worker-2"]
    pins = {label: pinned(cluster)[label][1] for label in labels}
    for label in labels:
        _kill(cluster, label)
    for label in labels:
        _wait_down(cluster, key, tmp_path, label, via="itframe-eu-central-manager-1")
    named = swarmboot(cluster, "up", str(SPEC), "--ssh-key", str(key), check=False)
    assert named.returncode == 6, named.stderr  # not ready: the others joined
    for label in labels:
        assert f"{label}: it is down in the swarm and does not answer over SSH" in named.stderr
    started = time.monotonic()
    done = swarmboot(cluster, "repair", str(SPEC), "--ssh-key", str(key), "--yes")
    took = time.monotonic() - started
    for label in labels:
        assert f"repaired {label} (it is down in the swarm)" in done.stderr
        assert pinned(cluster)[label][1] != pins[label]  # a new host key, pinned
    rebuilds = ", ".join(f"{_seconds(done.stderr, label)} s" for label in labels)
    print(f"\nlab: repair of two dead workers {took:.1f} s (rebuilds {rebuilds})")
    _assert_whole(cluster, key, tmp_path, via="itframe-eu-central-manager-1")
    again = swarmboot(cluster, "repair", str(SPEC), "--ssh-key", str(key), "--yes")
    assert "nothing to repair" in again.stderr


def test_repair_brings_back_a_dead_manager_of_three(cluster, key, tmp_path):
    label = "itframe-eu-central-manager-2"
    _kill(cluster, label)
    _wait_down(cluster, key, tmp_path, label, via="itframe-eu-central-manager-1")
    started = time.monotonic()
    done = swarmboot(cluster, "repair", str(SPEC), "--ssh-key", str(key), "--yes")
    print(f"\nlab: repair of a dead manager {time.monotonic() - started:.1f} s")
    assert f"Demote {label} from manager to worker" in done.stderr
    _assert_whole(cluster, key, tmp_path, via="itframe-gb-lon-manager-1")


def test_a_rebuild_killed_with_sigkill_converges_when_run_again(cluster, key, tmp_path):
    label = "itframe-eu-central-worker-1"
    admin = cluster.admin
    before = len(admin.requests())
    proc = subprocess.Popen(
        [
            EXE,
            "node",
            "rebuild",
            str(SPEC),
            label,
            "--ssh-key",
            str(key),
            "--yes",
            "--api-url",
            cluster.url,
        ],
        env=cluster.client_env(),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if f"Rebuild {label} from" in line:
                proc.send_signal(signal.SIGKILL)  # right after the rebuild was asked for
                break
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    tags = next(i for i in linodes(cluster) if i.label == label).tags
    assert any(t.startswith("rebuild:") for t in tags)  # the mark the next run goes on from
    started = time.monotonic()
    done = swarmboot(cluster, "node", "rebuild", str(SPEC), label, "--ssh-key", str(key), "--yes")
    print(f"\nlab: the rebuild carried on in {time.monotonic() - started:.1f} s")
    assert f"Carrying on with the rebuild of {label}" in done.stderr
    rebuilds = [
        r
        for r in admin.requests()[before:]
        if r["method"] == "POST" and r["route"].endswith("/rebuild")
    ]
    assert len(rebuilds) == 1  # carried on, not started again
    _assert_whole(cluster, key, tmp_path, via="itframe-eu-central-manager-1")


# A container image made on the node itself (no registry here): `sleep` and its libraries.
IMPORT_SLEEP = (
    "set -e; r=$(mktemp -d); "
    "cp --parents /usr/bin/sleep $(ldd /usr/bin/sleep | grep -o '/[^ ]*') $r; "
    "tar -C $r -c . | docker import - swarmboot-test/sleep:1 >/dev/null; rm -rf $r"
)


def test_a_live_node_is_drained_and_its_tasks_move_before_it_is_rebuilt(cluster, key, tmp_path):
    known = _known(cluster, key, tmp_path)
    pins = pinned(cluster)
    workers = [label for label in pins if "-worker-" in label]
    for label in workers:
        on_node(known, key, pins[label][0], IMPORT_SLEEP)
    manager = pins["itframe-gb-lon-manager-1"][0]
    on_node(
        known,
        key,
        manager,
        "docker service create --detach=false --quiet --name app --replicas 2 "
        "--constraint node.labels.role==worker swarmboot-test/sleep:1 sleep infinity",
    )

    def running() -> list[str]:
        return on_node(
            known,
            key,
            manager,
            "docker service ps app --filter desired-state=running --format '{{.Node}} "
            "{{.CurrentState}}'",
        ).splitlines()

    label = running()[0].split()[0]
    proc = subprocess.Popen(
        [*REBUILD, str(SPEC), label, "--ssh-key", str(key), "--yes", "--api-url", cluster.url],
        env=cluster.client_env(),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    at_drain = None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if f"Drain {label} and wait for its tasks to move" in line and at_drain is None:
            at_drain = running()  # the node is not rebuilt yet: its tasks run elsewhere
    assert proc.wait(timeout=600) == 0, "".join(seen)
    assert at_drain is not None, "".join(seen)
    print(f"\nlab: rebuild of a live worker running a task {_seconds(''.join(seen), label)} s")
    assert len(at_drain) == 2 and all(
        line.split()[0] != label and line.split()[1] == "Running" for line in at_drain
    ), at_drain
    _assert_whole(cluster, key, tmp_path, via="itframe-gb-lon-manager-1")
    on_node(known, key, manager, "docker service rm app")
