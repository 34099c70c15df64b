"""Each rendered cloud-config, run for real by Debian's own cloud-init in a Debian root of its
release, with the NoCloud seed standing in for Linode's Metadata service.

A node per release gets Debian's cloud-init from the mirror (a Linode image with the
`cloud-init` capability carries it), the user data swarmboot would send for it
(`swarmboot.userdata`: the committed cloud-config with the node's fields and pinned host key
appended) in its seed, and cloud-init's four boot stages. The node script must reach the
status the StackScript path reaches: the StackScript run afterwards, as Linode would run it
with the same fields, finds nothing to change and reports the same.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from swarmboot import facts
from swarmboot.keys import new_host_key
from swarmboot.render import cloud_config_name
from swarmboot.userdata import node_user_data

from ..conftest import STACKSCRIPTS
from . import harness
from .test_stackscript_on_debian import (
    ORCHESTRATOR_KEY,
    RELEASES,
    _ed25519,
    authorize_orchestrator,
    worker_fields,
)

pytestmark = pytest.mark.debian

# What changes between two runs whatever they do.
TIMES = ("started_at", "finished_at", "changes")


@dataclass
class Booted:
    name: str
    node: harness.DebianNode
    host_public_key: str
    admin_public_key: str
    fields: dict[str, str]
    first: harness.ScriptRun  # cloud-init's first boot
    stackscript: harness.ScriptRun  # the StackScript run after it, with the same fields


def _boot(name: str, workdir: Path) -> Booted:
    host_key = new_host_key()
    _, admin_public = _ed25519()
    fields = worker_fields(host_key.private_b64, admin_public)
    config = (STACKSCRIPTS / cloud_config_name(name)).read_text()
    node = harness.DebianNode(RELEASES[name], workdir)
    try:
        node.install_cloud_init()
        authorize_orchestrator(node)
        first = node.run_cloud_init(
            node_user_data(config, fields, host_key), "linode4242", fields["hostname"]
        )
        stackscript = node.run_script((STACKSCRIPTS / name).read_text(), fields)
    except BaseException:
        node.close()
        raise
    return Booted(name, node, host_key.public_line, admin_public, fields, first, stackscript)


@pytest.fixture(scope="module")
def _booted_all(tmp_path_factory) -> Iterator[dict[str, Booted]]:
    yield from harness.per_release(_boot, RELEASES, tmp_path_factory)


@pytest.fixture(scope="module", params=sorted(RELEASES))
def booted(request, _booted_all) -> Booted:
    return _booted_all[request.param]


def test_cloud_init_runs_the_script_to_done(booted):
    first = booted.first
    assert first.returncode == 0, first.output[-4000:]
    assert "status: done" in first.output and "node.env left behind" not in first.output
    # Valid for this release's cloud-init; 22.4 (Debian 12) finds only `users: []` "too
    # short", and makes no user for it (see the SSH test).
    complaints = [line for line in first.output.splitlines() if "schema errors:" in line.lower()]
    assert complaints in ([], ["Cloud config schema errors: users: [] is too short"]), complaints
    status = first.status
    assert status["phase"] == "done" and status["error"] is None, status
    script = (STACKSCRIPTS / booted.name).read_bytes()
    # The very script of the StackScript path, byte for byte, from its own file.
    assert status["script"] == booted.name
    assert status["script_sha256"] == hashlib.sha256(script).hexdigest()
    assert (status["hostname"], status["role"], status["zone"], status["cluster"]) == (
        "itframe-eu-central-worker-1",
        "worker",
        "eu-central",
        "itframe",
    )
    assert status["vxlan_ok"] is True
    assert status["docker_ok"] is True and status["firewall_ok"] is True
    assert "swarmboot: done: " in first.log


def test_the_stackscript_after_it_changes_nothing_and_reports_the_same(booted):
    again = booted.stackscript
    assert again.returncode == 0, again.output[-4000:]
    assert again.status["changes"] == []
    same = {k: v for k, v in again.status.items() if k not in TIMES}
    assert same == {k: v for k, v in booted.first.status.items() if k not in TIMES}


def test_ssh_offers_the_pinned_host_key_cloud_init_put_in_place(booted):
    node = booted.node
    effective = node.chroot("/bin/sh", "-c", "mkdir -p /run/sshd && sshd -T").stdout.splitlines()
    assert [s for s in effective if s.startswith("hostkey ")] == [
        "hostkey /etc/ssh/ssh_host_ed25519_key"
    ]
    assert "passwordauthentication no" in effective
    pub = (node.root / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[:2]
    assert pub == booted.host_public_key.split()[:2]
    # cloud-init left root's keys alone (disable_root: false) and made no default user
    # (users: []).
    root_keys = (node.root / "root/.ssh/authorized_keys").read_text().splitlines()
    assert root_keys[0] == ORCHESTRATOR_KEY
    assert f"{booted.admin_public_key} ops" in root_keys
    passwd = (node.root / "etc/passwd").read_text()
    assert "\ndebian:" not in passwd and "\nops:" in passwd


def test_the_user_data_cloud_init_keeps_is_roots_alone(booted):
    # It holds the node's private host key: cloud-init keeps it readable by root only.
    kept = booted.node.root / "var/lib/cloud/instances/linode4242/user-data.txt"
    assert kept.stat().st_mode & 0o077 == 0
    host_key = base64.b64decode(booted.fields["ssh_host_key"]).decode()
    assert host_key.splitlines()[1] in kept.read_text()
    assert facts.NODE_ENV_FILE.startswith("/run/")  # the fields' file never was on the disk
