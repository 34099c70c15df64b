"""`deploy`: a Compose file deployed as a swarm stack, waited for until its rollout is done.

Observe, plan, run, in rounds by the engine `up` uses:

1. The stack as rendered (`swarmboot.compose`: interpolated here, services per zone, files
   made configs named by their content, secrets resolved to their newest version) has a
   digest; each of its services carries it as a label once deployed. When every service of
   the stack carries it and has converged, there is nothing to do: the deploy says so and
   changes nothing.
2. Otherwise the configs it lacks are made, the stack is deployed through a manager
   (`docker stack deploy`, with the registry login when one is given), and the rollout is
   waited for: each service at its replicas, every task of its spec now running (a task
   with a health check runs only once healthy), its update completed.
3. A rollout that fails (an update Docker paused or rolled back, tasks that keep failing,
   the time given passing) rolls back every service this deploy updated that Docker did
   not roll back itself, waits for the rollbacks, and fails naming the service and its last
   task error (exit 8). A service the deploy created has nothing to roll back to: it is
   named, and left as it is.

Killed at any point, a second run finds the services' digests: it goes on waiting (or rolls
back) where the first stopped, or deploys again what never arrived.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from swarmboot.cluster import Context, observe
from swarmboot.errors import ExitCode, SwarmbootError
from swarmboot.stacks import StackService, StackTask
from swarmboot.state import Observed

if TYPE_CHECKING:
    from swarmboot.compose import Rendered

__all__ = [
    "AwaitRollback",
    "AwaitRollout",
    "CreateConfig",
    "DeployFailed",
    "DeployResult",
    "DeployStack",
    "RemoveUnused",
    "RollBack",
    "StackFacts",
    "Verdict",
    "deploy",
    "judge",
    "manager_of",
    "observe_stack",
    "plan_deploy",
]

State = Literal[
    "missing", "outdated", "waiting", "converged", "failed", "rolling_back", "rolled_back"
]
# Tasks of a service's spec now that failed, before it runs in full: this many, and the
# rollout has failed (a container that exits at once fails again every restart delay).
FAILURES = 3


class DeployFailed(SwarmbootError):
    exit_code = ExitCode.DEPLOY_FAILED


@dataclass(frozen=True)
class CreateConfig:
    via: str
    name: str
    key: str
    content: bytes = field(repr=False)

    def describe(self) -> str:
        return f"Make config {self.name} (from configs.{self.key}'s file)"


@dataclass(frozen=True)
class DeployStack:
    via: str
    stack: str
    digest: str
    services: tuple[str, ...]
    text: str = field(repr=False)  # may hold values interpolated from the environment
    prune: bool = False
    registries: tuple[str, ...] = ()  # logins handed to the swarm (names only)
    resolve: str = "always"

    def describe(self) -> str:
        login = f", with the login to {', '.join(self.registries)}" if self.registries else ""
        return (
            f"Deploy stack {self.stack} ({len(self.services)} services, "
            f"digest {self.digest[:12]}) through {self.via}{login}"
        )


@dataclass(frozen=True)
class AwaitRollout:
    via: str
    stack: str
    digest: str
    services: tuple[str, ...]
    seconds: float  # at most

    def describe(self) -> str:
        return (
            f"Wait until {len(self.services)} services of {self.stack} run the new spec "
            f"(at most {self.seconds:.0f} s)"
        )


@dataclass(frozen=True)
class RollBack:
    via: str
    service: str
    reason: str

    def describe(self) -> str:
        return f"Roll {self.service} back to its previous spec: {self.reason}"


@dataclass(frozen=True)
class AwaitRollback:
    via: str
    stack: str
    digest: str
    services: tuple[str, ...]
    seconds: float

    def describe(self) -> str:
        return f"Wait until {', '.join(self.services)} rolled back"


@dataclass(frozen=True)
class RemoveUnused:
    via: str
    stack: str
    configs: tuple[str, ...]  # the stack's configs no service of this deploy uses
    keep: tuple[str, ...] = ()  # the deploy's own configs

    def describe(self) -> str:
        return f"Remove {len(self.configs)} config(s) of {self.stack} no longer used"


@dataclass(frozen=True)
class Verdict:
    service: str
    state: State
    running: int = 0
    wanted: int | None = None
    error: str = ""  # why it failed, or the last task error seen

    def line(self, stack: str) -> str:
        short = self.service.removeprefix(f"{stack}_")
        counts = f"{self.running}/{self.wanted}" if self.wanted is not None else ""
        words = {
            "converged": "updated",
            "waiting": "updating",
            "failed": f"failed: {self.error}",
            "rolling_back": "rolling back",
            "rolled_back": f"rolled back: {self.error}" if self.error else "rolled back",
            "missing": "not deployed",
            "outdated": "not deployed",
        }
        return " ".join(p for p in (short, counts, words[self.state]) if p)


@dataclass(frozen=True)
class StackFacts:
    via: str  # the manager the stack is read and deployed through
    services: tuple[StackService, ...]
    configs: frozenset[str]  # the swarm configs named `<stack>_…`
    deployed: bool = False  # this run sent the stack
    elapsed: float = 0.0  # seconds since this run began

    def service(self, name: str) -> StackService | None:
        return next((s for s in self.services if s.name == name), None)


def _last_error(tasks: Sequence[StackTask]) -> str:
    failed = [t for t in tasks if t.error]
    return max(failed, key=lambda t: t.at).error if failed else ""


def judge(
    service: StackService | None,
    name: str,
    digest: str,
    *,
    deployed: bool,
    elapsed: float,
    timeout: float,
) -> Verdict:
    """Where one service's rollout stands (pure: the rules of convergence as data)."""
    if service is None:
        return Verdict(name, "missing")
    if service.digest != digest:
        if service.previous_digest == digest and service.update == "rollback_started":
            return Verdict(name, "rolling_back", error=service.update_message)
        if (
            service.previous_digest == digest
            and deployed
            and service.update
            in (
                "rollback_completed",
                "rollback_paused",
            )
        ):
            return Verdict(name, "rolled_back", error=service.update_message)
        if deployed and elapsed > timeout:
            return Verdict(name, "failed", error=f"not deployed after {timeout:.0f} s")
        return Verdict(name, "outdated")
    mine = [t for t in service.tasks if t.current]
    running = sum(1 for t in mine if t.desired == "running" and t.state == "running")
    if service.replicas is not None:
        wanted = service.replicas
    else:
        wanted = len({t.node for t in mine if t.desired == "running"})
    stale = any(not t.current and t.desired == "running" for t in service.tasks)
    last = _last_error(mine)
    if service.update == "paused":
        why = service.update_message or "update paused"
        return Verdict(name, "failed", running, wanted, f"{why}; last task error: {last or '-'}")
    if service.update == "rollback_paused":
        return Verdict(name, "failed", running, wanted, service.update_message)
    failures = sum(1 for t in mine if t.state in ("failed", "rejected"))
    if failures >= max(FAILURES, wanted) and running < wanted:
        return Verdict(
            name, "failed", running, wanted, f"{failures} tasks failed; last: {last or '-'}"
        )
    if (
        service.update in (None, "completed", "rollback_completed")
        and running == wanted
        and not stale
    ):
        return Verdict(name, "converged", running, wanted)
    if elapsed > timeout:
        state = f"update {service.update}" if service.update else "starting"
        return Verdict(
            name,
            "failed",
            running,
            wanted,
            f"not converged after {timeout:.0f} s ({state}, {running}/{wanted} running"
            + (f"; last task error: {last}" if last else "")
            + ")",
        )
    return Verdict(name, "waiting", running, wanted, last)


def verdicts(r: Rendered, f: StackFacts, timeout: float) -> dict[str, Verdict]:
    return {
        name: judge(
            f.service(name),
            name,
            r.digest,
            deployed=f.deployed,
            elapsed=f.elapsed,
            timeout=timeout,
        )
        for name in r.services
    }


def plan_deploy(
    r: Rendered,
    f: StackFacts,
    *,
    timeout: float,
    prune: bool = False,
    registries: tuple[str, ...] = (),
    resolve: str = "always",
) -> tuple:
    """The steps of one round of `deploy` (see the module's text); none when the stack runs
    the rendered digest in full, or has failed and nothing is left to roll back."""
    found = verdicts(r, f, timeout)
    extra = sorted(s.name for s in f.services if s.name not in r.services) if prune else []
    left = max(0.0, timeout - f.elapsed)
    unsent = [n for n, v in found.items() if v.state in ("missing", "outdated")]
    if (unsent or extra) and not f.deployed:
        return (
            *(
                CreateConfig(f.via, c.name, c.key, c.content)
                for c in r.configs
                if c.name not in f.configs
            ),
            DeployStack(f.via, r.stack, r.digest, r.services, r.text, prune, registries, resolve),
            AwaitRollout(f.via, r.stack, r.digest, r.services, left),
        )
    failed = {n: v for n, v in found.items() if v.state == "failed"}
    if failed:
        first = sorted(failed)[0].removeprefix(f"{r.stack}_")
        back = []
        for name, verdict in found.items():
            service = f.service(name)
            if (
                service is not None
                and verdict.state in ("failed", "waiting", "converged")
                and service.digest == r.digest
                and service.has_previous
                and service.previous_digest != r.digest
            ):
                why = verdict.error if name in failed else f"the deploy failed ({first})"
                back.append(RollBack(f.via, name, why))
        if not back:
            return ()
        names = tuple(s.service for s in back)
        return (*back, AwaitRollback(f.via, r.stack, r.digest, names, max(left, 120.0)))
    if any(v.state == "rolling_back" for v in found.values()):
        rolling = tuple(n for n, v in found.items() if v.state == "rolling_back")
        return (AwaitRollback(f.via, r.stack, r.digest, rolling, max(left, 120.0)),)
    if any(v.state in ("waiting", "outdated", "missing") for v in found.values()):
        return (AwaitRollout(f.via, r.stack, r.digest, r.services, left),)
    if f.deployed and all(v.state == "converged" for v in found.values()):
        keep = {c.name for c in r.configs}
        unused = tuple(sorted(c for c in f.configs if c not in keep))
        if unused:
            return (RemoveUnused(f.via, r.stack, unused, tuple(sorted(keep))),)
    return ()


def manager_of(ctx: Context, observed: Observed) -> str:
    """The label of the manager a deploy goes through: the one the swarm was read from."""
    if observed.swarm is None:
        raise SwarmbootError(
            f"{ctx.spec.cluster.name} has no swarm to deploy to (no manager leads)",
            hint="`swarmboot status` shows each node; `swarmboot up` makes the cluster, "
            "`swarmboot recover` brings back a swarm that lost its quorum",
        )
    return observed.swarm.manager


def observe_stack(
    ctx: Context, observed: Observed, via: str, stack: str, *, deployed: bool, elapsed: float
) -> StackFacts:
    inst = observed.instance(via)
    assert inst is not None
    manager = ctx.remote(inst)
    return StackFacts(
        via=via,
        services=ctx.swarm.stack_services(manager, stack),
        configs=ctx.swarm.config_names(manager, f"{stack}_"),
        deployed=deployed,
        elapsed=elapsed,
    )


@dataclass
class DeployResult:
    stack: str
    digest: str
    services: dict[str, Verdict]
    steps_run: list[str]
    seconds: float
    changes: list = field(default_factory=list)  # swarmboot.apply.changes.Change

    @property
    def changed(self) -> bool:
        """Whether the deploy changed a service: sent the stack, or rolled one back."""
        return any(c.kind in ("stack_deployed", "service_rolled_back") for c in self.changes)

    def data(self) -> dict:
        from swarmboot.apply.changes import changes_data

        return {
            "stack": self.stack,
            "digest": self.digest,
            "seconds": round(self.seconds, 1),
            "services": {
                name.removeprefix(f"{self.stack}_"): {
                    "state": v.state,
                    "running": v.running,
                    "wanted": v.wanted,
                    **({"error": v.error} if v.error else {}),
                }
                for name, v in sorted(self.services.items())
            },
            "steps": self.steps_run,
            "changed": changes_data(self.changes),
        }


def deploy(
    ctx: Context,
    rendered: Rendered,
    *,
    timeout: float = 600.0,
    prune: bool = False,
    registries: tuple[str, ...] = (),
    resolve: str = "always",
    rounds: int = 6,
    observed: Observed | None = None,
) -> DeployResult:
    """Deploy `rendered` and wait for its rollout; `DeployFailed` when it failed (after the
    rollbacks), naming each failed service and its last task error."""
    from swarmboot.apply import run_steps
    from swarmboot.apply.changes import Change

    changes: list[Change] = []
    started = ctx.clock.monotonic()
    observed = observed or observe(ctx)
    via = manager_of(ctx, observed)
    done: list[str] = []
    deployed = False
    failures: dict[str, str] = {}
    facts = observe_stack(ctx, observed, via, rendered.stack, deployed=False, elapsed=0.0)
    for _ in range(rounds):
        for name, verdict in verdicts(rendered, facts, timeout).items():
            if verdict.state == "failed":
                failures.setdefault(name, verdict.error)
        steps = plan_deploy(
            rendered, facts, timeout=timeout, prune=prune, registries=registries, resolve=resolve
        )
        if not steps:
            break
        ran = run_steps(ctx, observed, steps, changes=changes)
        done += ran
        deployed = deployed or any(isinstance(s, DeployStack) for s in steps)
        facts = observe_stack(
            ctx,
            observed,
            via,
            rendered.stack,
            deployed=deployed,
            elapsed=ctx.clock.monotonic() - started,
        )
    found = verdicts(rendered, facts, timeout)
    result = DeployResult(
        rendered.stack,
        rendered.digest,
        found,
        done,
        ctx.clock.monotonic() - started,
        changes,
    )
    bad = {n: v for n, v in found.items() if v.state != "converged"}
    if bad:
        lines = []
        for name, verdict in sorted(bad.items()):
            why = failures.get(name) or verdict.error or verdict.state.replace("_", " ")
            short = name.removeprefix(f"{rendered.stack}_")
            state = {"rolled_back": "rolled back", "failed": "failed"}.get(verdict.state, "")
            lines.append(f"{short} ({state or verdict.state}): {why}")
        error = DeployFailed(
            f"the deploy of {rendered.stack} failed: " + "; ".join(lines),
            hint="`docker service ps --no-trunc SERVICE` on a manager shows each task; fix "
            "the stack file or the image and deploy again",
        )
        error.result = result  # type: ignore[attr-defined]
        raise error
    return result


def stack_zones(spec) -> tuple[str, ...]:
    """The zones a per-zone service is made for: the regions with workers (where the
    application runs), or every region when no region has any."""
    with_workers = tuple(
        r for r in spec.regions if any(n.region == r and n.role == "worker" for n in spec.nodes())
    )
    return with_workers or tuple(spec.regions)


def prepare(
    ctx: Context,
    observed: Observed | None,
    path,
    stack: str,
    env,
) -> Rendered:
    """The stack file rendered for this cluster, and the registry logins it needs set on
    the context. With `observed`, its external secrets resolve to their newest versions
    through the manager; without, nothing is contacted (a check of the file, the stack's
    name and the logins before anything else)."""
    from swarmboot import compose_yaml
    from swarmboot.compose import load_stack, render_stack
    from swarmboot.registry import registry_auth
    from swarmboot.stack_secrets import latest_versions

    doc = load_stack(path)
    declared = doc.get("secrets")
    wanted = ()
    if isinstance(declared, dict):
        wanted = tuple(
            sorted(
                {
                    str(v.get("name", k)) if isinstance(v, dict) else str(k)
                    for k, v in declared.items()
                }
            )
        )
    versions = {}
    if observed is not None and wanted:
        via = manager_of(ctx, observed)
        inst = observed.instance(via)
        assert inst is not None
        versions = latest_versions(ctx, ctx.remote(inst), wanted)
    rendered = render_stack(
        doc,
        source=str(path),
        stack=stack,
        zones=stack_zones(ctx.spec),
        env=env,
        base=path.parent,
        secret_versions=versions,
        cluster=ctx.spec.cluster.name,
    )
    services = (compose_yaml.load(rendered.text) or {}).get("services") or {}
    # Written with `$$` for every `$`: an image name has none.
    images = [s["image"] for s in services.values() if isinstance(s, dict) and s.get("image")]
    ctx.registry_auth = registry_auth(env, images)
    return rendered
