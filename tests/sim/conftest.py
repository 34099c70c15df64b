"""A simulator for the tests: in this process, on a free port, every exchange spec-checked."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from linode_api4 import LinodeClient

from swarmboot.sim.admin import SimAdmin
from swarmboot.sim.config import SimConfig, Timings
from swarmboot.sim.engine import Simulator
from swarmboot.sim.server import SimServer

from ..conftest import REPO

SPEC = REPO / "tests" / "data" / "linode-openapi-4.189.0.json.gz"
# Linode's newest spec, as linode-cli 5.69.0 keeps it (tests/data/README.md).
NEWEST_SPEC = REPO / "tests" / "data" / "linode-openapi-4.229.1-linode-cli-5.69.0.json.gz"
TOKEN = "sim-test-token"
FAST = 0.001  # real Linode timings times this: a boot takes 20 ms


@pytest.fixture(scope="session")
def sim_server(spec_check) -> Iterator[SimServer]:
    config = SimConfig(port=0, token=TOKEN, timings=Timings(scale=FAST))
    server = SimServer(Simulator(config), spec_check)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def admin(sim_server) -> SimAdmin:
    return SimAdmin(sim_server.url, TOKEN)


@pytest.fixture
def sim(sim_server, admin) -> Iterator[SimServer]:
    """The shared simulator, emptied, with default limits and no faults; afterwards, no
    request or response of the test may have broken the spec."""
    admin.reset()
    admin.set_faults()
    admin.set_timings(scale=FAST)
    admin.set_rate_limits()
    admin.set_withheld()
    yield sim_server
    violations = admin.violations()
    assert violations == [], "spec violations:\n" + "\n".join(violations)


@pytest.fixture
def client(sim) -> LinodeClient:
    return LinodeClient(TOKEN, base_url=sim.url, retry_rate_limit_interval=0.2)


@pytest.fixture
def api(sim):
    """The API by hand: `api(method, path, body)` answers a `requests` response."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"

    def call(method: str, path: str, body=None, **kwargs):
        return session.request(method, sim.url + path, json=body, timeout=10, **kwargs)

    return call
