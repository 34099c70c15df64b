from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from swarmboot.errors import ExitCode
from swarmboot.spec import SpecError, admin_keys, check_against_catalog, load_spec, parse_spec

from .conftest import REPO

EXAMPLE = REPO / "examples" / "itframe.toml"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFh ops@x"

MINIMAL = """
[cluster]
name = "demo"
[regions.eu-central]
pools = [{ role = "manager", count = 1 }]
"""


def problems(text: str, **kwargs) -> tuple[str, ...]:
    with pytest.raises(SpecError) as info:
        parse_spec(text, source="s.toml", **kwargs)
    assert info.value.exit_code == ExitCode.BAD_SPEC == 4
    return info.value.problems


def test_the_example_is_the_seeds_topology():
    spec = load_spec(EXAMPLE)
    assert spec.cluster.name == "itframe" and spec.multi_region and spec.encrypted
    nodes = spec.nodes()
    assert [n.label for n in nodes if n.role == "manager"] == [
        "itframe-eu-central-manager-1",
        "itframe-eu-central-manager-2",
        "itframe-gb-lon-manager-1",
    ]
    assert {(n.region, n.role) for n in nodes} == {
        (r, role) for r in ("eu-central", "gb-lon") for role in ("manager", "lb", "worker")
    }
    assert {n.type for n in nodes if n.role == "lb"} == {"g6-standard-1"}
    assert len(nodes) == 9 and spec.tag == "swarmboot:itframe"


def test_defaults_and_one_region():
    spec = parse_spec(MINIMAL)
    assert (spec.cluster.image, spec.cluster.type, spec.cluster.advertise) == (
        "linode/debian12",
        "g6-standard-2",
        "auto",
    )
    assert not spec.multi_region and not spec.encrypted and spec.network_name == "demo"


def test_encryption_is_explicit_when_opted_out():
    text = MINIMAL + '[regions.gb-lon]\npools = [{ role = "worker", count = 1 }]\n'
    assert parse_spec(text).encrypted
    assert not parse_spec(text + "[network]\nencrypted = false\n").encrypted


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[cluster\nname = 1", "s.toml: not valid TOML: "),
        (MINIMAL + "[extra]\nx = 1\n", "s.toml: extra: unknown key; check its spelling"),
        (
            MINIMAL.replace('name = "demo"', 'name = "demo"\ncolour = "red"'),
            "s.toml: cluster.colour: unknown key",
        ),
        (
            MINIMAL.replace('"demo"', '"Demo_1"'),
            "s.toml: cluster.name: must be a lowercase name starting with a letter",
        ),
        (
            MINIMAL.replace('"demo"', '"de--mo"'),
            "s.toml: cluster.name: 'de--mo' has two hyphens in a row, which Linode refuses in a "
            "label (it starts every node's label); use one hyphen",
        ),
        (
            MINIMAL.replace('"manager"', '"boss"'),
            "s.toml: regions.eu-central.pools[0].role: must be 'manager', 'worker' or 'lb'",
        ),
        (
            MINIMAL.replace("count = 1", "count = -1"),
            "s.toml: regions.eu-central.pools[0].count: Input should be greater than or equal",
        ),
        (
            MINIMAL.replace("count = 1", "count = 2"),
            "s.toml: regions: 2 managers; use an odd number (1, 3, 5 or 7)",
        ),
        (
            MINIMAL.replace('"manager"', '"worker"'),
            "s.toml: regions: no managers; a swarm needs 1, 3, 5 or 7",
        ),
        (
            MINIMAL.replace("count = 1 }", 'count = 1 }, { role = "manager", count = 2 }'),
            "s.toml: regions.eu-central.pools: more than one manager pool",
        ),
        (
            MINIMAL.replace("count = 1 }", 'count = 1, labels = { zone = "x" } }'),
            "s.toml: regions.eu-central.pools[0].labels: 'zone' is set by swarmboot",
        ),
        (
            MINIMAL.replace("count = 1 }", 'count = 1, labels = { disk = "ssd\\nrole=x" } }'),
            "s.toml: regions.eu-central.pools[0].labels: the value of 'disk', 'ssd\\nrole=x', "
            "has a control character (a newline, tab or terminal escape)",
        ),
        (
            MINIMAL.replace("count = 1 }", 'count = 1, labels = { disk = "\\u001b[2Jssd" } }'),
            "s.toml: regions.eu-central.pools[0].labels: the value of 'disk', '\\x1b[2Jssd', "
            "has a control character",
        ),
        (
            MINIMAL + '[network]\nname = "solo\\n"\n',
            "s.toml: network.name: must be a Docker network name: a letter or digit first, then "
            "letters, digits and _ . -, at most 63",
        ),
        (MINIMAL + '[network]\nsubnet = "10.0.0.0/33"\n', "s.toml: network.subnet: "),
        (MINIMAL + '[firewall]\nssh_from = ["nowhere"]\n', "s.toml: firewall.ssh_from: "),
        (
            MINIMAL + '[firewall.public]\n"http" = ["0.0.0.0/0"]\n',
            "s.toml: firewall.public: 'http' is not PORT/tcp",
        ),
        (
            MINIMAL + '[firewall.public]\n"\uff14\uff14\uff13/tcp" = ["0.0.0.0/0"]\n',
            "s.toml: firewall.public: '\uff14\uff14\uff13/tcp' is not PORT/tcp, PORT/udp or "
            "FIRST-LAST/tcp in the digits 0-9",
        ),
        (
            MINIMAL + '[firewall.public]\n"\u0664\u0664\u0663/tcp" = ["0.0.0.0/0"]\n',
            "s.toml: firewall.public: '\u0664\u0664\u0663/tcp' is not PORT/tcp",
        ),
        (
            MINIMAL.replace('name = "demo"', 'name = "demo"\nadvertise = "ipv6"'),
            "s.toml: cluster.advertise: must be 'auto', 'private' or 'public'",
        ),
    ],
)
def test_bad_specs_name_the_key_and_the_fix(text, expected):
    (problem,) = problems(text)
    assert problem.startswith(expected), problem


LB = '[lb]\nservice = "app"\nport = 8080\n[firewall.public]\n"80/tcp" = ["0.0.0.0/0"]\n'


@pytest.mark.parametrize(
    "image",
    [
        "haproxy",
        "haproxy:2.8-alpine",
        "docker.io/library/haproxy:2.8",
        "registry.example.com:5000/ops/haproxy:2.8",
        "swarmboot-lab/haproxy:1",
        "[::1]:5000/haproxy",
        "haproxy:2.8@sha256:" + "0" * 64,
    ],
)
def test_lb_image_takes_a_docker_image_reference(image):
    assert parse_spec(MINIMAL + LB.replace("port = 8080", f"port = 8080\nimage = {image!r}"))


@pytest.mark.parametrize(
    "image",
    [
        "haproxy:2.8\n",
        "haproxy:2.8$(reboot)",
        "haproxy:2.8 --privileged",
        "haproxy:2.8'x",
        "HAProxy:2.8",
        "haproxy:",
        "haproxy@sha256:abc",
        "haproxy:" + "a" * 129,
        "",
    ],
)
def test_lb_image_refuses_what_is_not_a_docker_image_reference(image):
    text = MINIMAL + LB.replace("port = 8080", f"port = 8080\nimage = {json.dumps(image)}")
    (problem,) = problems(text)
    assert problem == (
        f"s.toml: lb.image: {image!r} is not a Docker image reference: NAME[:TAG][@DIGEST] in "
        "Docker's grammar, like haproxy:2.8 or registry.example.com/ops/haproxy:2.8"
    )


@pytest.mark.parametrize(
    "text",
    [
        "x = " + "[" * 5000 + "]" * 5000,  # past tomllib's recursion
        "x = " + "[" * 300 + "]" * 300,  # past the JSON parser's limit of pydantic
        MINIMAL.replace('name = "demo"', 'name = "demo"\nadmin_ssh_keys = ' + "[" * 40 + "]" * 40),
    ],
    ids=["5000", "300", "40"],
)
def test_a_spec_nested_too_deeply_is_one_line(text):
    assert problems(text) == (
        "s.toml: nested too deeply (arrays or tables more than 32 levels within each other); a "
        "spec is a few levels deep: check that this is the spec",
    )


@pytest.mark.parametrize("value", ['"true"', '"false"', "1", '"Auto"'])
def test_network_encrypted_is_one_problem_naming_its_three_values(value):
    assert problems(MINIMAL + f"[network]\nencrypted = {value}\n") == (
        's.toml: network.encrypted: must be "auto", true or false (true and false without quotes)',
    )


def test_every_problem_is_gathered_at_once():
    text = MINIMAL.replace('"demo"', '"Demo"').replace('"manager"', '"boss"') + "[x]\n"
    assert len(problems(text)) == 3


def test_private_advertising_cannot_span_regions():
    text = MINIMAL.replace('name = "demo"', 'name = "demo"\nadvertise = "private"')
    assert parse_spec(text).cluster.advertise == "private"
    (problem,) = problems(text + '[regions.gb-lon]\npools = [{ role = "worker", count = 1 }]\n')
    assert problem.startswith("s.toml: cluster.advertise: 'private' cannot span regions")


def test_admin_keys_inline_or_from_files(tmp_path):
    (tmp_path / "ops.pub").write_text(KEY + "\n")
    text = MINIMAL.replace('name = "demo"', f'name = "demo"\nadmin_ssh_keys = ["{KEY}", "ops.pub"]')
    spec = parse_spec(text, base=tmp_path)
    assert admin_keys(spec, tmp_path) == (KEY, KEY)


def test_an_unreadable_or_private_key_file_is_named(tmp_path):
    (tmp_path / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n...\n")
    text = MINIMAL.replace(
        'name = "demo"', 'name = "demo"\nadmin_ssh_keys = ["missing.pub", "id_ed25519"]'
    )
    missing, private = problems(text, base=tmp_path)
    assert missing == (
        f"s.toml: cluster.admin_ssh_keys[0]: cannot read {tmp_path}/missing.pub:"
        " No such file or directory; give an OpenSSH public key or a readable "
        "file"
    )
    assert private.startswith("s.toml: cluster.admin_ssh_keys[1]: ")
    assert "is not an OpenSSH public key file (the .pub, not the private key)" in private


def test_an_admin_key_file_is_a_small_regular_file(tmp_path):
    os.mkfifo(tmp_path / "fifo.pub")
    (tmp_path / "dir.pub").mkdir()
    (tmp_path / "huge.pub").write_text(KEY + "\n" + "x" * (256 * 1024))
    entries = ["/dev/zero", "fifo.pub", "dir.pub", "huge.pub"]
    text = MINIMAL.replace('name = "demo"', f'name = "demo"\nadmin_ssh_keys = {entries!r}')
    zero, fifo, directory, huge = problems(text.replace("'", '"'), base=tmp_path)
    assert zero == (
        "s.toml: cluster.admin_ssh_keys[0]: /dev/zero is a character device, not a regular "
        "file; give an OpenSSH public key file (the .pub) or the key itself"
    )
    assert fifo.startswith(f"s.toml: cluster.admin_ssh_keys[1]: {tmp_path}/fifo.pub is a FIFO,")
    assert directory.startswith(
        f"s.toml: cluster.admin_ssh_keys[2]: {tmp_path}/dir.pub is a directory,"
    )
    assert huge == (
        f"s.toml: cluster.admin_ssh_keys[3]: {tmp_path}/huge.pub is larger than 256 KiB: not "
        "an OpenSSH public key file (a node's StackScript data takes at most 65535 characters)"
    )


def test_a_spec_is_read_capped(tmp_path):
    with pytest.raises(SpecError) as info:
        load_spec(Path("/dev/zero"))
    assert info.value.problems == (
        "/dev/zero: larger than 1 MiB, which no spec is; check that this is the spec",
    )


def test_a_spec_that_cannot_be_read(tmp_path):
    with pytest.raises(SpecError, match="cannot read the spec: No such file or directory"):
        load_spec(tmp_path / "nope.toml")


def test_names_are_checked_against_the_api_catalogue():
    spec = load_spec(EXAMPLE)
    check_against_catalog(
        spec,
        "s.toml",
        regions=["eu-central", "gb-lon"],
        types=["g6-standard-1", "g6-standard-2"],
        images=["linode/debian12"],
    )
    with pytest.raises(SpecError) as info:
        check_against_catalog(
            spec, "s.toml", regions=["eu-central", "eu-west"], types=["g6-standard-2"], images=[]
        )
    assert info.value.problems == (
        "s.toml: regions.gb-lon: no such Linode region; regions like it: eu-central, eu-west",
        "s.toml: regions.eu-central.pools[1].type: no such Linode type 'g6-standard-1'",
        "s.toml: regions.gb-lon.pools[1].type: no such Linode type 'g6-standard-1'",
        "s.toml: cluster.image: no such image 'linode/debian12'",
    )


def test_the_lab_example_is_the_example_with_only_the_labs_knowing_differences():
    real = load_spec(REPO / "examples" / "itframe.toml")
    lab = load_spec(REPO / "examples" / "itframe-lab.toml")
    assert [(n.label, n.region, n.role, n.type) for n in lab.nodes()] == [
        (n.label, n.region, n.role, n.type) for n in real.nodes()
    ]
    assert lab.firewall == real.firewall
    assert lab.lb.model_copy(update={"image": real.lb.image}) == real.lb
    assert lab.lb.image == "swarmboot-lab/haproxy:1"  # made on the nodes: no registry here
    assert lab.network.model_copy(update={"require_esp": True}) == real.network
    differences = {
        key: (getattr(real.cluster, key), value)
        for key, value in lab.cluster
        if value != getattr(real.cluster, key)
    }
    assert differences == {
        "docker_source": ("docker", "debian"),
        "apt_upgrade": (True, False),
        "require_grub_kernel": (True, False),
    }


def test_the_vpc_subnet_is_checked_where_linode_interfaces_use_it():
    spec = parse_spec(MINIMAL)
    assert (spec.cluster.interfaces, spec.network.vpc_subnet) == ("legacy", "192.168.64.0/24")
    linode = MINIMAL.replace('name = "demo"', 'name = "demo"\ninterfaces = "linode"')
    clash = linode + '[network]\nsubnet = "192.168.64.0/22"\n'
    assert problems(clash) == (
        "s.toml: network.vpc_subnet: 192.168.64.0/24 overlaps network.subnet 192.168.64.0/22: "
        "a node's VPC address would be in the overlay's range; choose ranges apart",
    )
    small = linode.replace("count = 1", "count = 7") + '[network]\nvpc_subnet = "192.168.1.0/29"\n'
    assert problems(small) == (
        "s.toml: network.vpc_subnet: 192.168.1.0/29 has room for 5 nodes, but eu-central has "
        "7; give a larger range",
    )
    # With legacy-config interfaces no VPC is made: neither is a problem.
    assert parse_spec(clash.replace('"linode"', '"legacy"')).network.subnet == "192.168.64.0/22"
    assert problems(MINIMAL + '[network]\nvpc_subnet = "192.168.64.1/24"\n') == (
        "s.toml: network.vpc_subnet: '192.168.64.1/24' is not an IPv4 range in canonical form, "
        "like '192.168.64.0/24'",
    )
