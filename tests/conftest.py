from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from swarmboot import render

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "templates"
STACKSCRIPTS = REPO / "stackscripts"
# The cache of Debian roots and node images that tests/debian, tests/lab and tests/vm share.
TEST_CACHE = Path(os.environ.get("SWARMBOOT_TEST_CACHE", REPO / ".cache"))

_prefetch: list[threading.Thread] = []


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build what the Debian and lab tests will need, while the first tests run: the base
    roots of both releases at once, then the lab's node image. Each is built under its own
    lock, so a test that needs one before it is ready waits for it rather than building it
    again; a build that fails here fails again, with its message, in the test that needs it."""
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        return
    markers = {m.name for item in session.items for m in item.iter_markers()}
    if not markers & {"debian", "lab"}:
        return
    from swarmboot.lab import image

    def bookworm() -> None:
        image.base_tarball("bookworm", TEST_CACHE)
        if "lab" in markers:
            image.node_image("bookworm", TEST_CACHE).release()

    jobs = [bookworm]
    if "debian" in markers:
        jobs.append(lambda: image.base_tarball("trixie", TEST_CACHE))
    for job in jobs:
        thread = threading.Thread(target=_quietly, args=(job,), daemon=True, name="prefetch")
        thread.start()
        _prefetch.append(thread)


def _quietly(job) -> None:
    try:
        job()
    except Exception as exc:  # the test that needs it builds it again and says why
        logging.getLogger("tests").warning("building ahead failed: %s", exc)


def pytest_sessionfinish(session: pytest.Session) -> None:
    # A build is never left half-done (debootstrap mounts inside its target).
    for thread in _prefetch:
        thread.join()


@pytest.fixture(scope="session")
def rendered() -> dict[str, render.RenderedScript]:
    return {s.name: s for s in render.render_all(TEMPLATES)}


@pytest.fixture(scope="session")
def cloud_configs(rendered) -> dict[str, render.RenderedCloudConfig]:
    """Each StackScript's cloud-config, by the StackScript's name."""
    configs = render.render_cloud_configs(TEMPLATES, tuple(rendered.values()))
    return {c.script: c for c in configs}


@pytest.fixture(scope="session")
def spec_check():
    """Linode's OpenAPI specs, to check every exchange with the simulator against: 4.189.0
    as published, and 4.229.1 as linode-cli 5.69.0 keeps it (tests/data/README.md)."""
    from swarmboot.sim.speccheck import load_spec_check

    data = REPO / "tests" / "data"
    return load_spec_check(
        data / "linode-openapi-4.189.0.json.gz",
        data / "linode-openapi-4.229.1-linode-cli-5.69.0.json.gz",
    )


def _world(spec_check, clock=None) -> Iterator[tuple]:
    from swarmboot.sim.config import SimConfig, Timings
    from swarmboot.sim.engine import Simulator
    from swarmboot.sim.server import SimServer

    from .fakes import FakeFleet
    from .world import TOKEN

    fleet = FakeFleet()
    # Linode's rate limits: on virtual time as they are, on the real clock with creates
    # in a window of a second (20 per second).
    limits = {} if clock else {"linode_create": {"requests": 20, "window": 1.0}}
    config = SimConfig(port=0, token=TOKEN, timings=Timings(scale=0.002), rate_limits=limits)
    sim = Simulator(config, backend=fleet, clock=clock.wall if clock else time.time)
    if clock is not None:
        clock.on_sleep.append(sim.settle)
    server = SimServer(sim, spec_check)
    server.start()
    yield server, fleet
    violations = list(server.violations)
    server.stop()
    assert violations == [], "\n".join(violations)


@pytest.fixture
def world(spec_check) -> Iterator[tuple]:
    """The simulator (spec-checked) with a `FakeFleet` as its machines, on the real clock."""
    yield from _world(spec_check)


@pytest.fixture
def virtual_world(spec_check) -> Iterator[tuple]:
    """The same on virtual time: (server, fleet, clock). The simulator and every Context
    given `clock` share it, so waits end by what happened, never by how fast this machine
    is (a test giving up after 0.5 real seconds raced the simulator's real ones)."""
    from .fakes import FakeClock

    clock = FakeClock()
    for server, fleet in _world(spec_check, clock):
        yield server, fleet, clock


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
