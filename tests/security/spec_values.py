"""Hostile spec values, each run as `swarmboot plan SPEC` against the records-only simulator.

Refused properly: exit 4, one `Error: ` line per problem (one, unless the case says), no
traceback, and nothing but reads reached the simulator. A value `plan` takes counts as
accepted (valid) only where the case says why it is harmless and, where it has one, its check
of what swarmboot renders from it passes; any other accepted value is NOT refused.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from string import Template

from .common import (
    EXAMPLE,
    NOT_REFUSED,
    ONE_MANAGER,
    REFUSED,
    VALID,
    CliWorld,
    Outcome,
    Ran,
    last_lines,
    shown,
)

CATEGORY = "spec"
TITLE = "hostile spec values (plan SPEC)"

Check = Callable[[Path], "str | None"]  # the spec's path -> why it is not harmless, or None


FIFO = "<a FIFO>"  # as a file's content: the file is made a FIFO (os.mkfifo), nothing written


@dataclass(frozen=True)
class SpecCase:
    id: str
    what: str
    spec: str | bytes
    files: tuple[tuple[str, str | bytes], ...] = ()  # more files beside the spec
    problems: int = 1  # Error lines expected: one per problem
    valid: str | None = None  # why the value is harmless, if plan takes it
    check: Check | None = None  # proves it on what swarmboot renders from the spec


def q(value: object) -> str:
    """A TOML value (a basic string for a str): JSON's escapes are TOML's."""
    return json.dumps(value, ensure_ascii=False)


def _with(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def ex(old: str, new: str) -> str:
    return _with(EXAMPLE, old, new)


def solo(old: str, new: str) -> str:
    return _with(ONE_MANAGER, old, new)


# One region with a manager and a load balancer, an [lb] section and a network name: every
# string that reaches a template, each a placeholder.
_BASE = Template(
    """[cluster]
name = $name
image = $image
type = $type
stackscript = $stackscript
admin_ssh_keys = $keys

[network]
name = $network

[lb]
service = $service
port = 8080
ports = [80]
health_path = $health
image = $lb_image

[regions.$region]
pools = [
  { role = "manager", count = 1 },
  { role = "lb", count = 1, labels = { $label_key = $label_value } },
]
"""
)
_DEFAULTS = {
    "name": "solo",
    "image": "linode/debian12",
    "type": "g6-standard-2",
    "stackscript": "debian12-swarm-node.sh",
    "keys": [],
    "network": "solo",
    "service": "app",
    "health": "/healthz",
    "lb_image": "haproxy:2.8",
    "region": "eu-central",
    "label_key": "disk",
    "label_value": "ssd",
}


def base(**changes: object) -> str:
    return _BASE.substitute({k: q(v) for k, v in {**_DEFAULTS, **changes}.items()})


def _key(n: int, blob_tail: bytes | None = None) -> str:
    """A well-formed ed25519 public key line (not anyone's)."""
    body = blob_tail if blob_tail is not None else n.to_bytes(32, "big")
    blob = b"\x00\x00\x00\x0bssh-ed25519" + len(body).to_bytes(4, "big") + body
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} ops-{n}@example"


def _private_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        .decode()
    )


# --- what proves an accepted value harmless ------------------------------------------------


def _stack_keeps_network(value: str) -> Check:
    """The stack file names the network as this one string, nothing more (YAML reads no
    true, null or number into it)."""

    def check(path: Path) -> str | None:
        import yaml

        from swarmboot.lb import render_lb
        from swarmboot.spec import load_spec

        stack = yaml.safe_load(render_lb(load_spec(path)).stack_file)
        names = [list(stack["networks"])] + [s["networks"] for s in stack["services"].values()]
        if any(n != [value] for n in names):
            return f"the stack file reads the network as {names!r}"
        return None

    return check


def _haproxy_keeps_path(value: str) -> Check:
    """HAProxy's configuration sends the path as one word of its own line."""

    def check(path: Path) -> str | None:
        from swarmboot.lb import render_lb
        from swarmboot.spec import load_spec

        for zone in render_lb(load_spec(path)).zones:
            lines = [ln.strip() for ln in zone.text.splitlines() if "httpchk" in ln]
            if lines != [f"option httpchk GET {value}"] or len(lines[0].split()) != 4:
                return f"haproxy-{zone.name}.cfg has {lines!r}"
        return None

    return check


_LABELS_AS_JSON = (
    "node label values go to Docker's API as JSON (swarm.set_labels), never to a shell or a "
    "template"
)
_KEY_COMMENT = (
    "a key's comment is data: the StackScript reads admin_ssh_keys with mapfile and writes "
    "them with printf '%s\\n', never evaluated"
)
_NETWORK = "rendered with tojson: the stack file reads it as a string (checked)"
_HEALTH = "HAProxy takes the path as one word of its configuration, no shell (checked)"

# --- the cases -------------------------------------------------------------------------------

_PORTS = [
    ("port-past-65535", "a public port range that ends past 65535", '"100-99999/tcp"'),
    ("port-reversed", "a public port range written backwards", '"9000-100/tcp"'),
    ("port-zero", "public port 0", '"0/tcp"'),
    ("port-range-from-zero", "a public range from port 0", '"0-80/tcp"'),
    ("port-65536", "public port 65536", '"65536/tcp"'),
    ("port-negative", "a negative public port", '"-1/tcp"'),
    ("port-huge", "an eleven-digit public port", '"99999999999/tcp"'),
    ("port-no-protocol", "a public port without /tcp or /udp", '"443"'),
    ("port-sctp", "a public port over sctp", '"443/sctp"'),
    ("port-fullwidth-digits", "a public port in fullwidth digits", '"\uff14\uff14\uff13/tcp"'),
    ("port-arabic-digits", "a public port in Arabic-Indic digits", '"\u0664\u0664\u0663/tcp"'),
    ("port-trailing-newline", "a public port key ending in a newline", '"443/tcp\\n"'),
    ("port-list", "two public ports in one key", '"443,8443/tcp"'),
    ("port-leading-space", "a public port key with a leading space", '" 443/tcp"'),
]
_LB_NUMBERS = [
    ("lb-ports-zero", "lb.ports with port 0", "ports = [80]", "ports = [0]"),
    ("lb-ports-65536", "lb.ports with port 65536", "ports = [80]", "ports = [65536]"),
    ("lb-ports-empty", "no lb.ports at all", "ports = [80]", "ports = []"),
    ("lb-ports-string", "lb.ports as strings", "ports = [80]", 'ports = ["80"]'),
    ("lb-port-negative", "a negative lb.port", "port = 8080", "port = -8080"),
    ("lb-port-bool", "lb.port = true", "port = 8080", "port = true"),
    ("lb-port-huge", "lb.port = 2^63-1", "port = 8080", "port = 9223372036854775807"),
    ("lb-servers-huge", "a million lb.servers", "port = 8080", "port = 8080\nservers = 1000000"),
]
_SOURCES = [
    ("scope-id-ssh", "an IPv6 ssh_from with a scope id", "ssh_from", "fe80::1%x/128"),
    ("scope-id-public", "an IPv6 public source with a scope id", "public", "fe80::1%eth0/64"),
    ("cidr-prefix-33", "an IPv4 prefix /33", "ssh_from", "0.0.0.0/33"),
    ("cidr-word", "a source that is a word", "ssh_from", "anywhere"),
    ("cidr-hostname", "a source that is a host name", "ssh_from", "example.com"),
    ("cidr-empty", "an empty source", "ssh_from", ""),
    ("cidr-trailing-newline", "a source ending in a newline", "ssh_from", "0.0.0.0/0\n"),
    ("cidr-space-inside", "a source with a space inside", "public", "10.0.0.0 /8"),
]
_SUBNETS = [
    ("subnet-host-bits", "an overlay subnet with host bits set", "10.10.0.1/24"),
    ("subnet-ipv6", "an IPv6 overlay subnet", "fd00::/64"),
    ("subnet-trailing-newline", "an overlay subnet ending in a newline", "10.10.0.0/24\n"),
    ("subnet-word", "an overlay subnet that is a word", "auto"),
]


def _admin(keys: str, files: tuple = (), **kw) -> dict:
    return {"spec": ex("admin_ssh_keys = []", f"admin_ssh_keys = {keys}"), "files": files, **kw}


_ADMIN = [
    ("key-comma", "an admin key whose comment has a comma", _admin(q([_key(1) + ",laptop"]))),
    (
        "key-options",
        "an admin key with authorized_keys options",
        _admin(q(['command="/bin/sh" ' + _key(1)])),
    ),
    ("key-type-only", "an admin key that is only its type", _admin(q(["ssh-ed25519"]))),
    ("key-cut-short", "an admin key cut short", _admin(q([_key(1)[:60]]))),
    (
        "key-data-too-long",
        "admin keys that make the StackScript data longer than 65,535 characters",
        _admin(q(["many.pub"]), (("many.pub", "".join(_key(n) + "\n" for n in range(700))),)),
    ),
    (
        "key-one-huge",
        "one admin key of 60,000 bytes (StackScript data over 65,535 characters)",
        _admin(q([_key(1, b"\x01" * 60000)])),
    ),
    (
        "key-file-not-utf8",
        "an admin key file that is not UTF-8",
        _admin(q(["ops.pub"]), (("ops.pub", b"ssh-ed25519 \xff\xfe\n"),)),
    ),
    (
        "key-two-in-one",
        "two admin keys in one entry, split by a newline",
        _admin(q([_key(1) + "\n" + _key(2)])),
    ),
    ("key-file-directory", "an admin key 'file' that is a directory", _admin(q(["."]))),
    ("key-file-dev-zero", "/dev/zero as an admin key file", _admin(q(["/dev/zero"]))),
    (
        "key-file-fifo",
        "an admin key 'file' that is a FIFO nobody writes to",
        _admin(q(["ops.pub"]), (("ops.pub", FIFO),)),
    ),
    (
        "key-file-huge",
        "an admin key file of 64 MiB",
        _admin(q(["ops.pub"]), (("ops.pub", b"ssh-ed25519 " + b"A" * (64 * 1024 * 1024)),)),
    ),
    ("key-file-missing", "an admin key file that does not exist", _admin(q(["missing.pub"]))),
    (
        "key-file-private",
        "the private key given as an admin key file",
        _admin(q(["id_ops"]), (("id_ops", _private_key()),)),
    ),
    (
        "key-type-mismatch",
        "an ssh-rsa line carrying an ed25519 key",
        _admin(q(["ssh-rsa " + _key(1).split()[1]])),
    ),
    ("key-bad-base64", "an admin key whose key is not base64", _admin(q(["ssh-ed25519 !!!!"]))),
    (
        "key-escape-comment",
        "an admin key whose comment has terminal escapes",
        _admin(q([_key(1) + " \x1b[2J\x1b[31mroot"])),
    ),
    ("key-trailing-newline", "an admin key ending in a newline", _admin(q([_key(1) + "\n"]))),
    ("keys-not-a-list", "admin_ssh_keys as one string", _admin(q(_key(1)))),
    (
        "key-comment-metachars",
        "an admin key whose comment has $(...), backticks and ;",
        _admin(q([_key(1) + " $(reboot)`id`;x"]), valid=_KEY_COMMENT),
    ),
]
_NETWORKS = [
    ("network-true", "a network name YAML reads as true", "true", True),
    ("network-null", "a network name YAML reads as null", "null", True),
    ("network-yes", "a network name YAML 1.1 reads as true", "yes", True),
    ("network-number", "a network name YAML reads as a number", "123", True),
    ("network-float", "a network name YAML reads as a float", "1e3", True),
    ("network-tilde", "a network name YAML reads as null (~)", "~", False),
    ("network-trailing-newline", "a network name ending in a newline", "solo\n", False),
    ("network-dash", "a network name that reads as an option", "-solo", False),
    ("network-too-long", "a network name of 64 characters", "n" * 64, False),
]
_HEALTH_PATHS = [
    ("health-quote", "a health path with a quote", '/a"b', False),
    ("health-hash", "a health path with #", "/a#b", False),
    ("health-backslash", "a health path with a backslash", "/a\\b", False),
    ("health-space", "a health path with a space", "/a b", False),
    ("health-tab", "a health path with a tab", "/a\tb", False),
    ("health-newline", "a health path with a newline inside", "/a\nb", False),
    ("health-trailing-newline", "a health path ending in a newline", "/healthz\n", False),
    ("health-no-slash", "a health path without its leading /", "healthz", False),
    ("health-too-long", "a health path of 301 characters", "/" + "a" * 300, False),
    ("health-fullwidth", "a health path in fullwidth letters", "/\uff48ealthz", False),
    ("health-subdelims", "a health path with ; & = ( )", "/a;b&c=(1)", True),
    ("health-encoded-crlf", "a health path with %0d%0a", "/a%0d%0aX:1", True),
]
_REGIONS = [
    ("region-newline", "a region key with a newline and more", "eu-central\nbind :1"),
    ("region-space", "a region key with a space", "eu central"),
    ("region-homoglyph", "a region key with a Cyrillic es", "eu-\u0441entral"),
    ("region-trailing-newline", "a region key ending in a newline", "eu-central\n"),
    ("region-uppercase", "a region key in capitals", "EU-CENTRAL"),
    ("region-long", "a region key of 43 characters", "eu-" + "a" * 40),
    ("region-nul", "a region key with a NUL", "eu-central\x00"),
]
_LABELS = [
    ("label-key-newline", "a node label name ending in a newline", {"label_key": "disk\n"}),
    ("label-key-reserved", "a node label swarmboot sets (role)", {"label_key": "role"}),
    ("label-key-uppercase", "a node label name in capitals", {"label_key": "Disk"}),
    ("label-key-equals", "a node label name with =", {"label_key": "disk=ssd"}),
    ("label-key-space", "a node label name with a space", {"label_key": "di sk"}),
    ("label-key-homoglyph", "a node label name with a Cyrillic i", {"label_key": "d\u0456sk"}),
    ("label-value-number", "a node label value that is a number", {"label_value": 1}),
    (
        "label-value-newline",
        "a node label value with a newline and a second label",
        {"label_value": "ssd\nrole=manager"},
    ),
    (
        "label-value-escape",
        "a node label value with terminal escapes",
        {"label_value": "\x1b[2J\x1b[31mssd"},
    ),
]
_LENIENT = [
    ("count-string", "a count in quotes", solo("count = 1", 'count = "1"')),
    ("count-float", "a count of 1.0", solo("count = 1", "count = 1.0")),
    ("count-bool", "a count of true", solo("count = 1", "count = true")),
    ("count-date", "a count that is a TOML date", solo("count = 1", "count = 1979-05-27")),
    ("count-negative", "a negative count", solo("count = 1", "count = -1")),
    ("count-101", "a count past 100", solo("count = 1", "count = 101")),
    ("count-huge", "a count of 2^63-1", solo("count = 1", "count = 9223372036854775807")),
    ("managers-nine", "nine managers", solo("count = 1", "count = 9")),
    (
        "flag-string",
        "apt_upgrade in quotes",
        solo('name = "solo"', 'name = "solo"\napt_upgrade = "yes"'),
    ),
    (
        "flag-string-false",
        'require_grub_kernel = "false"',
        solo('name = "solo"', 'name = "solo"\nrequire_grub_kernel = "false"'),
    ),
    (
        "encrypted-string",
        'network.encrypted = "true"',
        ex('encrypted = "auto"', 'encrypted = "true"'),
    ),
    (
        "require-esp-number",
        "network.require_esp = 1",
        ex('encrypted = "auto"', 'encrypted = "auto"\nrequire_esp = 1'),
    ),
    ("servers-string", 'lb.servers = "10"', ex("port = 8080", 'port = 8080\nservers = "10"')),
    ("name-number", "cluster.name = 123", solo('name = "solo"', "name = 123")),
    ("regions-empty", "no regions", solo("[regions.eu-central]\npools", "[regions]\n#")),
    ("pools-empty", "a region without pools", solo('[{ role = "manager", count = 1 }]', "[]")),
]
_TRAILING = [
    ("name", "solo\n"),
    ("service", "app\n"),
    ("image", "linode/debian12\n"),
    ("type", "g6-standard-2\n"),
    ("stackscript", "debian12-swarm-node.sh\n"),
    ("lb_image", "haproxy:2.8\n"),
]
_TRAILING_LITERALS = [
    ("advertise", ex('advertise = "auto"', 'advertise = "auto\\n"')),
    ("backends", ex('backends = "zone"', 'backends = "zone\\n"')),
    ("docker-source", ex('docker_source = "docker"', 'docker_source = "docker\\n"')),
    ("role", solo('role = "manager"', 'role = "manager\\n"')),
]
_NAMES = [
    ("name-double-hyphen", "a cluster name with -- (Linode labels refuse it)", "so--lo"),
    ("name-trailing-hyphen", "a cluster name ending in -", "solo-"),
    ("name-digit-first", "a cluster name starting with a digit", "1solo"),
    ("name-underscore-capital", "a cluster name with _ and capitals", "Solo_1"),
    ("name-too-long", "a cluster name of 25 characters", "a" * 25),
    ("name-empty", "an empty cluster name", ""),
    ("name-homoglyph", "a cluster name with a Cyrillic dze", "\u0455olo"),
    ("name-zero-width", "a cluster name with a zero-width space", "so\u200blo"),
    ("name-nul", "a cluster name with a NUL", "so\x00lo"),
]
# Every string that reaches a template or a name, with each shell metacharacter.
_FIELDS = {
    "name": "cluster.name",
    "network": "network.name",
    "service": "lb.service",
    "health": "lb.health_path",
    "lb_image": "lb.image",
    "region": "a region key",
    "label_key": "a node label name",
    "label_value": "a node label value",
    "image": "cluster.image",
    "type": "cluster.type",
    "stackscript": "cluster.stackscript",
}
_METAS = {
    "subst": "$(reboot)",
    "backtick": "`reboot`",
    "semicolon": ";reboot",
    "squote": "'x",
    "dquote": '"x',
}
_FILES = [
    (
        "file-not-utf8",
        "a spec that is not UTF-8",
        EXAMPLE.encode().replace(b"Frankfurt", b"\xe4"),
        1,
    ),
    ("file-empty", "an empty spec (two problems: no cluster, no regions)", "", 2),
    ("file-comments-only", "a spec of comments only (two problems)", "# nothing\n", 2),
    ("file-bom", "a spec starting with a byte order mark", "\ufeff" + ONE_MANAGER, 1),
    ("file-nul", "a spec with a NUL byte", ONE_MANAGER.replace("solo", "so\x00lo", 1), 1),
    ("file-binary", "a gzip file as spec", b"\x1f\x8b\x08\x00" + bytes(range(256)), 1),
    ("file-deep-nesting", "a spec nested 5000 arrays deep", "x = " + "[" * 5000 + "]" * 5000, 1),
    ("file-not-toml", "a spec that is not TOML", "[cluster\nname = 'x'\n", 1),
    (
        "duplicate-key",
        "a key given twice",
        solo('name = "solo"', 'name = "solo"\nname = "evil"'),
        1,
    ),
    (
        "duplicate-table",
        "a region table given twice",
        ONE_MANAGER + '[regions.eu-central]\npools = [{ role = "worker", count = 1 }]\n',
        1,
    ),
    ("unknown-key", "a key the spec does not have", ex('"itframe"\nimage', '"itframe"\nimgae'), 1),
    ("unknown-table", "a table the spec does not have", "[clusters]\n" + ONE_MANAGER, 1),
    (
        "unknown-pool-key",
        "a pool key the spec does not have",
        solo("count = 1", "count = 1, cnt = 1"),
        1,
    ),
]


def _cases() -> list[SpecCase]:
    out = [SpecCase(i, w, ex('"443/tcp" =', f"{key} =")) for i, w, key in _PORTS]
    out += [SpecCase(i, w, ex(old, new)) for i, w, old, new in _LB_NUMBERS]
    for i, w, where, value in _SOURCES:
        old = 'ssh_from = ["0.0.0.0/0", "::/0"]' if where == "ssh_from" else '"80/tcp" = ['
        new = f"ssh_from = [{q(value)}]" if where == "ssh_from" else f'"80/tcp" = [{q(value)}, '
        out.append(SpecCase(i, w, ex(old, new)))
    out += [
        SpecCase(
            i,
            w,
            ex('name = "itframe"\n# auto: an', f'name = "itframe"\nsubnet = {q(v)}\n# auto: an'),
        )
        for i, w, v in _SUBNETS
    ]
    for i, w, kw in _ADMIN:
        out.append(SpecCase(i, w, kw["spec"], kw["files"], valid=kw.get("valid")))
    for i, w, v, ok in _NETWORKS:
        extra = {"valid": _NETWORK, "check": _stack_keeps_network(v)} if ok else {}
        out.append(SpecCase(i, w, base(network=v), **extra))
    for i, w, v, ok in _HEALTH_PATHS:
        extra = {"valid": _HEALTH, "check": _haproxy_keeps_path(v)} if ok else {}
        out.append(SpecCase(i, w, base(health=v), **extra))
    out += [SpecCase(i, w, base(region=v)) for i, w, v in _REGIONS]
    out += [SpecCase(i, w, base(**kw)) for i, w, kw in _LABELS]
    out += [SpecCase(i, w, text) for i, w, text in _LENIENT]
    out += [
        SpecCase(
            f"trailing-newline-{f.replace('_', '-')}",
            f"{_FIELDS[f]} ending in a newline",
            base(**{f: v}),
        )
        for f, v in _TRAILING
    ]
    out += [
        SpecCase(f"trailing-newline-{f}", f"{f} ending in a newline", text)
        for f, text in _TRAILING_LITERALS
    ]
    out += [SpecCase(i, w, base(name=v)) for i, w, v in _NAMES]
    for field, where in _FIELDS.items():
        for meta_id, meta in _METAS.items():
            value = _DEFAULTS[field] + meta
            extra: dict = {}
            if field == "label_value":
                extra = {"valid": _LABELS_AS_JSON}
            elif field == "health":
                extra = {"valid": _HEALTH, "check": _haproxy_keeps_path(value)}
            out.append(
                SpecCase(
                    f"meta-{field.replace('_', '-')}-{meta_id}",
                    f"{where} with {meta}",
                    base(**{field: value}),
                    **extra,
                )
            )
    out += [SpecCase(i, w, text, problems=n) for i, w, text, n in _FILES]
    return out


CASES = _cases()


def _judge(case: SpecCase, ran: Ran, writes: list[str], spec: Path) -> tuple[str, str]:
    lines = ran.output.splitlines()
    what = f"exit {ran.exit_code}: {shown(ran.output)}"
    if ran.traceback:
        return NOT_REFUSED, f"{what}\ntraceback: {last_lines(ran.traceback)}"
    if "Traceback" in ran.output:
        return NOT_REFUSED, f"{what}\n(a traceback in the output)"
    if writes:
        return NOT_REFUSED, f"{what}\nwrites reached the simulator: {writes}"
    if ran.exit_code == 4:
        if len(lines) == case.problems and all(ln.startswith("Error: ") for ln in lines):
            return REFUSED, ""
        return NOT_REFUSED, f"{what}\n(expected {case.problems} 'Error: ' line(s))"
    if ran.exit_code == 0 and case.valid:
        problem = case.check(spec) if case.check else None
        if problem is None:
            return VALID, case.valid
        return NOT_REFUSED, f"exit 0 (plan took it), but {problem}"
    return NOT_REFUSED, what


def run(world: CliWorld) -> list[Outcome]:
    out = []
    for case in CASES:
        where = world.dir / "spec" / case.id
        where.mkdir(parents=True)
        spec = where / "spec.toml"
        for path, content in [(spec, case.spec)] + [(where / n, c) for n, c in case.files]:
            if content is FIFO:
                os.mkfifo(path)
            elif isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        seq = world.last_seq()
        ran = world.invoke(["plan", str(spec)])
        verdict, detail = _judge(case, ran, world.writes_since(seq), spec)
        out.append(Outcome(CATEGORY, case.id, case.what, verdict, detail))
    return out
