"""A few fault drills in the test suite (`make drills` runs 200 on each interface generation):
`up` and `down` under seeded simulator faults, SIGKILLed at a random moment and run again,
converge with no duplicate and no leaked Linode, on Linodes with legacy-config interfaces and
on Linodes with Linode interfaces. Seeds whose faults include lost creates, 5xx, drops, a 429
storm, stuck provisioning and failed boots between them."""

from __future__ import annotations

import pytest

from .drill import GENERATIONS, Drills, Tally, faults_for

SEEDS = (3, 7)


def test_the_seeds_draw_every_kind_of_fault():
    drawn = set().union(*(faults_for(seed) for seed in SEEDS))
    assert {
        "error_rate",
        "drop_rate",
        "storm_seconds",
        "lost_create_rate",
        "stuck_rate",
        "boot_failure_rate",
    } <= drawn


@pytest.fixture(scope="module", params=GENERATIONS)
def drills(request):
    """The drills on one interface generation: "legacy" (each Linode behind its firewall as
    a whole) or "linode" (Linode interfaces in a VPC per region, chosen by "auto")."""
    found = Drills(interfaces=request.param)
    yield found
    found.close()


@pytest.mark.parametrize("seed", SEEDS)
def test_a_drill_converges_with_no_duplicate_and_no_leak(drills, seed):
    tally = Tally()
    drills.run(seed, tally)
    assert tally.problems == []
    assert (tally.converged, tally.duplicates, tally.leaked, tally.left_after_down) == (1, 0, 0, 0)
