"""Rebuild an OpenAPI document from the spec that linode-cli was baked from (its `data-3`).

linode-cli's wheel ships `linodecli/data-3`, a pickle of the operations it generated from
Linode's official OpenAPI spec. The spec object itself is pickled without its state (openapi3
1.8.2's `__getstate__` returns `None` under Python >= 3.11, and `raw_element` is not among the
slots it would save), so the document cannot be recovered; what survives is linode-cli's
flattened view of each operation. This script turns that view back into an OpenAPI 3.0.1
document, keeping only what the view holds:

- every path and method linode-cli exposes (those marked `x-linode-cli-skip` are absent),
  with its path parameters (name, type), summary and operationId (the last part of its
  documentation URL, which is how the official spec names it);
- each request body as linode-cli parses it: every property (those marked
  `x-linode-cli-skip` are absent) with its type, item type, format, nullability, read-only
  flag and whether its object requires it; the variants of a `oneOf` body merged into one
  object; nested lists of objects that linode-cli takes as raw JSON left untyped; objects
  closed (`additionalProperties: false`), as the official spec's request bodies are;
- each 200 response as linode-cli displays it: the fields it names, typed where they lie in
  nested objects; a top-level field with a list anywhere below it left untyped (linode-cli
  keeps how many lists lie above a field, not where, and resets the count inside a list's
  items); filterable ones marked `x-linode-filterable`; all nullable and none required
  (linode-cli keeps neither); objects open; paginated envelopes as the spec gives them; a
  nested list (`x-linode-cli-nested-list`) as a list of its items; the body of a response
  shown as rows (`x-linode-cli-rows`) untyped;
- nothing else: no enums, lengths, patterns, ranges, examples, error bodies (a `default`
  error response in the API's documented form is added to every operation), no components.

Run it with linode-cli installed (in a scratch virtual environment):

    python3 -m venv /tmp/specvenv && /tmp/specvenv/bin/pip install linode-cli==5.69.0
    HOME=$(mktemp -d) LINODE_CLI_TOKEN=x /tmp/specvenv/bin/python \
        tests/data/reconstruct_linode_cli_spec.py > linode-openapi-4.229.1-linode-cli.json

(`HOME` and `LINODE_CLI_TOKEN` keep linode-cli from asking for its configuration on import.)
"""

from __future__ import annotations

import json
import os
import pickle
import sys
from typing import Any

ERROR_RESPONSE = {
    "description": "See Errors for the range of possible error response codes.",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "errors": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "field": {"type": "string"},
                                "reason": {"type": "string"},
                            },
                        },
                    }
                },
            }
        }
    },
}

PAGE_PARAMETERS = [
    {
        "name": "page",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "default": 1},
    },
    {
        "name": "page_size",
        "in": "query",
        "schema": {"type": "integer", "minimum": 25, "maximum": 500, "default": 100},
    },
]

API_VERSION = {
    "name": "apiVersion",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "enum": ["v4", "v4beta"]},
}

_SCALARS = {"string", "integer", "number", "boolean"}


def _leaf(datatype: str | None, item_type: str | None, fmt: str | None) -> dict[str, Any]:
    if fmt == "json":
        return {}
    if datatype == "array":
        items: dict[str, Any] = {"type": item_type} if item_type in _SCALARS else {}
        return {"type": "array", "items": items}
    schema: dict[str, Any] = {"type": datatype if datatype in _SCALARS else "string"}
    if datatype == "object":
        schema = {"type": "object"}
    if fmt and fmt not in ("file", "json"):
        schema["format"] = fmt
    return schema


def _object(closed: bool) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": {}}
    if closed:
        schema["additionalProperties"] = False
    return schema


def _child(parent: dict[str, Any], name: str, closed: bool) -> dict[str, Any]:
    props = parent.setdefault("properties", {})
    node = props.get(name)
    if node is None or node.get("type") != "object" or "properties" not in node:
        node = props[name] = _object(closed) | {"nullable": True}
    return node


def _request_schema(request: Any) -> dict[str, Any]:
    root = _object(closed=True)
    args = list(request.attrs)
    for route in (request.attr_routes or {}).values():
        args += route
    lists: dict[str, dict[str, Any]] = {}
    for arg in args:
        if arg.is_parent:
            continue
        node, rest = root, arg.path
        if arg.parent:
            node = lists.setdefault(arg.parent, _object(closed=True))
            rest = arg.path[len(arg.parent) + 1 :]
        *parents, name = rest.split(".")
        for part in parents:
            node = _child(node, part, closed=True)
        schema = _leaf(arg.datatype, arg.item_type, arg.format)
        if arg.nullable:
            schema["nullable"] = True
        if arg.read_only:
            schema["readOnly"] = True
        node["properties"][name] = schema
        if arg.required and name not in node.setdefault("required", []):
            node["required"].append(name)
    for path, items in sorted(lists.items(), key=lambda kv: -kv[0].count(".")):
        node = root
        *parents, name = path.split(".")
        for part in parents:
            node = _child(node, part, closed=True)
        node["properties"][name] = {"type": "array", "items": items, "nullable": True}
    top = request.required or []
    root["required"] = sorted(set(root.get("required", [])) | set(top))
    if not root["required"]:
        del root["required"]
    return root


def _response_item(attrs: list[Any], strip: str = "") -> dict[str, Any]:
    root = _object(closed=False)
    named = [(a.name[len(strip) :] if strip else a.name, a) for a in attrs]
    # A field below a list has a depth above 0, but linode-cli resets the depth for objects
    # inside a list's items: a top-level field with any list below it is left untyped.
    listed = {name.split(".")[0] for name, a in named if a.nested_list_depth > (1 if strip else 0)}
    for name, attr in named:
        *parents, leaf = name.split(".")
        if (parents or [leaf])[0] in listed:
            root["properties"].setdefault((parents or [leaf])[0], {"nullable": True})
            continue
        node = root
        for part in parents:
            node = _child(node, part, closed=False)
        schema = _leaf(attr.datatype, attr.item_type, None)
        schema["nullable"] = True
        if attr.filterable:
            schema["x-linode-filterable"] = True
        node["properties"][leaf] = schema
    return root


def _response_schema(model: Any) -> dict[str, Any]:
    if model is None or model.rows:
        return {"type": "object"}
    if model.nested_list and "," not in model.nested_list:
        key = model.nested_list.strip()
        inner = [a for a in model.attrs if a.name.startswith(key + ".")]
        outer = [a for a in model.attrs if not a.name.startswith(key + ".")]
        schema = _response_item(outer)
        schema["properties"][key] = {
            "type": "array",
            "items": _response_item(inner, strip=key + "."),
        }
        return schema
    item = _response_item(list(model.attrs))
    if not model.is_paginated:
        return item
    return {
        "type": "object",
        "required": ["data", "page", "pages", "results"],
        "properties": {
            "data": {"type": "array", "items": item},
            "page": {"type": "integer"},
            "pages": {"type": "integer"},
            "results": {"type": "integer"},
        },
    }


def reconstruct(ops: dict[str, Any], source: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    seen_ids: set[str] = set()
    for command in sorted(k for k in ops if not k.startswith("_")):
        for action, op in sorted(ops[command].items()):
            item = paths.setdefault(op.url_path, {})
            operation_id = (op.docs_url or "").rstrip("/").rsplit("/", 1)[-1]
            if not operation_id or operation_id in seen_ids:
                operation_id = f"{command}-{action}"
            seen_ids.add(operation_id)
            parameters = [dict(API_VERSION)] + [
                {"name": p.name, "in": "path", "required": True, "schema": {"type": p.type}}
                for p in op.params
            ]
            model = op.response_model
            if op.method == "get" and model is not None and model.is_paginated:
                parameters += PAGE_PARAMETERS
            operation: dict[str, Any] = {
                "operationId": operation_id,
                "summary": op.summary,
                "x-linode-cli-command": command,
                "x-linode-cli-action": action,
                "parameters": parameters,
                "responses": {
                    "200": {
                        "description": "Success.",
                        "content": {"application/json": {"schema": _response_schema(model)}},
                    },
                    "default": ERROR_RESPONSE,
                },
            }
            if op.request is not None and op.method in ("post", "put"):
                operation["requestBody"] = {
                    "required": bool(op.required_fields),
                    "content": {"application/json": {"schema": _request_schema(op.request)}},
                }
            item[op.method] = operation
    return {
        "openapi": "3.0.1",
        "info": {
            "title": "Linode API",
            "version": ops["_spec_version"],
            "description": "Reconstructed from the operations that " + source + " baked from "
            "Linode's official OpenAPI spec; see tests/data/README.md for what it keeps.",
        },
        "servers": [{"url": ops["_base_url"]}],
        "paths": {p: paths[p] for p in sorted(paths)},
    }


def main() -> None:
    import linodecli  # imported for its pickle's classes; needs HOME and LINODE_CLI_TOKEN

    data = os.path.join(os.path.dirname(linodecli.__file__), "data-3")
    with open(data, "rb") as handle:
        ops = pickle.load(handle)
    from importlib.metadata import version

    source = f"linode-cli {version('linode-cli')}"
    json.dump(reconstruct(ops, source), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
