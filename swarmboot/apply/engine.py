"""The engine: rounds of observe, plan and run, each step given to its runner."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from swarmboot.apply import cloud_steps, stack_steps, swarm_steps, upgrade_steps
from swarmboot.apply.changes import Change
from swarmboot.apply.run import NotReadyError, Replan, Run
from swarmboot.apply.waiting import await_ca_rotation, await_nodes, bring_up, not_ready
from swarmboot.cluster import FIREWALLS, GROUPS, LINODES, SCRIPTS, VPCS, Context, observe
from swarmboot.down import DeleteCloudFirewall, DeletePlacementGroup, DeleteStackScript
from swarmboot.errors import SwarmbootError
from swarmboot.interfaces import LINODE, DeleteVpc, EnsureVpc, MarkVpc
from swarmboot.membership import surplus
from swarmboot.placement import AssignPlacementGroup, EnsurePlacementGroup, noncompliance
from swarmboot.plan import (
    Boot,
    ClearRebuildMark,
    CreateInstance,
    DeleteInstance,
    DemoteNode,
    DrainNode,
    EnsureCloudFirewall,
    EnsureNetwork,
    LabelNode,
    NotReady,
    PublishStackScript,
    RebuildInstance,
    RemoveStaleNode,
    SetHeartbeat,
    SetKernel,
    Step,
    SyncCloudFirewall,
    SyncMembers,
    WaitReady,
    plan,
)
from swarmboot.recover import AwaitNodes
from swarmboot.remote import Unreachable
from swarmboot.rotate import AwaitCARotation
from swarmboot.state import Observed
from swarmboot.swarm import SwarmError

__all__ = ["UpResult", "run_steps", "up"]

log = logging.getLogger("swarmboot.apply")

CLOUD_STEPS = (
    PublishStackScript,
    EnsureCloudFirewall,
    EnsureVpc,
    EnsurePlacementGroup,
    AssignPlacementGroup,
    CreateInstance,
    SetKernel,
    Boot,
)

_RUNNERS: dict[type, Callable[[Run, Any], None]] = {
    **cloud_steps.RUNNERS,
    **swarm_steps.RUNNERS,
    **stack_steps.RUNNERS,
    **upgrade_steps.RUNNERS,
    NotReady: not_ready,
    AwaitNodes: await_nodes,
    AwaitCARotation: await_ca_rotation,
}

# Steps that can be repeated as they are: they look before they change. Init and joins are
# not among them; the next round observes and plans them afresh.
_REPEATABLE = (
    SyncMembers,
    SyncCloudFirewall,
    RemoveStaleNode,
    LabelNode,
    EnsureNetwork,
    SetHeartbeat,
    DrainNode,
    DemoteNode,
    ClearRebuildMark,
    *upgrade_steps.REPEATABLE,
)


@dataclass
class UpResult:
    observed: Observed
    steps_run: list[str] = field(default_factory=list)
    not_ready: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    changes: list[Change] = field(default_factory=list)  # what it changed; none if converged


def _run_steps(run: Run, steps: tuple[Step, ...]) -> bool:
    """Carry the steps out; False if the round ended early (`Replan`)."""
    try:
        _carry_out(run, steps)
    except Replan as why:
        log.info("the round ends early: %s", why)
        return False
    return True


def _carry_out(run: Run, steps: tuple[Step, ...]) -> None:
    """Each step in order; the creates together (in parallel, within Linode's limit), and
    the boots with the wait for readiness."""
    creates = [s for s in steps if isinstance(s, CreateInstance)]
    boots = [s for s in steps if isinstance(s, Boot)]
    wait = next((s for s in steps if isinstance(s, WaitReady)), None)
    made = {s.label for s in creates}
    if not run.events_known and any(
        isinstance(s, RebuildInstance) or (isinstance(s, Boot) and s.label not in made)
        for s in steps
    ):
        # The events after this one tell the waits how the Linodes rebuilt and booted fare.
        # (Those of Linodes made in this run, and all after, are told by when the first of
        # them was made.)
        run.event_mark = run.call("events", run.ctx.cloud.last_event_id)
    for step in steps:
        if isinstance(step, CreateInstance):
            if step is creates[0]:
                run.ctx.parallel(lambda s: cloud_steps.create(run, s), creates)
            continue
        if isinstance(step, Boot | WaitReady):
            first = boots[0] if boots else wait
            if step is first:
                bring_up(run, boots, wait)
            continue
        _run_step(run, step)


def _run_step(run: Run, step: Step) -> None:
    try:
        _RUNNERS[type(step)](run, step)
    except (SwarmError, Unreachable) as exc:
        if not isinstance(step, _REPEATABLE):
            raise
        # An SSH connection that broke under the step (a node's sshd restarted, a network
        # blip): reconnect and try the step once more.
        log.info("retrying %r after %s", step.describe(), exc)
        for label in list(run.instances):
            run.ctx.forget(label)
        _RUNNERS[type(step)](run, step)


def run_steps(
    ctx: Context,
    observed: Observed,
    steps: tuple[Step, ...],
    *,
    changes: list[Change] | None = None,
) -> list[str]:
    """Carry out planned steps on the world as observed; what was done. What they changed
    is added to `changes` when it is given."""
    run = Run(ctx, observed)
    try:
        _run_steps(run, steps)
    finally:
        if changes is not None:
            changes.extend(run.changes)
    return run.done


_LISTS = frozenset({LINODES, SCRIPTS, FIREWALLS, GROUPS, VPCS})


def _changes(step: Step) -> frozenset[str]:
    """The lists of the cloud a step can change (a Linode made or deleted joins or leaves
    its firewall, and its placement group if it has one)."""
    if type(step) in swarm_steps.RUNNERS or type(step) in stack_steps.RUNNERS:
        return frozenset()  # the swarm's and the stacks' steps change nothing in the cloud
    if isinstance(step, (NotReady, AwaitNodes, AwaitCARotation, *upgrade_steps.SWARM_STEPS)):
        return frozenset()
    if isinstance(step, PublishStackScript | DeleteStackScript):
        return frozenset({SCRIPTS})
    if isinstance(step, EnsureCloudFirewall | SyncCloudFirewall | DeleteCloudFirewall):
        return frozenset({FIREWALLS})
    if isinstance(step, EnsurePlacementGroup | AssignPlacementGroup | DeletePlacementGroup):
        return frozenset({GROUPS})
    if isinstance(step, EnsureVpc | DeleteVpc | MarkVpc):
        return frozenset({VPCS})
    if isinstance(step, CreateInstance):
        # A Linode made in a VPC has an address there.
        return frozenset(
            {LINODES, FIREWALLS}
            | ({GROUPS} if step.placement_group else set())
            | ({VPCS} if step.vpc else set())
        )
    if isinstance(step, DeleteInstance):
        return _LISTS
    return frozenset({LINODES})  # a Linode's kernel, boot, disk, tags or power


# Steps whose changes the run records as the API answered them (`Run.instances`,
# `Run.firewalls`, `Run.published`): the look after a round of them takes the lists they
# changed from that record.
_RECORDED = (
    PublishStackScript,
    EnsureCloudFirewall,
    SyncCloudFirewall,
    CreateInstance,
    SetKernel,
    Boot,
    WaitReady,
    ClearRebuildMark,
)


def _unrecorded(step: Step) -> frozenset[str]:
    """The lists a step can change that the run does not record: a Linode made in a
    placement group leaves the group's compliance for Linode to tell, one made in a VPC its
    address there, one made with Linode interfaces the interfaces behind its firewall."""
    if isinstance(step, CreateInstance):
        return frozenset(
            ({GROUPS} if step.placement_group else set())
            | ({VPCS} if step.vpc else set())
            # Made with Linode interfaces, it is behind its firewall by its interfaces,
            # which the API's answer to the create does not name.
            | ({FIREWALLS} if step.interface_generation == LINODE else set())
        )
    return frozenset() if isinstance(step, _RECORDED) else _changes(step)


def _refresh(run: Run, steps: tuple[Step, ...] = (), *, complete: bool = False) -> Observed:
    """Look at the world again after a round of `steps`. The nodes are always read again.
    A list of the cloud is listed again only if a step could have changed it, and even then
    not when the round ran to its end (`complete`) and every step that could have changed it
    recorded the API's answers (the Linodes it made, booted and waited for, the firewalls it
    made and brought up to date, the StackScript it published): those are taken from that
    record. After a round cut short, the Linodes are always listed."""
    keep = run.observed
    if complete:
        changed = frozenset().union(*(_unrecorded(s) for s in steps))
        keep = replace(
            keep,
            instances=tuple(run.instances.values()),
            firewalls=tuple(run.firewalls.values()),
        )
    else:
        changed = frozenset({LINODES}).union(*(_changes(s) for s in steps))
    published = run.published
    if published is not None and not any(isinstance(s, DeleteStackScript) for s in steps):
        others = tuple(s for s in keep.scripts if s.id != published.id)
        keep = replace(keep, scripts=(*others, published))
        changed -= {SCRIPTS}
    unchanged = _LISTS - changed - run.relist
    run.relist.clear()
    observed = observe(run.ctx, keep=keep, unchanged=unchanged)
    # What waiting found out (a failed probe, no machine) stands until the next `up`.
    observed = replace(observed, failures={**observed.failures, **run.not_ready})
    run.observed = observed
    run.instances = {i.label: i for i in observed.instances}
    run.firewalls = {f.label: f for f in observed.firewalls}
    return observed


def _this_round(steps: tuple[Step, ...]) -> tuple[Step, ...]:
    """The steps to run before looking at the world again: up to the last rebuild (the
    nodes to rebuild leave the swarm first), else the cloud steps up to waiting for the
    nodes, else the swarm steps."""
    rebuilds = [n for n, s in enumerate(steps) if isinstance(s, RebuildInstance)]
    if rebuilds:
        return steps[: rebuilds[-1] + 1]
    cloud = tuple(s for s in steps if isinstance(s, (*CLOUD_STEPS, WaitReady)))
    return cloud or steps


def up(
    ctx: Context, *, rounds: int = 6, prune: bool = False, observed: Observed | None = None
) -> UpResult:
    """Converge the world to the spec; raise `NotReadyError` naming nodes left out.

    Each round plans from a fresh observation and runs the steps of one phase (rebuilds,
    then the cloud steps up to waiting for the nodes, then the swarm steps); a converged
    world plans nothing and ends it. With `prune`, Linodes the spec no longer has are
    drained, taken out of the swarm and deleted."""
    started = ctx.clock.monotonic()
    run = Run(ctx, observed or observe(ctx))
    for _ in range(rounds):
        steps = plan(ctx.spec, run.observed, ctx.script, prune=prune)
        for step in steps:
            if isinstance(step, NotReady) and step.label not in run.not_ready:
                not_ready(run, step)
        pending = tuple(s for s in steps if not isinstance(s, NotReady))
        if not pending:
            break
        this_round = _this_round(pending)
        try:
            complete = _run_steps(run, this_round)
        except NotReadyError as error:
            # Waiting gave up: the world as it now is and what the run changed go with the
            # error, as they do when nodes are left out, so that `up --json` shows them.
            if getattr(error, "result", None) is None:
                with contextlib.suppress(SwarmbootError, OSError):
                    _refresh(run, this_round)
                seconds = ctx.clock.monotonic() - started
                error.result = UpResult(  # type: ignore[attr-defined]
                    run.observed, run.done, run.not_ready, seconds, run.changes
                )
            raise
        _refresh(run, this_round, complete=complete)
    else:
        left = [
            s.describe()
            for s in plan(ctx.spec, run.observed, ctx.script, prune=prune)
            if not isinstance(s, NotReady)
        ]
        if left:
            raise SwarmbootError(
                f"the cluster did not converge after {rounds} rounds; still "
                f"to do: {'; '.join(left[:3])}",
                hint="rerun `swarmboot up`; if it persists, `swarmboot plan` shows what is left",
            )
    result = UpResult(
        run.observed, run.done, run.not_ready, ctx.clock.monotonic() - started, run.changes
    )
    for line in noncompliance(ctx.spec, run.observed):
        ctx.reporter.warn(line)
    kept = surplus(ctx.spec, run.observed)
    if kept and not prune:
        ctx.reporter.failed(
            f"kept {len(kept)} node(s) the spec no longer has: "
            f"{', '.join(i.label for i in kept)}; `swarmboot up --prune` removes them"
        )
    if run.not_ready:
        names = "; ".join(f"{label}: {why}" for label, why in sorted(run.not_ready.items()))
        error = NotReadyError(
            f"{len(run.not_ready)} node(s) not joined: {names}",
            hint="`swarmboot status` shows each node; a failed StackScript logs to "
            "/var/log/swarmboot-stackscript.log on it; fix and rerun `swarmboot up`",
        )
        error.result = result  # type: ignore[attr-defined]
        raise error
    return result
