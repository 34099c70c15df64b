"""VPCs and Linode interfaces, through linode_api4 unchanged and by hand; every exchange is
checked against both specs (4.189.0 has VPCs, 4.229.1 also Linode interfaces)."""

from __future__ import annotations

import time

from linode_api4.objects import (
    Instance,
    LinodeInterfaceDefaultRouteOptions,
    LinodeInterfaceOptions,
    LinodeInterfacePublicIPv4AddressOptions,
    LinodeInterfacePublicIPv4Options,
    LinodeInterfacePublicOptions,
    LinodeInterfaceVPCIPv4AddressOptions,
    LinodeInterfaceVPCIPv4Options,
    LinodeInterfaceVPCOptions,
)
from linode_api4.objects.linode import InterfaceGeneration

REGION = "eu-central"


def _vpc(client, label="app-net", ipv4="10.0.0.0/24"):
    return client.vpcs.create(label, REGION, subnets=[{"label": "nodes", "ipv4": ipv4}])


def _linode(client, label, *, interfaces=None, booted=False):
    made = client.linode.instance_create(
        "g6-standard-1",
        REGION,
        image="linode/debian12",
        root_pass="simulated-Root-pass-1",
        label=label,
        booted=booted,
        interface_generation=InterfaceGeneration.LINODE,
        interfaces=interfaces,
    )
    return made[0] if isinstance(made, tuple) else made


def _wait(api, sim, linode_id, status):
    for _ in range(200):
        if api("GET", f"/linode/instances/{linode_id}").json()["status"] == status:
            return
        sim.sim.settle()
        time.sleep(0.01)
    raise AssertionError(f"Linode {linode_id} never became {status}")


def _vpc_interface(subnet_id, address="auto", firewall=None):
    return LinodeInterfaceOptions(
        firewall_id=firewall,
        vpc=LinodeInterfaceVPCOptions(
            subnet_id=subnet_id,
            ipv4=LinodeInterfaceVPCIPv4Options(
                addresses=[LinodeInterfaceVPCIPv4AddressOptions(address=address, primary=True)]
            ),
        ),
    )


def test_a_vpc_with_subnets_through_linode_api4(client):
    vpc = _vpc(client)
    assert (vpc.label, vpc.region.id, [s.label for s in vpc.subnets]) == (
        "app-net",
        REGION,
        ["nodes"],
    )
    subnet = vpc.subnet_create("more", ipv4="10.0.1.0/24")
    assert subnet.ipv4 == "10.0.1.0/24"
    assert [v.label for v in client.vpcs()] == ["app-net"]
    assert sorted(s.label for s in client.load(type(vpc), vpc.id).subnets) == ["more", "nodes"]
    subnet.delete()
    vpc.delete()
    assert list(client.vpcs()) == []


def test_subnet_ranges_are_checked_as_the_spec_describes(api):
    # The VPC's default ranges: 10.0.0.0/8, 172.16.0.0/12 and 192.168.0.0/17.
    for ipv4, why in [
        ("8.8.8.0/24", "within the VPC's IPv4 ranges"),
        ("10.0.0.0/30", "between 1 and 29"),
        ("192.168.200.0/24", "within the VPC's IPv4 ranges"),
        ("10.0.0.1/24", "canonical"),
        ("10.0.0.0", "Must be an IPv4 network"),
    ]:
        answer = api(
            "POST",
            "/vpcs",
            {"label": "bad", "region": REGION, "subnets": [{"label": "s", "ipv4": ipv4}]},
        )
        assert answer.status_code == 400, ipv4
        assert why in answer.json()["errors"][0]["reason"]
        assert answer.json()["errors"][0]["field"] == "subnets[0].ipv4"
    made = api(
        "POST",
        "/vpcs",
        {"label": "ok", "region": REGION, "subnets": [{"label": "a", "ipv4": "10.1.0.0/16"}]},
    ).json()
    overlap = api("POST", f"/vpcs/{made['id']}/subnets", {"label": "b", "ipv4": "10.1.2.0/24"})
    assert overlap.status_code == 400 and "Overlaps" in overlap.json()["errors"][0]["reason"]
    assert api("GET", "/vpcs").json()["results"] == 1  # the refused VPCs left nothing


def test_a_linode_with_linode_interfaces_gets_its_vpc_address(client, api):
    vpc = _vpc(client)
    subnet = vpc.subnets[0]
    firewall = client.networking.firewall_create(
        "nodes",
        rules={
            "inbound_policy": "DROP",
            "outbound_policy": "ACCEPT",
            "inbound": [],
            "outbound": [],
        },
    )
    linode = _linode(
        client,
        "node-1",
        interfaces=[
            LinodeInterfaceOptions(
                firewall_id=firewall.id,
                default_route=LinodeInterfaceDefaultRouteOptions(ipv4=True, ipv6=True),
                public=LinodeInterfacePublicOptions(),
            ),
            _vpc_interface(subnet.id, firewall=firewall.id),
        ],
    )
    linode = client.load(Instance, linode.id)
    assert linode.interface_generation == InterfaceGeneration.LINODE
    public, private = linode.linode_interfaces
    assert public.public.ipv4.addresses[0].address == linode.ipv4[0]
    assert (private.vpc.vpc_id, private.vpc.subnet_id) == (vpc.id, subnet.id)
    assert private.vpc.ipv4.addresses[0].address == "10.0.0.2"  # .1 is the gateway
    assert [f.id for f in private.firewalls()] == [firewall.id]
    settings = linode.interfaces_settings
    assert settings.default_route.ipv4_interface_id == public.id
    assert settings.default_route.ipv4_eligible_interface_ids == [public.id, private.id]
    ips = api("GET", "/vpcs/ips").json()["data"]
    assert [(i["address"], i["linode_id"], i["interface_id"]) for i in ips] == [
        ("10.0.0.2", linode.id, private.id)
    ]
    seen = api("GET", f"/vpcs/{vpc.id}/subnets/{subnet.id}").json()["linodes"]
    assert seen == [
        {"id": linode.id, "interfaces": [{"id": private.id, "active": False, "config_id": None}]}
    ]


def test_a_linode_made_without_interfaces_has_none_but_its_address(client):
    # As linode_api4's suite finds it: such a Linode takes a public interface afterwards,
    # on the address it was made with.
    linode = client.load(Instance, _linode(client, "node-2").id)
    assert linode.linode_interfaces == []
    address = linode.ips.ipv4.public[0].address
    public = linode.interface_create(
        public=LinodeInterfacePublicOptions(
            ipv4=LinodeInterfacePublicIPv4Options(
                addresses=[LinodeInterfacePublicIPv4AddressOptions(address=address, primary=True)]
            )
        ),
        default_route=LinodeInterfaceDefaultRouteOptions(ipv4=True, ipv6=True),
    )
    assert [(a.address, a.primary) for a in public.public.ipv4.addresses] == [(address, True)]
    assert (public.default_route.ipv4, public.default_route.ipv6) == (True, True)


def test_a_linode_made_without_interfaces_has_none_and_its_first_takes_the_routes(client, api):
    linode = _linode(client, "node-2")
    assert client.load(Instance, linode.id).linode_interfaces == []
    path = f"/linode/instances/{linode.id}/interfaces"
    first = api("POST", path, {"public": {}}).json()
    assert first["default_route"] == {"ipv4": True, "ipv6": True}  # no other holds them
    vpc = _vpc(client)
    second = api("POST", path, {"vpc": {"subnet_id": vpc.subnets[0].id}}).json()
    assert second["default_route"] == {"ipv4": False, "ipv6": False}


def test_interfaces_change_only_while_the_linode_is_off(client, api, sim, admin):
    vpc = _vpc(client)
    linode = _linode(client, "node-3", booted=True)
    path = f"/linode/instances/{linode.id}/interfaces"
    _wait(api, sim, linode.id, "running")
    body = {"vpc": {"subnet_id": vpc.subnets[0].id}}
    refused = api("POST", path, body)
    assert refused.status_code == 400 and "powered off" in refused.json()["errors"][0]["reason"]
    api("POST", f"/linode/instances/{linode.id}/shutdown")
    _wait(api, sim, linode.id, "offline")
    made = api("POST", path, body)
    assert made.status_code == 200, made.text
    assert made.json()["vpc"]["ipv4"]["addresses"][0]["address"] == "10.0.0.2"


def test_one_public_one_vpc_and_distinct_vlans(client, api):
    vpc = _vpc(client)
    linode = _linode(client, "node-4")  # offline: made unbooted
    path = f"/linode/instances/{linode.id}/interfaces"
    assert api("POST", path, {"public": {}}).status_code == 200
    second_public = api("POST", path, {"public": {}})
    assert second_public.status_code == 400
    assert "one public" in second_public.json()["errors"][0]["reason"]
    assert api("POST", path, {"vpc": {"subnet_id": vpc.subnets[0].id}}).status_code == 200
    assert api("POST", path, {"vpc": {"subnet_id": vpc.subnets[0].id}}).status_code == 400
    both = api("POST", path, {"public": {}, "vlan": {"vlan_label": "v"}})
    assert both.status_code == 400 and "exactly one" in both.json()["errors"][0]["reason"]
    fw_on_vlan = api("POST", path, {"firewall_id": 1, "vlan": {"vlan_label": "v"}})
    assert fw_on_vlan.status_code == 400


def test_a_legacy_linode_has_no_linode_interfaces(client, api):
    linode = client.linode.instance_create("g6-standard-1", REGION, label="old-1")
    assert client.load(Instance, linode.id).interface_generation == "legacy_config"
    answer = api("POST", f"/linode/instances/{linode.id}/interfaces", {"public": {}})
    assert answer.status_code == 400
    assert "legacy config interfaces" in answer.json()["errors"][0]["reason"]


def test_a_firewall_changes_at_any_time_and_a_subnet_in_use_stays(client, api, sim):
    vpc = _vpc(client)
    subnet = vpc.subnets[0]
    linode = _linode(client, "node-5", interfaces=[_vpc_interface(subnet.id, "10.0.0.9")])
    (iface,) = client.load(Instance, linode.id).linode_interfaces
    assert iface.vpc.ipv4.addresses[0].address == "10.0.0.9"
    fw = client.networking.firewall_create(
        "later",
        rules={
            "inbound_policy": "DROP",
            "outbound_policy": "ACCEPT",
            "inbound": [],
            "outbound": [],
        },
    )
    _wait(api, sim, linode.id, "offline")
    assert api("POST", f"/linode/instances/{linode.id}/boot").status_code == 200
    _wait(api, sim, linode.id, "running")
    changed = api(
        "PUT", f"/linode/instances/{linode.id}/interfaces/{iface.id}", {"firewall_id": fw.id}
    )
    assert changed.status_code == 200 and changed.json()["version"] == 1
    assert api("DELETE", f"/vpcs/{vpc.id}/subnets/{subnet.id}").status_code == 400
    assert api("DELETE", f"/vpcs/{vpc.id}").status_code == 400
    api("DELETE", f"/linode/instances/{linode.id}")
    assert api("DELETE", f"/vpcs/{vpc.id}/subnets/{subnet.id}").status_code == 200


def test_a_deleted_firewall_leaves_its_interfaces(client, api):
    fw = client.networking.firewall_create(
        "gone",
        rules={
            "inbound_policy": "DROP",
            "outbound_policy": "ACCEPT",
            "inbound": [],
            "outbound": [],
        },
    )
    linode = _linode(
        client,
        "node-6",
        interfaces=[
            LinodeInterfaceOptions(firewall_id=fw.id, public=LinodeInterfacePublicOptions())
        ],
    )
    (iface,) = client.load(Instance, linode.id).linode_interfaces
    fw.delete()
    shown = api("GET", f"/linode/instances/{linode.id}/interfaces/{iface.id}").json()
    assert shown["firewall_id"] is None
    assert list(iface.firewalls()) == []


def _rules():
    return {"inbound_policy": "DROP", "outbound_policy": "ACCEPT", "inbound": [], "outbound": []}


def test_the_account_setting_chooses_the_generation_of_new_linodes(client, api, admin):
    from linode_api4.objects import AccountSettings

    settings = client.load(AccountSettings, "")
    assert settings.interfaces_for_new_linodes == "legacy_config_default_but_linode_allowed"
    made = client.linode.instance_create("g6-standard-1", REGION, label="old-2")
    assert client.load(Instance, made.id).interface_generation == "legacy_config"
    admin.set_interfaces_for_new_linodes("linode_default_but_legacy_config_allowed")
    assert api("GET", "/account/settings").json()["interfaces_for_new_linodes"] == (
        "linode_default_but_legacy_config_allowed"
    )
    made = client.linode.instance_create("g6-standard-1", REGION, label="new-1")
    assert client.load(Instance, made.id).interface_generation == "linode"
    admin.set_interfaces_for_new_linodes("linode_only")
    body = {"region": REGION, "type": "g6-standard-1", "label": "old-3"}
    refused = api("POST", "/linode/instances", {**body, "interface_generation": "legacy_config"})
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "interface_generation"
    admin.set_interfaces_for_new_linodes("legacy_config_only")
    refused = api("POST", "/linode/instances", {**body, "interface_generation": "linode"})
    assert refused.status_code == 400 and "legacy_config_only" in refused.text
    wrong = api("PUT", "/account/settings", {"interfaces_for_new_linodes": "both"})
    assert wrong.status_code == 400


def test_a_firewall_lists_the_interfaces_behind_it_as_devices(client, api):
    vpc = _vpc(client)
    fw = client.networking.firewall_create("per-iface", rules=_rules())
    linode = _linode(
        client,
        "node-7",
        interfaces=[
            LinodeInterfaceOptions(firewall_id=fw.id, public=LinodeInterfacePublicOptions()),
            _vpc_interface(vpc.subnets[0].id),
        ],
    )
    public, private = client.load(Instance, linode.id).linode_interfaces
    entities = api("GET", f"/networking/firewalls/{fw.id}").json()["entities"]
    assert [(e["id"], e["type"], e["parent_entity"]["id"]) for e in entities] == [
        (public.id, "linode_interface", linode.id)
    ]
    # Added as a device, it is the interface's firewall; deleted as one, it is gone from it.
    added = api(
        "POST",
        f"/networking/firewalls/{fw.id}/devices",
        {"id": private.id, "type": "linode_interface"},
    )
    assert added.status_code == 200, added.text
    shown = api("GET", f"/linode/instances/{linode.id}/interfaces/{private.id}").json()
    assert shown["firewall_id"] == fw.id
    again = api(
        "POST",
        f"/networking/firewalls/{fw.id}/devices",
        {"id": private.id, "type": "linode_interface"},
    )
    assert again.status_code == 400  # one firewall per interface
    whole = api(
        "POST", f"/networking/firewalls/{fw.id}/devices", {"id": linode.id, "type": "linode"}
    )
    assert whole.status_code == 400 and "Linode interfaces" in whole.text
    api("DELETE", f"/networking/firewalls/{fw.id}/devices/{added.json()['id']}")
    shown = api("GET", f"/linode/instances/{linode.id}/interfaces/{private.id}").json()
    assert shown["firewall_id"] is None
    # Another firewall on the interface moves it there: it is behind one at most.
    other = client.networking.firewall_create("other", rules=_rules())
    api("PUT", f"/linode/instances/{linode.id}/interfaces/{public.id}", {"firewall_id": other.id})
    assert api("GET", f"/networking/firewalls/{fw.id}/devices").json()["data"] == []
    assert len(api("GET", f"/networking/firewalls/{other.id}/devices").json()["data"]) == 1
    api("DELETE", f"/linode/instances/{linode.id}")
    assert api("GET", f"/networking/firewalls/{other.id}").json()["entities"] == []
