"""Planning `upgrade`, pure: the refusals, the next node's steps for this round, and the
order with its warnings for `plan --upgrade` and the confirmation."""

from __future__ import annotations

from dataclasses import dataclass

from swarmboot.plan import QuorumError, node_labels, swarm_via
from swarmboot.quorum import majority, outage_problem
from swarmboot.readiness import unhealthy
from swarmboot.recover import MarkRebuild, refuse_lost_quorum
from swarmboot.spec import NodePlan, Spec
from swarmboot.state import Observed, SwarmNode
from swarmboot.upgrade.progress import (
    State,
    UpgradeError,
    UpgradeMark,
    UpgradeMode,
    UpgradeUsage,
    UpgradeWorld,
    current_run,
    on_target,
    upgrade_order,
    with_mark,
)
from swarmboot.upgrade.steps import (
    AwaitSwarm,
    AwaitUpgraded,
    CarryOnRebuild,
    CheckNode,
    MarkUpgrade,
    Reactivate,
    Reboot,
    TakeOut,
    UpgradePackages,
)

__all__ = ["Intent", "intent", "plan_upgrade"]

# Roughly how long a node is out, per mode, for the warning about a zone's only load
# balancer (drain, upgrade, a reboot, readiness; a rebuild is a fresh disk and a first boot).
_MINUTES = {"packages": 6, "docker": 3, "image": 12}


def _entry(observed: Observed, label: str) -> SwarmNode | None:
    return observed.swarm.node(label) if observed.swarm else None


def _refuse(spec: Spec, observed: Observed, mode: UpgradeMode, left: dict[str, str]) -> None:
    """The refusals that hold for the whole run: no quorum, a node not Ready, a drained
    node, managers too few to keep the quorum while one is out, a spec on another image."""
    if mode.kind == "image" and spec.cluster.image != mode.image:
        raise UpgradeUsage(
            f"--image {mode.image} is not the spec's image ({spec.cluster.image}): a rebuild "
            "takes the spec's image and script",
            hint=f'set cluster.image = "{mode.image}" (and its cluster.stackscript) in the '
            "spec, so that later rebuilds and new nodes take it too",
        )
    refuse_lost_quorum(observed)
    swarm = observed.swarm
    if swarm is None:
        raise UpgradeError(
            f"{spec.cluster.name} has no swarm to upgrade",
            hint="`swarmboot up` makes the cluster (`swarmboot status` shows each node)",
        )
    started = {label for label, state in left.items() if state}
    missing = [n.label for n in spec.nodes() if observed.instance(n.label) is None]
    if missing:
        raise UpgradeError(
            f"refusing to upgrade: {', '.join(missing)} {'has' if len(missing) == 1 else 'have'} "
            "no Linode",
            hint="`swarmboot up` makes the cluster whole first",
        )
    sick = [(label, why) for label, why in unhealthy(spec, observed) if label not in started]
    if sick:
        label, why = sick[0]
        raise UpgradeError(
            f"refusing to upgrade: {label} is not Ready ({why})",
            hint="`swarmboot repair SPEC` rebuilds it first; then run the upgrade again",
        )
    absent = [
        n.label
        for n in spec.nodes()
        if _entry(observed, n.label) is None and n.label not in started
    ]
    if absent:
        raise UpgradeError(
            f"refusing to upgrade: {', '.join(absent)} {'is' if len(absent) == 1 else 'are'} "
            "not in the swarm",
            hint="`swarmboot up` joins it first; then run the upgrade again",
        )
    for node in spec.nodes():
        entry = _entry(observed, node.label)
        if entry is not None and entry.availability != "active" and node.label not in started:
            raise UpgradeError(
                f"refusing to upgrade: {node.label} is drained, not by an upgrade",
                hint=f"make it active first (`docker node update --availability active "
                f"{node.label}` on a manager)",
            )
    members = [e for e in swarm.nodes if e.raft_member]
    if any(n.role == "manager" and n.label in left for n in spec.nodes()) and (
        len(members) - 1 < majority(len(members))
    ):
        count = len(members)
        raise QuorumError(
            f"refusing to upgrade: the swarm has {count} manager{'s' if count != 1 else ''}; "
            f"with one out, {count - 1} would answer and raft needs {majority(count)}",
            hint="a swarm keeps its quorum through a manager's upgrade with 3 managers or "
            "more: raise the manager count in the spec and run `swarmboot up` first",
        )


def _node_steps(
    spec: Spec, world: UpgradeWorld, mode: UpgradeMode, run: int, node: NodePlan, state: str
) -> tuple:
    observed = world.observed
    label = node.label
    inst = observed.instance(label)
    assert inst is not None
    entry = _entry(observed, label)
    via = swarm_via(observed, {label}) or ""

    def mark(to: State) -> MarkUpgrade:
        tag = UpgradeMark(run, mode.kind, to)
        return MarkUpgrade(label, inst.id, with_mark(inst.tags, tag), tag.tag)

    def take_out() -> list:
        return [TakeOut(label, entry.id, via)] if entry is not None else []

    finish = [
        *(
            [Reactivate(label, entry.id, via)]
            if entry is not None and entry.availability != "active"
            else []
        ),
        CheckNode(label, via, node_labels(spec, node)),
        *(
            [AwaitSwarm(tuple(n.label for n in spec.nodes()), via)]
            if node.role == "manager"
            else []
        ),
        mark("done"),
    ]
    if mode.kind == "image":
        if inst.rebuild_since is not None:
            return (CarryOnRebuild(label),)
        if on_target(mode, inst) and state == "out":
            return tuple(finish)
        out = mark("out")
        steps: list = [] if state == "out" else [out]
        steps += take_out()
        tags = out.tags
        steps.append(MarkRebuild(label, inst.id, tags, f"an upgrade onto {mode.image}"))
        return tuple(steps)
    if state in ("", "out"):
        steps = [] if state == "out" else [mark("out")]
        steps += take_out()
        steps.append(UpgradePackages(label, mode.kind))  # type: ignore[arg-type]
        steps.append(mark("upgraded"))
        return tuple(steps)
    # Upgraded: rebooted if the upgrade asks for it, then back in service.
    steps = []
    facts = world.facts.get(label)
    require = spec.cluster.require_grub_kernel
    if facts is not None and facts.reboot_wanted(require):
        why = (
            f"kernel {facts.newest} is installed, {facts.kernel} runs"
            if require and facts.newest and facts.newest != facts.kernel
            else "a package asks for it (/run/reboot-required)"
        )
        steps.append(Reboot(label, inst.id, why))
    steps.append(AwaitUpgraded(label, via))
    return (*steps, *finish)


def _manager_check(spec: Spec, observed: Observed, node: NodePlan, state: str) -> None:
    if node.role != "manager" or state:
        return
    problem = outage_problem(observed.swarm, node.label)
    if problem:
        raise QuorumError(
            f"refusing to take {node.label} out: {problem}",
            hint="bring the other managers back first (`swarmboot repair SPEC`), then run the "
            "upgrade again: it carries on",
        )


def plan_upgrade(
    spec: Spec, world: UpgradeWorld, mode: UpgradeMode, run: int | None = None
) -> tuple:
    """This round's steps: those of the next node in the order (see the module's text);
    none once every node of the run is done. `run`: the run under way (see `_run`)."""
    observed = world.observed
    run, left = current_run(spec, world, mode, run)
    _refuse(spec, observed, mode, left)
    order = upgrade_order(spec, observed, left)
    if not order:
        return ()
    node = order[0]
    _manager_check(spec, observed, node, left[node.label])
    return _node_steps(spec, world, mode, run, node, left[node.label])


def _warnings(
    spec: Spec, observed: Observed, mode: UpgradeMode, order: list[NodePlan]
) -> list[str]:
    """A load balancer alone in its zone: the zone's endpoint is down while it is out."""
    from swarmboot.lb import endpoints

    urls = endpoints(spec, observed)
    out = []
    for node in order:
        if node.role != "lb":
            continue
        others = [
            n.label
            for n in spec.nodes()
            if n.role == "lb"
            and n.region == node.region
            and n.label != node.label
            and (e := _entry(observed, n.label)) is not None
            and e.state == "ready"
            and e.availability == "active"
        ]
        if others:
            continue
        where = " ".join(urls.get(node.region, [])) or "its address"
        out.append(
            f"{node.label} is the only load balancer of {node.region}: the zone's endpoint "
            f"({where}) is down while it is upgraded, about {_MINUTES[mode.kind]} min"
        )
    return out


def _summary(spec: Spec, mode: UpgradeMode, node: NodePlan, state: str) -> str:
    if mode.kind == "image":
        doing = f"drain, rebuild onto {mode.image} with {spec.cluster.stackscript}, join, check"
    else:
        what = "upgrade its packages" if mode.kind == "packages" else "upgrade Docker"
        doing = (
            f"drain, {what}, reboot through GRUB if the kernel changed, wait until ready, "
            "reactivate, check its labels"
        )
    if state == "out":
        doing = f"carry on (it is out): {doing}"
    elif state == "upgraded":
        doing = "carry on (it is upgraded): reboot if asked, wait until ready, reactivate, check"
    role = "load balancer" if node.role == "lb" else node.role
    return f"{node.label} ({role}, {node.region}): {doing}"


@dataclass(frozen=True)
class Intent:
    run: int
    lines: tuple[str, ...]  # one per node, in order
    warnings: tuple[str, ...]
    labels: tuple[str, ...]


def intent(spec: Spec, world: UpgradeWorld, mode: UpgradeMode) -> Intent:
    """What `upgrade` would do, node by node in order, with the warnings, refused as the
    run would be (`plan --upgrade`, and what `upgrade` asks before it acts)."""
    observed = world.observed
    run, left = current_run(spec, world, mode)
    _refuse(spec, observed, mode, left)
    order = upgrade_order(spec, observed, left)
    if order:
        _manager_check(spec, observed, order[0], left[order[0].label])
    return Intent(
        run,
        tuple(_summary(spec, mode, n, left[n.label]) for n in order),
        tuple(_warnings(spec, observed, mode, order)),
        tuple(n.label for n in order),
    )
