"""Trust boundaries: what holds a cluster's labels without its tag is another's, and nothing
of another's is rewritten, adopted or deleted (the Linode API lets anyone on the account
take any free label)."""

from __future__ import annotations

import json
import re

import pytest
from linode_api4 import LinodeClient
from typer.testing import CliRunner

from swarmboot.cli import app
from swarmboot.cloud import CloudError, LinodeCloud
from swarmboot.credentials import Target

from .conftest import CLI_TOKEN, REPO

EXAMPLE = str(REPO / "examples" / "itframe.toml")
runner = CliRunner()
OTHERS_RULE = {
    "label": "shop-https",
    "action": "ACCEPT",
    "protocol": "TCP",
    "ports": "443",
    "addresses": {"ipv4": ["0.0.0.0/0"]},
}


def run(*args: str):
    result = runner.invoke(app, list(args))
    assert CLI_TOKEN not in result.output, "the token leaked into the output"
    return result


def _client(server) -> LinodeClient:
    return LinodeClient(CLI_TOKEN, base_url=server.url)


def _someone_elses_firewall(server, label: str) -> tuple[int, int]:
    """An untagged firewall named like the cluster's, protecting an unrelated Linode."""
    client = _client(server)
    linode = client.linode.instance_create(
        "g6-nanode-1", "eu-central", label="shop-web-1", tags=["shop"]
    )
    rules = {"inbound": [OTHERS_RULE], "inbound_policy": "DROP", "outbound_policy": "ACCEPT"}
    firewall = client.networking.firewall_create(label, rules=rules)
    firewall.device_create(linode.id)
    return firewall.id, linode.id


def _firewall(server, firewall_id: int) -> tuple[list, list[int]]:
    client = _client(server)
    found = next(f for f in client.networking.firewalls() if f.id == firewall_id)
    rules = found.get_rules()
    return rules["inbound"], sorted(d.entity.id for d in found.devices)


def test_a_firewall_holding_the_clusters_label_without_its_tag_is_never_taken_over(cli_sim):
    firewall_id, linode_id = _someone_elses_firewall(cli_sim, "itframe-nodes")
    before = _firewall(cli_sim, firewall_id)
    for command in (("plan", EXAMPLE), ("up", EXAMPLE, "--timeout", "60")):
        refused = run(*command)
        assert refused.exit_code == 4, refused.output
        assert refused.stderr.splitlines()[0] == (
            "Error: Cloud Firewalls itframe-nodes exist without the tag swarmboot:itframe: they "
            "are not this cluster's and swarmboot will neither rewrite nor delete them; rename "
            "them, tag them swarmboot:itframe if they are this cluster's, or choose another "
            "cluster.name"
        )
    assert _firewall(cli_sim, firewall_id) == before  # its rules, and its Linode behind it
    assert [i.label for i in _client(cli_sim).linode.instances()] == ["shop-web-1"]
    assert before[1] == [linode_id]


def test_down_deletes_only_what_carries_the_clusters_tag(cli_sim):
    up = run("up", EXAMPLE, "--timeout", "60")
    assert up.exit_code == 6, up.output  # records only: the Linodes are made, none joins
    client = _client(cli_sim)
    # Someone renames the cluster's load balancer firewall away and makes one of their own.
    ours = next(f for f in client.networking.firewalls() if f.label == "itframe-lb")
    ours.label = "itframe-lb-old"
    ours.save()
    firewall_id, _ = _someone_elses_firewall(cli_sim, "itframe-lb")
    shown = run("plan", EXAMPLE, "--down", "--json")
    assert shown.exit_code == 0, shown.output
    steps = json.loads(shown.stdout)
    assert [s["step"] for s in steps] == ["DeleteInstance"] * 9 + [
        "DeleteCloudFirewall",
        "DeletePlacementGroup",
    ]
    assert steps[-2]["fields"]["label"] == "itframe-nodes"
    assert (
        "left alone: Cloud Firewall itframe-lb (without the tag swarmboot:itframe: not this "
        "cluster's)" in shown.stderr
    )
    gone = run("down", EXAMPLE, "--yes")
    assert gone.exit_code == 0, gone.output
    assert gone.stdout.startswith("deleted\t9 Linode(s) tagged swarmboot:itframe, 1 Cloud")
    left = sorted(f.label for f in client.networking.firewalls())
    assert left == ["itframe-lb", "itframe-lb-old"]
    assert _firewall(cli_sim, firewall_id)[0][0]["label"] == "shop-https"


def test_a_create_whose_label_is_taken_adopts_only_a_firewall_with_its_tags(cli_sim):
    firewall_id, _ = _someone_elses_firewall(cli_sim, "itframe-nodes")
    cloud = LinodeCloud(Target(cli_sim.url, CLI_TOKEN, "test"), retry_interval=0.02)
    rules = {"inbound": [], "inbound_policy": "DROP", "outbound_policy": "ACCEPT"}
    with pytest.raises(CloudError, match="Label must be unique"):
        cloud.create_firewall("itframe-nodes", rules, ["swarmboot:itframe"])
    # One of its own that a lost answer hid is taken as made.
    made = _client(cli_sim).networking.firewall_create(
        "itframe-lb", rules=rules, tags=["swarmboot:itframe"]
    )
    assert cloud.create_firewall("itframe-lb", rules, ["swarmboot:itframe"]).id == made.id
    assert firewall_id != made.id


def test_down_keeps_a_stackscript_another_cluster_may_rebuild_from(cli_sim, tmp_path):
    other = tmp_path / "shop.toml"
    example = (REPO / "examples" / "itframe.toml").read_text()
    other.write_text(example.replace('name = "itframe"', 'name = "shop"'))
    assert run("up", str(other), "--timeout", "60").exit_code == 6
    assert run("up", EXAMPLE, "--timeout", "60").exit_code == 6
    refused = run("down", EXAMPLE, "--stackscripts", "--yes")
    assert refused.exit_code == 4, refused.output
    assert refused.stderr.splitlines()[0] == (
        "Error: the StackScript swarmboot-debian12-swarm-node is shared: the clusters shop "
        "(9 Linode(s)) are on this account and may rebuild from it; run `swarmboot down` "
        "without --stackscripts, or take those clusters down first"
    )
    labels = [i.label for i in _client(cli_sim).linode.instances()]
    assert len(labels) == 18  # nothing deleted
    assert run("down", EXAMPLE, "--yes").exit_code == 0
    assert run("down", str(other), "--stackscripts", "--yes").exit_code == 0
    assert _client(cli_sim).linode.stackscripts(mine_only=True).total_items == 0


def test_a_records_only_simulator_contacts_no_address_even_where_a_lab_routes_its_range(
    cli_sim, monkeypatch
):
    """A lab on the same machine routes 198.51.100.0/24 into its namespaces: a records-only
    simulator's Linodes have the same addresses, and not one of them is a machine of its."""
    import socket

    from swarmboot import routes

    def lab_route(args: list[str]) -> list[dict]:
        if args[0] == "get":  # every address: routed into a lab's bridge
            return [{"dst": args[1], "dev": "swblab-br0", "prefsrc": "198.51.100.1"}]
        return [{"dst": "default", "gateway": "192.0.2.1", "dev": "eth0"}]

    monkeypatch.setattr(routes, "_route", lab_route)
    tried: list[tuple] = []
    real_connect = socket.create_connection

    def no_lab_connections(address, *args, **kwargs):
        if not str(address[0]).startswith("127."):
            tried.append(address)  # refused here, so that nothing leaves even on a failure
            raise OSError("the test allows loopback only")
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", no_lab_connections)
    done = run("up", EXAMPLE, "--timeout", "60")
    assert done.exit_code == 6, done.output
    refused = re.findall(
        r"(itframe-[a-z-]+-\d+): 198\.51\.100\.\d+ is not a machine: the simulator's Linodes "
        "have no machines behind them",
        done.stderr,
    )
    assert len(set(refused)) == 9, done.stderr
    assert tried == []


def test_the_clusters_tag_alone_does_not_make_a_member(cli_sim):
    """Anyone on the account can tag a Linode swarmboot:itframe: without a node's label it
    is not a member: no swarm port opens to it, and neither prune nor down deletes it."""
    client = _client(cli_sim)
    for label in ("itframe-backdoor", "itframe-eu-central-worker-01"):
        client.linode.instance_create(
            "g6-nanode-1", "eu-central", label=label, tags=["swarmboot:itframe"]
        )
    outsiders = {i.id for i in client.linode.instances()}
    assert run("up", EXAMPLE, "--timeout", "60").exit_code == 6
    behind = {d.entity.id for f in client.networking.firewalls() for d in f.devices}
    assert len(behind) == 9 and not behind & outsiders
    status = json.loads(run("status", EXAMPLE, "--json").stdout)
    assert len(status["nodes"]) == 9
    gone = run("down", EXAMPLE, "--yes")
    assert gone.exit_code == 0, gone.output
    assert gone.stdout.startswith("deleted\t9 Linode(s)")
    assert (
        "left alone: Linode itframe-backdoor (it has the tag swarmboot:itframe, but not a "
        "label swarmboot gives a node: not a member)" in gone.stderr
    )
    assert {i.id for i in client.linode.instances()} == outsiders


def _pinned_tag() -> str:
    """A host-key pin of a key its maker holds, as swarmboot writes pins."""
    from swarmboot.keys import new_host_key
    from swarmboot.state import host_key_tag

    return host_key_tag(new_host_key().fingerprint)


def test_a_linode_made_in_advance_with_the_tag_a_node_label_and_a_pin_is_not_adopted(cli_sim):
    """Someone on the account makes `itframe-eu-central-manager-1` first, with the cluster's
    tag and a pin of a host key they hold: swarmboot would have sent it a join token. Without
    the mark only swarmboot's SSH identity makes, it is refused by name and never touched."""
    client = _client(cli_sim)
    planted = client.linode.instance_create(
        "g6-nanode-1",
        "eu-central",
        label="itframe-eu-central-manager-1",
        tags=["swarmboot:itframe", _pinned_tag()],
    )
    line = (
        "Error: Linodes itframe-eu-central-manager-1 carry the tag swarmboot:itframe but not "
        "the mark swarmboot makes for the Linodes it creates with this SSH identity: swarmboot "
        "will neither send them a join token nor open the swarm's ports to them; if they are "
        "this cluster's (made before marks, or with another SSH key), `swarmboot adopt` on "
        "this spec marks them; otherwise rename or delete them"
    )
    for command in (("plan", EXAMPLE), ("up", EXAMPLE, "--timeout", "60")):
        refused = run(*command)
        assert (refused.exit_code, refused.stderr.splitlines()) == (4, [line]), refused.output
    assert [i.id for i in client.linode.instances()] == [planted.id]
    assert list(client.networking.firewalls()) == []  # nothing made, nothing opened to it
    status = json.loads(run("status", EXAMPLE, "--json").stdout)
    assert status["nodes"][0]["linode"] == "missing"  # the spec's node is not there
    assert status["not_members"] == [
        "Linode itframe-eu-central-manager-1 (it has the tag swarmboot:itframe, but not the "
        "mark swarmboot made for its Linodes with this SSH identity: not a member; `swarmboot "
        "adopt` if it is this cluster's)"
    ]
    # `down` leaves it, and fails naming it: it looks like the cluster's and is billed.
    gone = run("down", EXAMPLE, "--yes")
    assert (gone.exit_code, gone.stderr.splitlines()[-1]) == (
        1,
        "Error: 1 Linode(s) with the tag swarmboot:itframe under node labels were not "
        "deleted: itframe-eu-central-manager-1 (not marked by this SSH identity); if they are "
        "this cluster's, `swarmboot adopt` with its SSH key and run down again; if not, "
        "they are someone else's",
    ), gone.output
    assert [i.id for i in client.linode.instances()] == [planted.id]


def test_adopt_marks_the_linodes_a_cluster_had_before_marks(cli_sim):
    """A cluster made before swarmboot marked its Linodes (here: marks taken off) is refused
    until the operator adopts it; `adopt` names each Linode and its pin, asks, marks, and a
    second `adopt` has nothing to do."""
    assert run("up", EXAMPLE, "--timeout", "60").exit_code == 6
    client = _client(cli_sim)
    for linode in client.linode.instances():
        kept = [t for t in linode.tags if not t.startswith("sbm:")]
        client.put(f"/linode/instances/{linode.id}", data={"tags": kept})
    assert run("plan", EXAMPLE).exit_code == 4
    unknown = run("adopt", EXAMPLE, "itframe-gb-lon-worker-9", "--yes")
    assert (unknown.exit_code, unknown.stderr.splitlines()) == (
        2,
        [
            "Error: itframe-gb-lon-worker-9: not an unmarked Linode of the cluster (its tag "
            "and a node label), nor one of its VPCs; `swarmboot status SPEC` names the Linodes "
            "that are not members"
        ],
    )
    asked = run("adopt", EXAMPLE)  # no terminal, no --yes: nothing changes
    assert asked.exit_code == 1, asked.output
    assert asked.stdout.splitlines()[0].startswith("  1. Mark itframe-eu-central-lb-1 (Linode "), (
        asked.stdout
    )
    assert "SHA256:" in asked.stdout.splitlines()[0]
    assert len(asked.stdout.splitlines()) == 9
    assert run("plan", EXAMPLE).exit_code == 4
    done = run("adopt", EXAMPLE, "--yes")
    assert done.exit_code == 0, done.output
    assert "itframe: 9 Linode(s) marked" in done.stderr
    again = run("adopt", EXAMPLE, "--yes")
    assert (again.exit_code, again.stdout) == (0, "")
    assert "every Linode with its tag and a node label is marked" in again.stderr
    assert run("plan", EXAMPLE).exit_code == 0
    # Marks made with another SSH identity are not this one's: its Linodes are not members.
    tags = {i.label: i.tags for i in client.linode.instances()}
    assert all(sum(t.startswith("sbm:") for t in held) == 1 for held in tags.values())
