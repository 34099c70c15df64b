"""The official SDK, linode_api4, unchanged, against the simulator."""

from __future__ import annotations

import time

import pytest
from linode_api4 import ApiError, Instance, LinodeClient, StackScript
from linode_api4.objects import Firewall
from linode_api4.objects.filtering import order_by

from ..conftest import STACKSCRIPTS

SCRIPT = (STACKSCRIPTS / "debian12-swarm-node.sh").read_text()
ROOT_PASS = "correct-Horse-battery-42"


def wait_for(instance: Instance, status: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        instance.invalidate()
        if instance.status == status:
            return
        assert time.monotonic() < deadline, f"{instance.label} stuck in {instance.status}"
        time.sleep(0.02)


def test_catalogue(client: LinodeClient):
    regions = {r.id: r for r in client.regions()}
    assert {"eu-central", "gb-lon"} <= set(regions)
    assert regions["eu-central"].country == "de" and regions["eu-central"].site_type == "core"
    types = {t.id: t for t in client.linode.types()}
    assert types["g6-standard-2"].vcpus == 2 and types["g6-standard-2"].memory == 4096
    kernels = {k.id for k in client.linode.kernels()}
    assert {"linode/grub2", "linode/latest-64bit"} <= kernels
    assert "linode/debian12" in {i.id for i in client.images()}
    assert client.profile().username == "swarmboot-sim"
    assert client.account().email == "swarmboot-sim@example.com"


def test_a_retired_plan_is_unlisted_yet_shown_and_made(client: LinodeClient, api):
    assert "g5-standard-1" not in {t.id for t in client.linode.types()}
    shown = api("GET", "/linode/types/g5-standard-1").json()
    assert (shown["label"], shown["successor"]) == ("Linode 2GB", "g6-standard-1")
    made = client.linode.instance_create("g5-standard-1", "eu-central", label="old-plan")
    assert client.load(Instance, made.id).type.id == "g5-standard-1"


def test_stackscript_from_a_rendered_script(client: LinodeClient):
    script = client.linode.stackscript_create(
        "swarmboot-debian12-node",
        SCRIPT,
        ["linode/debian12"],
        desc="swarm node",
        rev_note="sha256:abc",
    )
    fields = {f.name: f for f in script.user_defined_fields}
    assert fields["swarm_role"].choices == ["manager", "worker", "lb"]
    assert fields["hostname"].field_type.name == "text"
    fetched = StackScript(client, script.id)
    assert fetched.label == "swarmboot-debian12-node" and fetched.mine
    # (linode_api4 wraps images twice when an object is loaded lazily)
    assert [getattr(i.id, "id", i.id) for i in fetched.images] == ["linode/debian12"]

    script.rev_note = "sha256:def"
    script.save()
    assert StackScript(client, script.id).rev_note == "sha256:def"

    mine = client.linode.stackscripts(
        StackScript.label == "swarmboot-debian12-node", mine_only=True
    )
    assert [s.id for s in mine] == [script.id]
    assert len(client.linode.stackscripts()) > 1  # the community's are listed too
    fetched.delete()
    with pytest.raises(ApiError) as info:
        StackScript(client, script.id).label  # noqa: B018 (loads the object)
    assert info.value.status == 404


def test_create_boot_kernel_rebuild_delete(client: LinodeClient):
    script = client.linode.stackscript_create("node", SCRIPT, ["linode/debian12"])
    instance = client.linode.instance_create(
        "g6-standard-2",
        "eu-central",
        image="linode/debian12",
        label="itframe-eu-central-worker-1",
        tags=["swarmboot:itframe"],
        root_pass=ROOT_PASS,
        authorized_keys=["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB0aaaa orchestrator"],
        stackscript=script,
        stackscript_data={"hostname": "itframe-eu-central-worker-1", "zone": "eu-central"},
        booted=False,
        private_ip=True,
    )
    assert instance.status == "provisioning"
    public, private = instance.ipv4
    assert public.startswith("198.51.100.") and private.startswith("192.168.")
    assert instance.ipv6.endswith("/128")
    wait_for(instance, "offline")

    (config,) = instance.configs
    assert config.label == "My Debian 12 Disk Profile"
    config.kernel = "linode/latest-64bit"
    config.save()
    config.kernel = "linode/grub2"
    config.save()
    assert instance.configs[0].kernel.id == "linode/grub2"
    assert sorted(d.filesystem for d in instance.disks) == ["ext4", "swap"]

    instance.boot(config)
    wait_for(instance, "running")
    ips = instance.ips
    assert ips.ipv4.public[0].address == public and ips.ipv4.public[0].gateway == "198.51.100.1"
    assert ips.ipv4.private[0].address == private
    assert ips.ipv6.slaac.address == instance.ipv6.split("/")[0]

    instance.reboot()
    wait_for(instance, "running")
    instance.shutdown()
    wait_for(instance, "offline")
    instance.rebuild("linode/debian12", root_pass=ROOT_PASS)
    instance.invalidate()
    assert instance.status in ("rebuilding", "booting")
    wait_for(instance, "running")
    assert instance.configs[0].kernel.id == "linode/grub2"  # the simulator's default profile

    raw = client.get("/account/events", filters={"entity.id": instance.id, "entity.type": "linode"})
    events = [(e["action"], e["status"]) for e in raw["data"]]
    assert [e.id for e in client.account.events()][: len(events)] == [e["id"] for e in raw["data"]]
    for action in (
        "linode_create",
        "linode_config_update",
        "linode_boot",
        "linode_reboot",
        "linode_shutdown",
        "linode_rebuild",
    ):
        assert (action, "finished") in events or (action, "notification") in events, action

    instance.delete()
    assert list(client.linode.instances()) == []
    assert script.deployments_total == 0 or StackScript(client, script.id).deployments_active == 0


def test_filters_and_pages(client: LinodeClient, admin):
    admin.set_rate_limits(enabled=False)
    for n in range(60):
        region = "eu-central" if n % 2 else "gb-lon"
        client.linode.instance_create(
            "g6-nanode-1",
            region,
            label=f"node-{n:02d}",
            booted=False,
            tags=["swarmboot:big"] + (["odd"] if n % 2 else []),
        )
    paged = LinodeClient(client.token, base_url=client.base_url, page_size=25)
    everything = paged.linode.instances()
    assert len(everything) == 60
    assert [i.label for i in everything] == [f"node-{n:02d}" for n in range(60)]
    odd = paged.linode.instances(Instance.tags.contains("odd"))
    assert len(odd) == 30
    assert {i.region.id for i in odd} == {"eu-central"}
    both = paged.linode.instances(Instance.tags.contains("odd") & (Instance.label == "node-07"))
    assert [i.label for i in both] == ["node-07"]
    either = paged.linode.instances((Instance.label == "node-01") | (Instance.label == "node-02"))
    assert sorted(i.label for i in either) == ["node-01", "node-02"]
    ordered = paged.linode.instances(
        Instance.region == "gb-lon", order_by(Instance.label, desc=True)
    )
    assert [i.label for i in ordered][:2] == ["node-58", "node-56"]
    requests = [
        r for r in admin.requests() if r["route"] == "/linode/instances" and r["method"] == "GET"
    ]
    assert requests, "the listing went through the simulator"


def test_firewall_with_devices(client: LinodeClient):
    nodes = [
        client.linode.instance_create("g6-nanode-1", "eu-central", label=f"fw-{n}", booted=False)
        for n in range(2)
    ]
    rules = {
        "inbound_policy": "ACCEPT",
        "inbound": [
            {
                "action": "ACCEPT",
                "protocol": "TCP",
                "ports": "22",
                "label": "ssh",
                "addresses": {"ipv4": ["0.0.0.0/0"], "ipv6": ["::/0"]},
            },
            {
                "action": "ACCEPT",
                "protocol": "50",
                "label": "esp-members",
                "addresses": {"ipv4": ["198.51.100.2/32"]},
            },
            {
                "action": "DROP",
                "protocol": "TCP",
                "label": "tcp-rest",
                "addresses": {"ipv4": ["0.0.0.0/0"]},
            },
        ],
        "outbound_policy": "ACCEPT",
        "outbound": [],
    }
    firewall = client.networking.firewall_create(
        "itframe-public", rules=rules, tags=["swarmboot:itframe"]
    )
    assert firewall.status == "enabled"
    firewall.device_create(nodes[0].id)
    firewall.device_create(nodes[1].id)
    fetched = Firewall(client, firewall.id)
    assert sorted(d.entity.id for d in fetched.devices) == sorted(n.id for n in nodes)
    assert fetched.rules.inbound_policy == "ACCEPT" and fetched.rules.version == 1

    rules["inbound"] = rules["inbound"][:1]
    fetched.update_rules(rules)
    assert Firewall(client, firewall.id).get_rules()["version"] == 2

    other = client.networking.firewall_create("other", rules=rules)
    with pytest.raises(ApiError) as info:
        other.device_create(nodes[0].id)
    assert info.value.status == 400
    assert "already belongs to a firewall" in str(info.value)

    device = fetched.devices[0]
    device.delete()
    assert len(Firewall(client, firewall.id).devices) == 1
    nodes[1].delete()
    assert len(Firewall(client, firewall.id).devices) == 0
    fetched.delete()
    assert [f.label for f in client.networking.firewalls()] == ["other"]


def test_api_errors_reach_the_sdk_as_the_real_api_sends_them(client: LinodeClient):
    client.linode.instance_create("g6-nanode-1", "eu-central", label="dup", booted=False)
    with pytest.raises(ApiError) as info:
        client.linode.instance_create("g6-nanode-1", "eu-central", label="dup", booted=False)
    assert info.value.status == 400
    assert info.value.json == {
        "errors": [{"reason": "Label must be unique among your linodes", "field": "label"}]
    }
    with pytest.raises(ApiError) as info:
        client.linode.instance_create("g6-nanode-1", "mars-1", label="nowhere", booted=False)
    assert info.value.json["errors"][0]["field"] == "region"
    bad = LinodeClient("wrong-token", base_url=client.base_url)
    with pytest.raises(ApiError) as info:
        list(bad.linode.instances())
    assert info.value.status == 401
    assert info.value.json == {"errors": [{"reason": "Invalid Token"}]}
    with pytest.raises(ApiError) as info:
        Instance(client, 123).label  # noqa: B018 (loads the object)
    assert info.value.status == 404
    assert info.value.json == {"errors": [{"reason": "Not found"}]}


def test_the_sdks_event_pollers(client: LinodeClient, admin):
    admin.set_timings(scale=0.01)
    instance = client.linode.instance_create(
        "g6-nanode-1",
        "eu-central",
        label="polled",
        image="linode/debian12",
        root_pass=ROOT_PASS,
        booted=False,
    )
    client.polling.wait_for_entity_free("linode", instance.id, timeout=10, interval=0.05)
    instance.invalidate()
    assert instance.status == "offline"
    poller = client.polling.event_poller_create("linode", "linode_boot", entity_id=instance.id)
    instance.boot()
    event = poller.wait_for_next_event_finished(timeout=10, interval=0.05)
    assert event.action == "linode_boot" and event.status == "finished"
    instance.invalidate()
    assert instance.status == "running"
