"""The engine: rounds of observe, plan and run, each step given to its runner."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from swarmboot.apply import cloud_steps, stack_steps, swarm_steps
from swarmboot.apply.changes import Change
from swarmboot.apply.run import NotReadyError, Replan, Run
from swarmboot.apply.waiting import await_nodes, bring_up, not_ready
from swarmboot.cluster import FIREWALLS, GROUPS, SCRIPTS, VPCS, Context, observe
from swarmboot.down import DeleteCloudFirewall, DeletePlacementGroup, DeleteStackScript
from swarmboot.errors import SwarmbootError
from swarmboot.interfaces import DeleteVpc, EnsureVpc
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
    SetKernel,
    Step,
    SyncCloudFirewall,
    SyncMembers,
    WaitReady,
    plan,
)
from swarmboot.recover import AwaitNodes
from swarmboot.remote import Unreachable
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
    NotReady: not_ready,
    AwaitNodes: await_nodes,
}

# Steps that can be repeated as they are: they look before they change. Init and joins are
# not among them; the next round observes and plans them afresh.
_REPEATABLE = (
    SyncMembers,
    SyncCloudFirewall,
    RemoveStaleNode,
    LabelNode,
    EnsureNetwork,
    DrainNode,
    DemoteNode,
    ClearRebuildMark,
)


@dataclass
class UpResult:
    observed: Observed
    steps_run: list[str] = field(default_factory=list)
    not_ready: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    changes: list[Change] = field(default_factory=list)  # what it changed; none if converged


def _run_steps(run: Run, steps: tuple[Step, ...]) -> None:
    try:
        _carry_out(run, steps)
    except Replan as why:
        log.info("the round ends early: %s", why)


def _carry_out(run: Run, steps: tuple[Step, ...]) -> None:
    """Each step in order; the creates together (in parallel, within Linode's limit), and
    the boots with the wait for readiness."""
    creates = [s for s in steps if isinstance(s, CreateInstance)]
    boots = [s for s in steps if isinstance(s, Boot)]
    wait = next((s for s in steps if isinstance(s, WaitReady)), None)
    if run.event_mark is None and any(
        isinstance(s, CreateInstance | RebuildInstance | Boot) for s in steps
    ):
        # The events after this one tell the waits how the Linodes made, rebuilt and
        # booted fare.
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


def _changes(step: Step) -> frozenset[str]:
    """The lists of the cloud besides the Linodes that a step can change (a Linode made or
    deleted joins or leaves its firewall, and its placement group if it has one)."""
    if isinstance(step, PublishStackScript | DeleteStackScript):
        return frozenset({SCRIPTS})
    if isinstance(step, EnsureCloudFirewall | SyncCloudFirewall | DeleteCloudFirewall):
        return frozenset({FIREWALLS})
    if isinstance(step, EnsurePlacementGroup | AssignPlacementGroup | DeletePlacementGroup):
        return frozenset({GROUPS})
    if isinstance(step, EnsureVpc | DeleteVpc):
        return frozenset({VPCS})
    if isinstance(step, CreateInstance):
        # A Linode made in a VPC has an address there.
        return frozenset(
            {FIREWALLS}
            | ({GROUPS} if step.placement_group else set())
            | ({VPCS} if step.vpc else set())
        )
    if isinstance(step, DeleteInstance):
        return frozenset({FIREWALLS, GROUPS, VPCS})
    return frozenset()


def _refresh(run: Run, steps: tuple[Step, ...] = ()) -> Observed:
    """Look at the world again after a round of `steps`: the Linodes and the nodes always,
    the StackScripts, firewalls, placement groups and VPCs only if a step could have changed
    them (else as the last look found them; a StackScript this run published, as the API
    answered it)."""
    changed = frozenset().union(*(_changes(s) for s in steps))
    keep = run.observed
    published = run.published
    if published is not None and not any(isinstance(s, DeleteStackScript) for s in steps):
        others = tuple(s for s in keep.scripts if s.id != published.id)
        keep = replace(keep, scripts=(*others, published))
        changed -= {SCRIPTS}
    unchanged = frozenset({SCRIPTS, FIREWALLS, GROUPS, VPCS}) - changed
    observed = observe(run.ctx, keep=keep, unchanged=unchanged)
    # What waiting found out (a failed probe, no machine) stands until the next `up`.
    observed = replace(observed, failures={**observed.failures, **run.not_ready})
    run.observed = observed
    run.instances.update({i.label: i for i in observed.instances})
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
        _run_steps(run, this_round)
        _refresh(run, this_round)
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
