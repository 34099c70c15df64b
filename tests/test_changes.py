"""What `up`, `recover`, `node rebuild` and `repair` report they changed, against the
simulator and fake nodes: each change once made, none where a step found nothing to do, an
empty list on a second run."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from swarmboot.apply import Change, changes_data, changes_line, run_steps, up
from swarmboot.cli.cluster import show_result
from swarmboot.cluster import observe
from swarmboot.plan import EnsureNetwork, LabelNode, RemoveStaleNode, node_labels
from swarmboot.rebuild import rebuild, repair
from swarmboot.recover import observe_recovery, recover
from swarmboot.status import summary

from .test_recover import EU, _lose
from .world import make_context

GB_LON_MANAGER = "itframe-gb-lon-manager-1"


def test_the_first_up_lists_what_it_made_and_a_second_up_nothing(world, capsys):
    server, fleet = world
    ctx = make_context(server, fleet)
    result = up(ctx)
    spec, observed = ctx.spec, result.observed
    kinds = Counter(c.kind for c in result.changes)
    assert kinds == {
        "stackscript_published": 1,
        "firewall_created": 2,
        "placement_group_created": 1,
        "linode_created": 9,
        "linode_booted": 9,
        "member_set_updated": 9,
        "firewall_updated": 2,
        "swarm_initialised": 1,
        "node_joined": 8,
        "node_labelled": 9,
        "network_created": 1,
    }
    # Each Linode made is named with its id, and each node joined with its swarm id.
    linodes = {i.label: i.id for i in observed.instances}
    created = {c.name: c.id for c in result.changes if c.kind == "linode_created"}
    assert created == linodes
    entries = {e.hostname: e.id for e in observed.swarm.nodes}
    members = ("swarm_initialised", "node_joined")
    joined = {c.name: c.id for c in result.changes if c.kind in members}
    assert joined == entries
    assert next(c for c in result.changes if c.kind == "swarm_initialised").name == (
        "itframe-eu-central-manager-1"
    )
    firewalls = {f.label: f.id for f in observed.firewalls}
    assert {c.name: c.id for c in result.changes if c.kind == "firewall_created"} == firewalls
    assert Change("network_created", "itframe") in result.changes
    assert changes_line(result.changes) == (
        "changed: 1 StackScript published, 2 Cloud Firewalls created, 1 placement group "
        "created, 9 Linodes created, 9 Linodes booted, 9 firewall member sets updated, 2 Cloud "
        "Firewalls updated, 1 swarm initialised, 8 nodes joined, 9 nodes labelled, 1 overlay "
        "network created"
    )
    # `up --json`: the status as before, its keys where they were, and what changed.
    show_result(spec, result, as_json=True)
    printed = json.loads(capsys.readouterr().out)
    assert list(printed) == [*summary(spec, observed), "changed"]
    assert {k: v for k, v in printed.items() if k != "changed"} == summary(spec, observed)
    assert printed["changed"] == changes_data(result.changes)
    assert printed["changed"][0] == {
        "kind": "stackscript_published",
        "name": "swarmboot-debian12-swarm-node",
        "id": result.changes[0].id,
    }
    assert "SWMTKN" not in json.dumps(printed)  # the join tokens are never among them

    again = up(make_context(server, fleet))
    assert again.changes == []
    show_result(spec, again, as_json=True)
    assert json.loads(capsys.readouterr().out)["changed"] == []
    assert changes_line(again.changes) == "nothing changed"


def test_a_repeatable_step_that_finds_nothing_to_do_records_nothing(world):
    """Run again as they are (a retry after a broken connection does so), the steps that
    look before they change find the network made, the labels set, the entry gone."""
    server, fleet = world
    up(make_context(server, fleet))
    ctx = make_context(server, fleet)
    observed = observe(ctx)
    via = observed.swarm.manager
    worker = observed.swarm.node("itframe-gb-lon-worker-1")
    node = next(n for n in ctx.spec.nodes() if n.label == worker.hostname)
    changes: list[Change] = []
    done = run_steps(
        ctx,
        observed,
        (
            EnsureNetwork("itframe", True, None, via),
            LabelNode(node.label, node_labels(ctx.spec, node), worker.id, via),
            RemoveStaleNode("node-gone-long-ago", node.label, via),
        ),
        changes=changes,
    )
    assert len(done) == 3 and changes == []
    # A label that differs is a change.
    wanted = (*node_labels(ctx.spec, node), ("tier", "front"))
    run_steps(ctx, observed, (LabelNode(node.label, wanted, worker.id, via),), changes=changes)
    assert changes == [Change("node_labelled", node.label, worker.id)]


def test_recover_lists_what_it_changed_and_a_second_recover_nothing(world, capsys):
    server, fleet = world
    up(make_context(server, fleet))
    linodes = {i.label: i.id for i in observe(make_context(server, fleet)).instances}
    _lose(fleet, EU)
    ctx = make_context(server, fleet)
    result = recover(ctx, observe_recovery(ctx))
    by_kind: dict[str, list[str]] = {}
    for change in result.changes:
        by_kind.setdefault(change.kind, []).append(change.name)
    # The managers that did not answer shut down, the swarm forced on the survivor, every
    # lost node marked, rebuilt in place (no Linode made) and joined again.
    assert sorted(by_kind["linode_shut_down"]) == sorted(EU[:2])
    assert by_kind["swarm_forced_new"] == [GB_LON_MANAGER]
    assert sorted(by_kind["rebuild_marked"]) == sorted(EU)
    assert sorted(by_kind["linode_rebuilt"]) == sorted(EU)
    assert sorted(by_kind["node_joined"]) == sorted(EU)
    assert sorted(by_kind["rebuild_finished"]) == sorted(EU)
    assert "linode_created" not in by_kind
    rebuilt = {c.name: c.id for c in result.changes if c.kind == "linode_rebuilt"}
    assert rebuilt == {label: linodes[label] for label in EU}
    show_result(ctx.spec, result, as_json=True)
    assert json.loads(capsys.readouterr().out)["changed"] == changes_data(result.changes)

    again = make_context(server, fleet)
    assert recover(again, observe_recovery(again)).changes == []


def test_node_rebuild_and_repair_list_what_they_changed(world, capsys):
    """`node rebuild` lists the mark it set before `up` took over as well as the rebuild;
    `repair` every rebuild's changes, in order; a repair with nothing to do, none."""
    server, fleet = world
    up(make_context(server, fleet))
    linodes = {i.label: i.id for i in observe(make_context(server, fleet)).instances}
    worker, other = "itframe-gb-lon-worker-1", "itframe-eu-central-worker-1"
    ctx = make_context(server, fleet)
    result = rebuild(ctx, worker)
    kinds = [c.kind for c in result.changes if c.name == worker]
    assert kinds[0] == "rebuild_marked"  # run before `up`, kept all the same
    for kind in ("linode_rebuilt", "node_joined", "rebuild_finished"):
        assert kind in kinds, kinds
    assert Change("linode_rebuilt", worker, linodes[worker]) in result.changes
    assert "linode_created" not in {c.kind for c in result.changes}
    show_result(ctx.spec, result, as_json=True)
    assert json.loads(capsys.readouterr().out)["changed"] == changes_data(result.changes)

    fleet.node(worker).down = True
    fleet.node(other).down = True
    ctx = make_context(server, fleet)
    repaired = repair(ctx)
    assert sorted(label for label, _, _ in repaired.repaired) == sorted([worker, other])
    rebuilt = [c.name for c in repaired.changes if c.kind == "linode_rebuilt"]
    assert rebuilt == [label for label, _, _ in repaired.repaired]  # each once, in order
    show_result(ctx.spec, repaired, as_json=True)
    assert json.loads(capsys.readouterr().out)["changed"] == changes_data(repaired.changes)
    assert repair(make_context(server, fleet)).changes == []


def test_the_line_counts_each_kind_in_the_order_it_first_happened():
    changes = [
        Change("linode_created", "c-eu-central-manager-1", 1),
        Change("node_joined", "c-eu-central-manager-1", "n1"),
        Change("linode_created", "c-eu-central-worker-1", 2),
        Change("linode_created", "c-eu-central-worker-2", 3),
    ]
    assert changes_line(changes) == "changed: 3 Linodes created, 1 node joined"
    assert changes_line([]) == "nothing changed"
    with pytest.raises(ValueError, match="unknown kind of change: linode_painted"):
        Change("linode_painted", "c-eu-central-worker-1")
