"""The upgrade drill in the lab: every node of a serving cluster upgraded while HTTP requests
go to every zone's load balancers, `upgrade` SIGKILLed midway and run again.

The lab's nodes reach no package mirror, so the upgrade is a stand-in that the drill can
observe on each node: a marker package, `swarmboot-lab-marker`, version 1 installed on every
node and version 2 in a local apt repository on each node (a flat `file:` repository, apt's
sources pointed at it alone). Version 2's maintainer script appends a line to
/var/lib/swarmboot-lab-marker.log and asks for a reboot (/run/reboot-required), so the real
`upgrade --packages` path runs end to end: drain and wait, `apt-get dist-upgrade` over SSH,
the reboot (the lab restarts the node's processes as a Linode's reboot would; the kernel is
this machine's, so there is no kernel to change), readiness, reactivation, the labels.

The cluster is examples/itframe-lab.toml with two load balancers per zone (a zone whose only
load balancer is upgraded has no endpoint meanwhile, and `upgrade` says so) and a plain
overlay. A zone's client knows both of its load balancers' addresses, as a client of a DNS
name with two addresses does: it sends each request to the next address in turn and tries
the other when a connection fails; a request fails when both do.

1. `up`, the images, the application per zone, `lb deploy`, the marker on every node;
2. requests to each zone in a loop (one every 50 ms per zone, for at most 20 minutes);
3. `upgrade --packages --yes`, SIGKILLed after a random delay (seeded), then run again until
   it exits 0;
4. `rotate --ca --join-tokens --yes` under the same load: a new CA, a new certificate on every
   node, new join tokens;
5. checked: on every node version 2 of the marker, and its line in the log exactly once; one
   reboot event per Linode; every node Ready and active with its labels; the upgrade marks
   all `done`, of one run; every node's certificate from the new CA (its issuer's key, read on
   the node, is one and the same and not the old one); then the requests and failures per
   zone (upgrade and rotation together), each node's time, and the rotation's.

As root, under the lab lock: `python -m tests.drills.upgrade_drill [SEED]`
(`make drills-upgrade-lab`). Not while another lab runs.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from linode_api4 import LinodeClient

from tests.lab.apps import deploy_app, import_images
from tests.lab.lab import EXE, REPO, TOKEN, LabSim, host_snapshot, on_node, pinned, swarmboot

SPEC = REPO / "examples" / "itframe-lab.toml"
MARKER = "swarmboot-lab-marker"
MARKER_LOG = "/var/lib/swarmboot-lab-marker.log"
REPO_DIR = "/srv/swarmboot-lab-apt"
# The load's bounds, per zone: one request every 50 ms, for at most 20 minutes.
INTERVAL, LIMIT_S, LIMIT_N = 0.05, 1200.0, 24_000
ATTEMPTS = 4
# `upgrade` of the lab's 11 nodes takes a few minutes: the kill comes within its first part.
KILL_WITHIN = (20.0, 120.0)
UPGRADED = re.compile(r"Upgraded (\S+) in (\d+) s")


def drill_spec() -> str:
    """The lab example with two load balancers per zone and a plain overlay."""
    text = SPEC.read_text().replace('encrypted = "auto"', "encrypted = false")
    return text.replace(
        '{ role = "lb", count = 1, type = "g6-standard-1" }',
        '{ role = "lb", count = 2, type = "g6-standard-1" }',
    )


# --- the marker package and its repository ------------------------------------------------


def marker_deb(version: str, work: Path) -> bytes:
    """The marker package (all architectures); version 2's postinst logs and asks for a
    reboot."""
    root = work / f"marker-{version}"
    (root / "DEBIAN").mkdir(parents=True)
    doc = root / "usr" / "share" / "doc" / MARKER
    doc.mkdir(parents=True)
    (doc / "VERSION").write_text(version + "\n")
    (root / "DEBIAN" / "control").write_text(
        f"Package: {MARKER}\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: swarmboot lab <lab@swarmboot.invalid>\n"
        "Description: what the lab's upgrade drill upgrades\n"
    )
    if version != "1":
        postinst = root / "DEBIAN" / "postinst"
        postinst.write_text(
            "#!/bin/sh\nset -e\n"
            'if [ "$1" = configure ]; then\n'
            f'  echo "$(date -u +%FT%TZ) {MARKER} {version} installed" >>{MARKER_LOG}\n'
            "  touch /run/reboot-required\n"
            "fi\n"
        )
        postinst.chmod(0o755)
    out = work / f"{MARKER}_{version}_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(root), str(out)],
        check=True,
        capture_output=True,
    )
    return out.read_bytes()


def repository(deb: bytes, version: str) -> dict[str, bytes]:
    """A flat apt repository holding `deb`: its Packages and Release files."""
    name = f"{MARKER}_{version}_all.deb"
    packages = (
        f"Package: {MARKER}\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: swarmboot lab <lab@swarmboot.invalid>\n"
        f"Filename: ./{name}\nSize: {len(deb)}\n"
        f"SHA256: {hashlib.sha256(deb).hexdigest()}\n"
        "Description: what the lab's upgrade drill upgrades\n\n"
    ).encode()
    release = (
        "Origin: swarmboot-lab\nLabel: swarmboot-lab\nSuite: lab\nCodename: lab\n"
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S UTC', time.gmtime())}\n"
        "Architectures: all amd64\nSHA256:\n"
        f" {hashlib.sha256(packages).hexdigest()} {len(packages)} Packages\n"
    ).encode()
    return {name: deb, "Packages": packages, "Release": release}


def prepare(known: Path, key: Path, address: str, first: bytes, repo: dict[str, bytes]) -> None:
    """Version 1 installed, the repository with version 2 on the node, apt pointed at it."""
    on_node(
        known,
        key,
        address,
        "cat >/tmp/marker.deb && dpkg -i /tmp/marker.deb >/dev/null && rm /tmp/marker.deb",
        stdin=first,
    )
    on_node(known, key, address, f"mkdir -p {REPO_DIR}")
    for name, content in repo.items():
        on_node(known, key, address, f"cat >{REPO_DIR}/{name}", stdin=content)
    on_node(
        known,
        key,
        address,
        "mkdir -p /root/apt-sources-off && "
        "mv /etc/apt/sources.list.d/*.sources /root/apt-sources-off/ 2>/dev/null; "
        "rm -f /etc/apt/sources.list; "
        f"echo 'deb [trusted=yes] file:{REPO_DIR} ./' >/etc/apt/sources.list.d/lab.list",
    )


def marker_state(known: Path, key: Path, address: str) -> tuple[str, int]:
    out = on_node(
        known,
        key,
        address,
        f"dpkg-query -W -f='${{Version}}' {MARKER}; echo; "
        f"grep -c ' {MARKER} 2 installed' {MARKER_LOG} || true",
    ).split()
    return out[0], int(out[1])


# --- the load -----------------------------------------------------------------------------


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=2.0) as answer:
        return answer.read().decode().strip()


@dataclass
class ZoneLoad:
    """Requests to one zone in a loop: each to the next of its load balancers, the other
    tried when a connection fails; a request fails when every one does."""

    zone: str
    urls: list[str]
    ok: int = 0
    failed: int = 0
    failovers: int = 0
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"load-{self.zone}")
        self.started = time.monotonic()

    def _once(self, turn: int) -> None:
        for n in range(len(self.urls)):
            url = self.urls[(turn + n) % len(self.urls)]
            try:
                zone = _get(url + "/").split()[0]
            except OSError as exc:
                last = f"{url}: {exc}"
                continue
            if zone != self.zone:
                raise AssertionError(f"{url} answered from {zone}")
            self.ok += 1
            self.failovers += n > 0
            return
        self.failed += 1
        self.errors.append(f"{time.monotonic() - self.started:.1f} s: {last}")

    def _run(self) -> None:
        turn = 0
        while not self._stop.is_set() and time.monotonic() - self.started < LIMIT_S:
            if self.ok + self.failed >= LIMIT_N:
                return
            self._once(turn)
            turn += 1
            self._stop.wait(INTERVAL)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


# --- the drill ----------------------------------------------------------------------------


def _issuers(known: Path, key: Path, nodes: dict[str, tuple[str, str]]) -> dict[str, str]:
    """Each node's swarm certificate's issuer key (its authority key identifier), read on the
    node."""
    from swarmboot.certs import parse_node_certificate
    from swarmboot.facts import NODE_CERT_PATH

    return {
        label: str(
            parse_node_certificate(on_node(known, key, address, f"cat {NODE_CERT_PATH}")).issuer_key
        )
        for label, (address, _) in nodes.items()
    }


def _upgrade(
    lab: LabSim, spec: Path, key: Path, kill_after: float | None, t0: float, said: list
) -> tuple[int, str]:
    """One `upgrade --packages --yes`, SIGKILLed after `kill_after` seconds if given; what it
    said goes into `said` as (seconds since t0, line), to read the load's failures against."""
    env = lab.client_env()
    env.update(SWARMBOOT_SSH_KEY=str(key))
    proc = subprocess.Popen(
        [EXE, "upgrade", str(spec), "--packages", "--yes", "--api-url", lab.url],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []

    def read() -> None:
        for line in proc.stderr:
            lines.append(line)
            said.append((time.monotonic() - t0, line.strip()))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        proc.wait(timeout=kill_after if kill_after is not None else 3600)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        said.append((time.monotonic() - t0, "(SIGKILL)"))
        rc = -9
    reader.join(timeout=30)
    return rc, "".join(lines)


def drill(seed: int) -> list[str]:
    rng = random.Random(seed)
    problems: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="swarmboot-upgrade-drill-"))
    key = work / "id_ed25519"
    key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    key.chmod(0o600)
    spec = work / "itframe-upgrade.toml"
    spec.write_text(drill_spec())
    before = host_snapshot()
    lab = LabSim.start()
    loads: dict[str, ZoneLoad] = {}
    try:
        began = time.monotonic()
        swarmboot(lab, "up", str(spec), "--ssh-key", str(key))
        known = work / "known_hosts"
        known.write_text(swarmboot(lab, "known-hosts", str(spec), "--ssh-key", str(key)).stdout)
        import_images(lab, known, key)
        deploy_app(lab, spec, key)
        done = swarmboot(lab, "lb", "deploy", str(spec), "--ssh-key", str(key), "--json")
        urls = json.loads(done.stdout)
        print(
            f"cluster up, application and load balancers deployed in "
            f"{time.monotonic() - began:.0f} s",
            flush=True,
        )
        first, second = marker_deb("1", work), marker_deb("2", work)
        repo = repository(second, "2")
        nodes = pinned(lab)
        for address, _ in nodes.values():
            prepare(known, key, address, first, repo)
        for zone, zone_urls in urls.items():
            deadline = time.monotonic() + 120
            for url in zone_urls:  # every load balancer answers before the load begins
                while True:
                    try:
                        _get(url + "/")
                        break
                    except OSError:
                        assert time.monotonic() < deadline, f"{url} does not answer"
                        time.sleep(1)
            loads[zone] = ZoneLoad(zone, zone_urls)
            loads[zone].start()
        load_began = min(load.started for load in loads.values())
        said: list[tuple[float, str]] = []
        kill_after = rng.uniform(*KILL_WITHIN)
        runs: list[tuple[int, str]] = []
        upgrade_began = time.monotonic()
        for attempt in range(ATTEMPTS):
            rc, err = _upgrade(
                lab, spec, key, kill_after if attempt == 0 else None, load_began, said
            )
            runs.append((rc, err))
            print(
                f"upgrade run {attempt + 1}: exit {rc}"
                + (f" (SIGKILL after {kill_after:.0f} s)" if rc == -9 else ""),
                flush=True,
            )
            if rc == 0:
                break
            if rc != -9:
                problems.append(f"upgrade exited {rc}: {err.strip().splitlines()[-1:]}")
        upgrade_seconds = time.monotonic() - upgrade_began
        issuers_before = _issuers(known, key, nodes)
        rotate_began = time.monotonic()
        said.append((rotate_began - load_began, "rotate --ca --join-tokens"))
        swarmboot(lab, "rotate", str(spec), "--ca", "--join-tokens", "--yes", "--ssh-key", str(key))
        rotate_seconds = time.monotonic() - rotate_began
        said.append((time.monotonic() - load_began, "rotated"))
        for load in loads.values():
            load.stop()
        issuers_after = _issuers(known, key, nodes)
        if len(set(issuers_after.values())) != 1 or set(issuers_after.values()) & set(
            issuers_before.values()
        ):
            problems.append(f"certificate issuers before {issuers_before}, after {issuers_after}")
        # What each node says, and the cloud.
        for label, (address, _) in sorted(nodes.items()):
            version, installed = marker_state(known, key, address)
            if version != "2" or installed != 1:
                problems.append(f"{label}: marker {version}, installed {installed} time(s)")
        client = LinodeClient(TOKEN, base_url=lab.url)
        reboots: dict[str, int] = {}
        for event in client.account.events():
            if event.action == "linode_reboot" and event.status in ("finished", "notification"):
                reboots[event.entity.label] = reboots.get(event.entity.label, 0) + 1
        for label in nodes:
            if reboots.get(label, 0) != 1:
                problems.append(f"{label}: rebooted {reboots.get(label, 0)} time(s)")
        status = json.loads(
            swarmboot(lab, "status", str(spec), "--ssh-key", str(key), "--json").stdout
        )
        runs_marked = set()
        for row in status["nodes"]:
            mark = row.get("upgrade") or ""
            runs_marked.add(mark.split(":")[1] if mark else None)
            if not mark.endswith(":done") or not row["swarm"].endswith("ready"):
                problems.append(f"{row['node']}: {row['swarm']}, mark {mark or 'none'}")
            if row["labels"].get("zone") != row["region"]:
                problems.append(f"{row['node']}: labels {row['labels']}")
        if len(runs_marked) != 1:
            problems.append(f"upgrade marks of runs {sorted(map(str, runs_marked))}")
        manager = nodes["itframe-eu-central-manager-1"][0]
        listed = on_node(
            known,
            key,
            manager,
            "docker node ls --format '{{.Hostname}} {{.Status}} {{.Availability}}'",
        ).split("\n")
        for line in filter(None, listed):
            name, state, availability = line.split()
            if (state, availability) != ("Ready", "Active"):
                problems.append(f"{name}: {state}, {availability}")
        # The figures.
        print(f"upgrade of {len(nodes)} nodes: {len(runs)} run(s), {upgrade_seconds:.0f} s in all")
        print(f"CA and join tokens rotated in {rotate_seconds:.0f} s")
        for zone, load in loads.items():
            print(
                f"  {zone}: {load.ok + load.failed} requests, {load.failed} failed, "
                f"{load.failovers} answered by the other load balancer"
            )
            for error in load.errors[:5]:
                at = float(error.split(" s:", 1)[0]) + load.started - load_began
                doing = [line for t, line in said if t <= at]
                print(f"    {error}  (upgrade: {doing[-1] if doing else 'not begun'})")
        # Each node's time, in the order they were done (a node the kill cut short is timed
        # from where the next run took it up).
        times = [
            (label, seconds, n)
            for n, (_, err) in enumerate(runs, start=1)
            for label, seconds in UPGRADED.findall(err)
        ]
        for label, seconds, n in times:
            print(f"  {label}: {seconds} s (run {n})")
    except Exception as exc:  # said with the rest
        problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        for load in loads.values():
            load.stop()
        leftovers = lab.stop()
        problems += [f"left on the host: {x}" for x in leftovers]
        if host_snapshot() != before:
            problems.append("the host's routes, links, mounts or namespaces changed")
        subprocess.run(["rm", "-rf", str(work)], check=False)
    return problems


def main(argv: list[str]) -> int:
    seed = int(argv[0]) if argv else 1
    problems = drill(seed)
    for problem in problems:
        print(f"  problem: {problem}")
    print("upgrade drill: " + ("ok" if not problems else f"{len(problems)} problem(s)"))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
