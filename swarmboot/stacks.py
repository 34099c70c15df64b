"""Stacks, their services' rollouts, configs and secrets, as a manager sees them.

What `deploy` and `secret set` read and change through a manager: the services of a stack
with their update status and tasks (the docker SDK, over the pinned SSH session), `docker
stack deploy` and `docker service rollback` (the docker CLI on the manager: stacks and
rollbacks are the CLI's, the SDK has neither), and swarm configs and secrets made through the
SDK, whose content travels inside the SSH session, never on a command line.

A registry login for the deploy goes into a Docker client configuration on the manager that
lives for that one command: written with mode 0600 in a directory of root's, read by `docker
stack deploy --with-registry-auth` (which hands the login to the swarm, so that every node
pulls with it), and removed when the command ends, however it ends.
"""

from __future__ import annotations

import base64
import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from swarmboot.errors import SwarmbootError
from swarmboot.remote import Remote, RemoteError

__all__ = [
    "DIGEST_LABEL",
    "REMOTE_DIR",
    "SECRET_LABEL",
    "RegistryAuth",
    "StackService",
    "StackTask",
    "SwarmSecret",
    "deploy_script",
    "read_service",
]

# The label each service of a deploy carries: the digest of what was deployed.
DIGEST_LABEL = "swarmboot.deploy"
# The labels of a secret made by `secret set`: its logical name, version and a keyed hash.
SECRET_LABEL = "swarmboot.secret"
VERSION_LABEL = "swarmboot.version"
HMAC_LABEL = "swarmboot.hmac"
# What swarm answers an update based on a version of the service that is no longer its
# newest; and how often a rollback is asked when it does.
OUT_OF_SEQUENCE = "update out of sequence"
ROLLBACK_TRIES = 5
# Where a manager keeps a deploy's stack file while `docker stack deploy` reads it.
REMOTE_DIR = "/root/.swarmboot/deploy"


@dataclass(frozen=True)
class StackTask:
    slot: int  # 0 for a global service's tasks
    node: str  # the node id ("" before it is placed)
    desired: str
    state: str
    error: str
    at: str  # when its status last changed (RFC 3339, sorts as time)
    current: bool  # of the service's spec now (not one an update replaces)


@dataclass(frozen=True)
class StackService:
    name: str
    digest: str | None  # the DIGEST_LABEL of its spec now
    previous_digest: str | None  # ... of its previous spec (None: none, or not ours)
    replicas: int | None  # None: global
    update: str | None  # UpdateStatus.State: updating, paused, completed, rollback_*
    update_message: str
    tasks: tuple[StackTask, ...]
    has_previous: bool = False


@dataclass(frozen=True)
class SwarmSecret:
    name: str
    logical: str
    version: int
    hmac: str


@dataclass(frozen=True)
class RegistryAuth:
    """Logins for `docker stack deploy --with-registry-auth`: registry -> "user:password"
    in base64, as a Docker client configuration's `auths` holds them (secrets)."""

    auths: dict[str, str] = field(repr=False)

    def registries(self) -> tuple[str, ...]:
        return tuple(sorted(self.auths))

    def config_json(self) -> str:
        return json.dumps({"auths": {r: {"auth": a} for r, a in sorted(self.auths.items())}})

    @classmethod
    def login(cls, registry: str, user: str, password: str) -> RegistryAuth:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return cls({registry: token})


def _error(text: str) -> SwarmbootError:
    from swarmboot.swarm import SwarmError  # swarm.py builds its driver on this module

    return SwarmError(text)


# Filled in on the service's task template only (the engine's default runtime), never on
# its tasks' specs.
_TEMPLATE_ONLY = ("Runtime",)


def _current(task: dict[str, Any], template: dict[str, Any]) -> bool:
    """A task of the service's spec now: its spec is the service's task template (swarm
    replaces a task whose spec differs), but for what the engine fills in on the template
    alone."""
    spec = task.get("Spec") or {}
    keys = (set(spec) | set(template)) - set(_TEMPLATE_ONLY)
    return all(spec.get(k) == template.get(k) for k in keys)


def read_service(service: dict[str, Any], tasks: list[dict[str, Any]]) -> StackService:
    """A service's state from the Engine API's answers (`/services/ID`, `/tasks`)."""
    spec = service["Spec"]
    previous = service.get("PreviousSpec") or {}
    mode = spec.get("Mode") or {}
    replicas = None if "Global" in mode else int((mode.get("Replicated") or {}).get("Replicas", 1))
    status = service.get("UpdateStatus") or {}
    template = spec.get("TaskTemplate") or {}
    return StackService(
        name=spec["Name"],
        digest=(spec.get("Labels") or {}).get(DIGEST_LABEL),
        previous_digest=(previous.get("Labels") or {}).get(DIGEST_LABEL),
        replicas=replicas,
        update=status.get("State") or None,
        update_message=status.get("Message", ""),
        has_previous=bool(previous),
        tasks=tuple(
            sorted(
                (
                    StackTask(
                        slot=int(t.get("Slot") or 0),
                        node=t.get("NodeID", ""),
                        desired=t.get("DesiredState", ""),
                        state=t["Status"]["State"],
                        error=t["Status"].get("Err") or "",
                        at=t["Status"].get("Timestamp", ""),
                        current=_current(t, template),
                    )
                    for t in tasks
                ),
                key=lambda t: (t.slot, t.at),
            )
        ),
    )


def deploy_script(where: str, stack: str, *, prune: bool, auth: bool, resolve: str) -> str:
    """The manager's command for a deploy of `where`/stack.yml: with a login, a Docker
    client configuration in `where`/docker that the command removes as it ends."""
    q = shlex.quote
    flags = ("--prune " if prune else "") + f"--resolve-image {q(resolve)} "
    # A clean environment: the docker CLI fills a stack file's empty values (`KEY: ''`) from
    # its own, and the session's is not the user's.
    clean = "env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root"
    # The file (values from the user's environment) and the login go as the command ends.
    head = f"cd {q(where)} && trap 'rm -rf docker stack.yml' EXIT && trap 'exit 1' HUP INT TERM"
    if not auth:
        return f"{head} && {clean} docker stack deploy {flags}-c stack.yml {q(stack)}"
    return (
        f"{head} && {clean} DOCKER_CONFIG={q(where)}/docker docker stack deploy {flags}"
        f"--with-registry-auth -c stack.yml {q(stack)}"
    )


class StackCalls:
    """The calls of `SwarmDriver` about stacks, for `DockerSwarm` (its `_call`)."""

    _call: Any
    _sleep: Callable[[float], None] = staticmethod(time.sleep)

    def stack_services(self, manager: Remote, stack: str) -> tuple[StackService, ...]:
        def read(client: Any) -> tuple[StackService, ...]:
            found = client.api.services(filters={"label": f"com.docker.stack.namespace={stack}"})
            out = []
            for service in found:
                tasks = client.api.tasks(filters={"service": service["ID"]})
                out.append(read_service(service, tasks))
            return tuple(sorted(out, key=lambda s: s.name))

        return self._call(manager, f"reading the services of stack {stack}", read)

    def deploy_stack(
        self,
        manager: Remote,
        stack: str,
        text: str,
        *,
        prune: bool = False,
        auth: RegistryAuth | None = None,
        resolve: str = "always",
    ) -> None:
        where = f"{REMOTE_DIR}/{stack}"
        docker_dir = shlex.quote(f"{where}/docker")
        try:
            # The folders, and a login's left by a deploy killed on the way gone: one call.
            manager.run(
                f"mkdir -p -m 0700 {REMOTE_DIR} {shlex.quote(where)} && rm -rf {docker_dir}"
                + (f" && mkdir -m 0700 {docker_dir}" if auth is not None else "")
            )
            manager.put_file(f"{where}/stack.yml", text, mode=0o600)
            if auth is not None:
                manager.put_file(f"{where}/docker/config.json", auth.config_json(), mode=0o600)
            script = deploy_script(
                where, stack, prune=prune, auth=auth is not None, resolve=resolve
            )
            manager.run(script, timeout=600)
        except RemoteError as exc:
            raise _error(f"docker stack deploy of {stack} failed: {exc.message}") from None

    def rollback_service(self, manager: Remote, name: str) -> None:
        """`docker service rollback`, asked again while swarm answers "update out of
        sequence": the service changed between the CLI's read and its update (its own update
        being paused or rolled back at that moment), which the next try reads."""
        command = f"docker service rollback --detach {shlex.quote(name)} >/dev/null"
        for attempt in range(1, ROLLBACK_TRIES + 1):
            try:
                manager.run(command)
                return
            except RemoteError as exc:
                if OUT_OF_SEQUENCE not in exc.message or attempt == ROLLBACK_TRIES:
                    raise _error(f"docker service rollback {name} failed: {exc.message}") from None
            self._sleep(1.0)

    def ensure_config(self, manager: Remote, name: str, content: bytes, labels: dict) -> bool:
        """Make the swarm config `name` unless it exists; whether it was made."""
        import docker.errors

        def make(client: Any) -> bool:
            if any(c.name == name for c in client.configs.list(filters={"name": name})):
                return False
            try:
                client.configs.create(name=name, data=content, labels=labels)
            except docker.errors.APIError as exc:
                if exc.status_code == 409:  # made meanwhile
                    return False
                raise
            return True

        return self._call(manager, f"making config {name}", make)

    def config_names(self, manager: Remote, prefix: str) -> frozenset[str]:
        def read(client: Any) -> frozenset[str]:
            found = client.configs.list(filters={"name": prefix})
            return frozenset(c.name for c in found if c.name.startswith(prefix))

        return self._call(manager, f"reading the configs named {prefix}…", read)

    def secrets(self, manager: Remote, logical: str) -> tuple[SwarmSecret, ...]:
        """The versions of a secret `secret set` made, oldest first."""

        def read(client: Any) -> tuple[SwarmSecret, ...]:
            found = client.secrets.list(filters={"label": f"{SECRET_LABEL}={logical}"})
            out = []
            for s in found:
                labels = s.attrs["Spec"].get("Labels") or {}
                try:
                    version = int(labels.get(VERSION_LABEL, ""))
                except ValueError:
                    continue
                out.append(SwarmSecret(s.name, logical, version, labels.get(HMAC_LABEL, "")))
            return tuple(sorted(out, key=lambda s: s.version))

        return self._call(manager, f"reading the versions of secret {logical}", read)

    def create_secret(self, manager: Remote, name: str, value: bytes, labels: dict) -> None:
        import docker.errors

        def make(client: Any) -> None:
            try:
                client.secrets.create(name=name, data=value, labels=labels)
            except docker.errors.APIError as exc:
                if exc.status_code != 409:
                    raise

        shown = (value.decode(errors="replace"),)
        self._call(manager, f"making secret {name}", make, secrets=shown)

    def remove_secrets(self, manager: Remote, names: list[str]) -> list[str]:
        """Remove these secrets; one a service still uses stays (Docker refuses)."""
        import docker.errors

        def remove(client: Any) -> list[str]:
            removed = []
            for name in names:
                try:
                    client.secrets.get(name).remove()
                except docker.errors.APIError:
                    continue
                removed.append(name)
            return removed

        return self._call(manager, "removing old secret versions", remove)
