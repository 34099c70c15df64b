"""Each module's public surface is what its __all__ says, and every name there exists."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import swarmboot

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(swarmboot.__path__, "swarmboot.")
    if not m.name.rsplit(".", 1)[-1].startswith("_")
)


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name):
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        assert name.startswith("swarmboot.cli."), f"{name} has no __all__"
        return
    assert sorted(set(exported)) == sorted(exported), f"{name}.__all__ repeats a name"
    missing = [n for n in exported if not hasattr(module, n)]
    assert missing == [], f"{name}.__all__ names what it lacks: {missing}"
