"""The clock every wait and limit reads: the system's in a real run, a virtual one in tests.

It reaches each operation through the `Context`, so waiting for nodes, for a drain and for
Linode's rate limits can be tested without waiting on the real clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["Clock", "SystemClock", "stop_after"]


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def wall(self) -> float: ...  # epoch seconds, to read the API's times against
    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def stop_after(clock: Clock, seconds: float) -> Callable[[Any], bool]:
    """A tenacity `stop` that ends the tries once `seconds` have passed on `clock`, counted
    from now (tenacity's own `stop_after_delay` reads the system clock)."""
    started = clock.monotonic()
    return lambda state: clock.monotonic() - started >= seconds
