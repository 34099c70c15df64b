"""`node rebuild`, `repair` and scaling through the spec, against the simulator.

The cloud is the real simulator; the nodes are `tests.fakes` machines. A node "dies" by its
machine going down (no SSH, Down in the swarm) while Linode still says running.
"""

from __future__ import annotations

import pytest

from swarmboot.apply import NotReadyError, up
from swarmboot.cluster import observe
from swarmboot.membership import cluster_addresses
from swarmboot.plan import QuorumError, plan
from swarmboot.rebuild import UnknownNode, rebuild, repair, unhealthy
from swarmboot.sim.admin import SimAdmin
from swarmboot.state import REBUILD_TAG, Instance

from .world import EXAMPLE, TOKEN, make_context

WORKER = "itframe-gb-lon-worker-2"
MANAGER = "itframe-eu-central-manager-2"
SOLO = """
[cluster]
name = "solo"
[regions.eu-central]
pools = [{ role = "manager", count = 1 }, { role = "worker", count = 2 }]
"""


def _routes(server, method: str, suffix: str) -> list[dict]:
    return [
        r
        for r in SimAdmin(server.url, TOKEN).requests()
        if r["method"] == method and r["route"].endswith(suffix)
    ]


def _entries(fleet, label: str) -> list:
    return [n for n in fleet.swarm_nodes.values() if n.machine.label == label]


def _assert_converged(ctx, fleet, count: int = 9) -> None:
    observed = observe(ctx)
    assert plan(ctx.spec, observed, ctx.script) == ()
    labels = [i.label for i in observed.instances]
    assert len(labels) == len(set(labels)) == count  # no duplicate Linode
    assert not any(t.startswith(REBUILD_TAG) for i in observed.instances for t in i.tags)
    entries = observed.swarm.nodes
    assert sorted(e.hostname for e in entries) == sorted(labels)  # one entry per node
    assert all(e.state == "ready" for e in entries)
    managers = sum(e.role == "manager" and e.reachability == "reachable" for e in entries)
    assert managers == sum(n.role == "manager" for n in ctx.spec.nodes())  # all in raft
    addresses = cluster_addresses(ctx.spec.nodes(), {i.label: i for i in observed.instances})
    for inst in observed.instances:
        assert observed.members[inst.label] == addresses  # every set up to date


def test_a_live_worker_is_drained_rebuilt_with_a_new_key_and_joined_again(world):
    server, fleet = world
    up(make_context(server, fleet))
    ctx = make_context(server, fleet)
    before = observe(ctx).instance(WORKER)
    result = rebuild(ctx, WORKER)
    after = observe(ctx).instance(WORKER)
    assert after.id == before.id and after.ipv4_public == before.ipv4_public
    assert after.host_key_fingerprint != before.host_key_fingerprint  # a fresh pinned key
    assert fleet.node(WORKER).host_key == after.host_key_fingerprint
    assert ("drain", WORKER) in fleet.calls and ("remove", WORKER) in fleet.calls
    assert len(_routes(server, "POST", "/rebuild")) == 1
    assert len(_routes(server, "POST", "/linode/instances")) == 9  # nothing made
    entry = result.observed.swarm.node(WORKER)
    assert dict(entry.labels)["zone"] == "gb-lon" and entry.role == "worker"
    assert fleet.node(WORKER).machine.kernel == "linode/grub2"  # set again: rebuild resets it
    _assert_converged(ctx, fleet)
    said = "\n".join(ctx.reporter.lines)
    assert f"Drain {WORKER} and wait for its tasks to move" in said
    assert f"Finish the rebuild of {WORKER}: it is back in the swarm" in said


def test_repair_brings_back_a_dead_worker_with_one_swarm_entry(world):
    server, fleet = world
    up(make_context(server, fleet))
    fleet.node(WORKER).down = True  # the machine is dead; Linode still says running
    ctx = make_context(server, fleet)
    assert unhealthy(ctx.spec, observe(ctx)) == [(WORKER, "it is down in the swarm")]
    result = repair(ctx)
    assert [r[0] for r in result.repaired] == [WORKER]
    assert ("drain", WORKER) not in fleet.calls  # it did not answer: nothing to drain
    assert len(_entries(fleet, WORKER)) == 1
    _assert_converged(ctx, fleet)
    assert repair(make_context(server, fleet)).repaired == []  # nothing left to repair


def test_repair_brings_back_two_dead_workers_each_rebuild_leaving_the_other_alone(world):
    """Each rebuild's `up` leaves the other dead node to the next rebuild rather than wait
    for it in vain (before, the first rebuild waited out its timeout for the second node
    and failed, and so did every rerun)."""
    server, fleet = world
    up(make_context(server, fleet))
    dead = ["itframe-eu-central-worker-1", WORKER]
    for label in dead:
        fleet.node(label).down = True
    ctx = make_context(server, fleet)
    result = repair(ctx)
    assert sorted(r[0] for r in result.repaired) == sorted(dead)
    for label in dead:
        assert len(_entries(fleet, label)) == 1
    _assert_converged(ctx, fleet)


def test_up_does_not_wait_for_a_dead_node_and_names_repair(world):
    """A node that joined, is down in the swarm and does not answer is dead, not booting:
    `up` converges the rest and names it with `repair`, without waiting out its timeout."""
    server, fleet = world
    up(make_context(server, fleet))
    fleet.node(WORKER).down = True
    ctx = make_context(server, fleet)
    with pytest.raises(NotReadyError) as raised:
        up(ctx)
    assert raised.value.message == (
        f"1 node(s) not joined: {WORKER}: it is down in the swarm and does not answer over "
        "SSH; `swarmboot repair` rebuilds it"
    )
    assert "not ready after" not in "\n".join(ctx.reporter.lines)  # nothing waited for it
    assert len(_routes(server, "POST", "/rebuild")) == 0  # nor rebuilt: that is repair's


def test_repair_brings_back_a_dead_manager_keeping_quorum(world):
    server, fleet = world
    up(make_context(server, fleet))
    fleet.node(MANAGER).down = True
    ctx = make_context(server, fleet)
    result = repair(ctx)
    assert [r[0] for r in result.repaired] == [MANAGER]
    assert ("demote", MANAGER) in fleet.calls
    entry = result.observed.swarm.node(MANAGER)
    assert entry.role == "manager" and entry.state == "ready"
    assert len(_entries(fleet, MANAGER)) == 1
    _assert_converged(ctx, fleet)


def test_a_manager_whose_removal_would_lose_quorum_is_refused_and_nothing_changes(world):
    server, fleet = world
    up(make_context(server, fleet))
    fleet.node("itframe-gb-lon-manager-1").down = True  # one of three is down already
    ctx = make_context(server, fleet)
    writes = len([r for r in SimAdmin(server.url, TOKEN).requests() if r["method"] != "GET"])
    with pytest.raises(QuorumError) as info:
        rebuild(ctx, MANAGER)
    assert info.value.exit_code == 7
    assert str(info.value).startswith(
        f"refusing to rebuild {MANAGER}: without {MANAGER}, 1 of the 2 remaining managers "
        "would be reachable and raft needs 2"
    )
    assert len([r for r in SimAdmin(server.url, TOKEN).requests() if r["method"] != "GET"]) == (
        writes
    )
    assert ("drain", MANAGER) not in fleet.calls


def test_the_only_manager_is_refused_and_forced_makes_a_new_swarm_the_workers_join(world):
    server, fleet = world
    up(make_context(server, fleet, SOLO))
    manager = "solo-eu-central-manager-1"
    with pytest.raises(QuorumError, match="is the swarm's only manager"):
        rebuild(make_context(server, fleet, SOLO), manager)
    ctx = make_context(server, fleet, SOLO)
    rebuild(ctx, manager, force=True)
    assert ("leave", "solo-eu-central-worker-1") in fleet.calls  # left the old swarm
    _assert_converged(ctx, fleet, count=3)


def test_a_gone_linode_is_made_again_and_its_old_entry_removed(world):
    server, fleet = world
    up(make_context(server, fleet))
    ctx = make_context(server, fleet)
    gone = observe(ctx).instance(WORKER)
    ctx.cloud.delete_instance(gone.id)
    assert unhealthy(ctx.spec, observe(ctx)) == [(WORKER, "its Linode is gone")]
    repair(ctx)
    assert observe(ctx).instance(WORKER).id != gone.id
    assert len(_routes(server, "POST", "/linode/instances")) == 10
    assert len(_entries(fleet, WORKER)) == 1
    _assert_converged(ctx, fleet)


class Crash(BaseException):
    """swarmboot killed at this point (nothing of it runs on)."""


CRASH_POINTS = [
    ("swarm", "drain"),  # before it is drained
    ("swarm", "remove"),  # drained, before its entry goes
    ("cloud", "rebuild_instance"),  # its new key pinned, before the rebuild is asked for
    ("cloud", "boot"),  # rebuilt, before it boots
    ("swarm", "join"),  # booted and ready, before it joins
    ("cloud", "set_tags"),  # back in the swarm, before its rebuild mark is dropped
]


@pytest.mark.parametrize("seam,method", CRASH_POINTS, ids=[m for _, m in CRASH_POINTS])
def test_a_rebuild_cut_short_anywhere_is_finished_by_running_it_again(world, seam, method):
    server, fleet = world
    up(make_context(server, fleet))
    ctx = make_context(server, fleet)
    target = getattr(ctx, seam)
    real = getattr(target, method)
    calls = {"n": 0}

    def crash(*args, **kwargs):
        calls["n"] += 1
        # Tags are written three times: the mark, the new key's pin, the mark's drop.
        if method == "set_tags" and calls["n"] < 3:
            return real(*args, **kwargs)
        raise Crash(method)

    setattr(target, method, crash)
    with pytest.raises(Crash):
        rebuild(ctx, MANAGER if method == "remove" else WORKER)
    label = MANAGER if method == "remove" else WORKER
    again = make_context(server, fleet)
    rebuild(again, label)
    assert len(_entries(fleet, label)) == 1
    assert len(_routes(server, "POST", "/rebuild")) == 1  # carried on, not started again
    _assert_converged(again, fleet)


def test_rebuilding_a_label_the_spec_does_not_have_is_refused(world):
    server, fleet = world
    with pytest.raises(UnknownNode, match="itframe-gb-lon-worker-9 is not a node of"):
        rebuild(make_context(server, fleet), "itframe-gb-lon-worker-9")


def _scaled(workers: int, managers: int = 2) -> str:
    text = EXAMPLE.read_text()
    text = text.replace(
        '{ role = "manager", count = 2 }', f'{{ role = "manager", count = {managers} }}'
    )
    return text.replace(
        '[regions.gb-lon]\npools = [\n  { role = "manager", count = 1 },\n  { role = "lb", '
        'count = 1, type = "g6-standard-1" },\n  { role = "worker", count = 2 },',
        '[regions.gb-lon]\npools = [\n  { role = "manager", count = 1 },\n  { role = "lb", '
        f'count = 1, type = "g6-standard-1" }},\n  {{ role = "worker", count = {workers} }},',
    )


def test_a_raised_count_adds_nodes_and_a_lowered_one_prunes_newest_first(world):
    server, fleet = world
    up(make_context(server, fleet))
    grown = make_context(server, fleet, _scaled(4))
    up(grown)
    _assert_converged(grown, fleet, count=11)
    # Lowered: plain `up` keeps the surplus nodes (and their member addresses).
    shrunk = make_context(server, fleet, _scaled(1))
    assert up(shrunk).steps_run == []
    assert "kept 3 node(s) the spec no longer has: itframe-gb-lon-worker-" in "\n".join(
        shrunk.reporter.lines
    )
    assert len(observe(shrunk).instances) == 11
    ids = {i.label: i.id for i in observe(shrunk).instances}
    result = up(make_context(server, fleet, _scaled(1)), prune=True)
    deleted = [
        line.removeprefix("Delete the Linode ")
        for line in result.steps_run
        if line.startswith("Delete the Linode")
    ]
    assert sorted(deleted) == [f"itframe-gb-lon-worker-{n}" for n in (2, 3, 4)]
    assert deleted == sorted(deleted, key=lambda label: -ids[label])  # newest first
    assert all(("leave", label) in fleet.calls for label in deleted)
    # Docker's drain is not instant: each was looked at until its tasks had moved, no longer.
    assert sorted(fleet.drain_looks.values()) == [fleet.drain_polls] * 3
    _assert_converged(shrunk, fleet, count=8)
    firewalls = {f.label: f for f in observe(shrunk).firewalls}
    assert len(firewalls["itframe-nodes"].linode_ids) == 6


def test_kept_nodes_stay_behind_the_firewall_when_its_rules_change(world):
    """A lowered count without --prune while firewall.ssh_from changes: the rules sync keeps
    the surplus worker behind the nodes' firewall, and the next `up` changes nothing (it used
    to detach it every round and end with "did not converge after 6 rounds")."""
    server, fleet = world
    up(make_context(server, fleet))
    lowered = _scaled(1).replace(
        'ssh_from = ["0.0.0.0/0", "::/0"]', 'ssh_from = ["198.51.100.0/24"]'
    )
    ctx = make_context(server, fleet, lowered)
    result = up(ctx)
    kept = next(i for i in result.observed.instances if i.label == "itframe-gb-lon-worker-2")
    firewalls = {f.label: f for f in observe(ctx).firewalls}
    assert kept.id in firewalls["itframe-nodes"].linode_ids
    assert len(firewalls["itframe-nodes"].linode_ids) == 7
    ssh = next(r for r in firewalls["itframe-nodes"].inbound if dict(r)["label"] == "ssh")
    assert dict(dict(ssh)["addresses"]) == {"ipv4": ("198.51.100.0/24",)}
    assert up(make_context(server, fleet, lowered)).steps_run == []


def test_pruning_managers_demotes_them_and_keeps_quorum(world):
    server, fleet = world
    up(make_context(server, fleet))
    # 3 managers -> 1: eu-central's second and gb-lon's go.
    one = _scaled(2, managers=1).replace(
        '[regions.gb-lon]\npools = [\n  { role = "manager", count = 1 },\n',
        "[regions.gb-lon]\npools = [\n",
    )
    ctx = make_context(server, fleet, one)
    up(ctx, prune=True)
    assert ("demote", "itframe-gb-lon-manager-1") in fleet.calls
    _assert_converged(ctx, fleet, count=7)


def test_pruning_that_would_lose_quorum_is_refused(world):
    server, fleet = world
    up(make_context(server, fleet))
    fleet.node("itframe-eu-central-manager-1").down = True  # the one that would stay
    one = _scaled(2, managers=1).replace(
        '[regions.gb-lon]\npools = [\n  { role = "manager", count = 1 },\n',
        "[regions.gb-lon]\npools = [\n",
    )
    with pytest.raises(QuorumError, match="pruning would lose the swarm's quorum"):
        up(make_context(server, fleet, one), prune=True)
    assert len(observe(make_context(server, fleet)).instances) == 9


def test_status_shows_a_rebuild_in_progress_and_the_nodes_kept_past_the_spec(world):
    from swarmboot.status import summary

    server, fleet = world
    up(make_context(server, fleet, _scaled(3)))
    ctx = make_context(server, fleet, _scaled(2))
    inst = observe(ctx).instance(WORKER)
    ctx.cloud.set_tags(inst.id, (*inst.tags, "rebuild:1"))
    rows = {row["node"]: row for row in summary(ctx.spec, observe(ctx))["nodes"]}
    assert rows[WORKER]["rebuilding"] is True
    assert rows[WORKER]["linode"] == "running, rebuilding"
    kept = rows["itframe-gb-lon-worker-3"]
    assert (kept["in_spec"], kept["role"], kept["linode"]) == (
        False,
        "worker",
        "running, not in the spec",
    )
    assert list(rows)[-1] == "itframe-gb-lon-worker-3"


def test_a_root_password_given_is_set_on_new_and_rebuilt_linodes_and_never_said(world):
    server, fleet = world
    ctx = make_context(server, fleet, SOLO)
    ctx.root_password = "known-Root-pass-1"
    up(ctx)
    rebuild(ctx, "solo-eu-central-worker-1")
    assert {n.machine.root_pass for n in fleet.nodes.values()} == {"known-Root-pass-1"}
    assert "known-Root-pass-1" not in "\n".join(ctx.reporter.lines)


@pytest.mark.parametrize(("tag", "since"), [("12", 12), ("\u00b2", None), ("\u0663", None)])
def test_a_rebuild_mark_is_read_in_ascii_digits_only(tag, since):
    # A tag is anyone's to write: "²" passes str.isdigit() but int() refuses it.
    inst = Instance(
        1, "x", "eu-central", "g6-nanode-1", "running", (REBUILD_TAG + tag,), None, None
    )
    assert inst.rebuild_since == since
