"""Linode's published rate limits, per token, in fixed windows.

Source: Linode's rate-limit page, https://techdocs.akamai.com/linode-api/reference/rate-limits
(as updated in 2026; the OpenAPI spec carried the rules until 4.176.0, which gave 800 requests
per two minutes in all, 400 per minute per command and 10 creates per 30 s). Its basic limits
are 1600 requests per minute and 200 per minute for each GET of a paginated collection; its
dedicated ones that this simulator serves are creating Linodes (20 per 15 s), listing images
(20 per minute) and listing StackScripts (60 per minute). The page gives no per-command limit
any more, so there is none here. The 1600 a minute is read as one budget for all of a token's
requests (the stricter reading); each paginated collection has its own 200 a minute.

A request is counted only if every limit it falls under has room; otherwise it is answered
429 with `Retry-After` and the `X-RateLimit-*` headers of the limit that refused it. An
answer that is let through carries the headers of its binding limit: the one of its limits
with the fewest requests left (the most specific one among equals), so that a client that
stops at `X-RateLimit-Remaining: 0` until `X-RateLimit-Reset` never meets a 429 from it.
`X-RateLimit-Reset` is in whole epoch seconds, rounded up, as Linode sends it;
`reset_decimals` keeps fractions for a simulator whose windows are scaled below a second.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Limit", "RateLimiter", "RateLimits", "Verdict"]


class Limit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    requests: int = Field(ge=1)
    window: float = Field(gt=0)  # seconds


class RateLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    general: Limit = Limit(requests=1600, window=60)
    collection: Limit = Limit(requests=200, window=60)
    linode_create: Limit = Limit(requests=20, window=15)
    images_list: Limit = Limit(requests=20, window=60)
    stackscripts_list: Limit = Limit(requests=60, window=60)
    enabled: bool = True
    # Decimals of X-RateLimit-Reset: 0 as Linode sends it; more for sub-second windows.
    reset_decimals: int = Field(default=0, ge=0, le=6)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # epoch seconds when the binding window resets
    retry_after: int  # seconds, for a refusal
    reset_decimals: int = 0

    def headers(self) -> dict[str, str]:
        if self.reset_decimals:
            scale = 10**self.reset_decimals
            reset = f"{math.ceil(self.reset_at * scale) / scale:.{self.reset_decimals}f}"
        else:
            reset = str(math.ceil(self.reset_at))
        out = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": reset,
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
        if method == "GET" and route == "/linode/stackscripts":
            found.append(("stackscripts-list", self.limits.stackscripts_list))
        if method == "GET" and paginated:
            found.append((f"collection {route}", self.limits.collection))
        found.append(("general", self.limits.general))
        return found

    def check(self, token: str, method: str, route: str, paginated: bool) -> Verdict:
        now = self._clock()
        buckets = self.buckets(method, route, paginated)
        decimals = self.limits.reset_decimals
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
                            False,
                            limit.requests,
                            0,
                            reset,
                            max(1, math.ceil(reset - now)),
                            decimals,
                        )
            for name, _, start, count in states:
                self._windows[(token, name)] = (start, count + 1)
            # The binding limit: the fewest left once this one counts; the first among equals.
            _, limit, start, count = min(states, key=lambda state: state[1].requests - state[3] - 1)
            return Verdict(
                True,
                limit.requests,
                max(0, limit.requests - count - 1),
                start + limit.window,
                0,
                decimals,
            )

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()
