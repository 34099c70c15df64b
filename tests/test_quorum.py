"""Raft quorum over regions: which one region's loss the managers survive, and the spec's
`survive_region_loss`; managers that a forced new cluster left behind count for nothing."""

from __future__ import annotations

import pytest

from swarmboot.quorum import has_quorum, quorum_problem, region_report, region_warnings
from swarmboot.spec import SpecError, parse_spec
from swarmboot.state import SwarmNode, SwarmState

from .conftest import REPO

EXAMPLE = (REPO / "examples" / "itframe.toml").read_text()


@pytest.mark.parametrize(
    ("managers", "lost"),
    [
        ({"eu-central": 2, "gb-lon": 1}, ["eu-central"]),
        ({"eu-central": 1, "gb-lon": 1, "fr-par": 1}, []),
        ({"eu-central": 3, "gb-lon": 2}, ["eu-central"]),
        ({"eu-central": 2, "gb-lon": 2, "fr-par": 1}, []),
        ({"eu-central": 3, "gb-lon": 1, "fr-par": 1}, ["eu-central"]),
        ({"eu-central": 1}, ["eu-central"]),
        ({"eu-central": 3, "gb-lon": 0}, ["eu-central"]),
    ],
)
def test_which_regions_loss_the_managers_survive(managers, lost):
    report = region_report(managers)
    assert [line.split()[3] for survives, line in report if not survives] == lost
    assert len(report) == sum(1 for c in managers.values() if c)


def test_the_lines_name_the_region_the_count_and_the_fix():
    assert region_report({"eu-central": 2, "gb-lon": 1}) == (
        (
            False,
            "managers 2+1: losing eu-central loses quorum (1 of 3 left, raft needs 2); put one "
            "manager in a third region, or use 1+1+1 over three regions",
        ),
        (True, "managers 2+1: losing gb-lon keeps quorum (2 of 3 left, raft needs 2)"),
    )
    assert region_warnings({"a-b": 3, "c-d": 2}) == (
        "managers 3+2: losing a-b loses quorum (2 of 5 left, raft needs 3); spread the 5 "
        "managers over at least three regions, at most 2 in any one",
    )


def test_a_spec_can_require_surviving_any_one_region():
    wanted = EXAMPLE.replace('name = "itframe"', 'name = "itframe"\nsurvive_region_loss = true', 1)
    with pytest.raises(SpecError) as refused:
        parse_spec(wanted, source="itframe.toml")
    assert str(refused.value) == (
        "itframe.toml: cluster.survive_region_loss: managers 2+1: losing eu-central loses "
        "quorum (1 of 3 left, raft needs 2); put one manager in a third region, or use 1+1+1 "
        "over three regions"
    )
    three = (
        wanted.replace('{ role = "manager", count = 2 }', '{ role = "manager", count = 1 }')
        + '\n[regions.fr-par]\npools = [{ role = "manager", count = 1 }]\n'
    )
    assert parse_spec(three).managers_by_region() == {"eu-central": 1, "gb-lon": 1, "fr-par": 1}


def _node(name: str, role: str, state: str, reachability: str) -> SwarmNode:
    return SwarmNode(name, name, role, state, "active", "", (), False, reachability)


def test_managers_a_forced_new_cluster_left_behind_are_not_in_raft():
    """After `docker swarm init --force-new-cluster`, the old managers' entries keep the
    manager role without a manager status: the one that was forced is the whole of raft."""
    forced = SwarmState(
        "m3",
        (
            _node("m1", "manager", "down", ""),
            _node("m2", "manager", "down", ""),
            _node("m3", "manager", "ready", "reachable"),
        ),
    )
    assert has_quorum(forced)
    assert quorum_problem(forced, {"m1", "m2"}) is None
    lost = SwarmState(
        "m3",
        (
            _node("m1", "manager", "down", "unreachable"),
            _node("m2", "manager", "down", "unreachable"),
            _node("m3", "manager", "ready", "reachable"),
        ),
    )
    assert not has_quorum(lost)


def test_a_manager_out_for_a_while_needs_every_other_one_and_a_majority_without_it():
    from swarmboot.quorum import outage_problem
    from swarmboot.state import SwarmNode, SwarmState

    def swarm(*states: str) -> SwarmState:
        return SwarmState(
            "m1",
            tuple(
                SwarmNode(f"id{n}", f"m{n}", "manager", "ready", "active", "", (), n == 1, s)
                for n, s in enumerate(states, start=1)
            ),
        )

    assert outage_problem(swarm("reachable", "reachable", "reachable"), "m3") is None
    assert outage_problem(swarm("reachable", "unreachable", "reachable"), "m3") == (
        "m2 is not reachable"
    )
    assert outage_problem(swarm("reachable"), "m1") == (
        "m1 is the swarm's only manager: the swarm takes no change without it"
    )
    assert outage_problem(swarm("reachable", "reachable"), "m2") == (
        "without m2, 1 of the 2 managers would be reachable and raft needs 2"
    )
    assert outage_problem(swarm("reachable", "reachable", "reachable"), "w1") is None
