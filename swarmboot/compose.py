"""A user's Compose file made into the exact text `swarmboot deploy` hands a manager.

`deploy` runs `docker stack deploy --compose-file - STACK` on a manager, whose environment and
working directory are not the user's. So everything that Docker would take from where it runs
is done here, by `render_stack` (pure: it reads only the files the stack file names):

- Variables are substituted from the caller's environment by Compose's rules
  (`swarmboot.interpolation`; an unset variable without a default is an error, not ""), in
  every string value of `services`, `networks`, `volumes`, `configs` and `secrets`; values that
  Docker casts after substitution (`deploy.replicas: ${N}`) are cast as Docker casts them.
  In the text, every `$` is then written `$$`: the manager substitutes nothing.
- A service with `x-swarmboot: {per_zone: true}` (optionally `zones: [...]`, a subset of the
  cluster's) becomes one service per zone, `<name>-<zone>`, placed by `node.labels.zone` and
  with `${zone}` set to its zone: the services each zone's load balancer finds as
  `tasks.<name>-<zone>` (`docker stack deploy` gives a service its short name as an alias on
  each of its networks; the cluster's overlay is one).
- `env_file:` files are read here (as `docker stack deploy` reads them: literally) into
  `environment:`, and an entry that takes its value from the environment gets it here.
- A config made from a file becomes a `StackConfig` named by its content's hash, made by
  `deploy` before the stack, and `external` in the text: a changed file is a new config, and
  the services using it roll. Secrets must be external (`swarmboot secret set`); each is
  given its newest version's name.
- Each service is labelled with the digest of what was rendered (`swarmboot.deploy`) and the
  cluster (`swarmboot.cluster`), so that `deploy` can tell what already runs.

Anything that would otherwise be mis-handled quietly on the manager is refused, with its key
path and the fix: relative bind mounts, `build:`, the options swarm ignores, files outside the
stack file's folder, references to networks, configs and secrets not declared. The rules are
in docs/deploy-stack.md.

YAML is read and written as Docker's Go parser reads it (`swarmboot.compose_yaml`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import yaml

from swarmboot import compose_yaml
from swarmboot.compose_service import prepare, references, zones_of
from swarmboot.errors import ExitCode, SwarmbootError
from swarmboot.files import FileTooLarge, NotAFile, read_capped
from swarmboot.interpolation import Lookup, TemplateProblem, escape, substitute

__all__ = [
    "CLUSTER_LABEL",
    "DIGEST_LABEL",
    "Rendered",
    "StackConfig",
    "StackError",
    "load_stack",
    "render_stack",
    "stack_name_ok",
]

DIGEST_LABEL = "swarmboot.deploy"  # as swarmboot.stacks reads it
CLUSTER_LABEL = "swarmboot.cluster"
# The version a file without one is given (the newest Debian 12's docker CLI reads).
DEFAULT_VERSION = "3.8"
MAX_STACK_FILE = 1 << 20
MAX_CONFIG = 500 * 1024  # swarm's limit on a config's size
# A few hundred values make a large stack file; aliases can make billions of a small one.
MAX_VALUES = 100_000
MAX_DEPTH = 64

# A stack's services, networks and configs are named `<stack>_<key>`: no `_` in the stack's
# name, so that no two stacks' names can meet. Swarm service names are at most 63 long.
_STACK_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
_SERVICE_NAME = re.compile(r"[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?")
_CONFIG_KEY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?")
_VERSION = re.compile(r"3(?:\.[0-9]+)?")
_SECTIONS = ("version", "services", "networks", "volumes", "configs", "secrets")
_SECRET_HINT = (
    "run `swarmboot secret set <spec> {key}` (the value from stdin), then write external: true"
)
_FILE_HINT = "put the file in the stack file's folder (or below it), named relative to that folder"


class StackError(SwarmbootError):
    """The stack file cannot be deployed as written: `<file>: <key path>: <problem>`."""

    exit_code = ExitCode.BAD_SPEC


@dataclass(frozen=True)
class StackConfig:
    """A file the stack reads, made a swarm config by swarmboot before the deploy."""

    key: str  # its key under the top-level `configs:`
    name: str  # f"{stack}_{key}-{sha256(content).hexdigest()[:12]}"
    content: bytes = field(repr=False)


@dataclass(frozen=True)
class Rendered:
    stack: str
    text: str  # the Compose YAML for `docker stack deploy -c -`
    digest: str  # sha256 of what was rendered (before its labels) and its configs' names
    services: tuple[str, ...]  # the swarm services, f"{stack}_{name}", sorted
    configs: tuple[StackConfig, ...]  # to make (when missing) before the deploy
    secrets: tuple[str, ...]  # the keys of the (external) secrets it declares, sorted


def stack_name_ok(name: str) -> bool:
    """Whether `name` can name a stack: lowercase letters, digits and '-', 1 to 40 long,
    starting and ending with a letter or digit."""
    return isinstance(name, str) and _STACK_NAME.fullmatch(name) is not None


def load_stack(path: Path) -> dict:
    """The Compose file at `path` as a mapping (YAML read as Docker reads it); StackError for
    a file that cannot be read, is not UTF-8, not YAML, not a mapping or has no services."""
    where = str(path)
    try:
        data = read_capped(Path(path), MAX_STACK_FILE)
    except FileNotFoundError:
        raise StackError(
            f"{where}: no such file", hint="give the path of the Compose file"
        ) from None
    except NotAFile as exc:
        raise StackError(f"{where}: is {exc.kind}, not a file") from None
    except FileTooLarge:
        raise StackError(f"{where}: larger than {MAX_STACK_FILE} bytes") from None
    except OSError as exc:
        raise StackError(f"{where}: cannot be read ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise StackError(f"{where}: line {line}: not UTF-8", hint="save it as UTF-8") from None
    try:
        doc = compose_yaml.load(text)
    except yaml.MarkedYAMLError as exc:
        raise StackError(f"{where}: {_yaml_problem(exc)}", hint="fix the YAML there") from None
    except yaml.YAMLError as exc:
        raise StackError(f"{where}: {' '.join(str(exc).split())}", hint="fix the YAML") from None
    except RecursionError:
        raise StackError(f"{where}: nested too deeply") from None
    if not isinstance(doc, dict):
        raise StackError(
            f"{where}: is {'empty' if doc is None else 'not a mapping'}",
            hint="a Compose file is a mapping with services: (docs/deploy-stack.md)",
        )
    if "services" not in doc:
        raise StackError(f"{where}: has no services:", hint="declare the stack's services")
    return doc


def render_stack(
    doc: dict,
    *,
    source: str,
    stack: str,
    zones: tuple[str, ...],
    env: Mapping[str, str],
    base: Path,
    secret_versions: Mapping[str, str],
    cluster: str,
) -> Rendered:
    """What `docker stack deploy -c - STACK` is handed for `doc` (see the module's text).
    `source` names the file in messages, `base` is its folder (files are read from there),
    `zones` are the cluster's, `env` the caller's environment, `secret_versions` each
    secret's newest versioned name. Pure but for reading the files the stack names; the same
    arguments give the same text."""
    return _Render(source, stack, zones, env, base, secret_versions).run(doc, cluster)


def _yaml_problem(exc: yaml.MarkedYAMLError) -> str:
    """A YAML error in one line: where, what, and what it was reading."""
    mark, problem = exc.problem_mark, exc.problem
    if mark is None or problem is None:
        mark, problem = exc.context_mark, exc.context
    out = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    out += " ".join(str(problem or "not valid YAML").split())
    if exc.context and exc.context_mark and exc.context != problem:
        out += f" ({exc.context} from line {exc.context_mark.line + 1})"
    return out


def _where(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


def _to_int(text: str) -> int:
    if not re.fullmatch(r"[-+]?[0-9]+", text):
        raise ValueError("an integer")
    return int(text)


def _to_float(text: str) -> float:
    if not re.fullmatch(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?", text):
        raise ValueError("a number")
    return float(text)


def _to_bool(text: str) -> bool:
    word = text.lower()
    if word in ("y", "yes", "true", "on"):
        return True
    if word in ("n", "no", "false", "off"):
        return False
    raise ValueError("true or false")


# Where Docker casts a string that substitution changed (its loader's interpolateTypeCastMapping).
# "*" is any key or index, "[]" any index.
_CASTS: dict[tuple[str, ...], Callable[[str], Any]] = {
    **{
        ("services", "*", *p): _to_int
        for p in (
            ("configs", "[]", "mode"),
            ("secrets", "[]", "mode"),
            ("healthcheck", "retries"),
            ("deploy", "replicas"),
            ("deploy", "update_config", "parallelism"),
            ("deploy", "rollback_config", "parallelism"),
            ("deploy", "restart_policy", "max_attempts"),
            ("deploy", "placement", "max_replicas_per_node"),
            ("ports", "[]", "target"),
            ("ports", "[]", "published"),
            ("ulimits", "*"),
            ("ulimits", "*", "hard"),
            ("ulimits", "*", "soft"),
            ("oom_score_adj",),
        )
    },
    ("services", "*", "deploy", "update_config", "max_failure_ratio"): _to_float,
    ("services", "*", "deploy", "rollback_config", "max_failure_ratio"): _to_float,
    **{
        ("services", "*", *p): _to_bool
        for p in (
            ("healthcheck", "disable"),
            ("privileged",),
            ("read_only",),
            ("stdin_open",),
            ("tty",),
            ("volumes", "[]", "read_only"),
            ("volumes", "[]", "volume", "nocopy"),
        )
    },
    **{
        (section, "*", key): _to_bool
        for section, key in (
            ("networks", "external"),
            ("networks", "internal"),
            ("networks", "attachable"),
            ("volumes", "external"),
            ("secrets", "external"),
            ("configs", "external"),
        )
    },
}


def _cast_for(path: tuple) -> Callable[[str], Any] | None:
    for pattern, cast in _CASTS.items():
        if len(pattern) == len(path) and all(
            p == "*" or (p == "[]" and isinstance(x, int)) or p == x
            for p, x in zip(pattern, path, strict=True)
        ):
            return cast
    return None


def _escaped(value: Any) -> Any:
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, dict):
        return {k: _escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    return value


class _Render:
    def __init__(
        self,
        source: str,
        stack: str,
        zones: tuple[str, ...],
        env: Mapping[str, str],
        base: Path,
        versions: Mapping[str, str],
    ) -> None:
        self.source = source
        self.stack = stack
        self.zones = tuple(zones)
        self.env = env
        self.base = Path(base)
        self.versions = versions
        self.values = 0
        self.files: dict[Path, bytes] = {}

    # --- errors and the walk ---------------------------------------------------------------

    def fail(self, path: tuple, problem: str, hint: str | None = None) -> NoReturn:
        where = f"{self.source}: {_where(path)}: " if path else f"{self.source}: "
        raise StackError(where + problem, hint=hint)

    def lookup(self, zone: str | None, service: str | None) -> Lookup:
        def find(name: str) -> str | None:
            if name != "zone":
                return self.env.get(name)
            if zone is not None:
                return zone
            raise TemplateProblem(
                "${zone} is set only in a per-zone service",
                f"add x-swarmboot: {{per_zone: true}} to services.{service}"
                if service
                else "use ${zone} in a per-zone service's own keys",
            )

        return find

    def interpolate(self, value: Any, path: tuple, lookup: Lookup) -> Any:
        """`value` with its strings substituted, as new containers."""
        self.values += 1
        if self.values > MAX_VALUES:
            self.fail(path, f"more than {MAX_VALUES} values once YAML aliases are expanded")
        if len(path) > MAX_DEPTH:
            self.fail(path, f"nested more than {MAX_DEPTH} levels (an alias inside itself?)")
        if isinstance(value, str):
            try:
                new = substitute(value, lookup)
            except TemplateProblem as p:
                self.fail(path, p.problem, p.hint)
            cast = _cast_for(path) if new != value else None
            if cast is None:
                return new
            try:
                return cast(new)
            except ValueError as exc:
                self.fail(
                    path,
                    f"{value!r} is not {exc} once substituted",
                    f"give it {exc} (docker stack deploy would refuse it)",
                )
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    self.fail(path, f"the key {key!r} is not a string", "quote it")
                out[key] = self.interpolate(item, (*path, key), lookup)
            return out
        if isinstance(value, list):
            return [self.interpolate(item, (*path, i), lookup) for i, item in enumerate(value)]
        self.fail(
            path,
            f"a {type(value).__name__} is not a value of a Compose file",
            "write a string, a number, true or false, a list or a mapping",
        )

    # --- files -----------------------------------------------------------------------------

    def read(self, name: Any, path: tuple, limit: int, what: str) -> bytes:
        """The file `name` (relative to the stack file's folder, and inside it) as bytes."""
        if not isinstance(name, str) or not name:
            self.fail(path, f"must be the path of a {what}")
        if "\0" in name:
            self.fail(path, f"{name!r} is not a path")
        rel = Path(name)
        if rel.is_absolute() or name.startswith("~"):
            self.fail(path, f"{name} is an absolute path", _FILE_HINT)
        if ".." in rel.parts:
            self.fail(path, f"{name} leaves the stack file's folder", _FILE_HINT)
        try:
            real = (self.base / rel).resolve(strict=True)
        except FileNotFoundError:
            self.fail(
                path,
                f"{name}: no such file",
                "fix the path: it is relative to the folder of "
                "the stack file, and the file must be in it",
            )
        except (OSError, RuntimeError) as exc:
            self.fail(path, f"{name}: cannot be read ({getattr(exc, 'strerror', None) or exc})")
        if not real.is_relative_to(self.base.resolve()):
            self.fail(path, f"{name} is a link out of the stack file's folder", _FILE_HINT)
        if real not in self.files:
            try:
                self.files[real] = read_capped(real, limit)
            except NotAFile as exc:
                self.fail(path, f"{name} is {exc.kind}, not a file")
            except FileTooLarge:
                self.fail(path, f"{name} is larger than {limit} bytes")
            except OSError as exc:
                self.fail(path, f"{name}: cannot be read ({exc.strerror or exc})")
        return self.files[real]

    # --- the document ----------------------------------------------------------------------

    def mapping(self, doc: dict, key: str) -> dict:
        value = doc.get(key, {})
        if not isinstance(value, dict):
            self.fail((key,), "must be a mapping")
        return value

    def services(self, raw: Any) -> tuple[dict[str, dict], dict[str, str]]:
        if not isinstance(raw, dict) or not raw:
            self.fail(("services",), "must be a mapping of one service or more")
        out: dict[str, dict] = {}
        origin: dict[str, str] = {}
        for name, service in raw.items():
            path = ("services", name)
            if not isinstance(name, str) or not _SERVICE_NAME.fullmatch(name):
                self.fail(
                    path,
                    f"{name!r} is not a service name swarm takes",
                    "use lowercase letters, digits, '-' and '_', starting and ending with a "
                    "letter or digit",
                )
            if not isinstance(service, dict):
                self.fail(path, "must be a mapping (image:, deploy:, ...)")
            zones = (
                zones_of(self, service["x-swarmboot"], (*path, "x-swarmboot"))
                if "x-swarmboot" in service
                else None
            )
            body = {k: v for k, v in service.items() if k != "x-swarmboot"}
            for zone in zones or (None,):
                final = name if zone is None else f"{name}-{zone}"
                done = self.interpolate(body, path, self.lookup(zone, name))
                if final in out:
                    self.fail(
                        path,
                        f"{final} would be two services, from services.{origin[final]} and "
                        f"services.{name}",
                        "rename one (a per-zone service's copies are <name>-<zone>)",
                    )
                full = f"{self.stack}_{final}"
                if len(full) > 63:
                    self.fail(path, f"the swarm service {full} would be longer than 63 characters")
                out[final] = prepare(self, done, path, zone)
                origin[final] = name
        return out, origin

    def configs(self, raw: dict) -> tuple[dict, tuple[StackConfig, ...]]:
        out: dict[str, Any] = {}
        made = []
        for key, config in raw.items():
            path = ("configs", key)
            if not isinstance(config, dict):
                self.fail(path, "must be a mapping: file: ./path, or external: true")
            external = config.get("external", False)
            if "file" not in config:
                if external is True or isinstance(external, dict):
                    out[key] = config
                    continue
                self.fail(
                    path,
                    "needs file: (a file by the stack file) or external: true",
                    "swarmboot makes configs from files; docker stack deploy takes no content:",
                )
            if external not in (False, None):
                self.fail((*path, "external"), "a config is made from file: or is external")
            for extra in config:
                if extra not in ("file", "external") and not extra.startswith("x-"):
                    self.fail(
                        (*path, extra),
                        "is not carried to the config swarmboot makes from the file",
                        "remove it (the config is named <stack>_<key>-<hash of the file>)",
                    )
            if not _CONFIG_KEY.fullmatch(key):
                self.fail(path, f"{key!r} cannot name a swarm config", "use letters, digits, . _ -")
            content = self.read(config["file"], (*path, "file"), MAX_CONFIG, "config file")
            name = f"{self.stack}_{key}-{hashlib.sha256(content).hexdigest()[:12]}"
            if len(name) > 64:
                self.fail(path, f"the config's name {name} would be longer than 64 characters")
            out[key] = {"external": True, "name": name}
            made.append(StackConfig(key, name, content))
        return out, tuple(made)

    def secrets(self, raw: dict) -> dict:
        out: dict[str, Any] = {}
        for key, secret in raw.items():
            path = ("secrets", key)
            hint = _SECRET_HINT.format(key=key)
            if not isinstance(secret, dict):
                self.fail(path, "must be a mapping with external: true", hint)
            for made_from in ("file", "environment"):
                if made_from in secret:
                    self.fail(
                        (*path, made_from), "swarmboot does not send secrets in a stack", hint
                    )
            external = secret.get("external")
            if isinstance(external, dict):
                self.fail((*path, "external"), "takes true", "write external: true and name: NAME")
            if external is not True:
                self.fail(path, "must be external: true", hint)
            for extra in secret:
                if extra not in ("external", "name") and not extra.startswith("x-"):
                    self.fail((*path, extra), "is not for an external secret", "remove it")
            logical = secret.get("name", key)
            if not isinstance(logical, str) or not logical:
                self.fail((*path, "name"), "must be the secret's name")
            versioned = self.versions.get(logical)
            out[key] = {**secret, "name": versioned} if versioned else dict(secret)
        return out

    def check_refs(self, services: dict, origin: dict, declared: dict[str, dict]) -> None:
        for final, service in services.items():
            path = ("services", origin[final])
            for key, names in declared.items():
                if key not in service:
                    continue
                for name in references(self, service, key, path):
                    if name not in names and not (key == "networks" and name == "default"):
                        self.fail(
                            (*path, key),
                            f"{name!r} is not declared under the top-level {key}:",
                            f"declare it ({key}: {{{name}: {{external: true}}}} for one made "
                            "outside the stack)",
                        )

    def run(self, doc: dict, cluster: str) -> Rendered:
        if not stack_name_ok(self.stack):
            raise StackError(
                f"{self.stack!r} is not a valid stack name",
                hint="use lowercase letters, digits and '-' (at most 40), starting and ending "
                "with a letter or digit",
            )
        if self.stack == f"{cluster}-lb":  # swarmboot.lb.stack_name's
            raise StackError(
                f"{self.stack!r} is the stack of the cluster's load balancers",
                hint="name the application's stack otherwise (--stack)",
            )
        if not isinstance(doc, dict):
            self.fail((), "is not a mapping")
        for key in doc:
            if not isinstance(key, str):
                self.fail((), f"the key {key!r} is not a string")
            if key == "x-swarmboot":
                self.fail((key,), "goes under a service", "move it into the service it is for")
            if key not in _SECTIONS and not key.startswith("x-"):
                self.fail(
                    (key,),
                    "is not a section docker stack deploy reads",
                    "the stack's name is given by --stack" if key == "name" else "remove it",
                )
        if "version" in doc and not (
            isinstance(doc["version"], str) and _VERSION.fullmatch(doc["version"])
        ):
            self.fail(
                ("version",), "must be a version 3 as a string", 'write version: "3.8" or none'
            )
        services, origin = self.services(doc.get("services"))
        top = self.lookup(None, None)
        sections = {
            key: self.interpolate(self.mapping(doc, key), (key,), top)
            for key in ("networks", "volumes", "configs", "secrets")
        }
        for key in ("networks", "volumes"):
            for name, value in sections[key].items():
                if value is not None and not isinstance(value, dict):
                    self.fail((key, name), "must be a mapping or empty")
        self.check_refs(
            services,
            origin,
            {k: sections[k] for k in ("networks", "configs", "secrets")},
        )
        sections["configs"], made = self.configs(sections["configs"])
        sections["secrets"] = self.secrets(sections["secrets"])
        # Docker's CLI before 25 (Debian 12's 20.10) refuses a file without a version.
        out: dict[str, Any] = {"version": doc.get("version", DEFAULT_VERSION)}
        for key in doc:
            if key == "version":
                continue
            elif key == "services":
                out[key] = services
            elif key in sections:
                out[key] = sections[key]
        canonical = json.dumps(
            {"stack": out, "configs": [c.name for c in made]},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        for service in services.values():
            labels = service["deploy"].setdefault("labels", {})
            labels[DIGEST_LABEL] = digest
            labels[CLUSTER_LABEL] = cluster
        text = f"# rendered by swarmboot for stack {self.stack}\n" + compose_yaml.dump(
            _escaped(out)
        )
        return Rendered(
            stack=self.stack,
            text=text,
            digest=digest,
            services=tuple(sorted(f"{self.stack}_{name}" for name in services)),
            configs=made,
            secrets=tuple(sorted(sections["secrets"])),
        )
