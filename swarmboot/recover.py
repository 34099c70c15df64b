"""`recover`: a swarm brought back after a datacenter (or most of its managers) went down.

Raft needs a majority of the managers: lose the region that holds most of them and no
manager leads any more, so the swarm takes no change (its tasks go on running, but nothing
is scheduled, no node joins and `repair` is refused). Docker's answer is `docker swarm init
--force-new-cluster` on a surviving manager: it becomes the only member of raft, with the
swarm's state as its log has it (services, configs, secrets, networks, node labels).

`recover` is that, planned from what it observes and run by the engine `up` uses, in rounds:

1. No manager leads, some answer: the one whose raft log goes furthest is chosen (its raft
   index is named), the managers that do not answer are shut down through the API (if one
   is alive behind a partition it would hold the old swarm), and the new cluster is forced
   on the chosen one (unlocked first if autolock is on).
2. A manager leads: once it has heard from every node that answers (right after it took
   over they are `unknown` to it; a live one turns ready), the answering managers a forced
   new cluster left out of raft leave their old swarm (to join this one), and every node
   that is gone, stopped, down in the swarm, or silent (answering neither the leader nor
   SSH) is marked for a rebuild in the cloud (`rebuild:<event>`), all at once. The swarm
   would give up on a silent node only after six heartbeats (two minutes at swarmboot's
   20 s): its silence says as much, sooner.
3. `up` carries on as after any `node rebuild`: entries removed, Linodes rebuilt (or made
   again), booted, waited for, joined with their labels, managers one at a time.

Every round starts from a fresh observation, so a `recover` killed at any point is run again
and carries on: the cloud's marks and the swarm say how far it got. A swarm that has its
quorum and every node plans nothing: a second `recover` does nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from swarmboot.cluster import Context, advertise_address, observe
from swarmboot.errors import SwarmbootError
from swarmboot.membership import node_roles
from swarmboot.raft import RaftStatus
from swarmboot.readiness import unhealthy, unheard
from swarmboot.remote import RemoteError
from swarmboot.routes import NotRoutable
from swarmboot.spec import Spec
from swarmboot.state import LocalSwarm, Observed
from swarmboot.swarm import SwarmError

if TYPE_CHECKING:
    from swarmboot.apply.changes import Change

__all__ = [
    "AwaitNodes",
    "FenceNode",
    "ForceNewCluster",
    "MarkRebuild",
    "NoManagerLeft",
    "RecoverResult",
    "UnlockSwarm",
    "force_steps",
    "intent",
    "observe_recovery",
    "plan_recover",
    "quorum_lost",
    "recover",
    "refuse_lost_quorum",
]


class NoManagerLeft(SwarmbootError):
    """No manager of the swarm answers: only a backup brings its state back."""


@dataclass(frozen=True)
class FenceNode:
    label: str
    linode_id: int

    def describe(self) -> str:
        return (
            f"Shut down {self.label} (Linode {self.linode_id}): it does not answer, and if it "
            "is alive it holds the old swarm"
        )


@dataclass(frozen=True)
class UnlockSwarm:
    label: str

    def describe(self) -> str:
        return f"Unlock {self.label} (autolock) with the key from SWARMBOOT_UNLOCK_KEY"


@dataclass(frozen=True)
class ForceNewCluster:
    label: str
    advertise: str
    raft: str  # how far its raft log goes, as read

    def describe(self) -> str:
        return (
            f"Make a new swarm from {self.label}'s raft state ({self.raft}): docker swarm "
            f"init --force-new-cluster, advertising {self.advertise}"
        )


@dataclass(frozen=True)
class AwaitNodes:
    """Wait through the leader `via` until it has heard from these nodes (`until="heard"`:
    their entries say `unknown` after a new leader took over; each turns out ready, or
    down), or until they are ready again (`until="ready"`: nodes that answer and are in the
    swarm by their own view, reconnecting to the new leader)."""

    labels: tuple[str, ...]
    via: str
    until: Literal["heard", "ready"] = "heard"

    def describe(self) -> str:
        names = ", ".join(self.labels) if len(self.labels) <= 3 else f"{len(self.labels)} nodes"
        if self.until == "ready":
            verb = "is" if len(self.labels) == 1 else "are"
            return f"Wait until {names} (alive, reconnecting) {verb} ready in the swarm again"
        return f"Wait until the new leader has heard from {names} (ready, or down)"


@dataclass(frozen=True)
class MarkRebuild:
    label: str
    linode_id: int
    tags: tuple[str, ...]  # its tags now; the rebuild mark goes on top
    reason: str

    def describe(self) -> str:
        return f"Mark {self.label} for a rebuild: {self.reason}"


def _managing(local: LocalSwarm) -> bool:
    """A node that holds a manager's raft state by its own view (a locked one does too)."""
    return local.state == "locked" or (local.state == "active" and local.manager)


def quorum_lost(observed: Observed) -> bool:
    """No manager leads (the swarm's state cannot be read) while some manager answers."""
    return observed.swarm is None and any(_managing(v) for v in observed.local.values())


def refuse_lost_quorum(observed: Observed) -> None:
    """`repair` and `node rebuild` take nodes out one at a time through a leader: with the
    quorum lost there is none, and `recover` is the way."""
    if quorum_lost(observed):
        from swarmboot.plan import QuorumError

        answering = sorted(label for label, v in observed.local.items() if _managing(v))
        raise QuorumError(
            f"the swarm has lost its raft quorum: no manager leads ({', '.join(answering)} "
            "answer, too few of the managers)",
            hint="`swarmboot recover SPEC` makes a new swarm from the manager whose raft log "
            "goes furthest and rebuilds the lost nodes",
        )


def observe_recovery(ctx: Context) -> Observed:
    """The world as `observe` sees it, and, when no manager leads, how far each answering
    manager's raft log goes."""
    observed = observe(ctx)
    if not quorum_lost(observed):
        return observed
    managing = sorted(label for label, v in observed.local.items() if _managing(v))
    by_label = {i.label: i for i in observed.instances}

    def read(label: str) -> RaftStatus | None:
        try:
            return ctx.swarm.raft_status(ctx.remote(by_label[label]))
        except (RemoteError, SwarmError, NotRoutable) as exc:
            ctx.reporter.failed(f"{label}: its raft log could not be read: {exc.message}")
            return None

    found = dict(zip(managing, ctx.parallel(read, managing), strict=True))
    return replace(observed, raft={k: v for k, v in found.items() if v is not None})


def _lost_quorum_steps(spec: Spec, observed: Observed) -> list:
    managing = {label: v for label, v in observed.local.items() if _managing(v)}
    order = {n.label: i for i, n in enumerate(spec.nodes())}
    readable = [label for label in managing if label in observed.raft]
    if not readable:
        raise SwarmbootError(
            f"no manager leads and the raft logs of {', '.join(sorted(managing))} could not be "
            "read, so the one with the newest state is not known",
            hint="see the errors above; a manager's log is /var/lib/docker/swarm/raft",
        )
    chosen = max(readable, key=lambda label: (observed.raft[label], -order.get(label, len(order))))
    return force_steps(spec, observed, chosen, observed.raft[chosen].describe())


def force_steps(spec: Spec, observed: Observed, chosen: str, raft: str) -> list:
    """A new cluster forced on `chosen` (whose raft state is `raft`): the managers that do
    not answer shut down first (one alive behind a partition would hold the old swarm), and
    `chosen` unlocked first when autolock locked it. `recover` and `restore` both end so."""
    inst = observed.instance(chosen)
    assert inst is not None
    roles = node_roles(spec, observed.instances)
    steps: list = [
        FenceNode(i.label, i.id)
        for i in sorted(observed.instances, key=lambda i: i.label)
        if roles.get(i.label) == "manager"
        and i.label not in observed.reports
        and i.status == "running"
    ]
    local = observed.local.get(chosen)
    if local is not None and local.state == "locked":
        steps.append(UnlockSwarm(chosen))
    steps.append(ForceNewCluster(chosen, advertise_address(spec, inst), raft))
    return steps


def _left_out(observed: Observed) -> list[str]:
    """Answering managers that the swarm's raft does not count: left behind by a forced new
    cluster (their entry has no manager status, or there is none)."""
    swarm = observed.swarm
    assert swarm is not None
    out = []
    for label, local in sorted(observed.local.items()):
        if not _managing(local):
            continue
        entry = next((e for e in swarm.nodes if e.id == local.node_id), None)
        if entry is None or not entry.raft_member:
            out.append(label)
    return out


_SILENT = "it does not answer, and the new leader has not heard from it"


def _answers(observed: Observed, label: str) -> bool:
    """Whether the node answered this round's look (its status and its own swarm view)."""
    return label in observed.reports and label in observed.local


def plan_recover(spec: Spec, observed: Observed) -> tuple:
    """The steps of one round of `recover` (see the module's text); none when the swarm has
    a leader and every node of the spec is well or being rebuilt."""
    from swarmboot.plan import LeaveSwarm

    if observed.swarm is None:
        if quorum_lost(observed):
            return tuple(_lost_quorum_steps(spec, observed))
        if any(v.state == "active" for v in observed.local.values()):
            raise NoManagerLeft(
                "no manager of the swarm answers: its nodes are in a swarm whose managers are "
                "all lost, and only a backup of a manager's raft state brings its services, "
                "configs and secrets back",
                hint="`swarmboot restore SPEC FILE` from a `swarmboot backup`; without one, "
                "`swarmboot down` and `up` make a new, empty swarm",
            )
        raise SwarmbootError(
            f"{spec.cluster.name} has no swarm to recover: no node answers as its member",
            hint="`swarmboot up` makes the cluster (`swarmboot status` shows each node)",
        )
    # Right after a new leader took over, every other entry is `unknown` until the leader
    # hears from it (ready) or gives up on it (down, after six heartbeats). One that answers
    # is alive: it is waited for. One that answers neither is rebuilt without waiting for
    # the swarm's verdict (which would say no more than its silence does).
    unknown = unheard(observed)
    alive = tuple(label for label in unknown if _answers(observed, label))
    if alive:
        return (AwaitNodes(alive, observed.swarm.manager),)
    silent = [(label, _SILENT) for label in unknown]
    leaving = _left_out(observed)
    steps: list = [LeaveSwarm(label) for label in leaving]
    known = {e.id for e in observed.swarm.nodes}
    reconnecting = []
    for label, why in [*unhealthy(spec, observed), *silent]:
        inst = observed.instance(label)
        if label in leaving or inst is None or inst.rebuild_since is not None:
            continue  # rejoins as it is; made again by `up`; marked already
        local = observed.local.get(label)
        if label in observed.reports and local is not None:
            # It answers: never rebuilt. In no swarm (it left its old one), `up` joins it;
            # in this one by its own view, it is reconnecting to the new leader (a worker
            # backs off between tries, and the leader may give up on it first).
            if local.state == "inactive":
                continue
            if local.state in ("active", "pending") and local.node_id in known:
                reconnecting.append(label)
                continue
        steps.append(MarkRebuild(label, inst.id, inst.tags, why))
    if reconnecting:
        steps.append(AwaitNodes(tuple(reconnecting), observed.swarm.manager, until="ready"))
    return tuple(steps)


def intent(spec: Spec, observed: Observed) -> tuple[str, ...]:
    """What `recover` would do, in lines, to ask before it acts: this round's steps, and
    the nodes it will rebuild once a manager leads (those that do not answer now)."""
    steps = plan_recover(spec, observed)
    lines = [s.describe() for s in steps]
    if observed.swarm is None and steps:
        later = [
            n.label
            for n in spec.nodes()
            if n.label not in observed.reports or n.label not in observed.local
        ]
        forced = next(s.label for s in steps if isinstance(s, ForceNewCluster))
        later = [label for label in later if label != forced]
        if later:
            lines.append(
                f"Then rebuild the nodes that do not answer ({', '.join(later)}) and join "
                "them with their labels; the managers that answer leave and join again"
            )
    return tuple(lines)


@dataclass
class RecoverResult:
    observed: Observed
    steps_run: list[str]
    seconds: float
    changes: list[Change] = field(default_factory=list)  # what it changed; none if whole


def recover(
    ctx: Context, observed: Observed, *, rounds: int = 6, confirm: Callable[[], None] | None = None
) -> RecoverResult:
    """Carry out `recover` from the world as observed: rounds of `plan_recover` until a
    manager leads and every lost node is marked, then `up`. `confirm` is asked before the
    first change."""
    from swarmboot.apply import run_steps, up

    started = ctx.clock.monotonic()
    done: list[str] = []
    changes: list[Change] = []
    for _ in range(rounds):
        steps = plan_recover(ctx.spec, observed)
        if not steps:
            break
        if any(isinstance(s, UnlockSwarm) for s in steps) and ctx.unlock_key is None:
            raise SwarmbootError(
                "the swarm has autolock on and no unlock key was given: the managers that "
                "answer are locked",
                hint="set SWARMBOOT_UNLOCK_KEY to the key `docker swarm unlock-key` showed",
            )
        if confirm is not None:
            confirm()
            confirm = None
        done += run_steps(ctx, observed, steps, changes=changes)
        observed = observe_recovery(ctx)
    else:
        raise SwarmbootError(
            f"the swarm was not recovered after {rounds} rounds",
            hint="run `swarmboot recover` again; `swarmboot status` shows each node",
        )
    result = up(ctx, observed=observed)
    return RecoverResult(
        result.observed,
        done + result.steps_run,
        ctx.clock.monotonic() - started,
        changes + result.changes,
    )
