"""`node rebuild` and `repair`: a node replaced without hurting the swarm.

A rebuild is decided by a mark in the cloud (a `rebuild:<event id>` tag on the Linode); from
then on the ordinary plan carries it out: drain, demote, remove the swarm entries, rebuild the
Linode with a new pinned host key, set the kernel, boot, wait, join with the same role and
labels, bring every member set up to date, and drop the mark. A run cut short at any point is
carried on by the next `node rebuild`, `repair` or `up`. A Linode that is gone is made again.
`repair` finds the nodes that are Down in the swarm or not running in Linode and rebuilds
them one at a time, each only if the swarm keeps its raft quorum.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from swarmboot.apply import Change, NotReadyError, UpResult, run_steps, up
from swarmboot.cluster import Context, observe
from swarmboot.errors import ExitCode, SwarmbootError
from swarmboot.plan import QuorumError, rebuild_prep
from swarmboot.quorum import quorum_problem
from swarmboot.readiness import unhealthy
from swarmboot.recover import MarkRebuild, refuse_lost_quorum
from swarmboot.state import Observed

__all__ = ["RepairResult", "UnknownNode", "rebuild", "repair", "unhealthy"]


class UnknownNode(SwarmbootError):
    exit_code = ExitCode.USAGE


@dataclass
class RepairResult:
    repaired: list[tuple[str, str, float]]  # (label, why, seconds)
    observed: Observed
    changes: list[Change] = field(default_factory=list)  # every rebuild's, in order


def rebuild(
    ctx: Context, label: str, *, force: bool = False, observed: Observed | None = None
) -> UpResult:
    """Rebuild one node of the spec (alive, unreachable or gone) and bring it back."""
    spec = ctx.spec
    node = next((n for n in spec.nodes() if n.label == label), None)
    if node is None:
        names = ", ".join(n.label for n in spec.nodes()[:3])
        raise UnknownNode(
            f"{label} is not a node of {ctx.spec_path} (its nodes are {names}, …)",
            hint="give the label of one of the spec's nodes; `swarmboot up --prune` deletes "
            "Linodes the spec no longer has",
        )
    started = ctx.clock.monotonic()
    observed = observed or observe(ctx)
    refuse_lost_quorum(observed)
    inst = observed.instance(label)
    if inst is None or inst.rebuild_since is None:
        problem = quorum_problem(observed.swarm, {label})
        if problem and not force:
            raise QuorumError(
                f"refusing to rebuild {label}: {problem}",
                hint="rebuild the managers that are down first (`swarmboot repair`), or pass "
                "--force to rebuild it anyway",
            )
        if problem:
            ctx.reporter.failed(f"rebuilding {label} although {problem} (--force)")
    before: list[Change] = []  # what is done before `up` takes over
    if inst is None:
        # Gone: its swarm entries go now, and the plan makes the Linode again.
        run_steps(ctx, observed, tuple(rebuild_prep(observed, label)), changes=before)
        ctx.reporter.ok(f"{label}'s Linode is gone: it is made again")
    elif inst.rebuild_since is None:
        steps = (MarkRebuild(label, inst.id, inst.tags, "asked for"),)
        run_steps(ctx, observed, steps, changes=before)
    else:
        ctx.reporter.ok(f"Carrying on with the rebuild of {label}")
    try:
        result = up(ctx)
    except NotReadyError as error:
        # Another node not ready (another dead one, which `repair` takes next) does not
        # make this rebuild fail, once this node is back in the swarm; anything else does.
        result = getattr(error, "result", None)
        if result is None or label in result.not_ready or not _back(result.observed, label):
            raise
    result.seconds = ctx.clock.monotonic() - started
    result.changes = [*before, *result.changes]
    return result


def _back(observed: Observed, label: str) -> bool:
    """Whether the node is a ready member of the swarm, with no rebuild mark left."""
    inst = observed.instance(label)
    swarm = observed.swarm
    return (
        inst is not None
        and inst.rebuild_since is None
        and swarm is not None
        and any(e.hostname == label and e.state == "ready" for e in swarm.nodes)
    )


def repair(ctx: Context, *, force: bool = False, observed: Observed | None = None) -> RepairResult:
    """Rebuild each node that is Down in the swarm or not running in Linode, one at a time,
    from the world as each rebuild's `up` left it (one observation per rebuild)."""
    repaired: list[tuple[str, str, float]] = []
    tried: set[str] = set()
    observed = observed or observe(ctx)
    refuse_lost_quorum(observed)
    if not observed.instances:
        raise SwarmbootError(
            f"{ctx.spec.cluster.name} has no Linode tagged {ctx.spec.tag}: nothing to repair",
            hint="`swarmboot up` makes the cluster",
        )
    changes: list[Change] = []
    while True:
        todo = [(label, why) for label, why in unhealthy(ctx.spec, observed) if label not in tried]
        if not todo:
            return RepairResult(repaired, observed, changes)
        label, why = todo[0]
        tried.add(label)
        ctx.reporter.ok(f"Repairing {label}: {why}")
        result = rebuild(ctx, label, force=force, observed=observed)
        repaired.append((label, why, result.seconds))
        changes.extend(result.changes)
        ctx.reporter.ok(f"Rebuilt {label} in {result.seconds:.0f} s")
        observed = result.observed
