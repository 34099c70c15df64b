"""YAML as Docker reads a Compose file, for reading a user's stack file and writing a manager's.

`docker stack deploy` parses with Go's yaml v3, which resolves plain scalars by YAML 1.2's core
rules, and PyYAML by YAML 1.1's: left alone, `on`/`yes` would be booleans here and strings
there, `8080:80` a base-60 integer (484880) here and a string there, `1e3` a string here and a
float there. So `load` resolves plain scalars as Go does (`true`/`false` in three spellings,
`null` and `~`, integers in decimal, `0x`, `0o`, `0b` and a leading-0 octal, `_` ignored,
floats with or without a dot), except that dates stay strings (Go makes them timestamps,
which Docker then prints as `2024-01-01 00:00:00 +0000 UTC`). A key given twice is an error
(Go's parser says so too; PyYAML keeps the last).

`dump` writes so that both parsers read back what was meant: a string that either would take
for something else (`08`, `0o17`, `1e3`, `yes`, `2024-1-2`) is quoted.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

__all__ = ["dump", "load"]

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"

_WORDS: dict[str, tuple[str, Any]] = {
    **{w: (_BOOL, True) for w in ("true", "True", "TRUE")},
    **{w: (_BOOL, False) for w in ("false", "False", "FALSE")},
    **{w: (_NULL, None) for w in ("", "~", "null", "Null", "NULL")},
    **{w: (_FLOAT, float("nan")) for w in (".nan", ".NaN", ".NAN")},
    **{w: (_FLOAT, float("inf")) for w in (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF")},
    **{w: (_FLOAT, float("-inf")) for w in ("-.inf", "-.Inf", "-.INF")},
    "<<": (_MERGE, "<<"),
}
# Go's strconv.ParseInt(s, 0, 64) on the scalar with its underscores removed.
_GO_INT = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
_GO_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
# Go's strconv.ParseFloat on a scalar starting with ".": `_` only between digits.
_DOT_FLOAT = re.compile(r"\.[0-9](?:_?[0-9])*(?:[eE][-+]?[0-9](?:_?[0-9])*)?")
# What Go's parser might take for a date: quoted on the way out, to be safe.
_DATE_LIKE = re.compile(r"[0-9]{4}-")


def _plain(value: str) -> tuple[str, Any]:
    """The tag and value Go's yaml v3 gives a plain scalar (dates excepted: strings)."""
    if value in _WORDS:
        return _WORDS[value]
    first = value[0]
    if first == ".":
        if _DOT_FLOAT.fullmatch(value):
            return _finite(value.replace("_", ""), value)
    elif first in "+-0123456789" and not _DATE_LIKE.match(value):
        bare = value.replace("_", "")
        if _GO_INT.fullmatch(bare):
            sign, digits = (-1, bare[1:]) if bare[0] == "-" else (1, bare.lstrip("+"))
            if len(digits) > 1 and digits[0] == "0" and digits[1] in "01234567":
                return _INT, sign * int(digits, 8)
            return _INT, sign * int(digits, 0)
        if _GO_FLOAT.fullmatch(bare):
            return _finite(bare, value)
    return _STR, value


def _finite(text: str, value: str) -> tuple[str, Any]:
    """A float, or the string when it is out of range (Go's ParseFloat fails: 1e999)."""
    number = float(text)
    return (_STR, value) if math.isinf(number) else (_FLOAT, number)


class _Loader(yaml.SafeLoader):
    def resolve(self, kind, value, implicit):  # type: ignore[override]
        if kind is yaml.ScalarNode and implicit[0]:
            return _plain(value)[0]
        return super().resolve(kind, value, implicit)

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        if isinstance(node, yaml.MappingNode):
            seen: set[tuple[str, str]] = set()
            for key, _ in node.value:
                if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE:
                    continue
                if (key.tag, key.value) in seen:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping",
                        node.start_mark,
                        f"the key {key.value!r} is given twice",
                        key.start_mark,
                    )
                seen.add((key.tag, key.value))
        return super().construct_mapping(node, deep=deep)


def _scalar(tag: str):
    def construct(loader: _Loader, node: yaml.ScalarNode) -> Any:
        found, value = _plain(node.value)
        if found != tag:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a {tag.rsplit(':', 1)[1]}", node.start_mark
            )
        return value

    return construct


for _tag in (_INT, _FLOAT, _BOOL):
    _Loader.add_constructor(_tag, _scalar(_tag))
# `<<` merges where it is a key; anywhere else it is the string (PyYAML has no constructor).
_Loader.add_constructor(_MERGE, lambda loader, node: node.value)


def load(text: str) -> Any:
    """The one YAML document in `text` (yaml.YAMLError, RecursionError as PyYAML raises)."""
    return yaml.load(text, Loader=_Loader)


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # every value written out where it is used: no anchors in the output

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)  # a list indented under its key


def _represent_str(dumper: _Dumper, data: str) -> yaml.ScalarNode:
    if not data.isprintable():
        # A line break or a tab, written as an escape: Go's parser reads a single-quoted
        # scalar that starts with a line break without it.
        style: str | None = '"'
    elif data and (_plain(data)[0] != _STR or _DATE_LIKE.match(data)):
        style = "'"  # PyYAML quotes what YAML 1.1 would read otherwise; Go's reading too
    else:
        style = None
    return dumper.represent_scalar(_STR, data, style=style)


_Dumper.add_representer(str, _represent_str)


def dump(doc: Any) -> str:
    """`doc` as YAML, keys in their order, long lines kept whole."""
    return yaml.dump(
        doc,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1 << 16,
    )
