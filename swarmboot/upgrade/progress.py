"""An upgrade's progress, kept in the cloud: the mode, the mark on each Linode, the run an
`upgrade` carries on or begins, what is left of it and in which order (see
swarmboot.upgrade)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from swarmboot.errors import ExitCode, SwarmbootError
from swarmboot.spec import NodePlan, Spec
from swarmboot.state import Instance, Observed
from swarmboot.upgrade.node import Kind, NodeFacts

__all__ = [
    "UPGRADE_TAG",
    "UpgradeError",
    "UpgradeMark",
    "UpgradeMode",
    "UpgradeUsage",
    "UpgradeWorld",
    "current_run",
    "on_target",
    "upgrade_mark",
    "upgrade_marks",
    "upgrade_order",
    "with_mark",
]

State = Literal["out", "upgraded", "done"]

UPGRADE_TAG = "upgrade:"
_CODES: dict[str, Kind] = {"p": "packages", "d": "docker", "i": "image"}
_CODE_OF = {kind: code for code, kind in _CODES.items()}
_MARK = re.compile(r"^upgrade:([0-9]{1,20}):([pdi]):(out|upgraded|done)$")


class UpgradeError(SwarmbootError):
    """The upgrade stopped, or was refused before it began."""


class UpgradeUsage(UpgradeError):
    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class UpgradeMode:
    kind: Kind
    image: str | None = None  # the image, for `image`

    @property
    def option(self) -> str:
        return f"--image {self.image}" if self.kind == "image" else f"--{self.kind}"


@dataclass(frozen=True)
class UpgradeMark:
    run: int
    kind: Kind
    state: State

    @property
    def tag(self) -> str:
        return f"{UPGRADE_TAG}{self.run}:{_CODE_OF[self.kind]}:{self.state}"


def upgrade_mark(tags: tuple[str, ...]) -> UpgradeMark | None:
    """A Linode's upgrade mark, None if it has none (or only one swarmboot never writes)."""
    for tag in tags:
        found = _MARK.match(tag)
        if found:
            return UpgradeMark(int(found[1]), _CODES[found[2]], found[3])  # type: ignore[arg-type]
    return None


def with_mark(tags: tuple[str, ...], mark: UpgradeMark) -> tuple[str, ...]:
    return (*(t for t in tags if not t.startswith(UPGRADE_TAG)), mark.tag)


@dataclass(frozen=True)
class UpgradeWorld:
    observed: Observed
    # The id a new run takes: the newest event id on the account.
    next_run: int
    # What the node being upgraded says about itself, once its packages are upgraded.
    facts: dict[str, NodeFacts] = field(default_factory=dict)


def upgrade_marks(spec: Spec, observed: Observed) -> dict[str, UpgradeMark]:
    out = {}
    for node in spec.nodes():
        inst = observed.instance(node.label)
        mark = upgrade_mark(inst.tags) if inst else None
        if mark is not None:
            out[node.label] = mark
    return out


def on_target(mode: UpgradeMode, inst: Instance) -> bool:
    return mode.kind == "image" and inst.image == mode.image


def current_run(
    spec: Spec, world: UpgradeWorld, mode: UpgradeMode, pinned: int | None = None
) -> tuple[int, dict[str, str]]:
    """(The run this `upgrade` carries on or begins, the nodes of the spec left to do in
    it with their mark's state, "" for none.) `pinned`: the run an `upgrade` under way
    carries out; once it is finished, nothing is left (no new run begins)."""
    observed = world.observed
    marks = upgrade_marks(spec, observed)
    nodes = [n for n in spec.nodes() if observed.instance(n.label)]
    if marks:
        newest = max(m.run for m in marks.values())
        runs = {m.kind for m in marks.values() if m.run == newest}
        kind = runs.pop()
        left = {}
        for node in nodes:
            mark = marks.get(node.label)
            inst = observed.instance(node.label)
            assert inst is not None
            if mark is not None and mark.run == newest:
                if mark.state != "done":
                    left[node.label] = mark.state
            elif not (kind == "image" and inst.image == spec.cluster.image):
                left[node.label] = ""
        if left:
            if kind != mode.kind:
                names = ", ".join(left) if len(left) <= 3 else f"{len(left)} nodes"
                raise UpgradeError(
                    f"an upgrade by {kind} (run {newest}) is unfinished: "
                    f"{names} {'is' if len(left) == 1 else 'are'} left",
                    hint=f"finish it first: `swarmboot upgrade SPEC --{kind}` carries it on",
                )
            return newest, left
        if newest == pinned:
            return newest, {}
        run = max(world.next_run, newest + 1)
    else:
        run = world.next_run
    left = {}
    for node in nodes:
        inst = observed.instance(node.label)
        assert inst is not None
        if not on_target(mode, inst):
            left[node.label] = ""
    return run, left


def upgrade_order(spec: Spec, observed: Observed, left: dict[str, str]) -> list[NodePlan]:
    """The nodes left, in the order they are upgraded: the one a run stopped at first, then
    workers and load balancers zone by zone, then the managers, the leader last."""
    nodes = [n for n in spec.nodes() if n.label in left]
    started = [n for n in nodes if left[n.label]]
    rest = []
    for zone in spec.regions:
        for role in ("worker", "lb"):
            rest += [n for n in nodes if n.region == zone and n.role == role]
    swarm = observed.swarm
    leader = next((e.hostname for e in swarm.nodes if e.leader), None) if swarm else None
    managers = [n for n in nodes if n.role == "manager"]
    rest += sorted(managers, key=lambda n: n.label == leader)
    return started + [n for n in rest if n not in started]
