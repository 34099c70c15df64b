"""The official CLI, linode-cli, unchanged, pointed at the simulator by its own settings."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ..conftest import STACKSCRIPTS
from .conftest import TOKEN

ROOT_PASS = "correct-Horse-battery-42"


@pytest.fixture
def cli(sim, tmp_path):
    netloc = urlsplit(sim.url).netloc
    env = {
        "PATH": str(Path(sys.executable).parent),
        "HOME": str(tmp_path),  # no configuration file: everything comes from here
        "LINODE_CLI_TOKEN": TOKEN,
        "LINODE_CLI_API_HOST": netloc,
        "LINODE_CLI_API_SCHEME": "http",
        "LINODE_CLI_API_VERSION": "v4",
    }
    exe = str(Path(sys.executable).parent / "linode-cli")

    def run(*args: str, check: bool = True):
        done = subprocess.run(
            [exe, "--suppress-warnings", *args, "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check:
            assert done.returncode == 0, done.stderr + done.stdout
            return json.loads(done.stdout) if done.stdout.strip() else None
        return done

    return run


def wait_status(cli, linode_id: int, status: str) -> None:
    deadline = time.monotonic() + 10
    while (got := cli("linodes", "view", str(linode_id))[0]["status"]) != status:
        assert time.monotonic() < deadline, f"stuck in {got}"
        time.sleep(0.05)


def test_a_scripted_session(cli, admin):
    (script,) = cli(
        "stackscripts",
        "create",
        "--label",
        "cli-node",
        "--images",
        "linode/debian12",
        "--script",
        (STACKSCRIPTS / "debian12-swarm-node.sh").read_text(),
    )
    assert [f["name"] for f in script["user_defined_fields"]][:3] == [
        "hostname",
        "cluster",
        "swarm_role",
    ]
    mine = cli("stackscripts", "list", "--is_public", "false")
    assert [s["id"] for s in mine] == [script["id"]]

    (linode,) = cli(
        "linodes",
        "create",
        "--type",
        "g6-standard-2",
        "--region",
        "gb-lon",
        "--image",
        "linode/debian12",
        "--label",
        "cli-gb-lon-worker-1",
        "--root_pass",
        ROOT_PASS,
        "--stackscript_id",
        str(script["id"]),
        "--stackscript_data",
        json.dumps({"hostname": "cli-gb-lon-worker-1", "zone": "gb-lon"}),
        "--tags",
        "swarmboot:cli",
        "--booted",
        "false",
    )
    assert linode["status"] == "provisioning"
    wait_status(cli, linode["id"], "offline")

    (config,) = cli("linodes", "configs-list", str(linode["id"]))
    (updated,) = cli(
        "linodes", "config-update", str(linode["id"]), str(config["id"]), "--kernel", "linode/grub2"
    )
    assert updated["kernel"] == "linode/grub2"
    cli("linodes", "boot", str(linode["id"]))
    wait_status(cli, linode["id"], "running")

    (rebuilt,) = cli(
        "linodes",
        "rebuild",
        str(linode["id"]),
        "--image",
        "linode/debian12",
        "--root_pass",
        ROOT_PASS,
    )
    assert rebuilt["status"] == "rebuilding"
    wait_status(cli, linode["id"], "running")

    (firewall,) = cli(
        "firewalls",
        "create",
        "--label",
        "cli-fw",
        "--rules.inbound_policy",
        "DROP",
        "--rules.outbound_policy",
        "ACCEPT",
    )
    cli(
        "firewalls",
        "device-create",
        str(firewall["id"]),
        "--id",
        str(linode["id"]),
        "--type",
        "linode",
    )
    (device,) = cli("firewalls", "devices-list", str(firewall["id"]))
    assert device["entity"]["id"] == linode["id"]

    cli("linodes", "delete", str(linode["id"]))
    assert cli("linodes", "list") == []


def test_lists_with_filters_and_pages(cli, admin):
    admin.set_rate_limits(enabled=False)
    for n in range(30):
        cli(
            "linodes",
            "create",
            "--type",
            "g6-nanode-1",
            "--region",
            "eu-central" if n % 3 else "gb-lon",
            "--label",
            f"cli-{n:02d}",
            "--booted",
            "false",
        )
    assert [x["label"] for x in cli("linodes", "list", "--label", "cli-07")] == ["cli-07"]
    assert len(cli("linodes", "list", "--region", "gb-lon")) == 10
    first = cli("linodes", "list", "--page-size", "25", "--page", "1")
    second = cli("linodes", "list", "--page-size", "25", "--page", "2")
    assert len(first) == 25 and len(second) == 5
    assert {x["label"] for x in first + second} == {f"cli-{n:02d}" for n in range(30)}
    everything = cli("linodes", "list", "--all-rows")
    assert len(everything) == 30


def test_errors_come_back_as_the_cli_shows_them(cli):
    cli(
        "linodes",
        "create",
        "--type",
        "g6-nanode-1",
        "--region",
        "eu-central",
        "--label",
        "twice",
        "--booted",
        "false",
    )
    done = cli(
        "linodes",
        "create",
        "--type",
        "g6-nanode-1",
        "--region",
        "eu-central",
        "--label",
        "twice",
        "--booted",
        "false",
        check=False,
    )
    assert done.returncode != 0
    assert "Label must be unique among your linodes" in done.stderr + done.stdout


def test_placement_groups(cli, admin):
    (group,) = cli(
        "placement",
        "group-create",
        "--label",
        "cli-pg",
        "--region",
        "eu-central",
        "--placement_group_type",
        "anti_affinity:local",
        "--placement_group_policy",
        "flexible",
    )
    assert group["is_compliant"] is True and group["members"] == []
    made = [
        cli(
            "linodes",
            "create",
            "--type",
            "g6-nanode-1",
            "--region",
            "eu-central",
            "--label",
            f"cli-pg-{n}",
            "--booted",
            "false",
        )[0]
        for n in range(2)
    ]
    ids = [str(m["id"]) for m in made]
    admin.share_host(made[0]["id"], made[1]["id"])
    (assigned,) = cli(
        "placement", "assign-linode", str(group["id"]), "--linodes", ids[0], "--linodes", ids[1]
    )
    assert assigned["is_compliant"] is False
    (viewed,) = cli("placement", "group-view", str(group["id"]))
    assert [m["linode_id"] for m in viewed["members"]] == [int(i) for i in ids]
    assert [g["label"] for g in cli("placement", "groups-list", "--label", "cli-pg")] == ["cli-pg"]
    (linode,) = cli("linodes", "view", ids[0])
    assert linode["placement_group"]["label"] == "cli-pg"

    refused = cli("placement", "group-delete", str(group["id"]), check=False)
    assert refused.returncode != 0 and "unassign them" in refused.stderr + refused.stdout
    (left,) = cli(
        "placement", "unassign-linode", str(group["id"]), "--linodes", ids[0], "--linodes", ids[1]
    )
    assert left["members"] == [] and left["is_compliant"] is True
    cli("placement", "group-delete", str(group["id"]))
    assert cli("placement", "groups-list") == []


def test_a_refused_product_is_told_as_the_real_api_tells_a_token_without_its_scope(cli):
    done = cli("volumes", "list", check=False)
    assert done.returncode != 0
    assert "401" in done.stderr + done.stdout
    assert "Your OAuth token is not authorized to use this endpoint." in done.stderr + done.stdout
