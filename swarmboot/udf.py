"""Read the UDF header of a StackScript the way Linode does, and check data meant for it.

A StackScript declares its user-defined fields in comment lines such as::

    # <UDF name="zone" label="Zone label" default="eu-central" example="gb-lon" />
    # <UDF name="role" label="Swarm role" oneof="manager,worker,lb" default="worker" />

Linode passes each field to the script as an environment variable of the same name, takes
`stackscript_data` as a ``{name: "string"}`` object of at most 65,535 characters, treats a field
without a default as required and masks fields whose name contains "password".
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from swarmboot.errors import UdfError
from swarmboot.files import FileTooLarge, NotAFile, read_capped

__all__ = [
    "MAX_DATA_CHARS",
    "MAX_SCRIPT_BYTES",
    "Udf",
    "check_data",
    "parse_udfs",
    "read_script",
    "validate_data",
]

MAX_DATA_CHARS = 65_535
MAX_SCRIPT_BYTES = 1024 * 1024  # the largest StackScript file read (a real one is a few KiB)

_ATTRIBUTES = frozenset({"name", "label", "default", "example", "oneof", "manyof"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TAG_START = re.compile(r"<\s*UDF\b", re.IGNORECASE)
_TAG = re.compile(r"<\s*UDF\b(?P<body>.*?)/\s*>", re.IGNORECASE)
_ATTR = re.compile(r'\s*(?P<key>[A-Za-z_][A-Za-z0-9_-]*)\s*=\s*"(?P<value>[^"]*)"')
# Variables the script's environment already relies on; a field of that name would clobber them.
_RESERVED = frozenset(
    {
        "PATH",
        "HOME",
        "IFS",
        "SHELL",
        "USER",
        "TERM",
        "PWD",
        "HOSTNAME",
        "LANG",
        "LC_ALL",
        "LINODE_ID",
        "LINODE_LISHUSERNAME",
        "LINODE_RAM",
        "LINODE_DATACENTERID",
    }
)


@dataclass(frozen=True)
class Udf:
    """One user-defined field of a StackScript."""

    name: str
    label: str
    default: str | None = None
    example: str | None = None
    oneof: tuple[str, ...] = ()
    manyof: tuple[str, ...] = ()
    line: int = 0

    @property
    def required(self) -> bool:
        """Linode requires a value for a field that has no default."""
        return self.default is None

    @property
    def masked(self) -> bool:
        """Linode shows fields whose name contains "password" as masked inputs."""
        return "password" in self.name.lower()

    def to_api(self) -> dict[str, str]:
        """The field as the Linode API lists it in `user_defined_fields` (where the spec
        requires an example, empty when the script gives none)."""
        out = {"name": self.name, "label": self.label, "example": self.example or ""}
        if self.default is not None:
            out["default"] = self.default
        if self.oneof:
            out["oneof"] = ",".join(self.oneof)
        if self.manyof:
            out["manyof"] = ",".join(self.manyof)
        return out


def read_script(path: Path) -> str:
    """A StackScript file's text; UdfError for one that is not UTF-8 text, is larger than
    MAX_SCRIPT_BYTES or is not a file (a pipe is read)."""
    try:
        raw = read_capped(path, MAX_SCRIPT_BYTES, regular_only=False)
    except NotAFile as exc:
        raise UdfError(f"it is {exc.kind}; give a StackScript file", source=str(path)) from None
    except FileTooLarge:
        raise UdfError(
            "larger than 1 MiB, which no StackScript is; give a StackScript file", source=str(path)
        ) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UdfError(
            f"not UTF-8 text (byte {exc.start}); Linode takes a StackScript as UTF-8 text",
            source=str(path),
        ) from None


def parse_udfs(script: str, source: str = "<script>") -> tuple[Udf, ...]:
    """Return the UDFs declared in `script`, in order; raise `UdfError` naming the line."""
    udfs: list[Udf] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(script.splitlines(), start=1):
        if not _TAG_START.search(line):
            continue
        if not line.lstrip().startswith("#"):
            raise UdfError(
                "UDF tag outside a comment line",
                source=source,
                line=number,
                hint='write it as  # <UDF name="..." label="..." />',
            )
        matches = list(_TAG.finditer(line))
        if not matches:
            raise UdfError(
                "UDF tag is not closed with '/>' on the same line", source=source, line=number
            )
        for match in matches:
            udf = _parse_tag(match.group("body"), source, number)
            if udf.name in seen:
                raise UdfError(
                    f"UDF {udf.name!r} is declared twice (first on line {seen[udf.name]})",
                    source=source,
                    line=number,
                )
            seen[udf.name] = number
            udfs.append(udf)
    return tuple(udfs)


def _parse_tag(body: str, source: str, line: int) -> Udf:
    attrs: dict[str, str] = {}
    pos = 0
    while pos < len(body):
        match = _ATTR.match(body, pos)
        if match is None:
            rest = body[pos:].strip()
            if not rest:
                break
            raise UdfError(
                f"cannot read UDF attribute at {rest[:30]!r}",
                source=source,
                line=line,
                hint='attributes look like name="value" in double quotes',
            )
        key = match.group("key").lower()
        if key not in _ATTRIBUTES:
            raise UdfError(
                f"unknown UDF attribute {match.group('key')!r}",
                source=source,
                line=line,
                hint="use name, label, default, example, oneof or manyof",
            )
        if key in attrs:
            raise UdfError(f"UDF attribute {key!r} given twice", source=source, line=line)
        attrs[key] = match.group("value")
        pos = match.end()

    name = attrs.get("name")
    if not name:
        raise UdfError("UDF tag has no name", source=source, line=line)
    if not _NAME.fullmatch(name):
        raise UdfError(
            f"UDF name {name!r} is not a valid variable name",
            source=source,
            line=line,
            hint="use letters, digits and underscores, not starting with a digit",
        )
    if name in _RESERVED:
        raise UdfError(
            f"UDF name {name!r} would overwrite the script's environment",
            source=source,
            line=line,
            hint="choose another name",
        )
    label = attrs.get("label", "").strip()
    if not label:
        raise UdfError(f"UDF {name!r} has no label", source=source, line=line)
    if "oneof" in attrs and "manyof" in attrs:
        raise UdfError(f"UDF {name!r} has both oneof and manyof", source=source, line=line)
    oneof = _options(attrs.get("oneof"), name, "oneof", source, line)
    manyof = _options(attrs.get("manyof"), name, "manyof", source, line)
    default = attrs.get("default")
    udf = Udf(
        name=name,
        label=label,
        default=default,
        example=attrs.get("example"),
        oneof=oneof,
        manyof=manyof,
        line=line,
    )
    if default is not None:
        problem = _value_problem(udf, default)
        if problem:
            raise UdfError(f"default of UDF {name!r}: {problem}", source=source, line=line)
    return udf


def _options(raw: str | None, name: str, key: str, source: str, line: int) -> tuple[str, ...]:
    if raw is None:
        return ()
    options = tuple(part.strip() for part in raw.split(","))
    if not all(options):
        raise UdfError(
            f"UDF {name!r} has an empty choice in {key}={raw!r}", source=source, line=line
        )
    if len(set(options)) != len(options):
        raise UdfError(f"UDF {name!r} repeats a choice in {key}={raw!r}", source=source, line=line)
    return options


def _value_problem(udf: Udf, value: str) -> str | None:
    if udf.oneof and value not in udf.oneof:
        return f"{value!r} is not one of {', '.join(udf.oneof)}"
    if udf.manyof and value:
        unknown = [v for v in (p.strip() for p in value.split(",")) if v not in udf.manyof]
        if unknown:
            return f"{', '.join(unknown)} not among {', '.join(udf.manyof)}"
    return None


def check_data(udfs: tuple[Udf, ...], data: Mapping[str, object]) -> tuple[str, ...]:
    """Every problem with `data` as `stackscript_data` for a script declaring `udfs`."""
    by_name = {u.name: u for u in udfs}
    problems: list[str] = []
    for key, value in data.items():
        udf = by_name.get(key)
        if udf is None:
            problems.append(f"stackscript_data.{key}: the StackScript declares no such field")
            continue
        if not isinstance(value, str):
            problems.append(f"stackscript_data.{key}: must be a string, got {type(value).__name__}")
            continue
        problem = _value_problem(udf, value)
        if problem:
            problems.append(f"stackscript_data.{key}: {problem}")
    for udf in udfs:
        if udf.required and udf.name not in data:
            problems.append(f"stackscript_data.{udf.name}: required ({udf.label})")
    size = len(json.dumps(dict(data), separators=(",", ":")))
    if size > MAX_DATA_CHARS:
        problems.append(
            f"stackscript_data: {size} characters, Linode takes at most {MAX_DATA_CHARS}"
        )
    return tuple(problems)


def validate_data(udfs: tuple[Udf, ...], data: Mapping[str, object]) -> dict[str, str]:
    """Return `data` as strings if it fits `udfs`; raise `UdfError` with every problem."""
    problems = check_data(udfs, data)
    if problems:
        raise UdfError("; ".join(problems))
    return {k: str(v) for k, v in data.items()}
