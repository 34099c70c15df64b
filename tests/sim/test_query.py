"""Filtering, ordering and paging, as properties over generated collections."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarmboot.sim.errors import ApiError
from swarmboot.sim.query import paginate, parse_filter, parse_paging, run_query

FILTERABLE = frozenset({"label", "region", "size", "tags", "entity.id"})

labels = st.text(alphabet="abcxyz-", min_size=1, max_size=6)
items = st.lists(
    st.fixed_dictionaries(
        {
            "label": labels,
            "region": st.sampled_from(["eu-central", "gb-lon", "us-east"]),
            "size": st.integers(0, 100),
            "tags": st.lists(st.sampled_from(["a", "b", "swarmboot:x"]), max_size=3, unique=True),
            "entity": st.fixed_dictionaries({"id": st.integers(1, 5)}),
        }
    ),
    max_size=40,
)


def query(rows, header):
    return run_query(rows, parse_filter(json.dumps(header), FILTERABLE))


@given(rows=items, size=st.integers(25, 500))
def test_pages_cover_the_collection_once_in_order(rows, size):
    first = paginate(rows, 1, size)
    assert first["results"] == len(rows)
    assert first["pages"] == max(1, math.ceil(len(rows) / size))
    collected = []
    for page in range(1, first["pages"] + 1):
        got = paginate(rows, page, size)
        assert (got["page"], got["pages"], got["results"]) == (page, first["pages"], len(rows))
        collected += got["data"]
    assert collected == rows
    assert paginate(rows, first["pages"] + 1, size)["data"] == []


@given(rows=items, region=st.sampled_from(["eu-central", "gb-lon"]), tag=st.sampled_from("ab"))
def test_equality_and_membership(rows, region, tag):
    assert query(rows, {"region": region}) == [r for r in rows if r["region"] == region]
    assert query(rows, {"tags": tag}) == [r for r in rows if tag in r["tags"]]
    assert query(rows, {"region": region, "tags": tag}) == [
        r for r in rows if r["region"] == region and tag in r["tags"]
    ]
    assert query(rows, {"entity.id": 3}) == [r for r in rows if r["entity"]["id"] == 3]


@given(rows=items, a=st.integers(0, 100), b=st.integers(0, 100))
def test_and_or_and_comparisons(rows, a, b):
    low = {"size": {"+gte": a}}
    high = {"size": {"+lt": b}}
    assert query(rows, {"+and": [low, high]}) == [r for r in rows if a <= r["size"] < b]
    assert query(rows, {"+or": [low, high]}) == [r for r in rows if r["size"] >= a or r["size"] < b]
    assert query(rows, {"size": {"+gt": a, "+lte": b}}) == [r for r in rows if a < r["size"] <= b]


@given(rows=items, needle=st.sampled_from(["a", "x", "-"]))
def test_contains_and_neq(rows, needle):
    assert query(rows, {"label": {"+contains": needle}}) == [
        r for r in rows if needle in r["label"]
    ]
    assert query(rows, {"tags": {"+contains": "swarmboot:x"}}) == [
        r for r in rows if "swarmboot:x" in r["tags"]
    ]
    assert query(rows, {"region": {"+neq": "gb-lon"}}) == [
        r for r in rows if r["region"] != "gb-lon"
    ]


@given(rows=items, descending=st.booleans())
def test_order_by(rows, descending):
    header = {"+order_by": "size", "+order": "desc" if descending else "asc"}
    expected = sorted(rows, key=lambda r: r["size"], reverse=descending)
    assert [r["size"] for r in query(rows, header)] == [r["size"] for r in expected]
    # linode_api4 nests the ordering in "+and" with the conditions.
    nested = {"+and": [{"region": "gb-lon"}, header]}
    assert [r["size"] for r in query(rows, nested)] == [
        r["size"] for r in expected if r["region"] == "gb-lon"
    ]


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("{not json", "Invalid JSON"),
        ('["label"]', "The filter must be a JSON object"),
        ('{"status": "running"}', "Cannot filter on status"),
        ('{"label": {"+like": "x"}}', "Invalid operator +like for field label"),
        ('{"+xor": []}', "Invalid operator +xor"),
        ('{"+or": {}}', "+or takes a list of filters"),
        ('{"+order": "asc"}', "+order requires +order_by"),
        ('{"+order_by": "status"}', "Cannot order by status"),
        ('{"+order_by": "size", "+order": "up"}', "+order must be either asc or desc"),
        ('{"size": {"+gt": [1]}}', "+gt takes a number"),
    ],
)
def test_bad_filters_are_400_on_x_filter(header, reason):
    with pytest.raises(ApiError) as info:
        parse_filter(header, FILTERABLE)
    assert info.value.status == 400
    (problem,) = info.value.problems
    assert problem.field == "X-Filter" and problem.reason.startswith(reason)


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"page": "0"}, "page", "Must be greater than or equal to 1"),
        ({"page": "x"}, "page", "Must be an integer"),
        ({"page_size": "24"}, "page_size", "Must be 25-500"),
        ({"page_size": "501"}, "page_size", "Must be 25-500"),
    ],
)
def test_bad_paging_is_400(params, field, reason):
    with pytest.raises(ApiError) as info:
        parse_paging(params)
    (problem,) = info.value.problems
    assert (problem.field, problem.reason) == (field, reason)


def test_paging_defaults():
    assert parse_paging({}) == (1, 100)
    assert parse_paging({"page": "3", "page_size": "25"}) == (3, 25)
