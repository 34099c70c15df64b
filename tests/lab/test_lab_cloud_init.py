"""cluster.bootstrap = "cloud-init" in the lab: the whole example cluster made with
`swarmboot up --bootstrap cloud-init`, and a worker rebuilt the same way.

Each Linode gets the node script as metadata.user_data; the lab hands it to Debian's own
cloud-init on the node (a NoCloud seed stands in for Linode's Metadata service), whose stages
put the pinned host key in place and run the script. What it made is checked with OpenSSH
(host keys against the pins) and the real docker CLI on a manager; no StackScript is on the
account at any point.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from linode_api4 import LinodeClient

from ..conftest import STACKSCRIPTS
from .apps import assert_whole, known_hosts
from .lab import REPO, TOKEN, on_node, pinned, swarmboot

pytestmark = pytest.mark.lab

SPEC = REPO / "examples" / "itframe-lab.toml"
WORKER = "itframe-gb-lon-worker-2"
SCRIPT_SHA256 = hashlib.sha256((STACKSCRIPTS / "debian12-swarm-node.sh").read_bytes()).hexdigest()


def _booted_by_cloud_init(known, key, address: str) -> dict:
    """The node's status file, after checking cloud-init ran its user data to the end."""
    said = on_node(known, key, address, "cloud-init status --long")
    assert "status: done" in said, said
    assert on_node(known, key, address, "test -e /var/lib/cloud/instance/boot-finished && echo y")
    status = json.loads(on_node(known, key, address, "cat /var/lib/swarmboot/status.json"))
    assert status["phase"] == "done" and status["vxlan_ok"] is True, status
    assert status["script_sha256"] == SCRIPT_SHA256  # the StackScript's very bytes
    return status


def test_up_and_node_rebuild_with_cloud_init(lab, key, tmp_path):
    client = LinodeClient(TOKEN, base_url=lab.url)
    up = swarmboot(
        lab, "up", str(SPEC), "--ssh-key", str(key), "--bootstrap", "cloud-init", "--json"
    )
    assert json.loads(up.stdout)["managers"] == 3
    assert "Publish StackScript" not in up.stderr
    assert list(client.linode.stackscripts(mine_only=True)) == []
    assert all(i.has_user_data for i in client.linode.instances())
    known = known_hosts(lab, SPEC, key, tmp_path / "known_hosts")
    pins = pinned(lab)
    assert_whole(lab, SPEC, known, key, "itframe-eu-central-manager-1")
    status = _booted_by_cloud_init(known, key, pins[WORKER][0])
    assert (status["hostname"], status["role"], status["zone"]) == (WORKER, "worker", "gb-lon")

    rebuilt = swarmboot(
        lab,
        "node",
        "rebuild",
        str(SPEC),
        WORKER,
        "--ssh-key",
        str(key),
        "--yes",
        "--bootstrap",
        "cloud-init",
    )
    assert f"Rebuild {WORKER} from linode/debian12 and cloud-init user data" in rebuilt.stderr
    assert pinned(lab)[WORKER][1] != pins[WORKER][1]  # a new pinned host key
    known = known_hosts(lab, SPEC, key, tmp_path / "known_hosts")
    assert_whole(lab, SPEC, known, key, "itframe-eu-central-manager-1")
    _booted_by_cloud_init(known, key, pinned(lab)[WORKER][0])
    assert list(client.linode.stackscripts(mine_only=True)) == []
