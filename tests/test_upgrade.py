"""`upgrade` against the simulator and fake nodes: every node upgraded once, one at a time,
workers and load balancers zone by zone, managers last; a run cut short carried on; a node
that fails left out and named; the refusals. And its plan cases, as data."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from swarmboot.apply import run_steps, up
from swarmboot.cluster import observe
from swarmboot.errors import ExitCode, SwarmbootError
from swarmboot.status import status_rows
from swarmboot.upgrade import (
    MarkUpgrade,
    NodeFacts,
    UpgradeError,
    UpgradeMode,
    UpgradeWorld,
    intent,
    observe_upgrade,
    parse_facts,
    plan_upgrade,
    upgrade,
    upgrade_mark,
)

from .test_plan import build, load_case_spec
from .test_rebuild import _assert_converged
from .world import make_context

PACKAGES = UpgradeMode("packages")
ORDER = [
    "itframe-eu-central-worker-1",
    "itframe-eu-central-worker-2",
    "itframe-eu-central-lb-1",
    "itframe-gb-lon-worker-1",
    "itframe-gb-lon-worker-2",
    "itframe-gb-lon-lb-1",
    "itframe-eu-central-manager-2",
    "itframe-gb-lon-manager-1",
    "itframe-eu-central-manager-1",  # the leader, last
]


def _upgrades(fleet) -> list[str]:
    return [label for call, label in fleet.calls if call == "upgrade"]


def _marks(ctx) -> dict[str, str]:
    return {
        i.label: mark.state
        for i in observe(ctx).instances
        if (mark := upgrade_mark(i.tags)) is not None
    }


def test_every_node_is_upgraded_once_in_order_and_rebooted_onto_its_new_kernel(world):
    server, fleet = world
    up(make_context(server, fleet))
    fleet.new_kernel = "6.1.0-57-amd64"
    ctx = make_context(server, fleet)
    world_ = observe_upgrade(ctx, PACKAGES)
    planned = intent(ctx.spec, world_, PACKAGES)
    assert list(planned.labels) == ORDER
    assert planned.warnings == (
        "itframe-eu-central-lb-1 is the only load balancer of eu-central: the zone's endpoint "
        f"(http://{observe(ctx).instance('itframe-eu-central-lb-1').ipv4_public}:80) is down "
        "while it is upgraded, about 6 min",
        "itframe-gb-lon-lb-1 is the only load balancer of gb-lon: the zone's endpoint "
        f"(http://{observe(ctx).instance('itframe-gb-lon-lb-1').ipv4_public}:80) is down "
        "while it is upgraded, about 6 min",
    )
    asked = []
    result = upgrade(ctx, PACKAGES, world_, confirm=lambda: asked.append(1))
    assert asked == [1]
    assert _upgrades(fleet) == ORDER
    assert [label for label, _ in result.upgraded] == ORDER
    for label in ORDER:
        node = fleet.node(label)
        assert node.kernel == "6.1.0-57-amd64" and node.boots == 2
        assert fleet.swarm_nodes[node.node_id].availability == "active"
        status = json.loads(node.files["/var/lib/swarmboot/status.json"])
        assert status["kernel_release"] == "6.1.0-57-amd64"
    # Each node drained and back before the next was drained.
    moves = [(c, label) for c, label in fleet.calls if c in ("drain", "activate")]
    assert moves == [(c, label) for label in ORDER for c in ("drain", "activate")]
    assert set(_marks(ctx).values()) == {"done"}
    # The last manager's reboot moved the leadership: the run ended once the new leader had
    # every node Ready again.
    assert {e.state for e in observe(ctx).swarm.nodes} == {"ready"}
    _assert_converged(ctx, fleet)
    said = "\n".join(ctx.reporter.lines)
    assert "Wait until all 9 nodes are Ready to the swarm's leader again" in said
    assert (
        "Reboot itframe-gb-lon-worker-1 through GRUB: kernel 6.1.0-57-amd64 is installed, "
        "6.1.0-56-amd64 runs" in said
    )
    assert "Upgraded itframe-eu-central-manager-1 in " in said


def test_a_service_running_only_on_the_node_is_rolled_off_before_the_drain(world):
    """Its tasks would all stop at once in a drain: the node is paused and the service
    rolled (one task at a time), then the node drained, and made active again after."""
    server, fleet = world
    up(make_context(server, fleet))
    fleet.sole = {"itframe-gb-lon-worker-2": ("itframe_app-gb-lon",)}
    ctx = make_context(server, fleet)
    upgrade(ctx, PACKAGES)
    worker = [c for c in fleet.calls if c[1] in ("itframe-gb-lon-worker-2", "itframe_app-gb-lon")]
    assert [c for c in worker if c[0] in ("pause", "roll", "drain", "upgrade", "activate")] == [
        ("pause", "itframe-gb-lon-worker-2"),
        ("roll", "itframe_app-gb-lon"),
        ("drain", "itframe-gb-lon-worker-2"),
        ("upgrade", "itframe-gb-lon-worker-2"),
        ("activate", "itframe-gb-lon-worker-2"),
    ]
    assert "✓ Moved itframe_app-gb-lon off itframe-gb-lon-worker-2, one task at a time" in (
        ctx.reporter.lines
    )
    _assert_converged(ctx, fleet)


def test_without_a_new_kernel_no_node_is_rebooted(world):
    server, fleet = world
    up(make_context(server, fleet))
    ctx = make_context(server, fleet)
    upgrade(ctx, UpgradeMode("docker"))
    assert all(fleet.node(label).boots == 1 for label in ORDER)
    assert all(fleet.node(label).upgrades == ["docker"] for label in ORDER)


def test_a_run_cut_short_at_any_point_is_carried_on_and_upgrades_each_node_once(world):
    """Killed after the first round of a node (marked, drained, upgraded), then after the
    mark alone: each rerun starts from the cloud's marks and the swarm."""
    server, fleet = world
    up(make_context(server, fleet))
    fleet.new_kernel = "6.1.0-57-amd64"
    first = make_context(server, fleet)
    upgrade_rounds(first, 5)  # two nodes done, the third's first round
    second = make_context(server, fleet)
    world_ = observe_upgrade(second, PACKAGES)
    assert intent(second.spec, world_, PACKAGES).labels[0] == ORDER[2]
    steps = plan_upgrade(second.spec, world_, PACKAGES)
    assert steps[0].describe().startswith("Reboot itframe-eu-central-lb-1 through GRUB")
    run_steps(second, world_.observed, steps[:1])  # rebooted, then gone
    third = make_context(server, fleet)
    world_ = observe_upgrade(third, PACKAGES)
    steps = plan_upgrade(third.spec, world_, PACKAGES)
    run_steps(third, world_.observed, steps)  # the lb done
    world_ = observe_upgrade(third, PACKAGES)
    steps = plan_upgrade(third.spec, world_, PACKAGES)
    assert isinstance(steps[0], MarkUpgrade)
    run_steps(third, world_.observed, steps[:1])  # the next node marked, then gone
    fourth = make_context(server, fleet)
    upgrade(fourth, PACKAGES)
    assert _upgrades(fleet) == ORDER  # each once, in order
    assert all(fleet.node(label).boots == 2 for label in ORDER)
    assert set(_marks(fourth).values()) == {"done"}
    _assert_converged(fourth, fleet)
    # Finished: a rerun begins a new run, which upgrades every node once more.
    fifth = make_context(server, fleet)
    assert intent(fifth.spec, observe_upgrade(fifth, PACKAGES), PACKAGES).labels == tuple(ORDER)


def upgrade_rounds(ctx, rounds: int) -> None:
    for _ in range(rounds):
        world_ = observe_upgrade(ctx, PACKAGES)
        run_steps(ctx, world_.observed, plan_upgrade(ctx.spec, world_, PACKAGES))


def test_a_node_that_fails_is_left_drained_named_and_carried_on_once_fixed(world):
    server, fleet = world
    up(make_context(server, fleet))
    fleet.upgrade_fails = {"itframe-eu-central-worker-2"}
    ctx = make_context(server, fleet)
    with pytest.raises(UpgradeError) as stopped:
        upgrade(ctx, PACKAGES)
    assert str(stopped.value).startswith(
        "the upgrade stopped at itframe-eu-central-worker-2, which is left out of service "
        "(drained) and marked: itframe-eu-central-worker-2: apt-get exited with 100: E: "
        "Sub-process /usr/bin/dpkg returned an error code (1); see to "
    )
    assert "run `swarmboot upgrade SPEC --packages` again: it carries on from " in str(
        stopped.value
    )
    node = fleet.node("itframe-eu-central-worker-2")
    assert fleet.swarm_nodes[node.node_id].availability == "drain"
    assert _marks(ctx)["itframe-eu-central-worker-2"] == "out"
    rows = {r["node"]: r for r in status_rows(ctx.spec, observe(ctx))}
    assert rows["itframe-eu-central-worker-2"]["linode"] == "running, out for its upgrade"
    assert rows["itframe-eu-central-worker-2"]["upgrade"].endswith(":p:out")
    assert _upgrades(fleet) == ORDER[:1]
    # Another mode is refused while this run is unfinished.
    again = make_context(server, fleet)
    with pytest.raises(UpgradeError) as refused:
        upgrade(again, UpgradeMode("docker"))
    assert str(refused.value).startswith("an upgrade by packages (run ")
    fleet.upgrade_fails = set()
    upgrade(again, PACKAGES)
    assert _upgrades(fleet) == ORDER
    _assert_converged(again, fleet)


def test_a_node_back_on_its_old_kernel_stops_the_upgrade(world):
    server, fleet = world
    up(
        make_context(server, fleet),
    )
    fleet.new_kernel = "6.1.0-57-amd64"
    fleet.old_kernel_after_reboot = {"itframe-eu-central-worker-1"}
    ctx = make_context(server, fleet, timeout=0.3)
    with pytest.raises(UpgradeError) as stopped:
        upgrade(ctx, PACKAGES)
    assert (
        "itframe-eu-central-worker-1 was not ready 0 s after its upgrade: it runs kernel "
        "6.1.0-56-amd64, not the newest installed (6.1.0-57-amd64)"
    ) in str(stopped.value)


def test_refused_with_a_manager_down_naming_repair(world):
    server, fleet = world
    up(make_context(server, fleet))
    fleet.node("itframe-gb-lon-manager-1").down = True
    ctx = make_context(server, fleet)
    with pytest.raises(SwarmbootError) as refused:
        upgrade(ctx, PACKAGES)
    assert str(refused.value) == (
        "refusing to upgrade: itframe-gb-lon-manager-1 is not Ready (it is down in the swarm); "
        "`swarmboot repair SPEC` rebuilds it first; then run the upgrade again"
    )
    assert _upgrades(fleet) == []


def test_image_mode_rebuilds_each_node_onto_the_spec_image(world):
    server, fleet = world
    spec = (Path(__file__).parent.parent / "examples" / "itframe.toml").read_text()
    up(make_context(server, fleet))
    newer = spec.replace('image = "linode/debian12"', 'image = "linode/debian13"').replace(
        'stackscript = "debian12-swarm-node.sh"', 'stackscript = "debian13-swarm-node.sh"'
    )
    ctx = make_context(server, fleet, newer)
    with pytest.raises(SwarmbootError) as refused:
        upgrade(ctx, UpgradeMode("image", "linode/debian14"))
    assert refused.value.exit_code == ExitCode.USAGE
    upgrade(ctx, UpgradeMode("image", "linode/debian13"))
    final = observe(ctx)
    assert {i.image for i in final.instances} == {"linode/debian13"}
    _assert_converged(ctx, fleet)
    # Nothing left: a second run does nothing.
    again = make_context(server, fleet, newer)
    assert upgrade(again, UpgradeMode("image", "linode/debian13")).upgraded == []


def test_facts_are_read_from_the_command_output():
    assert parse_facts(
        "kernel=6.1.0-56-amd64\nnewest=6.1.0-57-amd64\ndistro=yes\nreboot_required=no\n"
        "vxlan=yes\ndocker=28.0.1\n"
    ) == NodeFacts("6.1.0-56-amd64", "6.1.0-57-amd64", True, False, True, "28.0.1")


CASES = sorted((Path(__file__).parent / "plan_cases" / "upgrade").glob("*.json"))


def case_world(case: dict):
    """The plan case's world: the plan tests' `build`, with the upgrade's marks, drained
    nodes, the leader and what the node being upgraded says about itself."""
    spec = load_case_spec(case)
    observed = build(spec, case["observed"])
    up_ = case.get("upgrade", {})
    marks = up_.get("marks", {})
    instances = tuple(
        replace(i, tags=(*i.tags, marks[i.label])) if i.label in marks else i
        for i in observed.instances
    )
    swarm = observed.swarm
    if swarm is not None:
        drained = set(up_.get("drained", ()))
        leader = up_.get("leader")
        swarm = replace(
            swarm,
            nodes=tuple(
                replace(
                    e,
                    availability="drain" if e.hostname in drained else e.availability,
                    leader=e.leader if leader is None else e.hostname == leader,
                )
                for e in swarm.nodes
            ),
        )
    facts = {label: NodeFacts(**f) for label, f in up_.get("facts", {}).items()}
    observed = replace(observed, instances=instances, swarm=swarm)
    return spec, UpgradeWorld(observed, up_.get("next_run", 900), facts)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_upgrade_plan_case(path):
    """The decisions of `upgrade`, as data: observed world + spec + mode -> the order, the
    warnings, and this round's steps (or the refusal)."""
    case = json.loads(path.read_text())
    spec, world_ = case_world(case)
    mode = UpgradeMode(case.get("mode", "packages"), case.get("image"))
    if "error" in case:
        with pytest.raises(SwarmbootError) as info:
            plan_upgrade(spec, world_, mode)
        assert str(info.value) == case["error"]
        return
    planned = intent(spec, world_, mode)
    assert list(planned.lines) == case["order"]
    assert list(planned.warnings) == case.get("warnings", [])
    steps = plan_upgrade(spec, world_, mode)
    assert [s.describe() for s in steps] == case["steps"]


def test_where_the_kernel_is_not_the_nodes_only_a_package_asks_for_a_reboot():
    """The lab's nodes share this machine's kernel (cluster.require_grub_kernel = false):
    the kernels in /boot say nothing, /run/reboot-required does."""
    shared = NodeFacts("6.18.44-host", "6.1.0-57-amd64", False, False, True, "20.10.24")
    assert shared.reboot_wanted(require_distro_kernel=True)
    assert not shared.reboot_wanted(require_distro_kernel=False)
    assert shared.problems(require_distro_kernel=False) == ()
    assert shared.problems(require_distro_kernel=True) == (
        "it runs kernel 6.18.44-host, which is not the distribution's",
    )
    asked = NodeFacts("6.18.44-host", None, False, True, True, None)
    assert asked.reboot_wanted(require_distro_kernel=False)
    assert asked.problems(require_distro_kernel=False) == ("Docker does not answer",)
