from __future__ import annotations

from pathlib import Path

import pytest

from swarmboot import render

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "templates"
STACKSCRIPTS = REPO / "stackscripts"


@pytest.fixture(scope="session")
def rendered() -> dict[str, render.RenderedScript]:
    return {s.name: s for s in render.render_all(TEMPLATES)}
