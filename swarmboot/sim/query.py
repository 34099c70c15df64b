"""Collections as the Linode API serves them: `X-Filter` filtering and ordering, then paging.

The filter language (from the API's own rules): an object whose keys are filterable fields
(dotted for nested ones, such as ``entity.id``) and whose values are accepted values, combined
with "and"; operators ``+and`` and ``+or`` take lists of such objects; a field's value may be an
object of operators ``+gt``, ``+gte``, ``+lt``, ``+lte``, ``+contains``, ``+neq``; ``+order_by``
names a filterable field and ``+order`` is ``asc`` or ``desc``. A list-valued field (tags)
matches a value it contains. Everything here is pure.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from swarmboot.sim.errors import bad_request
from swarmboot.sim.inputs import load_json

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "MIN_PAGE_SIZE",
    "Query",
    "paginate",
    "parse_filter",
    "parse_paging",
    "run_query",
]

MIN_PAGE_SIZE = 25
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 100

_INTEGER = re.compile(r"-?[0-9]{1,18}")
_COMPARISONS = ("+gt", "+gte", "+lt", "+lte")
_FIELD_OPERATORS = frozenset({*_COMPARISONS, "+contains", "+neq"})

Item = Mapping[str, Any]
Predicate = Callable[[Item], bool]


@dataclass(frozen=True)
class Query:
    """A parsed X-Filter: which items match, and how to order them."""

    predicate: Predicate
    order_by: str | None = None
    descending: bool = False


def _lookup(item: Item, path: str) -> Any:
    value: Any = item
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _same(actual: Any, wanted: Any) -> bool:
    if isinstance(actual, bool) or isinstance(wanted, bool):
        return actual is wanted if isinstance(wanted, bool) else actual == wanted
    if isinstance(actual, int | float) and isinstance(wanted, str):
        try:
            return actual == float(wanted)
        except ValueError:
            return False
    return actual == wanted


def _equals(actual: Any, wanted: Any) -> bool:
    if isinstance(actual, list):
        return any(_same(element, wanted) for element in actual)
    return _same(actual, wanted)


def _compare(actual: Any, operator: str, bound: Any) -> bool:
    if actual is None or isinstance(actual, bool):
        return False
    try:
        if isinstance(actual, int | float):
            bound = float(bound)
        elif not isinstance(bound, str):
            return False
        if operator == "+gt":
            return actual > bound
        if operator == "+gte":
            return actual >= bound
        if operator == "+lt":
            return actual < bound
        return actual <= bound
    except (TypeError, ValueError):
        return False


def _contains(actual: Any, needle: Any) -> bool:
    if isinstance(actual, list):
        return any(_same(element, needle) for element in actual)
    if isinstance(actual, str) and isinstance(needle, str):
        return needle in actual
    return False


def _field_predicate(path: str, spec: Any) -> Predicate:
    if not isinstance(spec, Mapping):
        return lambda item: _equals(_lookup(item, path), spec)
    checks: list[Predicate] = []
    for operator, operand in spec.items():
        if operator not in _FIELD_OPERATORS:
            raise bad_request(f"Invalid operator {operator} for field {path}", "X-Filter")
        if operator in _COMPARISONS:
            if isinstance(operand, bool) or not isinstance(operand, int | float | str):
                raise bad_request(f"{operator} takes a number", "X-Filter")
            checks.append(lambda item, o=operator, b=operand: _compare(_lookup(item, path), o, b))
        elif operator == "+contains":
            if not isinstance(operand, str | int):
                raise bad_request("+contains takes a string", "X-Filter")
            checks.append(lambda item, n=operand: _contains(_lookup(item, path), n))
        else:  # +neq
            checks.append(lambda item, v=operand: not _equals(_lookup(item, path), v))
    if not checks:
        raise bad_request(f"No operator given for field {path}", "X-Filter")
    return lambda item: all(check(item) for check in checks)


def _object_predicate(obj: Any, filterable: frozenset[str], ordering: dict[str, Any]) -> Predicate:
    """The predicate of a filter object; ordering keys met anywhere land in `ordering` (the
    official SDK nests them in "+and")."""
    if not isinstance(obj, Mapping):
        raise bad_request("The filter must be a JSON object", "X-Filter")
    checks: list[Predicate] = []
    for key, value in obj.items():
        if key in ("+and", "+or"):
            if not isinstance(value, list) or not value:
                raise bad_request(f"{key} takes a list of filters", "X-Filter")
            parts = [_object_predicate(v, filterable, ordering) for v in value]
            if key == "+and":
                checks.append(lambda item, ps=parts: all(p(item) for p in ps))
            else:
                checks.append(lambda item, ps=parts: any(p(item) for p in ps))
        elif key in ("+order_by", "+order"):
            ordering[key] = value
        elif key.startswith("+"):
            raise bad_request(f"Invalid operator {key}", "X-Filter")
        else:
            if key not in filterable:
                raise bad_request(f"Cannot filter on {key}", "X-Filter")
            checks.append(_field_predicate(key, value))
    return lambda item: all(check(item) for check in checks)


def parse_filter(header: str | None, filterable: frozenset[str]) -> Query:
    """Parse an X-Filter header against the collection's filterable fields."""
    if header is None or not header.strip():
        return Query(predicate=lambda item: True)
    raw = load_json(header, "X-Filter")  # not too deeply nested for the recursion below
    ordering: dict[str, Any] = {}
    predicate = _object_predicate(raw, filterable, ordering)
    order_by = ordering.get("+order_by")
    order = ordering.get("+order", "asc")
    if "+order" in ordering and order_by is None:
        raise bad_request("+order requires +order_by", "X-Filter")
    if order_by is not None and (not isinstance(order_by, str) or order_by not in filterable):
        raise bad_request(f"Cannot order by {order_by}", "X-Filter")
    if order not in ("asc", "desc"):
        raise bad_request("+order must be either asc or desc", "X-Filter")
    return Query(predicate=predicate, order_by=order_by, descending=order == "desc")


def _sort_key(value: Any) -> tuple:
    # None sorts first; numbers before strings; lists by their text.
    if value is None:
        return (0, 0, "")
    if isinstance(value, bool):
        return (1, int(value), "")
    if isinstance(value, int | float):
        return (1, value, "")
    return (2, 0, json.dumps(value) if not isinstance(value, str) else value)


def run_query(items: Sequence[Item], query: Query) -> list[Item]:
    """The items that match, ordered (a stable sort keeps the collection's own order)."""
    found = [item for item in items if query.predicate(item)]
    if query.order_by is not None:
        # Ties (events of the same second) are broken by id, in the same direction.
        found.sort(
            key=lambda item: (_sort_key(_lookup(item, query.order_by)), _sort_key(item.get("id"))),
            reverse=query.descending,
        )
    return found


def parse_paging(params: Mapping[str, str]) -> tuple[int, int]:
    """`page` (from 1) and `page_size` (25 to 500, default 100) from the query string."""

    def number(name: str, default: int) -> int:
        raw = params.get(name)
        if raw is None or raw == "":
            return default
        # ASCII digits: int() also reads "٣", " 3 " and "3_0".
        if not _INTEGER.fullmatch(raw):
            raise bad_request("Must be an integer", name)
        return int(raw)

    page = number("page", 1)
    page_size = number("page_size", DEFAULT_PAGE_SIZE)
    if page < 1:
        raise bad_request("Must be greater than or equal to 1", "page")
    if not MIN_PAGE_SIZE <= page_size <= MAX_PAGE_SIZE:
        raise bad_request(f"Must be {MIN_PAGE_SIZE}-{MAX_PAGE_SIZE}", "page_size")
    return page, page_size


def paginate(items: Sequence[Item], page: int, page_size: int) -> dict[str, Any]:
    """Linode's envelope: data, page, pages, results. A page past the end is empty."""
    results = len(items)
    pages = max(1, math.ceil(results / page_size))
    start = (page - 1) * page_size
    return {
        "data": list(items[start : start + page_size]),
        "page": page,
        "pages": pages,
        "results": results,
    }
