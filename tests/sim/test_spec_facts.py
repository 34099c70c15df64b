"""What the simulator takes from Linode's spec stays in step with the spec, and the docs."""

from __future__ import annotations

import gzip
import json

import pytest

from swarmboot.sim import speccheck
from swarmboot.sim.faults import FaultConfig
from swarmboot.sim.routes import FILTERABLE, ROUTES

from ..conftest import REPO
from .conftest import SPEC


@pytest.fixture(scope="module")
def spec():
    with gzip.open(SPEC, "rt", encoding="utf-8") as handle:
        return json.load(handle)


def _resolve(spec, node):
    return speccheck._resolve(spec, node)


def _filterable(spec, schema, prefix=""):
    schema = _resolve(spec, schema)
    props = {}
    for part in schema.get("allOf", []):
        props.update(_resolve(spec, part).get("properties", {}))
    props.update(schema.get("properties", {}))
    found = set()
    for name, prop in props.items():
        prop = _resolve(spec, prop)
        if "__Filterable__" in (prop.get("description") or ""):
            found.add(prefix + name)
        if prop.get("properties"):
            found |= _filterable(spec, prop, prefix + name + ".")
    return found


@pytest.mark.parametrize("collection", sorted(FILTERABLE))
def test_filterable_fields_are_the_specs(spec, collection):
    operation = spec["paths"]["/{apiVersion}" + collection]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    items = _resolve(spec, _resolve(spec, schema)["properties"]["data"])["items"]
    assert FILTERABLE[collection] == frozenset(_filterable(spec, items))


def test_every_route_is_in_the_spec(spec):
    for route in ROUTES:
        item = spec["paths"].get("/{apiVersion}" + route.template)
        assert item is not None and route.method.lower() in item, route.template


def test_the_docs_name_every_correction_difference_and_fault():
    doc = (REPO / "docs" / "simulator.md").read_text()
    for key in [
        *speccheck.SPEC_CORRECTIONS,
        *speccheck.KNOWN_DIFFERENCES,
        *FaultConfig.model_fields,
    ]:
        assert f"`{key}`" in doc, key
