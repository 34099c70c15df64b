"""VPC dual stack, custom VPC IPv4 ranges and RDMA VPCs, through linode_api4 unchanged and by
hand; every exchange is checked against both specs. The shapes are those of linodego's
recorded answers (test/integration/fixtures/TestVPC_*.yaml) and what linode_api4's suite
asserts."""

from __future__ import annotations

import ipaddress

import pytest
from linode_api4 import VPC, VPCIPv4DefaultRange, VPCSubnet
from linode_api4.objects import Instance
from linode_api4.objects.linode import InterfaceGeneration

REGION = "eu-central"
POOL = ipaddress.ip_network("3fff::/20")  # the VPCs' IPv6 ranges: RFC 9637 documentation


def _vpc(api, **body):
    answer = api("POST", "/vpcs", {"label": "net", "region": REGION, **body})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _offline_linode(client, label="node-1"):
    made = client.linode.instance_create(
        "g6-nanode-1", REGION, label=label, interface_generation=InterfaceGeneration.LINODE
    )
    return made[0] if isinstance(made, tuple) else made


def test_a_vpc_has_linodes_default_ipv4_ranges_and_no_ipv6_unless_asked(api):
    made = _vpc(api, subnets=[{"label": "a", "ipv4": "192.168.0.0/25"}])
    assert (made["ipv4"], made["ipv6"], made["vpc_type"]) == (
        [{"range": "10.0.0.0/8"}, {"range": "172.16.0.0/12"}, {"range": "192.168.0.0/17"}],
        None,
        "regular",
    )
    (subnet,) = made["subnets"]
    assert {k: subnet[k] for k in ("ipv6", "databases", "nodebalancers", "vpc_type")} == {
        "ipv6": None,
        "databases": [],
        "nodebalancers": [],
        "vpc_type": "regular",
    }
    assert api("GET", f"/vpcs/{made['id']}").json() == made


def test_a_dual_stack_vpc_carves_its_subnets_from_its_ipv6_range(client, api):
    vpc = client.vpcs.create("dual", REGION, ipv6=[{"range": "auto"}])
    (block,) = [ipaddress.ip_network(r.range) for r in vpc.ipv6]
    assert block.prefixlen == 52 and block.subnet_of(POOL)
    first = vpc.subnet_create("a", ipv4="10.0.0.0/24", ipv6=[{"range": "auto"}])
    second = vpc.subnet_create("b", ipv4="10.0.1.0/24", ipv6=[{"range": "/62"}])
    third = vpc.subnet_create("c", ipv4="10.0.2.0/24")
    loaded = client.load(VPCSubnet, first.id, vpc.id)
    assert loaded.ipv6[0].range == f"{block.network_address}/56"  # the lowest /56
    assert loaded.ipv6[0].range.startswith(vpc.ipv6[0].range.split("::")[0])
    ranges = [ipaddress.ip_network(s.ipv6[0].range) for s in (first, second)]
    assert ranges[1].prefixlen == 62 and not ranges[0].overlaps(ranges[1])
    assert all(r.subnet_of(block) for r in ranges)
    assert third.ipv6 is None  # IPv6 only when asked for
    other = client.vpcs.create("other", REGION, ipv6=[{"range": "/52"}])
    assert not ipaddress.ip_network(other.ipv6[0].range).overlaps(block)


def test_custom_ipv4_ranges_hold_the_subnets(client, api):
    vpc = client.vpcs.create("own", REGION, ipv4=[{"range": "10.118.0.0/20"}])
    assert [r.range for r in client.load(VPC, vpc.id).ipv4] == ["10.118.0.0/20"]
    outside = api("POST", f"/vpcs/{vpc.id}/subnets", {"label": "a", "ipv4": "10.0.0.0/24"})
    assert outside.status_code == 400
    assert outside.json()["errors"][0]["field"] == "ipv4"
    vpc.subnet_create("a", ipv4="10.118.1.0/24")
    away = api("PUT", f"/vpcs/{vpc.id}", {"ipv4": [{"range": "10.200.0.0/20"}]})
    assert away.status_code == 400 and away.json()["errors"][0]["field"] == "ipv4"
    vpc.ipv4 = [{"range": "10.118.0.0/16"}]
    vpc.save()
    assert [r.range for r in client.load(VPC, vpc.id).ipv4] == ["10.118.0.0/16"]


def test_the_default_ranges_name_the_forbidden_ones(client, sim):
    ranges = client.vpcs.default_ranges()
    assert isinstance(ranges, VPCIPv4DefaultRange)
    assert ranges.default_ipv4_ranges == ["10.0.0.0/8", "192.168.0.0/17", "172.16.0.0/12"]
    public = str(sim.sim.addresses.public_network(REGION))
    assert {"192.168.128.0/17", "127.0.0.0/8", public} <= set(ranges.forbidden_ipv4_ranges)


def test_an_rdma_vpc_has_no_ipv6_and_is_found_by_its_type(client):
    rdma = client.vpcs.create("gpu-net", REGION, vpc_type="rdma")
    client.vpcs.create("plain", REGION)
    assert (rdma.vpc_type, rdma.ipv6) == ("rdma", None)
    subnet = rdma.subnet_create("a", ipv4="10.0.0.0/24")
    assert (subnet.vpc_type, subnet.ipv6) == ("rdma", None)
    assert [v.label for v in client.vpcs(VPC.vpc_type == "rdma")] == ["gpu-net"]


# (what is sent where, the field the 400 names, words of its reason); the VPC made first
# for a subnet is dual stack. Reasons quoted from the real API are linodego's recordings
# (RDMA) and linode_api4's suite (IPv4 and IPv6 networks).
BAD = [
    ("vpc", {"vpc_type": "rdma", "ipv6": [{"range": "/52"}]}, "ipv6", "RDMA VPCs cannot"),
    ("vpc", {"vpc_type": "gpu"}, "vpc_type", "regular, rdma"),
    ("vpc", {"ipv6": [{"range": "/48"}]}, "ipv6[0].range", "/52"),
    ("vpc", {"ipv6": [{"range": "2001:db8::/52"}]}, "ipv6[0].range", "3fff::/20"),
    ("vpc", {"ipv4": [{"range": "192.168.128.0/24"}]}, "ipv4[0].range", "forbidden"),
    ("vpc", {"ipv4": [{"range": "10.0.0.0"}]}, "ipv4[0].range", "Must be an IPv4 network"),
    ("vpc", {"ipv4": []}, "ipv4", "list of ranges"),
    (
        "subnet",
        {"ipv4": "10.0.0.0/24", "ipv6": [{"range": "2600:3c11:e5b9::/5a"}]},
        "ipv6[0].range",
        "Must be an IPv6 network",
    ),
    ("subnet", {"ipv4": "10.0.0.0"}, "ipv4", "Must be an IPv4 network"),
    ("subnet", {"ipv4": "10.0.0.0/24", "ipv6": [{"range": "/50"}]}, "ipv6[0].range", "/56"),
]


@pytest.mark.parametrize(("target", "body", "field", "words"), BAD)
def test_bad_vpc_and_subnet_ranges_are_refused(api, target, body, field, words):
    if target == "vpc":
        answer = api("POST", "/vpcs", {"label": "bad", "region": REGION, **body})
    else:
        vpc = _vpc(api, ipv6=[{"range": "auto"}])
        answer = api("POST", f"/vpcs/{vpc['id']}/subnets", {"label": "s", **body})
    assert answer.status_code == 400
    assert any(e["field"] == field and words in e["reason"] for e in answer.json()["errors"])


def test_a_region_without_the_capabilities_refuses_custom_ranges_and_ipv6(api, admin):
    admin.set_withheld({REGION: ["Custom VPC IPv4 Ranges", "VPC IPv6 Stack"]})
    own = api("POST", "/vpcs", {"label": "a", "region": REGION, "ipv4": [{"range": "10.1.0.0/16"}]})
    assert own.json()["errors"] == [
        {"reason": "Customer defined IPv4 ranges are not supported in this region", "field": "ipv4"}
    ]
    dual = api("POST", "/vpcs", {"label": "b", "region": REGION, "ipv6": [{"range": "auto"}]})
    assert dual.status_code == 400 and dual.json()["errors"][0]["field"] == "ipv6"
    made = _vpc(api)
    assert api("GET", f"/vpcs/{made['id']}").json()["ipv4"][0] == {"range": "10.0.0.0/8"}


def test_a_dual_stack_vpc_interface_gets_a_slaac_64_and_the_routes(client, api):
    vpc = client.vpcs.create("dual", REGION, ipv6=[{"range": "auto"}])
    subnet = vpc.subnet_create("a", ipv4="10.0.0.0/24", ipv6=[{"range": "auto"}])
    linode = _offline_linode(client)
    path = f"/linode/instances/{linode.id}/interfaces"
    body = {"subnet_id": subnet.id, "ipv4": {"ranges": [{"range": "/32"}]}}
    made = api("POST", path, {"vpc": body, "default_route": {"ipv4": True}}).json()
    assert made["default_route"] == {"ipv4": True, "ipv6": True}  # none other holds it
    assert made["vpc"]["ipv4"]["addresses"][0]["address"] == "10.0.0.2"
    assert made["vpc"]["ipv4"]["ranges"] == [{"range": "10.0.0.3/32"}]
    ipv6 = made["vpc"]["ipv6"]
    (slaac,) = ipv6["slaac"]
    assert (ipv6["ranges"], ipv6["is_public"]) == ([], False)
    network = ipaddress.ip_network(slaac["range"])
    assert network.prefixlen == 64 and network.subnet_of(ipaddress.ip_network(subnet.ipv6[0].range))
    assert ipaddress.ip_address(slaac["address"]) in network
    # More ranges: the one it has stays, a new one is another.
    body["ipv4"]["ranges"] = [{"range": "10.0.0.3/32"}, {"range": "/32"}]
    changed = api("PUT", f"{path}/{made['id']}", {"vpc": body}).json()
    assert changed["vpc"]["ipv4"]["ranges"] == [{"range": "10.0.0.3/32"}, {"range": "10.0.0.4/32"}]
    assert changed["vpc"]["ipv6"] == ipv6
    rows = api("GET", "/vpcs/ipv6s").json()["data"]
    assert [(r["ipv6_range"], r["ipv6_is_public"], r["interface_id"]) for r in rows] == [
        (slaac["range"], False, made["id"])
    ]
    assert rows[0]["ipv6_addresses"] == [{"slaac_address": slaac["address"]}]
    assert api("GET", f"/vpcs/{vpc.id}/ipv6s").json()["data"] == rows
    ips = api("GET", f"/linode/instances/{linode.id}/ips").json()
    assert ips["ipv6"]["vpc"] == rows
    assert [(r["address"], r["address_range"]) for r in ips["ipv4"]["vpc"]] == [
        ("10.0.0.2", None),
        (None, "10.0.0.3/32"),
        (None, "10.0.0.4/32"),
    ]
    assert api("GET", "/vpcs/ips").json()["data"] == ips["ipv4"]["vpc"]
    settings = client.load(Instance, linode.id).interfaces_settings
    assert settings.default_route.ipv6_eligible_interface_ids == [made["id"]]


def test_a_vpc_interface_in_a_subnet_without_ipv6_has_none(client, api):
    vpc = client.vpcs.create("v4", REGION, subnets=[{"label": "a", "ipv4": "10.0.0.0/24"}])
    linode = _offline_linode(client)
    path = f"/linode/instances/{linode.id}/interfaces"
    made = api("POST", path, {"vpc": {"subnet_id": vpc.subnets[0].id}}).json()
    assert made["vpc"]["ipv6"] is None
    assert made["default_route"] == {"ipv4": True, "ipv6": False}
    asked = {"subnet_id": vpc.subnets[0].id, "ipv6": {"slaac": [{"range": "auto"}]}}
    other = _offline_linode(client, "node-2")
    refused = api("POST", f"/linode/instances/{other.id}/interfaces", {"vpc": asked})
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "vpc.ipv6"


def _dual_stack_and_a_legacy_linode(client):
    """A dual-stack VPC with one dual-stack subnet, and an offline Linode of the legacy
    generation: (vpc, subnet, linode, its config profile)."""
    vpc = client.vpcs.create("dual", REGION, ipv6=[{"range": "auto"}])
    subnet = vpc.subnet_create("a", ipv4="10.0.0.0/24", ipv6=[{"range": "auto"}])
    linode = client.linode.instance_create(
        "g6-nanode-1",
        REGION,
        image="linode/debian12",
        label="old-1",
        booted=False,
        root_pass="simulated-Root-pass-1",
    )
    linode = linode[0] if isinstance(linode, tuple) else linode
    return vpc, subnet, linode, linode.configs[0]


def test_a_profile_vpc_interface_shows_its_ipv6_and_its_nat_address(client, api):
    vpc, subnet, linode, config = _dual_stack_and_a_legacy_linode(client)
    iface = {
        "purpose": "vpc",
        "subnet_id": subnet.id,
        "ipv4": {"vpc": "10.0.0.3", "nat_1_1": "any"},
        "ip_ranges": ["10.0.0.5/32"],
        "ipv6": {"slaac": [{"range": "/64"}], "is_public": True},
    }
    path = f"/linode/instances/{linode.id}/configs/{config.id}/interfaces"
    made = api("POST", path, iface).json()
    (slaac,) = made["ipv6"]["slaac"]
    assert (made["ipv6"]["is_public"], made["ip_ranges"]) == (True, ["10.0.0.5/32"])
    row = api("GET", f"/vpcs/{vpc.id}/ipv6s").json()["data"][0]
    assert (row["config_id"], row["ipv6_range"], row["ipv6_is_public"]) == (
        config.id,
        slaac["range"],
        True,
    )
    public = linode.ipv4[0]
    shown = api("GET", f"/networking/ips/{public}").json()["vpc_nat_1_1"]
    assert shown == {"vpc_id": vpc.id, "subnet_id": subnet.id, "address": "10.0.0.3"}
    taken = api("POST", path, {**iface, "ipv4": {"vpc": "10.0.0.5"}, "ipv6": None})
    assert taken.status_code == 400  # its range holds the address (and one VPC interface)


def test_an_upgraded_primary_dual_stack_vpc_interface_takes_both_routes(client, api):
    _, subnet, linode, config = _dual_stack_and_a_legacy_linode(client)
    config.interfaces = [
        {"purpose": "public"},
        {"purpose": "vpc", "subnet_id": subnet.id, "primary": True, "ip_ranges": ["10.0.0.5/32"]},
    ]
    config.save()
    answer = api(
        "POST", f"/linode/instances/{linode.id}/upgrade-interfaces", {"dry_run": False}
    ).json()
    public, private = answer["interfaces"]
    assert public["default_route"] == {"ipv4": False, "ipv6": False}
    assert private["default_route"] == {"ipv4": True, "ipv6": True}
    assert private["vpc"]["ipv4"]["ranges"] == [{"range": "10.0.0.5/32"}]
    assert len(private["vpc"]["ipv6"]["slaac"]) == 1 and not private["vpc"]["ipv6"]["is_public"]
