from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from swarmboot import render

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "templates"
STACKSCRIPTS = REPO / "stackscripts"


@pytest.fixture(scope="session")
def rendered() -> dict[str, render.RenderedScript]:
    return {s.name: s for s in render.render_all(TEMPLATES)}


@pytest.fixture(scope="session")
def spec_check():
    """Linode's OpenAPI spec, to check every exchange with the simulator against."""
    from swarmboot.sim.speccheck import load_spec_check

    return load_spec_check(REPO / "tests" / "data" / "linode-openapi-4.189.0.json.gz")


@pytest.fixture
def world(spec_check) -> Iterator[tuple]:
    """The simulator (spec-checked) with a `FakeFleet` as its machines."""
    from swarmboot.sim.config import SimConfig, Timings
    from swarmboot.sim.engine import Simulator
    from swarmboot.sim.server import SimServer

    from .fakes import FakeFleet
    from .world import TOKEN

    fleet = FakeFleet()
    # Linode's create limit, 10 per 30 s, scaled down like the timings: 10 per second.
    config = SimConfig(
        port=0,
        token=TOKEN,
        timings=Timings(scale=0.002),
        rate_limits={"linode_create": {"requests": 10, "window": 1.0}},
    )
    server = SimServer(Simulator(config, backend=fleet), spec_check)
    server.start()
    yield server, fleet
    violations = list(server.violations)
    server.stop()
    assert violations == [], "\n".join(violations)


CLI_TOKEN = "cli-secret-token"


@pytest.fixture
def cli_sim(spec_check, tmp_path, monkeypatch):
    """A records-only simulator (spec-checked) that the command line finds as a user's would:
    SWARMBOOT_API_URL, the token in SWARMBOOT_SIM_TOKEN (CLI_TOKEN), a key in
    SWARMBOOT_SSH_KEY, and a HOME of its own."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from swarmboot.sim.config import SimConfig, Timings
    from swarmboot.sim.engine import Simulator
    from swarmboot.sim.server import SimServer

    server = SimServer(
        Simulator(SimConfig(port=0, token=CLI_TOKEN, timings=Timings(scale=0.001))), spec_check
    )
    server.start()
    key = tmp_path / "id_ed25519"
    key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    for name in ("LINODE_TOKEN", "LINODE_CLI_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SWARMBOOT_API_URL", server.url)
    monkeypatch.setenv("SWARMBOOT_SIM_TOKEN", CLI_TOKEN)
    monkeypatch.setenv("SWARMBOOT_SSH_KEY", str(key))
    yield server
    violations = list(server.violations)
    server.stop()
    assert violations == []
