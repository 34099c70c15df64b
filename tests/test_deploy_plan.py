"""`deploy`'s decisions as data: the rendered stack and what a manager says of its services
-> each service's verdict and this round's steps (tests/plan_cases/deploy/)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from swarmboot.deploy import StackFacts, plan_deploy, verdicts
from swarmboot.stacks import StackService, StackTask

CASES = sorted((Path(__file__).parent / "plan_cases" / "deploy").glob("*.json"))
SERVICES = ["itframe_app-eu-central", "itframe_app-gb-lon"]


def rendered(case: dict) -> SimpleNamespace:
    """What `compose.render_stack` gives, as far as planning reads it."""
    given = case.get("rendered", {})
    return SimpleNamespace(
        stack="itframe",
        digest="new",
        text="services: {}\n",
        services=tuple(given.get("services", SERVICES)),
        configs=tuple(
            SimpleNamespace(name=n, key=n.split("_")[1].rsplit("-", 1)[0], content=b"x")
            for n in given.get("configs", [])
        ),
    )


def service(name: str, given: dict) -> StackService:
    return StackService(
        name=name,
        digest=given["digest"],
        previous_digest=given.get("previous"),
        replicas=given["replicas"],
        update=given["update"],
        update_message=given.get("message", ""),
        has_previous=given.get("has_previous", given.get("previous") is not None),
        tasks=tuple(
            StackTask(slot, f"node-{n}", desired, state, error, f"2026-12-07T10:00:{n:02}Z", cur)
            for n, (desired, state, error, cur, slot) in enumerate(given["tasks"])
        ),
    )


def facts(case: dict) -> StackFacts:
    given = case["facts"]
    return StackFacts(
        via="itframe-eu-central-manager-1",
        services=tuple(service(n, s) for n, s in sorted(given["services"].items())),
        configs=frozenset(given.get("configs", ())),
        deployed=given.get("deployed", False),
        elapsed=given.get("elapsed", 0.0),
    )


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_deploy_plan_case(path):
    case = json.loads(path.read_text())
    r, f = rendered(case), facts(case)
    timeout = case.get("timeout", 600)
    found = {n: v.state for n, v in verdicts(r, f, timeout).items()}
    assert found == case["verdicts"]
    steps = plan_deploy(r, f, timeout=timeout, prune=case.get("prune", False))
    assert [s.describe() for s in steps] == case["steps"]


# What a real engine answered through one rollout, recorded in the lab (see its "source").
RECORDED = json.loads(
    (Path(__file__).parent / "data" / "engine" / "stack-rollout.json").read_text()
)


@pytest.mark.parametrize(
    ("state", "digest", "verdict", "running"),
    [
        ("converged", "d1", "converged", 2),  # created, both tasks healthy
        ("updating", "d2", "waiting", 0),  # the new task starting, the old ones running
        ("updated", "d2", "converged", 2),
        ("paused", "d3", "failed", 0),  # the new image exits at once: Docker paused
        ("rolling", "d3", "rolling_back", 0),  # after `docker service rollback`
        ("rolledback", "d3", "rolled_back", 0),
    ],
)
def test_a_real_engines_answers_are_read_and_judged(state, digest, verdict, running):
    from swarmboot.deploy import judge
    from swarmboot.stacks import read_service

    given = RECORDED["states"][state]
    found = read_service(given["service"], given["tasks"])
    assert found.name == "exp_app-eu-central" and found.replicas == 2
    judged = judge(found, found.name, digest, deployed=True, elapsed=1.0, timeout=600.0)
    assert (judged.state, judged.running) == (verdict, running)
    if state == "paused":
        assert "update paused due to failure" in judged.error
        assert judged.error.endswith("last task error: task: non-zero exit (1)")
    if state == "updating":  # the replaced tasks are told apart from the new one
        assert [t.current for t in found.tasks].count(True) == 1
