"""`recover` against the simulator and fake nodes: a region lost with most of the managers,
the swarm forced back from the manager whose raft log goes furthest, the lost nodes rebuilt.

A node "dies" as a host would: its machine goes down (no SSH, Down in the swarm) while
Linode still says running. The fake swarm keeps raft's rule: no leader without a majority.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from swarmboot.apply import run_steps, up
from swarmboot.cluster import observe
from swarmboot.errors import ExitCode, SwarmbootError
from swarmboot.plan import QuorumError
from swarmboot.rebuild import repair
from swarmboot.recover import (
    AwaitNodes,
    FenceNode,
    ForceNewCluster,
    MarkRebuild,
    NoManagerLeft,
    UnlockSwarm,
    intent,
    observe_recovery,
    plan_recover,
    recover,
)
from swarmboot.sim.admin import SimAdmin

from .test_plan import build, load_case_spec
from .test_rebuild import _assert_converged
from .world import TOKEN, creates, make_context

EU = [
    "itframe-eu-central-manager-1",
    "itframe-eu-central-manager-2",
    "itframe-eu-central-lb-1",
    "itframe-eu-central-worker-1",
    "itframe-eu-central-worker-2",
]
FIVE = """
[cluster]
name = "five"
[regions.eu-central]
pools = [{ role = "manager", count = 3 }, { role = "worker", count = 1 }]
[regions.gb-lon]
pools = [{ role = "manager", count = 2 }, { role = "worker", count = 1 }]
"""


def _lose(fleet, labels) -> None:
    """Dead hosts: every process gone, the Linodes still running as far as Linode knows."""
    for label in labels:
        fleet.node(label).down = True


def test_a_lost_region_with_most_managers_is_recovered_and_a_second_recover_does_nothing(
    world,
):
    server, fleet = world
    up(make_context(server, fleet))
    entries_before = {e.id for e in observe(make_context(server, fleet)).swarm.nodes}
    _lose(fleet, EU)
    ctx = make_context(server, fleet)
    observed = observe_recovery(ctx)
    assert observed.swarm is None  # no leader: 1 of 3 managers answers
    with pytest.raises(QuorumError) as refused:
        repair(ctx, observed=observed)
    assert refused.value.exit_code == ExitCode.UNSAFE
    assert "`swarmboot recover SPEC`" in str(refused.value)

    steps = plan_recover(ctx.spec, observed)
    assert [type(s) for s in steps] == [FenceNode, FenceNode, ForceNewCluster]
    assert [s.label for s in steps] == [*EU[:2], "itframe-gb-lon-manager-1"]
    lines = intent(ctx.spec, observed)
    assert lines[-1].startswith(
        "Then rebuild the nodes that do not answer (itframe-eu-central-manager-1, "
        "itframe-eu-central-manager-2, itframe-eu-central-lb-1, "
    )
    asked = []
    result = recover(ctx, observed, confirm=lambda: asked.append(1))
    assert asked == [1]
    assert ("force-new-cluster", "itframe-gb-lon-manager-1") in fleet.calls
    _assert_converged(ctx, fleet)
    final = observe(ctx)
    # Every lost node rebuilt (a fresh disk and key) and joined anew: none of the old
    # entries of the lost region is left, the survivors kept theirs.
    kept = {e.id for e in final.swarm.nodes} & entries_before
    assert {e.hostname for e in final.swarm.nodes if e.id in kept} == {
        "itframe-gb-lon-manager-1",
        "itframe-gb-lon-lb-1",
        "itframe-gb-lon-worker-1",
        "itframe-gb-lon-worker-2",
    }
    assert creates(server) == 9  # rebuilt in place: no Linode made
    said = "\n".join(ctx.reporter.lines)
    assert "Make a new swarm from itframe-gb-lon-manager-1's raft state (raft index" in said
    assert said.count("Mark itframe-eu-central-") == 5
    assert result.steps_run
    again = make_context(server, fleet)
    assert plan_recover(again.spec, observe_recovery(again)) == ()
    assert recover(again, observe_recovery(again)).steps_run == []


def test_the_manager_whose_raft_log_goes_furthest_is_chosen_and_the_others_rejoin(world):
    """Five managers, three in the lost region: of the two that answer, the one whose log
    goes further is forced; the other leaves its old swarm and joins the new one."""
    server, fleet = world
    up(make_context(server, fleet, FIVE))
    fleet.node("five-gb-lon-manager-1").raft_index = 120
    fleet.node("five-gb-lon-manager-2").raft_index = 121
    _lose(fleet, ["five-eu-central-manager-1", "five-eu-central-manager-2"])
    _lose(fleet, ["five-eu-central-manager-3", "five-eu-central-worker-1"])
    ctx = make_context(server, fleet, FIVE)
    observed = observe_recovery(ctx)
    force = plan_recover(ctx.spec, observed)[-1]
    assert force == ForceNewCluster(
        "five-gb-lon-manager-2",
        fleet.node("five-gb-lon-manager-2").advertise,
        "raft index 121, commit 121, term 1",
    )
    recover(ctx, observed)
    _assert_converged(ctx, fleet, count=7)
    assert ("leave", "five-gb-lon-manager-1") in fleet.calls


def test_a_live_node_slow_to_reconnect_is_waited_for_not_rebuilt(world):
    """After the force, the leader may give up on a live worker before its agent, backing
    off, tries again: it is down for a while. It answers, so it is waited for: rebuilding
    it would take the gb-lon load balancer down for nothing."""
    server, fleet = world
    up(make_context(server, fleet))
    _lose(fleet, EU)
    fleet.reconnect_reads = {"itframe-gb-lon-lb-1": 3}
    ctx = make_context(server, fleet)
    recover(ctx, observe_recovery(ctx))
    _assert_converged(ctx, fleet)
    said = "\n".join(ctx.reporter.lines)
    assert (
        "Wait until itframe-gb-lon-lb-1 (alive, reconnecting) is ready in the swarm again" in said
    )
    assert "Mark itframe-gb-lon-lb-1" not in said
    assert said.count("Rebuild itframe-") == 5  # eu-central's, and no other


def test_recover_cut_short_after_the_force_carries_on_with_no_duplicate(world):
    """Killed between rounds (after the new cluster was forced, and again after the lost
    nodes were marked): each run starts from what the cloud and the swarm say."""
    server, fleet = world
    up(make_context(server, fleet))
    _lose(fleet, EU)
    first = make_context(server, fleet)
    observed = observe_recovery(first)
    run_steps(first, observed, plan_recover(first.spec, observed))  # the force, then gone
    second = make_context(server, fleet)
    observed = observe_recovery(second)
    # The new leader has heard from no one yet: the nodes that answer are waited for; the
    # silent ones (all of eu-central) are not, their swarm verdict would say no more.
    (wait,) = plan_recover(second.spec, observed)
    assert isinstance(wait, AwaitNodes)
    assert wait.labels == (
        "itframe-gb-lon-lb-1",
        "itframe-gb-lon-worker-1",
        "itframe-gb-lon-worker-2",
    )
    run_steps(second, observed, (wait,))
    observed = observe_recovery(second)
    marks = plan_recover(second.spec, observed)
    assert {type(s) for s in marks} == {MarkRebuild}
    assert sorted(s.label for s in marks) == sorted(EU)
    run_steps(second, observed, marks[:2])  # two marked, then gone
    third = make_context(server, fleet)
    recover(third, observe_recovery(third))
    _assert_converged(third, fleet)
    names = [i.label for i in observe(third).instances]
    assert len(names) == len(set(names)) == 9
    assert ("force-new-cluster", "itframe-gb-lon-manager-1") in fleet.calls
    assert sum(c == ("force-new-cluster", "itframe-gb-lon-manager-1") for c in fleet.calls) == 1


def test_a_locked_manager_is_unlocked_with_the_key_from_the_environment(world):
    server, fleet = world
    up(make_context(server, fleet))
    _lose(fleet, EU)
    fleet.node("itframe-gb-lon-manager-1").locked = True
    ctx = make_context(server, fleet)
    observed = observe_recovery(ctx)
    steps = plan_recover(ctx.spec, observed)
    assert [type(s) for s in steps[-2:]] == [UnlockSwarm, ForceNewCluster]
    with pytest.raises(Exception) as refused:
        recover(ctx, observed)
    assert "SWARMBOOT_UNLOCK_KEY" in str(refused.value)
    assert ("force-new-cluster", "itframe-gb-lon-manager-1") not in fleet.calls
    shutdowns = [
        r for r in SimAdmin(server.url, TOKEN).requests() if r["route"].endswith("/shutdown")
    ]
    assert shutdowns == []  # refused before anything was done
    ctx.unlock_key = fleet.unlock_key
    recover(ctx, observed)
    _assert_converged(ctx, fleet)


def test_with_every_manager_lost_recover_points_to_a_backup(world):
    server, fleet = world
    up(make_context(server, fleet))
    _lose(
        fleet, [n.label for n in make_context(server, fleet).spec.nodes() if "-manager-" in n.label]
    )
    ctx = make_context(server, fleet)
    with pytest.raises(NoManagerLeft) as refused:
        plan_recover(ctx.spec, observe_recovery(ctx))
    assert "`swarmboot restore SPEC FILE`" in str(refused.value)


CASES = sorted((Path(__file__).parent / "plan_cases" / "recover").glob("*.json"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_recover_plan_case(path):
    """The decisions of `recover`, as data: observed world + spec -> this round's steps."""
    case = json.loads(path.read_text())
    spec = load_case_spec(case)
    observed = build(spec, case["observed"])
    if "error" in case:
        with pytest.raises(SwarmbootError) as info:
            plan_recover(spec, observed)
        assert str(info.value).startswith(case["error"]), str(info.value)
        return
    steps = plan_recover(spec, observed)
    assert [s.describe() for s in steps] == case["steps"]
    for want in case.get("step_fields", []):
        (found,) = [s for s in steps if type(s).__name__ == want["step"]]
        for name, value in want.items():
            if name != "step":
                assert getattr(found, name) == value, name
