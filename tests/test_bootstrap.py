"""cluster.bootstrap = "cloud-init": `up` and `node rebuild` send each node's script as
cloud-init user data (metadata.user_data) and publish no StackScript; against the simulator,
with fake nodes behind it that read their fields and host key from that user data."""

from __future__ import annotations

import base64

import yaml

from swarmboot.apply import up
from swarmboot.cluster import observe
from swarmboot.rebuild import rebuild
from swarmboot.sim.admin import SimAdmin
from swarmboot.spec import load_spec, with_bootstrap

from .fakes import fields_of
from .world import EXAMPLE, TOKEN, creates, make_context

WORKER = "itframe-gb-lon-worker-2"
CLOUD_INIT = EXAMPLE.read_text().replace(
    'name = "itframe"\n', 'name = "itframe"\nbootstrap = "cloud-init"\n', 1
)


def _posts(server, path: str) -> int:
    stats = SimAdmin(server.url, TOKEN).stats()
    return sum(n for route, n in stats["routes"].items() if route == f"POST {path}")


def test_up_sends_each_node_its_user_data_and_publishes_nothing(world):
    server, fleet = world
    ctx = make_context(server, fleet, CLOUD_INIT)
    result = up(ctx)
    assert len(result.observed.swarm.nodes) == 9
    assert creates(server) == 9
    assert _posts(server, "/linode/stackscripts") == 0
    assert ctx.cloud.stackscripts() == []
    committed = ctx.script.cloud_config
    for node in ctx.spec.nodes():
        machine = fleet.node(node.label).machine
        assert machine.stackscript_id is None and machine.stackscript_data == {}
        text = base64.b64decode(machine.user_data).decode()
        assert text.startswith(committed)  # the committed cloud-config, then the node's part
        assert yaml.safe_load(text)["ssh_keys"]["ed25519_public"].startswith("ssh-ed25519 ")
        fields = fields_of(machine)
        assert (fields["hostname"], fields["swarm_role"], fields["zone"]) == (
            node.label,
            node.role,
            node.region,
        )
        # The host key pinned on the Linode is the one the user data carries.
        inst = result.observed.instance(node.label)
        assert fleet.node(node.label).host_key == inst.host_key_fingerprint
    said = "\n".join(ctx.reporter.lines)
    assert "PRIVATE KEY" not in said and "user_data" not in said
    assert "Publish StackScript" not in said
    # A second up changes nothing, and lists no StackScript either.
    before = len(SimAdmin(server.url, TOKEN).requests())
    assert up(make_context(server, fleet, CLOUD_INIT)).steps_run == []
    routes = {r["route"] for r in SimAdmin(server.url, TOKEN).requests()[before:]}
    assert "GET /linode/stackscripts" not in routes


def test_node_rebuild_sends_user_data_with_a_new_host_key(world):
    server, fleet = world
    up(make_context(server, fleet))  # made from the StackScript
    ctx = make_context(server, fleet)
    ctx.spec = with_bootstrap(load_spec(EXAMPLE), "cloud-init")  # as --bootstrap cloud-init
    before = observe(ctx).instance(WORKER)
    old = fleet.node(WORKER).machine
    assert old.stackscript_id is not None and old.user_data is None
    rebuild(ctx, WORKER)
    after = observe(ctx).instance(WORKER)
    machine = fleet.node(WORKER).machine
    assert machine.stackscript_id is None and machine.user_data is not None
    assert fields_of(machine)["swarm_role"] == "worker"
    assert after.host_key_fingerprint != before.host_key_fingerprint
    assert fleet.node(WORKER).host_key == after.host_key_fingerprint
    assert _posts(server, "/linode/instances/{linodeId}/rebuild") == 1
    said = "\n".join(ctx.reporter.lines)
    assert (
        f"Rebuild {WORKER} from linode/debian12 and cloud-init user data, with a new pinned "
        "host key"
    ) in said
