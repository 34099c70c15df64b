"""Waits and limits read the clock the Context carries: with a virtual one, a wait of
minutes (a node's readiness, a drain, Linode's create limit) takes no real time."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from swarmboot.apply import NotReadyError, up
from swarmboot.apply.run import CreateLimiter

from .fakes import FakeClock
from .world import SOLO, make_context


def test_the_create_limiter_keeps_linodes_limit_on_virtual_time():
    clock = FakeClock()
    limiter = CreateLimiter(20, 15.0, clock)  # Linode's: 20 creates per 15 s
    sent: list[float] = []
    lock = threading.Lock()

    def create() -> None:
        slot = limiter.acquire()
        with lock:
            sent.append(clock.monotonic())
        limiter.answered(slot)

    started = time.monotonic()
    threads = [threading.Thread(target=create) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - started < 5.0  # virtual seconds only
    sent.sort()
    assert len(sent) == 50
    for n, at in enumerate(sent):
        assert sum(1 for other in sent[n:] if other - at < 15.0) <= 20
    assert sent[-1] >= 30.0  # the 41st create waited for two windows


def test_a_create_counts_until_its_answer_so_a_late_arrival_cannot_overrun_the_window():
    clock = FakeClock()
    limiter = CreateLimiter(2, 15.0, clock)
    first = limiter.acquire()
    limiter.acquire()
    clock.now = 10.0  # the first create's answer came 10 s after it was sent
    limiter.answered(first)
    limiter.acquire()  # the second one's window (from 0 s) is over at 15 s
    assert clock.now >= 15.0
    limiter.acquire()  # the first one's counts from its answer: over at 25 s, not 15 s
    assert clock.now >= 25.0


def test_waiting_for_a_node_that_never_reports_ends_at_the_timeout_on_the_context_clock(
    virtual_world,
):
    server, fleet, clock = virtual_world
    fleet.behaviour["solo-eu-central-manager-1"] = "stuck"
    ctx = make_context(server, fleet, SOLO, clock, timeout=1200.0, poll_interval=5.0)
    started = time.monotonic()
    with pytest.raises(NotReadyError) as info:
        up(ctx)
    # Its Linode ran after a minute of virtual time; its StackScript never said a word.
    assert "not ready after 1200 s: solo-eu-central-manager-1 (the StackScript" in str(info.value)
    assert clock.now >= 1200.0
    assert set(clock.slept) == {5.0}  # every poll waited the poll interval
    assert time.monotonic() - started < 60.0


def test_a_drain_that_never_ends_is_given_up_at_the_timeout_on_the_context_clock(world):
    server, fleet = world
    ctx = make_context(server, fleet)
    up(ctx)
    fleet.drain_polls = 10**9  # its tasks never move
    ctx.spec = make_context(
        server,
        fleet,
        (ctx.spec_path.read_text()).replace(
            'role = "worker", count = 2 }', 'role = "worker", count = 1 }', 1
        ),
    ).spec
    assert len(ctx.spec.nodes()) == 8
    # A drain is looked at every min(poll interval, 2 s): 150 looks in 300 virtual seconds.
    ctx.settings = replace(ctx.settings, drain_timeout=300.0, poll_interval=2.0)
    ctx.clock = FakeClock()
    started = time.monotonic()
    result = up(ctx, prune=True)
    said = "\n".join(ctx.reporter.lines)
    assert "its tasks had not all moved after 300 s; going on" in said
    assert ctx.clock.now >= 300.0
    assert time.monotonic() - started < 60.0
    assert len(result.observed.instances) == 8
