"""The security sweep as tests: one per hostile input, failing with what happened when it was
not refused properly (`make security` prints the same as a table)."""

from __future__ import annotations

import pytest

from .common import NOT_REFUSED, Outcome
from .sweep import case_keys, run_sweep

KEYS = case_keys()


@pytest.fixture(scope="module")
def swept() -> tuple[dict[str, Outcome], dict[str, str]]:
    results = run_sweep()
    outcomes = {o.key: o for r in results for o in r.outcomes}
    skipped = {r.name: r.skipped for r in results if r.skipped}
    return outcomes, skipped


@pytest.mark.parametrize("key", KEYS)
def test_refused(swept, key):
    outcomes, skipped = swept
    category = key.split("/", 1)[0]
    if category in skipped:
        pytest.skip(skipped[category])
    assert key in outcomes, f"{key}: the sweep did not try it"
    found = outcomes[key]
    assert found.verdict != NOT_REFUSED, f"{key}: {found.what}: NOT refused\n{found.detail}"


def test_nothing_else_was_let_through(swept):
    """What the sweep found beyond its cases (a runner that broke, OpenAPI violations)."""
    outcomes, _ = swept
    extra = [o for k, o in outcomes.items() if k not in KEYS and o.verdict == NOT_REFUSED]
    assert extra == [], "\n".join(f"{o.key}: {o.what}\n{o.detail}" for o in extra)
