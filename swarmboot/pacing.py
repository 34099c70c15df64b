"""Pacing requests by the rate limits the Linode API announces in its answers.

Every answer of a limited endpoint carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
`X-RateLimit-Reset` (epoch seconds when the window ends): the limit binding that endpoint
(Linode's rate-limit page, https://techdocs.akamai.com/linode-api/reference/rate-limits).
`ServerPacing` keeps, per endpoint (method and path, ids made `{id}`), what the last answers
said, and holds a request back while they say it would be refused:

- an endpoint not heard from yet gets one request at a time until the first answer says
  what its limit is (so a burst of parallel requests never meets a limit lower than
  expected);
- each request sent counts against what is left of the window, and each answer can only
  lower that count (an answer that was overtaken by later requests tells of more than is
  left); an answer of a later window starts the count anew;
- with nothing left, a request waits on the clock until `X-RateLimit-Reset`; after it, the
  window's whole `X-RateLimit-Limit` is left.

The reset is read against the clock's wall time: a clock behind the API's sends early and
meets a 429, which the SDK's own retry (after `Retry-After`) takes. Endpoints whose answers
carry no such headers are not held back.
"""

from __future__ import annotations

import collections
import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from swarmboot.clock import Clock

__all__ = ["ServerPacing", "endpoint"]

_ID = re.compile(r"/[0-9]+(?=/|$)")


def endpoint(method: str, path: str) -> str:
    """The key of an endpoint: `POST /linode/instances`, `GET /linode/instances/{id}/configs`
    (the path without the API version, query or ids)."""
    path = path.split("?", 1)[0]
    for prefix in ("/v4beta/", "/v4/"):
        at = path.find(prefix)
        if at >= 0:
            path = "/" + path[at + len(prefix) :]
            break
    return f"{method.upper()} {_ID.sub('/{id}', path.rstrip('/'))}"


@dataclass
class _Window:
    limit: int
    left: int
    reset: float  # epoch seconds
    assumed: bool = False  # the reset passed: a new window is counted before it is heard of


class ServerPacing:
    """What the API said of each endpoint's limit, and the wait it asks for (thread-safe)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.waited = 0.0  # seconds held back, in all
        self._windows: dict[str, _Window | None] = {}  # None: no limit announced
        self._probing: set[str] = set()  # endpoints with their first request out
        self._out: collections.Counter[str] = collections.Counter()  # requests unanswered
        self._sleeping: set[str] = set()  # endpoints with a request waiting for the reset
        self._cond = threading.Condition()

    def before(self, key: str) -> None:
        """Wait until a request to `key` may go, and count it."""
        while True:
            with self._cond:
                if self._may_go(key):
                    self._out[key] += 1
                    return
                window = self._windows.get(key)
                if window is None or window.assumed or key in self._sleeping:
                    # An answer on its way will say more, or another request waits for the
                    # reset already: wait for either.
                    self._cond.wait(timeout=1.0)
                    continue
                wait = max(0.0, window.reset - self.clock.wall())
                self.waited += wait
                self._sleeping.add(key)
            try:
                self.clock.sleep(wait)
            finally:
                with self._cond:
                    self._sleeping.discard(key)
                    self._cond.notify_all()

    def _may_go(self, key: str) -> bool:
        if key not in self._windows:
            if key in self._probing:  # the first answer is on its way
                return False
            self._probing.add(key)
            return True
        window = self._windows[key]
        if window is None:
            return True
        if self.clock.wall() >= window.reset and not window.assumed:
            # A new window: all of it, less the requests still out (they may land in it).
            window.left, window.assumed = max(0, window.limit - self._out[key]), True
        if window.left > 0:
            window.left -= 1
            return True
        # All of a new window went out and none was answered with a count: one more asks.
        return window.assumed and not self._out[key]

    def after(self, key: str, status: int | None, headers: Mapping[str, str] | None) -> None:
        """Take in what an answer to `key` said (`status` None: no answer came)."""
        with self._cond:
            self._probing.discard(key)
            self._out[key] -= 1
            self._cond.notify_all()
            if status is None or headers is None:
                return
            announced = _read(headers)
            if announced is None:
                # An endpoint that answers without a limit is not held back; a refusal or a
                # failure without one says nothing.
                if status < 500 and status != 429:
                    self._windows.setdefault(key, None)
                return
            limit, remaining, reset = announced
            window = self._windows.get(key)
            if window is None or reset > window.reset:
                # A later window: what is left of it, less what went into it unheard (or
                # may yet land in it).
                if window is not None and window.assumed:
                    left = min(remaining, window.left)
                else:
                    left = max(0, remaining - self._out[key])
                self._windows[key] = _Window(limit, left, reset)
            elif reset == window.reset and not window.assumed:
                window.left = min(window.left, remaining)
                window.limit = limit


def _read(headers: Mapping[str, str]) -> tuple[int, int, float] | None:
    """(limit, remaining, reset) from an answer's headers, or None if it has none."""
    try:
        limit = int(headers["X-RateLimit-Limit"])
        remaining = int(headers["X-RateLimit-Remaining"])
        reset = float(headers["X-RateLimit-Reset"])
    except (KeyError, TypeError, ValueError):
        return None
    if limit < 1 or remaining < 0 or not math.isfinite(reset):
        return None
    return limit, min(remaining, limit), reset
