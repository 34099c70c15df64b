"""`rotate` against the simulator and fake nodes: the join tokens and the swarm's CA made
anew, a rotation cut short carried on (never started twice), and what `status` says of the
nodes' certificates.

The fake swarm keeps Docker's rules: ForceRotate raised starts a CA rotation, each node that
answers gets a certificate from the new CA a few reads of the swarm later (one that is down
never does), and the rotation is over once every node has it. Each node's certificate file is
a real X.509 certificate signed by its CA generation's key.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from swarmboot import facts
from swarmboot.apply import run_steps, up
from swarmboot.certs import certificate_warnings, observe_certificates, parse_node_certificate
from swarmboot.cli import app
from swarmboot.cluster import observe
from swarmboot.errors import ExitCode, SwarmbootError
from swarmboot.rotate import AwaitCARotation, RotateCA, RotateJoinTokens, plan_rotate, rotate
from swarmboot.spec import Spec
from swarmboot.state import NodeCert, Observed, SwarmCA, SwarmNode, SwarmState
from swarmboot.status import summary

from .fakes import FakeClock, FakeFleet
from .test_plan import build, load_case_spec
from .test_recover import _lose
from .world import make_context

DAY = 86400.0


def _issuers(fleet: FakeFleet, ctx) -> dict[str, str]:
    """Each node's certificate's issuer key, read from its certificate file."""
    found = {}
    for inst in observe(ctx).instances:
        text = ctx.remote(inst).read_file(facts.NODE_CERT_PATH)
        found[inst.label] = parse_node_certificate(text).issuer_key
    return found


def test_join_tokens_and_the_ca_are_rotated_and_every_node_gets_its_new_certificate(world):
    server, fleet = world
    up(make_context(server, fleet))
    old_tokens = fleet.tokens
    ctx = make_context(server, fleet)
    before = _issuers(fleet, ctx)
    assert len(set(before.values())) == 1  # one CA signed them all
    observed = observe(ctx)
    asked = []
    result = rotate(ctx, observed, join_tokens=True, ca=True, confirm=lambda: asked.append(1))
    assert asked == [1]
    assert fleet.tokens != old_tokens
    assert fleet.calls.count(("rotate-ca", "itframe-eu-central-manager-1")) == 1
    after = _issuers(fleet, ctx)
    assert set(after) == set(before)
    assert len(set(after.values())) == 1 and set(after.values()) != set(before.values())
    assert not fleet.rotating
    assert [c.kind for c in result.changes] == ["join_tokens_rotated", "ca_rotated"]
    # Each node's new certificate, read after: what `status` shows.
    assert set(result.observed.certificates) == set(before)
    rows = summary(ctx.spec, result.observed)["nodes"]
    assert all(row["cert_days_left"] in (89, 90) for row in rows)
    said = "\n".join(ctx.reporter.lines)
    assert "Wait until each of the 9 nodes has its certificate from the new CA" in said
    for token in (*old_tokens, *fleet.tokens):
        assert token not in said and token not in repr(result)
    # The old worker token joins no node any more; the new one does (the fake checks).
    assert old_tokens[0] not in fleet.tokens
    # The cluster is as it was: `up` has nothing to do.
    assert up(make_context(server, fleet)).changes == []
    # A worker that leaves is joined again by `up` with the new token, read afresh (a token
    # kept from before the rotation would be refused).
    ctx = make_context(server, fleet)
    worker = observe(ctx).instance("itframe-gb-lon-worker-1")
    ctx.swarm.leave(ctx.remote(worker))
    again = up(make_context(server, fleet))
    assert ("node_joined", "itframe-gb-lon-worker-1") in {(c.kind, c.name) for c in again.changes}


def test_a_rotation_cut_short_is_waited_for_when_run_again_and_not_started_twice(world):
    """Killed right after the CA rotation started: the next `rotate --ca` only waits."""
    server, fleet = world
    up(make_context(server, fleet))
    fleet.rotation_polls = 3
    first = make_context(server, fleet)
    observed = observe(first)
    steps = plan_rotate(first.spec, observed, join_tokens=False, ca=True)
    assert [type(s) for s in steps] == [RotateCA, AwaitCARotation]
    run_steps(first, observed, steps[:1])  # the rotation started, then gone
    assert fleet.rotating
    second = make_context(server, fleet)
    observed = observe(second)
    assert observed.swarm.ca.rotating
    (wait,) = plan_rotate(second.spec, observed, join_tokens=False, ca=True)
    assert isinstance(wait, AwaitCARotation)
    asked = []
    rotate(second, observed, join_tokens=False, ca=True, confirm=lambda: asked.append(1))
    assert asked == []  # nothing is started: nothing to ask
    assert sum(c[0] == "rotate-ca" for c in fleet.calls) == 1
    assert not fleet.rotating and fleet.ca_generation == 2
    # The rotation step repeated as planned (a broken connection, retried) starts nothing.
    assert not second.swarm.rotate_ca(second.remote(observed.instances[0]), steps[0].force_rotate)


def test_a_ca_rotation_is_refused_while_a_node_is_down_and_the_tokens_are_not(world):
    server, fleet = world
    up(make_context(server, fleet))
    _lose(fleet, ["itframe-gb-lon-worker-2"])
    ctx = make_context(server, fleet)
    observed = observe(ctx)
    with pytest.raises(SwarmbootError) as refused:
        rotate(ctx, observed, join_tokens=True, ca=True)
    assert "itframe-gb-lon-worker-2 is not ready in the swarm" in str(refused.value)
    assert not any(c[0].startswith("rotate") for c in fleet.calls)  # refused before any
    rotate(ctx, observed, join_tokens=True, ca=False)
    assert fleet.rotations == 1


def test_a_wait_that_outlasts_its_deadline_names_the_nodes_still_waited_for(world):
    """A node dies after the rotation started: it never gets its certificate."""
    server, fleet = world
    up(make_context(server, fleet))
    ctx = make_context(server, fleet, clock=FakeClock(), rotate_timeout=60.0)
    observed = observe(ctx)
    steps = plan_rotate(ctx.spec, observed, join_tokens=False, ca=True)
    _lose(fleet, ["itframe-gb-lon-worker-1"])
    with pytest.raises(SwarmbootError) as late:
        run_steps(ctx, observed, steps)
    assert str(late.value).startswith(
        "the swarm's CA rotation was not over after 60 s: itframe-gb-lon-worker-1 still has "
        "a certificate or root from the old CA"
    )
    assert "`swarmboot rotate SPEC --ca` again waits" in str(late.value)


def test_status_shows_each_certificate_and_warns_of_one_expiring_soon(world):
    server, fleet = world
    up(make_context(server, fleet))
    ctx = make_context(server, fleet)
    soon = fleet.node("itframe-gb-lon-lb-1")
    soon.cert_not_after = ctx.clock.wall() + 10 * DAY + 60
    data = summary(ctx.spec, observe_certificates(ctx, observe(ctx)))
    days = {row["node"]: row["cert_days_left"] for row in data["nodes"]}
    assert days["itframe-gb-lon-lb-1"] == 10
    assert days["itframe-eu-central-manager-1"] in (89, 90)
    (warning,) = data["warnings"]
    assert warning.startswith("itframe-gb-lon-lb-1: its swarm certificate expires on ")
    assert "in 10 day(s)" in warning and "`swarmboot rotate SPEC --ca`" in warning


def _observed(now: float, *, down_since: float, cert: NodeCert | None = None) -> Observed:
    nodes = (
        SwarmNode("a", "c-manager-1", "manager", "ready", "active", "10.0.0.1"),
        SwarmNode("b", "c-worker-1", "worker", "down", "active", "10.0.0.2", updated_at=down_since),
    )
    ca = SwarmCA("ca-1", "root-1", False, 0, int(90 * DAY))
    return Observed(
        swarm=SwarmState("c-manager-1", nodes, ca=ca),
        certificates={"c-manager-1": cert} if cert else {},
        certificates_read_at=now,
    )


def test_a_node_down_longer_than_a_certificate_lives_is_to_be_rebuilt():
    now = 1_800_000_000.0
    assert certificate_warnings(_observed(now, down_since=now - 89 * DAY)) == []
    (line,) = certificate_warnings(_observed(now, down_since=now - 91 * DAY))
    assert line == (
        "c-worker-1 has been down in the swarm for 91 days, longer than a node certificate "
        "lives (90 days): its certificate has expired and it cannot rejoin; `swarmboot node "
        "rebuild SPEC c-worker-1` makes it anew"
    )
    expired = NodeCert(now - DAY)
    lines = certificate_warnings(_observed(now, down_since=now, cert=expired))
    assert lines == [
        "c-manager-1: its swarm certificate expired on 2027-01-14: the managers refuse it; "
        "`swarmboot node rebuild SPEC c-manager-1` makes it anew"
    ]
    # Not read (a view after `up`): nothing said.
    assert (
        certificate_warnings(replace(_observed(now, down_since=0.0), certificates_read_at=None))
        == []
    )


def test_rotate_with_nothing_to_rotate_is_a_usage_error():
    result = CliRunner().invoke(app, ["rotate", "examples/itframe.toml"])
    assert result.exit_code == ExitCode.USAGE
    assert result.output.strip().splitlines() == [
        "Error: nothing to rotate: give --join-tokens, --ca or both; see `swarmboot rotate -h`"
    ]


def _build(spec: Spec, world: dict) -> Observed:
    """The plan cases' world (tests/test_plan.py), with the swarm's CA: `ca` gives its
    `rotating` and `force_rotate`; a node's `ca` says "old" (its certificate and trusted
    root from the CA before) or "old-root" (a new certificate, the old root still trusted)."""
    observed = build(spec, world)
    if observed.swarm is None:
        return observed
    given = world.get("ca", {})
    ca = SwarmCA("ca-2", "root-2", given.get("rotating", False), given.get("force_rotate", 0), 0)
    per_node = world.get("nodes", {})
    tls = {"new": ("ca-2", "root-2"), "old": ("ca-1", "root-1"), "old-root": ("ca-2", "root-1")}
    nodes = tuple(
        replace(
            e,
            issuer=tls[per_node.get(e.hostname, {}).get("ca", "new")][0],
            trust_root=tls[per_node.get(e.hostname, {}).get("ca", "new")][1],
        )
        for e in observed.swarm.nodes
    )
    return replace(observed, swarm=replace(observed.swarm, nodes=nodes, ca=ca))


CASES = sorted((Path(__file__).parent / "plan_cases" / "rotate").glob("*.json"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_rotate_plan_case(path):
    """The decisions of `rotate`, as data: observed world + spec + what to rotate -> steps."""
    case = json.loads(path.read_text())
    spec = load_case_spec(case)
    observed = _build(spec, case["observed"])
    asked = {"join_tokens": "join-tokens" in case["rotate"], "ca": "ca" in case["rotate"]}
    if "error" in case:
        with pytest.raises(SwarmbootError) as info:
            plan_rotate(spec, observed, **asked)
        assert str(info.value).startswith(case["error"]), str(info.value)
        assert info.value.exit_code == case["exit_code"]
        return
    steps = plan_rotate(spec, observed, **asked)
    assert [s.describe() for s in steps] == case["steps"]
    for want in case.get("step_fields", []):
        (found,) = [s for s in steps if type(s).__name__ == want["step"]]
        for name, value in want.items():
            if name != "step":
                assert getattr(found, name) == value, name
    assert plan_rotate(spec, observed, **asked) == steps  # data: comparable, no closures
    assert all(isinstance(s, RotateJoinTokens | RotateCA | AwaitCARotation) for s in steps)


def test_the_status_table_has_a_certificate_column_when_they_were_read(world, capsys):
    from swarmboot.cli.cluster import show

    server, fleet = world
    up(make_context(server, fleet))
    ctx = make_context(server, fleet)
    observed = observe(ctx)
    show(summary(ctx.spec, observed), False)
    assert "certificate" not in capsys.readouterr().out  # a view after `up`: not read
    show(summary(ctx.spec, observe_certificates(ctx, observed)), False)
    out = capsys.readouterr().out
    assert "certificate" in out
    line = next(x for x in out.splitlines() if "itframe-gb-lon-worker-1" in x)
    assert line.rstrip(" │").endswith(" d)")
