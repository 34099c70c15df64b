"""A public Linode interface's IPv4 addresses and routed IPv6 ranges, and the account's
IPv6 ranges (`/networking/ipv6/ranges`), through linode_api4 unchanged and by hand; every
exchange is checked against both specs."""

from __future__ import annotations

import ipaddress

from linode_api4.objects import (
    Instance,
    LinodeInterfaceDefaultRouteOptions,
    LinodeInterfacePublicIPv4AddressOptions,
    LinodeInterfacePublicIPv4Options,
    LinodeInterfacePublicIPv6Options,
    LinodeInterfacePublicIPv6RangeOptions,
    LinodeInterfacePublicOptions,
)
from linode_api4.objects.linode import InterfaceGeneration

REGION = "eu-central"


def _linode(api, label, interfaces=None, generation="linode", region=REGION):
    body = {
        "type": "g6-standard-1",
        "region": region,
        "image": "linode/debian12",
        "root_pass": "simulated-Root-pass-1",
        "label": label,
        "booted": False,
        "interface_generation": generation,
    }
    if interfaces is not None:
        body["interfaces"] = interfaces
    made = api("POST", "/linode/instances", body)
    assert made.status_code == 200, made.text
    return made.json()


def _public(api, linode_id):
    found = api("GET", f"/linode/instances/{linode_id}/interfaces").json()["interfaces"]
    (public,) = [i for i in found if i["public"] is not None]
    return public


def _error(answer):
    assert answer.status_code == 400, answer.text
    (error,) = answer.json()["errors"]
    return error.get("field"), error["reason"]


def test_two_addresses_and_two_new_ranges_as_linode_clis_suite_asks(api):
    linode = _linode(api, "node-1", [{"public": {"ipv4": {"addresses": [{"primary": True}]}}}])
    own, slaac = linode["ipv4"][0], linode["ipv6"].split("/")[0]
    first = _public(api, linode["id"])
    assert first["public"]["ipv4"]["addresses"] == [{"address": own, "primary": True}]
    path = f"/linode/instances/{linode['id']}/interfaces"
    assert api("DELETE", f"{path}/{first['id']}").status_code == 200
    # The Linode keeps its address, on no interface now.
    (row,) = api("GET", f"/linode/instances/{linode['id']}/ips").json()["ipv4"]["public"]
    assert (row["address"], row["interface_id"]) == (own, None)

    made = api(
        "POST",
        path,
        {
            "default_route": {"ipv4": True},
            "public": {
                "ipv4": {
                    "addresses": [
                        {"address": own, "primary": True},
                        {"address": "auto", "primary": False},
                    ]
                },
                "ipv6": {"ranges": [{"range": "/64"}, {"range": "/64"}]},
            },
        },
    )
    assert made.status_code == 200, made.text
    public = made.json()["public"]
    (mine, new) = public["ipv4"]["addresses"]
    assert mine == {"address": own, "primary": True} and new["primary"] is False
    assert ipaddress.ip_address(new["address"]) in ipaddress.ip_network("198.51.100.0/24")
    ranges = public["ipv6"]["ranges"]
    assert [r["range"].endswith("/64") for r in ranges] == [True, True]
    assert {r["route_target"] for r in ranges} == {slaac}
    assert public["ipv6"]["slaac"] == [{"address": slaac, "prefix": 64}]
    assert public["ipv4"]["shared"] == [] and public["ipv6"]["shared"] == []

    # The Linode has both addresses, each on the interface; the ranges are its `global`.
    assert api("GET", f"/linode/instances/{linode['id']}").json()["ipv4"] == [own, new["address"]]
    ips = api("GET", f"/linode/instances/{linode['id']}/ips").json()
    assert [(r["address"], r["interface_id"]) for r in ips["ipv4"]["public"]] == [
        (own, made.json()["id"]),
        (new["address"], made.json()["id"]),
    ]
    assert ips["ipv6"]["global"] == [
        {"range": r["range"].split("/")[0], "prefix": 64, "region": REGION, "route_target": slaac}
        for r in ranges
    ]
    listed = api("GET", "/networking/ipv6/ranges").json()["data"]
    assert listed == ips["ipv6"]["global"]


def test_an_update_replaces_the_addresses_and_ranges_as_linode_api4s_suite_does(client, api):
    linode = client.linode.instance_create(
        "g6-nanode-1", REGION, label="node-2", interface_generation=InterfaceGeneration.LINODE
    )
    linode = client.load(Instance, linode.id)
    assert linode.linode_interfaces == []
    own = linode.ips.ipv4.public[0].address
    given = client.networking.ipv6_range_allocate(64, linode=linode.id)
    slaac = linode.ipv6.split("/")[0]
    assert given.range.endswith("/64") and given.route_target == slaac
    iface = linode.interface_create(
        default_route=LinodeInterfaceDefaultRouteOptions(ipv4=True, ipv6=True),
        public=LinodeInterfacePublicOptions(
            ipv4=LinodeInterfacePublicIPv4Options(
                addresses=[LinodeInterfacePublicIPv4AddressOptions(address=own, primary=True)]
            ),
            ipv6=LinodeInterfacePublicIPv6Options(
                ranges=[LinodeInterfacePublicIPv6RangeOptions(range=given.range)]
            ),
        ),
    )
    assert [(r.range, r.route_target) for r in iface.public.ipv6.ranges] == [(given.range, slaac)]

    iface.public.ipv4.addresses += [
        LinodeInterfacePublicIPv4AddressOptions(address="auto", primary=True)
    ]
    iface.public.ipv4.addresses[0].primary = False
    iface.public.ipv6.ranges[0].range = "/64"
    iface.save()
    iface.invalidate()
    (old, new) = iface.public.ipv4.addresses
    assert (old.address, old.primary, new.primary) == (own, False, True)
    (now,) = iface.public.ipv6.ranges
    assert now.range != given.range and ipaddress.ip_network(now.range).prefixlen == 64
    # The range left out is gone from the account.
    gone = given.range.split("/")[0]
    assert api("GET", f"/networking/ipv6/ranges/{gone}").status_code == 404

    # An address left out is deleted from the Linode, and back in its region's range.
    path = f"/linode/instances/{linode.id}/interfaces/{iface.id}"
    kept = api("PUT", path, {"public": {"ipv4": {"addresses": [{"address": new.address}]}}})
    assert kept.json()["public"]["ipv4"]["addresses"] == [{"address": new.address, "primary": True}]
    assert api("GET", f"/linode/instances/{linode.id}").json()["ipv4"] == [new.address]
    assert api("GET", f"/networking/ips/{own}").status_code == 404
    # Its ranges stay when an update leaves `ipv6` out.
    assert [r["range"] for r in kept.json()["public"]["ipv6"]["ranges"]] == [now.range]


def test_ipv6_ranges_are_allocated_viewed_and_deleted(api):
    legacy = _linode(api, "old-1", generation="legacy_config")
    slaac = legacy["ipv6"].split("/")[0]
    made = api("POST", "/networking/ipv6/ranges", {"linode_id": legacy["id"], "prefix_length": 64})
    assert made.status_code == 200, made.text
    assert made.json()["route_target"] == slaac and made.json()["range"].endswith("/64")
    wide = api("POST", "/networking/ipv6/ranges", {"route_target": slaac, "prefix_length": 56})
    assert wide.json()["range"].endswith("/56"), wide.text
    first = made.json()["range"].split("/")[0]
    one = api("GET", f"/networking/ipv6/ranges/{first}")
    assert one.json() == {
        "range": first,
        "prefix": 64,
        "region": REGION,
        "is_bgp": False,
        "linodes": [legacy["id"]],
    }
    # A Linode of the legacy generation shows them in its `global` too.
    shown = api("GET", f"/linode/instances/{legacy['id']}/ips").json()["ipv6"]["global"]
    assert [(r["prefix"], r["route_target"]) for r in shown] == [(64, slaac), (56, slaac)]
    assert api("DELETE", f"/networking/ipv6/ranges/{first}").json() == {}
    assert api("GET", f"/networking/ipv6/ranges/{first}").status_code == 404
    # The Linode's other range goes with it.
    api("DELETE", f"/linode/instances/{legacy['id']}")
    assert api("GET", "/networking/ipv6/ranges").json()["data"] == []
    assert api("GET", "/networking/ipv6/pools").json()["data"] == []


def test_ipv6_range_requests_are_refused_as_the_api_does(api):
    linode = _linode(api, "node-3")
    for body, field in (
        ({"linode_id": linode["id"], "prefix_length": 48}, "prefix_length"),
        ({"prefix_length": 64}, "linode_id"),
        (
            {"linode_id": linode["id"], "route_target": linode["ipv6"][:-4], "prefix_length": 64},
            "linode_id",
        ),
        ({"linode_id": 1, "prefix_length": 64}, "linode_id"),
        ({"route_target": "2001:db8::1", "prefix_length": 64}, "route_target"),
    ):
        assert _error(api("POST", "/networking/ipv6/ranges", body))[0] == field, body


def test_a_public_interfaces_addresses_and_ranges_are_checked(api):
    other = _linode(api, "node-4")
    other_range = api(
        "POST", "/networking/ipv6/ranges", {"linode_id": other["id"], "prefix_length": 64}
    ).json()["range"]
    linode = _linode(api, "node-5")
    path = f"/linode/instances/{linode['id']}/interfaces"
    own = linode["ipv4"][0]
    for public, field in (
        ({"ipv4": {"addresses": [{"address": other["ipv4"][0]}]}}, "ipv4.addresses[0].address"),
        ({"ipv4": {"addresses": []}}, "ipv4.addresses"),
        (
            {"ipv4": {"addresses": [{"address": own, "primary": True}, {"primary": True}]}},
            "ipv4.addresses[1].primary",
        ),
        (
            {"ipv4": {"addresses": [{"address": own}, {"address": own}]}},
            "ipv4.addresses[1].address",
        ),
        ({"ipv6": {"ranges": [{"range": "/48"}]}}, "ipv6.ranges[0].range"),
        ({"ipv6": {"ranges": [{"range": other_range}]}}, "ipv6.ranges[0].range"),
    ):
        assert _error(api("POST", path, {"public": public}))[0] == f"public.{field}", public
    # Refused whole: nothing was taken.
    assert api("GET", f"/linode/instances/{linode['id']}").json()["ipv4"] == [own]
    assert len(api("GET", "/networking/ipv6/ranges").json()["data"]) == 1

    made = api("POST", path, {"public": {}}).json()
    assert made["public"]["ipv4"]["addresses"] == [{"address": own, "primary": True}]
    # Its addresses change through the interface, not the Linode's IP operations.
    field, reason = _error(api("DELETE", f"/linode/instances/{linode['id']}/ips/{own}"))
    assert field == "address" and "interface" in reason
    more = {"type": "ipv4", "public": True}
    field, reason = _error(api("POST", f"/linode/instances/{linode['id']}/ips", more))
    assert field is None and "public interface" in reason
    more["linode_id"] = linode["id"]
    assert _error(api("POST", "/networking/ips", more))[0] == "linode_id"


def test_shared_addresses_and_ranges_show_on_the_public_interface(api):
    owner = _linode(api, "node-6", [{"public": {}}])
    taker = _linode(api, "node-7", [{"public": {}}])
    given = api(
        "POST", "/networking/ipv6/ranges", {"linode_id": owner["id"], "prefix_length": 64}
    ).json()["range"]
    first = given.split("/")[0]
    shared = api(
        "POST",
        "/networking/ips/share",
        {"linode_id": taker["id"], "ips": [owner["ipv4"][0], first]},
    )
    assert shared.status_code == 200, shared.text
    public = _public(api, taker["id"])["public"]
    assert public["ipv4"]["shared"] == [{"address": owner["ipv4"][0], "linode_id": owner["id"]}]
    assert public["ipv6"]["shared"] == [{"range": given, "route_target": None}]
    assert public["ipv6"]["ranges"] == []
    shown = api("GET", f"/linode/instances/{taker['id']}/ips").json()["ipv6"]["global"]
    assert shown == [{"range": first, "prefix": 64, "region": REGION, "route_target": None}]
    one = api("GET", f"/networking/ipv6/ranges/{first}").json()
    assert (one["is_bgp"], one["linodes"]) == (True, [owner["id"], taker["id"]])
    assert _error(api("DELETE", f"/networking/ipv6/ranges/{first}"))[0] == "range"
    # Sharing a range with its own Linode changes nothing (linodego's recording does it).
    again = {"linode_id": owner["id"], "ips": [first]}
    assert api("POST", "/networking/ips/share", again).status_code == 200
    # Unshared, it can go.
    api("POST", "/networking/ips/share", {"linode_id": taker["id"], "ips": []})
    assert _public(api, taker["id"])["public"]["ipv6"]["shared"] == []
    assert api("DELETE", f"/networking/ipv6/ranges/{first}").status_code == 200


def test_an_upgrade_puts_every_public_address_and_range_on_the_public_interface(api):
    legacy = _linode(api, "old-2", generation="legacy_config")
    lid = legacy["id"]
    more = api("POST", f"/linode/instances/{lid}/ips", {"type": "ipv4", "public": True}).json()
    given = api("POST", "/networking/ipv6/ranges", {"linode_id": lid, "prefix_length": 64})
    done = api("POST", f"/linode/instances/{lid}/upgrade-interfaces", {"dry_run": False})
    assert done.status_code == 200, done.text
    (public,) = [i["public"] for i in done.json()["interfaces"] if i["public"]]
    assert public["ipv4"]["addresses"] == [
        {"address": legacy["ipv4"][0], "primary": True},
        {"address": more["address"], "primary": False},
    ]
    assert [r["range"] for r in public["ipv6"]["ranges"]] == [given.json()["range"]]
