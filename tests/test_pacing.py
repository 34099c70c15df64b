"""Requests paced by the limits the API announces (`X-RateLimit-*`), on virtual time: no
request is sent that its endpoint's last answers say will be refused."""

from __future__ import annotations

import threading
import time

from swarmboot.apply import up
from swarmboot.pacing import ServerPacing, endpoint
from swarmboot.sim.admin import SimAdmin

from .fakes import FakeClock
from .world import TOKEN, make_context


def _headers(limit: int, remaining: int, reset: float) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(reset),
    }


def test_endpoints_are_keyed_by_method_and_path_without_ids_or_query():
    linode = "https://api.linode.com/v4/linode/instances"
    assert endpoint("post", linode) == "POST /linode/instances"
    assert (
        endpoint("GET", "http://127.0.0.1:1/v4/linode/instances/4711/configs?page=2&page_size=500")
        == "GET /linode/instances/{id}/configs"
    )
    assert endpoint("PUT", "/v4beta/networking/firewalls/12/rules") == (
        "PUT /networking/firewalls/{id}/rules"
    )


def test_a_request_waits_for_the_reset_once_the_api_says_none_is_left():
    clock = FakeClock()
    pacing = ServerPacing(clock)
    key = "POST /linode/instances"
    pacing.before(key)  # the first request finds out what the limit is
    pacing.after(key, 200, _headers(20, 1, clock.wall() + 15))
    pacing.before(key)  # one was left: it goes at once
    assert clock.now == 0.0
    pacing.after(key, 200, _headers(20, 0, clock.wall() + 15))
    pacing.before(key)  # none left: it waits for the reset
    assert clock.now == 15.0
    assert pacing.waited == 15.0
    # Requests of another endpoint are not held back by it.
    pacing.before("GET /linode/instances")
    assert clock.now == 15.0


def test_requests_sent_count_until_answers_say_otherwise_and_late_answers_cannot_raise_it():
    clock = FakeClock()
    pacing = ServerPacing(clock)
    key = "POST /linode/instances"
    reset = clock.wall() + 15
    pacing.before(key)
    pacing.after(key, 200, _headers(3, 2, reset))
    pacing.before(key)
    pacing.before(key)  # two sent, unanswered: none left
    pacing.after(key, 200, _headers(3, 1, reset))  # the first of them: says 1 is left
    assert clock.now == 0.0
    pacing.before(key)  # but both went: it waits
    assert clock.now == 15.0


def test_an_endpoint_not_heard_from_takes_one_request_until_its_first_answer():
    clock = FakeClock()
    pacing = ServerPacing(clock)
    key = "POST /linode/instances"
    pacing.before(key)
    went = threading.Event()

    def second() -> None:
        pacing.before(key)
        went.set()

    thread = threading.Thread(target=second)
    thread.start()
    assert not went.wait(0.2)  # held until the first answer says what the limit is
    pacing.after(key, 200, _headers(5, 4, clock.wall() + 15))
    assert went.wait(2.0)
    thread.join()


def test_answers_without_limits_hold_nothing_back():
    clock = FakeClock()
    pacing = ServerPacing(clock)
    pacing.before("GET /profile")
    pacing.after("GET /profile", 200, {})
    for _ in range(100):
        pacing.before("GET /profile")
    assert clock.now == 0.0


def _nodes_spec(n: int) -> str:
    return (
        '[cluster]\nname = "paced"\n[network]\nencrypted = false\n[regions.eu-central]\n'
        f'pools = [{{ role = "manager", count = 1 }}, {{ role = "worker", count = {n - 1} }}]\n'
    )


def _refused(server) -> int:
    return sum(1 for r in server.requests if r["status"] == 429)


def test_up_at_linodes_create_limit_meets_no_429(virtual_world):
    server, fleet, clock = virtual_world  # the simulator with Linode's limits, 20 per 15 s
    ctx = make_context(server, fleet, _nodes_spec(45), clock)
    assert ctx.settings.create_limit == (20, 15.0)
    started = time.monotonic()
    result = up(ctx)
    assert len(result.observed.swarm.nodes) == 45
    assert _refused(server) == 0
    sent = [(r["method"], r["route"]) for r in server.requests]
    assert sent.count(("POST", "/linode/instances")) == 45
    assert clock.now >= 30.0  # the 41st create waited two windows
    assert time.monotonic() - started < 120.0


def test_a_lower_limit_the_api_announces_is_kept_without_a_429(virtual_world):
    server, fleet, clock = virtual_world
    # The API allows 5 creates per 15 s, while swarmboot assumes Linode's 20.
    SimAdmin(server.url, TOKEN).set_rate_limits(linode_create={"requests": 5, "window": 15})
    ctx = make_context(server, fleet, _nodes_spec(12), clock)
    result = up(ctx)
    assert len(result.observed.swarm.nodes) == 12
    assert _refused(server) == 0
    assert ctx.cloud.pacing.waited >= 30.0  # the 6th and the 11th waited for their windows
    assert clock.now >= 30.0
