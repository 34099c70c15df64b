"""Stacks as a model, for `FakeSwarm`: `docker stack deploy` of a rendered file, rollouts
that take a few reads to finish, updates Docker pauses or rolls back, tasks that keep
failing, rollbacks, configs and secrets.

Time is the manager's reads: each `stack_services` moves every rollout one tick on. An
image whose name holds `broken` runs tasks that exit at once ("task: non-zero exit (1)").
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

import yaml

from swarmboot.stacks import (
    DIGEST_LABEL,
    HMAC_LABEL,
    SECRET_LABEL,
    VERSION_LABEL,
    RegistryAuth,
    StackService,
    StackTask,
    SwarmSecret,
)
from swarmboot.swarm import SwarmError

# Reads an update (or a new service) takes to run in full.
TICKS = 2
EXIT_ERROR = "task: non-zero exit (1)"


@dataclass
class FakeService:
    name: str
    template: str  # the task template, as JSON
    labels: dict[str, str]
    replicas: int | None
    failure_action: str = "pause"
    # template, labels, failure_action, uses
    previous: tuple[str, dict[str, str], str, frozenset[str]] | None = None
    update: str | None = None
    message: str = ""
    ticks: int = 0  # left before the rollout (or rollback) is done
    tasks: list[StackTask] = field(default_factory=list)
    clock: int = 0
    uses: frozenset[str] = frozenset()  # the configs and secrets it mounts, by swarm name

    @property
    def broken(self) -> bool:
        return "broken" in json.loads(self.template).get("image", "")


def _template(service: dict, uses: frozenset[str] = frozenset()) -> str:
    task = {k: v for k, v in service.items() if k != "deploy"}
    task["mounts"] = sorted(uses)
    deploy = dict(service.get("deploy") or {})
    deploy.pop("labels", None)
    deploy.pop("replicas", None)
    task["deploy"] = deploy
    return json.dumps(task, sort_keys=True)


def _labels(service: dict) -> dict[str, str]:
    labels = (service.get("deploy") or {}).get("labels") or {}
    if isinstance(labels, list):
        labels = dict(item.split("=", 1) for item in labels)
    return {str(k): str(v) for k, v in labels.items()}


class FakeStacks:
    """The stack calls of `SwarmDriver` over a model; `deploys` lists each stack deploy
    (stack, the registries logged in to) and `rollbacks` each rollback asked."""

    def _stack_state(self) -> dict:
        """Kept on the fleet: every context's FakeSwarm sees the same swarm."""
        fleet = self.fleet  # type: ignore[attr-defined]
        state = fleet.__dict__.get("_stacks")
        if state is None:
            state = fleet.__dict__["_stacks"] = {
                "services": {},
                "configs": {},
                "secrets": {},
                "lock": threading.Lock(),
                "deploys": [],
                "rollbacks": [],
                "texts": [],
            }
        return state

    @property
    def deploys(self) -> list[tuple[str, tuple[str, ...]]]:
        return self._stack_state()["deploys"]

    @property
    def rollbacks(self) -> list[str]:
        return self._stack_state()["rollbacks"]

    @property
    def stack_configs(self) -> dict[str, bytes]:
        return self._stack_state()["configs"]

    @property
    def stack_secrets(self) -> dict[str, tuple[bytes, dict]]:
        return self._stack_state()["secrets"]

    def _lead(self, manager) -> None:
        self._manager(manager)  # type: ignore[attr-defined]

    def _tasks(self, s: FakeService, failing: bool, template: str) -> None:
        """The tasks of the service's spec now: running, or failed again and again."""
        s.clock += 1
        old = [
            StackTask(
                t.slot,
                t.node,
                "shutdown",
                t.state if t.state != "running" else "shutdown",
                t.error,
                t.at,
                t.current,  # still of the spec now if it was
            )
            for t in s.tasks
        ]
        wanted = s.replicas if s.replicas is not None else 2
        now = []
        for slot in range(1, wanted + 1):
            if failing:
                now.append(
                    StackTask(
                        slot, f"n{slot}", "shutdown", "failed", EXIT_ERROR, f"{s.clock:06}", True
                    )
                )
            else:
                now.append(
                    StackTask(slot, f"n{slot}", "running", "running", "", f"{s.clock:06}", True)
                )
        s.tasks = [t for t in old if t.state == "failed"][-6:] + now
        s.template = template

    def _tick(self, s: FakeService) -> None:
        if s.ticks > 0:
            s.ticks -= 1
            if s.ticks:
                return
            if s.update == "rollback_started":
                s.update, s.message = "rollback_completed", "rollback completed"
                self._tasks(s, False, s.template)
                return
            if s.broken:
                self._tasks(s, True, s.template)
                if s.update == "updating" and s.failure_action == "rollback" and s.previous:
                    self._swap(s)
                    s.update, s.message = "rollback_started", "update rolled back due to failure"
                    s.ticks = TICKS
                elif s.update == "updating" and s.failure_action == "pause":
                    s.update = "paused"
                    s.message = "update paused due to failure or early termination of task x"
                return
            self._tasks(s, False, s.template)
            if s.update == "updating":
                s.update, s.message = "completed", "update completed"
            return
        if s.broken and s.update not in ("paused",):
            self._tasks(s, True, s.template)

    def _swap(self, s: FakeService) -> None:
        assert s.previous is not None
        now = (s.template, s.labels, s.failure_action, s.uses)
        s.template, s.labels, s.failure_action, s.uses = s.previous
        s.previous = now
        for i, t in enumerate(s.tasks):
            s.tasks[i] = StackTask(t.slot, t.node, t.desired, t.state, t.error, t.at, False)

    def stack_services(self, manager, stack: str) -> tuple[StackService, ...]:
        self._lead(manager)
        state = self._stack_state()
        with state["lock"]:
            out = []
            for s in sorted(state["services"].values(), key=lambda s: s.name):
                if not s.name.startswith(f"{stack}_"):
                    continue
                self._tick(s)
                out.append(
                    StackService(
                        name=s.name,
                        digest=s.labels.get(DIGEST_LABEL),
                        previous_digest=s.previous[1].get(DIGEST_LABEL) if s.previous else None,
                        replicas=s.replicas,
                        update=s.update,
                        update_message=s.message,
                        tasks=tuple(s.tasks),
                        has_previous=s.previous is not None,
                    )
                )
            return tuple(out)

    def deploy_stack(
        self,
        manager,
        stack: str,
        text: str,
        *,
        prune: bool = False,
        auth: RegistryAuth | None = None,
        resolve: str = "always",
    ) -> None:
        self._lead(manager)
        doc = yaml.safe_load(text)
        state = self._stack_state()
        with state["lock"]:
            for key, config in (doc.get("configs") or {}).items():
                name = config.get("name", key)
                if config.get("external") and name not in state["configs"]:
                    raise SwarmError(f"config not found: {name}")
            for key, secret in (doc.get("secrets") or {}).items():
                name = secret.get("name", key)
                if secret.get("external") and name not in state["secrets"]:
                    raise SwarmError(f"secret not found: {name}")
            state["deploys"].append((stack, auth.registries() if auth else ()))
            state["texts"].append(text)
            names = set()
            top = {
                **{k: v.get("name", k) for k, v in (doc.get("configs") or {}).items()},
                **{k: v.get("name", k) for k, v in (doc.get("secrets") or {}).items()},
            }
            for key, service in doc["services"].items():
                name = f"{stack}_{key}"
                names.add(name)
                deploy = service.get("deploy") or {}
                replicas = None if deploy.get("mode") == "global" else deploy.get("replicas", 1)
                action = (deploy.get("update_config") or {}).get("failure_action", "pause")
                refs = [*(service.get("configs") or ()), *(service.get("secrets") or ())]
                uses = frozenset(
                    top.get(r if isinstance(r, str) else r["source"], "") for r in refs
                )
                # As swarm's: the task spec names the configs and secrets it mounts.
                template, labels = _template(service, uses), _labels(service)
                found = state["services"].get(name)
                if found is None:
                    state["services"][name] = FakeService(
                        name, template, labels, replicas, action, ticks=TICKS, uses=uses
                    )
                    continue
                if template != found.template:
                    found.previous = (
                        found.template,
                        found.labels,
                        found.failure_action,
                        found.uses,
                    )
                    found.update, found.message, found.ticks = (
                        "updating",
                        "update in progress",
                        TICKS,
                    )
                    found.tasks = [
                        StackTask(t.slot, t.node, t.desired, t.state, t.error, t.at, False)
                        for t in found.tasks
                    ]
                found.template, found.labels, found.uses = template, labels, uses
                found.replicas, found.failure_action = replicas, action
            if prune:
                for name in [n for n in state["services"] if n.startswith(f"{stack}_")]:
                    if name not in names:
                        del state["services"][name]

    def rollback_service(self, manager, name: str) -> None:
        self._lead(manager)
        state = self._stack_state()
        with state["lock"]:
            s = state["services"].get(name)
            if s is None or s.previous is None:
                raise SwarmError(f"docker service rollback {name}: service has no previous spec")
            state["rollbacks"].append(name)
            self._swap(s)
            s.update, s.message, s.ticks = "rollback_started", "manually requested rollback", TICKS

    def ensure_config(self, manager, name: str, content: bytes, labels: dict) -> bool:
        self._lead(manager)
        state = self._stack_state()
        with state["lock"]:
            if name in state["configs"]:
                return False
            state["configs"][name] = content
            return True

    def config_names(self, manager, prefix: str) -> frozenset[str]:
        self._lead(manager)
        return frozenset(n for n in self._stack_state()["configs"] if n.startswith(prefix))

    def remove_stack_configs(self, prefix: str, keep: set[str]) -> list[str]:
        state = self._stack_state()
        used = {n for s in state["services"].values() for n in s.uses}
        gone = sorted(
            n for n in state["configs"] if n.startswith(prefix) and n not in keep and n not in used
        )
        for name in gone:
            del state["configs"][name]
        return gone

    def secrets(self, manager, logical: str) -> tuple[SwarmSecret, ...]:
        self._lead(manager)
        found = []
        for name, (_, labels) in self._stack_state()["secrets"].items():
            if labels.get(SECRET_LABEL) == logical:
                found.append(
                    SwarmSecret(name, logical, int(labels[VERSION_LABEL]), labels[HMAC_LABEL])
                )
        return tuple(sorted(found, key=lambda s: s.version))

    def create_secret(self, manager, name: str, value: bytes, labels: dict) -> None:
        self._lead(manager)
        self._stack_state()["secrets"].setdefault(name, (value, dict(labels)))

    def remove_secrets(self, manager, names: list[str]) -> list[str]:
        self._lead(manager)
        state = self._stack_state()
        removed = []
        for name in names:
            if any(name in s.uses for s in state["services"].values()):
                continue  # in use
            if state["secrets"].pop(name, None) is not None:
                removed.append(name)
        return removed
