"""Every test double, and every real adapter, implements its seam's protocol: each method the
protocol names, with the same parameters (names, kinds, defaults). A double that drifted from
the real adapter would test a world that does not exist."""

from __future__ import annotations

import inspect

import pytest

from swarmboot.clock import Clock, SystemClock
from swarmboot.cloud import CloudApi, LinodeCloud
from swarmboot.lab.backend import LabBackend
from swarmboot.remote import (
    Connector,
    NoConnector,
    ParamikoConnector,
    ParamikoRemote,
    Remote,
)
from swarmboot.report import ConsoleReporter, RecordingReporter, Reporter
from swarmboot.sim.backend import MachineBackend, RecordsBackend
from swarmboot.swarm import DockerSwarm, ServiceTask, SwarmDriver

from .fakes import FakeClock, FakeConnector, FakeFleet, FakeRemote, FakeSwarm
from .sim.plugin_backend import FileBackend

PAIRS = [
    (Remote, ParamikoRemote),
    (Remote, FakeRemote),
    (Connector, ParamikoConnector),
    (Connector, FakeConnector),
    (Connector, NoConnector),
    (Clock, SystemClock),
    (Clock, FakeClock),
    (SwarmDriver, DockerSwarm),
    (SwarmDriver, FakeSwarm),
    (Reporter, ConsoleReporter),
    (Reporter, RecordingReporter),
    (CloudApi, LinodeCloud),
    (MachineBackend, RecordsBackend),
    (MachineBackend, LabBackend),
    (MachineBackend, FakeFleet),
    (MachineBackend, FileBackend),
]


def _methods(protocol: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(protocol).items()
        if callable(member) and not name.startswith("_")
    }


def _shape(signature: inspect.Signature) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


@pytest.mark.parametrize(
    ("protocol", "implementation"),
    PAIRS,
    ids=[f"{impl.__name__}-{proto.__name__}" for proto, impl in PAIRS],
)
def test_it_implements_its_protocol_with_the_same_signatures(protocol, implementation):
    wanted = _methods(protocol)
    assert wanted, f"{protocol.__name__} names no methods"
    problems = []
    for name, signature in wanted.items():
        member = getattr(implementation, name, None)
        if member is None:
            problems.append(f"{name} is missing")
            continue
        got = inspect.signature(member)
        if _shape(got) != _shape(signature):
            problems.append(f"{name}{got} differs from {name}{signature}")
    assert problems == [], f"{implementation.__name__} vs {protocol.__name__}: {problems}"


def test_the_fake_swarm_keeps_a_config_a_task_still_mounts(world):
    from swarmboot.apply import up

    from .world import make_context

    server, fleet = world
    ctx = make_context(server, fleet)
    result = up(ctx)
    manager = ctx.remote(next(i for i in result.observed.instances if "-manager-1" in i.label))
    fleet.configs = {"itframe-lb-eu-central-aaa", "itframe-lb-eu-central-bbb", "other"}
    fleet.tasks["itframe-lb_lb-eu-central"] = (
        ServiceTask(
            "itframe-eu-central-lb-1", "running", "shutdown", "", ("itframe-lb-eu-central-aaa",)
        ),
    )
    removed = ctx.swarm.remove_configs(manager, "itframe-lb-", keep={"itframe-lb-eu-central-ccc"})
    assert removed == ["itframe-lb-eu-central-bbb"]
    assert fleet.configs == {"itframe-lb-eu-central-aaa", "other"}
    assert ctx.swarm.service_tasks(manager, "itframe-lb_lb-eu-central")[0].hostname == (
        "itframe-eu-central-lb-1"
    )
    assert ctx.swarm.service_tasks(manager, "absent") == ()
