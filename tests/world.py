"""The simulator with fake nodes behind it, and a `Context` that reaches them: what the
tests of `up`, `node rebuild` and `repair` run against (the `world` fixture is in conftest)."""

from __future__ import annotations

from swarmboot.clock import Clock, SystemClock
from swarmboot.cloud import LinodeCloud
from swarmboot.cluster import Context, Settings
from swarmboot.credentials import Target
from swarmboot.marks import MemberMarks
from swarmboot.preflight import account_interfaces
from swarmboot.publish import local_scripts
from swarmboot.report import RecordingReporter
from swarmboot.sim.admin import SimAdmin
from swarmboot.sim.server import SimServer
from swarmboot.spec import load_spec, parse_spec

from .conftest import REPO
from .fakes import FakeConnector, FakeFleet, FakeSwarm

TOKEN = "up-test-token"
EXAMPLE = REPO / "examples" / "itframe.toml"
# A cluster of one manager, for tests about a single node.
SOLO = '[cluster]\nname = "solo"\n[regions.eu-central]\npools = [{ role = "manager", count = 1 }]\n'
ORCHESTRATOR = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB0orchestrator0000000000000000000000000 sb"
# The marks the tests' orchestrator makes (a real identity derives its key: swarmboot.marks).
MARKS = MemberMarks(b"the tests' orchestrator's member key")


def make_context(
    server: SimServer,
    fleet: FakeFleet,
    spec_text: str | None = None,
    clock: Clock | None = None,
    **settings,
) -> Context:
    spec = parse_spec(spec_text) if spec_text else load_spec(EXAMPLE)
    script = local_scripts()[spec.cluster.stackscript]
    cloud = LinodeCloud(
        Target(server.url, TOKEN, "test"), retry_interval=0.02, clock=clock or SystemClock()
    )
    return Context(
        spec=spec,
        spec_path=EXAMPLE,
        cloud=cloud,
        # As the command line's context has it: read where the spec's interfaces need it.
        account_interfaces=account_interfaces(spec, EXAMPLE, cloud),
        connector=FakeConnector(fleet),
        swarm=FakeSwarm(fleet),
        reporter=RecordingReporter(),
        script=script,
        identity_public=ORCHESTRATOR,
        marks=MARKS,
        clock=clock or SystemClock(),
        settings=Settings(
            # On virtual time, polls as far apart as on Linode (the simulator's limits
            # count virtual seconds too); on the real clock, fast ones.
            poll_interval=settings.pop("poll_interval", 0.02 if clock is None else 5.0),
            ready_timeout=settings.pop("timeout", 10.0 if clock is None else 600.0),
            # Linode's create limit; on the real clock, in a window of a second.
            create_limit=(20, 1.0) if clock is None else Settings().create_limit,
            **settings,
        ),
    )


def creates(server: SimServer) -> int:
    stats = SimAdmin(server.url, TOKEN).stats()
    return stats["routes"].get("POST /linode/instances", 0)
