"""Two zones end to end in the lab: `swarmboot lb deploy` on a real swarm and HTTP through
each zone's load balancer; then a datacenter lost (every node of eu-central killed at once,
two of the three managers with it) while requests go to the gb-lon load balancer and
`recover` brings it back; then every manager lost and the swarm restored from a backup.

No registry is reachable here, so the images are made from this machine's Debian packages
(haproxy, busybox: a binary and the libraries it links) and imported on every node. The
application runs as one service per zone (`app-<zone>`, answering with its zone and task);
each zone's load balancer, published in host mode on its node's own address, must send every
request to a task of its own zone. The cluster's overlay is not encrypted here: this kernel
has no IPsec ESP, so encrypted overlay traffic would be dropped (configuration of the
encrypted one is checked in test_lab_swarm).
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field

import pytest

from .apps import (
    APP_BROKEN,
    APP_IMAGE,
    APP_IMAGE_2,
    answers,
    assert_whole,
    deploy_app,
    get,
    import_images,
    known_hosts,
)
from .lab import REPO, linodes, on_node, pinned, swarmboot

pytestmark = pytest.mark.lab

LAB_SPEC = REPO / "examples" / "itframe-lab.toml"
EU = "eu-central"
# The load's bounds: one request every 50 ms, for at most 15 minutes or 20,000 requests.
INTERVAL, LIMIT_S, LIMIT_N = 0.05, 900.0, 20_000
REGISTRY_SECRET = "lab-registry-password-7d2e"
SECRET_VALUE = "lab-app-token-3b9a"


@pytest.fixture(scope="module")
def cluster(lab, key, tmp_path_factory):
    """The lab example with a plain overlay, up, the images on every node, the application
    deployed in each zone."""
    spec = tmp_path_factory.mktemp("spec") / "itframe-lb.toml"
    spec.write_text(LAB_SPEC.read_text().replace('encrypted = "auto"', "encrypted = false"))
    swarmboot(lab, "up", str(spec), "--ssh-key", str(key))
    known = tmp_path_factory.mktemp("ssh") / "known_hosts"
    known.write_text(swarmboot(lab, "known-hosts", str(spec), "--ssh-key", str(key)).stdout)
    import_images(lab, known, key)
    manager = pinned(lab)["itframe-eu-central-manager-1"][0]
    deploy_app(lab, spec, key)
    return lab, spec, known, manager


def _both_tasks(url: str, timeout: float = 90.0) -> list[str]:
    """Every answer until 12 in a row came from both of the zone's tasks. Each backend slot
    gets its address from DNS and takes traffic once its health check passed twice (2 s
    apart), so for a few seconds after the first answer one task may answer alone."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        seen += answers(url, 12)
        if len({a.split()[1] for a in seen[-12:]}) == 2:
            return seen
        assert time.monotonic() < deadline, f"{url}: one task only after {timeout:.0f} s: {seen}"
        time.sleep(1)


def test_each_zones_load_balancer_answers_on_its_own_address_from_its_zones_tasks(cluster, key):
    lab, spec, known, manager = cluster
    done = swarmboot(lab, "lb", "deploy", str(spec), "--ssh-key", str(key), "--json")
    found = json.loads(done.stdout)
    lbs = {i.label: i.ipv4[0] for i in linodes(lab) if "-lb-" in i.label}
    assert found == {
        "eu-central": [f"http://{lbs['itframe-eu-central-lb-1']}:80"],
        "gb-lon": [f"http://{lbs['itframe-gb-lon-lb-1']}:80"],
    }
    for zone, (url,) in found.items():
        answers = _both_tasks(url + "/")
        assert {a.split()[0] for a in answers} == {zone}, answers  # never another zone's task
        last = answers[-12:]
        assert len({a.split()[1] for a in last}) == 2, answers  # both of its tasks, in turn
    # The swarm's view: one running task per lb node, published on the node (host mode).
    listed = on_node(
        known,
        key,
        manager,
        "docker service inspect itframe-lb_lb-gb-lon --format "
        "'{{json .Spec.Mode}} {{json .Spec.EndpointSpec.Ports}} "
        "{{json .Spec.TaskTemplate.Placement.Constraints}}'",
    )
    mode, ports, constraints = listed.split(" ", 2)
    assert json.loads(mode) == {"Global": {}}
    assert json.loads(ports)[0]["PublishMode"] == "host"
    assert "node.labels.zone == gb-lon" in json.loads(constraints)
    status = json.loads(swarmboot(lab, "status", str(spec), "--ssh-key", str(key), "--json").stdout)
    assert status["lb"] == found


def test_a_changed_configuration_rolls_onto_a_new_config_and_the_old_one_goes(cluster, key):
    lab, spec, known, manager = cluster
    swarmboot(lab, "lb", "deploy", str(spec), "--ssh-key", str(key))
    before = set(on_node(known, key, manager, "docker config ls --format '{{.Name}}'").split())
    changed = spec.with_name("itframe-lb-2.toml")
    changed.write_text(spec.read_text().replace("[lb]\n", "[lb]\nservers = 4\n"))
    done = swarmboot(lab, "lb", "deploy", str(changed), "--ssh-key", str(key), "--json")
    after = set(on_node(known, key, manager, "docker config ls --format '{{.Name}}'").split())
    assert len(after) == 2 and not (after & before), (before, after)  # new names, old gone
    assert "Removed 2 config(s) no longer used" in done.stderr
    for zone, (url,) in json.loads(done.stdout).items():
        assert {a.split()[0] for a in answers(url + "/", 6)} == {zone}
    mounted = on_node(
        known,
        key,
        manager,
        "docker service inspect itframe-lb_lb-eu-central --format "
        "'{{range .Spec.TaskTemplate.ContainerSpec.Configs}}{{.ConfigName}}{{end}}'",
    )
    assert mounted.strip() in after


def _images(known, key, manager: str) -> dict[str, str]:
    listed = on_node(
        known, key, manager, "docker service ls --format '{{.Name}} {{.Image}}' -f name=itframe_app"
    )
    return dict(line.split() for line in listed.splitlines())


def test_deploy_rolls_a_new_image_with_every_zone_answering_and_rolls_back_a_broken_one(
    cluster, key, tmp_path
):
    """The application's stack (deployed by the fixture with `swarmboot deploy`) updated
    to a new image while both zones' load balancers are asked in a loop (start-first: no
    request fails), then to an image whose containers exit at once (rolled back, exit 8,
    the service and its task error named), then the same file again (nothing to change)."""
    lab, spec, known, manager = cluster
    swarmboot(lab, "lb", "deploy", str(spec), "--ssh-key", str(key))
    lbs = {i.label: i.ipv4[0] for i in linodes(lab) if "-lb-" in i.label}
    urls = {zone: f"http://{lbs[f'itframe-{zone}-lb-1']}:80/" for zone in (EU, "gb-lon")}
    for url in urls.values():
        _both_tasks(url)
    assert set(_images(known, key, manager).values()) == {APP_IMAGE}
    loads = {zone: Load(url) for zone, url in urls.items()}
    for load in loads.values():
        load.__enter__()
    try:
        time.sleep(3)
        started = time.monotonic()
        # With a registry login (no registry here: the images are on the nodes): it goes to
        # the manager for this one docker stack deploy and nowhere else.
        login = {"SWARMBOOT_REGISTRY_USER": "ci", "SWARMBOOT_REGISTRY_PASSWORD": REGISTRY_SECRET}
        done = deploy_app(lab, spec, key, APP_IMAGE_2, env=login)
        took = time.monotonic() - started
        time.sleep(3)
    finally:
        for load in loads.values():
            load.__exit__()
    result = json.loads(done.stdout)
    print(
        f"\nlab: deploy of a new image in {took:.0f} s; requests during it: "
        + ", ".join(f"{z} {ld.ok + ld.failed} ({ld.failed} failed)" for z, ld in loads.items())
    )
    assert "✓ app-eu-central 2/2 updated" in done.stderr, done.stderr
    assert {k: v["state"] for k, v in result["services"].items()} == {
        "app-eu-central": "converged",
        "app-gb-lon": "converged",
    }
    assert [c["kind"] for c in result["changed"]] == ["stack_deployed"]
    assert REGISTRY_SECRET not in done.stdout + done.stderr
    left = on_node(known, key, manager, "ls -A /root/.swarmboot/deploy/itframe")
    assert left.split() == [], left  # the file and the login's configuration are gone
    assert set(_images(known, key, manager).values()) == {APP_IMAGE_2}
    for zone, load in loads.items():
        assert load.zones == {zone}, load.zones  # each zone's own tasks, all along
        assert load.ok > 50, load.ok
        assert load.errors == [], (zone, load.errors[:10])

    started = time.monotonic()
    broken = deploy_app(lab, spec, key, APP_BROKEN, check=False)
    took = time.monotonic() - started
    print(f"lab: a broken image rolled back in {took:.0f} s")
    assert broken.returncode == 8, broken.stderr
    assert "the deploy of itframe failed" in broken.stderr
    assert "task: non-zero exit (1)" in broken.stderr, broken.stderr
    rolled = {
        c["name"]
        for c in json.loads(broken.stdout)["changed"]
        if c["kind"] == "service_rolled_back"
    }
    assert rolled == {"itframe_app-eu-central", "itframe_app-gb-lon"}
    assert set(_images(known, key, manager).values()) == {APP_IMAGE_2}  # back where it was
    for zone, url in urls.items():
        assert {a.split()[0] for a in answers(url, 6)} == {zone}

    again = deploy_app(lab, spec, key, APP_IMAGE_2)
    assert "nothing to change" in again.stderr, again.stderr
    assert json.loads(again.stdout)["changed"] == []

    # A secret, from a file (as from stdin), into a versioned swarm secret; the same value
    # again makes nothing.
    value = tmp_path / "token"
    value.write_text(SECRET_VALUE)
    args = ("secret", "set", str(spec), "app_token", "--from-file", str(value))
    made = swarmboot(lab, *args, "--ssh-key", str(key))
    same = swarmboot(lab, *args, "--ssh-key", str(key))
    assert "nothing to change" in same.stderr, same.stderr
    assert SECRET_VALUE not in made.stdout + made.stderr + same.stdout + same.stderr
    listed = on_node(
        known,
        key,
        manager,
        "docker secret ls --filter label=swarmboot.secret=app_token --format '{{.Name}}'",
    )
    assert listed.split() == ["app_token.v1"], listed


def test_plan_upgrade_orders_the_nodes_and_names_each_lone_load_balancer(cluster, key):
    """On the real nodes: workers and load balancers zone by zone, the managers last, the
    leader last of all; each zone's only load balancer named with its endpoint. Nothing is
    changed (the upgrade itself is drilled: tests/drills/upgrade_drill.py)."""
    lab, spec, known, manager = cluster
    done = swarmboot(lab, "plan", str(spec), "--upgrade", "--docker", "--ssh-key", str(key))
    order = [line.split(". ", 1)[1].split(" (", 1)[0] for line in done.stdout.splitlines()]
    assert order[:6] == [
        "itframe-eu-central-worker-1",
        "itframe-eu-central-worker-2",
        "itframe-eu-central-lb-1",
        "itframe-gb-lon-worker-1",
        "itframe-gb-lon-worker-2",
        "itframe-gb-lon-lb-1",
    ]
    leader = on_node(
        known, key, manager, "docker node ls --format '{{.Hostname}} {{.ManagerStatus}}'"
    )
    (leading,) = [line.split()[0] for line in leader.splitlines() if line.endswith("Leader")]
    assert sorted(order[6:]) == [
        "itframe-eu-central-manager-1",
        "itframe-eu-central-manager-2",
        "itframe-gb-lon-manager-1",
    ]
    assert order[-1] == leading
    lbs = {i.label: i.ipv4[0] for i in linodes(lab) if "-lb-" in i.label}
    assert (
        f"itframe-gb-lon-lb-1 is the only load balancer of gb-lon: the zone's endpoint "
        f"(http://{lbs['itframe-gb-lon-lb-1']}:80) is down while it is upgraded, about 3 min"
    ) in done.stderr
    assert done.stderr.splitlines()[-1].endswith("itframe: 9 node(s) to upgrade, one at a time")


def test_an_ingress_publish_is_refused_where_the_kernel_lacks_ipvs(cluster, key):
    lab, spec, known, manager = cluster
    ingress = spec.with_name("itframe-ingress.toml")
    ingress.write_text(spec.read_text().replace("[lb]\n", '[lb]\npublish_mode = "ingress"\n'))
    before = on_node(known, key, manager, "docker service ls --format '{{.Name}} {{.Image}}'")
    done = swarmboot(lab, "lb", "deploy", str(ingress), "--ssh-key", str(key), check=False)
    assert done.returncode == 4, done.stderr
    assert done.stderr.startswith(
        'Error: lb.publish_mode = "ingress" needs IPVS, which the kernel of '
        "itframe-eu-central-lb-1, itframe-gb-lon-lb-1 lacks"
    ), done.stderr
    assert "Traceback" not in done.stderr
    assert on_node(known, key, manager, "docker service ls --format '{{.Name}} {{.Image}}'") == (
        before
    )


# --- a datacenter lost, every manager lost (these come last: they replace nodes) -----


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
        wall = time.strftime("%H:%M:%S", time.gmtime())
        self.events.append(f"{time.monotonic() - self.started:.1f} s ({wall} UTC): {what}")

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
        self.mark("load started")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


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


_SWARM_NEWS = re.compile(
    r"heartbeat|node .* (down|unknown)|leader|lost|elect|term|shut|kill|exit|die|stop|"
    r"session|dispatcher|orchestrat",
    re.IGNORECASE,
)


def _lb_evidence(lab, known, key, manager: str, lb_label: str) -> str:
    """What ended a load balancer's task: its service's tasks as the swarm lists them, and
    the lines of the manager's and the load balancer node's engine logs that speak of
    heartbeats, sessions, leaders, orchestration or tasks ending."""
    lines = []
    try:
        lines += on_node(
            known,
            key,
            manager,
            "docker service ps --no-trunc --format "
            "'{{.Name}} {{.Node}} {{.DesiredState}} {{.CurrentState}} {{.Error}}' "
            "itframe-lb_lb-gb-lon",
        ).splitlines()
    except AssertionError as exc:  # the evidence must not hide the failure it explains
        lines.append(f"docker service ps: {exc}")
    ids = {i.label: i.id for i in linodes(lab)}
    for label in ("itframe-gb-lon-manager-1", lb_label):
        log = lab.workdir / str(ids[label]) / "upper/var/log/dockerd.log"
        text = log.read_text(errors="replace").splitlines() if log.exists() else []
        lines += [f"{label}: {line}" for line in text if _SWARM_NEWS.search(line)][-60:]
    return "\n".join(lines)


def test_losing_eu_central_keeps_gb_lon_answering_and_recover_brings_it_back(
    cluster, key, tmp_path
):
    lab, spec, known0, _ = cluster
    swarmboot(lab, "lb", "deploy", str(spec), "--ssh-key", str(key))
    lbs = {i.label: i.ipv4[0] for i in linodes(lab) if "-lb-" in i.label}
    url = f"http://{lbs['itframe-gb-lon-lb-1']}:80/"
    answers(url, 12)  # the gb-lon load balancer has found its tasks
    lost = {i.label: i.id for i in linodes(lab) if f"-{EU}-" in i.label}
    assert len(lost) == 5
    # The heartbeat `up` gave the swarm: after the force, six of them (two minutes) for the
    # surviving nodes to reach the new leader before it shuts their tasks down.
    survivor = pinned(lab)["itframe-gb-lon-manager-1"][0]
    period = "{{.Swarm.Cluster.Spec.Dispatcher.HeartbeatPeriod}}"
    assert on_node(known0, key, survivor, f"docker info --format '{period}'").strip() == "20s"
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
    if load.errors:  # printed whole: an assertion's message is cut short
        print("\n".join([*load.errors[:10], *load.events, done.stderr]))
        print(_lb_evidence(lab, known, key, manager, "itframe-gb-lon-lb-1"))
    assert load.errors == [], (load.errors[:10], load.events)
    assert load.zones == {"gb-lon"}  # answered by gb-lon's tasks only, all along
    assert load.ok > 100
    assert replicas["itframe_app-eu-central"] == replicas["itframe_app-gb-lon"] == "2/2"
    assert_whole(lab, spec, known, key, via="itframe-gb-lon-manager-1")
    again = swarmboot(lab, "recover", str(spec), "--ssh-key", str(key), "--yes")
    assert "nothing to recover" in again.stderr, again.stderr


def test_every_manager_lost_then_restored_from_a_backup(cluster, key, tmp_path):
    """A backup taken from a manager that does not lead, every manager killed, the swarm
    made again from the backup: services, configs, secrets, networks and labels back, the
    workers still members, both zones answering again."""
    lab, spec, _, _ = cluster
    known = known_hosts(lab, spec, key, tmp_path / "known_hosts")
    manager = pinned(lab)["itframe-gb-lon-manager-1"][0]
    on_node(known, key, manager, "docker secret create db-password - >/dev/null", b"s3cret\n")
    on_node(known, key, manager, "docker config create app-settings - >/dev/null", b"a=1\n")
    passphrase = "a lab backup passphrase"
    env = {"SWARMBOOT_BACKUP_KEY": passphrase}
    out = tmp_path / "itframe.backup"
    done = swarmboot(lab, "backup", str(spec), "--ssh-key", str(key), "--out", str(out), env=env)
    # The deploy test's versioned secret, and this one.
    assert "secrets (names only): app_token.v1, db-password" in done.stdout, done.stdout
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
        "itframe_app-eu-central",
        "itframe_app-gb-lon",
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
