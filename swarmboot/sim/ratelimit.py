"""Linode's documented rate limits, per token, in fixed windows.

From the API's own rules: 800 requests per two minutes in all; 400 per minute for each
command; 200 per minute for each GET of a paginated collection; dedicated limits for creating
Linodes (10 per 30 seconds, the stricter of the two published figures, as the default) and for
listing images (20 per minute). A request is counted only if every limit it falls under has
room; otherwise it is answered 429 with `Retry-After` and the `X-RateLimit-*` headers.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

__all__ = ["Limit", "RateLimiter", "RateLimits", "Verdict"]


class Limit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    requests: int
    window: float  # seconds


class RateLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    general: Limit = Limit(requests=800, window=120)
    command: Limit = Limit(requests=400, window=60)
    collection: Limit = Limit(requests=200, window=60)
    linode_create: Limit = Limit(requests=10, window=30)
    images_list: Limit = Limit(requests=20, window=60)
    enabled: bool = True


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # epoch seconds when the binding window resets
    retry_after: int  # seconds, for a refusal

    def headers(self) -> dict[str, str]:
        out = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset_at)),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.retry_after)
        return out


class RateLimiter:
    """Fixed windows keyed by (token, bucket); thread-safe; the clock is injectable."""

    def __init__(self, limits: RateLimits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        # (token, bucket) -> (window start, count)
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}

    def buckets(self, method: str, route: str, paginated: bool) -> list[tuple[str, Limit]]:
        """The limits a request falls under, the most specific first."""
        found: list[tuple[str, Limit]] = []
        if method == "POST" and route == "/linode/instances":
            found.append(("linode-create", self.limits.linode_create))
        if method == "GET" and route == "/images":
            found.append(("images-list", self.limits.images_list))
        if method == "GET" and paginated:
            found.append((f"collection {route}", self.limits.collection))
        found.append((f"command {method} {route}", self.limits.command))
        found.append(("general", self.limits.general))
        return found

    def check(self, token: str, method: str, route: str, paginated: bool) -> Verdict:
        now = self._clock()
        buckets = self.buckets(method, route, paginated)
        with self._lock:
            states = []
            for name, limit in buckets:
                start, count = self._windows.get((token, name), (now, 0))
                if now - start >= limit.window:
                    start, count = now, 0
                states.append((name, limit, start, count))
            if self.limits.enabled:
                for _, limit, start, count in states:
                    if count >= limit.requests:
                        reset = start + limit.window
                        return Verdict(
                            False, limit.requests, 0, reset, max(1, math.ceil(reset - now))
                        )
            for name, _, start, count in states:
                self._windows[(token, name)] = (start, count + 1)
            _, limit, start, count = states[0]
            return Verdict(
                True, limit.requests, max(0, limit.requests - count - 1), start + limit.window, 0
            )

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()
