"""One run of steps: what it learned along the way, how its calls are retried and limited.

Every runner takes a `Run` and its step. A runner carries its step out as planned; what it
needs and the plan could not know yet (the id of a Linode or StackScript made earlier in the
same run, a joined node's swarm id, the join tokens) it finds here. A step that can no
longer be carried out as planned raises `Replan`: the round ends, and the next one observes
and plans again.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any

from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
)

from swarmboot.apply.changes import Change
from swarmboot.clock import Clock, stop_after
from swarmboot.cloud import CloudError
from swarmboot.cluster import Context
from swarmboot.errors import ExitCode, SwarmbootError
from swarmboot.interfaces import SUBNET_LABEL
from swarmboot.state import CloudFirewall, Instance, Observed, PublishedScript

__all__ = ["CreateLimiter", "NotReadyError", "Replan", "Run"]


class NotReadyError(SwarmbootError):
    exit_code = ExitCode.NOT_READY


class Replan(Exception):
    """A step that can no longer be carried out as planned: the round ends there and the
    next one observes and plans again."""


class CreateLimiter:
    """At most `limit` creates in any `window` seconds: Linode's limit, never exceeded.

    A create counts from when it was sent until `window` seconds after its answer came
    back: the API counts it from when it arrived, somewhere in between, so however late a
    request arrives (a slow connection, a retry inside the SDK) the next window's creates
    cannot reach the API within its window."""

    def __init__(self, limit: int, window: float, clock: Clock) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._slots: list[list[float]] = []  # [sent, or answered once it is]
        self._lock = threading.Lock()

    def acquire(self) -> list[float]:
        """Wait for room in the window; the slot to hand to `answered`."""
        while True:
            with self._lock:
                now = self.clock.monotonic()
                self._slots = [s for s in self._slots if now - s[0] < self.window]
                if len(self._slots) < self.limit:
                    slot = [now]
                    self._slots.append(slot)
                    return slot
                wait = self.window - (now - min(s[0] for s in self._slots)) + 0.01
            self.clock.sleep(wait)

    def answered(self, slot: list[float]) -> None:
        """The create's answer (or its failure) came back: it counts from now."""
        with self._lock:
            slot[0] = self.clock.monotonic()


class Run:
    """One `up` (or one plan run): the ids, fresh instances and join tokens it learned, and
    what it changed."""

    def __init__(self, ctx: Context, observed: Observed) -> None:
        self.ctx = ctx
        self.observed = observed
        self.instances: dict[str, Instance] = {i.label: i for i in observed.instances}
        self.script_id = next((s.id for s in observed.scripts if s.label == ctx.script.label), None)
        self.published: PublishedScript | None = None  # the API's answer to this run's publish
        # The cluster's Cloud Firewalls as the API answered each change this run made to
        # them (their rules, the Linodes behind them).
        self.firewalls: dict[str, CloudFirewall] = {f.label: f for f in observed.firewalls}
        # The lists of the cloud (swarmboot.cluster.LINODES, ...) changed in a way the
        # answers did not tell in full: the next look lists them.
        self.relist: set[str] = set()
        self.placement_group_ids = {g.label: g.id for g in observed.placement_groups}
        # The subnet each of the cluster's VPCs gives its nodes, by the VPC's label.
        self.vpc_subnets = {
            v.label: sub.id for v in observed.vpcs if (sub := v.subnet(SUBNET_LABEL)) is not None
        }
        self.tokens: tuple[str, str] | None = None  # secrets: kept in memory only
        self.limiter = CreateLimiter(*ctx.settings.create_limit, ctx.clock)
        self.lock = threading.Lock()  # for what runners in parallel record here
        self.done: list[str] = []
        self.changes: list[Change] = []  # what the runners changed, as they changed it
        self.not_ready: dict[str, str] = {}
        self.join_failures: collections.Counter[str] = collections.Counter()
        self.unjoined: set[str] = set()  # workers whose join failed in this round
        self.joined: dict[str, str] = {}  # the swarm node id of each node joined in this run
        # Where this run's events begin: the newest account event before it changed a
        # Linode (None: not read), or, when it only made Linodes and booted those, the
        # API's time the first of them was made (`created`: no event about them is older).
        # And the transition it asked each Linode for last, with when: the waits follow
        # them through the events from there.
        self.event_mark: int | None = None
        self.events_from: str | None = None
        self.transitions: dict[int, tuple[str, float]] = {}

    def report(self, text: str) -> None:
        self.done.append(text)
        self.ctx.reporter.ok(text)

    def changed(self, kind: str, name: str, id: int | str | None = None) -> None:
        """Record a change the runner made (see swarmboot.apply.changes); only once it is
        made, and only when there was something to change."""
        self.changes.append(Change(kind, name, id))

    def call(self, what: str, fn: Callable[[], Any]) -> Any:
        """A cloud call, retried when it failed on the way (no answer, 5xx, 429 after the
        SDK's own retries)."""
        return Retrying(
            retry=retry_if_exception(lambda e: isinstance(e, CloudError) and e.retryable),
            stop=stop_after_attempt(5),
            wait=wait_exponential(multiplier=0.5, max=8),
            sleep=self.ctx.clock.sleep,
            reraise=True,
        )(fn)

    def until(self, check: Callable[[], bool], seconds: float, *, longest: float = 2.0) -> bool:
        """Poll `check` until it holds, for up to `seconds` on the context's clock, every
        poll interval (at most `longest` seconds apart); whether it came to hold."""
        ctx = self.ctx
        try:
            Retrying(
                retry=retry_if_result(lambda held: not held),
                wait=lambda state: min(ctx.settings.poll_interval, longest),
                stop=stop_after(ctx.clock, seconds),
                sleep=ctx.clock.sleep,
            )(check)
        except RetryError:
            return False
        return True

    @property
    def events_known(self) -> bool:
        """Whether this run's events can be told apart from older ones."""
        return self.event_mark is not None or self.events_from is not None

    def made(self, inst: Instance) -> None:
        """A Linode this run made: without a mark, its events begin with the first made."""
        if self.event_mark is None and inst.created is not None:
            with self.lock:
                if self.events_from is None or inst.created < self.events_from:
                    self.events_from = inst.created

    def asked(self, linode_id: int, action: str, sent: float) -> None:
        """A transition asked of a Linode at `sent`: the waits follow it by its events, if
        they can be told apart from older ones (the mark was read before it, or it is about
        a Linode this run made)."""
        if self.events_known:
            self.transitions[linode_id] = (action, sent)

    def instance(self, label: str) -> Instance:
        """The Linode a step names, as this run knows it; gone since the plan: `Replan`."""
        found = self.instances.get(label)
        if found is None:
            raise Replan(f"{label} has no Linode any more")
        return found
