"""A datacenter lost in the lab: every node of eu-central dies at once, two of the three
managers with it, while HTTP requests go to the gb-lon load balancer; `recover` brings the
quorum back and rebuilds eu-central.

The cluster is the lab example (managers 2+1, a load balancer and two workers per zone) with
a plain overlay (this kernel has no IPsec ESP), the application in each zone and the
per-zone load balancers deployed. A node dies as a host would: every process of it killed
while Linode still says running. The swarm is checked with the docker CLI on a manager.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import pytest

from .apps import answers, assert_whole, deploy_app, get, import_images, known_hosts
from .lab import REPO, linodes, on_node, pinned, swarmboot

pytestmark = pytest.mark.lab

LAB_SPEC = REPO / "examples" / "itframe-lab.toml"
EU = "eu-central"
# The load's bounds: one request every 50 ms, for at most 15 minutes or 20,000 requests.
INTERVAL, LIMIT_S, LIMIT_N = 0.05, 900.0, 20_000


@dataclass
class Load:
    """HTTP requests to one URL in a loop, in a thread of its own, counted."""

    url: str
    ok: int = 0
    failed: int = 0
    zones: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name="load")

    def mark(self, what: str) -> None:
        """An event, at its time in the load (to read the errors against)."""
        self.events.append(f"{time.monotonic() - self.started:.1f} s: {what}")

    def _run(self) -> None:
        started = self.started
        while not self._stop.is_set() and time.monotonic() - started < LIMIT_S:
            if self.ok + self.failed >= LIMIT_N:
                return
            try:
                self.zones.add(get(self.url, timeout=2.0).split()[0])
                self.ok += 1
            except OSError as exc:
                self.failed += 1
                self.errors.append(f"{time.monotonic() - started:.1f} s: {exc}")
            self._stop.wait(INTERVAL)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@pytest.fixture(scope="module")
def cluster(lab, key, tmp_path_factory):
    spec = tmp_path_factory.mktemp("spec") / "itframe-region.toml"
    spec.write_text(LAB_SPEC.read_text().replace('encrypted = "auto"', "encrypted = false"))
    swarmboot(lab, "up", str(spec), "--ssh-key", str(key))
    known = known_hosts(lab, spec, key, tmp_path_factory.mktemp("ssh") / "known_hosts")
    import_images(lab, known, key)
    deploy_app(known, key, pinned(lab)["itframe-gb-lon-manager-1"][0], (EU, "gb-lon"))
    swarmboot(lab, "lb", "deploy", str(spec), "--ssh-key", str(key))
    return lab, spec


def _replicas(known, key, manager: str) -> dict[str, str]:
    listed = on_node(known, key, manager, "docker service ls --format '{{.Name}} {{.Replicas}}'")
    return dict(line.split() for line in listed.splitlines())


def _wait_replicas(known, key, manager: str, timeout: float = 240.0) -> dict[str, str]:
    """Until every service runs its replicas (n/n), global ones on each of their nodes."""
    deadline = time.monotonic() + timeout
    while True:
        found = _replicas(known, key, manager)
        if found and all(a == b for a, b in (r.split("/") for r in found.values())):
            return found
        assert time.monotonic() < deadline, found
        time.sleep(2)


def test_losing_eu_central_keeps_gb_lon_answering_and_recover_brings_it_back(
    cluster, key, tmp_path
):
    lab, spec = cluster
    lbs = {i.label: i.ipv4[0] for i in linodes(lab) if "-lb-" in i.label}
    url = f"http://{lbs['itframe-gb-lon-lb-1']}:80/"
    answers(url, 12)  # the gb-lon load balancer has found its tasks
    lost = {i.label: i.id for i in linodes(lab) if f"-{EU}-" in i.label}
    assert len(lost) == 5
    with Load(url) as load:
        time.sleep(5)
        for label, linode_id in lost.items():
            assert lab.kill_node(linode_id), label
        killed = time.monotonic()
        load.mark("eu-central killed")
        time.sleep(20)  # the swarm notices: no leader (1 of 3 managers left)
        refused = swarmboot(lab, "repair", str(spec), "--ssh-key", str(key), "--yes", check=False)
        assert refused.returncode == 7, refused.stderr
        assert "`swarmboot recover SPEC`" in refused.stderr
        started = time.monotonic()
        load.mark("recover")
        done = swarmboot(lab, "recover", str(spec), "--ssh-key", str(key), "--yes")
        took = time.monotonic() - started
        load.mark("recover done")
        assert "Make a new swarm from itframe-gb-lon-manager-1's raft state (raft index" in (
            done.stdout
        ), done.stdout
        # The rebuilt nodes have fresh disks: the images come back as a registry would
        # bring them.
        known = known_hosts(lab, spec, key, tmp_path / "known_hosts")
        import_images(lab, known, key, list(lost))
        manager = pinned(lab)["itframe-gb-lon-manager-1"][0]
        replicas = _wait_replicas(known, key, manager)
        back = time.monotonic() - killed
        eu_url = f"http://{lbs['itframe-eu-central-lb-1']}:80/"
        assert {a.split()[0] for a in answers(eu_url, 6)} == {EU}
    print(
        f"\nlab: region lost: {load.ok + load.failed} requests to the gb-lon load balancer, "
        f"{load.failed} failed; recover {took:.0f} s, the services all back "
        f"{back:.0f} s after the kill"
    )
    assert load.errors == [], (load.errors[:10], load.events, done.stderr)
    assert load.zones == {"gb-lon"}  # answered by gb-lon's tasks only, all along
    assert load.ok > 100
    assert replicas["app-eu-central"] == "2/2" and replicas["app-gb-lon"] == "2/2"
    assert_whole(lab, spec, known, key, via="itframe-gb-lon-manager-1")
    again = swarmboot(lab, "recover", str(spec), "--ssh-key", str(key), "--yes")
    assert "nothing to recover" in again.stderr, again.stderr


def test_every_manager_lost_then_restored_from_a_backup(cluster, key, tmp_path):
    """A backup taken from a manager that does not lead, every manager killed, the swarm
    made again from the backup: services, configs, secrets, networks and labels back, the
    workers still members, both zones answering again."""
    lab, spec = cluster
    known = known_hosts(lab, spec, key, tmp_path / "known_hosts")
    manager = pinned(lab)["itframe-gb-lon-manager-1"][0]
    on_node(known, key, manager, "docker secret create db-password - >/dev/null", b"s3cret\n")
    on_node(known, key, manager, "docker config create app-settings - >/dev/null", b"a=1\n")
    passphrase = "a lab backup passphrase"
    env = {"SWARMBOOT_BACKUP_KEY": passphrase}
    out = tmp_path / "itframe.backup"
    done = swarmboot(lab, "backup", str(spec), "--ssh-key", str(key), "--out", str(out), env=env)
    assert "secrets (names only): db-password" in done.stdout, done.stdout
    assert passphrase not in done.stdout + done.stderr
    managers = {i.label: i.id for i in linodes(lab) if "-manager-" in i.label}
    for label, linode_id in managers.items():
        assert lab.kill_node(linode_id), label
    time.sleep(5)
    refused = swarmboot(lab, "recover", str(spec), "--ssh-key", str(key), "--yes", check=False)
    assert refused.returncode == 1 and "`swarmboot restore SPEC FILE`" in refused.stderr
    started = time.monotonic()
    done = swarmboot(lab, "restore", str(spec), str(out), "--ssh-key", str(key), "--yes", env=env)
    took = time.monotonic() - started
    known = known_hosts(lab, spec, key, tmp_path / "known_hosts")
    manager = pinned(lab)["itframe-gb-lon-manager-1"][0]
    replicas = _wait_replicas(known, key, manager)
    print(f"\nlab: every manager lost, restored from a backup in {took:.0f} s: {replicas}")
    assert set(replicas) == {
        "app-eu-central",
        "app-gb-lon",
        "itframe-lb_lb-eu-central",
        "itframe-lb_lb-gb-lon",
    }
    assert "db-password" in on_node(known, key, manager, "docker secret ls --format '{{.Name}}'")
    assert "app-settings" in on_node(known, key, manager, "docker config ls --format '{{.Name}}'")
    assert_whole(lab, spec, known, key, via="itframe-gb-lon-manager-1")
    lbs = {i.label: i.ipv4[0] for i in linodes(lab) if "-lb-" in i.label}
    for zone in (EU, "gb-lon"):
        url = f"http://{lbs[f'itframe-{zone}-lb-1']}:80/"
        assert {a.split()[0] for a in answers(url, 6)} == {zone}
