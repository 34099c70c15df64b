"""`upgrade`: the cluster's nodes upgraded one at a time, the swarm serving throughout.

Modes: `packages` (apt-get dist-upgrade over SSH), `docker` (Docker's packages only, an
`apt-get install --only-upgrade`), `image` (each node rebuilt onto the spec's new image with
its script, as `node rebuild` does).

The order: workers and load balancers zone by zone (the spec's regions in order; in each,
the workers, then the load balancers), managers last (the leader last of all). Each node:

1. marked in the cloud as taken out (`upgrade:<run>:<mode>:out`), drained, and waited for
   until its tasks run elsewhere (no task left on it; every replicated service that had one
   there back at its full count): Docker's drain does not wait, swarmboot does;
2. upgraded (apt-get, non-interactive, keeping the node's own configuration files; or
   rebuilt), then marked `upgraded`;
3. rebooted through GRUB (the Linode's reboot with its config profile, whose kernel is
   `linode/grub2`) when the upgrade asks for it: a newer kernel installed than the one
   running, or /run/reboot-required;
4. waited for until it is ready as `up` has it (the distribution kernel, and the newest one
   installed; the vxlan probe; Docker answers; Ready in the swarm), its status file brought
   up to date, made active again, checked to be Ready and active with its labels, and
   marked `done`.

A node is taken out only while the rest can carry its work: a manager only while every
other manager is reachable and raft keeps its majority without it; a load balancer while
its zone has another one Ready, or else with a warning naming the zone's endpoint and about
how long it is down. Before anything, the run is refused while the swarm has no quorum
(`recover`) or a node is not Ready (`repair`).

The run's progress is in the cloud, on each node's Linode, in one tag:

    upgrade:<run>:<p|d|i>:<out|upgraded|done>

`<run>` is the newest event id on the account when the run began (above every earlier
run's), `p`/`d`/`i` the mode. A run is unfinished while a node of the spec lacks its
`done`: `upgrade` carries that run on (with the same mode; another mode is refused), the
node it stopped at first, and leaves the nodes marked `done` alone. Once every node is
`done` the marks stay, as the record of the last run, until the next run replaces them
node by node. Each round observes the world afresh, so an `upgrade` killed at any point is
run again and carries on.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from swarmboot.cluster import Context, observe
from swarmboot.errors import ExitCode, SwarmbootError
from swarmboot.plan import QuorumError, node_labels, swarm_via
from swarmboot.quorum import majority, outage_problem
from swarmboot.readiness import unhealthy
from swarmboot.recover import MarkRebuild, refuse_lost_quorum
from swarmboot.remote import RemoteError
from swarmboot.routes import NotRoutable
from swarmboot.spec import NodePlan, Spec
from swarmboot.state import Instance, Observed, SwarmNode

if TYPE_CHECKING:
    from swarmboot.apply.changes import Change

__all__ = [
    "DOCKER_PACKAGES",
    "FACTS_COMMAND",
    "FLAG_COMMAND",
    "REBOOT_FLAG",
    "UPGRADE_LOG",
    "UPGRADE_TAG",
    "AwaitSwarm",
    "AwaitUpgraded",
    "CarryOnRebuild",
    "CheckNode",
    "Intent",
    "MarkUpgrade",
    "NodeFacts",
    "Reactivate",
    "Reboot",
    "TakeOut",
    "UpgradeError",
    "UpgradeMark",
    "UpgradeMode",
    "UpgradePackages",
    "UpgradeResult",
    "UpgradeWorld",
    "intent",
    "observe_upgrade",
    "parse_facts",
    "plan_upgrade",
    "upgrade",
    "upgrade_command",
    "upgrade_mark",
]

Kind = Literal["packages", "docker", "image"]
State = Literal["out", "upgraded", "done"]

UPGRADE_TAG = "upgrade:"
_CODES: dict[str, Kind] = {"p": "packages", "d": "docker", "i": "image"}
_CODE_OF = {kind: code for code, kind in _CODES.items()}
_MARK = re.compile(r"^upgrade:([0-9]{1,20}):([pdi]):(out|upgraded|done)$")

# Docker's packages, from Docker's repository and from Debian's: those installed are
# upgraded, the others skipped (`--only-upgrade` installs nothing new).
DOCKER_PACKAGES = (
    "docker-ce",
    "docker-ce-cli",
    "containerd.io",
    "docker.io",
    "docker-cli",
    "containerd",
    "runc",
)
# Left on /run (a tmpfs) before a reboot: the node is back once SSH answers without it.
REBOOT_FLAG = "/run/swarmboot/upgrade-reboot"
FLAG_COMMAND = f"mkdir -p /run/swarmboot && touch {REBOOT_FLAG}"
# Roughly how long a node is out, per mode, for the warning about a zone's only load
# balancer (drain, upgrade, a reboot, readiness; a rebuild is a fresh disk and a first boot).
_MINUTES = {"packages": 6, "docker": 3, "image": 12}


class UpgradeError(SwarmbootError):
    """The upgrade stopped, or was refused before it began."""


class UpgradeUsage(UpgradeError):
    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class UpgradeMode:
    kind: Kind
    image: str | None = None  # the image, for `image`

    @property
    def code(self) -> str:
        return _CODE_OF[self.kind]

    @property
    def option(self) -> str:
        return f"--image {self.image}" if self.kind == "image" else f"--{self.kind}"

    def what(self) -> str:
        if self.kind == "packages":
            return "upgrade its packages (apt-get dist-upgrade)"
        if self.kind == "docker":
            return "upgrade Docker's packages"
        return f"rebuild it onto {self.image}"


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


def _marked(tags: tuple[str, ...], mark: UpgradeMark) -> tuple[str, ...]:
    return (*(t for t in tags if not t.startswith(UPGRADE_TAG)), mark.tag)


# --- what a node says about itself -------------------------------------------------------

FACTS_COMMAND = (
    "release=$(uname -r); "
    "newest=$(find /boot -maxdepth 1 -name 'vmlinuz-*' -printf '%f\\n' 2>/dev/null "
    "| sed 's/^vmlinuz-//' | sort -V | tail -n 1); "
    'distro=no; [ "$(dpkg-query -W -f=\'${db:Status-Status}\' "linux-image-$release" '
    '2>/dev/null)" = installed ] && distro=yes; '
    "required=no; [ -e /run/reboot-required ] && required=yes; "
    "ip link del swbupgrade0 >/dev/null 2>&1; vxlan=no; "
    "if ip link add swbupgrade0 type vxlan id 4243 dstport 4789 dev lo >/dev/null 2>&1; "
    "then ip link del swbupgrade0; vxlan=yes; fi; "
    "docker=$(timeout 20 docker version --format '{{.Server.Version}}' 2>/dev/null); "
    "printf 'kernel=%s\\nnewest=%s\\ndistro=%s\\nreboot_required=%s\\nvxlan=%s\\ndocker=%s\\n' "
    '"$release" "$newest" "$distro" "$required" "$vxlan" "$docker"'
)


@dataclass(frozen=True)
class NodeFacts:
    """What a node says about its kernel, vxlan and Docker (FACTS_COMMAND)."""

    kernel: str
    newest: str | None  # the newest kernel in /boot
    distro: bool  # the running kernel is a Debian package installed on the node
    reboot_required: bool  # /run/reboot-required: a package asks for a reboot
    vxlan: bool
    docker: str | None  # the daemon's version, None if it does not answer

    def reboot_wanted(self, require_distro_kernel: bool) -> bool:
        """Whether the upgrade asks for a reboot: a package says so, or (where the kernel is
        the node's own) a newer kernel is installed than the one running."""
        newer = self.newest is not None and self.newest != self.kernel
        return self.reboot_required or (require_distro_kernel and newer)

    def problems(self, require_distro_kernel: bool) -> tuple[str, ...]:
        """What keeps the node from being ready after its upgrade; empty when it is."""
        found = []
        if require_distro_kernel and not self.distro:
            found.append(f"it runs kernel {self.kernel}, which is not the distribution's")
        elif require_distro_kernel and self.newest and self.newest != self.kernel:
            found.append(f"it runs kernel {self.kernel}, not the newest installed ({self.newest})")
        if not self.vxlan:
            found.append("the vxlan probe did not pass")
        if not self.docker:
            found.append("Docker does not answer")
        return tuple(found)


def parse_facts(text: str) -> NodeFacts:
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    return NodeFacts(
        kernel=values.get("kernel", "").strip(),
        newest=values.get("newest", "").strip() or None,
        distro=values.get("distro", "").strip() == "yes",
        reboot_required=values.get("reboot_required", "").strip() == "yes",
        vxlan=values.get("vxlan", "").strip() == "yes",
        docker=values.get("docker", "").strip() or None,
    )


# Where the upgrade's apt-get writes on the node (its tail is in the error when it fails).
UPGRADE_LOG = "/var/log/swarmboot-upgrade.log"


def upgrade_command(kind: Kind) -> str:
    """The apt-get run on a node: non-interactive, its own configuration files kept, in a
    session of its own writing to UPGRADE_LOG, so that an `upgrade` killed meanwhile (its SSH
    connection gone) does not kill dpkg halfway; the next run waits for its lock, and first
    finishes what an interrupted dpkg left unconfigured."""
    apt = (
        "apt-get -q -y -o DPkg::Lock::Timeout=900 -o Dpkg::Options::=--force-confdef "
        "-o Dpkg::Options::=--force-confold"
    )
    if kind == "packages":
        what = f"{apt} dist-upgrade"
    else:
        what = f"{apt} install --only-upgrade {' '.join(DOCKER_PACKAGES)}"
    script = (
        "export DEBIAN_FRONTEND=noninteractive; "
        "dpkg --configure -a >/dev/null 2>&1 || true; "
        f"apt-get -q -o DPkg::Lock::Timeout=900 update && {what}"
    )
    return (
        f"setsid --wait sh -c {shlex.quote(script)} >{UPGRADE_LOG} 2>&1 </dev/null; "
        f"rc=$?; tail -n 5 {UPGRADE_LOG}; exit $rc"
    )


# --- the steps ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MarkUpgrade:
    label: str
    linode_id: int
    tags: tuple[str, ...]  # its tags with the mark
    mark: str

    def describe(self) -> str:
        state = self.mark.rsplit(":", 1)[1]
        text = {
            "out": "taken out for its upgrade",
            "upgraded": "upgraded",
            "done": "done, back in service",
        }[state]
        return f"Mark {self.label} {text} ({self.mark})"


@dataclass(frozen=True)
class TakeOut:
    label: str
    node_id: str
    via: str

    def describe(self) -> str:
        return (
            f"Drain {self.label} and wait until its tasks run elsewhere (replicated services "
            "at full count)"
        )


@dataclass(frozen=True)
class UpgradePackages:
    label: str
    kind: Literal["packages", "docker"]

    def describe(self) -> str:
        if self.kind == "packages":
            return f"Upgrade the packages of {self.label} (apt-get dist-upgrade)"
        return f"Upgrade Docker on {self.label} (apt-get install --only-upgrade)"


@dataclass(frozen=True)
class Reboot:
    label: str
    linode_id: int
    why: str

    def describe(self) -> str:
        return f"Reboot {self.label} through GRUB: {self.why}"


@dataclass(frozen=True)
class AwaitUpgraded:
    label: str
    via: str

    def describe(self) -> str:
        return (
            f"Wait until {self.label} is ready: the distribution kernel, vxlan, Docker, Ready "
            "in the swarm"
        )


@dataclass(frozen=True)
class Reactivate:
    label: str
    node_id: str
    via: str

    def describe(self) -> str:
        return f"Reactivate {self.label} (availability active)"


@dataclass(frozen=True)
class CheckNode:
    label: str
    via: str
    labels: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        text = ", ".join(f"{k}={v}" for k, v in self.labels)
        return f"Check that {self.label} is Ready and active with its labels ({text})"


@dataclass(frozen=True)
class AwaitSwarm:
    """After a manager's upgrade: the leadership may have moved (the leader restarted), and
    a new leader knows the other nodes only once each has reached it."""

    labels: tuple[str, ...]
    via: str

    def describe(self) -> str:
        return (
            f"Wait until all {len(self.labels)} nodes are Ready to the swarm's leader again "
            "(a manager's restart may move the leadership)"
        )


@dataclass(frozen=True)
class CarryOnRebuild:
    """The node's rebuild is marked: `up` carries it out (as after `node rebuild`)."""

    label: str

    def describe(self) -> str:
        return f"Rebuild {self.label} as marked and join it again (as `swarmboot up` does)"


# --- observing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class UpgradeWorld:
    observed: Observed
    # The id a new run takes: the newest event id on the account.
    next_run: int
    # What the node being upgraded says about itself, once its packages are upgraded.
    facts: dict[str, NodeFacts] = field(default_factory=dict)


def _marks(spec: Spec, observed: Observed) -> dict[str, UpgradeMark]:
    out = {}
    for node in spec.nodes():
        inst = observed.instance(node.label)
        mark = upgrade_mark(inst.tags) if inst else None
        if mark is not None:
            out[node.label] = mark
    return out


def _on_target(mode: UpgradeMode, inst: Instance) -> bool:
    return mode.kind == "image" and inst.image == mode.image


def _run(
    spec: Spec, world: UpgradeWorld, mode: UpgradeMode, pinned: int | None = None
) -> tuple[int, dict[str, str]]:
    """(The run this `upgrade` carries on or begins, the nodes of the spec left to do in
    it with their mark's state, "" for none.) `pinned`: the run an `upgrade` under way
    carries out; once it is finished, nothing is left (no new run begins)."""
    observed = world.observed
    marks = _marks(spec, observed)
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
        if not _on_target(mode, inst):
            left[node.label] = ""
    return run, left


def _order(spec: Spec, observed: Observed, left: dict[str, str]) -> list[NodePlan]:
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


def observe_upgrade(ctx: Context, mode: UpgradeMode) -> UpgradeWorld:
    """The world as `observe` sees it, the id a new run would take, and what the node an
    unfinished run has upgraded says about itself (to know whether it reboots)."""
    observed = observe(ctx)
    world = UpgradeWorld(observed, ctx.cloud.last_event_id())
    if mode.kind == "image" or observed.swarm is None:
        return world
    try:
        _, left = _run(ctx.spec, world, mode)
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


# --- planning ----------------------------------------------------------------------------


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
        return MarkUpgrade(label, inst.id, _marked(inst.tags, tag), tag.tag)

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
        if _on_target(mode, inst) and state == "out":
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
    run, left = _run(spec, world, mode, run)
    _refuse(spec, observed, mode, left)
    order = _order(spec, observed, left)
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
    run, left = _run(spec, world, mode)
    _refuse(spec, observed, mode, left)
    order = _order(spec, observed, left)
    if order:
        _manager_check(spec, observed, order[0], left[order[0].label])
    return Intent(
        run,
        tuple(_summary(spec, mode, n, left[n.label]) for n in order),
        tuple(_warnings(spec, observed, mode, order)),
        tuple(n.label for n in order),
    )


# --- carrying it out ---------------------------------------------------------------------


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
    run = _run(ctx.spec, world, mode)[0]
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
