"""Checks of request bodies, answered as the real API answers: 400 naming the field."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from swarmboot.sim.errors import ApiError, Problem, bad_request

__all__ = ["MAX_JSON_DEPTH", "Body", "check_label", "load_json"]

# Linode labels: a letter first; letters, digits, -, _ and .; never two of those in a row.
# Matched whole (fullmatch): `$` would let a trailing newline through.
_LABEL = re.compile(r"[a-zA-Z]((?!--|__|\.\.)[a-zA-Z0-9-_.])+")
# The deepest JSON a request may nest (Linode's own bodies and filters go a few levels).
MAX_JSON_DEPTH = 64
# A JSON string, escapes and all: its brackets are not the document's.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[{\]}]")


def _nested_too_deeply(text: str) -> bool:
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return False
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub("", text)):
        depth += 1 if match.group() in "[{" else -1
        if depth > MAX_JSON_DEPTH:
            return True
    return False


def load_json(raw: bytes | str, field: str | None = None) -> Any:
    """A request's JSON (a body, an X-Filter header): 400 Invalid JSON for one that is not
    UTF-8, not JSON, or nested more than MAX_JSON_DEPTH levels deep, which is checked before it
    is parsed (Python's parser recurses: 100,000 levels are a RecursionError)."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise bad_request("Invalid JSON", field) from None
    if _nested_too_deeply(text):
        raise bad_request(f"Invalid JSON: nested more than {MAX_JSON_DEPTH} levels deep", field)
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise bad_request("Invalid JSON", field) from None


def check_label(value: Any, field: str, *, low: int, high: int) -> str:
    if not isinstance(value, str):
        raise bad_request("Label must be a string", field)
    if not low <= len(value) <= high:
        raise bad_request(f"Label must be between {low} and {high} characters", field)
    if not _LABEL.fullmatch(value):
        raise bad_request(
            "Label must begin with a letter and may only contain letters, "
            "numbers, dashes, underscores and periods; it cannot have two "
            "dashes, underscores or periods in a row",
            field,
        )
    return value


class Body:
    """A JSON request body with typed getters that raise the API's 400 on a wrong value."""

    def __init__(
        self,
        raw: Any,
        allowed: frozenset[str] | None = None,
        read_only: frozenset[str] = frozenset(),
    ) -> None:
        """`allowed`: the fields the body may have (others are a 400 "Unknown field");
        `read_only`: fields the spec marks readOnly in the request body, which the API takes
        and leaves alone (the official clients send some: linode_api4 a firewall's
        `status` at create), so they are dropped here."""
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise bad_request("Request body must be a JSON object")
        if read_only:
            raw = {k: v for k, v in raw.items() if k not in read_only}
        self.raw: Mapping[str, Any] = raw
        if allowed is not None:
            unknown = sorted(set(raw) - allowed)
            if unknown:
                raise ApiError(400, tuple(Problem("Unknown field", k) for k in unknown))

    def __contains__(self, key: str) -> bool:
        return key in self.raw

    def _get(
        self, key: str, kinds: tuple[type, ...], what: str, required: bool, default: Any
    ) -> Any:
        if key not in self.raw or self.raw[key] is None:
            if required:
                raise bad_request(f"{key} is required", key)
            return default
        value = self.raw[key]
        if isinstance(value, bool) and bool not in kinds:
            raise bad_request(f"Must be {what}", key)
        if not isinstance(value, kinds):
            raise bad_request(f"Must be {what}", key)
        return value

    def str(self, key: str, *, required: bool = False, default: str | None = None) -> str | None:
        return self._get(key, (str,), "a string", required, default)

    def int(self, key: str, *, required: bool = False, default: int | None = None) -> int | None:
        return self._get(key, (int,), "an integer", required, default)

    def bool(self, key: str, *, default: bool | None = None) -> bool | None:
        return self._get(key, (bool,), "a boolean", False, default)

    def dict(self, key: str, *, required: bool = False) -> dict[str, Any] | None:
        return self._get(key, (dict,), "an object", required, None)

    def strings(self, key: str) -> list[str]:
        value = self._get(key, (list,), "a list of strings", False, [])
        if not all(isinstance(v, str) for v in value):
            raise bad_request("Must be a list of strings", key)
        return list(value)

    def ints(self, key: str) -> list[int]:
        value = self._get(key, (list,), "a list of integers", False, [])
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise bad_request("Must be a list of integers", key)
        return list(value)
