"""What lab tests run on a swarm: the load balancers' and the application's images (no
registry is reachable here: each is made from this machine's Debian packages and imported on
the nodes that run it), the application per zone, HTTP to the load balancers, and what the
docker CLI on a manager says of the nodes."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time
import urllib.request
from pathlib import Path

from swarmboot.spec import load_spec

from .lab import LabSim, linodes, on_node, pinned, swarmboot

HAPROXY_IMAGE = "swarmboot-lab/haproxy:1"
APP_IMAGE = "swarmboot-lab/app:1"
# The application's next version (the same files, another image), and one whose every
# container exits at once.
APP_IMAGE_2 = "swarmboot-lab/app:2"
APP_BROKEN = "swarmboot-lab/app:broken"
APP_STACK = Path(__file__).parent / "data" / "app-stack.yml"
_APP_IMAGES = (
    (APP_IMAGE, ""),
    (APP_IMAGE_2, "--change 'LABEL version=2' "),
    (APP_BROKEN, "--change 'ENTRYPOINT [\"/bin/false\"]' "),
)


def _rootfs(binary: str, links: tuple[str, ...] = ()) -> bytes:
    """A tarball of one binary, the libraries it links, and symlinks to it."""
    found = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    files = [binary] + [part for part in found.split() if part.startswith("/")]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for path in files:
            tar.add(str(Path(path).resolve()), arcname=path.lstrip("/"))
        for link in links:
            info = tarfile.TarInfo(link.lstrip("/"))
            info.type, info.linkname = tarfile.SYMTYPE, binary
            tar.addfile(info)
        for directory in ("tmp", "run", "var/run", "usr/local/etc/haproxy"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if directory == "tmp" else 0o755
            tar.addfile(info)
    return out.getvalue()


def import_images(sim: LabSim, known: Path, key: Path, labels: list[str] | None = None) -> None:
    """HAProxy's image on the lb nodes and the application's on the workers (of `labels`,
    or all)."""
    haproxy = _rootfs("/usr/sbin/haproxy")
    app = _rootfs(
        "/bin/busybox",
        (
            "/bin/sh",
            "/bin/mkdir",
            "/bin/hostname",
            "/bin/httpd",
            "/bin/wget",
            "/bin/sleep",
            "/bin/false",
        ),
    )
    path = "--change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' "
    for label, (address, _) in pinned(sim).items():
        if labels is not None and label not in labels:
            continue
        if "-lb-" in label:
            on_node(
                known,
                key,
                address,
                f"docker import {path}- {HAPROXY_IMAGE} >/dev/null",
                stdin=haproxy,
            )
        if "-worker-" in label:
            for image, change in _APP_IMAGES:
                on_node(
                    known,
                    key,
                    address,
                    f"docker import {path}{change}- {image} >/dev/null",
                    stdin=app,
                )


def deploy_app(
    sim: LabSim,
    spec: Path,
    key: Path,
    image: str = APP_IMAGE,
    *,
    check: bool = True,
    env: dict[str, str] | None = None,
):
    """The application's stack (one service per zone, two tasks each, on that zone's
    workers) deployed with `swarmboot deploy`, which waits for the rollout."""
    return swarmboot(
        sim,
        "deploy",
        str(spec),
        str(APP_STACK),
        "--ssh-key",
        str(key),
        "--resolve-image",
        "never",
        "--timeout",
        "240",
        "--json",
        env={"APP_IMAGE": image, **(env or {})},
        check=check,
    )


def get(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return answer.read().decode().strip()


def answers(url: str, want: int, timeout: float = 90.0) -> list[str]:
    """`want` answers in a row, once the load balancer has found the tasks (DNS, health)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return [get(url) for _ in range(want)]
        except OSError as exc:
            assert time.monotonic() < deadline, f"{url}: {exc}"
            time.sleep(1)


def known_hosts(sim: LabSim, spec: Path, key: Path, path: Path) -> Path:
    """The nodes' host keys as OpenSSH reads them, each checked against its pin (a dead
    node is left out)."""
    done = swarmboot(sim, "known-hosts", str(spec), "--ssh-key", str(key), check=False)
    path.write_text(done.stdout)
    return path


def swarm_nodes(known: Path, key: Path, address: str) -> list[dict]:
    """`docker node inspect` of every entry, from the manager at `address`."""
    return json.loads(on_node(known, key, address, "docker node inspect $(docker node ls -q)"))


def assert_whole(sim: LabSim, spec: Path, known: Path, key: Path, via: str) -> list[dict]:
    """Every node of the spec Ready and Active, exactly one entry each, labels and roles
    right, the spec's managers all reachable in raft, no rebuild left marked."""
    wanted = {n.label: n for n in load_spec(spec).nodes()}
    entries = swarm_nodes(known, key, pinned(sim)[via][0])
    hostnames = sorted(n["Description"]["Hostname"] for n in entries)
    assert hostnames == sorted(wanted)  # one entry per node: none stale, none twice
    for node in entries:
        plan = wanted[node["Description"]["Hostname"]]
        assert node["Status"]["State"] == "ready", plan.label
        assert node["Spec"]["Availability"] == "active", plan.label
        assert node["Spec"]["Labels"]["zone"] == plan.region, plan.label
        assert node["Spec"]["Labels"]["role"] == plan.role, plan.label
        assert node["Spec"]["Role"] == ("manager" if plan.role == "manager" else "worker")
    managers = [n for n in entries if n["Spec"]["Role"] == "manager"]
    count = sum(1 for n in wanted.values() if n.role == "manager")
    assert sorted(n["ManagerStatus"]["Reachability"] for n in managers) == ["reachable"] * count
    assert not any("rebuild:" in t for i in linodes(sim) for t in i.tags)
    return entries
