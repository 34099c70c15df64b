"""Waiting for Linodes and nodes, on virtual time with Linode's own timings (provisioning
35 s, boot 20 s): what it asks the API while they provision, boot and run their StackScript,
and how soon it notices each step."""

from __future__ import annotations

import collections

import pytest

from swarmboot.apply import NotReadyError, up
from swarmboot.sim.admin import SimAdmin

from .world import SOLO, TOKEN, make_context


def _routes(server) -> collections.Counter[str]:
    return collections.Counter(f"{r['method']} {r['route']}" for r in server.requests)


@pytest.fixture
def linode_time(virtual_world):
    """The virtual world with the simulator at Linode's timings (x1)."""
    server, fleet, clock = virtual_world
    SimAdmin(server.url, TOKEN).set_timings(scale=1.0)
    return server, fleet, clock


def test_one_node_is_waited_for_by_its_events_with_few_requests(linode_time):
    server, fleet, clock = linode_time
    ctx = make_context(server, fleet, SOLO, clock)
    up(ctx)
    routes = _routes(server)
    # Its provisioning and boot end 55 s after the create: each noticed within a few seconds.
    assert 55.0 <= clock.now <= 60.0
    # One request for the events reads the mark; then a look at each transition's progress
    # and one at its end (a boot's end can take one more): no list of the Linodes while
    # they provision and boot, their ends told by the events.
    assert routes["GET /account/events"] <= 6
    # The Linodes listed by the first look only: the looks after each round take them,
    # and the firewalls, from the API's answers to what the round did.
    assert routes["GET /linode/instances"] == 1
    assert routes["GET /networking/firewalls"] == 1
    # The StackScript published, the firewalls made, the one Linode created, its kernel
    # read, booted; the firewalls given its address; 22 requests in all.
    assert sum(routes.values()) <= 22


def test_a_linode_that_never_leaves_provisioning_is_asked_about_once_a_poll(linode_time):
    server, fleet, clock = linode_time
    SimAdmin(server.url, TOKEN).set_faults(stuck_provisioning=["solo-*"], stuck_attempts=1000)
    ctx = make_context(server, fleet, SOLO, clock, timeout=300.0)
    with pytest.raises(NotReadyError, match="did not finish provisioning after 300 s"):
        up(ctx)
    routes = _routes(server)
    # No progress to go by: one events request a poll (5 s), the Linodes never listed.
    assert 55 <= routes["GET /account/events"] <= 62
    assert routes["GET /linode/instances"] == 1  # the first look only


def test_a_node_gone_while_its_stackscript_runs_is_noticed_at_the_next_poll(linode_time):
    server, fleet, clock = linode_time
    fleet.behaviour["solo-eu-central-manager-1"] = "stuck"  # its StackScript never reports
    ctx = make_context(server, fleet, SOLO, clock, timeout=600.0)
    listed_at: list[float] = []
    instances = ctx.cloud.instances

    def listing(*args, **kwargs):
        listed_at.append(clock.now)
        return instances(*args, **kwargs)

    ctx.cloud.instances = listing  # type: ignore[method-assign]
    deleted: list[float] = []

    def delete_after_two_minutes() -> None:
        if clock.now >= 120.0 and not deleted:
            deleted.append(clock.now)
            inst = ctx.cloud.instance("solo-eu-central-manager-1")
            ctx.cloud.delete_instance(inst.id)

    clock.on_sleep.append(delete_after_two_minutes)
    with pytest.raises(NotReadyError, match=r"solo-eu-central-manager-1 \(its Linode is gone\)"):
        up(ctx)
    # While its StackScript ran (it answered SSH), the Linodes were listed once a minute.
    quiet = [t for t in listed_at if 60.0 < t < deleted[0]]
    assert len(quiet) <= 2
    # Gone, it stops answering: the next poll lists the Linodes.
    after = [t for t in listed_at if t >= deleted[0]]
    assert after and after[0] - deleted[0] <= 10.0
