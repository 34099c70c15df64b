"""One service of a stack file made what swarm will run, for `swarmboot.compose`.

After its variables are substituted: the keys swarm does not have are refused (`build:`,
`restart:`, ...: `docker stack deploy` would ignore or refuse them), `x-swarmboot` says which
zones it is made for, `deploy` is checked (mode, replicas) and, for a zone's copy, placed by
`node.labels.zone`, `deploy.labels` become a mapping, `env_file:` files are read into
`environment:` (as `docker stack deploy` reads them: literally; `environment:` wins), an entry
without a value takes it from the caller's environment, and a bind mount with a relative
source is refused (it would be a path on the manager, mounted on every node).

Errors go through the `Context` (`swarmboot.compose`'s renderer), with their key paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn, Protocol

__all__ = ["MAX_ENV_FILE", "Context", "prepare", "references", "zones_of"]

MAX_ENV_FILE = 1 << 20

_USE_DEPLOY = "use deploy.resources"
_SWARM_IGNORES = "swarm services do not have it (docker stack deploy would ignore it); remove it"
# Service keys refused, with what to do instead: Docker's forbidden and unsupported ones.
_REFUSED = {
    "build": "swarm stacks deploy images: build and push it first (CI does), name it in image:",
    "restart": "use deploy.restart_policy (swarm ignores restart:)",
    "container_name": "swarm names a service's containers itself; remove it",
    "extends": "write the service out whole (YAML anchors can share parts)",
    "volume_driver": "declare a volume under the top-level volumes: with its driver",
    "volumes_from": "declare a volume under the top-level volumes: and mount it in each",
    "network_mode": "use networks:",
    **dict.fromkeys(
        ("cpu_quota", "cpu_shares", "cpuset", "mem_limit", "memswap_limit"), _USE_DEPLOY
    ),
    **dict.fromkeys(
        (
            "cgroupns_mode",
            "cgroup_parent",
            "devices",
            "domainname",
            "external_links",
            "ipc",
            "links",
            "mac_address",
            "pid",
            "privileged",
            "security_opt",
            "shm_size",
            "userns_mode",
        ),
        _SWARM_IGNORES,
    ),
}
_SCALARS = (str, int, float)  # an environment variable's or a label's value (Docker's schema)


class Context(Protocol):
    """What a service is prepared with: the caller's environment, the cluster's zones, and
    the renderer's errors and file reads."""

    env: Mapping[str, str]
    zones: tuple[str, ...]

    def fail(self, path: tuple, problem: str, hint: str | None = None) -> NoReturn: ...

    def read(self, name: Any, path: tuple, limit: int, what: str) -> bytes: ...


def _show(value: Any) -> str:
    """A value as YAML spells it, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else repr(value)


def _env_file(ctx: Context, name: Any, path: tuple) -> list[tuple[str, str]]:
    """KEY=VALUE pairs of an env file, read as `docker stack deploy` reads them."""
    data = ctx.read(name, path, MAX_ENV_FILE, "env file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        ctx.fail(path, f"{name}: line {line}: not UTF-8", "save it as UTF-8")
    pairs = []
    for n, raw in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        line = raw.removesuffix("\r").lstrip()
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        at = f"{name}: line {n}: "
        if not key:
            ctx.fail(path, at + "no variable name before '='")
        if " " in key or "\t" in key:
            ctx.fail(
                path,
                at + f"the variable {key!r} has a space in its name",
                "write KEY=value (env files have no export)",
            )
        if not eq:
            found = ctx.env.get(key)
            if found is None:
                ctx.fail(
                    path,
                    at + f"{key} takes its value from the environment, and it is not set",
                    f"set {key}, or write {key}=value",
                )
            value = found
        elif len(value) >= 2 and value[0] in "\"'" and value[-1] == value[0]:
            ctx.fail(
                path,
                at + f"the value of {key} is in quotes (docker stack deploy keeps them)",
                "write it without quotes: env files are read literally",
            )
        pairs.append((key, value))
    return pairs


def zones_of(ctx: Context, raw: Any, path: tuple) -> tuple[str, ...] | None:
    """The zones a service is made for, from its x-swarmboot (None: not per zone)."""
    if not isinstance(raw, dict):
        ctx.fail(path, "must be a mapping, e.g. {per_zone: true}")
    for key in raw:
        if key not in ("per_zone", "zones"):
            ctx.fail((*path, key), "is not an x-swarmboot setting", "use per_zone or zones")
    per_zone = raw.get("per_zone", False)
    if not isinstance(per_zone, bool):
        ctx.fail((*path, "per_zone"), "must be true or false", "write per_zone: true")
    if "zones" in raw and not per_zone:
        ctx.fail((*path, "zones"), "applies to a per-zone service", "add per_zone: true")
    if not per_zone:
        return None
    if not ctx.zones:
        ctx.fail((*path, "per_zone"), "the cluster has no zones to make copies for")
    chosen = raw.get("zones", list(ctx.zones))
    if not isinstance(chosen, list) or not chosen:
        ctx.fail((*path, "zones"), "must be a list of zones", f"from {', '.join(ctx.zones)}")
    for i, zone in enumerate(chosen):
        if zone not in ctx.zones:
            ctx.fail(
                (*path, "zones", i),
                f"{zone!r} is not a zone of the cluster",
                f"use {', '.join(ctx.zones)}",
            )
        if zone in chosen[:i]:
            ctx.fail((*path, "zones", i), f"{zone} is listed twice")
    return tuple(chosen)


def _scalar(ctx: Context, value: Any, path: tuple) -> None:
    """A value docker stack deploy takes for an environment variable or a label."""
    if isinstance(value, bool):
        ctx.fail(path, f"{_show(value)} is not a string", f"quote it: '{_show(value)}'")
    if value is not None and not isinstance(value, _SCALARS):
        ctx.fail(path, "must be a string")


def _labels(ctx: Context, value: Any, path: tuple) -> dict:
    """deploy.labels as a mapping, whether written as one or as a list of k=v."""
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            _scalar(ctx, item, (*path, key))
            out[key] = "" if item is None else item
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.partition("=")[0]:
                ctx.fail((*path, i), "must be key=value")
            key, _, text = item.partition("=")
            out[key] = text
    else:
        ctx.fail(path, "must be a mapping or a list of key=value")
    for key in out:
        if key.startswith("swarmboot."):
            ctx.fail((*path, key), "swarmboot.* labels are swarmboot's", "rename it")
    return out


def _deploy(ctx: Context, value: Any, path: tuple, zone: str | None) -> dict:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        ctx.fail(path, "must be a mapping")
    out = dict(value)
    mode = out.get("mode", "replicated")
    if mode not in ("replicated", "global"):
        ctx.fail((*path, "mode"), f"{_show(mode)} is not replicated or global")
    if "replicas" in out:
        replicas = out["replicas"]
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            ctx.fail((*path, "replicas"), f"{_show(replicas)} is not a whole number, 0 or more")
        if mode == "global":
            ctx.fail((*path, "replicas"), "a global service runs one task per node")
    if "labels" in out:
        out["labels"] = _labels(ctx, out["labels"], (*path, "labels"))
    if zone is not None:
        placement = out.get("placement") or {}
        if not isinstance(placement, dict):
            ctx.fail((*path, "placement"), "must be a mapping")
        constraints = placement.get("constraints") or []
        if not isinstance(constraints, list):
            ctx.fail((*path, "placement", "constraints"), "must be a list")
        for i, c in enumerate(constraints):
            if isinstance(c, str) and c.replace(" ", "").startswith("node.labels.zone"):
                ctx.fail(
                    (*path, "placement", "constraints", i),
                    "a per-zone service is placed by zone by swarmboot",
                    "remove it; x-swarmboot.zones chooses the zones",
                )
        placement = {**placement, "constraints": [*constraints, f"node.labels.zone=={zone}"]}
        out["placement"] = placement
    return out


def _environment(ctx: Context, service: dict, path: tuple) -> dict | None:
    """environment with env_file read into it (environment wins), and the values that
    come from the environment filled in; None when the service has neither."""
    merged: dict[str, Any] = {}
    if "env_file" in service:
        files = service["env_file"]
        names = [files] if isinstance(files, str) else files
        if not isinstance(names, list) or not all(isinstance(f, str) for f in names):
            ctx.fail((*path, "env_file"), "must be a path or a list of paths")
        for i, name in enumerate(names):
            at = (*path, "env_file") if isinstance(files, str) else (*path, "env_file", i)
            merged.update(_env_file(ctx, name, at))
    own = service.get("environment", {})
    at = (*path, "environment")
    if isinstance(own, list):
        for i, item in enumerate(own):
            if not isinstance(item, str):
                ctx.fail((*at, i), "must be KEY=value or KEY")
            key, eq, value = item.partition("=")
            merged[key] = value if eq else None
    elif isinstance(own, dict):
        for key, value in own.items():
            _scalar(ctx, value, (*at, key))
            merged[key] = value
    else:
        ctx.fail(at, "must be a mapping or a list of KEY=value")
    if not merged and "environment" not in service:
        return None
    out = {}
    for key, value in merged.items():
        if not key:
            ctx.fail(at, "an entry has no variable name")
        if value is None or value == "":
            # Docker fills these from the environment it runs in: here, the user's.
            found = ctx.env.get(key)
            if found is None and value is None:
                ctx.fail(
                    (*at, key),
                    f"takes its value from the environment, and {key} is not set",
                    f"set {key}, or give it a value in the file",
                )
            value = value if found is None else found
        out[key] = value
    return out


def _volumes(ctx: Context, value: Any, path: tuple) -> None:
    if not isinstance(value, list):
        ctx.fail(path, "must be a list")
    for i, item in enumerate(value):
        if isinstance(item, str):
            # SOURCE:TARGET[:MODE]; a source starting with . or ~ is a path, else a volume.
            source, sep, _ = item.partition(":")
            relative = bool(sep) and source.startswith((".", "~"))
        elif isinstance(item, dict):
            source = item.get("source")
            relative = item.get("type") == "bind" and not str(source).startswith("/")
            if relative and not isinstance(source, str):
                ctx.fail((*path, i), "a bind mount needs source: (an absolute path on the nodes)")
        else:
            ctx.fail((*path, i), "must be a string or a mapping")
        if relative:
            ctx.fail(
                (*path, i),
                f"{source} is a path here, but the bind mount is made on each node",
                "use an absolute path on the nodes, a named volume, or a config",
            )


def references(ctx: Context, service: dict, key: str, path: tuple) -> list[str]:
    """The names a service's networks/configs/secrets refer to."""
    value = service[key]
    if isinstance(value, dict) and key == "networks":
        names = list(value)
        for name, item in value.items():
            if item is not None and not isinstance(item, dict):
                ctx.fail((*path, key, name), "must be a mapping (aliases:, ...) or empty")
        return names
    if not isinstance(value, list):
        ctx.fail((*path, key), "must be a list")
    names = []
    for i, item in enumerate(value):
        if isinstance(item, dict) and key != "networks":
            item = item.get("source")
        if not isinstance(item, str):
            what = "a name" if key == "networks" else "a name or a mapping with source:"
            ctx.fail((*path, key, i), f"must be {what}")
        names.append(item)
    return names


def prepare(ctx: Context, service: dict, path: tuple, zone: str | None) -> dict:
    """A service (its variables substituted) as the stack will run it: for `zone`'s copy
    when given. Keys stay in the user's order; `environment` takes `env_file`'s place."""
    for key in service:
        if key in _REFUSED:
            ctx.fail((*path, key), "is not for a swarm service", _REFUSED[key])
    image = service.get("image")
    if not isinstance(image, str) or not image.strip():
        ctx.fail(
            (*path, "image"),
            "is missing" if image is None else "must be an image name",
            "name the image to run (swarm stacks deploy images, they do not build them)",
        )
    environment = _environment(ctx, service, path)
    if "volumes" in service:
        _volumes(ctx, service["volumes"], (*path, "volumes"))
    out = {}
    for key, value in service.items():
        if key in ("env_file", "environment"):
            if environment is not None and "environment" not in out:
                out["environment"] = environment
        else:
            out[key] = value
    out["deploy"] = _deploy(ctx, service.get("deploy"), (*path, "deploy"), zone)
    return out
