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

import json
import time

import pytest

from .apps import answers, deploy_app, import_images
from .lab import REPO, linodes, on_node, pinned, swarmboot

pytestmark = pytest.mark.lab

LAB_SPEC = REPO / "examples" / "itframe-lab.toml"


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
    deploy_app(known, key, manager, ("eu-central", "gb-lon"))
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
