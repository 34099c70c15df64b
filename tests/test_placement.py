"""The managers' placement groups end to end: `up` against the simulator makes them, puts the
managers in, is refused clearly by a strict group, warns of a non-compliant one; `down`
deletes them. The plan's own cases are in tests/plan_cases/."""

from __future__ import annotations

import pytest

from swarmboot.apply import run_steps, up
from swarmboot.cloud import CloudError, LinodeCloud
from swarmboot.cluster import observe, observe_cloud
from swarmboot.credentials import Target
from swarmboot.down import plan_down
from swarmboot.placement import PLACEMENT_TYPE, group_label, is_group_label
from swarmboot.plan import plan
from swarmboot.rebuild import rebuild
from swarmboot.sim import placement as sim_placement
from swarmboot.sim.admin import SimAdmin
from swarmboot.spec import parse_spec
from swarmboot.status import summary

from .world import EXAMPLE, TOKEN, make_context

GROUP = "itframe-eu-central-managers"
MANAGERS = ("itframe-eu-central-manager-1", "itframe-eu-central-manager-2")


def _example(placement: str) -> str:
    text = EXAMPLE.read_text()
    return text.replace(
        'name = "itframe"\n', f'name = "itframe"\nmanager_placement = "{placement}"\n', 1
    )


def _groups(ctx) -> dict:
    return {g.label: g for g in ctx.cloud.placement_groups([GROUP, "itframe-gb-lon-managers"])}


def _ids(observed, labels) -> set[int]:
    return {i.id for i in observed.instances if i.label in labels}


def test_up_puts_a_regions_managers_into_an_anti_affinity_group_and_a_second_up_does_nothing(
    world,
):
    server, fleet = world
    ctx = make_context(server, fleet)
    result = up(ctx)
    groups = _groups(ctx)
    assert list(groups) == [GROUP]  # gb-lon's one manager needs no group
    group = groups[GROUP]
    assert (group.region, group.type, group.policy) == ("eu-central", PLACEMENT_TYPE, "strict")
    assert set(group.linode_ids) == _ids(result.observed, MANAGERS)
    assert group.compliant and all(m.compliant for m in group.members)
    # Each Linode knows its group; only the managers of eu-central are in one.
    placed = {i.label for i in result.observed.instances if i.placement_group_id == group.id}
    assert placed == set(MANAGERS)
    assert "✓ Create placement group itframe-eu-central-managers (anti-affinity, strict) for " in (
        "\n".join(ctx.reporter.lines)
    )
    row = summary(ctx.spec, result.observed)["placement"]
    assert row == [
        {
            "region": "eu-central",
            "group": GROUP,
            "policy": "strict",
            "state": "compliant",
            "members": list(MANAGERS),
            "sharing_a_host": [],
            "outside": [],
        }
    ]

    before = len(SimAdmin(server.url, TOKEN).requests())
    again = up(make_context(server, fleet))
    assert again.steps_run == []
    new = SimAdmin(server.url, TOKEN).requests()[before:]
    assert {r["method"] for r in new} == {"GET"}


def test_managers_made_outside_a_group_are_put_into_it(world):
    server, fleet = world
    first = up(make_context(server, fleet, _example("none")))
    assert _groups(make_context(server, fleet)) == {}
    assert all(i.placement_group_id is None for i in first.observed.instances)

    ctx = make_context(server, fleet)
    steps = [s.describe() for s in plan(ctx.spec, observe(ctx), ctx.script)]
    assert steps == [
        f"Create placement group {GROUP} (anti-affinity, strict) for the managers in eu-central",
        f"Put {', '.join(MANAGERS)} into placement group {GROUP}",
    ]
    result = up(ctx)
    assert result.steps_run == steps
    assert set(_groups(ctx)[GROUP].linode_ids) == _ids(result.observed, MANAGERS)
    assert up(make_context(server, fleet)).steps_run == []


def test_a_strict_group_refuses_managers_on_one_host_with_a_clear_error(world):
    server, fleet = world
    made = up(make_context(server, fleet, _example("none")))
    SimAdmin(server.url, TOKEN).share_host(*sorted(_ids(made.observed, MANAGERS)))
    ctx = make_context(server, fleet)
    with pytest.raises(CloudError) as info:
        up(ctx)
    # Linode names the first of them (by id) that would share a host.
    first = min((i for i in made.observed.instances if i.label in MANAGERS), key=lambda i: i.id)
    assert str(info.value) == (
        f"Linode refused to put {', '.join(MANAGERS)} into placement group {GROUP}: Linode "
        f"{first.label} cannot be placed in placement group {GROUP} without "
        "breaking its anti_affinity:local placement; a strict group cannot take a manager on "
        "another member's host: delete that manager's Linode and `swarmboot node rebuild` "
        "makes it again inside the group, on a host of its own; or set "
        'cluster.manager_placement = "none" to keep the managers out of a group'
    )
    assert _groups(ctx)[GROUP].members == ()  # all or none: nothing was assigned
    # The fix the error gives: the named manager's Linode deleted, `node rebuild` makes it
    # again inside the group (on a host of its own) and puts the other one in too.
    ctx.cloud.delete_instance(first.id)
    result = rebuild(make_context(server, fleet), first.label)
    group = _groups(ctx)[GROUP]
    assert group.compliant and set(group.linode_ids) == _ids(result.observed, MANAGERS)
    assert len(result.observed.swarm.nodes) == 9


def test_a_flexible_group_takes_them_and_up_and_status_say_it_is_not_compliant(world):
    server, fleet = world
    made = up(make_context(server, fleet, _example("none")))
    ids = sorted(_ids(made.observed, MANAGERS))
    SimAdmin(server.url, TOKEN).share_host(*ids)
    ctx = make_context(server, fleet, _example("flexible"))
    result = up(ctx)
    group = _groups(ctx)[GROUP]
    assert group.policy == "flexible" and not group.compliant
    assert sorted(group.linode_ids) == ids
    warning = (
        f"! placement group {GROUP} is not compliant: {', '.join(MANAGERS)} share a host, so "
        "one host failure can take them together (Linode moves them apart when it has room)"
    )
    assert warning in ctx.reporter.lines
    (row,) = summary(ctx.spec, result.observed)["placement"]
    assert (row["state"], row["sharing_a_host"]) == ("not compliant", list(MANAGERS))
    # Once the hosts are apart again the group is compliant and up says nothing of it.
    SimAdmin(server.url, TOKEN).separate_hosts(*ids)
    calm = make_context(server, fleet, _example("flexible"))
    assert up(calm).steps_run == []
    assert not [line for line in calm.reporter.lines if "placement group" in line]


def test_down_deletes_the_group_after_the_linodes(world):
    server, fleet = world
    up(make_context(server, fleet))
    ctx = make_context(server, fleet)
    observed = observe_cloud(ctx)
    steps = plan_down(ctx.spec, observed)
    assert [s.describe() for s in steps][-1] == f"Delete the placement group {GROUP}"
    run_steps(ctx, observed, steps)
    assert _groups(ctx) == {}
    assert ctx.cloud.instances() == []


def test_prune_leaves_the_group_alone(world):
    server, fleet = world
    up(make_context(server, fleet))
    fewer = _example("strict").replace(
        '{ role = "manager", count = 2 }', '{ role = "manager", count = 1 }'
    )
    fewer = fewer.replace(
        '[regions.gb-lon]\npools = [\n  { role = "manager", count = 1 }',
        ('[regions.gb-lon]\npools = [\n  { role = "manager", count = 2 }'),
    )
    ctx = make_context(server, fleet, fewer)
    result = up(ctx, prune=True)
    assert result.observed.instance("itframe-eu-central-manager-2") is None
    group = _groups(ctx)[GROUP]  # kept, with the one manager left in it
    assert group.linode_ids == (result.observed.instance(MANAGERS[0]).id,)
    # gb-lon has two managers now: their group was made, and the new one made inside it.
    lon = _groups(ctx)["itframe-gb-lon-managers"]
    assert set(lon.linode_ids) == _ids(
        result.observed, ("itframe-gb-lon-manager-1", "itframe-gb-lon-manager-2")
    )


def test_a_lost_create_is_taken_as_made_but_a_group_with_others_linodes_is_not(world):
    server, _ = world
    cloud = LinodeCloud(Target(server.url, TOKEN, "test"), retry_interval=0.02)
    made = cloud.create_placement_group(GROUP, "eu-central", PLACEMENT_TYPE, "strict")
    again = cloud.create_placement_group(GROUP, "eu-central", PLACEMENT_TYPE, "strict")
    assert again.id == made.id  # a retried create whose first answer was lost
    api = cloud.client
    other = api.post(
        "/linode/instances",
        data={"type": "g6-nanode-1", "region": "gb-lon", "label": "shop-1", "booted": False},
    )
    taken = cloud.create_placement_group(
        "itframe-gb-lon-managers", "gb-lon", PLACEMENT_TYPE, "strict"
    )
    cloud.assign_placement_group(taken.id, [other["id"]])
    with pytest.raises(CloudError) as info:
        cloud.create_placement_group("itframe-gb-lon-managers", "gb-lon", PLACEMENT_TYPE, "strict")
    assert str(info.value).startswith(
        "the label itframe-gb-lon-managers is taken by a placement group that is not this cluster's"
    )


def test_an_assign_whose_answer_was_lost_is_taken_as_done(world):
    server, _ = world
    cloud = LinodeCloud(Target(server.url, TOKEN, "test"), retry_interval=0.02)
    group = cloud.create_placement_group(GROUP, "eu-central", PLACEMENT_TYPE, "strict")
    linode = cloud.client.post(
        "/linode/instances",
        data={"type": "g6-nanode-1", "region": "eu-central", "label": "m-1", "booted": False},
    )
    cloud.assign_placement_group(group.id, [linode["id"]])
    # Sent again (the first answer lost): "already in the group" is the answer it wanted.
    assert cloud.assign_placement_group(group.id, [linode["id"]]).linode_ids == (linode["id"],)


@pytest.mark.parametrize(
    ("cluster", "region"),
    [("a", "eu-central"), ("x" * 23 + "9", "us-iad"), ("a", "ab-" + "c" * 28), ("a-b", "in-bom-2")],
)
def test_every_group_label_a_spec_can_make_is_one_linode_takes(cluster, region):
    spec = parse_spec(
        f'[cluster]\nname = "{cluster}"\n[regions.{region}]\n'
        'pools = [{ role = "manager", count = 3 }]\n'
    )
    label = group_label(spec, region)
    assert is_group_label(label)
    assert sim_placement._LABEL.match(label)  # the simulator's rule, from Linode's spec


def test_someone_elses_group_under_a_label_the_plan_does_not_use_is_named_and_left_alone(world):
    from swarmboot.down import left_alone

    server, fleet = world
    ctx = make_context(server, fleet)
    other = ctx.cloud.client.post(
        "/linode/instances",
        data={"type": "g6-nanode-1", "region": "gb-lon", "label": "shop-1", "booted": False},
    )
    # gb-lon has one manager: the cluster wants no group there, so its label is free to take.
    theirs = ctx.cloud.create_placement_group(
        "itframe-gb-lon-managers", "gb-lon", PLACEMENT_TYPE, "flexible"
    )
    ctx.cloud.assign_placement_group(theirs.id, [other["id"]])
    result = up(ctx)
    line = (
        "placement group itframe-gb-lon-managers (it holds Linodes that are not the cluster's "
        "members: not this cluster's)"
    )
    assert summary(ctx.spec, result.observed)["not_members"] == [line]
    observed = observe_cloud(ctx)
    steps = plan_down(ctx.spec, observed)
    assert [s.describe() for s in steps if "placement" in s.describe()] == [
        f"Delete the placement group {GROUP}"
    ]
    assert left_alone(ctx.spec, observed) == (f"left alone: {line}",)
    run_steps(ctx, observed, steps)
    assert list(_groups(ctx)) == ["itframe-gb-lon-managers"]
    assert _groups(ctx)["itframe-gb-lon-managers"].linode_ids == (other["id"],)
