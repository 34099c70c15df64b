"""The cluster commands through Typer's runner, against the records-only simulator.

Its Linodes have no machines behind them, so `up` stops after the cloud steps and says why;
no packet is sent to their addresses (the simulator's safety net).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from swarmboot.cli import app
from swarmboot.sim.admin import SimAdmin

from .conftest import CLI_TOKEN, REPO

TOKEN = CLI_TOKEN
EXAMPLE = str(REPO / "examples" / "itframe.toml")
runner = CliRunner()


@pytest.fixture
def sim(cli_sim):
    return cli_sim


def run(*args: str):
    result = runner.invoke(app, list(args))
    assert TOKEN not in result.output, "the token leaked into the output"
    return result


def test_publish_sends_only_what_changed(sim):
    dry = run("stackscript", "publish", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would create\tswarmboot-debian12-swarm-node" in dry.stdout
    assert "+#!/bin/bash" in dry.stdout  # the diff
    assert SimAdmin(sim.url, TOKEN).stats()["routes"].get("POST /linode/stackscripts") is None
    first = run("stackscript", "publish")
    assert [line.split("\t")[0] for line in first.stdout.splitlines()] == ["created", "created"]
    again = run("stackscript", "publish", "--json")
    assert [r["action"] for r in json.loads(again.stdout)] == ["unchanged", "unchanged"]
    listed = json.loads(run("stackscript", "list", "--json").stdout)
    assert [s["label"] for s in listed] == [
        "swarmboot-debian12-swarm-node",
        "swarmboot-debian13-swarm-node",
    ]
    assert listed[0]["rev_note"].startswith("swarmboot sha256:")
    assert {u["name"] for u in listed[0]["udfs"]} >= {"hostname", "zone", "ssh_host_key"}


def test_plan_then_up_without_machines_then_down(sim, monkeypatch):
    planned = run("plan", EXAMPLE)
    assert planned.exit_code == 0, planned.output
    lines = planned.stdout.splitlines()
    assert lines[0] == (
        "  1. Publish StackScript swarmboot-debian12-swarm-node from "
        "stackscripts/debian12-swarm-node.sh"
    )
    assert "49 step(s) to converge" in planned.stderr
    # Which one region's loss the managers survive, and the fix for the one they do not.
    assert planned.stderr.splitlines()[-3:-1] == [
        " ! managers 2+1: losing eu-central loses quorum (1 of 3 left, raft needs 2); put one "
        "manager in a third region, or use 1+1+1 over three regions",
        "   managers 2+1: losing gb-lon keeps quorum (2 of 3 left, raft needs 2)",
    ]

    result = run("up", EXAMPLE, "--timeout", "60", "--json")
    assert result.exit_code == 6
    summary = json.loads(result.stdout)
    assert [n["linode"] for n in summary["nodes"]] == ["running"] * 9
    assert result.stderr.splitlines()[-1].startswith("Error: 9 node(s) not joined: ")
    assert "is not a machine: the simulator's Linodes have no machines behind them" in result.stderr

    status = run("status", EXAMPLE, "--json")
    assert status.exit_code == 0
    assert len(json.loads(status.stdout)["nodes"]) == 9
    # eu-central's two managers are in their placement group, each on a host of its own.
    table = run("status", EXAMPLE)
    assert (
        "managers' placement group in eu-central: itframe-eu-central-managers (strict): compliant"
        in table.stdout.splitlines()
    )

    # `down` is a plan: `plan --down` shows its steps and what they carry, from the cloud
    # alone; the SSH key only tells the cluster's Linodes by their marks, so without it
    # nothing is planned.
    key = os.environ["SWARMBOOT_SSH_KEY"]
    monkeypatch.setenv("SWARMBOOT_SSH_KEY", "/nonexistent/key")
    keyless = run("plan", EXAMPLE, "--down")
    assert (keyless.exit_code, keyless.stdout) == (1, "")
    assert keyless.stderr.startswith("Error: SSH key /nonexistent/key: no such file; ")
    monkeypatch.setenv("SWARMBOOT_SSH_KEY", key)
    shown = run("plan", EXAMPLE, "--down", "--stackscripts", "--json")
    assert shown.exit_code == 0, shown.output
    steps = json.loads(shown.stdout)
    assert [s["step"] for s in steps] == ["DeleteInstance"] * 9 + ["DeleteCloudFirewall"] * 2 + [
        "DeletePlacementGroup",
        "DeleteStackScript",
    ]
    # eu-central's two managers' placement group goes once its Linodes are gone.
    assert steps[11]["fields"] == {"label": "itframe-eu-central-managers", "group_id": 528001}
    assert all(isinstance(s["fields"]["linode_id"], int) for s in steps[:9])
    assert len({s["fields"]["linode_id"] for s in steps[:9]}) == 9
    assert steps[9]["description"] == "Delete the Cloud Firewall itframe-lb"
    text = run("plan", EXAMPLE, "--down")
    assert text.stdout.splitlines()[0] == "  1. Delete the Linode itframe-eu-central-lb-1"
    assert text.stderr.strip().endswith("itframe: 12 step(s) to delete it")

    refused = run("down", EXAMPLE)
    assert refused.exit_code == 1
    assert refused.stderr == (
        "Error: refusing to delete 9 Linode(s) tagged swarmboot:itframe, "
        "2 Cloud Firewall(s), 1 placement group(s) without --yes; pass --yes to confirm\n"
    )
    gone = run("down", EXAMPLE, "--yes")
    assert gone.exit_code == 0 and gone.stdout.startswith("deleted\t9 Linode(s)")
    assert run("down", EXAMPLE, "--yes").stderr.strip().endswith("itframe: nothing to delete")
    scripts = json.loads(run("stackscript", "list", "--json").stdout)
    assert [s["label"] for s in scripts] == ["swarmboot-debian12-swarm-node"]  # left alone


def test_up_json_reports_what_it_changed_and_a_second_up_nothing(sim):
    first = run("up", EXAMPLE, "--timeout", "60", "--json")
    assert first.exit_code == 6  # the records-only simulator's Linodes have no machines
    printed = json.loads(first.stdout)
    # The status as before, its keys where they were; what changed beside it.
    assert list(printed) == [
        "cluster",
        "regions",
        "network",
        "managers",
        "nodes",
        "lb",
        "placement",
        "not_members",
        "interfaces",
        "vpcs",
        "warnings",
        "changed",
    ]
    changed = printed["changed"]
    assert all(set(c) == {"kind", "name", "id"} for c in changed)
    created = sorted(c["name"] for c in changed if c["kind"] == "linode_created")
    assert created == sorted(n["node"] for n in printed["nodes"])
    assert all(isinstance(c["id"], int) for c in changed if c["kind"] == "linode_created")
    assert [c["name"] for c in changed if c["kind"] == "firewall_created"] == [
        "itframe-nodes",
        "itframe-lb",
    ]
    assert Counter(c["kind"] for c in changed) == {
        "stackscript_published": 1,
        "firewall_created": 2,
        "placement_group_created": 1,
        "linode_created": 9,
        "linode_booted": 9,
        "firewall_updated": 2,  # once the Linodes' addresses are known
    }

    # Without --json, one line at the end says it (before the error, here).
    second = run("up", EXAMPLE, "--timeout", "60")
    assert second.exit_code == 6
    assert second.stderr.splitlines()[-2:-1] == ["   nothing changed"]
    assert second.stderr.splitlines()[-1].startswith("Error: 9 node(s) not joined: ")
    third = run("up", EXAMPLE, "--timeout", "60", "--json")
    assert json.loads(third.stdout)["changed"] == []


def _fingerprint(key: str) -> str:
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_ssh_private_key(Path(key).read_bytes(), password=None)
    blob = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    digest = hashlib.sha256(base64.b64decode(blob.split()[1])).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def test_plan_of_a_cluster_not_made_yet_needs_no_ssh_key(sim, monkeypatch):
    key = os.environ["SWARMBOOT_SSH_KEY"]
    # With a key: the one `up` would install and log in with, where it is, its fingerprint.
    keyed = run("plan", EXAMPLE)
    assert keyed.exit_code == 0, keyed.output
    assert keyed.stderr.splitlines()[0] == (
        f"   `swarmboot up` would install and log in with the SSH key from {key} "
        f"({_fingerprint(key)})"
    )
    # None anywhere (no option, no SWARMBOOT_SSH_KEY, no agent, no ~/.ssh key): the same
    # plan, and how to give `up` one.
    monkeypatch.delenv("SWARMBOOT_SSH_KEY")
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    keyless = run("plan", EXAMPLE)
    assert keyless.exit_code == 0, keyless.output
    assert keyless.stdout == keyed.stdout
    assert keyless.stderr.splitlines()[0] == (
        " ! `swarmboot up` will need an SSH key to install on the nodes and log in with: "
        "pass --ssh-key FILE (a private key), set SWARMBOOT_SSH_KEY, load a key into "
        "ssh-agent, or create ~/.ssh/id_ed25519"
    )
    assert keyless.stderr.splitlines()[-1] == " ✓ itframe: 49 step(s) to converge"
    as_json = run("plan", EXAMPLE, "--json")
    assert as_json.exit_code == 0 and len(json.loads(as_json.stdout)) == 49
    # `up` needs one before it changes anything.
    refused = run("up", EXAMPLE)
    assert refused.exit_code == 1
    assert refused.stderr.startswith("Error: no SSH key to log in to the nodes with; pass ")
    writes = [r for r in SimAdmin(sim.url, TOKEN).requests() if r["method"] != "GET"]
    assert writes == []
    # Once the cluster has a Linode, `plan` needs the key as every command does.
    monkeypatch.setenv("SWARMBOOT_SSH_KEY", key)
    assert run("up", EXAMPLE, "--timeout", "60").exit_code == 6
    monkeypatch.delenv("SWARMBOOT_SSH_KEY")
    existing = run("plan", EXAMPLE)
    assert (existing.exit_code, existing.stdout) == (1, "")
    assert existing.stderr == (
        "Error: no SSH key to log in to the nodes with; pass --ssh-key FILE (a private key), "
        "set SWARMBOOT_SSH_KEY, load a key into ssh-agent, or create ~/.ssh/id_ed25519\n"
    )
    # With the key, a cluster that exists is planned as before: no line about the key.
    monkeypatch.setenv("SWARMBOOT_SSH_KEY", key)
    again = run("plan", EXAMPLE)
    assert again.exit_code == 0, again.output
    assert "SSH key" not in again.stderr


def test_no_token_is_one_line_with_exit_5(sim, monkeypatch):
    monkeypatch.delenv("SWARMBOOT_SIM_TOKEN")
    result = run("plan", EXAMPLE)
    assert result.exit_code == 5
    assert result.stderr.startswith(
        "Error: no Linode API token: looked in LINODE_TOKEN, "
        "LINODE_CLI_TOKEN, SWARMBOOT_SIM_TOKEN and linode-cli's"
    )
    assert "never pass it on the command line" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_a_wrong_token_is_named_by_where_it_came_from(sim, monkeypatch):
    monkeypatch.setenv("SWARMBOOT_SIM_TOKEN", "wrong")
    result = run("plan", EXAMPLE)
    assert result.exit_code == 5
    assert "refused the token from SWARMBOOT_SIM_TOKEN (401 Invalid Token)" in result.stderr
    assert "wrong" not in result.stderr.replace("wrong token", "")


def test_a_region_the_api_does_not_know(sim, tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text(
        '[cluster]\nname = "far"\n[regions.mars-1]\npools = [{ role = "manager", count = 1 }]\n'
    )
    result = run("plan", str(spec))
    assert result.exit_code == 4
    assert result.stderr.startswith(f"Error: {spec}: regions.mars-1: no such Linode region; ")


def test_a_bad_spec_lists_every_problem(sim, tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text(
        '[cluster]\nname = "Bad"\n[regions.eu-central]\npools = [{ role = "manager", count = 2 }]\n'
    )
    result = run("up", str(spec))
    assert result.exit_code == 4
    assert result.stderr.splitlines()[0] == (
        f"Error: {spec}: cluster.name: must be a lowercase name starting with a letter: "
        "letters, digits and hyphens, at most 24 (it starts every node's label)"
    )
    assert "Traceback" not in result.output


def test_rebuild_and_repair_ask_first_and_name_a_label_the_spec_lacks(sim):
    # No terminal here: only --yes says yes; nothing is touched before it.
    refused = run("node", "rebuild", EXAMPLE, "itframe-gb-lon-worker-1")
    assert refused.exit_code == 1
    assert refused.output.splitlines() == [
        "Error: refusing to rebuild itframe-gb-lon-worker-1: its disk is wiped and made "
        "again without --yes; pass --yes to confirm"
    ]
    unknown = run("node", "rebuild", EXAMPLE, "itframe-gb-lon-worker-9", "--yes")
    assert unknown.exit_code == 2
    assert unknown.output.startswith("Error: itframe-gb-lon-worker-9 is not a node of "), (
        unknown.output
    )
    assert "Traceback" not in unknown.output
    # Nothing made: repair makes nothing (that is up's job) and asks nothing.
    nothing = run("repair", EXAMPLE)
    assert nothing.exit_code == 1, nothing.output
    assert nothing.output.splitlines() == [
        "Error: itframe has no Linode tagged swarmboot:itframe: nothing to repair; "
        "`swarmboot up` makes the cluster"
    ]
    writes = [r for r in SimAdmin(sim.url, TOKEN).requests() if r["method"] != "GET"]
    assert writes == []


def test_upgrade_and_plan_upgrade_refuse_a_cluster_without_a_swarm(sim):
    for args in (("plan", EXAMPLE, "--upgrade"), ("upgrade", EXAMPLE, "--docker", "--yes")):
        refused = run(*args)
        assert refused.exit_code == 1, refused.output
        assert refused.stderr == (
            "Error: itframe has no swarm to upgrade; `swarmboot up` makes the cluster "
            "(`swarmboot status` shows each node)\n"
        )
    both = run("plan", EXAMPLE, "--upgrade", "--down")
    assert both.exit_code == 2
    assert both.stderr.startswith("Error: --packages, --docker and --image go with --upgrade")
