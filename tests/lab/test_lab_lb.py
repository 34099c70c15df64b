"""Load balancers in the lab: `swarmboot lb deploy` on a real swarm, HTTP through each zone's.

No registry is reachable here, so the images are made from this machine's Debian packages
(haproxy, busybox: a binary and the libraries it links) and imported on every node. The
application runs as one service per zone (`app-<zone>`, answering with its zone and task);
each zone's load balancer, published in host mode on its node's own address, must send every
request to a task of its own zone. The cluster's overlay is not encrypted here: this kernel
has no IPsec ESP, so encrypted overlay traffic would be dropped (configuration of the
encrypted one is checked in test_lab_swarm).
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest

from .lab import REPO, linodes, on_node, pinned, swarmboot

pytestmark = pytest.mark.lab

LAB_SPEC = REPO / "examples" / "itframe-lab.toml"
HAPROXY_IMAGE = "swarmboot-lab/haproxy:1"
APP_IMAGE = "swarmboot-lab/app:1"
# The application: busybox's httpd, answering / with its zone and task, and /healthz.
APP_COMMAND = (
    'sh -c \'mkdir -p /www && echo "$ZONE $(hostname)" > /www/index.html && '
    "echo ok > /www/healthz && exec httpd -f -p 8080 -h /www'"
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


def _import(known: Path, key: Path, address: str, image: str, tarball: bytes) -> None:
    on_node(
        known,
        key,
        address,
        f"docker import --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' - {image} >/dev/null",
        stdin=tarball,
    )


@pytest.fixture(scope="module")
def cluster(lab, key, tmp_path_factory):
    """The lab example with a plain overlay, up, the images on every node, the application
    deployed in each zone."""
    spec = tmp_path_factory.mktemp("spec") / "itframe-lb.toml"
    spec.write_text(LAB_SPEC.read_text().replace('encrypted = "auto"', "encrypted = false"))
    swarmboot(lab, "up", str(spec), "--ssh-key", str(key))
    known = tmp_path_factory.mktemp("ssh") / "known_hosts"
    known.write_text(swarmboot(lab, "known-hosts", str(spec), "--ssh-key", str(key)).stdout)
    haproxy = _rootfs("/usr/sbin/haproxy")
    app = _rootfs("/bin/busybox", ("/bin/sh", "/bin/mkdir", "/bin/hostname", "/bin/httpd"))
    pins = pinned(lab)
    for label, (address, _) in pins.items():
        if "-lb-" in label:
            _import(known, key, address, HAPROXY_IMAGE, haproxy)
        if "-worker-" in label:
            _import(known, key, address, APP_IMAGE, app)
    manager = pins["itframe-eu-central-manager-1"][0]
    for zone in ("eu-central", "gb-lon"):
        on_node(
            known,
            key,
            manager,
            f"docker service create --detach=false --quiet --name app-{zone} --replicas 2 "
            f"--network itframe --env ZONE={zone} --constraint node.labels.zone=={zone} "
            f"--constraint node.labels.role==worker {APP_IMAGE} {APP_COMMAND}",
        )
    return lab, spec, known, manager


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return answer.read().decode().strip()


def _answers(url: str, want: int, timeout: float = 90.0) -> list[str]:
    """`want` answers in a row, once the load balancer has found the tasks (DNS, health)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return [_get(url) for _ in range(want)]
        except OSError as exc:
            assert time.monotonic() < deadline, f"{url}: {exc}"
            time.sleep(1)


def _both_tasks(url: str, timeout: float = 90.0) -> list[str]:
    """Every answer until 12 in a row came from both of the zone's tasks. Each backend slot
    gets its address from DNS and takes traffic once its health check passed twice (2 s
    apart), so for a few seconds after the first answer one task may answer alone."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        seen += _answers(url, 12)
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
        assert {a.split()[0] for a in _answers(url + "/", 6)} == {zone}
    mounted = on_node(
        known,
        key,
        manager,
        "docker service inspect itframe-lb_lb-eu-central --format "
        "'{{range .Spec.TaskTemplate.ContainerSpec.Configs}}{{.ConfigName}}{{end}}'",
    )
    assert mounted.strip() in after


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
