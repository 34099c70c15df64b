"""What the real API does besides shapes: limits, transitions, events, addresses, UDF checks."""

from __future__ import annotations

import ipaddress
import time

import requests

from swarmboot.sim.ratelimit import RateLimits

from ..conftest import STACKSCRIPTS

ROOT_PASS = "correct-Horse-battery-42"


def create(api, label: str, region: str = "eu-central", **extra):
    body = {"type": "g6-nanode-1", "region": region, "label": label, "booted": False, **extra}
    answer = api("POST", "/linode/instances", body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def wait(api, linode_id: int, status: str, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        got = api("GET", f"/linode/instances/{linode_id}").json()
        if got["status"] == status:
            return got
        assert time.monotonic() < deadline, f"stuck in {got['status']}"
        time.sleep(0.01)


def events(api, linode_id: int) -> list[tuple[str, str]]:
    answer = api(
        "GET",
        "/account/events",
        headers={"X-Filter": f'{{"entity.id": {linode_id}, "entity.type": "linode"}}'},
    )
    return [(e["action"], e["status"]) for e in reversed(answer.json()["data"])]


def test_instance_create_has_its_own_stricter_limit(api, admin):
    admin.set_rate_limits(linode_create={"requests": 3, "window": 30})
    for n in range(3):
        assert create(api, f"n-{n}")
    refused = api(
        "POST",
        "/linode/instances",
        {"type": "g6-nanode-1", "region": "eu-central", "label": "n-3", "booted": False},
    )
    assert refused.status_code == 429
    assert refused.json() == {"errors": [{"reason": "Too Many Requests"}]}
    assert refused.headers["X-RateLimit-Limit"] == "3"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert 1 <= int(refused.headers["Retry-After"]) <= 30
    assert int(refused.headers["X-RateLimit-Reset"]) >= int(time.time())
    # Other calls are not held back by the create limit, and carry their own headers.
    listing = api("GET", "/linode/instances")
    assert listing.status_code == 200 and listing.json()["results"] == 3
    assert listing.headers["X-RateLimit-Limit"] == "200"  # paginated GETs: 200 a minute
    assert admin.stats()["counters"]["rate_limited"] == 1


def test_the_general_limits_count_every_request(api, admin):
    admin.set_rate_limits(general={"requests": 5, "window": 120})
    statuses = [api("GET", "/regions").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]


def test_a_window_resets(api, admin):
    admin.set_rate_limits(general={"requests": 2, "window": 0.3})
    assert [api("GET", "/profile").status_code for _ in range(3)] == [200, 200, 429]
    time.sleep(0.35)
    assert api("GET", "/profile").status_code == 200


def test_the_defaults_are_linodes_published_limits():
    # https://techdocs.akamai.com/linode-api/reference/rate-limits (2026): no per-command limit.
    limits = RateLimits()
    assert (limits.linode_create.requests, limits.linode_create.window) == (20, 15)
    assert (limits.general.requests, limits.general.window) == (1600, 60)
    assert (limits.collection.requests, limits.collection.window) == (200, 60)
    assert (limits.images_list.requests, limits.images_list.window) == (20, 60)
    assert (limits.stackscripts_list.requests, limits.stackscripts_list.window) == (60, 60)
    assert "command" not in RateLimits.model_fields


def test_every_answer_carries_the_headers_of_its_binding_limit(api, admin):
    admin.set_rate_limits()
    before = int(time.time())
    made = api(
        "POST",
        "/linode/instances",
        {"type": "g6-nanode-1", "region": "eu-central", "label": "h-1", "booted": False},
    )
    assert made.status_code == 200
    # A create is bound by its own limit: 20 per 15 s, this one the first of the window.
    assert made.headers["X-RateLimit-Limit"] == "20"
    assert made.headers["X-RateLimit-Remaining"] == "19"
    assert before + 15 <= int(made.headers["X-RateLimit-Reset"]) <= int(time.time()) + 16
    assert "Retry-After" not in made.headers
    answers = {
        "/images": "20",  # images: 20 a minute
        "/linode/stackscripts": "60",  # StackScripts: 60 a minute
        "/linode/instances": "200",  # any other paginated collection: 200 a minute
        "/profile": "1600",  # everything: 1600 a minute
    }
    for sent, (path, limit) in enumerate(answers.items(), start=2):
        got = api("GET", path)
        assert got.status_code == 200, path
        assert got.headers["X-RateLimit-Limit"] == limit, path
        # Each its own first; all of them count against the 1600.
        left = 1600 - sent if limit == "1600" else int(limit) - 1
        assert int(got.headers["X-RateLimit-Remaining"]) == left, path
    # Once the general budget has fewer left than a collection's, it is the one named.
    admin.set_rate_limits(general={"requests": 3, "window": 60})
    got = [api("GET", "/linode/instances").headers for _ in range(3)]
    assert [(h["X-RateLimit-Limit"], h["X-RateLimit-Remaining"]) for h in got] == [
        ("3", "2"),
        ("3", "1"),
        ("3", "0"),
    ]
    assert api("GET", "/linode/instances").status_code == 429


def test_the_reset_keeps_fractions_when_asked_for_sub_second_windows(api, admin):
    admin.set_rate_limits(linode_create={"requests": 2, "window": 0.75}, reset_decimals=3)
    made = api(
        "POST",
        "/linode/instances",
        {"type": "g6-nanode-1", "region": "eu-central", "label": "f-1", "booted": False},
    )
    reset = made.headers["X-RateLimit-Reset"]
    assert len(reset.split(".")[1]) == 3
    assert time.time() < float(reset) <= time.time() + 0.75


def test_status_transitions_and_their_events(api, admin):
    admin.set_timings(scale=0.02)
    linode = create(api, "life", booted=True, image="linode/debian12", root_pass=ROOT_PASS)
    assert linode["status"] == "provisioning"
    wait(api, linode["id"], "booting")
    wait(api, linode["id"], "running")
    assert events(api, linode["id"]) == [("linode_create", "finished"), ("linode_boot", "finished")]
    assert api("POST", f"/linode/instances/{linode['id']}/shutdown").json() == {}
    assert api("GET", f"/linode/instances/{linode['id']}").json()["status"] == "shutting_down"
    busy = api("POST", f"/linode/instances/{linode['id']}/boot")
    assert busy.status_code == 400 and busy.json() == {"errors": [{"reason": "Linode busy."}]}
    wait(api, linode["id"], "offline")
    assert api("POST", f"/linode/instances/{linode['id']}/reboot").json() == {}
    wait(api, linode["id"], "running")
    rebuilt = api(
        "POST",
        f"/linode/instances/{linode['id']}/rebuild",
        {"image": "linode/debian12", "root_pass": ROOT_PASS},
    ).json()
    assert rebuilt["status"] == "rebuilding"
    wait(api, linode["id"], "running")
    assert events(api, linode["id"])[2:] == [
        ("linode_shutdown", "finished"),
        ("linode_reboot", "finished"),
        ("linode_rebuild", "finished"),
        ("linode_boot", "finished"),
    ]
    finished = api("GET", "/account/events").json()["data"][0]
    assert finished["percent_complete"] == 100 and finished["duration"] > 0
    api("DELETE", f"/linode/instances/{linode['id']}")
    assert events(api, linode["id"])[-1] == ("linode_delete", "notification")


def test_an_event_in_progress_tells_how_far_it_has_come(api, admin):
    admin.set_timings(scale=0.02)  # provisioning takes 0.7 s
    linode = create(api, "progress")
    time.sleep(0.35)
    answer = api(
        "GET",
        "/account/events",
        headers={"X-Filter": f'{{"entity.id": {linode["id"]}, "action": "linode_create"}}'},
    )
    (event,) = answer.json()["data"]
    assert event["status"] == "started"
    assert 30 <= event["percent_complete"] <= 80  # about half of it
    wait(api, linode["id"], "offline")
    done = api("GET", f"/account/events/{event['id']}").json()
    assert (done["status"], done["percent_complete"]) == ("finished", 100)


def test_unbooted_create_goes_offline_and_boots_on_request(api):
    linode = create(api, "quiet", image="linode/debian12", root_pass=ROOT_PASS)
    wait(api, linode["id"], "offline")
    assert api("POST", f"/linode/instances/{linode['id']}/boot", {}).json() == {}
    wait(api, linode["id"], "running")
    bare = create(api, "bare")
    wait(api, bare["id"], "offline")
    refused = api("POST", f"/linode/instances/{bare['id']}/boot")
    assert refused.status_code == 400  # no image, no config profile to boot


def test_labels_are_unique_and_valid(api):
    create(api, "web-1")
    twice = api(
        "POST",
        "/linode/instances",
        {"type": "g6-nanode-1", "region": "eu-central", "label": "web-1", "booted": False},
    )
    assert twice.status_code == 400
    assert twice.json() == {
        "errors": [{"reason": "Label must be unique among your linodes", "field": "label"}]
    }
    for bad in ("1web", "we", "web--1", "w" * 65, "web 1"):
        answer = api(
            "POST",
            "/linode/instances",
            {"type": "g6-nanode-1", "region": "eu-central", "label": bad, "booted": False},
        )
        assert answer.status_code == 400 and answer.json()["errors"][0]["field"] == "label", bad
    renamed = api("PUT", f"/linode/instances/{create(api, 'web-2')['id']}", {"label": "web-1"})
    assert renamed.status_code == 400


def test_addresses_per_region(api, sim):
    made = [create(api, f"eu-{n}", private_ip=True) for n in range(3)]
    made.append(create(api, "lon-1", region="gb-lon"))
    eu = ipaddress.ip_network(sim.sim.config.public_ranges["eu-central"])
    lon = ipaddress.ip_network(sim.sim.config.public_ranges["gb-lon"])
    publics = [ipaddress.ip_address(m["ipv4"][0]) for m in made]
    assert all(a in eu for a in publics[:3]) and publics[3] in lon
    assert len(set(publics)) == 4 and ipaddress.ip_address("198.51.100.1") not in publics
    privates = [ipaddress.ip_address(m["ipv4"][1]) for m in made[:3]]
    assert all(p in ipaddress.ip_network("192.168.128.0/17") for p in privates)
    assert len(made[3]["ipv4"]) == 1
    v6 = [m["ipv6"] for m in made]
    assert all(v.endswith("/128") and ipaddress.ip_address(v[:-4]).is_private for v in v6)
    assert len(set(v6)) == 4
    # A deleted Linode's address is free again.
    api("DELETE", f"/linode/instances/{made[0]['id']}")
    again = create(api, "eu-again")
    assert again["ipv4"][0] == made[0]["ipv4"][0]


def test_a_region_without_a_range_says_how_to_give_it_one(api):
    answer = api(
        "POST",
        "/linode/instances",
        {"type": "g6-nanode-1", "region": "ap-south", "label": "far-away", "booted": False},
    )
    assert answer.status_code == 400
    (error,) = answer.json()["errors"]
    assert error["field"] == "region" and "--public-range ap-south=CIDR" in error["reason"]


def test_stackscript_udfs_are_parsed_and_enforced(api):
    script = api(
        "POST",
        "/linode/stackscripts",
        {
            "label": "node",
            "images": ["linode/debian12"],
            "script": (STACKSCRIPTS / "debian12-swarm-node.sh").read_text(),
        },
    ).json()
    fields = {f["name"]: f for f in script["user_defined_fields"]}
    assert fields["swarm_role"] == {
        "name": "swarm_role",
        "label": "Swarm role of the node",
        "example": "",
        "default": "worker",
        "oneof": "manager,worker,lb",
    }
    base = {
        "type": "g6-nanode-1",
        "region": "eu-central",
        "image": "linode/debian12",
        "root_pass": ROOT_PASS,
        "stackscript_id": script["id"],
        "booted": False,
    }
    missing = api(
        "POST",
        "/linode/instances",
        {**base, "label": "ss-1", "stackscript_data": {"hostname": "ss-1"}},
    )
    assert missing.status_code == 400
    assert missing.json()["errors"] == [
        {
            "reason": "required (Placement zone, usually the region (becomes node.labels.zone))",
            "field": "stackscript_data",
        }
    ]
    wrong = api(
        "POST",
        "/linode/instances",
        {
            **base,
            "label": "ss-2",
            "stackscript_data": {"hostname": "ss-2", "zone": "eu-central", "swarm_role": "boss"},
        },
    )
    assert wrong.json()["errors"][0]["reason"] == "'boss' is not one of manager, worker, lb"
    other_image = api(
        "POST",
        "/linode/instances",
        {
            **base,
            "label": "ss-3",
            "image": "linode/ubuntu24.04",
            "stackscript_data": {"hostname": "ss-3", "zone": "eu-central"},
        },
    )
    assert other_image.json()["errors"][0]["field"] == "image"
    ok = api(
        "POST",
        "/linode/instances",
        {**base, "label": "ss-4", "stackscript_data": {"hostname": "ss-4", "zone": "eu-central"}},
    )
    assert ok.status_code == 200
    counted = api("GET", f"/linode/stackscripts/{script['id']}").json()
    assert (counted["deployments_total"], counted["deployments_active"]) == (1, 1)


def test_a_broken_udf_header_is_refused(api):
    answer = api(
        "POST",
        "/linode/stackscripts",
        {
            "label": "broken",
            "images": ["linode/debian12"],
            "script": '#!/bin/bash\n# <UDF name="zone" label="Zone"\necho\n',
        },
    )
    assert answer.status_code == 400
    assert answer.json()["errors"] == [
        {"reason": "script:2: UDF tag is not closed with '/>' on the same line", "field": "script"}
    ]
    no_shebang = api(
        "POST",
        "/linode/stackscripts",
        {"label": "nobang", "images": ["linode/debian12"], "script": "echo hi\n"},
    )
    assert no_shebang.json()["errors"][0]["field"] == "script"


def test_unknown_paths_methods_and_tokens(api, sim):
    assert api("GET", "/linode/nothing").status_code == 404
    assert api("PATCH", "/linode/instances").status_code in (404, 405, 501)
    assert api("DELETE", "/regions").status_code == 405
    wrong = requests.get(sim.url + "/regions", headers={"Authorization": "Bearer nope"}, timeout=5)
    assert wrong.status_code == 401 and wrong.json() == {"errors": [{"reason": "Invalid Token"}]}
    assert requests.get(sim.url + "/regions", timeout=5).status_code == 401


def test_tags_are_listed_from_what_carries_them(api):
    create(api, "tag-1", tags=["swarmboot:a", "zone:x"])
    create(api, "tag-2", tags=["swarmboot:a"])
    tags = api("GET", "/tags").json()
    assert tags["data"] == [{"label": "swarmboot:a"}, {"label": "zone:x"}]


def test_backend_is_called_as_lives_go_on(api, sim, admin):
    backend = sim.sim.backend
    backend.calls.clear()
    linode = create(
        api,
        "machine",
        image="linode/debian12",
        root_pass=ROOT_PASS,
        authorized_keys=["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB0aaaa me"],
    )
    wait(api, linode["id"], "offline")
    api("POST", f"/linode/instances/{linode['id']}/boot")
    wait(api, linode["id"], "running")
    machine = backend.running[linode["id"]]
    assert machine.first_boot and machine.root_pass == ROOT_PASS
    assert machine.authorized_keys == ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB0aaaa me",)
    assert machine.ipv4_public == linode["ipv4"][0] and machine.kernel == "linode/grub2"
    assert "correct-Horse" not in repr(machine)  # secrets stay out of logs
    api("POST", f"/linode/instances/{linode['id']}/reboot")
    wait(api, linode["id"], "running")
    time.sleep(0.05)
    assert backend.running[linode["id"]].first_boot is False
    api("DELETE", f"/linode/instances/{linode['id']}")
    deadline = time.monotonic() + 2
    while backend.calls[-1] != ("delete", linode["id"]):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert [c for c, i in backend.calls if i == linode["id"]] == [
        "start",
        "stop",
        "start",
        "delete",
    ]


def test_a_client_that_resets_its_connection_leaves_no_traceback(capfd):
    import socket
    import struct
    import time

    from swarmboot.sim.config import SimConfig
    from swarmboot.sim.engine import Simulator
    from swarmboot.sim.server import SimServer

    server = SimServer(Simulator(SimConfig(port=0, token="t")))
    server.start()
    try:
        host, port = server.httpd.server_address[:2]
        for _ in range(5):  # a killed client: half a request, then a reset
            conn = socket.create_connection((host, port))
            conn.sendall(b"GET /v4/regions HTTP/1.1\r\nHost: x\r\n")
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
        time.sleep(0.3)
    finally:
        server.stop()
    assert "Traceback" not in capfd.readouterr().err


def test_a_refused_product_answers_as_to_a_token_without_its_scope(api, sim):
    """Refused products with an OAuth scope of their own answer every path 401 as the real
    API answers a token without that scope; a path nobody serves is a 404; a wrong token is
    told so first."""
    scoped = {"errors": [{"reason": "Your OAuth token is not authorized to use this endpoint."}]}
    for method, path, body in (
        ("GET", "/volumes", None),
        ("POST", "/volumes", {"label": "data", "size": 20, "region": "eu-central"}),
        ("GET", "/lke/clusters/7/pools", None),
        ("GET", "/nodebalancers", None),
        ("DELETE", "/domains/12", None),
        ("GET", "/object-storage/buckets", None),
        ("GET", "/databases/instances", None),
        ("GET", "/account/users/someone/grants", None),
        ("GET", "/profile/tokens", None),
        ("GET", "/support/tickets", None),
    ):
        answer = api(method, path, body)
        assert (answer.status_code, answer.json()) == (401, scoped), (method, path)
        level = "read_only" if method == "GET" else "read_write"
        needed, _, needed_level = answer.headers["X-Accepted-OAuth-Scopes"].partition(":")
        assert needed_level == level
        assert needed not in answer.headers["X-OAuth-Scopes"]  # the token lacks it
        if body is not None:
            # Answered before its body was read, the connection closes, and says so: the
            # session's next request goes down a new one.
            assert answer.headers["Connection"] == "close"
    wrong = requests.get(
        sim.url + "/volumes", headers={"Authorization": "Bearer wrong-token"}, timeout=10
    )
    assert (wrong.status_code, wrong.json()) == (401, {"errors": [{"reason": "Invalid Token"}]})
    for path in ("/volumesx", "/account/invoices", "/no/such/thing"):
        answer = api("GET", path)
        assert (answer.status_code, answer.json()) == (404, {"errors": [{"reason": "Not found"}]})
    assert api("GET", "/linode/instances").status_code == 200
