"""Seeded fault injection: the bad days of a real API, reproducible from a seed.

Every decision is a pure function of the seed, the kind of fault and a key: the n-th request
to an endpoint, or an instance's label. The same client doing the same things against the same
seed meets the same faults, so a failing run can be replayed. Each fault that fires is logged.
"""

from __future__ import annotations

import fnmatch
import hashlib
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["FaultConfig", "Faults", "Fired", "RequestFault"]

Rate = Field(default=0.0, ge=0.0, le=1.0)


class FaultConfig(BaseModel):
    """What goes wrong, and how often (fractions are between 0 and 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    # Answered with one of error_statuses before anything is done.
    error_rate: float = Rate
    error_statuses: tuple[int, ...] = (500, 502, 503)
    # The connection is closed before anything is done.
    drop_rate: float = Rate
    # Some requests are slow; every request can carry a fixed latency.
    slow_rate: float = Rate
    slow_seconds: float = Field(default=0.0, ge=0.0)
    latency_seconds: float = Field(default=0.0, ge=0.0)
    # A 429 storm: from storm_after seconds after the faults are set, for storm_seconds,
    # storm_rate of the requests are refused with Retry-After: storm_retry_after.
    storm_after: float = Field(default=0.0, ge=0.0)
    storm_seconds: float = Field(default=0.0, ge=0.0)
    storm_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    storm_retry_after: int = Field(default=2, ge=1)
    # POST /linode/instances is carried out, then the connection is closed unanswered.
    lost_create_rate: float = Rate
    # Instances (by label pattern, or a fraction of labels) that never leave provisioning,
    # or whose boots fail; only the first `*_attempts` creates or boots of a label are hit,
    # so a retry (recreate, boot again) can succeed.
    stuck_provisioning: tuple[str, ...] = ()
    stuck_rate: float = Rate
    stuck_attempts: int = Field(default=1, ge=1)
    boot_failure: tuple[str, ...] = ()
    boot_failure_rate: float = Rate
    boot_failure_attempts: int = Field(default=1, ge=1)
    # Linodes (by label pattern) created onto their region's one crowded host instead of a
    # host of their own: placement groups then see two members on one host.
    shared_host: tuple[str, ...] = ()


@dataclass(frozen=True)
class RequestFault:
    kind: Literal["error", "drop", "storm"]
    status: int = 0
    retry_after: int = 0


@dataclass(frozen=True)
class Fired:
    kind: str
    key: str
    at: float


class Faults:
    """Decides, from the seed, which faults fire; thread-safe."""

    def __init__(self, config: FaultConfig, started_at: float) -> None:
        self.config = config
        self.started_at = started_at
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.fired: list[Fired] = []

    def _draw(self, kind: str, key: str) -> float:
        digest = hashlib.sha256(f"{self.config.seed}:{kind}:{key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def _fire(self, kind: str, key: str, now: float) -> None:
        self.fired.append(Fired(kind, key, now))

    def request(self, method: str, route: str, now: float) -> tuple[RequestFault | None, float]:
        """The fault for this request, if any, and how long to delay it."""
        c = self.config
        with self._lock:
            self._counts[f"{method} {route}"] += 1
            key = f"{method} {route} #{self._counts[f'{method} {route}']}"
            delay = c.latency_seconds
            if c.slow_rate and self._draw("slow", key) < c.slow_rate:
                delay += c.slow_seconds
                self._fire("slow", key, now)
            if c.drop_rate and self._draw("drop", key) < c.drop_rate:
                self._fire("drop", key, now)
                return RequestFault("drop"), delay
            since = now - self.started_at
            if (
                c.storm_seconds
                and c.storm_after <= since < c.storm_after + c.storm_seconds
                and self._draw("storm", key) < c.storm_rate
            ):
                self._fire("storm", key, now)
                return RequestFault("storm", 429, c.storm_retry_after), delay
            if c.error_rate and self._draw("error", key) < c.error_rate:
                statuses = c.error_statuses or (500,)
                status = statuses[int(self._draw("status", key) * len(statuses))]
                self._fire(f"error {status}", key, now)
                return RequestFault("error", status), delay
            return None, delay

    def lose_create_response(self, label: str, now: float) -> bool:
        c = self.config
        with self._lock:
            self._counts["lost-create"] += 1
            key = f"{label} #{self._counts['lost-create']}"
            if c.lost_create_rate and self._draw("lost-create", key) < c.lost_create_rate:
                self._fire("lost-create", key, now)
                return True
            return False

    def _by_label(
        self,
        kind: str,
        patterns: tuple[str, ...],
        rate: float,
        attempts: int,
        label: str,
        now: float,
    ) -> bool:
        if not patterns and not rate:
            return False
        chosen = any(fnmatch.fnmatchcase(label, p) for p in patterns) or (
            rate > 0 and self._draw(kind, label) < rate
        )
        with self._lock:
            self._counts[f"{kind} {label}"] += 1
            hit = chosen and self._counts[f"{kind} {label}"] <= attempts
            if hit:
                self._fire(kind, f"{label} #{self._counts[f'{kind} {label}']}", now)
        return hit

    def stuck_in_provisioning(self, label: str, now: float) -> bool:
        c = self.config
        return self._by_label(
            "stuck", c.stuck_provisioning, c.stuck_rate, c.stuck_attempts, label, now
        )

    def boot_fails(self, label: str, now: float) -> bool:
        c = self.config
        return self._by_label(
            "boot-failure", c.boot_failure, c.boot_failure_rate, c.boot_failure_attempts, label, now
        )

    def lands_on_shared_host(self, label: str, now: float) -> bool:
        """Whether a Linode created with this label goes onto its region's shared host."""
        hit = any(fnmatch.fnmatchcase(label, p) for p in self.config.shared_host)
        if hit:
            with self._lock:
                self._fire("shared-host", label, now)
        return hit
