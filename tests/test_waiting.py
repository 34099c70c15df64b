"""Waiting for Linodes and nodes, on virtual time with Linode's own timings (provisioning
35 s, boot 20 s): what it asks the API while they provision, boot and run their StackScript
(and what a whole `up` asks, by kind), and how soon it notices each step."""

from __future__ import annotations

import collections

import pytest

from swarmboot.apply import NotReadyError, up
from swarmboot.cloud import CloudError
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
    # Two reads of the events for the provisioning's progress (the first, a poll interval
    # in, leaves its end seconds open; the second, when it may first have come, tells it
    # closely and the boot goes when it is due), one for the boot's and one at its end: no
    # list of the Linodes while they provision and boot, their ends told by the events (or,
    # for the provisioning, by the boot's answer).
    assert routes["GET /account/events"] <= 4
    # The Linodes listed by the first look only: the looks after each round take them,
    # and the firewalls, from the API's answers to what the round did.
    assert routes["GET /linode/instances"] == 1
    assert routes["GET /networking/firewalls"] == 1
    # The StackScript published, the nodes' firewall made, the one Linode created, its
    # kernel read, booted; the firewall given its address; 14 requests in all (see
    # test_the_requests_of_an_up_of_one_node).
    assert sum(routes.values()) <= 14


# Five nodes over two regions, eu-central's two managers in a placement group.
FIVE = """[cluster]
name = "five"
[network]
encrypted = false
[regions.eu-central]
pools = [{ role = "manager", count = 2 }, { role = "worker", count = 1 }]
[regions.gb-lon]
pools = [{ role = "manager", count = 1 }, { role = "worker", count = 1 }]
"""


# The requests of an `up` of one new node, by kind. The first look (the Linodes, firewalls,
# placement groups and StackScripts); the StackScript published and the nodes' firewall made
# (no load balancers: none of theirs); the Linode made, its kernel read, booted once its
# provisioning was due by its progress, read twice in the events (a poll interval in, and
# when its end may first have come; no mark read first: the Linode is new); its boot
# followed by a read of its progress and one at its end; the firewall given its address.
# No list after a round: the API's answers said it all.
ONE_NODE = {
    "GET /linode/instances": 1,
    "GET /networking/firewalls": 1,
    "GET /placement/groups": 1,
    "GET /linode/stackscripts": 1,
    "POST /linode/stackscripts": 1,
    "POST /networking/firewalls": 1,
    "POST /linode/instances": 1,
    "GET /linode/instances/{linodeId}/configs": 1,
    "GET /account/events": 4,
    "POST /linode/instances/{linodeId}/boot": 1,
    "PUT /networking/firewalls/{firewallId}/rules": 1,
}
PER_LINODE = (
    "POST /linode/instances",
    "GET /linode/instances/{linodeId}/configs",
    "POST /linode/instances/{linodeId}/boot",
)


def test_the_requests_of_an_up_of_one_node(linode_time):
    server, fleet, clock = linode_time
    up(make_context(server, fleet, SOLO, clock))
    assert _routes(server) == ONE_NODE


def test_the_requests_of_an_up_of_five_nodes(linode_time):
    server, fleet, clock = linode_time
    up(make_context(server, fleet, FIVE, clock))
    # As for one node, three per Linode, and eu-central's managers' placement group made,
    # then listed again after the Linodes went into it (their compliance is Linode's to
    # tell); the same four reads of the events follow all five Linodes.
    assert _routes(server) == {
        **ONE_NODE,
        **dict.fromkeys(PER_LINODE, 5),
        "GET /placement/groups": 2,
        "POST /placement/groups": 1,
    }


def test_a_boot_sent_before_its_provisioning_ended_is_sent_again_after_a_read(linode_time):
    """A Linode whose provisioning is due by its progress is booted without asking; busy
    after all (its progress misled), its events are read a moment later and it is booted
    once they say it is due again."""
    server, fleet, clock = linode_time
    ctx = make_context(server, fleet, SOLO, clock)
    boot = ctx.cloud.boot
    answered: list[str] = []

    def busy_once(instance_id, config_id):
        if not answered:
            answered.append("busy")
            raise CloudError(
                "Linode API: POST boot: 400 Linode busy.", status=400, reason="Linode busy."
            )
        answered.append("booted")
        return boot(instance_id, config_id)

    ctx.cloud.boot = busy_once  # type: ignore[method-assign]
    result = up(ctx)
    assert answered == ["busy", "booted"]
    assert result.observed.instances[0].status == "running"
    routes = _routes(server)
    # One more read of the events than when the first boot went through.
    assert routes["GET /account/events"] == 5
    assert routes["GET /linode/instances"] == 1
    # Booted a moment later, not a poll interval later: done as soon as on time.
    assert clock.now <= 60.0


def test_a_linode_that_never_leaves_provisioning_is_asked_about_once_a_poll(linode_time):
    server, fleet, clock = linode_time
    SimAdmin(server.url, TOKEN).set_faults(stuck_provisioning=["solo-*"], stuck_attempts=1000)
    ctx = make_context(server, fleet, SOLO, clock, timeout=300.0)
    with pytest.raises(NotReadyError, match="did not finish provisioning after 300 s"):
        up(ctx)
    routes = _routes(server)
    # No progress to go by: one events request a poll (5 s), the Linodes never listed.
    assert 55 <= routes["GET /account/events"] <= 62
    # The first look, and the one whose world goes with the error (`up --json` shows it).
    assert routes["GET /linode/instances"] == 2


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


def test_the_events_of_linodes_made_in_a_run_are_read_from_when_the_first_was_made(
    virtual_world,
):
    """No mark is read before a round that only makes Linodes: their events are the
    account's from the first one's `created` on (a second before, as the API's times are
    whole seconds), which leaves out what happened before."""
    server, fleet, clock = virtual_world
    cloud = make_context(server, fleet, SOLO, clock).cloud
    body = {"region": "eu-central", "type": "g6-nanode-1"}
    before = cloud._call("post", "/linode/instances", data={**body, "label": "before-1"})
    clock.sleep(5.0)
    made = cloud._call("post", "/linode/instances", data={**body, "label": "made-1"})
    events = cloud.linode_events(None, created_from=made["created"])
    assert [(e.action, e.linode_id) for e in events] == [("linode_create", made["id"])]
    # Both were made, and both have their events.
    assert {e.linode_id for e in cloud.linode_events(0)} == {before["id"], made["id"]}
