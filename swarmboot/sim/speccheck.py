"""Check the simulator's traffic against Linode's official OpenAPI spec (needs openapi-core).

Every successful request and every response is validated; each problem becomes one line naming
the request and the field. Two kinds of adjustment are made, each listed here with its reason:

- `SPEC_CORRECTIONS`: places where the spec cannot be taken literally (an operation server that
  repeats the version prefix, closed `allOf` parts that reject every combined body, prose where a
  regular expression belongs, timestamps that are never RFC 3339). They are applied to the spec
  once, at load.
- `KNOWN_DIFFERENCES`: places where the real API and its official clients differ from the spec;
  the simulator follows the real API, and its response is mapped to the spec's spelling first
  or, for what a client sends, the spec's request body is widened at load to take it.
"""

from __future__ import annotations

import copy
import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "KNOWN_DIFFERENCES",
    "SPEC_CORRECTIONS",
    "SpecCheckError",
    "correct_spec",
    "load_spec_check",
]

HOST_URL = "https://api.linode.com"

SPEC_CORRECTIONS = {
    "operation-servers": "Some operations declare the server https://api.linode.com/v4 while "
    "their path already starts with /{apiVersion}; those servers are dropped so the global "
    "server applies.",
    "closed-allof": "Request bodies and answers built with allOf from parts that each forbid "
    "additional properties reject every combined body (e.g. a Linode create with a label, or "
    "a page of VPCs, whose envelope is closed without `data`); the parts are merged into one "
    "schema, closed once.",
    "prose-pattern": "Config root_device has the pattern 'a-z, A-Z, 0-9, /, _, -', prose rather "
    "than a regular expression; it is dropped.",
    "interfaces-min-items": "Config interfaces require at least one item, while linode_api4 "
    "sends [] when saving a config without interfaces; the minimum is dropped.",
    "nullable-allof": "A nullable property whose type comes from a one-part allOf (a "
    "Linode's image) rejects null, since the part does not inherit `nullable`; the part is "
    "merged into the property.",
    "nullable-enum": "Properties marked nullable whose enum lacks null (Linode backups "
    "schedule day and window) reject the null the API returns; null joins the enum.",
    "real-api-nulls": "The real API returns null where the spec forgets `nullable` (linode/"
    "linodego recorded fixtures): a Linode's backups.last_successful, a config's empty device "
    "slots and their disk_id/volume_id, an event's rate and secondary_entity, an IP address's "
    "gateway and rdns, a firewall's outbound rules; and the account settings' "
    "longview_subscription, null for Longview Free as its own description says; a config "
    "interface's ipv4 and ip_ranges (null on a public or VLAN one); an IP address's "
    "vpc_nat_1_1; an IPv6 range's route_target in the `ipv6.global` of a Linode it is "
    "shared with (TestIPv6Range_Share).",
    "firewall-entities": "Firewalls carry `entities` (the attached devices) in the real API "
    "(linode/linodego recorded fixtures); the spec's closed Firewall schema omits it.",
    "firewall-protocols": "Firewall rules take protocol ALL and IP protocol numbers such as "
    '"50" (ESP) in the real API (linode/linodego fixture TestFirewallRules_ExtendedProtocols); '
    "the spec lists only TCP, UDP, ICMP and IPENCAP.",
    "linode-date-time": "Linode's timestamps have no time zone (2018-01-01T00:01:01, UTC); "
    "date-time accepts that form.",
    "x-filter-header": "X-Filter is JSON in a header, which openapi-core cannot deserialise; "
    "the simulator checks it itself against the collection's filterable fields.",
    "newer-spec-fields": "The simulator serves what 4.229.1 adds: a Linode's "
    "`interface_generation` (shown, and taken at create), Linode interfaces in a create's "
    "`interfaces` (`public`, `vpc`, `vlan`, `default_route`, `firewall_id`, no `purpose`), "
    "an IP address's `interface_id`, `reserved` (and a private one's `vpc_nat_1_1`), a "
    "Linode's and a disk's `disk_encryption` and a create's `disk_encryption`, `kernel`, "
    "`boot_size` and `network_helper`, a rebuild's `disk_encryption`, a firewall create's "
    "`devices`, "
    "`config_id` of a subnet's Linode's interfaces and of a VPC address (null for a Linode "
    "interface), a VPC address's `nat_1_1` null without 1:1 NAT (as 4.229.1's Linode "
    "interface has `nat_1_1_address`), the account settings `interfaces_for_new_linodes` "
    "and `maintenance_policy`, "
    "VPCs' `ipv4` and `ipv6` ranges and `vpc_type` (a create's and an update's `ipv4`, a "
    "create's `ipv6` and `vpc_type`), subnets' `ipv6`, `databases`, `nodebalancers` and "
    "`vpc_type` (a create's `ipv6`), a Linode's IPv6 addresses' `vpc`, "
    "and firewall devices of type `linode_interface` with their `parent_entity` (the "
    "Linode; null for a Linode device) and no label. "
    "4.189.0's closed schemas lack them; they are let in there, with 4.229.1's types.",
    "tagged-object-discriminator": "GET /tags/{tagLabel} lists objects as {type, data}; the "
    "spec puts a discriminator on `type` inside `data`, where a Linode's `type` is its plan "
    "(g6-nanode-1), so no answer could pass; and 4.229.1's open alternatives all match "
    "any object, which a oneOf refuses; the reconstruction of 4.229.1 lost the oneOf and "
    "types `data` as a string. The discriminator goes, the oneOf is an anyOf, and a string "
    "`data` is an object.",
    "reconstructed-ip-types": "4.229.1's reconstruction types every field of the IP "
    "addresses under /networking/ips as a string; the real API's (linode/linodego "
    "recordings) and 4.189.0's `linode_id` and `interface_id` are integers, `public` and "
    "`reserved` booleans. Those types are put back.",
    "reconstructed-arrays": "4.229.1's reconstruction types two answers that are plain arrays "
    "(in 4.189.0 and in linode/linodego's recordings) as objects: a config profile's "
    "interfaces, a region's plan availability and a firewall template's inbound and outbound "
    "rules. They are arrays again.",
    "config-interface-bodies": "Config-profile interfaces as the real API serves them (linode/"
    "linodego recorded fixtures): a new one needs a `label` only for a VLAN, where 4.229.1 "
    "requires it always; the interface `order` body lists ids that 4.189.0 marks readOnly. Each is "
    "corrected; 4.189.0's interfaces also take 4.229.1's `ipv6` (null), as served.",
    "missing-error-responses": "A few operations (GET /placement/groups/{groupId}, GET "
    "/linode/instances/{linodeId}/configs, ...) list only their 200 answer, though they too "
    "answer errors (404 for an unknown id); they get the `default` error response every other "
    "operation has.",
}

KNOWN_DIFFERENCES = {
    "stackscript-udf-case": "StackScript UDFs carry lowercase `oneof`/`manyof` in the real "
    "API (linode/linodego recorded fixtures) and linode_api4 reads them so; the spec spells "
    "them `oneOf`/`manyOf`.",
    "region-site-type": "Regions carry `site_type` in the real API and linode_api4's Region "
    "reads it; the spec spells it `site-type`.",
    "placement-compliant-only": "linode_api4 sends `compliant_only` with every placement-group "
    "assign (PlacementGroup.assign) and may in a create's `placement_group` "
    "(InstancePlacementGroupAssignment), and the real API takes it; the spec's closed bodies "
    "omit it. Both bodies are widened to take the boolean.",
    "interface-firewall-id": "A Linode interface shows its `firewall_id` and an update takes "
    "it (Akamai's API changelog, 2026-11-30, newer than 4.229.1: the active firewall of an "
    "interface is viewed and changed by `firewall_id` on list, get and update; changing it "
    "makes no new version). 4.229.1 has it only in a create's body; the update's body is "
    "widened to take it.",
    "firewall-create-status": "linode_api4's own integration suite creates its firewall with "
    "`status: enabled`, and the real API takes it; both specs mark `status` readOnly in the "
    "create's body. The simulator drops the read-only fields of that body; the body is "
    "widened to take `status`.",
    "disk-create-read-only": "linode_api4's disk_create sends `read_only` (false) and may "
    "send `disk_encryption`, and the real API takes them (linode_api4's own suite); neither "
    "spec's disk create body has them. The body is widened to take both.",
    "firewall-history": "A firewall's rule history is a page of its versions ({updated, "
    "status, rules}) and one version its rules, as linode_api4's Firewall.rule_versions and "
    "get_rule_version read them and its own suite asserts against the real API; both specs "
    "describe a whole firewall for each. Both answers are taken as open objects.",
    "tags-label-filter": "Tags are filtered by `label` in the real API, as Linode's own "
    "JavaScript client (@linode/api-v4) asks for them; neither spec marks it filterable. "
    "`routes.EXTRA_FILTERS` adds it.",
    "firewall-rules-partial": "linode-cli's `firewalls rules-update ID --inbound ...` sends "
    "only what changes, and the real API keeps the rest (linode-cli's own suite); the spec "
    "requires both policies. The simulator keeps what is left out; the body's `required` "
    "goes.",
}

# An image's or kernel's id put in the path with its slash (`/linode/kernels/linode/grub2`,
# as linode-cli sends it): the spec's path parameter is one segment, so it is escaped.
_SLASHED_ID = re.compile(r"^(/v4(?:beta)?/(?:images|linode/kernels)/[^/]+)/([^/]+)$")
_LINODE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].split("/")[1:]:
            target = target[part]
        node = target
    return node


def _merge_closed_allof(spec: dict[str, Any], schema: dict[str, Any]) -> None:
    parts = [copy.deepcopy(_resolve(spec, p)) for p in schema.get("allOf", [])]
    if not any(p.get("additionalProperties") is False for p in parts):
        return
    merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
    for part in parts:
        _merge_closed_allof(spec, part)
        merged["properties"].update(part.get("properties", {}))
        merged["required"] += [r for r in part.get("required", []) if r not in merged["required"]]
    merged["additionalProperties"] = False
    if not merged["required"]:
        del merged["required"]
    schema.pop("allOf")
    schema.update(merged)


# Objects, told apart by properties only they have, and which of their properties the real
# API returns as null.
_REAL_NULLS: tuple[tuple[frozenset[str], tuple[str, ...]], ...] = (
    (frozenset({"available", "enabled", "last_successful", "schedule"}), ("last_successful",)),
    (frozenset({"sda", "sdb", "sdh"}), tuple(f"sd{c}" for c in "abcdefgh")),
    (frozenset({"disk_id", "volume_id"}), ("disk_id", "volume_id")),
    (frozenset({"action", "entity", "secondary_entity", "rate"}), ("rate", "secondary_entity")),
    (frozenset({"address", "gateway", "rdns", "subnet_mask"}), ("gateway", "rdns")),
    (
        frozenset({"inbound", "inbound_policy", "outbound", "outbound_policy"}),
        ("inbound", "outbound"),
    ),
    (frozenset({"longview_subscription", "managed", "network_helper"}), ("longview_subscription",)),
    (frozenset({"purpose", "ipam_address", "ipv4", "ip_ranges"}), ("ipv4", "ip_ranges")),
    (frozenset({"address", "gateway", "rdns", "subnet_mask", "vpc_nat_1_1"}), ("vpc_nat_1_1",)),
    (frozenset({"prefix", "range", "region", "route_target"}), ("route_target",)),
)


_LINODE_INTERFACE_PARTS = {
    "firewall_id": {"type": "integer", "nullable": True},
    "default_route": {"type": "object", "nullable": True},
    "public": {"type": "object", "nullable": True},
    "vpc": {"type": "object", "nullable": True},
    "vlan": {"type": "object", "nullable": True},
}


def _newer_fields(spec: dict[str, Any], node: dict[str, Any], props: dict[str, Any]) -> None:
    """`newer-spec-fields`: what 4.229.1 adds to objects 4.189.0 closes."""
    names = set(props)
    if {"hypervisor", "host_uuid", "watchdog_enabled"} <= names or {
        "region",
        "type",
        "stackscript_id",
        "booted",
    } <= names:
        props.setdefault(
            "interface_generation", {"type": "string", "enum": ["legacy_config", "linode"]}
        )
        props.setdefault("disk_encryption", {"type": "string", "enum": ["enabled", "disabled"]})
    if {"region", "type", "stackscript_id", "booted"} <= names:  # a create's body
        props.setdefault("kernel", {"type": "string"})
        props.setdefault("boot_size", {"type": "integer"})
        props.setdefault("network_helper", {"type": "boolean"})
    if {"image", "root_pass", "booted", "stackscript_id"} <= names and "region" not in names:
        props.setdefault("disk_encryption", {"type": "string"})  # a rebuild's body
    if names >= {"filesystem", "size", "status"} and "id" in names:  # a disk
        props.setdefault("disk_encryption", {"type": "string", "enum": ["enabled", "disabled"]})
    if {"address", "gateway", "rdns", "subnet_mask", "linode_id"} <= names:  # an IP address
        props.setdefault("interface_id", {"type": "integer", "nullable": True})
        props.setdefault("reserved", {"type": "boolean"})
        props.setdefault("vpc_nat_1_1", {"type": "object", "nullable": True})
    if {"purpose", "ipam_address", "ipv4"} <= names and "id" in names:  # a config interface
        props.setdefault("ipv6", {"type": "object", "nullable": True})
    if {"purpose", "ipam_address"} <= names and "public" not in names:
        props.update(copy.deepcopy(_LINODE_INTERFACE_PARTS))
        if "required" in node:
            node["required"] = [r for r in node["required"] if r != "purpose"] or None
            if node["required"] is None:
                del node["required"]
    if names == {"active", "id"}:
        props["config_id"] = {"type": "integer", "nullable": True}
    if {"backups_enabled", "managed", "network_helper", "object_storage"} <= names:
        props.setdefault("interfaces_for_new_linodes", {"type": "string", "nullable": True})
        props.setdefault("maintenance_policy", {"type": "string"})
    if names == {"id", "label", "type", "url"}:  # a firewall device's entity (and an event's)
        props["parent_entity"] = {"type": "object", "nullable": True}
        _nullable(spec, props, "label")
        kind = props["type"] = copy.deepcopy(_resolve(spec, props["type"]))
        if "linode" in kind.get("enum", ()) and "linode_interface" not in kind["enum"]:
            kind["enum"] = [*kind["enum"], "linode_interface"]
    if {"label", "region", "subnets", "description"} <= names:  # a VPC (and its create)
        props.setdefault("ipv4", {"type": "array", "nullable": True, "items": {"type": "object"}})
        props.setdefault("ipv6", {"type": "array", "nullable": True, "items": {"type": "object"}})
        props.setdefault("vpc_type", {"type": "string", "enum": ["regular", "rdma"]})
    if {"label", "description"} <= names and "region" not in names and "id" not in names:
        props.setdefault("ipv4", {"type": "array", "nullable": True, "items": {"type": "object"}})
    if {"label", "ipv4"} <= names and "purpose" not in names and "region" not in names:
        # a VPC subnet (and its create)
        props.setdefault("ipv6", {"type": "array", "nullable": True, "items": {"type": "object"}})
        for name in ("databases", "nodebalancers"):
            props.setdefault(name, {"type": "array", "readOnly": True})
        props.setdefault("vpc_type", {"type": "string", "readOnly": True})
    if {"slaac", "link_local", "global"} <= names:  # a Linode's IPv6 addresses
        props.setdefault("vpc", {"type": "array", "items": {"type": "object"}})
    if {"address", "vpc_id", "subnet_id", "linode_id", "config_id", "nat_1_1"} <= names:
        for name in ("config_id", "nat_1_1"):
            _nullable(spec, props, name)


def _nullable(spec: dict[str, Any], props: dict[str, Any], name: str) -> None:
    prop = props[name]
    if "$ref" in prop:  # a shared schema: change a copy of it, here only
        prop = props[name] = copy.deepcopy(_resolve(spec, prop))
    prop["nullable"] = True
    if "enum" in prop and None not in prop["enum"]:
        prop["enum"] = [*prop["enum"], None]
    props[name] = prop


def _correct_schemas(spec: dict[str, Any]) -> None:
    for node in list(_walk(spec)):
        if node.get("nullable") is True and len(node.get("allOf", ())) == 1:
            part = _resolve(spec, node.pop("allOf")[0])
            for key, value in part.items():
                node.setdefault(key, copy.deepcopy(value))
        if node.get("nullable") is True and "enum" in node and None not in node["enum"]:
            node["enum"] = [*node["enum"], None]
        if node.get("pattern") == "a-z, A-Z, 0-9, /, _, -":
            del node["pattern"]
        props = node.get("properties")
        if not isinstance(props, dict):
            continue
        _newer_fields(spec, node, props)
        for signature, names in _REAL_NULLS:
            if signature <= set(props):
                for name in names:
                    if name in props:
                        _nullable(spec, props, name)
        if {"label", "rules", "status", "tags"} <= set(props) and "entities" not in props:
            props["entities"] = {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "id": {"type": "integer"},
                        "label": {"type": "string"},
                        "type": {"type": "string"},
                        "url": {"type": "string"},
                    },
                },
            }
        if {"action", "protocol", "addresses", "ports"} <= set(props):
            protocol = copy.deepcopy(_resolve(spec, props["protocol"]))
            protocol.pop("enum", None)
            protocol["pattern"] = r"^(TCP|UDP|ICMP|IPENCAP|ALL|[0-9]{1,3})$"
            props["protocol"] = protocol
        if "interfaces" in props and "kernel" in props:
            interfaces = _resolve(spec, props["interfaces"])
            if "minItems" in interfaces:
                props["interfaces"] = {k: v for k, v in interfaces.items() if k != "minItems"}


def _take_compliant_only(spec: dict[str, Any]) -> None:
    """`placement-compliant-only`: the bodies linode_api4 sends it in take `compliant_only`."""
    flag = {"type": "boolean"}
    assign = spec["paths"].get("/{apiVersion}/placement/groups/{groupId}/assign", {})
    media = assign.get("post", {}).get("requestBody", {}).get("content", {})
    targets = [m["schema"] for m in media.values() if isinstance(m.get("schema"), dict)]
    create = spec["paths"].get("/{apiVersion}/linode/instances", {}).get("post", {})
    for media in create.get("requestBody", {}).get("content", {}).values():
        props = media.get("schema", {}).get("properties", {})
        if "placement_group" in props:
            props["placement_group"] = copy.deepcopy(_resolve(spec, props["placement_group"]))
            targets.append(props["placement_group"])
    for schema in targets:
        schema.setdefault("properties", {})["compliant_only"] = flag


def _take_interface_firewall(spec: dict[str, Any]) -> None:
    """`interface-firewall-id`: a Linode interface's update takes `firewall_id`."""
    path = "/{apiVersion}/linode/instances/{linodeId}/interfaces/{interfaceId}"
    update = spec["paths"].get(path, {}).get("put", {})
    for media in update.get("requestBody", {}).get("content", {}).values():
        props = media.get("schema", {}).get("properties")
        if isinstance(props, dict):
            props.setdefault("firewall_id", {"type": "integer", "nullable": True})


def _request_schemas(spec: dict[str, Any], path: str, method: str) -> list[dict[str, Any]]:
    operation = spec["paths"].get("/{apiVersion}" + path, {}).get(method, {})
    media = operation.get("requestBody", {}).get("content", {}).values()
    return [m["schema"] for m in media if isinstance(m.get("schema"), dict)]


def _take_client_bodies(spec: dict[str, Any]) -> None:
    """`firewall-create-status`, `firewall-rules-partial` and `disk-create-read-only`: what
    the official clients send and the real API takes."""
    ids = {"type": "array", "items": {"type": "integer"}, "nullable": True}
    devices = {
        "type": "object",
        "nullable": True,
        "properties": {k: ids for k in ("linodes", "nodebalancers", "linode_interfaces")},
    }
    for schema in _request_schemas(spec, "/networking/firewalls", "post"):
        props = schema.get("properties", {})
        props.setdefault("devices", devices)  # `newer-spec-fields`: 4.229.1's create
        if "status" in props:
            props["status"] = {
                k: v for k, v in _resolve(spec, props["status"]).items() if k != "readOnly"
            }
    for schema in _request_schemas(spec, "/networking/firewalls/{firewallId}/rules", "put"):
        schema.pop("required", None)
    for schema in _request_schemas(spec, "/linode/instances/{linodeId}/disks", "post"):
        props = schema.setdefault("properties", {})
        props.setdefault("read_only", {"type": "boolean"})
        props.setdefault("disk_encryption", {"type": "string"})


def _correct_config_interfaces(spec: dict[str, Any]) -> None:
    """`config-interface-bodies`."""
    path = "/linode/instances/{linodeId}/configs/{configId}/interfaces"
    for slug in ("/networking/firewalls/templates", "/networking/firewalls/templates/{slug}"):
        operation = spec["paths"].get("/{apiVersion}" + slug, {}).get("get", {})
        for node in list(_walk(operation.get("responses", {}))):
            props = node.get("properties", {})
            if {"inbound", "outbound", "inbound_policy"} <= set(props):
                for direction in ("inbound", "outbound"):
                    if props[direction].get("type") == "object":
                        props[direction] = {"type": "array", "items": {"type": "object"}}
    for listed in (path, "/regions/{regionId}/availability"):  # `reconstructed-arrays`
        listing = spec["paths"].get("/{apiVersion}" + listed, {}).get("get", {})
        for media in listing.get("responses", {}).get("200", {}).get("content", {}).values():
            schema = _resolve(spec, media.get("schema", {}))
            if schema.get("type") == "object" and "data" not in schema.get("properties", {}):
                media["schema"] = {"type": "array", "items": copy.deepcopy(schema)}
    for schema in _request_schemas(spec, path, "post"):
        if "required" in schema:
            schema["required"] = [r for r in schema["required"] if r != "label"]
    for schema in _request_schemas(spec, path + "/order", "post"):
        ids = schema.get("properties", {}).get("ids")
        if isinstance(ids, dict):
            items = copy.deepcopy(_resolve(spec, ids.get("items", {})))
            items.pop("readOnly", None)
            schema["properties"]["ids"] = {**ids, "items": items}


def _correct_ip_types(spec: dict[str, Any]) -> None:
    """`reconstructed-ip-types`."""
    kinds = {"linode_id": "integer", "interface_id": "integer", "public": "boolean"}
    kinds["reserved"] = "boolean"
    for path, item in spec["paths"].items():
        if not path.startswith("/{apiVersion}/networking/ips"):
            continue
        for node in list(_walk(item)):
            props = node.get("properties", {})
            if {"linode_id", "reserved"} <= set(props):
                for name, kind in kinds.items():
                    if name in props and props[name].get("type") == "string":
                        props[name] = {**props[name], "type": kind}


def _open_firewall_history(spec: dict[str, Any]) -> None:
    """`firewall-history`."""
    for path in ("/history", "/history/rules/{version}"):
        item = spec["paths"].get("/{apiVersion}/networking/firewalls/{firewallId}" + path, {})
        ok = item.get("get", {}).get("responses", {}).get("200", {})
        for media in _resolve(spec, ok).get("content", {}).values():
            media["schema"] = {"type": "object"}


def _drop_tagged_discriminator(spec: dict[str, Any]) -> None:
    """`tagged-object-discriminator`."""
    operation = spec["paths"].get("/{apiVersion}/tags/{tagLabel}", {}).get("get", {})
    for response in operation.get("responses", {}).values():
        for node in list(_walk(_resolve(spec, response))):
            node.pop("discriminator", None)
            if "oneOf" in node:
                node["anyOf"] = node.pop("oneOf")
            props = node.get("properties", {})
            if set(props) == {"data", "type"} and props["data"].get("type") == "string":
                props["data"] = {"type": "object"}


def correct_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Apply `SPEC_CORRECTIONS` (all but the two that live in the checker) to a spec copy,
    and widen the request bodies of `KNOWN_DIFFERENCES` to what clients send."""
    spec = copy.deepcopy(spec)
    operations = [
        operation
        for item in spec["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "responses" in operation
    ]
    errors = next(o["responses"]["default"] for o in operations if "default" in o["responses"])
    for operation in operations:
        operation["responses"].setdefault("default", copy.deepcopy(errors))
        operation.pop("servers", None)
        bodies = [operation.get("requestBody", {})] + [
            _resolve(spec, r) for r in operation["responses"].values()
        ]
        for body in bodies:
            for media in body.get("content", {}).values():
                schema = media.get("schema")
                if isinstance(schema, dict):
                    if "$ref" in schema:
                        media["schema"] = schema = copy.deepcopy(_resolve(spec, schema))
                    _merge_closed_allof(spec, schema)
    _take_compliant_only(spec)
    _take_interface_firewall(spec)
    _take_client_bodies(spec)
    _drop_tagged_discriminator(spec)
    _open_firewall_history(spec)
    _correct_config_interfaces(spec)
    _correct_ip_types(spec)
    _correct_schemas(spec)
    # Corrections copy the schemas they change; a second pass reaches inside the copies.
    _correct_schemas(spec)
    return spec


def _to_spec_spelling(path: str, answer: Any) -> Any:
    if not isinstance(answer, dict):
        return answer
    answer = copy.deepcopy(answer)
    items = answer["data"] if isinstance(answer.get("data"), list) else [answer]
    for item in items:
        if not isinstance(item, dict):
            continue
        for udf in item.get("user_defined_fields") or []:
            for lower, spec in (("oneof", "oneOf"), ("manyof", "manyOf")):
                if lower in udf:
                    udf[spec] = udf.pop(lower)
        if "/regions" in path and "site_type" in item:
            item["site-type"] = item.pop("site_type")
    return answer


def _leaves(error: Any) -> Iterator[Any]:
    context = getattr(error, "context", None)
    if context:
        for sub in context:
            yield from _leaves(sub)
    else:
        yield error


def _describe(error: Exception) -> str:
    schema_errors = (
        getattr(error, "schema_errors", None)
        or getattr(error.__cause__, "schema_errors", None)
        or []
    )
    details = []
    for top in schema_errors:
        for leaf in _leaves(top):
            where = "/".join(str(p) for p in getattr(leaf, "absolute_path", [])) or "<root>"
            line = f"{where}: {getattr(leaf, 'message', leaf)}"
            if line not in details:
                details.append(line[:300])
    if details:
        return "; ".join(details[:8])
    return f"{type(error).__name__}: {str(error)[:300]}"


class SpecCheckError(Exception):
    """The OpenAPI spec cannot be loaded: the message names the file and what is wrong."""


def _read_spec(spec_path: Path) -> dict[str, Any]:
    opener = gzip.open if spec_path.suffix == ".gz" else open
    try:
        with opener(spec_path, "rt", encoding="utf-8") as handle:
            raw = json.load(handle)
    except UnicodeDecodeError as exc:
        raise SpecCheckError(f"{spec_path}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:  # its message names where, not what is there
        raise SpecCheckError(f"{spec_path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    except (OSError, EOFError) as exc:  # unreadable, or not gzip after all
        raise SpecCheckError(f"{spec_path}: {exc.strerror or exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("paths"), dict):
        raise SpecCheckError(f"{spec_path}: not an OpenAPI spec (no paths)")
    return raw


def _load_one(spec_path: Path):
    """The check against one spec: it answers whether the spec has the operation, and the
    problems it finds."""
    try:
        from openapi_core import Config, OpenAPI
        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import Headers, ImmutableMultiDict
    except ImportError:
        raise SpecCheckError("checking against the OpenAPI spec needs openapi-core") from None

    raw = _read_spec(spec_path)
    version = str(raw.get("info", {}).get("version", spec_path.name))
    config = Config(
        extra_format_validators={
            "date-time": lambda value: not isinstance(value, str) or bool(_LINODE_TIME.match(value))
        }
    )
    try:
        api = OpenAPI.from_dict(correct_spec(raw), config=config)
    except Exception as exc:  # openapi-core's and the corrections' errors alike
        raise SpecCheckError(
            f"{spec_path}: not an OpenAPI spec openapi-core takes ({type(exc).__name__})"
        ) from None

    class _Request:
        host_url = HOST_URL
        content_type = "application/json"

        def __init__(
            self, method: str, path: str, params: dict[str, str], headers: dict[str, str], body: Any
        ) -> None:
            self.method = method.lower()
            self.path = path
            checked = {k: v for k, v in headers.items() if k.lower() != "x-filter"}
            self.parameters = RequestParameters(
                query=ImmutableMultiDict(params), header=Headers(checked), cookie={}, path={}
            )
            self.body = json.dumps(body).encode() if body is not None else None

    class _Response:
        content_type = "application/json"

        def __init__(self, status: int, headers: dict[str, str], answer: Any) -> None:
            self.status_code = status
            self.headers = Headers(headers)
            self.data = json.dumps(answer).encode()

    def check(
        method: str,
        path: str,
        params: dict[str, str],
        headers: dict[str, str],
        body: Any,
        status: int,
        response_headers: dict[str, str],
        answer: Any,
    ) -> tuple[bool, list[str]]:
        request = _Request(method, _SLASHED_ID.sub(r"\1%2F\2", path), params, headers, body)
        problems = []
        response = _Response(status, response_headers, _to_spec_spelling(path, answer))
        for error in api.iter_response_errors(request, response):
            if type(error).__name__ in ("PathNotFound", "OperationNotFound"):
                return False, []
            problems.append(f"response {status} to {method} {path}: {_describe(error)}")
        if 200 <= status < 300:
            problems[:0] = [
                f"request {method} {path}: {_describe(e)}" for e in api.iter_request_errors(request)
            ]
        return True, problems

    check.version = version  # type: ignore[attr-defined]
    # Its paths without arguments: a newer spec's `/networking/firewalls/templates` is not
    # this spec's firewall "templates" (`/networking/firewalls/{firewallId}`).
    check.literal_paths = frozenset(  # type: ignore[attr-defined]
        p.removeprefix("/{apiVersion}")
        for p in raw["paths"]
        if "{" not in p.removeprefix("/{apiVersion}")
    )
    return check


def load_spec_check(*spec_paths: Path):
    """The check of traffic against the OpenAPI specs at `spec_paths` (JSON, or gzipped
    JSON): each exchange is checked against every spec that has its operation, each problem
    named with the spec's version when there are several; an answer to an operation that no
    spec has is a problem, unless it is a 404 or 405. SpecCheckError for a file that is not
    a spec, or without openapi-core installed."""
    if not spec_paths:
        raise SpecCheckError("no OpenAPI spec given")
    checks = [_load_one(Path(p)) for p in spec_paths]
    tagged = len(checks) > 1
    literals = frozenset().union(*(one.literal_paths for one in checks))

    def check(
        method: str,
        path: str,
        params: dict[str, str],
        headers: dict[str, str],
        body: Any,
        status: int,
        response_headers: dict[str, str],
        answer: Any,
    ) -> list[str]:
        problems: list[str] = []
        known = False
        bare = re.sub(r"^/v4(beta)?", "", path)
        for one in checks:
            if bare in literals and bare not in one.literal_paths:
                continue  # a path of a newer spec, not an argument of this one's
            has, found = one(method, path, params, headers, body, status, response_headers, answer)
            known = known or has
            problems += [f"[{one.version}] {p}" if tagged else p for p in found]
        if not known and status not in (404, 405):
            problems.append(f"response {status} to {method} {path}: no spec has this operation")
        return problems

    check.versions = tuple(one.version for one in checks)  # type: ignore[attr-defined]
    return check
