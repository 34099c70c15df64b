"""Every fault mode, and that a seed replays the same faults."""

from __future__ import annotations

import contextlib
import time

import pytest
import requests
from linode_api4 import ApiError, LinodeClient

from .conftest import TOKEN


@pytest.fixture
def get(sim):
    def call(path: str, method: str = "GET", body=None):
        return requests.request(
            method,
            sim.url + path,
            json=body,
            timeout=10,
            headers={"Authorization": f"Bearer {TOKEN}"},
        )

    return call


def test_server_errors_before_anything_is_done(get, admin):
    admin.set_faults(error_rate=1.0, error_statuses=[503])
    answer = get(
        "/linode/instances",
        "POST",
        {"type": "g6-nanode-1", "region": "eu-central", "label": "never", "booted": False},
    )
    assert answer.status_code == 503
    assert answer.json() == {"errors": [{"reason": "Service Unavailable"}]}
    admin.set_faults()
    assert get("/linode/instances").json()["results"] == 0  # nothing was created


def test_some_errors_and_the_sdk_retrying_502(sim, admin):
    admin.set_faults(seed=7, error_rate=0.5, error_statuses=[502])
    client = LinodeClient(TOKEN, base_url=sim.url, retry_rate_limit_interval=0.05)
    for _ in range(10):
        assert client.regions()  # linode_api4 retries 502 and gets through
    fired = [f for f in admin.fired() if f["kind"] == "error 502"]
    assert fired, "some requests met the fault"


def test_dropped_connections(get, admin):
    admin.set_faults(drop_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        get("/regions")
    assert admin.stats()["requests"] >= 1  # the admin API itself is not faulted


def test_429_storm_with_retry_after(get, admin):
    admin.set_faults(storm_after=0, storm_seconds=0.4, storm_retry_after=3)
    answer = get("/profile")
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "3"
    time.sleep(0.45)
    assert get("/profile").status_code == 200


def test_slow_responses(get, admin):
    admin.set_faults(slow_rate=1.0, slow_seconds=0.3)
    started = time.monotonic()
    assert get("/regions").status_code == 200
    assert time.monotonic() - started >= 0.3
    admin.set_faults(latency_seconds=0.1)
    started = time.monotonic()
    get("/regions")
    assert time.monotonic() - started >= 0.1


def test_a_create_whose_answer_is_lost(sim, get, admin):
    """The Linode exists although the client saw no answer: a client that simply retries would
    make a second one, so it must look for the label first."""
    admin.set_faults(lost_create_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        get(
            "/linode/instances",
            "POST",
            {"type": "g6-nanode-1", "region": "eu-central", "label": "ghost-1", "booted": False},
        )
    listed = get("/linode/instances").json()["data"]
    assert [x["label"] for x in listed] == ["ghost-1"]
    client = LinodeClient(TOKEN, base_url=sim.url)
    with pytest.raises(Exception):  # noqa: B017 (whatever the SDK raises for a lost answer)
        client.linode.instance_create("g6-nanode-1", "eu-central", label="ghost-2", booted=False)
    labels = sorted(x["label"] for x in get("/linode/instances").json()["data"])
    assert labels.count("ghost-2") == 1  # the SDK did not post it twice
    assert [f["kind"] for f in admin.fired()] == ["lost-create", "lost-create"]


def test_stuck_in_provisioning_only_the_first_time(get, admin):
    admin.set_faults(stuck_provisioning=["stuck-*"])
    first = get(
        "/linode/instances",
        "POST",
        {"type": "g6-nanode-1", "region": "eu-central", "label": "stuck-1", "booted": False},
    ).json()
    other = get(
        "/linode/instances",
        "POST",
        {"type": "g6-nanode-1", "region": "eu-central", "label": "fine-1", "booted": False},
    ).json()
    time.sleep(0.2)
    assert get(f"/linode/instances/{first['id']}").json()["status"] == "provisioning"
    assert get(f"/linode/instances/{other['id']}").json()["status"] == "offline"
    get(f"/linode/instances/{first['id']}", "DELETE")
    again = get(
        "/linode/instances",
        "POST",
        {"type": "g6-nanode-1", "region": "eu-central", "label": "stuck-1", "booted": False},
    ).json()
    time.sleep(0.2)
    assert get(f"/linode/instances/{again['id']}").json()["status"] == "offline"


def test_a_boot_that_fails(sim, get, admin):
    admin.set_faults(boot_failure=["bad-*"])
    client = LinodeClient(TOKEN, base_url=sim.url)
    instance = client.linode.instance_create(
        "g6-nanode-1",
        "eu-central",
        label="bad-1",
        image="linode/debian12",
        root_pass="correct-Horse-battery-42",
    )
    deadline = time.monotonic() + 5
    while not any(
        e["action"] == "linode_boot" and e["status"] == "failed"
        for e in get("/account/events").json()["data"]
    ):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    failed = next(e for e in get("/account/events").json()["data"] if e["action"] == "linode_boot")
    assert failed["message"] == "Linode failed to boot (injected fault)"
    instance.invalidate()
    assert instance.status == "offline"
    instance.boot()  # the second attempt succeeds
    deadline = time.monotonic() + 5
    while (instance.invalidate() or instance.status) != "running":
        assert time.monotonic() < deadline
        time.sleep(0.02)


def _run_with(admin, get, seed: int) -> list[tuple[str, str]]:
    admin.reset()
    admin.set_rate_limits(enabled=False)
    admin.set_faults(seed=seed, error_rate=0.3, drop_rate=0.1, lost_create_rate=0.3)
    for n in range(20):
        with contextlib.suppress(requests.ConnectionError):
            get(
                "/linode/instances",
                "POST",
                {
                    "type": "g6-nanode-1",
                    "region": "gb-lon",
                    "label": f"seeded-{n}",
                    "booted": False,
                },
            )
        with contextlib.suppress(requests.ConnectionError):
            get("/regions")
    return [(f["kind"], f["key"]) for f in admin.fired()]


def test_a_seed_replays_the_same_faults(get, admin):
    first = _run_with(admin, get, seed=42)
    assert first and first == _run_with(admin, get, seed=42)
    assert first != _run_with(admin, get, seed=43)


def test_bad_fault_settings_are_refused(admin):
    with pytest.raises(RuntimeError, match="400"):
        admin.set_faults(error_rate=2.0)
    with pytest.raises(RuntimeError, match="400"):
        admin.set_faults(unknown=1)


def test_no_fault_means_no_fault(sim, admin):
    client = LinodeClient(TOKEN, base_url=sim.url)
    client.regions()
    with pytest.raises(ApiError):
        client.get("/nothing/here")
    assert admin.fired() == []
