"""Raft quorum: the one rule of how many managers a swarm needs, used by `plan` (pruning,
rebuilds, what a region's loss does), by `node rebuild`, `repair`, `recover` and `backup`
before they take a manager out, and by the spec's `survive_region_loss`.

Raft counts its members: managers whose entry has a manager status. A manager entry without
one is not a member (a promotion not carried out yet, or a manager that `docker swarm init
--force-new-cluster` left behind on another node) and counts for nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from swarmboot.state import SwarmState

__all__ = [
    "RegionLoss",
    "has_quorum",
    "majority",
    "outage_problem",
    "quorum_problem",
    "region_losses",
    "region_report",
    "region_warnings",
]


def majority(managers: int) -> int:
    """The managers raft needs reachable out of `managers`."""
    return managers // 2 + 1


def _members(swarm: SwarmState) -> list:
    return [e for e in swarm.nodes if e.raft_member]


def has_quorum(swarm: SwarmState) -> bool:
    """Whether enough of the swarm's managers are reachable for it to take a change."""
    managers = _members(swarm)
    return sum(e.reachable_manager for e in managers) >= majority(len(managers))


def quorum_problem(swarm: SwarmState | None, going: set[str]) -> str | None:
    """Why taking the nodes `going` out of the swarm would lose its raft quorum, if it would."""
    if swarm is None:
        return None
    managers = _members(swarm)
    leaving = [e for e in managers if e.hostname in going]
    if not leaving:
        return None
    names = ", ".join(sorted({e.hostname for e in leaving}))
    n = len(managers)
    reachable = [e for e in managers if e.reachable_manager]
    if len(reachable) < majority(n):
        return (
            f"the swarm has lost its raft quorum already: {len(reachable)} of its {n} managers "
            f"are reachable and raft needs {majority(n)}, so no manager can be demoted"
        )
    left = n - len(leaving)
    if left == 0:
        return (
            f"{names} is the swarm's only manager: without it the swarm's state (services, "
            "secrets, configs) is lost and every node has to join a new swarm"
        )
    left_reachable = sum(1 for e in reachable if e.hostname not in going)
    if left_reachable < majority(left):
        return (
            f"without {names}, {left_reachable} of the {left} remaining managers would be "
            f"reachable and raft needs {majority(left)}: the swarm would take no change until "
            "they are back"
        )
    return None


def outage_problem(swarm: SwarmState | None, label: str) -> str | None:
    """Why the manager `label` being unreachable for a while (drained and rebooted, still a
    member of raft: nothing is demoted) would cost the swarm its quorum, if it would: every
    other member must be reachable, and raft needs a majority of all members without it."""
    if swarm is None:
        return None
    managers = _members(swarm)
    if not any(e.hostname == label for e in managers):
        return None
    others = [e for e in managers if e.hostname != label]
    away = sorted({e.hostname for e in others if not e.reachable_manager})
    if away:
        return f"{', '.join(away)} {'is' if len(away) == 1 else 'are'} not reachable"
    n = len(managers)
    if len(others) < majority(n):
        if not others:
            return f"{label} is the swarm's only manager: the swarm takes no change without it"
        return (
            f"without {label}, {len(others)} of the {n} managers would be reachable and raft "
            f"needs {majority(n)}"
        )
    return None


@dataclass(frozen=True)
class RegionLoss:
    """What losing one region (every node in it at once) does to the managers."""

    region: str
    lost: int  # the managers in it
    left: int  # the managers elsewhere
    total: int

    @property
    def survives(self) -> bool:
        return self.left >= majority(self.total)


def region_losses(managers: Mapping[str, int]) -> tuple[RegionLoss, ...]:
    """For managers per region (in the spec's order), what each region's loss leaves."""
    total = sum(managers.values())
    return tuple(
        RegionLoss(region, count, total - count, total)
        for region, count in managers.items()
        if count
    )


def _fix(counts: Mapping[str, int]) -> str:
    total = sum(counts.values())
    if total == 1:
        return "use 3 managers, one in each of three regions"
    if total == 3:
        return "put one manager in a third region, or use 1+1+1 over three regions"
    return (
        f"spread the {total} managers over at least three regions, at most "
        f"{(total - 1) // 2} in any one"
    )


def region_report(managers: Mapping[str, int]) -> tuple[tuple[bool, str], ...]:
    """For a spec over several regions: for each region with managers, whether the swarm
    keeps its quorum when that region is lost, as a line to show (`plan`, `up`)."""
    counts = {r: c for r, c in managers.items() if c}
    total = sum(counts.values())
    layout = "+".join(str(c) for c in counts.values())
    lines = []
    for loss in region_losses(counts):
        if loss.survives:
            lines.append(
                (
                    True,
                    f"managers {layout}: losing {loss.region} keeps quorum ({loss.left} of "
                    f"{total} left, raft needs {majority(total)})",
                )
            )
        else:
            lines.append(
                (
                    False,
                    f"managers {layout}: losing {loss.region} loses quorum ({loss.left} of "
                    f"{total} left, raft needs {majority(total)}); {_fix(counts)}",
                )
            )
    return tuple(lines)


def region_warnings(managers: Mapping[str, int]) -> tuple[str, ...]:
    """One line per region whose loss would lose the swarm's raft quorum, with the fix."""
    return tuple(line for survives, line in region_report(managers) if not survives)
