"""Is an address on this machine's side of its default route? (The simulator's safety net.)

Against a simulator, a Linode's address is real only when a lab routes it into a namespace of
this machine. An address that would leave through the default route belongs to nobody here:
swarmboot must not send it a packet.
"""

from __future__ import annotations

import json
import shutil
import subprocess

from swarmboot.remote import RemoteError

__all__ = ["NotRoutable", "records_only", "require_local_route"]


class NotRoutable(RemoteError):
    """The address is not on this machine: nothing behind it to talk to."""


def _route(args: list[str]) -> list[dict]:
    ip = shutil.which("ip") or "/usr/sbin/ip"
    done = subprocess.run(
        [ip, "-j", "route", *args], capture_output=True, text=True, timeout=5, check=False
    )
    if done.returncode != 0:
        return []
    try:
        return json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        return []


_NO_MACHINES_HINT = (
    "start the simulator with the lab (`swarmboot sim --lab`, as root) to get real nodes, or "
    "point --api-url at Linode"
)


def records_only(label: str, address: str) -> None:
    """The guard for a simulator that keeps records only: no address is ever contacted,
    whatever routes this machine has (a lab's may cover the same range)."""
    raise NotRoutable(
        f"{label}: {address} is not a machine: the simulator's Linodes have no machines "
        "behind them",
        hint=_NO_MACHINES_HINT,
    )


def require_local_route(label: str, address: str) -> None:
    """Raise `NotRoutable` unless `address` is routed somewhere other than the default route."""
    found = _route(["get", address])
    defaults = {(r.get("gateway"), r.get("dev")) for r in _route(["show", "default"])}
    if not found:
        raise NotRoutable(f"{label}: {address} has no route on this machine")
    route = found[0]
    if route.get("type") == "local" or (route.get("gateway"), route.get("dev")) not in defaults:
        return
    raise NotRoutable(
        f"{label}: {address} is not on this machine: the simulator's Linodes have no machines "
        "behind them",
        hint=_NO_MACHINES_HINT,
    )
