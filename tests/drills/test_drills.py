"""A few fault drills in the test suite (`make drills` runs 200): `up` and `down` under seeded
simulator faults, SIGKILLed at a random moment and run again, converge with no duplicate and no
leaked Linode. Seeds whose faults include lost creates, 5xx, drops, a 429 storm, stuck
provisioning and failed boots between them."""

from __future__ import annotations

import pytest

from .drill import Drills, Tally, faults_for

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


@pytest.fixture(scope="module")
def drills():
    found = Drills()
    yield found
    found.close()


@pytest.mark.parametrize("seed", SEEDS)
def test_a_drill_converges_with_no_duplicate_and_no_leak(drills, seed):
    tally = Tally()
    drills.run(seed, tally)
    assert tally.problems == []
    assert (tally.converged, tally.duplicates, tally.leaked, tally.left_after_down) == (1, 0, 0, 0)
