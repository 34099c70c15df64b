"""The load balancers' files: each zone's HAProxy configuration checked by the real `haproxy -c`
(Debian's, `make host-deps` installs it), the stack file's structure, and the `[lb]` spec."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from swarmboot.lb import endpoints, render_lb, service_name
from swarmboot.spec import SpecError, load_spec, parse_spec
from swarmboot.state import Instance, Observed

from .conftest import REPO

EXAMPLE = REPO / "examples" / "itframe.toml"


def _haproxy() -> str:
    found = shutil.which("haproxy")
    if found is None:
        if os.environ.get("SWARMBOOT_REQUIRE_DEBIAN_TESTS") == "1":
            pytest.fail("needs Debian's haproxy (make host-deps installs it)")
        pytest.skip("needs Debian's haproxy (make host-deps installs it)")
    return found


def _check(text: str, tmp_path: Path) -> str:
    path = tmp_path / "haproxy.cfg"
    path.write_text(text)
    done = subprocess.run(
        [_haproxy(), "-c", "-f", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def _spec(**lb: object):
    text = EXAMPLE.read_text()
    for key, value in lb.items():
        start = text.find(f"\n{key} = ", text.index("[lb]"))
        if start == -1:  # not in the example: added to the section
            text = text.replace("[lb]\n", f"[lb]\n{key} = {value}\n", 1)
            continue
        end = text.index("\n", start + 1)
        text = text[:start] + f"\n{key} = {value}" + text[end:]
    return parse_spec(text)


@pytest.mark.parametrize(
    "settings",
    [{}, {"backends": '"global"'}, {"ports": "[80, 443]", "health_path": '"/health?full=1"'}],
    ids=["zone", "global", "two-ports"],
)
def test_each_zones_configuration_passes_haproxy_check(settings, tmp_path):
    spec = _spec(**settings)
    bundle = render_lb(spec)
    assert [z.name for z in bundle.zones] == ["eu-central", "gb-lon"]
    for zone in bundle.zones:
        said = _check(zone.text, tmp_path)
        assert "WARNING" not in said and "ALERT" not in said, said
        assert "nameserver docker 127.0.0.11:53" in zone.text
        target = "tasks.app" if settings.get("backends") else f"tasks.app-{zone.name}"
        assert f"server-template task 10 {target}:8080 check" in zone.text
        assert f"option httpchk GET {spec.lb.health_path}" in zone.text
        for port in spec.lb.ports:
            assert f"\tbind :{port}\n" in zone.text


def test_the_stack_runs_one_global_service_per_zone_on_its_lb_nodes_in_host_mode():
    spec = load_spec(EXAMPLE)
    bundle = render_lb(spec)
    stack = yaml.safe_load(bundle.stack_file)
    assert bundle.stack == "itframe-lb"
    assert sorted(stack["services"]) == ["lb-eu-central", "lb-gb-lon"]
    for zone in bundle.zones:
        service = stack["services"][f"lb-{zone.name}"]
        assert service_name(spec, zone.name) == f"itframe-lb_lb-{zone.name}"
        assert service["deploy"]["mode"] == "global"
        assert service["deploy"]["placement"]["constraints"] == [
            "node.labels.role == lb",
            f"node.labels.zone == {zone.name}",
            "node.labels.cluster == itframe",
        ]
        assert service["ports"] == [
            {"target": 80, "published": 80, "protocol": "tcp", "mode": "host"}
        ]
        assert service["networks"] == ["itframe"]
        assert service["configs"][0]["target"] == "/usr/local/etc/haproxy/haproxy.cfg"
        assert service["configs"][0]["source"] == zone.config
        assert service["stop_signal"] == "SIGUSR1"  # HAProxy's soft stop: connections finish
        assert service["deploy"]["update_config"]["order"] == "stop-first"
        assert stack["configs"][zone.config] == {"name": zone.config, "file": f"./{zone.file}"}
    assert stack["networks"] == {"itframe": {"external": True}}


@pytest.mark.parametrize("name", ["true", "null", "yes", "1e3", "0x10"])
def test_a_network_name_yaml_would_read_as_another_type_stays_a_string(name):
    text = EXAMPLE.read_text().replace('[network]\nname = "itframe"', f'[network]\nname = "{name}"')
    stack = yaml.safe_load(render_lb(parse_spec(text)).stack_file)
    assert stack["networks"] == {name: {"external": True}}
    assert {s["networks"][0] for s in stack["services"].values()} == {name}


def test_a_changed_configuration_gets_a_new_config_name_so_the_service_rolls():
    before = {z.name: z.config for z in render_lb(load_spec(EXAMPLE)).zones}
    again = {z.name: z.config for z in render_lb(load_spec(EXAMPLE)).zones}
    assert before == again  # the same spec, the same names: a redeploy changes nothing
    changed = {z.name: z.config for z in render_lb(_spec(health_path='"/ready"')).zones}
    assert all(changed[zone] != before[zone] for zone in before)
    assert all(name.startswith(f"itframe-lb-{zone}-") for zone, name in changed.items())


def test_ingress_is_rendered_only_when_asked_for():
    stack = yaml.safe_load(render_lb(_spec(publish_mode='"ingress"')).stack_file)
    assert stack["services"]["lb-gb-lon"]["ports"][0]["mode"] == "ingress"


def test_the_lb_section_is_checked_with_the_rest_of_the_spec(tmp_path):
    text = EXAMPLE.read_text()
    no_lb_pool = text.replace('  { role = "lb", count = 1, type = "g6-standard-1" },\n', "", 1)
    closed = no_lb_pool.replace("ports = [80]", "ports = [80, 8443]")
    bad = closed.replace('health_path = "/healthz"', 'health_path = "healthz"')
    path = tmp_path / "spec.toml"
    path.write_text(bad)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.problems[0].startswith(f"{path}: lb.health_path: ")
    path.write_text(closed)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.problems == (
        f"{path}: regions.eu-central: no lb pool, but [lb] puts a load balancer in every zone "
        'with workers; add { role = "lb", count = 1 } to its pools',
        f"{path}: lb.ports: 8443 is not open to the world; add "
        '"8443/tcp" = ["0.0.0.0/0", "::/0"] to [firewall.public]',
    )


def test_endpoints_are_each_lb_nodes_own_address_per_zone():
    spec = load_spec(EXAMPLE)
    instances = tuple(
        Instance(n, node.label, node.region, node.type, "running", (), f"198.51.100.{n}", None)
        for n, node in enumerate(spec.nodes(), start=10)
    )
    found = endpoints(spec, Observed(instances))
    lbs = {i.label: i.ipv4_public for i in instances if "-lb-" in i.label}
    assert found == {
        "eu-central": [f"http://{lbs['itframe-eu-central-lb-1']}:80"],
        "gb-lon": [f"http://{lbs['itframe-gb-lon-lb-1']}:80"],
    }
