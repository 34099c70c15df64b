"""Linode interfaces end to end against the simulator (spec-checked), with fake nodes: `up`,
`node rebuild`, `repair`, `status` and `down` on Linodes of the `linode` generation, chosen
by `cluster.interfaces = "linode"` or by the account's default under "auto".

Each Linode gets a public interface and one in its region's VPC, each behind its Cloud
Firewall; the swarm advertises public IPv4 across regions and the VPC address within one.
"""

from __future__ import annotations

import json

import pytest
from linode_api4 import LinodeClient

from swarmboot.apply import up
from swarmboot.cluster import observe, observe_cloud
from swarmboot.down import plan_down
from swarmboot.interfaces import vpc_label
from swarmboot.membership import cluster_addresses
from swarmboot.plan import PlanError, plan
from swarmboot.rebuild import rebuild
from swarmboot.sim.admin import SimAdmin
from swarmboot.status import summary

from .world import EXAMPLE, MARKS, TOKEN, make_context

LINODE = EXAMPLE.read_text().replace(
    'name = "itframe"\n', 'name = "itframe"\ninterfaces = "linode"\n', 1
)
AUTO = LINODE.replace('interfaces = "linode"', 'interfaces = "auto"')
# One region: the swarm advertises the nodes' VPC addresses.
ONE_REGION = """
[cluster]
name = "solo"
interfaces = "linode"
[regions.eu-central]
pools = [{ role = "manager", count = 1 }, { role = "worker", count = 2 }]
"""
WORKER = "itframe-gb-lon-worker-2"


def _client(server) -> LinodeClient:
    return LinodeClient(TOKEN, base_url=server.url)


def _interfaces(server, linode_id: int) -> list[dict]:
    return _client(server).get(f"/linode/instances/{linode_id}/interfaces")["interfaces"]


def _assert_behind_their_firewalls(server, observed) -> None:
    """Every Linode's public and VPC interfaces behind its firewall, and nothing else."""
    firewalls = {f.label: f.id for f in observed.firewalls}
    for inst in observed.instances:
        wanted = firewalls["itframe-lb" if "-lb-" in inst.label else "itframe-nodes"]
        found = _interfaces(server, inst.id)
        assert sorted(bool(i["vpc"]) for i in found) == [False, True], inst.label
        assert {i["firewall_id"] for i in found} == {wanted}, inst.label
    for firewall in observed.firewalls:
        assert firewall.linode_ids == ()  # no Linode behind one as a whole


def test_up_makes_each_linode_with_a_public_and_a_vpc_interface_behind_its_firewall(world):
    server, fleet = world
    ctx = make_context(server, fleet, LINODE)
    result = up(ctx)
    observed = result.observed
    assert len(result.observed.swarm.nodes) == 9
    assert {i.interface_generation for i in observed.instances} == {"linode"}
    # A VPC per region, marked as the cluster's, each node's address in it.
    assert sorted(v.label for v in observed.vpcs) == ["itframe-eu-central", "itframe-gb-lon"]
    for vpc in observed.vpcs:
        assert vpc.description.split()[:2] == [
            "swarmboot:itframe",
            MARKS.mark("itframe", vpc.label, f"vpc:{vpc.region}"),
        ]
        (subnet,) = vpc.subnets
        assert (subnet.label, subnet.ipv4) == ("nodes", "192.168.64.0/24")
        assert set(subnet.linode_ids) == {
            i.id for i in observed.instances if i.region == vpc.region
        }
    for inst in observed.instances:
        assert inst.ipv4_vpc.startswith("192.168.64.") and inst.ipv4_private is None
    _assert_behind_their_firewalls(server, observed)
    # Two regions: every node advertises its public IPv4; the member sets and the firewall
    # rules also hold the VPC addresses (the same range in each region's VPC).
    addresses = cluster_addresses(ctx.spec.nodes(), {i.label: i for i in observed.instances})
    assert set(addresses) == {i.ipv4_public for i in observed.instances} | {
        f"192.168.64.{n}" for n in range(2, 7)
    }
    for inst in observed.instances:
        assert fleet.node(inst.label).advertise == inst.ipv4_public
        assert observed.members[inst.label] == addresses
    # A second `up` only looks.
    before = len(SimAdmin(server.url, TOKEN).requests())
    again = up(make_context(server, fleet, LINODE))
    assert again.steps_run == [] and again.changes == []
    assert {r["method"] for r in SimAdmin(server.url, TOKEN).requests()[before:]} == {"GET"}


def test_within_one_region_the_swarm_advertises_the_vpc_addresses(world):
    server, fleet = world
    result = up(make_context(server, fleet, ONE_REGION))
    for inst in result.observed.instances:
        assert fleet.node(inst.label).advertise == inst.ipv4_vpc
    assert len(result.observed.swarm.nodes) == 3


@pytest.mark.parametrize(
    "setting,generation",
    [
        ("linode_default_but_legacy_config_allowed", "linode"),
        ("linode_only", "linode"),
        ("legacy_config_default_but_linode_allowed", "legacy_config"),
    ],
)
def test_auto_follows_the_accounts_default(world, setting, generation):
    server, fleet = world
    SimAdmin(server.url, TOKEN).set_interfaces_for_new_linodes(setting)
    ctx = make_context(server, fleet, AUTO)
    result = up(ctx)
    assert {i.interface_generation for i in result.observed.instances} == {generation}
    assert len(result.observed.swarm.nodes) == 9
    shown = summary(ctx.spec, result.observed)
    assert shown["interfaces"] == generation
    if generation == "linode":
        assert [v["state"] for v in shown["vpcs"]] == ["present", "present"]
        assert all(n["vpc_ipv4"] and n["interfaces"] == "linode" for n in shown["nodes"])
        _assert_behind_their_firewalls(server, result.observed)
    else:
        assert shown["vpcs"] == [] and result.observed.vpcs == ()
        assert all(n["vpc_ipv4"] is None for n in shown["nodes"])


def test_a_rebuilt_linode_keeps_its_interfaces_and_one_made_again_gets_them(world):
    server, fleet = world
    up(make_context(server, fleet, LINODE))
    ctx = make_context(server, fleet, LINODE)
    before = observe(ctx).instance(WORKER)
    interfaces = _interfaces(server, before.id)
    rebuild(ctx, WORKER)
    after = observe(ctx).instance(WORKER)
    assert after.id == before.id and after.ipv4_vpc == before.ipv4_vpc
    assert _interfaces(server, after.id) == interfaces  # the same ones, behind the same firewall
    # A Linode that is gone is made again with both interfaces, behind its firewall.
    ctx.cloud.delete_instance(after.id)
    again = make_context(server, fleet, LINODE)
    rebuild(again, WORKER)
    observed = observe(again)
    made = observed.instance(WORKER)
    assert made.id != after.id and made.interface_generation == "linode"
    assert made.ipv4_vpc is not None
    _assert_behind_their_firewalls(server, observed)
    assert plan(again.spec, observed, again.script) == ()


def test_firewalls_are_set_again_per_interface_after_someone_changed_them(world):
    server, fleet = world
    result = up(make_context(server, fleet, LINODE))
    client = _client(server)
    nodes, lb = (result.observed.firewall(f"itframe-{k}") for k in ("nodes", "lb"))
    worker = result.observed.instance(WORKER)
    balancer = result.observed.instance("itframe-eu-central-lb-1")
    public = next(i for i in _interfaces(server, worker.id) if i["public"])
    # Someone moves a worker's public interface behind the load balancers' firewall, and
    # takes a load balancer's VPC interface off it.
    client.put(
        f"/linode/instances/{worker.id}/interfaces/{public['id']}", data={"firewall_id": lb.id}
    )
    device = next(
        d
        for d in client.get(f"/networking/firewalls/{lb.id}/devices")["data"]
        if d["entity"]["id"] == balancer.vpc_interface_id
    )
    client.delete(f"/networking/firewalls/{lb.id}/devices/{device['id']}")
    ctx = make_context(server, fleet, LINODE)
    steps = [s.describe() for s in plan(ctx.spec, observe(ctx), ctx.script)]
    assert steps == [
        "Update Cloud Firewall itframe-nodes: devices (Linode interfaces), behind it 7 nodes "
        "(itframe-eu-central-manager-1, itframe-eu-central-manager-2, …)",
        "Update Cloud Firewall itframe-lb: devices (Linode interfaces), behind it "
        "itframe-eu-central-lb-1, itframe-gb-lon-lb-1",
    ]
    fixed = up(ctx)
    assert [c.kind for c in fixed.changes] == ["firewall_updated", "firewall_updated"]
    _assert_behind_their_firewalls(server, fixed.observed)
    assert nodes.id == fixed.observed.firewall("itframe-nodes").id


def test_down_deletes_the_vpcs_after_the_linodes(world):
    server, fleet = world
    up(make_context(server, fleet, LINODE))
    from swarmboot.apply import run_steps

    ctx = make_context(server, fleet, LINODE)
    observed = observe_cloud(ctx, vpcs=True)
    steps = plan_down(ctx.spec, observed)
    kinds = [type(s).__name__ for s in steps]
    assert kinds == ["DeleteInstance"] * 9 + ["DeleteCloudFirewall"] * 2 + [
        "DeletePlacementGroup",
        "DeleteVpc",
        "DeleteVpc",
    ]
    run_steps(ctx, observed, steps)
    assert _client(server).get("/vpcs")["data"] == []
    assert plan_down(ctx.spec, observe_cloud(ctx, vpcs=True)) == ()


def test_a_vpc_under_the_clusters_label_without_its_mark_is_refused_and_kept(world):
    server, fleet = world
    client = _client(server)
    made = client.post(
        "/vpcs",
        data={
            "label": "itframe-gb-lon",
            "region": "gb-lon",
            "description": "swarmboot:itframe copied-from-somewhere",
            "subnets": [{"label": "nodes", "ipv4": "192.168.64.0/24"}],
        },
    )
    ctx = make_context(server, fleet, LINODE)
    observed = observe(ctx)
    assert observed.vpcs == ()
    with pytest.raises(PlanError) as info:
        plan(ctx.spec, observed, ctx.script)
    assert info.value.exit_code == 4
    assert str(info.value).startswith(
        "VPCs itframe-gb-lon (its description lacks the tag swarmboot:itframe and the mark "
        "this SSH identity makes) carry this cluster's labels but are not its own"
    )
    assert plan_down(ctx.spec, observed) == ()
    assert summary(ctx.spec, observed)["not_members"] == [
        "VPC itframe-gb-lon (its description lacks the tag swarmboot:itframe and the mark "
        "this SSH identity makes: not this cluster's)"
    ]
    # Under the legacy generation the cluster wants no VPC: the other one is no obstacle.
    legacy = make_context(server, fleet, LINODE.replace('"linode"', '"legacy"'))
    assert plan(legacy.spec, observe(legacy), legacy.script)
    assert [v["id"] for v in client.get("/vpcs")["data"]] == [made["id"]]


def test_down_keeps_a_vpc_that_holds_another_linodes_interface(world):
    server, fleet = world
    up(make_context(server, fleet, LINODE))
    client = _client(server)
    ctx = make_context(server, fleet, LINODE)
    vpc = observe(ctx).vpc(vpc_label(ctx.spec, "gb-lon"))
    stranger = client.post(
        "/linode/instances",
        data={
            "label": "shop-web-1",
            "region": "gb-lon",
            "type": "g6-nanode-1",
            "interface_generation": "linode",
            "interfaces": [{"vpc": {"subnet_id": vpc.subnets[0].id}}],
        },
    )
    from swarmboot.apply import run_steps

    observed = observe_cloud(ctx, vpcs=True)
    steps = plan_down(ctx.spec, observed)
    assert [s.label for s in steps if type(s).__name__ == "DeleteVpc"] == ["itframe-eu-central"]
    assert (
        f"VPC itframe-gb-lon holds interfaces of Linodes that are not members ({stranger['id']}): "
        "it is the cluster's, but `down` keeps it while they are in it"
        in summary(ctx.spec, observed)["not_members"]
    )
    run_steps(ctx, observed, steps)
    assert [v["label"] for v in client.get("/vpcs")["data"]] == ["itframe-gb-lon"]


def test_the_command_line_with_auto_on_an_account_of_linode_interfaces(cli_sim, tmp_path):
    """`plan`, `up`, `status` and `down` through the command line, records only (no
    machines: `up` stops after the cloud steps)."""
    from typer.testing import CliRunner

    from swarmboot.cli import app

    from .conftest import CLI_TOKEN

    SimAdmin(cli_sim.url, CLI_TOKEN).set_interfaces_for_new_linodes("linode_only")
    spec = tmp_path / "itframe.toml"
    spec.write_text(AUTO)
    runner = CliRunner()

    def run(*args: str):
        result = runner.invoke(app, list(args))
        assert CLI_TOKEN not in result.output
        return result

    planned = run("plan", str(spec))
    assert planned.exit_code == 0, planned.output
    assert "  4. Create VPC itframe-eu-central with subnet nodes (192.168.64.0/24) for the " in (
        planned.stdout
    )
    made = run("up", str(spec), "--timeout", "60", "--json")
    assert made.exit_code == 6, made.output  # no machines behind the simulator's Linodes
    shown = json.loads(made.stdout)
    assert shown["interfaces"] == "linode"
    assert [(v["vpc"], v["state"], len(v["nodes"])) for v in shown["vpcs"]] == [
        ("itframe-eu-central", "present", 5),
        ("itframe-gb-lon", "present", 4),
    ]
    assert {c["kind"] for c in shown["changed"]} >= {"vpc_created", "linode_created"}
    table = run("status", str(spec))
    assert table.exit_code == 0, table.output
    header = next(line for line in table.stdout.splitlines() if "node" in line and "ipv4" in line)
    assert "interfaces" in header and "vpc ipv4" in header
    assert "VPC in gb-lon: itframe-gb-lon (subnet 192.168.64.0/24): 4 node(s) in it" in table.stdout
    gone = run("down", str(spec), "--yes")
    assert gone.exit_code == 0, gone.output
    assert gone.stdout == (
        "deleted\t9 Linode(s) tagged swarmboot:itframe, 2 Cloud Firewall(s), 1 placement "
        "group(s), 2 VPC(s)\n"
    )
    client = LinodeClient(CLI_TOKEN, base_url=cli_sim.url)
    assert client.get("/vpcs")["data"] == [] and client.get("/linode/instances")["data"] == []


def test_repair_rebuilds_a_dead_node_in_place_with_its_interfaces(world):
    from swarmboot.rebuild import repair

    server, fleet = world
    up(make_context(server, fleet, LINODE))
    ctx = make_context(server, fleet, LINODE)
    before = observe(ctx).instance(WORKER)
    fleet.node(WORKER).down = True  # the machine is dead; Linode still says running
    result = repair(ctx)
    assert [r[0] for r in result.repaired] == [WORKER]
    after = result.observed.instance(WORKER)
    assert (after.id, after.vpc_interface_id, after.ipv4_vpc) == (
        before.id,
        before.vpc_interface_id,
        before.ipv4_vpc,
    )
    _assert_behind_their_firewalls(server, result.observed)
    assert plan(ctx.spec, observe(ctx), ctx.script) == ()


def test_adopt_marks_the_vpcs_another_identity_made(cli_sim, tmp_path):
    """A cluster with Linode interfaces made with another SSH key (here: its marks taken
    off): its Linodes and its VPCs are refused until `adopt` marks them, which names each."""
    from typer.testing import CliRunner

    from swarmboot.cli import app

    from .conftest import CLI_TOKEN

    spec = tmp_path / "itframe.toml"
    spec.write_text(LINODE)
    runner = CliRunner()
    assert runner.invoke(app, ["up", str(spec), "--timeout", "60"]).exit_code == 6
    client = LinodeClient(CLI_TOKEN, base_url=cli_sim.url)
    for linode in client.linode.instances():
        kept = [t for t in linode.tags if not t.startswith("sbm:")]
        client.put(f"/linode/instances/{linode.id}", data={"tags": kept})
    for vpc in client.get("/vpcs")["data"]:
        client.put(f"/vpcs/{vpc['id']}", data={"description": "swarmboot:itframe elsewhere"})
    assert runner.invoke(app, ["plan", str(spec)]).exit_code == 4
    done = runner.invoke(app, ["adopt", str(spec), "--yes"])
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines()[-2:] == [
        f" 10. Mark VPC itframe-eu-central (VPC {_vpc_id(client, 'itframe-eu-central')}) as "
        "this cluster's",
        f" 11. Mark VPC itframe-gb-lon (VPC {_vpc_id(client, 'itframe-gb-lon')}) as this cluster's",
    ]
    assert "itframe: 9 Linode(s) and 2 VPC(s) marked" in done.stderr
    planned = runner.invoke(app, ["plan", str(spec)])
    assert planned.exit_code == 0, planned.output
    assert "Create VPC" not in planned.stdout


def _vpc_id(client, label: str) -> int:
    return next(v["id"] for v in client.get("/vpcs")["data"] if v["label"] == label)
