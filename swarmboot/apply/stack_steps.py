"""The runners of `deploy`'s steps: configs, the stack deploy, rollbacks and the waits.

Each goes through the manager its step names. The waits poll the stack's services and
report each service as its rollout moves (` ✓ app-eu-central 4/4 updated`); they end when
every service has converged, or one has failed, or their time is up: the next round judges
what they saw and plans the rollbacks."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from tenacity import RetryError, Retrying, retry_if_result

from swarmboot.apply.run import Run
from swarmboot.clock import stop_after
from swarmboot.deploy import (
    AwaitRollback,
    AwaitRollout,
    CreateConfig,
    DeployStack,
    RemoveUnused,
    RollBack,
    Verdict,
    judge,
)
from swarmboot.remote import Remote
from swarmboot.stack_secrets import CreateSecret, secret_labels

__all__ = ["RUNNERS"]


def _via(run: Run, label: str) -> Remote:
    return run.ctx.remote(run.instance(label))


def _config(run: Run, step: CreateConfig) -> None:
    labels = {"swarmboot.cluster": run.ctx.spec.cluster.name}
    if run.ctx.swarm.ensure_config(_via(run, step.via), step.name, step.content, labels):
        run.report(step.describe())
        run.changed("config_created", step.name)


def _deploy(run: Run, step: DeployStack) -> None:
    run.ctx.swarm.deploy_stack(
        _via(run, step.via),
        step.stack,
        step.text,
        prune=step.prune,
        auth=run.ctx.registry_auth if step.registries else None,
        resolve=step.resolve,
    )
    run.report(
        f"Deployed stack {step.stack} ({len(step.services)} services, digest {step.digest[:12]})"
    )
    run.changed("stack_deployed", step.stack, step.digest)


def _watch(
    run: Run,
    via: str,
    stack: str,
    digest: str,
    services: tuple[str, ...],
    seconds: float,
    done: Callable[[dict[str, Verdict]], bool],
) -> None:
    """Poll the stack until `done` says so or `seconds` pass, reporting each service's
    progress as it changes."""
    ctx = run.ctx
    manager = _via(run, via)
    shown: dict[str, str] = {}

    def poll() -> bool:
        found = {s.name: s for s in ctx.swarm.stack_services(manager, stack)}
        now = {
            name: judge(found.get(name), name, digest, deployed=True, elapsed=0.0, timeout=1e9)
            for name in services
        }
        for name, verdict in now.items():
            line = verdict.line(stack)
            if shown.get(name) == line:
                continue
            shown[name] = line
            if verdict.state == "converged":
                ctx.reporter.ok(line)
            elif verdict.state in ("failed", "rolled_back"):
                ctx.reporter.failed(line)
            else:
                ctx.reporter.detail(line)
        return not done(now)

    # Out of time, the next round judges it: a rollout out of time has failed.
    with contextlib.suppress(RetryError):
        Retrying(
            stop=stop_after(ctx.clock, seconds),
            wait=lambda state: min(ctx.settings.poll_interval, 2.0),
            sleep=ctx.clock.sleep,
            retry=retry_if_result(bool),
        )(poll)


def _await_rollout(run: Run, step: AwaitRollout) -> None:
    def done(now: dict[str, Verdict]) -> bool:
        states = {v.state for v in now.values()}
        return states == {"converged"} or bool(states & {"failed", "rolled_back", "rolling_back"})

    _watch(run, step.via, step.stack, step.digest, step.services, step.seconds, done)
    run.done.append(step.describe())


def _rollback(run: Run, step: RollBack) -> None:
    run.ctx.swarm.rollback_service(_via(run, step.via), step.service)
    run.report(f"Rolling {step.service} back to its previous spec")
    run.changed("service_rolled_back", step.service)


def _await_rollback(run: Run, step: AwaitRollback) -> None:
    def done(now: dict[str, Verdict]) -> bool:
        return all(v.state in ("rolled_back", "failed") for v in now.values())

    _watch(run, step.via, step.stack, step.digest, step.services, step.seconds, done)
    run.done.append(step.describe())


def _remove_unused(run: Run, step: RemoveUnused) -> None:
    manager = _via(run, step.via)
    removed = run.ctx.swarm.remove_configs(manager, f"{step.stack}_", keep=set(step.keep))
    if removed:
        run.report(f"Removed {len(removed)} config(s) of {step.stack} no longer used")
    for name in removed:
        run.changed("config_removed", name)


def _secret(run: Run, step: CreateSecret) -> None:
    manager = _via(run, step.via)
    labels = secret_labels(step, run.ctx.spec.cluster.name)
    run.ctx.swarm.create_secret(manager, step.name, step.value, labels)
    run.report(step.describe())
    run.changed("secret_created", step.name)
    if step.remove:
        removed = run.ctx.swarm.remove_secrets(manager, list(step.remove))
        if removed:
            run.report(f"Removed {len(removed)} old version(s) of {step.logical} no longer used")
        for name in removed:
            run.changed("secret_removed", name)


RUNNERS: dict[type, Callable[[Run, Any], None]] = {
    CreateConfig: _config,
    DeployStack: _deploy,
    AwaitRollout: _await_rollout,
    RollBack: _rollback,
    AwaitRollback: _await_rollback,
    RemoveUnused: _remove_unused,
    CreateSecret: _secret,
}
