"""The cluster spec (`swarm.toml`): what the cluster should be, validated in one pass.

Every problem is gathered with its key path before anything fails, so a user fixes a file in
one go. What needs the API (region and type names) is checked by `check_against_catalog`.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import tomllib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from swarmboot.errors import ExitCode, SwarmbootError
from swarmboot.files import FileTooLarge, NotAFile, read_capped
from swarmboot.quorum import region_warnings

__all__ = [
    "Bootstrap",
    "Cluster",
    "Lb",
    "NodePlan",
    "Pool",
    "Region",
    "Spec",
    "SpecError",
    "load_spec",
    "with_bootstrap",
]

Role = Literal["manager", "worker", "lb"]
Bootstrap = Literal["stackscript", "cloud-init"]
ROLES: tuple[Role, ...] = ("manager", "lb", "worker")  # the order nodes are made in

# A DNS label that is also a valid start of a Linode label (a letter first).
_NAME = r"^[a-z]([a-z0-9-]{0,22}[a-z0-9])?$"
# Python's patterns are matched whole (fullmatch): `$` would let a trailing newline through.
_LABEL_KEY = re.compile(r"[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?")
_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
# A public key line as authorized_keys takes it, without options: the type, the key and a
# comment of printable characters but commas (the StackScript's data lists keys with them).
_KEY = re.compile(r"(?P<type>[a-z0-9@.-]+) (?P<blob>[A-Za-z0-9+/]+={0,3})( [ -+\--~]*)?")
# A [firewall.public] key: PORT/tcp, PORT/udp or FIRST-LAST/tcp, in ASCII digits.
_PORT_KEY = re.compile(r"([0-9]{1,5})(-([0-9]{1,5}))?/(tcp|udp)")
# A Linode region id ("eu-central", "gb-lon", "in-bom-2").
_REGION = re.compile(r"[a-z]{2,}(-[a-z0-9]+){1,3}")
# A URL path (and query) HAProxy's `option httpchk` takes as one word: no quotes, `#`,
# backslash, `$` or spaces.
_HEALTH_PATH = r"^/[A-Za-z0-9._~!&()*+,;=:@%/?-]{0,200}$"
# A Docker image reference, NAME[:TAG][@DIGEST], as Docker's own grammar has it
# (distribution/reference): an optional registry host[:port]/, then lowercase path components,
# a tag of at most 128 word characters, . and -, and a digest algorithm:hex of 32+ digits.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST_COMPONENT = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_IMAGE = re.compile(
    rf"(?P<name>(?:(?:{_HOST_COMPONENT}(?:\.{_HOST_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?/)?"
    rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::\w[\w.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?",
    re.ASCII,
)
# The largest spec read (a spec is a few KiB), and the largest admin key file: a node's
# StackScript data carries at most 65,535 characters, so a larger file could never be used.
_SPEC_MAX = 1024 * 1024
_KEY_FILE_MAX = 256 * 1024
# The deepest a spec may nest arrays and tables (its own deepest is 6: regions.X.pools[n].labels).
_MAX_DEPTH = 32
# Every Linode and Cloud Firewall of a cluster carries this tag with the cluster's name.
CLUSTER_TAG = "swarmboot:"
RESERVED_LABELS = frozenset({"zone", "region", "role", "cluster"})
# The subnet of each region's VPC (Linode interfaces), and where one may lie: outside swarm's
# overlay pool (10.0.0.0/8), the nodes' Docker bridges (172.16.0.0/12, daemon.json) and
# Linode's private addresses (192.168.128.0/17).
VPC_SUBNET = "192.168.64.0/24"
_VPC_ROOM = ipaddress.IPv4Network("192.168.0.0/17")


class SpecError(SwarmbootError):
    """A spec that cannot be used; `problems` has one line per problem."""

    exit_code = ExitCode.BAD_SPEC

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems) if len(self.problems) > 1 else self.problems[0])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Pool(_Strict):
    role: Role
    count: int = Field(ge=0, le=100)
    type: str | None = None
    labels: dict[str, str] = {}

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if key in RESERVED_LABELS:
                raise ValueError(f"{key!r} is set by swarmboot; choose another label name")
            if not _LABEL_KEY.fullmatch(key):
                raise ValueError(f"{key!r} is not a label name (lowercase letters, digits, . _ -)")
        for key, text in value.items():
            if not text.isprintable():
                raise ValueError(
                    f"the value of {key!r}, {text!r}, has a control character (a newline, tab "
                    "or terminal escape): Docker takes any string, but one in a label is never "
                    "meant and plan would print it raw; give printable text"
                )
        return value


class Region(_Strict):
    pools: tuple[Pool, ...] = Field(min_length=1)

    @field_validator("pools")
    @classmethod
    def _one_pool_per_role(cls, value: tuple[Pool, ...]) -> tuple[Pool, ...]:
        roles = [p.role for p in value]
        twice = sorted({r for r in roles if roles.count(r) > 1})
        if twice:
            raise ValueError(
                f"more than one {', '.join(twice)} pool; give one pool per role "
                "and region a larger count"
            )
        return value


class Cluster(_Strict):
    name: Annotated[str, StringConstraints(pattern=_NAME)]
    image: str = "linode/debian12"
    type: str = "g6-standard-2"
    stackscript: str = "debian12-swarm-node.sh"
    # How a new or rebuilt Linode runs that script on its first boot: as a StackScript (the
    # default: proven, and open to every region and image), or as cloud-init user data
    # through Linode's Metadata service (regions with `Metadata`, images with `cloud-init`;
    # nothing is published to the account). See README, "Bootstrap: StackScript or cloud-init".
    bootstrap: Bootstrap = "stackscript"
    advertise: Literal["auto", "private", "public"] = "auto"
    docker_source: Literal["docker", "debian"] = "docker"
    admin_ssh_keys: tuple[str, ...] = ()
    apt_upgrade: bool = True
    # A node is ready only on the distribution kernel booted through GRUB 2; false only where
    # the kernel is not the node's to choose (the lab's nodes share this machine's kernel).
    require_grub_kernel: bool = True
    # Refuse a spec whose managers would lose their raft quorum with any one region.
    survive_region_loss: bool = False
    # The managers of a region with two or more go into a Linode placement group with
    # anti-affinity (each on a host of its own): strict refuses a Linode that would share a
    # host, flexible takes it and reports the group non-compliant; none makes no group.
    manager_placement: Literal["strict", "flexible", "none"] = "strict"
    # The interfaces new Linodes get: "legacy" (in their config profile, behind a firewall as
    # a whole, as before), "linode" (Linode interfaces: a public one and one in the region's
    # VPC, each behind the firewall), "auto" (what the account makes by default).
    interfaces: Literal["legacy", "linode", "auto"] = "legacy"
    # The swarm's dispatcher heartbeat, in seconds (Docker's default is 5). Each time a new
    # leader takes over (a forced new cluster after a region is lost, a manager restarted),
    # every other node must reach it within six heartbeats, or the swarm declares it down
    # and shuts its tasks down (a zone's load balancer goes with them, to start again when
    # the node is back); a dead node is declared down after three. Workers that survive a
    # region go on trying the dead region's managers (up to 13 s a try): at 5 s, the lab's
    # surviving load balancer was restarted in 2 of 7 recoveries under load.
    heartbeat: int = 20

    @field_validator("heartbeat")
    @classmethod
    def _heartbeat(cls, value: int) -> int:
        if not 1 <= value <= 300:
            raise ValueError(
                f"{value} is not a heartbeat: give whole seconds from 1 to 300 (the default "
                "20 gives nodes two minutes to reach a new leader; Docker's own is 5)"
            )
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        # Linode refuses a label with two hyphens (or underscores, or periods) in a row; the
        # pattern already keeps out underscores and periods.
        if "--" in value:
            raise ValueError(
                f"{value!r} has two hyphens in a row, which Linode refuses in a label (it "
                "starts every node's label); use one hyphen"
            )
        return value

    @field_validator("advertise", mode="before")
    @classmethod
    def _advertise(cls, value: object) -> object:
        # An address instead of a policy: say what is wrong with an IPv6 one in particular.
        try:
            address = ipaddress.ip_address(str(value))
        except ValueError:
            return value
        if address.version == 6:
            raise ValueError(
                f"{value!r} is IPv6: swarm's memberlist cannot advertise it (\"too many colons "
                'in address"); use "auto", "public" or "private" (the node\'s IPv4)'
            )
        raise ValueError(
            f'{value!r} is an address; use "auto", "public" or "private": each node '
            "advertises its own"
        )


class Network(_Strict):
    name: Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")] | None = (
        None
    )
    # auto: encrypted whenever the cluster spans regions; false opts out explicitly.
    encrypted: Literal["auto"] | bool = "auto"
    # An encrypted overlay is refused where a node's kernel lacks IPsec ESP (its traffic would
    # be dropped silently); false creates it anyway, knowingly (a lab without ESP).
    require_esp: bool = True
    subnet: str | None = None
    # The subnet of each region's VPC, with Linode interfaces (the nodes' addresses in it).
    vpc_subnet: str = VPC_SUBNET

    @field_validator("encrypted", mode="before")
    @classmethod
    def _encrypted(cls, value: object) -> object:
        # One problem, one line: the union would fail twice ("must be 'auto'", "must be true
        # or false").
        if value != "auto" and not isinstance(value, bool):
            raise ValueError('must be "auto", true or false (true and false without quotes)')
        return value

    @field_validator("subnet")
    @classmethod
    def _subnet(cls, value: str | None) -> str | None:
        if value is not None:
            ipaddress.IPv4Network(value)
        return value

    @field_validator("vpc_subnet")
    @classmethod
    def _vpc_subnet(cls, value: str) -> str:
        try:
            net = ipaddress.IPv4Network(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not an IPv4 range in canonical form, like {VPC_SUBNET!r}"
            ) from None
        if not net.subnet_of(_VPC_ROOM) or net.prefixlen > 29:
            raise ValueError(
                f"{value!r} must lie inside 192.168.0.0/17 with a prefix of /17 to /29 "
                "(10.0.0.0/8 is swarm's overlay pool, 172.16.0.0/12 the nodes' Docker bridges, "
                f"192.168.128.0/17 Linode's private addresses), like {VPC_SUBNET!r}"
            )
        return value


def _check_sources(value: tuple[str, ...]) -> tuple[str, ...]:
    for source in value:
        if "%" in source:
            # Python reads a scope id (fe80::1%eth0); a Cloud Firewall and nftables do not.
            raise ValueError(f"{source!r} has a scope id (%...); give the address without it")
        ipaddress.ip_network(source, strict=False)
    return value


def _port_range(key: str) -> str | None:
    """Why a [firewall.public] key is not PORT/tcp, PORT/udp or FIRST-LAST/tcp, or None."""
    # [0-9], not \d: Python's \d and int() also take fullwidth and Arabic-Indic digits.
    match = _PORT_KEY.fullmatch(key)
    if not match:
        digits = "" if key.isascii() else " in the digits 0-9"
        return f"{key!r} is not PORT/tcp, PORT/udp or FIRST-LAST/tcp{digits}"
    first, last = int(match.group(1)), int(match.group(3) or match.group(1))
    if not 1 <= first <= 65535 or not 1 <= last <= 65535:
        return f"{key!r}: ports are 1 to 65535"
    if last < first:
        return f"{key!r}: the range ends before it starts; write {last}-{first}"
    return None


class Firewall(_Strict):
    ssh_from: tuple[str, ...] = ("0.0.0.0/0", "::/0")
    # Ports open to the world on load balancers, "80/tcp" -> allowed sources.
    public: dict[str, tuple[str, ...]] = {
        "80/tcp": ("0.0.0.0/0", "::/0"),
        "443/tcp": ("0.0.0.0/0", "::/0"),
    }

    @field_validator("ssh_from")
    @classmethod
    def _ssh(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_sources(value)

    @field_validator("public")
    @classmethod
    def _public(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for port, sources in value.items():
            problem = _port_range(port)
            if problem:
                raise ValueError(problem)
            _check_sources(sources)
        return value


class Lb(_Strict):
    """The load balancers: HAProxy on every `lb` node, one swarm service per zone, published
    on the node's own address (host mode), finding the application's tasks by swarm DNS."""

    # The application's swarm service; with backends = "zone" the tasks of `<service>-<zone>`.
    service: Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,40}$")]
    port: int = Field(ge=1, le=65535)  # the port the application's tasks listen on
    ports: tuple[Annotated[int, Field(ge=1, le=65535)], ...] = Field(
        default=(80,), min_length=1
    )  # published on each lb node, each forwarded to the backends over HTTP
    health_path: Annotated[str, StringConstraints(pattern=_HEALTH_PATH)] = "/"
    # zone: each zone's load balancers send only to that zone's tasks (`<service>-<zone>`);
    # global: to every task of `<service>`, in any zone.
    backends: Literal["zone", "global"] = "zone"
    servers: int = Field(default=10, ge=1, le=200)  # backend slots DNS fills (server-template)
    image: str = "haproxy:2.8"
    # host: each node's own address (the default: traffic stays in its datacenter). ingress:
    # the routing mesh, which needs IPVS and spreads traffic over every zone.
    publish_mode: Literal["host", "ingress"] = "host"

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        match = _IMAGE.fullmatch(value) if len(value) <= 1024 else None
        if match is None or len(match["name"]) > 255:
            raise ValueError(
                f"{value!r} is not a Docker image reference: NAME[:TAG][@DIGEST] in Docker's "
                "grammar, like haproxy:2.8 or registry.example.com/ops/haproxy:2.8"
            )
        return value


@dataclass(frozen=True)
class NodePlan:
    """One node the spec asks for."""

    label: str
    region: str
    role: Role
    index: int
    type: str
    labels: tuple[tuple[str, str], ...]


class Spec(_Strict):
    cluster: Cluster
    regions: dict[str, Region] = Field(min_length=1)
    network: Network = Network()
    firewall: Firewall = Firewall()
    lb: Lb | None = None

    @field_validator("regions")
    @classmethod
    def _region_ids(cls, value: dict[str, Region]) -> dict[str, Region]:
        for region in value:
            if not _REGION.fullmatch(region) or len(region) > 32:
                raise ValueError(
                    f"{region!r} is not a Linode region id (like eu-central or gb-lon); "
                    "see `linode-cli regions list`"
                )
        return value

    @property
    def tag(self) -> str:
        return f"{CLUSTER_TAG}{self.cluster.name}"

    @property
    def multi_region(self) -> bool:
        return sum(1 for r in self.regions.values() if any(p.count for p in r.pools)) > 1

    def managers_by_region(self) -> dict[str, int]:
        """The number of managers in each region, in the spec's order."""
        return {
            region: sum(p.count for p in settings.pools if p.role == "manager")
            for region, settings in self.regions.items()
        }

    @property
    def network_name(self) -> str:
        return self.network.name or self.cluster.name

    @property
    def encrypted(self) -> bool:
        if self.network.encrypted == "auto":
            return self.multi_region
        return bool(self.network.encrypted)

    def nodes(self) -> tuple[NodePlan, ...]:
        """Every node, in the order they are made: managers, load balancers, workers."""
        out = []
        for role in ROLES:
            for region, settings in self.regions.items():
                for pool in settings.pools:
                    if pool.role != role:
                        continue
                    for n in range(1, pool.count + 1):
                        out.append(
                            NodePlan(
                                label=f"{self.cluster.name}-{region}-{role}-{n}",
                                region=region,
                                role=role,
                                index=n,
                                type=pool.type or self.cluster.type,
                                labels=tuple(sorted(pool.labels.items())),
                            )
                        )
        return tuple(out)


def _where(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(error: dict) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key; check its spelling against the example spec"
    if kind == "missing":
        return "required"
    if kind == "literal_error":
        return f"must be {error['ctx']['expected']}"
    if kind == "int_type":
        return "must be a whole number, without quotes (like 3)"
    if kind == "bool_type":
        return "must be true or false, without quotes"
    if kind == "string_type":
        return "must be a string, in quotes"
    if kind == "string_pattern_mismatch" and error["loc"][-1] == "health_path":
        return (
            "must be an HTTP path starting with / of letters, digits and -._~!&()*+,;=:@%/? "
            "(no quotes, #, backslash, $ or spaces: HAProxy's health check sends it as one word)"
        )
    if kind == "string_pattern_mismatch" and tuple(error["loc"]) == ("cluster", "name"):
        return (
            "must be a lowercase name starting with a letter: letters, digits and "
            "hyphens, at most 24 (it starts every node's label)"
        )
    if kind == "string_pattern_mismatch" and tuple(error["loc"]) == ("network", "name"):
        return (
            "must be a Docker network name: a letter or digit first, then letters, digits "
            "and _ . -, at most 63"
        )
    if kind == "string_pattern_mismatch" and tuple(error["loc"]) == ("lb", "service"):
        return (
            "must be a swarm service name: a letter or digit first, then letters, digits "
            "and _ . -, at most 41"
        )
    return str(error["msg"]).removeprefix("Value error, ")


def _covers(key: str, port: int) -> bool:
    """Whether a [firewall.public] key ("80/tcp", "8000-8100/tcp") opens a TCP port."""
    ports, _, protocol = key.partition("/")
    first, _, last = ports.partition("-")
    return protocol == "tcp" and int(first) <= port <= int(last or first)


def _semantic_problems(spec: Spec, source: str, base: Path) -> list[str]:
    problems = []
    managers = sum(p.count for r in spec.regions.values() for p in r.pools if p.role == "manager")
    if managers == 0:
        problems.append(
            f"{source}: regions: no managers; a swarm needs 1, 3, 5 or 7 "
            "(an odd number keeps raft quorum)"
        )
    elif managers % 2 == 0:
        problems.append(
            f"{source}: regions: {managers} managers; use an odd number (1, 3, 5 "
            "or 7): an even number tolerates no more failures than one fewer"
        )
    elif managers > 7:
        problems.append(
            f"{source}: regions: {managers} managers; more than 7 slows raft down: use 7 at most"
        )
    if spec.cluster.survive_region_loss and managers:
        lost = region_warnings(spec.managers_by_region())
        if lost:
            problems.append(f"{source}: cluster.survive_region_loss: {'; '.join(lost)}")
    if spec.multi_region and spec.cluster.advertise == "private":
        problems.append(
            f"{source}: cluster.advertise: 'private' cannot span regions: Linode "
            "private addresses reach only their own datacenter; use 'auto' or "
            "'public'"
        )
    if spec.cluster.interfaces != "legacy":
        problems += _vpc_problems(spec, source)
    if spec.lb is not None:
        # Every zone with workers (where the application runs) needs its load balancer; a
        # region of managers alone (a third region that keeps the quorum) needs none.
        for region, settings in spec.regions.items():
            workers = any(p.role == "worker" and p.count for p in settings.pools)
            if workers and not any(p.role == "lb" and p.count for p in settings.pools):
                problems.append(
                    f"{source}: regions.{region}: no lb pool, but [lb] puts a load balancer in "
                    'every zone with workers; add { role = "lb", count = 1 } to its pools'
                )
        for port in spec.lb.ports:
            if not any(_covers(key, port) for key in spec.firewall.public):
                problems.append(
                    f"{source}: lb.ports: {port} is not open to the world; add "
                    f'"{port}/tcp" = ["0.0.0.0/0", "::/0"] to [firewall.public]'
                )
    for node in spec.nodes():
        if len(node.label) > 64:
            problems.append(
                f"{source}: regions.{node.region}: node label {node.label!r} is "
                "longer than Linode's 64 characters; shorten cluster.name"
            )
            break
    for n, entry in enumerate(spec.cluster.admin_ssh_keys):
        where = f"{source}: cluster.admin_ssh_keys[{n}]"
        if _is_key(entry):
            problem = key_problem(entry)
            if problem:
                problems.append(f"{where}: {problem}")
            continue
        path = Path(entry).expanduser()
        if not path.is_absolute():
            path = base / path
        try:
            keys = _key_file_lines(path)
        except NotAFile as exc:
            problems.append(
                f"{where}: {path} is {exc.kind}, not a regular file; give an OpenSSH public "
                "key file (the .pub) or the key itself"
            )
            continue
        except FileTooLarge:
            problems.append(
                f"{where}: {path} is larger than {_KEY_FILE_MAX // 1024} KiB: not an OpenSSH "
                "public key file (a node's StackScript data takes at most 65535 characters)"
            )
            continue
        except OSError as exc:
            problems.append(
                f"{where}: cannot read {path}: {exc.strerror}; give an OpenSSH public key or "
                "a readable file"
            )
            continue
        except UnicodeDecodeError:
            problems.append(
                f"{where}: {path} is not UTF-8 text: not an OpenSSH public key file (the "
                ".pub, not the private key)"
            )
            continue
        if not keys or not all(_is_key(k) for k in keys):
            problems.append(
                f"{where}: {path} is not an OpenSSH public key file (the .pub, not the private key)"
            )
            continue
        bad = next(((i, p) for i, k in enumerate(keys, 1) if (p := key_problem(k.strip()))), None)
        if bad:
            problems.append(f"{where}: {path}:{bad[0]}: {bad[1]}")
    return problems


def _vpc_problems(spec: Spec, source: str) -> list[str]:
    """The VPC subnet against the overlay's subnet and each region's count of nodes."""
    problems = []
    net = ipaddress.IPv4Network(spec.network.vpc_subnet)
    if spec.network.subnet and net.overlaps(ipaddress.IPv4Network(spec.network.subnet)):
        problems.append(
            f"{source}: network.vpc_subnet: {net} overlaps network.subnet "
            f"{spec.network.subnet}: a node's VPC address would be in the overlay's range; "
            "choose ranges apart"
        )
    room = net.num_addresses - 3  # the network, the gateway and the broadcast address
    counts = Counter(node.region for node in spec.nodes())
    crowded = sorted(region for region, count in counts.items() if count > room)
    if crowded:
        problems.append(
            f"{source}: network.vpc_subnet: {net} has room for {room} nodes, but "
            f"{', '.join(f'{r} has {counts[r]}' for r in crowded)}; give a larger range"
        )
    return problems


def _is_key(entry: str) -> bool:
    """Whether an admin_ssh_keys entry is a key line (else the path of a .pub file)."""
    return any(word in _KEY_TYPES for word in entry.split())


def key_problem(line: str) -> str | None:
    """Why `line` is not a public key line the nodes' authorized_keys can take as given, or
    None."""
    words = line.split(" ")
    if words[0] not in _KEY_TYPES:
        return (
            "options before the key type (authorized_keys options such as command=... are "
            "not taken); give the key alone"
        )
    if len(words) < 2 or not words[1]:
        return f"only the type {words[0]}, no key; paste the whole line of the .pub file"
    match = _KEY.fullmatch(line)
    if not match:
        if "," in line:
            return "its comment has a comma, which the StackScript's data cannot carry; remove it"
        return "not an OpenSSH public key line (type, key, comment of printable characters)"
    fields = _ssh_strings(match["blob"])
    if len(fields) < 2 or fields[0] != match["type"].encode():
        return f"its key is not a whole {match['type']} key (cut short or mistyped?)"
    return None


def _ssh_strings(blob_b64: str) -> list[bytes]:
    """The length-prefixed strings of an SSH public key blob; [] unless it is exactly that."""
    try:
        blob = base64.b64decode(blob_b64, validate=True)
    except ValueError:
        return []
    fields, at = [], 0
    while at < len(blob):
        size = int.from_bytes(blob[at : at + 4], "big")
        if at + 4 + size > len(blob):
            return []
        fields.append(blob[at + 4 : at + 4 + size])
        at += 4 + size
    return fields


def admin_keys(spec: Spec, base: Path) -> tuple[str, ...]:
    """The admin public keys, read from their files where given as paths."""
    keys: list[str] = []
    for entry in spec.cluster.admin_ssh_keys:
        if _is_key(entry):
            keys.append(entry)
            continue
        path = Path(entry).expanduser()
        keys += _key_file_lines(path if path.is_absolute() else base / path)
    return tuple(keys)


def _key_file_lines(path: Path) -> list[str]:
    """The lines of an admin key file that are not blank: NotAFile, FileTooLarge, OSError or
    UnicodeDecodeError when it cannot be one (/dev/zero, a FIFO, a directory, a huge file)."""
    text = read_capped(path, _KEY_FILE_MAX).decode("utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _depth(value: object) -> int:
    """How many arrays and tables deep a TOML document goes (without recursion)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth + 1)
            stack.extend(
                (v, depth + 1) for v in (item.values() if isinstance(item, dict) else item)
            )
    return deepest


def parse_spec(text: str, source: str = "swarm.toml", base: Path = Path(".")) -> Spec:
    too_deep = SpecError(
        [
            f"{source}: nested too deeply (arrays or tables more than {_MAX_DEPTH} levels within "
            "each other); a spec is a few levels deep: check that this is the spec"
        ]
    )
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError([f"{source}: not valid TOML: {exc}; fix the syntax"]) from None
    except RecursionError:  # tomllib parses nested arrays and tables by recursion
        raise too_deep from None
    if _depth(raw) > _MAX_DEPTH:  # nor would the JSON the spec is validated as take it
        raise too_deep
    try:
        # Validated as JSON, strictly: a count is an integer, not "1", 1.0 or true (TOML's
        # dates become strings, which no field takes).
        spec = Spec.model_validate_json(json.dumps(raw, default=str), strict=True)
    except ValidationError as exc:
        errors = exc.errors()
        # A container whose items failed also fails as a whole (an empty list of pools):
        # report the items only.
        locs = [e["loc"] for e in errors]
        errors = [
            e
            for e in errors
            if not any(
                other[: len(e["loc"])] == e["loc"] and len(other) > len(e["loc"]) for other in locs
            )
        ]
        raise SpecError(f"{source}: {_where(e['loc'])}: {_message(e)}" for e in errors) from None
    problems = _semantic_problems(spec, source, base)
    if problems:
        raise SpecError(problems)
    return spec


def load_spec(path: Path) -> Spec:
    try:
        # Capped, and a pipe is read too (`plan <(envsubst < spec.toml)`), but not forever:
        # /dev/zero as the spec is refused at 1 MiB.
        text = read_capped(path, _SPEC_MAX, regular_only=False).decode("utf-8")
    except NotAFile as exc:
        raise SpecError([f"{path}: cannot read the spec: it is {exc.kind}"]) from None
    except FileTooLarge:
        raise SpecError(
            [f"{path}: larger than 1 MiB, which no spec is; check that this is the spec"]
        ) from None
    except OSError as exc:
        raise SpecError([f"{path}: cannot read the spec: {exc.strerror}"]) from None
    except UnicodeDecodeError as exc:
        raise SpecError(
            [f"{path}: not UTF-8 text (byte {exc.start}); save the spec as UTF-8 (TOML is)"]
        ) from None
    return parse_spec(text, source=str(path), base=path.parent)


def with_bootstrap(spec: Spec, bootstrap: Bootstrap) -> Spec:
    """The spec with cluster.bootstrap as the command line says (`--bootstrap`)."""
    return spec.model_copy(
        update={"cluster": spec.cluster.model_copy(update={"bootstrap": bootstrap})}
    )


def check_against_catalog(
    spec: Spec, source: str, regions: Iterable[str], types: Iterable[str], images: Iterable[str]
) -> None:
    """Region, type and image names as the API knows them (not a list in the code)."""
    regions, types, images = set(regions), set(types), set(images)
    problems = []
    for region in spec.regions:
        if region not in regions:
            near = ", ".join(
                sorted(r for r in regions if r.split("-")[0] == region.split("-")[0])[:5]
            ) or ", ".join(sorted(regions)[:5])
            problems.append(
                f"{source}: regions.{region}: no such Linode region; regions like it: {near}"
            )
    if spec.cluster.type not in types:
        problems.append(
            f"{source}: cluster.type: no such Linode type {spec.cluster.type!r}; "
            "see `linode-cli linodes types`"
        )
    for region, settings in spec.regions.items():
        for n, pool in enumerate(settings.pools):
            if pool.type is not None and pool.type not in types:
                problems.append(
                    f"{source}: regions.{region}.pools[{n}].type: no such Linode type {pool.type!r}"
                )
    if spec.cluster.image not in images:
        problems.append(f"{source}: cluster.image: no such image {spec.cluster.image!r}")
    if problems:
        raise SpecError(problems)
