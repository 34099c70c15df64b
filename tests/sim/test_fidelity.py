"""What the official clients' own integration suites found missing or different (make
fidelity), each checked here so that `make test` guards it without the suites."""

from __future__ import annotations

import time

from linode_api4 import FirewallTemplate

from .test_behaviour import ROOT_PASS, create, wait

RULES = {"inbound_policy": "DROP", "outbound_policy": "ACCEPT", "inbound": [], "outbound": []}
SSH = {"action": "ACCEPT", "protocol": "TCP", "ports": "22", "addresses": {"ipv4": ["0.0.0.0/0"]}}


def test_a_firewall_create_takes_and_ignores_read_only_fields(client, api):
    # linode_api4's suite creates its session firewall with status="enabled".
    fw = client.networking.firewall_create("fw-status", rules=RULES, status="enabled")
    assert fw.status == "enabled"
    answer = api("POST", "/networking/firewalls", {"label": "fw-other", "rules": RULES, "nope": 1})
    assert answer.status_code == 400
    assert answer.json()["errors"] == [{"reason": "Unknown field", "field": "nope"}]


def test_a_rules_update_keeps_what_it_leaves_out(api):
    fw = api("POST", "/networking/firewalls", {"label": "fw-rules", "rules": RULES}).json()
    # linode-cli's `firewalls rules-update ID --inbound '[...]'` sends only the inbound rules.
    answer = api("PUT", f"/networking/firewalls/{fw['id']}/rules", {"inbound": [SSH]})
    assert answer.status_code == 200, answer.text
    rules = answer.json()
    assert rules["inbound"] == [SSH]
    assert (rules["inbound_policy"], rules["outbound_policy"], rules["outbound"]) == (
        "DROP",
        "ACCEPT",
        [],
    )
    assert rules["version"] == 2


def test_the_real_apis_words_for_labels(api):
    api("POST", "/networking/firewalls", {"label": "fw-twice", "rules": RULES})
    again = api("POST", "/networking/firewalls", {"label": "fw-twice", "rules": RULES})
    assert again.json()["errors"][0]["reason"] == "Label must be unique among your Cloud Firewalls"
    bad = api("POST", "/vpcs", {"label": "no_underscores", "region": "us-east"})
    assert bad.json()["errors"] == [
        {"reason": "Must only use ASCII letters, numbers, and dashes", "field": "label"}
    ]


def test_disk_encryption_kernel_and_boot_size_at_create(api):
    plain = create(api, "enc-default", image="linode/debian12", root_pass=ROOT_PASS)
    assert plain["disk_encryption"] == "enabled"  # where the region offers it, as Linode does
    made = create(
        api,
        "enc-off",
        image="linode/debian12",
        root_pass=ROOT_PASS,
        disk_encryption="disabled",
        kernel="linode/latest-64bit",
        boot_size=10000,
        network_helper=False,
    )
    assert made["disk_encryption"] == "disabled"
    disks = api("GET", f"/linode/instances/{made['id']}/disks").json()["data"]
    assert [(d["size"], d["disk_encryption"]) for d in disks] == [
        (10000, "disabled"),
        (512, "disabled"),
    ]
    (config,) = api("GET", f"/linode/instances/{made['id']}/configs").json()["data"]
    assert config["kernel"] == "linode/latest-64bit"
    for field, value in (
        ("disk_encryption", "sometimes"),
        ("kernel", "linode/nope"),
        ("boot_size", 10**7),
    ):
        body = {
            "type": "g6-nanode-1",
            "region": "us-east",
            "image": "linode/debian12",
            "root_pass": ROOT_PASS,
            field: value,
        }
        answer = api("POST", "/linode/instances", body)
        assert answer.status_code == 400 and answer.json()["errors"][0]["field"] == field


def test_disk_encryption_only_where_the_region_offers_it(api, admin):
    admin.set_withheld({"us-east": ["Disk Encryption"]})
    plain = create(api, "enc-nowhere", region="us-east")
    assert plain["disk_encryption"] == "disabled"
    body = {"type": "g6-nanode-1", "region": "us-east", "disk_encryption": "enabled"}
    answer = api("POST", "/linode/instances", body)
    assert answer.json()["errors"] == [
        {"reason": "Disk encryption is not available in us-east", "field": "disk_encryption"}
    ]


def test_tags_are_made_listed_filtered_shown_and_deleted(api, client):
    linode = create(api, "tagged-one")
    assert api("POST", "/tags", {"label": "web", "linodes": [linode["id"]]}).json() == {
        "label": "web"
    }
    assert api("POST", "/tags", {"label": "empty-tag"}).status_code == 200
    listed = api("GET", "/tags", headers={"X-Filter": '{"label": "web"}'}).json()["data"]
    assert listed == [{"label": "web"}]
    (item,) = api("GET", "/tags/web").json()["data"]
    assert (item["type"], item["data"]["id"]) == ("linode", linode["id"])
    assert [t.label for t in client.tags()] == ["empty-tag", "web"]
    assert api("DELETE", "/tags/web").status_code == 200
    assert api("GET", f"/linode/instances/{linode['id']}").json()["tags"] == []
    assert api("GET", "/tags/web").status_code == 404
    short = api("POST", "/tags", {"label": "aa"})
    assert short.json()["errors"] == [
        {"reason": "Length must be 3-50 characters", "field": "label"}
    ]
    missing = api("POST", "/tags", {"label": "vols", "volumes": [1]})
    assert missing.status_code == 400


def test_profile_ssh_keys(client, api):
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZ0ZXN0a2V5 someone@example"
    made = client.profile.ssh_key_upload(key, "laptop")
    assert [k.label for k in client.profile.ssh_keys()] == ["laptop"]
    made.label = "desk"
    made.save()
    assert api("GET", f"/profile/sshkeys/{made.id}").json()["label"] == "desk"
    assert api("POST", "/profile/sshkeys", {"ssh_key": "not a key"}).status_code == 400
    made.delete()
    assert api("GET", "/profile/sshkeys").json()["data"] == []


def test_an_event_seen_marks_it_and_the_older_ones(api):
    create(api, "seen-one")
    create(api, "seen-two")
    newest, older = api("GET", "/account/events").json()["data"][:2]
    assert api("POST", f"/account/events/{older['id']}/seen").json() == {}
    seen = {e["id"]: e["seen"] for e in api("GET", "/account/events").json()["data"]}
    assert seen[older["id"]] and not seen[newest["id"]]
    assert api("POST", "/account/events/1/seen").status_code == 404


def test_a_trailing_slash_names_the_same_resource(api):
    create(api, "slash-one")
    # linode_api4 loads Event("") as /account/events/ and posts ip_allocate to /networking/ips/.
    assert api("GET", "/account/events/").json()["results"] == 1


def test_ids_with_a_slash_in_the_path(api):
    # linode-cli's `kernels view linode/grub2` puts the id in the path as it is.
    assert api("GET", "/linode/kernels/linode/grub2").json()["id"] == "linode/grub2"
    assert api("GET", "/images/linode%2Fdebian10").json()["capabilities"] == []


def test_config_profiles_and_their_interfaces(api):
    vpc = api(
        "POST",
        "/vpcs",
        {
            "label": "cfg-vpc",
            "region": "us-east",
            "subnets": [{"label": "s", "ipv4": "10.0.0.0/24"}],
        },
    ).json()
    subnet_id = vpc["subnets"][0]["id"]
    made = create(
        api,
        "cfg-one",
        region="us-east",
        image="linode/debian12",
        root_pass=ROOT_PASS,
        interfaces=[
            {"purpose": "public"},
            {"purpose": "vpc", "subnet_id": subnet_id, "ipv4": {"nat_1_1": "any"}},
        ],
    )
    base = f"/linode/instances/{made['id']}/configs"
    (config,) = api("GET", base).json()["data"]
    public, vpc_iface = config["interfaces"]
    assert public["purpose"] == "public"
    assert vpc_iface["ipv4"] == {"vpc": "10.0.0.2", "nat_1_1": made["ipv4"][0]}
    subnet = api("GET", f"/vpcs/{vpc['id']}/subnets/{subnet_id}").json()
    assert subnet["linodes"] == [
        {
            "id": made["id"],
            "interfaces": [{"id": vpc_iface["id"], "active": False, "config_id": config["id"]}],
        }
    ]
    disk_id = config["devices"]["sda"]["disk_id"]
    second = api("POST", base, {"label": "second", "devices": {"sda": {"disk_id": disk_id}}})
    assert second.status_code == 200, second.text
    second_id = second.json()["id"]
    vlan = api(
        "POST",
        f"{base}/{second_id}/interfaces",
        {"purpose": "vlan", "label": "back", "ipam_address": "10.8.0.1/24"},
    )
    assert vlan.status_code == 200, vlan.text
    pub = api("POST", f"{base}/{second_id}/interfaces", {"purpose": "public"}).json()
    order = [pub["id"], vlan.json()["id"]]
    assert api("POST", f"{base}/{second_id}/interfaces/order", {"ids": order}).json() == {}
    listed = api("GET", f"{base}/{second_id}/interfaces").json()
    assert [i["id"] for i in listed] == order
    changed = api("PUT", f"{base}/{second_id}/interfaces/{pub['id']}", {"primary": True}).json()
    assert changed["primary"] is True
    assert api("GET", "/networking/vlans").json()["data"] == [
        {
            "label": "back",
            "region": "us-east",
            "linodes": [made["id"]],
            "created": "2024-01-01T00:00:00",
        }
    ]
    busy = api("DELETE", "/networking/vlans/us-east/back")
    assert busy.status_code == 400
    assert api("DELETE", f"{base}/{second_id}/interfaces/{vlan.json()['id']}").status_code == 200
    assert api("GET", "/networking/vlans").json()["data"][0]["linodes"] == []
    assert api("DELETE", "/networking/vlans/us-east/back").status_code == 200
    assert api("GET", "/networking/vlans").json()["data"] == []
    assert api("DELETE", f"{base}/{second_id}").status_code == 200
    assert api("POST", base, {"label": "no-devices"}).json()["errors"][0]["field"] == "devices"
    two_public = api("POST", f"{base}/{config['id']}/interfaces", {"purpose": "public"})
    assert two_public.status_code == 400


def test_disks_made_resized_cloned_and_deleted(api):
    made = create(
        api,
        "disk-one",
        image="linode/debian12",
        root_pass=ROOT_PASS,
        boot_size=10000,
        swap_size=256,
    )
    wait(api, made["id"], "offline")
    base = f"/linode/instances/{made['id']}/disks"
    body = {"label": "data", "size": 2000, "filesystem": "ext4", "read_only": False}
    new = api("POST", base, body)
    assert new.status_code == 200, new.text
    disk = new.json()
    assert (disk["status"], disk["disk_encryption"]) == ("not ready", "enabled")
    deadline = time.monotonic() + 5
    while api("GET", f"{base}/{disk['id']}").json()["status"] != "ready":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert api("PUT", f"{base}/{disk['id']}", {"label": "data-2"}).json()["label"] == "data-2"
    assert api("POST", f"{base}/{disk['id']}/resize", {"size": 3000}).json() == {}
    clone = api("POST", f"{base}/{disk['id']}/clone").json()
    assert clone["size"] == 3000
    too_big = api("POST", base, {"label": "huge", "size": 10**6})
    assert too_big.json()["errors"][0]["field"] == "size"
    assert api("POST", f"{base}/{disk['id']}/password", {"password": ROOT_PASS}).json() == {}
    assert api("DELETE", f"{base}/{clone['id']}").status_code == 200
    assert (
        api("POST", f"/linode/instances/{made['id']}/password", {"root_pass": ROOT_PASS}).json()
        == {}
    )
    weak = api("POST", f"/linode/instances/{made['id']}/password", {"root_pass": "short"})
    assert weak.status_code == 400


def test_firewall_templates_and_default_firewalls(api, client):
    slugs = [t["slug"] for t in api("GET", "/networking/firewalls/templates").json()["data"]]
    assert slugs == ["akamai-non-prod", "vpc", "public"]
    assert client.load(FirewallTemplate, "vpc").rules.inbound_policy == "DROP"
    assert api("GET", "/networking/firewalls/templates/nope").status_code == 404
    defaults = api("GET", "/networking/firewalls/settings").json()["default_firewall_ids"]
    assert defaults == dict.fromkeys(
        ("linode", "nodebalancer", "public_interface", "vpc_interface")
    )
    fw = api("POST", "/networking/firewalls", {"label": "fw-default", "rules": RULES}).json()
    body = {"default_firewall_ids": {"linode": fw["id"], "vpc_interface": fw["id"]}}
    changed = api("PUT", "/networking/firewalls/settings", body).json()["default_firewall_ids"]
    assert (changed["linode"], changed["public_interface"]) == (fw["id"], None)
    bad = api("PUT", "/networking/firewalls/settings", {"default_firewall_ids": {"linode": 1}})
    assert bad.status_code == 400
    api("DELETE", f"/networking/firewalls/{fw['id']}")
    assert api("GET", "/networking/firewalls/settings").json()["default_firewall_ids"] == defaults


def test_region_availability_and_notifications(api):
    everywhere = api("GET", "/regions/availability").json()
    assert everywhere["results"] > 100 and everywhere["data"][0]["available"] is True
    (first, *_) = api("GET", "/regions/us-east/availability").json()
    assert first == {"region": "us-east", "plan": "g6-nanode-1", "available": True}
    assert api("GET", "/regions/us-east/vpc-availability").json() == {
        "region": "us-east",
        "available": True,
        "available_ipv6_prefix_lengths": [],
    }
    assert len(api("GET", "/regions/vpc-availability").json()["data"]) > 20
    assert api("GET", "/regions/nowhere/vpc-availability").status_code == 404
    assert api("GET", "/account/notifications").json()["data"] == []


def test_ip_addresses_allocated_shared_named_and_removed(api, client):
    one = create(api, "ips-one", region="us-east")
    two = create(api, "ips-two", region="us-east")
    extra = api("POST", f"/linode/instances/{one['id']}/ips", {"type": "ipv4", "public": True})
    assert extra.status_code == 200, extra.text
    address = extra.json()["address"]
    assert api("GET", f"/linode/instances/{one['id']}").json()["ipv4"] == [one["ipv4"][0], address]
    private = api(
        "POST", "/networking/ips", {"type": "ipv4", "public": False, "linode_id": one["id"]}
    )
    assert private.json()["public"] is False
    seen = api("GET", f"/networking/ips/{address}").json()
    assert (seen["linode_id"], seen["interface_id"], seen["reserved"]) == (one["id"], None, False)
    named = api("PUT", f"/networking/ips/{address}", {"rdns": "www.example.com"}).json()
    assert named["rdns"] == "www.example.com"
    assert (
        api("POST", "/networking/ips/share", {"ips": [address], "linode_id": two["id"]}).json()
        == {}
    )
    shared = api("GET", f"/linode/instances/{two['id']}/ips").json()["ipv4"]["shared"]
    assert [s["address"] for s in shared] == [address]
    listed = api("GET", "/networking/ips").json()["data"]
    assert sorted(r["type"] for r in listed) == ["ipv4"] * 4 + ["ipv6"] * 2
    assert api("DELETE", f"/linode/instances/{one['id']}/ips/{address}").status_code == 200
    assert api("GET", f"/linode/instances/{two['id']}/ips").json()["ipv4"]["shared"] == []
    only = api("DELETE", f"/linode/instances/{two['id']}/ips/{two['ipv4'][0]}")
    assert only.status_code == 400
    assert api("GET", "/networking/ips/203.0.113.99").status_code == 404
    ip = client.networking.ip_allocate(two["id"])
    assert ip.delete() is True


def test_account_settings_show_the_maintenance_policy(client):
    settings = client.account.settings()
    assert settings.maintenance_policy == "linode/migrate"


def test_a_rebuild_sets_the_disks_encryption(api):
    made = create(api, "rebuild-enc", image="linode/debian12", root_pass=ROOT_PASS)
    wait(api, made["id"], "offline")
    body = {"image": "linode/debian12", "root_pass": ROOT_PASS, "disk_encryption": "disabled"}
    rebuilt = api("POST", f"/linode/instances/{made['id']}/rebuild", body)
    assert rebuilt.status_code == 200, rebuilt.text
    assert rebuilt.json()["disk_encryption"] == "disabled"


def test_a_create_names_a_wrong_type_and_region_together(api):
    body = {"type": "g6-fake-plan", "region": "us-fakeregion"}
    assert api("POST", "/linode/instances", body).json()["errors"] == [
        {"reason": "A valid plan type by that ID was not found", "field": "type"},
        {"reason": "region is not valid", "field": "region"},
    ]


def test_a_firewall_made_with_its_devices(api):
    one = create(api, "fw-dev-one")
    body = {
        "label": "fw-devices",
        "rules": RULES,
        "devices": {"linodes": [one["id"]]},
    }
    fw = api("POST", "/networking/firewalls", body)
    assert fw.status_code == 200, fw.text
    (device,) = api("GET", f"/networking/firewalls/{fw.json()['id']}/devices").json()["data"]
    assert device["entity"]["id"] == one["id"]
    nb = {"label": "fw-nb", "rules": RULES, "devices": {"nodebalancers": [1]}}
    assert api("POST", "/networking/firewalls", nb).status_code == 400


def test_upgrading_a_legacy_linode_to_linode_interfaces(api):
    fw = api("POST", "/networking/firewalls", {"label": "fw-upgrade", "rules": RULES}).json()
    made = create(
        api,
        "upgrade-one",
        region="us-east",
        image="linode/debian12",
        root_pass=ROOT_PASS,
        firewall_id=fw["id"],
    )
    wait(api, made["id"], "offline")
    url = f"/linode/instances/{made['id']}/upgrade-interfaces"
    shown = api("POST", url, {"dry_run": True}).json()
    assert shown["dry_run"] is True
    assert api("GET", f"/linode/instances/{made['id']}").json()["interface_generation"] == (
        "legacy_config"
    )
    done = api("POST", url, {"dry_run": False})
    assert done.status_code == 200, done.text
    (public,) = done.json()["interfaces"]
    assert public["default_route"] == {"ipv4": True, "ipv6": True}
    assert public["public"]["ipv4"]["addresses"][0]["address"] == made["ipv4"][0]
    assert public["firewall_id"] == fw["id"]
    (device,) = api("GET", f"/networking/firewalls/{fw['id']}/devices").json()["data"]
    assert device["entity"]["type"] == "linode_interface"
    assert api("POST", url, {"dry_run": False}).status_code == 400


def test_a_firewalls_rule_history(client, api):
    fw = client.networking.firewall_create("fw-history", rules=RULES)
    fw.update_rules({**RULES, "inbound": [SSH]})
    history = fw.rule_versions
    assert history["results"] == 2
    assert [v["rules"]["version"] for v in history["data"]] == [1, 2]
    assert fw.get_rule_version(1)["inbound"] == []
    assert fw.get_rule_version(2)["inbound"] == [SSH]
    assert api("GET", f"/networking/firewalls/{fw.id}/history/rules/3").status_code == 404
