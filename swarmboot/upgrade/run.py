"""Carrying `upgrade` out: observing (the world, the id a new run takes, what the node being
upgraded says of itself) and rounds of the plan run by the engine `up` uses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from swarmboot.cluster import Context, observe
from swarmboot.errors import SwarmbootError
from swarmboot.remote import RemoteError
from swarmboot.routes import NotRoutable
from swarmboot.upgrade.node import FACTS_COMMAND, parse_facts
from swarmboot.upgrade.plan import plan_upgrade
from swarmboot.upgrade.progress import UpgradeError, UpgradeMode, UpgradeWorld, current_run
from swarmboot.upgrade.steps import CarryOnRebuild, MarkUpgrade

if TYPE_CHECKING:
    from swarmboot.apply.changes import Change

__all__ = ["UpgradeResult", "observe_upgrade", "upgrade"]


def observe_upgrade(ctx: Context, mode: UpgradeMode) -> UpgradeWorld:
    """The world as `observe` sees it, the id a new run would take, and what the node an
    unfinished run has upgraded says about itself (to know whether it reboots)."""
    observed = observe(ctx)
    world = UpgradeWorld(observed, ctx.cloud.last_event_id())
    if mode.kind == "image" or observed.swarm is None:
        return world
    try:
        _, left = current_run(ctx.spec, world, mode)
    except UpgradeError:
        return world
    facts = {}
    for label, state in left.items():
        inst = observed.instance(label)
        if state != "upgraded" or inst is None:
            continue
        try:
            facts[label] = parse_facts(ctx.remote(inst).run(FACTS_COMMAND, timeout=60))
        except (RemoteError, NotRoutable):
            ctx.forget(label)
    return UpgradeWorld(observed, world.next_run, facts)


@dataclass
class UpgradeResult:
    run: int
    upgraded: list[tuple[str, float]]  # (label, seconds), in order
    steps_run: list[str]
    seconds: float
    changes: list[Change] = field(default_factory=list)


def upgrade(
    ctx: Context,
    mode: UpgradeMode,
    world: UpgradeWorld | None = None,
    *,
    confirm: Callable[[], None] | None = None,
) -> UpgradeResult:
    """Carry out `upgrade`: rounds of `plan_upgrade`, each from a fresh look, until every
    node of the run is done. `confirm` is asked before the first change. A node that fails
    stops the run: it is named, and left out (drained) and marked for the next run."""
    from swarmboot.apply import run_steps, up

    started = ctx.clock.monotonic()
    world = world or observe_upgrade(ctx, mode)
    run = current_run(ctx.spec, world, mode)[0]
    done: list[str] = []
    changes: list[Change] = []
    upgraded: list[tuple[str, float]] = []
    began: dict[str, float] = {}
    rounds = 4 * len(ctx.spec.nodes()) + 4
    for _ in range(rounds):
        steps = plan_upgrade(ctx.spec, world, mode, run)
        if not steps:
            break
        if confirm is not None:
            confirm()
            confirm = None
        label = steps[0].label
        began.setdefault(label, ctx.clock.monotonic())
        try:
            if isinstance(steps[0], CarryOnRebuild):
                ctx.reporter.ok(steps[0].describe())
                result = up(ctx)
                done += result.steps_run
                changes += result.changes
            else:
                done += run_steps(ctx, world.observed, steps, changes=changes)
        except SwarmbootError as exc:
            raise UpgradeError(
                f"the upgrade stopped at {label}, which is left out of service (drained) and "
                f"marked: {exc.message}",
                hint=f"see to {label} (`swarmboot status SPEC` shows it), then run `swarmboot "
                f"upgrade SPEC {mode.option}` again: it carries on from {label}",
            ) from exc
        if isinstance(steps[-1], MarkUpgrade) and steps[-1].mark.endswith(":done"):
            seconds = ctx.clock.monotonic() - began[label]
            upgraded.append((label, seconds))
            ctx.reporter.ok(f"Upgraded {label} in {seconds:.0f} s")
        world = observe_upgrade(ctx, mode)
    else:
        raise UpgradeError(
            f"the upgrade did not finish after {rounds} rounds",
            hint=f"run `swarmboot upgrade SPEC {mode.option}` again; `swarmboot status` "
            "shows each node",
        )
    return UpgradeResult(run, upgraded, done, ctx.clock.monotonic() - started, changes)
