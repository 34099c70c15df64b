"""What the simulator takes from Linode's spec stays in step with the spec, and the docs."""

from __future__ import annotations

import gzip
import json

import pytest

from swarmboot.sim import speccheck
from swarmboot.sim.faults import FaultConfig
from swarmboot.sim.routes import FILTERABLE, ROUTES

from ..conftest import REPO
from .conftest import NEWEST_SPEC, SPEC


def _read(path):
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def spec():
    return _read(SPEC)


@pytest.fixture(scope="module")
def newest():
    return _read(NEWEST_SPEC)


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
        marked = prop.get("x-linode-filterable") is True
        if marked or "__Filterable__" in (prop.get("description") or ""):
            found.add(prefix + name)
        if prop.get("properties"):
            found |= _filterable(spec, prop, prefix + name + ".")
    return found


@pytest.mark.parametrize("collection", sorted(FILTERABLE))
def test_filterable_fields_are_the_specs(spec, newest, collection):
    # 4.189.0's marks where it has the collection, else the newest spec's.
    source = spec if "/{apiVersion}" + collection in spec["paths"] else newest
    operation = source["paths"]["/{apiVersion}" + collection]["get"]
    schema = _resolve(
        source, operation["responses"]["200"]["content"]["application/json"]["schema"]
    )
    parts = [schema, *(_resolve(source, p) for p in schema.get("allOf", []))]
    data = next(p["properties"]["data"] for p in parts if "data" in p.get("properties", {}))
    items = _resolve(source, data)["items"]
    assert FILTERABLE[collection] == frozenset(_filterable(source, items))


def test_every_route_is_in_the_newest_spec_and_the_old_ones_in_both(spec, newest):
    for route in ROUTES:
        path = "/{apiVersion}" + route.template
        assert route.method.lower() in newest["paths"].get(path, {}), route.template
        if route.template.startswith(
            (
                "/linode/instances/{linodeId}/interfaces",
                "/linode/instances/{linodeId}/upgrade-interfaces",
                "/networking/firewalls/templates",
                "/networking/firewalls/settings",
                "/networking/vlans/{regionId}/{label}",
                "/vpcs/default-ranges",
            )
        ) or route.template.endswith(("/vpc-availability", "/ipv6s")):
            continue  # Linode interfaces, firewall templates and settings, VPC availability,
            # deleting a VLAN, VPC default ranges and IPv6 addresses came after 4.189.0
        assert route.method.lower() in spec["paths"].get(path, {}), route.template


def test_the_newest_spec_is_4_229_1_as_linode_cli_keeps_it(newest):
    assert newest["info"]["version"] == "4.229.1"
    assert sum(len(item) for item in newest["paths"].values()) == 463


def test_linode_interface_bodies_are_what_linode_api4_sends(newest):
    from dataclasses import fields

    from linode_api4.objects.linode_interfaces import LinodeInterfaceOptions

    path = newest["paths"]["/{apiVersion}/linode/instances/{linodeId}/interfaces"]
    body = path["post"]["requestBody"]["content"]["application/json"]["schema"]
    # linode_api4 refuses rdma_vpc here itself (only a Linode's create takes it).
    sent = {f.name for f in fields(LinodeInterfaceOptions)} - {"rdma_vpc"}
    assert set(body["properties"]) == sent


def test_the_docs_name_every_correction_difference_and_fault():
    doc = (REPO / "docs" / "simulator.md").read_text()
    for key in [
        *speccheck.SPEC_CORRECTIONS,
        *speccheck.KNOWN_DIFFERENCES,
        *FaultConfig.model_fields,
    ]:
        assert f"`{key}`" in doc, key
