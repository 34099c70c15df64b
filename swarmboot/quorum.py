"""Raft quorum: the one rule of how many managers a swarm needs, used by `plan` (pruning,
rebuilds) and by `node rebuild` and `repair` before they take a manager out."""

from __future__ import annotations

from swarmboot.state import SwarmState

__all__ = ["has_quorum", "majority", "quorum_problem"]


def majority(managers: int) -> int:
    """The managers raft needs reachable out of `managers`."""
    return managers // 2 + 1


def has_quorum(swarm: SwarmState) -> bool:
    """Whether enough of the swarm's managers are reachable for it to take a change."""
    managers = [e for e in swarm.nodes if e.role == "manager"]
    return sum(e.reachable_manager for e in managers) >= majority(len(managers))


def quorum_problem(swarm: SwarmState | None, going: set[str]) -> str | None:
    """Why taking the nodes `going` out of the swarm would lose its raft quorum, if it would."""
    if swarm is None:
        return None
    managers = [e for e in swarm.nodes if e.role == "manager"]
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
