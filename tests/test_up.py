"""`up` against the simulator, with fake SSH and Docker seams (the lab's real nodes come later).

The cloud side is the real simulator, spec-checked; the nodes are `tests.fakes` machines the
simulator starts as Linodes boot.
"""

from __future__ import annotations

from collections import Counter

import pytest

from swarmboot import facts
from swarmboot.apply import NotReadyError, up
from swarmboot.cluster import observe
from swarmboot.firewall import cloud_firewall_labels
from swarmboot.plan import PlanError, plan
from swarmboot.sim.admin import SimAdmin
from swarmboot.spec import load_spec
from swarmboot.swarm import SwarmError

from .world import EXAMPLE, ORCHESTRATOR, SOLO, TOKEN, creates, make_context


def test_up_forms_the_example_cluster(world):
    server, fleet = world
    ctx = make_context(server, fleet)
    result = up(ctx)
    spec = ctx.spec
    assert {i.label for i in result.observed.instances} == {n.label for n in spec.nodes()}
    assert all(i.status == "running" for i in result.observed.instances)
    swarm = result.observed.swarm
    assert swarm is not None and len(swarm.nodes) == 9
    assert sum(n.role == "manager" for n in swarm.nodes) == 3
    for node in spec.nodes():
        entry = swarm.node(node.label)
        labels = dict(entry.labels)
        assert (labels["zone"], labels["region"], labels["role"]) == (
            node.region,
            node.region,
            node.role,
        )
    assert swarm.networks == (("itframe", True),)  # encrypted: the cluster spans regions
    assert swarm.heartbeat == fleet.heartbeat == 20  # given at the swarm's init
    # Every node advertises its public IPv4 (two regions) and lets the others in.
    addresses = sorted(i.ipv4_public for i in result.observed.instances)
    for inst in result.observed.instances:
        node = fleet.node(inst.label)
        assert node.advertise == inst.ipv4_public
        assert node.files[facts.MEMBERS_FILE].count(",") == len(addresses) - 1
        assert all(a in node.files[facts.MEMBERS_FILE] for a in addresses)
        assert "nft -f /etc/nftables.conf" in node.commands
        assert node.machine.kernel == facts.GRUB_KERNEL
        assert node.machine.stackscript_data["hostname"] == inst.label
        assert node.machine.authorized_keys == (ORCHESTRATOR,)
    firewalls = {f.label: f for f in result.observed.firewalls}
    lb_ids = {i.id for i in result.observed.instances if "-lb-" in i.label}
    assert set(firewalls) == set(cloud_firewall_labels(spec))
    assert set(firewalls["itframe-lb"].linode_ids) == lb_ids
    assert len(firewalls["itframe-nodes"].linode_ids) == 7
    assert creates(server) == 9
    # The join tokens are secrets: nowhere in what swarmboot reported.
    said = "\n".join(ctx.reporter.lines)
    assert "SWMTKN" not in said
    assert "Initialise the swarm on itframe-eu-central-manager-1" in said


def test_a_second_up_changes_nothing(world):
    server, fleet = world
    up(make_context(server, fleet))
    requests_before = len(SimAdmin(server.url, TOKEN).requests())
    again = up(make_context(server, fleet))
    assert again.steps_run == []
    assert creates(server) == 9
    new = SimAdmin(server.url, TOKEN).requests()[requests_before:]
    assert {r["method"] for r in new} == {"GET"}  # it only looked


def test_a_swarm_with_another_heartbeat_is_set_to_the_specs_once(world):
    """One made with Docker's default (or changed by hand) is set back to the spec's."""
    server, fleet = world
    up(make_context(server, fleet))
    fleet.heartbeat = 5
    again = up(make_context(server, fleet))
    assert again.steps_run == ["Set the swarm's heartbeat to 20 s (it is 5 s)"]
    assert [(c.kind, c.name) for c in again.changes] == [("heartbeat_set", "20")]
    assert fleet.heartbeat == 20
    assert up(make_context(server, fleet)).steps_run == []


def test_a_node_whose_stackscript_failed_is_named_and_left_out(world):
    server, fleet = world
    fleet.behaviour["itframe-gb-lon-worker-2"] = "failed"
    with pytest.raises(NotReadyError) as info:
        up(make_context(server, fleet))
    assert info.value.exit_code == 6
    assert "itframe-gb-lon-worker-2: the StackScript failed: vxlan probe failed" in str(info.value)
    swarm = info.value.result.observed.swarm
    assert {n.hostname for n in swarm.nodes} == {n.label for n in load_spec(EXAMPLE).nodes()} - {
        "itframe-gb-lon-worker-2"
    }


def test_a_node_whose_boot_failed_is_named_and_not_booted_again_and_again(world):
    server, fleet = world
    admin = SimAdmin(server.url, TOKEN)
    admin.set_faults(boot_failure=["itframe-gb-lon-lb-1"], boot_failure_attempts=1000)
    with pytest.raises(NotReadyError) as info:
        up(make_context(server, fleet))
    assert info.value.exit_code == 6
    assert "itframe-gb-lon-lb-1: its boot failed" in str(info.value)
    boots = [r for r in admin.requests() if r["method"] == "POST" and r["route"].endswith("/boot")]
    assert len(boots) == 9  # each Linode booted once: the failed one is not tried again
    swarm = info.value.result.observed.swarm
    assert len(swarm.nodes) == 8 and swarm.node("itframe-gb-lon-lb-1") is None


def test_a_connection_that_breaks_under_a_label_step_is_reconnected_and_the_step_redone(world):
    server, fleet = world
    ctx = make_context(server, fleet)
    broken = {"left": 1}
    set_labels = ctx.swarm.set_labels

    def flaky(manager, node_id, labels):
        if broken["left"]:
            broken["left"] -= 1
            raise SwarmError(f"{manager.label}: labelling a node: Connection reset by peer")
        set_labels(manager, node_id, labels)

    ctx.swarm.set_labels = flaky
    connections = ctx.connector.connections
    result = up(ctx)
    assert broken["left"] == 0
    assert all(dict(n.labels)["zone"] for n in result.observed.swarm.nodes)
    assert ctx.connector.connections > connections + 9  # the sessions were opened again


def _failing_joins(ctx, failures: dict[str, int]) -> None:
    join = ctx.swarm.join

    def flaky(remote, manager_address, token, advertise):
        if failures.get(remote.label, 0) > 0:
            failures[remote.label] -= 1
            raise SwarmError(f"{remote.label}: docker swarm join: context deadline exceeded")
        join(remote, manager_address, token, advertise)

    ctx.swarm.join = flaky


def test_a_worker_whose_join_failed_once_is_joined_in_the_next_round(world):
    server, fleet = world
    ctx = make_context(server, fleet)
    _failing_joins(ctx, {"itframe-gb-lon-worker-1": 1})
    result = up(ctx)
    assert len(result.observed.swarm.nodes) == 9
    assert dict(result.observed.swarm.node("itframe-gb-lon-worker-1").labels)["role"] == "worker"
    said = "\n".join(ctx.reporter.lines)
    assert "itframe-gb-lon-worker-1: its join failed, tried again next round" in said


def test_a_worker_that_cannot_join_is_named_and_the_others_are_joined(world):
    server, fleet = world
    ctx = make_context(server, fleet)
    _failing_joins(ctx, {"itframe-eu-central-worker-2": 99})
    with pytest.raises(NotReadyError) as info:
        up(ctx)
    assert info.value.exit_code == 6
    assert "itframe-eu-central-worker-2: its join failed 2 times" in str(info.value)
    swarm = info.value.result.observed.swarm
    assert len(swarm.nodes) == 8 and swarm.node("itframe-eu-central-worker-2") is None
    assert all(dict(n.labels).get("zone") for n in swarm.nodes)


def test_a_join_left_pending_is_carried_on_by_the_next_round_not_sent_again(world):
    server, fleet = world
    ctx = make_context(server, fleet)
    fleet.join_outcomes["itframe-gb-lon-worker-1"] = ["pending"]
    result = up(ctx)
    assert len(result.observed.swarm.nodes) == 9
    assert dict(result.observed.swarm.node("itframe-gb-lon-worker-1").labels)["zone"] == "gb-lon"
    # The pending join was carried on by the next round's join (a wait, as the driver's),
    # never preceded by a leave: its node kept going, and nothing was left Down.
    mine = [call for call in fleet.calls if call[1] == "itframe-gb-lon-worker-1"]
    assert [c for c, _ in mine if c in ("join", "leave")] == ["join", "join"]
    assert all(n.state == "ready" for n in result.observed.swarm.nodes)


def test_a_join_that_ended_in_error_leaves_before_it_joins_again(world):
    server, fleet = world
    ctx = make_context(server, fleet)
    fleet.join_outcomes["itframe-eu-central-worker-2"] = ["error"]
    result = up(ctx)
    assert len(result.observed.swarm.nodes) == 9
    mine = [call for call in fleet.calls if call[1] == "itframe-eu-central-worker-2"]
    assert [c for c, _ in mine if c in ("join", "leave")] == ["join", "leave", "join"]
    said = "\n".join(ctx.reporter.lines)
    assert "itframe-eu-central-worker-2: its join failed, tried again next round" in said


def test_an_encrypted_overlay_is_refused_where_esp_is_missing(world):
    server, fleet = world
    fleet.behaviour["itframe-eu-central-lb-1"] = "no-esp"
    with pytest.raises(
        PlanError, match="itframe-eu-central-lb-1 report a kernel without IPsec ESP"
    ):
        up(make_context(server, fleet))
    assert fleet.swarm_nodes == {}  # nobody joined a swarm whose overlay would drop traffic


def test_a_wrong_host_key_is_never_accepted(virtual_world):
    server, fleet, clock = virtual_world
    fleet.behaviour["solo-eu-central-manager-1"] = "wrong-key"
    with pytest.raises(NotReadyError) as info:
        up(make_context(server, fleet, SOLO, clock, timeout=600.0))
    assert (
        "solo-eu-central-manager-1 (solo-eu-central-manager-1: the SSH host key is "
        "SHA256:someone-elses-key, but SHA256:" in str(info.value)
    )
    assert fleet.swarm_nodes == {}
    assert clock.now >= 600.0


def test_after_a_crash_the_plan_shows_only_what_is_missing_and_up_finishes(virtual_world):
    server, fleet, clock = virtual_world
    admin = SimAdmin(server.url, TOKEN)
    admin.set_faults(stuck_provisioning=["itframe-gb-lon-*"], stuck_attempts=1000)
    with pytest.raises(NotReadyError, match="did not finish provisioning after 600 s") as raised:
        up(make_context(server, fleet, clock=clock, timeout=600.0))
    # What the run made goes with the error (`up --json` prints it), the world as it is now.
    made = raised.value.result
    assert Counter(c.kind for c in made.changes)["linode_created"] == 9
    assert {i.status for i in made.observed.instances if "gb-lon" in i.label} == {"provisioning"}
    ctx = make_context(server, fleet, clock=clock)
    steps = [s.describe() for s in plan(ctx.spec, observe(ctx), ctx.script)]
    assert not any(s.startswith(("Create itframe", "Create Cloud", "Publish")) for s in steps)
    assert "Boot itframe-gb-lon-lb-1" in steps
    # A gb-lon Linode that will never leave provisioning is deleted; up makes it again.
    stuck = next(i for i in observe(ctx).instances if i.label == "itframe-gb-lon-worker-1")
    ctx.cloud.delete_instance(stuck.id)
    admin.set_faults()
    for inst in observe(ctx).instances:  # the others finish their provisioning
        if inst.status == "provisioning":
            ctx.cloud.delete_instance(inst.id)
    result = up(make_context(server, fleet, clock=clock))
    assert len(result.observed.swarm.nodes) == 9
    labels = [i.label for i in result.observed.instances]
    assert len(labels) == len(set(labels)) == 9


def test_lost_and_retried_creates_never_make_a_second_linode(world):
    server, fleet = world
    admin = SimAdmin(server.url, TOKEN)
    admin.set_faults(seed=3, lost_create_rate=0.5, error_rate=0.1, error_statuses=[502, 503])
    try:
        result = up(make_context(server, fleet))
        fired = admin.fired()
    finally:
        admin.set_faults()
    labels = [i.label for i in result.observed.instances]
    assert len(labels) == len(set(labels)) == 9
    assert any(f["kind"] == "lost-create" for f in fired)
    assert any(f["kind"].startswith("error 50") for f in fired)
    assert len(result.observed.swarm.nodes) == 9


def test_a_step_planned_before_its_facts_were_known_ends_the_round(world):
    """A firewall sync planned while Linodes were still to be made carries no devices: its
    runner decides nothing and ends the round, and nothing is written to the cloud."""
    from swarmboot.apply import run_steps
    from swarmboot.plan import SyncCloudFirewall, SyncMembers

    server, fleet = world
    ctx = make_context(server, fleet)
    before = len(SimAdmin(server.url, TOKEN).requests())
    for step in (
        SyncCloudFirewall("itframe-nodes", None, None, None, None),
        SyncMembers(("itframe-eu-central-worker-1",), None),
    ):
        assert run_steps(ctx, observe(ctx), (step,)) == []
    written = [r for r in SimAdmin(server.url, TOKEN).requests()[before:] if r["method"] != "GET"]
    assert written == []


def _during_the_swarm_round(ctx, label: str, act) -> list[int]:
    """Have `act(linode_id)` done to `label`'s Linode once, as the swarm round ends (when
    the overlay network is made); the id it was done to."""
    ensure_network = ctx.swarm.ensure_network
    done: list[int] = []

    def and_act(manager, name, encrypted, subnet=None):
        if not done:
            done.append(ctx.cloud.instance(label).id)
            act(done[0])
        return ensure_network(manager, name, encrypted, subnet)

    ctx.swarm.ensure_network = and_act
    return done


def test_a_linode_deleted_during_the_swarm_round_is_made_again_by_the_same_up(world):
    """The look after a round takes the Linodes from the API's answers, but a node that no
    longer answers is looked for in a list: gone, it is made again, not waited for."""
    server, fleet = world
    ctx = make_context(server, fleet)
    gone = "itframe-gb-lon-worker-2"
    deleted = _during_the_swarm_round(ctx, gone, ctx.cloud.delete_instance)
    result = up(ctx)
    again = result.observed.instance(gone)
    assert again is not None and again.id != deleted[0] and again.status == "running"
    assert creates(server) == 10
    assert result.observed.swarm.node(gone).state == "ready"


def test_a_linode_shut_down_during_the_swarm_round_is_booted_again_by_the_same_up(world):
    """The same for a Linode powered off: listed as offline, it is booted again (its events
    followed from when this run made the first Linode, no mark read) and rejoins."""
    server, fleet = world
    ctx = make_context(server, fleet)
    off = "itframe-eu-central-worker-1"
    shut = _during_the_swarm_round(ctx, off, ctx.cloud.shutdown)
    result = up(ctx)
    again = result.observed.instance(off)
    assert again.id == shut[0] and again.status == "running"
    assert creates(server) == 9
    assert result.observed.swarm.node(off).state == "ready"
    admin = SimAdmin(server.url, TOKEN)
    boots = [r for r in admin.requests() if r["route"].endswith("/boot")]
    assert len(boots) == 10
