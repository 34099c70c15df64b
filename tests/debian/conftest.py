"""What every test here needs: root and the tools to make and enter a Debian root."""

from __future__ import annotations

import os
import shutil

import pytest


def missing_prerequisites() -> str | None:
    if os.geteuid() != 0:
        return "needs root (debootstrap, namespaces, chroot)"
    for tool in ("debootstrap", "zstd", "gpg", "ip", "nsenter", "unshare"):
        if shutil.which(tool) is None:
            return f"needs {tool} (make host-deps installs it)"
    return None


@pytest.fixture(scope="module", autouse=True)
def _prerequisites():
    missing = missing_prerequisites()
    if missing:
        if os.environ.get("SWARMBOOT_REQUIRE_DEBIAN_TESTS") == "1":
            pytest.fail(f"the Debian tests cannot run here: {missing}")
        pytest.skip(missing)
