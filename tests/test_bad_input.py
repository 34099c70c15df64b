"""Bad input, case by case: one `Error:` line naming the field and the fix, a documented exit
code, no traceback, and nothing created (no request but reads reaches the simulator).

The cases are also the table in docs/bad-input.md: `python -m tests.test_bad_input` prints it
and a test keeps the file equal to it.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from linode_api4 import LinodeClient
from typer.testing import CliRunner

from swarmboot.cli import app
from swarmboot.sim.admin import SimAdmin

from .conftest import CLI_TOKEN, REPO

TOKEN = CLI_TOKEN
EXAMPLE = (REPO / "examples" / "itframe.toml").read_text()
DOC = REPO / "docs" / "bad-input.md"
OPEN = {"inbound": [], "inbound_policy": "DROP", "outbound_policy": "ACCEPT"}


def _foreign_firewall(client: LinodeClient) -> None:
    """An untagged firewall named like the cluster's, with an unrelated Linode behind it."""
    linode = client.linode.instance_create("g6-nanode-1", "eu-central", label="shop-web-1")
    client.networking.firewall_create("solo-nodes", rules=OPEN).device_create(linode.id)


def _foreign_placement_group(client: LinodeClient) -> None:
    """A placement group named like the cluster's managers' one, holding an unrelated Linode."""
    from linode_api4.objects.placement import PlacementGroupPolicy, PlacementGroupType

    linode = client.linode.instance_create("g6-nanode-1", "eu-central", label="shop-web-1")
    group = client.placement.group_create(
        "solo-eu-central-managers",
        "eu-central",
        PlacementGroupType.anti_affinity_local,
        PlacementGroupPolicy.strict,
    )
    group.assign([linode])


def _foreign_vpc(client: LinodeClient) -> None:
    """A VPC under the label of the cluster's one in eu-central, without its mark."""
    client.vpcs.create(
        "solo-eu-central",
        "eu-central",
        description="swarmboot:solo",
        subnets=[{"label": "nodes", "ipv4": "192.168.64.0/24"}],
    )


def _legacy_only_account(client: LinodeClient) -> None:
    """An account whose new Linodes get legacy-config interfaces only."""
    client.put("/account/settings", data={"interfaces_for_new_linodes": "legacy_config_only"})


def _another_cluster(client: LinodeClient) -> None:
    """Another cluster on the account, and the StackScript both are made from."""
    client.linode.instance_create(
        "g6-nanode-1", "eu-central", label="shop-eu-central-manager-1", tags=["swarmboot:shop"]
    )
    client.linode.stackscript_create(
        "swarmboot-debian12-swarm-node", "#!/bin/bash\n", ["linode/debian12"]
    )


def _planted_linode(client: LinodeClient) -> None:
    """A Linode made in advance under a node's label, with the cluster's tag and a pin."""
    client.linode.instance_create(
        "g6-nanode-1",
        "eu-central",
        label="solo-eu-central-manager-1",
        tags=["swarmboot:solo", "hk:" + "Q" * 43],
    )


def _key(n: int) -> str:
    """A well-formed ed25519 public key line (not anyone's)."""
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + n.to_bytes(32, "big")
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} ops-{n}@example"


def _with(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


ONE_MANAGER = (
    '[cluster]\nname = "solo"\n[regions.eu-central]\npools = [{ role = "manager", count = 1 }]\n'
)
LINODE_INTERFACES = ONE_MANAGER.replace('name = "solo"\n', 'name = "solo"\ninterfaces = "linode"\n')


@dataclass(frozen=True)
class Case:
    id: str
    what: str  # the bad input, for the docs
    args: tuple[str, ...]  # SPEC stands for the spec file written from `spec`
    spec: str | bytes = EXAMPLE
    exit: int = 4
    says: str = ""  # the one line, after "Error: " (SPEC: the spec's path, DIR, URL)
    env: dict[str, str | None] = field(default_factory=dict)
    files: dict[str, str | bytes] = field(default_factory=dict)  # more files by the spec
    stranger: str | None = None  # an untagged Linode made first, with this label
    # What is on the account first, made through the official client (before the count of
    # requests starts).
    setup: Callable[[LinodeClient], object] | None = None
    # Capabilities Linode's catalogue does not offer here, by region or image id.
    withheld: dict[str, list[str]] = field(default_factory=dict)


CASES = [
    Case(
        "malformed-toml",
        "a spec that is not TOML",
        ("plan", "SPEC"),
        spec="[cluster\nname = 'x'\n",
        says="SPEC: not valid TOML: Expected ']' at the end of a table declaration (at line 1, column 9); fix the syntax",
    ),
    Case(
        "nested-too-deeply",
        "a spec nested thousands of arrays deep",
        ("plan", "SPEC"),
        spec="x = " + "[" * 5000 + "]" * 5000,
        says="SPEC: nested too deeply (arrays or tables more than 32 levels within each other); a spec is a few levels deep: check that this is the spec",
    ),
    Case(
        "unknown-key",
        "a key the spec does not have",
        ("plan", "SPEC"),
        spec=EXAMPLE.replace('name = "itframe"\nimage', 'name = "itframe"\nimgae', 1),
        says="SPEC: cluster.imgae: unknown key; check its spelling against the example spec",
    ),
    Case(
        "unknown-region",
        "a region Linode does not have",
        ("plan", "SPEC"),
        spec=ONE_MANAGER.replace("eu-central", "mars-1"),
        says="SPEC: regions.mars-1: no such Linode region; regions like it: ap-northeast, ap-south, ap-southeast, ap-west, au-mel",
    ),
    Case(
        "unknown-type",
        "a Linode type that does not exist",
        ("plan", "SPEC"),
        spec=ONE_MANAGER.replace('name = "solo"', 'name = "solo"\ntype = "g6-huge-1"'),
        says="SPEC: cluster.type: no such Linode type 'g6-huge-1'; see `linode-cli linodes types`",
    ),
    Case(
        "even-managers",
        "an even number of managers",
        ("plan", "SPEC"),
        spec=ONE_MANAGER.replace("count = 1", "count = 2"),
        says="SPEC: regions: 2 managers; use an odd number (1, 3, 5 or 7): an even number tolerates no more failures than one fewer",
    ),
    Case(
        "no-managers",
        "no manager at all",
        ("plan", "SPEC"),
        spec=ONE_MANAGER.replace('role = "manager"', 'role = "worker"'),
        says="SPEC: regions: no managers; a swarm needs 1, 3, 5 or 7 (an odd number keeps raft quorum)",
    ),
    Case(
        "no-token",
        "no API token anywhere",
        ("plan", "SPEC"),
        exit=5,
        env={"SWARMBOOT_SIM_TOKEN": None},
        says="no Linode API token: looked in LINODE_TOKEN, LINODE_CLI_TOKEN, SWARMBOOT_SIM_TOKEN and linode-cli's ~/.config/linode-cli; export LINODE_TOKEN (never pass it on the command line), or try the simulator: `swarmboot sim` and --api-url http://127.0.0.1:8765/v4",
    ),
    Case(
        "wrong-token",
        "a token the API refuses",
        ("plan", "SPEC"),
        exit=5,
        env={"SWARMBOOT_SIM_TOKEN": "not-the-token"},
        says="the Linode API at URL refused the token from SWARMBOOT_SIM_TOKEN (401 Invalid Token); check the token, or make a new one with read/write access to Linodes, StackScripts and Firewalls",
    ),
    Case(
        "api-url-two-hosts",
        "an API URL two URL parsers read as different hosts (the token would go to the other)",
        ("plan", "SPEC", "--api-url", "http://127.0.0.2:8765\\@127.0.0.1:8765/v4"),
        exit=1,
        says="--api-url has a user part (user@ or user:password@ before the host), which can hide the host the token goes to; give the address without it, as https://api.linode.com/v4",
    ),
    Case(
        "api-url-backslash",
        "an API URL with a backslash",
        ("plan", "SPEC", "--api-url", "https://api.linode.com\\.example.com/v4"),
        exit=1,
        says="--api-url 'https://api.linode.com\\\\.example.com/v4' has a backslash, which parsers of web addresses read differently; give it as https://api.linode.com/v4 or http://127.0.0.1:8765/v4",
    ),
    Case(
        "unreadable-key",
        "an SSH key that cannot be read",
        ("plan", "SPEC", "--ssh-key", "DIR/missing_ed25519"),
        exit=1,
        says="SSH key DIR/missing_ed25519: no such file; pass --ssh-key (or SWARMBOOT_SSH_KEY) the path of a private key",
    ),
    Case(
        "ipv6-advertise",
        "an IPv6 address to advertise",
        ("plan", "SPEC"),
        spec=EXAMPLE.replace('advertise = "auto"', 'advertise = "2001:db8::10"'),
        says='SPEC: cluster.advertise: \'2001:db8::10\' is IPv6: swarm\'s memberlist cannot advertise it ("too many colons in address"); use "auto", "public" or "private" (the node\'s IPv4)',
    ),
    Case(
        "unknown-interfaces",
        "an interface generation that is not one",
        ("plan", "SPEC"),
        spec=EXAMPLE.replace('advertise = "auto"', 'advertise = "auto"\ninterfaces = "vpc"'),
        says="SPEC: cluster.interfaces: must be 'legacy', 'linode' or 'auto'",
    ),
    Case(
        "vpc-subnet-in-docker-ranges",
        "a VPC subnet inside the ranges Docker uses on the nodes",
        ("plan", "SPEC"),
        spec=EXAMPLE.replace(
            'encrypted = "auto"', 'encrypted = "auto"\nvpc_subnet = "10.8.0.0/24"'
        ),
        says="SPEC: network.vpc_subnet: '10.8.0.0/24' must lie inside 192.168.0.0/17 with a prefix of /17 to /29 (10.0.0.0/8 is swarm's overlay pool, 172.16.0.0/12 the nodes' Docker bridges, 192.168.128.0/17 Linode's private addresses), like '192.168.64.0/24'",
    ),
    Case(
        "token-as-argument",
        "a token given as an argument (of any command: it is not repeated)",
        ("stackscript", "udfs", "DIR/node.sh", "$LINODE_TOKEN"),
        exit=2,
        files={"node.sh": "#!/bin/bash\n"},
        says="swarmboot stackscript udfs takes SCRIPT and was given more arguments, not repeated here (one may be a secret); remove them, and put a token in LINODE_TOKEN, never on the command line (see swarmboot stackscript udfs -h)",
    ),
    Case(
        "rotate-nothing",
        "`rotate` given neither --join-tokens nor --ca",
        ("rotate", "SPEC"),
        exit=2,
        says="nothing to rotate: give --join-tokens, --ca or both; see `swarmboot rotate -h`",
    ),
    Case(
        "broken-udf-header",
        "a StackScript whose UDF header is broken",
        ("stackscript", "udfs", "DIR/broken.sh"),
        exit=1,
        files={
            "broken.sh": '#!/bin/bash\n# <UDF name="hostname" label="Hostname"\nset -e\n',
        },
        says="DIR/broken.sh:2: UDF tag is not closed with '/>' on the same line",
    ),
    Case(
        "udfs-not-utf8",
        "a StackScript that is not UTF-8 text",
        ("stackscript", "udfs", "DIR/binary.sh"),
        exit=1,
        files={"binary.sh": b'\xff\xfe#!/bin/bash\n# <UDF name="x" label="x" />\n'},
        says="DIR/binary.sh: not UTF-8 text (byte 0); Linode takes a StackScript as UTF-8 text",
    ),
    Case(
        "sim-state-not-json",
        "a simulator state file that is not one",
        ("sim", "--port", "0", "--state", "DIR/state.json"),
        exit=1,
        files={"state.json": "{not json"},
        says="DIR/state.json: not JSON (Expecting property name enclosed in double quotes at line 1); give --state a file the simulator wrote, or a path that does not exist yet (it starts empty and writes it)",
    ),
    Case(
        "sim-validate-spec-not-json",
        "a file given to the simulator as Linode's OpenAPI spec that is not JSON",
        ("sim", "--port", "0", "--validate-spec", "DIR/secret.txt"),
        exit=1,
        files={"secret.txt": "root:$6$SECRETHASH:19000:0:99999:7:::\n"},
        says="DIR/secret.txt: not JSON (Expecting value at line 1); --validate-spec takes Linode's OpenAPI spec (.json or .json.gz)",
    ),
    Case(
        "label-rejected",
        "a cluster name that would make labels Linode rejects",
        ("plan", "SPEC"),
        spec=ONE_MANAGER.replace('name = "solo"', 'name = "Solo_1"'),
        says="SPEC: cluster.name: must be a lowercase name starting with a letter: letters, digits and hyphens, at most 24 (it starts every node's label)",
    ),
    Case(
        "name-double-hyphen",
        "a cluster name with two hyphens in a row",
        ("plan", "SPEC"),
        spec=ONE_MANAGER.replace('name = "solo"', 'name = "so--lo"'),
        says="SPEC: cluster.name: 'so--lo' has two hyphens in a row, which Linode refuses in a label (it starts every node's label); use one hyphen",
    ),
    Case(
        "untagged-clash",
        "a cluster whose labels are taken by untagged Linodes",
        ("up", "SPEC"),
        spec=ONE_MANAGER,
        stranger="solo-eu-central-manager-1",
        says="Linodes solo-eu-central-manager-1 exist without the tag swarmboot:solo: they are not this cluster's and swarmboot will not take them over; rename them, or choose another cluster.name",
    ),
    Case(
        "port-range-out-of-range",
        "a public port range that ends past 65535",
        ("plan", "SPEC"),
        spec=_with(EXAMPLE, '"443/tcp" =', '"100-99999/tcp" ='),
        says="SPEC: firewall.public: '100-99999/tcp': ports are 1 to 65535",
    ),
    Case(
        "port-range-reversed",
        "a public port range written backwards",
        ("plan", "SPEC"),
        spec=_with(EXAMPLE, '"443/tcp" =', '"9000-100/tcp" ='),
        says="SPEC: firewall.public: '9000-100/tcp': the range ends before it starts; write 100-9000",
    ),
    Case(
        "port-zero",
        "public port 0",
        ("plan", "SPEC"),
        spec=_with(EXAMPLE, '"443/tcp" =', '"0/tcp" ='),
        says="SPEC: firewall.public: '0/tcp': ports are 1 to 65535",
    ),
    Case(
        "port-other-digits",
        "a public port in digits other than 0-9 (fullwidth, Arabic-Indic)",
        ("plan", "SPEC"),
        spec=_with(EXAMPLE, '"443/tcp" =', '"\uff14\uff14\uff13/tcp" ='),
        says="SPEC: firewall.public: '\uff14\uff14\uff13/tcp' is not PORT/tcp, PORT/udp or FIRST-LAST/tcp in the digits 0-9",
    ),
    Case(
        "scope-id",
        "an IPv6 source with a scope id",
        ("plan", "SPEC"),
        spec=_with(EXAMPLE, 'ssh_from = ["0.0.0.0/0", "::/0"]', 'ssh_from = ["fe80::1%x/128"]'),
        says="SPEC: firewall.ssh_from: 'fe80::1%x/128' has a scope id (%...); give the address without it",
    ),
    Case(
        "admin-key-comma",
        "an admin key whose comment has a comma",
        ("plan", "SPEC"),
        spec=_with(EXAMPLE, "admin_ssh_keys = []", f'admin_ssh_keys = ["{_key(1)},laptop"]'),
        says="SPEC: cluster.admin_ssh_keys[0]: its comment has a comma, which the StackScript's data cannot carry; remove it",
    ),
    Case(
        "admin-key-options",
        "an admin key with authorized_keys options",
        ("plan", "SPEC"),
        spec=_with(
            EXAMPLE, "admin_ssh_keys = []", f"admin_ssh_keys = ['command=\"/bin/sh\" {_key(1)}']"
        ),
        says="SPEC: cluster.admin_ssh_keys[0]: options before the key type (authorized_keys options such as command=... are not taken); give the key alone",
    ),
    Case(
        "admin-key-type-only",
        "an admin key that is only its type",
        ("plan", "SPEC"),
        spec=_with(EXAMPLE, "admin_ssh_keys = []", 'admin_ssh_keys = ["ssh-ed25519"]'),
        says="SPEC: cluster.admin_ssh_keys[0]: only the type ssh-ed25519, no key; paste the whole line of the .pub file",
    ),
    Case(
        "admin-key-cut-short",
        "an admin key cut short",
        ("plan", "SPEC"),
        spec=_with(EXAMPLE, "admin_ssh_keys = []", f'admin_ssh_keys = ["{_key(1)[:60]}"]'),
        says="SPEC: cluster.admin_ssh_keys[0]: its key is not a whole ssh-ed25519 key (cut short or mistyped?)",
    ),
    Case(
        "admin-keys-too-many",
        "admin keys that make the StackScript data too long for Linode",
        ("plan", "SPEC"),
        spec=_with(EXAMPLE, "admin_ssh_keys = []", 'admin_ssh_keys = ["many.pub"]'),
        files={"many.pub": "".join(_key(n) + "\n" for n in range(700))},
        says="SPEC: cluster.admin_ssh_keys: a node's StackScript data would be 69193 characters, Linode takes at most 65535; give fewer admin keys",
    ),
    Case(
        "admin-key-file-not-utf8",
        "an admin key file that is not UTF-8 text",
        ("plan", "SPEC"),
        spec=_with(EXAMPLE, "admin_ssh_keys = []", 'admin_ssh_keys = ["ops.pub"]'),
        files={"ops.pub": b"ssh-ed25519 \xff\xfe\n"},
        says="SPEC: cluster.admin_ssh_keys[0]: DIR/ops.pub is not UTF-8 text: not an OpenSSH public key file (the .pub, not the private key)",
    ),
    Case(
        "admin-key-file-dev-zero",
        "an admin key file that is a device (/dev/zero), a FIFO or a directory",
        ("plan", "SPEC"),
        spec=_with(EXAMPLE, "admin_ssh_keys = []", 'admin_ssh_keys = ["/dev/zero"]'),
        says="SPEC: cluster.admin_ssh_keys[0]: /dev/zero is a character device, not a regular file; give an OpenSSH public key file (the .pub) or the key itself",
    ),
    Case(
        "admin-key-file-huge",
        "an admin key file larger than 256 KiB",
        ("plan", "SPEC"),
        spec=_with(EXAMPLE, "admin_ssh_keys = []", 'admin_ssh_keys = ["ops.pub"]'),
        files={"ops.pub": "ssh-ed25519 " + "A" * 300_000 + "\n"},
        says="SPEC: cluster.admin_ssh_keys[0]: DIR/ops.pub is larger than 256 KiB: not an OpenSSH public key file (a node's StackScript data takes at most 65535 characters)",
    ),
    Case(
        "spec-dev-zero",
        "a spec that never ends (/dev/zero)",
        ("plan", "/dev/zero"),
        says="/dev/zero: larger than 1 MiB, which no spec is; check that this is the spec",
    ),
    Case(
        "spec-not-utf8",
        "a spec that is not UTF-8 text",
        ("plan", "SPEC"),
        spec=EXAMPLE.encode().replace(b"Frankfurt", b"Frankfurt \xe4"),
        says="SPEC: not UTF-8 text (byte 40); save the spec as UTF-8 (TOML is)",
    ),
    Case(
        "health-path-quote",
        "a health check path with a quote or #",
        ("plan", "SPEC"),
        spec=_with(EXAMPLE, 'health_path = "/healthz"', 'health_path = "/a\\"b#c"'),
        says="SPEC: lb.health_path: must be an HTTP path starting with / of letters, digits and -._~!&()*+,;=:@%/? (no quotes, #, backslash, $ or spaces: HAProxy's health check sends it as one word)",
    ),
    Case(
        "lb-image-not-a-reference",
        "a load balancer image that is not a Docker image reference",
        ("plan", "SPEC"),
        spec=_with(EXAMPLE, 'image = "haproxy:2.8"', 'image = "haproxy:2.8;reboot"'),
        says="SPEC: lb.image: 'haproxy:2.8;reboot' is not a Docker image reference: NAME[:TAG][@DIGEST] in Docker's grammar, like haproxy:2.8 or registry.example.com/ops/haproxy:2.8",
    ),
    Case(
        "region-newline",
        "a region key with a newline",
        ("lb", "render", "SPEC", "--out", "DIR/lb"),
        spec=_with(EXAMPLE, "[regions.gb-lon]", '[regions."gb-lon\\nbind :1"]'),
        says="SPEC: regions: 'gb-lon\\nbind :1' is not a Linode region id (like eu-central or gb-lon); see `linode-cli regions list`",
    ),
    Case(
        "count-string",
        "a count in quotes",
        ("plan", "SPEC"),
        spec=ONE_MANAGER.replace("count = 1", 'count = "1"'),
        says="SPEC: regions.eu-central.pools[0].count: must be a whole number, without quotes (like 3)",
    ),
    Case(
        "count-float",
        "a count that is not a whole number",
        ("plan", "SPEC"),
        spec=ONE_MANAGER.replace("count = 1", "count = 1.0"),
        says="SPEC: regions.eu-central.pools[0].count: must be a whole number, without quotes (like 3)",
    ),
    Case(
        "encrypted-string",
        "network.encrypted in quotes",
        ("plan", "SPEC"),
        spec=_with(EXAMPLE, 'encrypted = "auto"', 'encrypted = "true"'),
        says='SPEC: network.encrypted: must be "auto", true or false (true and false without quotes)',
    ),
    Case(
        "flag-string",
        "true or false in quotes",
        ("plan", "SPEC"),
        spec=ONE_MANAGER.replace('name = "solo"', 'name = "solo"\napt_upgrade = "yes"'),
        says="SPEC: cluster.apt_upgrade: must be true or false, without quotes",
    ),
    Case(
        "heartbeat-zero",
        "a heartbeat of 0 seconds",
        ("plan", "SPEC"),
        spec=ONE_MANAGER.replace('name = "solo"', 'name = "solo"\nheartbeat = 0'),
        says="SPEC: cluster.heartbeat: 0 is not a heartbeat: give whole seconds from 1 to 300 "
        "(the default 20 gives nodes two minutes to reach a new leader; Docker's own is 5)",
    ),
    Case(
        "label-key-newline",
        "a node label name ending in a newline",
        ("plan", "SPEC"),
        spec=ONE_MANAGER.replace("count = 1 }", 'count = 1, labels = { "disk\\n" = "ssd" } }'),
        says="SPEC: regions.eu-central.pools[0].labels: 'disk\\n' is not a label name (lowercase letters, digits, . _ -)",
    ),
    Case(
        "label-value-control",
        "a node label value with a newline or terminal escape",
        ("plan", "SPEC"),
        spec=ONE_MANAGER.replace(
            "count = 1 }", 'count = 1, labels = { disk = "ssd\\nrole=manager" } }'
        ),
        says="SPEC: regions.eu-central.pools[0].labels: the value of 'disk', 'ssd\\nrole=manager', has a control character (a newline, tab or terminal escape): Docker takes any string, but one in a label is never meant and plan would print it raw; give printable text",
    ),
    Case(
        "region-loss",
        "managers that one region's loss would leave without quorum, with survive_region_loss",
        ("plan", "SPEC"),
        spec=EXAMPLE.replace('name = "itframe"', 'name = "itframe"\nsurvive_region_loss = true', 1),
        says="SPEC: cluster.survive_region_loss: managers 2+1: losing eu-central loses quorum (1 of 3 left, raft needs 2); put one manager in a third region, or use 1+1+1 over three regions",
    ),
    Case(
        "foreign-firewall",
        "a Cloud Firewall with the cluster's label but not its tag",
        ("up", "SPEC"),
        spec=ONE_MANAGER,
        setup=_foreign_firewall,
        says="Cloud Firewalls solo-nodes exist without the tag swarmboot:solo: they are not this cluster's and swarmboot will neither rewrite nor delete them; rename them, tag them swarmboot:solo if they are this cluster's, or choose another cluster.name",
    ),
    Case(
        "foreign-placement-group",
        "a placement group with the label of the managers' group, holding another's Linode",
        ("up", "SPEC"),
        spec=ONE_MANAGER.replace("count = 1", "count = 3"),
        setup=_foreign_placement_group,
        says="placement groups solo-eu-central-managers (it holds Linodes that are not the cluster's members) carry this cluster's labels but are not its own: swarmboot will neither put its managers in them nor delete them; rename them, choose another cluster.name, or set cluster.manager_placement = \"none\"",
    ),
    Case(
        "foreign-vpc",
        "a VPC with the label of the cluster's VPC in a region, without its mark",
        ("up", "SPEC"),
        spec=LINODE_INTERFACES,
        setup=_foreign_vpc,
        says='VPCs solo-eu-central (its description lacks the tag swarmboot:solo and the mark this SSH identity makes) carry this cluster\'s labels but are not its own: swarmboot will neither put its nodes in them nor delete them; rename them, choose another cluster.name, or set cluster.interfaces = "legacy"',
    ),
    Case(
        "interfaces-the-account-forbids",
        "Linode interfaces on an account that makes legacy-config Linodes only",
        ("up", "SPEC"),
        spec=LINODE_INTERFACES,
        setup=_legacy_only_account,
        says='SPEC: cluster.interfaces: "linode", but the account makes legacy-config Linodes only (interfaces_for_new_linodes = legacy_config_only); set cluster.interfaces = "legacy" or "auto", or change the account\'s setting',
    ),
    Case(
        "unmarked-linode",
        "a Linode made in advance with the cluster's tag, a node's label and a pin",
        ("up", "SPEC"),
        spec=ONE_MANAGER,
        setup=_planted_linode,
        says="Linodes solo-eu-central-manager-1 carry the tag swarmboot:solo but not the mark swarmboot makes for the Linodes it creates with this SSH identity: swarmboot will neither send them a join token nor open the swarm's ports to them; if they are this cluster's (made before marks, or with another SSH key), `swarmboot adopt` on this spec marks them; otherwise rename or delete them",
    ),
    Case(
        "shared-stackscript",
        "deleting a StackScript another cluster may rebuild from",
        ("down", "SPEC", "--stackscripts", "--yes"),
        spec=ONE_MANAGER,
        setup=_another_cluster,
        says="the StackScript swarmboot-debian12-swarm-node is shared: the clusters shop (1 Linode(s)) are on this account and may rebuild from it; run `swarmboot down` without --stackscripts, or take those clusters down first",
    ),
    Case(
        "cloud-init-no-metadata",
        "cloud-init as the bootstrap in a region without Linode's Metadata service",
        ("plan", "SPEC", "--bootstrap", "cloud-init"),
        withheld={"gb-lon": ["Metadata"]},
        says='cluster.bootstrap = "cloud-init", but Linode\'s catalogue has no Metadata service in gb-lon: it would refuse the nodes\' user data; use the StackScript: cluster.bootstrap = "stackscript" (or --bootstrap stackscript), or regions and an image whose catalogue entries have Metadata and cloud-init',
    ),
    Case(
        "cloud-init-image",
        "cloud-init as the bootstrap with an image that lacks the cloud-init capability",
        ("up", "SPEC"),
        spec=ONE_MANAGER.replace('name = "solo"', 'name = "solo"\nbootstrap = "cloud-init"'),
        withheld={"linode/debian12": ["cloud-init"]},
        says='cluster.bootstrap = "cloud-init", but Linode\'s catalogue has no cloud-init capability for the image linode/debian12: it would refuse the nodes\' user data; use the StackScript: cluster.bootstrap = "stackscript" (or --bootstrap stackscript), or regions and an image whose catalogue entries have Metadata and cloud-init',
    ),
    Case(
        "cloud-init-user-data-too-long",
        "admin keys that make a node's cloud-init user data too long for Linode",
        ("plan", "SPEC", "--bootstrap", "cloud-init"),
        spec=_with(EXAMPLE, "admin_ssh_keys = []", 'admin_ssh_keys = ["many.pub"]'),
        files={"many.pub": "".join(_key(n) + "\n" for n in range(300))},
        says='SPEC: cluster.admin_ssh_keys: a node\'s cloud-init user data would be 78395 bytes, Linode takes at most 65535; give fewer admin keys, or use cluster.bootstrap = "stackscript"',
    ),
    Case(
        "deploy-stack-missing",
        "a stack file that does not exist",
        ("deploy", "SPEC", "DIR/none.yml"),
        says="DIR/none.yml: no such file; give the path of the Compose file",
    ),
    Case(
        "deploy-unset-variable",
        "a stack file naming a variable the environment lacks (CI forgot the image tag)",
        ("deploy", "SPEC", "DIR/stack.yml"),
        files={"stack.yml": "services:\n  app:\n    image: registry.example.com/app:${TAG}\n"},
        env={"TAG": None},
        says="DIR/stack.yml: services.app.image: the variable TAG is not set; set TAG in the environment, or give a default: ${TAG:-value}",
    ),
    Case(
        "deploy-secret-from-file",
        "a stack whose secret is a file (it would be read here and sent as a file)",
        ("deploy", "SPEC", "DIR/stack.yml"),
        files={
            "stack.yml": "services:\n  app:\n    image: app:1\n    secrets: [db]\n"
            "secrets:\n  db:\n    file: ./db.txt\n",
            "db.txt": "s3cret\n",
        },
        says="DIR/stack.yml: secrets.db.file: swarmboot does not send secrets in a stack; run `swarmboot secret set <spec> db` (the value from stdin), then write external: true",
    ),
    Case(
        "deploy-bad-stack-name",
        "a --stack name docker would not take",
        ("deploy", "SPEC", "DIR/stack.yml", "--stack", "My_Stack"),
        files={"stack.yml": "services:\n  app:\n    image: app:1\n"},
        says="--stack is not a valid stack name; use 1 to 40 lowercase letters, digits and '-', starting and ending with a letter or digit",
    ),
    Case(
        "deploy-registry-password-alone",
        "a registry password without its user",
        ("deploy", "SPEC", "DIR/stack.yml"),
        files={"stack.yml": "services:\n  app:\n    image: ghcr.io/example/app:1\n"},
        env={"SWARMBOOT_REGISTRY_PASSWORD": "registry-secret-1f"},
        says="SWARMBOOT_REGISTRY_PASSWORD is set without SWARMBOOT_REGISTRY_USER; set SWARMBOOT_REGISTRY_USER to the registry's user name",
    ),
    Case(
        "secret-set-bad-name",
        "a secret name swarm would not take",
        ("secret", "set", "SPEC", "db/password", "--from-file", "DIR/v.txt"),
        files={"v.txt": "x"},
        says="secret name 'db/password' is not valid; use letters, digits, '-' and '_' (at most 48), starting with a letter or digit",
    ),
    Case(
        "secret-set-empty",
        "an empty secret value",
        ("secret", "set", "SPEC", "db_password", "--from-file", "DIR/empty.txt"),
        files={"empty.txt": ""},
        says="DIR/empty.txt gave an empty value; give the secret's value",
    ),
    Case(
        "upgrade-two-modes",
        "two upgrade modes at once",
        ("upgrade", "SPEC", "--docker", "--image", "linode/debian13"),
        exit=2,
        says="--docker and --image were given together: an upgrade has one mode; give one of --packages (the default), --docker and --image IMAGE",
    ),
    Case(
        "plan-upgrade-mode-alone",
        "an upgrade mode given to `plan` without --upgrade",
        ("plan", "SPEC", "--packages"),
        exit=2,
        says="--packages, --docker and --image go with --upgrade (and not with --down); add --upgrade: `plan --upgrade --packages` shows the order of an upgrade",
    ),
    Case(
        "upgrade-image-not-the-spec-image",
        "an --image the spec's cluster.image does not say",
        ("upgrade", "SPEC", "--image", "linode/debian13", "--yes"),
        exit=2,
        says="--image linode/debian13 is not the spec's image (linode/debian12): a rebuild takes the spec's image and script; set cluster.image = \"linode/debian13\" (and its cluster.stackscript) in the spec, so that later rebuilds and new nodes take it too",
    ),
]


@pytest.fixture
def sim(cli_sim):
    return cli_sim


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_an_exit_code_and_nothing_made(case, sim, tmp_path, monkeypatch):
    admin = SimAdmin(sim.url, TOKEN)
    client = LinodeClient(TOKEN, base_url=sim.url)
    if case.stranger:
        client.linode.instance_create("g6-nanode-1", "eu-central", label=case.stranger)
    if case.setup:
        case.setup(client)
    if case.withheld:
        admin.set_withheld(case.withheld)
    spec = tmp_path / "spec.toml"
    for path, content in [(spec, case.spec)] + [(tmp_path / n, c) for n, c in case.files.items()]:
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    for name, value in case.env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    before = len(admin.requests())
    args = [a.replace("SPEC", str(spec)).replace("DIR", str(tmp_path)) for a in case.args]
    result = CliRunner().invoke(app, args)
    lines = result.output.splitlines()
    expected = (
        case.says.replace("SPEC", str(spec)).replace("DIR", str(tmp_path)).replace("URL", sim.url)
    )
    assert result.exit_code == case.exit, result.output
    assert len(lines) == 1, result.output  # one line: no traceback, no second thought
    assert lines[0] == "Error: " + expected, lines[0]
    writes = [r for r in admin.requests()[before:] if r["method"] != "GET"]
    assert writes == []  # nothing created
    assert TOKEN not in result.output


def table() -> str:
    rows = [
        "| bad input | command | exit | the one line it prints |",
        "| --- | --- | ---: | --- |",
    ]
    for case in CASES:
        command = "swarmboot " + " ".join(case.args)
        says = case.says.replace("|", "\\|")
        rows.append(f"| {case.what} | `{command}` | {case.exit} | `Error: {says}` |")
    return "\n".join(rows) + "\n"


def test_the_docs_table_is_these_cases():
    text = DOC.read_text()
    start = text.index("<!-- cases -->\n") + len("<!-- cases -->\n")
    end = text.index("<!-- /cases -->")
    assert text[start:end] == table(), "run: .venv/bin/python -m tests.test_bad_input"


if __name__ == "__main__":
    text = DOC.read_text()
    start = text.index("<!-- cases -->\n") + len("<!-- cases -->\n")
    end = text.index("<!-- /cases -->")
    DOC.write_text(text[:start] + table() + text[end:])
    sys.stdout.write(table())
