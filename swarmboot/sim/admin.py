"""A small client for the simulator's `/_sim/` endpoints (tests, drills and benchmarks use it)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

__all__ = ["SimAdmin"]


class SimAdmin:
    def __init__(self, api_url: str, token: str) -> None:
        # api_url is the API's base, http://host:port/v4
        self.base = api_url.rstrip("/").rsplit("/", 1)[0]
        self._token = token

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path}: {exc.code} {exc.read()[:300]!r}") from None

    def healthy(self) -> bool:
        try:
            return bool(self._call("GET", "/_sim/health").get("ok"))
        except (OSError, RuntimeError):
            return False

    def has_machines(self) -> bool | None:
        """Whether the simulator has machines behind its Linodes (a lab); None when the URL
        does not answer as a simulator."""
        try:
            answer = self._call("GET", "/_sim/health")
        except (OSError, RuntimeError, ValueError):
            return None
        machines = answer.get("machines") if isinstance(answer, dict) else None
        return machines if isinstance(machines, bool) else None

    def reset(self) -> None:
        self._call("POST", "/_sim/reset")

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        return self._call("PUT", "/_sim/faults", faults)

    def set_timings(self, **timings: Any) -> dict[str, Any]:
        return self._call("PUT", "/_sim/timings", timings)

    def set_rate_limits(self, **limits: Any) -> dict[str, Any]:
        return self._call("PUT", "/_sim/rate-limits", limits)

    def set_interfaces_for_new_linodes(self, value: str) -> dict[str, Any]:
        """The account's `interfaces_for_new_linodes`, through the API's own
        `PUT /account/settings` (legacy_config_only, legacy_config_default_but_linode_allowed,
        linode_default_but_legacy_config_allowed or linode_only)."""
        return self._call("PUT", "/v4/account/settings", {"interfaces_for_new_linodes": value})

    def set_withheld(self, withheld: dict[str, list[str]] | None = None) -> dict[str, Any]:
        """Leave capabilities out of regions' or images' catalogue entries (none: all back)."""
        return self._call("PUT", "/_sim/withheld", withheld or {})

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/_sim/stats")

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        return self._call("GET", f"/_sim/requests?since={since}")

    def fired(self) -> list[dict[str, Any]]:
        return self._call("GET", "/_sim/faults/fired")

    def violations(self) -> list[str]:
        return self._call("GET", "/_sim/violations")

    def instances(self) -> list[dict[str, Any]]:
        return self._call("GET", "/_sim/instances")

    def hosts(self) -> dict[int, str]:
        """Each Linode's host (its `host_uuid`), by Linode id."""
        return {int(k): v for k, v in self._call("GET", "/_sim/hosts").items()}

    def share_host(self, *linode_ids: int) -> dict[int, str]:
        """Move the Linodes onto the first one's host (all in one region)."""
        answer = self._call("POST", "/_sim/hosts/share", {"linodes": list(linode_ids)})
        return {int(k): v for k, v in answer.items()}

    def separate_hosts(self, *linode_ids: int) -> dict[int, str]:
        """Move each of the Linodes back onto a host of its own."""
        answer = self._call("POST", "/_sim/hosts/separate", {"linodes": list(linode_ids)})
        return {int(k): v for k, v in answer.items()}
