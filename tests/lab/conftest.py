"""The lab's fixtures: a key to log in to the nodes with, and one lab simulator per module."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swarmboot.lab import image

from .lab import CACHE, LabSim, host_snapshot


@pytest.fixture(scope="module")
def key(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "id_ed25519"
    path.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def lab():
    before = host_snapshot()
    sim = LabSim.start()
    try:
        yield sim
    finally:
        leftovers = sim.stop()
    assert leftovers == [], leftovers
    # The host is as it was: its routes, links, mounts, namespaces and firewall.
    assert host_snapshot() == before
    # And so is the node image, the lower layer of every node's root: nothing wrote into it.
    image.verify(image.image_path("bookworm", CACHE))
