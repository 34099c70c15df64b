"""Carrying out a plan: `up` converges the world to the spec, from any partial state.

`up` observes, plans and runs the cloud steps (StackScript, Cloud Firewalls, Linodes, kernels,
boots), waits for the nodes, then observes and plans again, now with every node's addresses
and status report, and runs the swarm steps. Re-running it after a crash at any point finishes
the job; a converged cluster makes no change at all.
"""

from __future__ import annotations

import collections
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from swarmboot import facts
from swarmboot.cloud import CloudError, CreateRequest, RebuildRequest
from swarmboot.cluster import Context, advertise_address, observe
from swarmboot.errors import ExitCode, SwarmbootError
from swarmboot.firewall import cloud_firewall_labels, members_file
from swarmboot.keys import new_host_key
from swarmboot.membership import cluster_linodes, listing, surplus
from swarmboot.plan import (
    Boot,
    ClearRebuildMark,
    CreateInstance,
    DeleteInstance,
    DemoteNode,
    DrainNode,
    EnsureCloudFirewall,
    EnsureNetwork,
    InitSwarm,
    JoinManager,
    JoinWorkers,
    LabelNode,
    LeaveSwarm,
    NotReady,
    PublishStackScript,
    RebuildInstance,
    RemoveStaleNode,
    SetKernel,
    Step,
    SyncCloudFirewall,
    SyncMembers,
    WaitReady,
    plan,
)
from swarmboot.publish import publish_one
from swarmboot.readiness import judge
from swarmboot.remote import HostKeyMismatch, RemoteError, Unreachable
from swarmboot.routes import NotRoutable
from swarmboot.state import HOST_KEY_TAG, REBUILD_TAG, Instance, Observed, host_key_tag
from swarmboot.swarm import SwarmError

__all__ = ["NotReadyError", "UpResult", "run_steps", "up"]

log = logging.getLogger("swarmboot.apply")

# While only StackScripts are waited for, the Linodes are listed on every LIST_EVERY-th poll.
LIST_EVERY = 4
CLOUD_STEPS = (PublishStackScript, EnsureCloudFirewall, CreateInstance, SetKernel, Boot)


class NotReadyError(SwarmbootError):
    exit_code = ExitCode.NOT_READY


class Replan(Exception):
    """A step that can no longer be carried out as planned: the round ends there and the
    next one observes and plans again."""


@dataclass
class UpResult:
    observed: Observed
    steps_run: list[str] = field(default_factory=list)
    not_ready: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


class _CreateLimiter:
    """At most `limit` creates in any `window` seconds: Linode's limit, never exceeded."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self._sent: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                while self._sent and now - self._sent[0] >= self.window:
                    self._sent.popleft()
                if len(self._sent) < self.limit:
                    self._sent.append(now)
                    return
                wait = self.window - (now - self._sent[0]) + 0.01
            time.sleep(wait)


def _retrying(what: str) -> Retrying:
    """Retries of calls that failed on the way (no answer, 5xx, 429 after the SDK's own)."""
    return Retrying(
        retry=retry_if_exception(lambda e: isinstance(e, CloudError) and e.retryable),
        stop=stop_after_attempt(5),
        wait=wait_exponential(multiplier=0.5, max=8),
        reraise=True,
    )


class _Run:
    """One `up`: what it learned along the way (ids, fresh instances, join tokens)."""

    def __init__(self, ctx: Context, observed: Observed) -> None:
        self.ctx = ctx
        self.observed = observed
        self.instances: dict[str, Instance] = {i.label: i for i in observed.instances}
        self.script_id = next((s.id for s in observed.scripts if s.label == ctx.script.label), None)
        self.firewall_ids = {f.label: f.id for f in observed.firewalls}
        self.tokens: tuple[str, str] | None = None  # secrets: kept in memory only
        self.limiter = _CreateLimiter(*ctx.settings.create_limit)
        self.done: list[str] = []
        self.not_ready: dict[str, str] = {}
        self.join_failures: collections.Counter[str] = collections.Counter()
        self.unjoined: set[str] = set()  # workers whose join failed in this round

    def report(self, text: str) -> None:
        self.done.append(text)
        self.ctx.reporter.ok(text)

    def call(self, what: str, fn: Callable[[], Any]) -> Any:
        return _retrying(what)(fn)


# --- cloud steps --------------------------------------------------------------------------


def _publish(run: _Run, step: PublishStackScript) -> None:
    ctx = run.ctx
    run.script_id = run.call("publish", lambda: publish_one(ctx.cloud, step, ctx.script))
    run.report(step.describe())


def _ensure_firewall(run: _Run, step: EnsureCloudFirewall) -> None:
    made = run.call(
        "firewall",
        lambda: run.ctx.cloud.create_firewall(step.label, step.rules.api(), [run.ctx.spec.tag]),
    )
    run.firewall_ids[step.label] = made.id
    run.report(step.describe())


def _stackscript_data(
    run: _Run, node_label: str, role: str, region: str, host_key_b64: str
) -> dict[str, str]:
    spec = run.ctx.spec
    return {
        "hostname": node_label,
        "cluster": spec.cluster.name,
        "swarm_role": role,
        "zone": region,
        "admin_ssh_keys": "\n".join(run.ctx.admin_keys),
        "docker_source": spec.cluster.docker_source,
        "ssh_host_key": host_key_b64,
        "apt_upgrade": "yes" if spec.cluster.apt_upgrade else "no",
    }


def _root_password(ctx: Context) -> str:
    return ctx.root_password or secrets.token_urlsafe(24) + "-Aa1"


def _create(run: _Run, step: CreateInstance) -> Instance:
    ctx, spec = run.ctx, run.ctx.spec
    if run.script_id is None:
        raise SwarmbootError(f"StackScript {ctx.script.label} is not published")
    host_key = new_host_key()
    labels = cloud_firewall_labels(spec)
    firewall = next(label for label, lb in labels.items() if lb == (step.role == "lb"))
    request = CreateRequest(
        label=step.label,
        region=step.region,
        type=step.type,
        image=spec.cluster.image,
        tags=(spec.tag, host_key_tag(host_key.fingerprint)),
        authorized_keys=(ctx.identity_public,),
        stackscript_id=run.script_id,
        stackscript_data=_stackscript_data(
            run, step.label, step.role, step.region, host_key.private_b64
        ),
        root_pass=_root_password(ctx),
        private_ip=(not spec.multi_region or spec.cluster.advertise == "private"),
        firewall_id=run.firewall_ids.get(firewall),
    )

    def attempt() -> Instance:
        run.limiter.acquire()
        return ctx.cloud.create_instance(request)

    inst = run.call("create", attempt)
    run.instances[inst.label] = inst
    run.report(step.describe())
    return inst


def _set_kernel(run: _Run, step: SetKernel) -> None:
    inst = run.instances[step.label]
    config = run.call("config", lambda: run.ctx.cloud.config(inst.id))
    if config is None and inst.status in ("provisioning", "rebuilding"):
        # Linode lays the new disks and config profile while it provisions or rebuilds.
        config = Retrying(
            retry=retry_if_result(lambda found: found is None),
            wait=lambda state: run.ctx.settings.poll_interval,
            stop=stop_after_delay(run.ctx.settings.ready_timeout),
            retry_error_callback=lambda state: None,
        )(lambda: run.call("config", lambda: run.ctx.cloud.config(inst.id)))
    if config is None:
        raise SwarmbootError(
            f"{inst.label} has no config profile to set the kernel of",
            hint="rebuild it from an image",
        )
    if config[1] != facts.GRUB_KERNEL:
        run.call("kernel", lambda: run.ctx.cloud.set_kernel(inst.id, config[0], facts.GRUB_KERNEL))
    run.instances[inst.label] = Instance(
        **{**inst.__dict__, "config": (config[0], facts.GRUB_KERNEL)}
    )
    run.report(step.describe())


def _bring_up(run: _Run, boots: list[Boot], wait: WaitReady | None) -> None:
    """Boot each Linode once it is offline (a new one provisions first) and wait until each
    node runs, answers SSH with its pinned host key and reports its StackScript done.

    Polls come every `poll_interval`, so no step is noticed later than that. One list of the
    cluster's Linodes serves every node of a poll. Once every node waited for runs, only
    its StackScript is left to wait for: polls then read the nodes over SSH and list the
    Linodes on every LIST_EVERY-th poll only (to notice one gone or shut down), so the
    minutes a StackScript takes cost few API requests."""
    ctx = run.ctx
    to_boot = {s.label for s in boots}
    to_wait = set(wait.labels) if wait else set()
    why: dict[str, str] = {label: "waiting" for label in to_boot | to_wait}
    polls_since_list = [LIST_EVERY]

    def must_list() -> bool:
        if to_boot or polls_since_list[0] >= LIST_EVERY:
            return True
        return any(
            label not in run.instances or run.instances[label].status != "running"
            for label in to_wait
        )

    def poll() -> bool:
        if must_list():
            polls_since_list[0] = 1
            found = ctx.cloud.instances(*listing(ctx.spec))
            listed = {i.label: i for i in cluster_linodes(ctx.spec, found)}
        else:
            polls_since_list[0] += 1
            listed = {label: run.instances[label] for label in to_wait}
        probes = []
        for label in sorted(to_boot | to_wait):
            inst = listed.get(label)
            if inst is None:
                why[label] = "its Linode is gone"
                continue
            known = run.instances.get(label)
            run.instances[label] = replace(inst, config=known.config if known else None)
            if label in to_boot:
                if inst.status in ("running", "booting"):
                    to_boot.discard(label)
                elif inst.status == "offline":
                    config = run.instances[label].config
                    try:
                        run.call(
                            "boot",
                            lambda i=inst, c=config: ctx.cloud.boot(i.id, c[0] if c else None),
                        )
                    except CloudError as exc:
                        if exc.status == 400 and "busy" in exc.reason.lower():
                            continue
                        raise
                    to_boot.discard(label)
                    run.report(f"Boot {label}")
                why[label] = f"Linode status {inst.status}"
                continue
            if inst.status == "offline":
                # It was booted (or running) before: a failed boot says why; otherwise it was
                # shut down and is booted again.
                failure = run.call("events", lambda i=inst: ctx.cloud.boot_failure(i.id))
                if failure is not None:
                    to_wait.discard(label)
                    run.not_ready[label] = f"its boot failed: {failure}"
                    ctx.reporter.failed(f"{label}: its boot failed: {failure}")
                    continue
                to_boot.add(label)
            if inst.status != "running":
                why[label] = f"Linode status {inst.status}"
                continue
            probes.append(inst)
        for inst, (kind, detail) in zip(
            probes, ctx.parallel(lambda i: _probe(run, i), probes), strict=True
        ):
            if kind == "ready":
                to_wait.discard(inst.label)
                run.report(f"{inst.label} is ready ({detail})")
            elif kind == "failed":
                to_wait.discard(inst.label)
                run.not_ready[inst.label] = detail
                ctx.reporter.failed(f"{inst.label}: {detail}")
            else:
                why[inst.label] = detail
        return bool(to_boot or to_wait)

    retrying = Retrying(
        stop=stop_after_delay(ctx.settings.ready_timeout),
        wait=lambda state: ctx.settings.poll_interval,
        retry=retry_if_result(bool),
    )
    try:
        retrying(poll)
    except RetryError:
        left = sorted(to_boot | to_wait)
        stuck = ", ".join(f"{label} ({why.get(label, 'waiting')})" for label in left)
        provisioning = all(why.get(label, "").endswith("provisioning") for label in left)
        raise NotReadyError(
            f"{'did not finish provisioning' if provisioning else 'not ready'} after "
            f"{ctx.settings.ready_timeout:.0f} s: {stuck}",
            hint="rerun `swarmboot up` to go on waiting, or `swarmboot status` to look; a "
            "Linode stuck in provisioning can be deleted and `up` makes it again",
        ) from None


def _probe(run: _Run, inst: Instance) -> tuple[str, str]:
    """("ready", summary), ("failed", reason) or ("waiting", why) for a running node."""
    ctx = run.ctx
    try:
        remote = ctx.remote(inst)
        text = remote.read_file(facts.STATUS_PATH)
    except NotRoutable as exc:
        return "failed", exc.message.removeprefix(f"{inst.label}: ")
    except HostKeyMismatch as exc:
        # Right after the first boot the image's own key may still answer, until the
        # StackScript has put the pinned one in place: wait, never accept it.
        ctx.forget(inst.label)
        return "waiting", exc.message
    except RemoteError as exc:
        ctx.forget(inst.label)
        return "waiting", f"no SSH yet ({exc.message.split(': ', 1)[-1]})"
    if text is None:
        return "waiting", "the StackScript has not started"
    from swarmboot.nodestatus import StatusError, parse_status

    try:
        report = parse_status(text, source=f"{inst.label}:{facts.STATUS_PATH}")
    except StatusError as exc:
        return "waiting", exc.message
    return judge(ctx.spec, report)


# --- swarm steps --------------------------------------------------------------------------


def _manager(run: _Run) -> tuple[Instance, Any]:
    """A manager to talk to: one that is in the swarm and ready."""
    ctx = run.ctx
    for node in ctx.spec.nodes():
        if node.role != "manager" or node.label not in run.instances:
            continue
        inst = run.instances[node.label]
        try:
            remote = ctx.remote(inst)
            local = ctx.swarm.local(remote)
        except (RemoteError, SwarmbootError):
            continue
        if local.state == "active" and local.manager:
            return inst, remote
    raise SwarmbootError(
        "no manager of the swarm answers", hint="run `swarmboot status` to see the managers"
    )


def _sync_members(run: _Run, step: SyncMembers) -> None:
    ctx = run.ctx
    if step.addresses is None:
        raise Replan(f"{step.describe()}: the cluster's addresses were not known when planned")
    content = members_file(step.addresses)

    def sync(label: str) -> None:
        remote = ctx.remote(run.instances[label])
        remote.put_file(facts.MEMBERS_FILE, content)
        remote.run("nft -f /etc/nftables.conf")

    ctx.parallel(sync, [label for label in step.labels if label not in run.not_ready])
    run.report(step.describe())


def _sync_firewall(run: _Run, step: SyncCloudFirewall) -> None:
    firewall_id = step.firewall_id
    if firewall_id is None or step.linode_ids is None:
        raise Replan(f"{step.describe()}: planned before its devices were known")
    rules = step.rules.api() if step.rules is not None else None
    try:
        run.call(
            "firewall", lambda: run.ctx.cloud.update_firewall(firewall_id, rules, step.linode_ids)
        )
    except CloudError as exc:
        if exc.status == 404:
            raise Replan(f"Cloud Firewall {step.label} is gone") from None
        raise
    run.report(step.describe())


def _init(run: _Run, step: InitSwarm) -> None:
    ctx = run.ctx
    inst = run.instances[step.label]
    remote = ctx.remote(inst)
    local = ctx.swarm.local(remote)
    if local.state != "active":
        ctx.swarm.init(remote, advertise_address(ctx.spec, inst))
    run.report(step.describe())


def _tokens(run: _Run, manager: Any) -> tuple[str, str]:
    if run.tokens is None:
        run.tokens = run.ctx.swarm.join_tokens(manager)
    return run.tokens


def _join(run: _Run, label: str, as_manager: bool) -> None:
    ctx = run.ctx
    manager_inst, manager = _manager(run)
    inst = run.instances[label]
    remote = ctx.remote(inst)
    local = ctx.swarm.local(remote)
    if local.state == "active":
        if local.node_id in {n.id for n in ctx.swarm.state(manager, "").nodes}:
            if as_manager and not local.manager:
                ctx.swarm.promote(manager, local.node_id)
            return
        # Active in a swarm this one does not know: the one whose only manager was
        # rebuilt. It leaves that swarm to join this one.
        ctx.swarm.leave(remote)
    worker_token, manager_token = _tokens(run, manager)
    ctx.swarm.join(
        remote,
        advertise_address(ctx.spec, manager_inst),
        manager_token if as_manager else worker_token,
        advertise_address(ctx.spec, inst),
    )


def _join_manager(run: _Run, step: JoinManager) -> None:
    _join(run, step.label, as_manager=True)
    run.report(step.describe())


# A worker whose join failed this many times in one `up` is named and left out (exit 6).
JOIN_ATTEMPTS = 2


def _join_workers(run: _Run, step: JoinWorkers) -> None:
    """Join the workers in parallel. One whose join fails does not stop the others: the
    next round observes it and tries again, and after JOIN_ATTEMPTS it is named."""
    labels = [label for label in step.labels if label not in run.not_ready]

    def join(label: str) -> str | None:
        try:
            _join(run, label, as_manager=False)
        except (SwarmError, RemoteError) as exc:
            return exc.message
        return None

    failed = {
        label: why for label, why in zip(labels, run.ctx.parallel(join, labels), strict=True) if why
    }
    run.unjoined = set(failed)
    for label, why in sorted(failed.items()):
        run.join_failures[label] += 1
        if run.join_failures[label] >= JOIN_ATTEMPTS:
            run.not_ready[label] = f"its join failed {JOIN_ATTEMPTS} times: {why}"
            run.ctx.reporter.failed(f"{label}: {run.not_ready[label]}")
        else:
            run.ctx.reporter.failed(f"{label}: its join failed, tried again next round: {why}")
    joined = len(labels) - len(failed)
    if joined:
        run.report(step.describe() if not failed else f"Join {joined} of {len(labels)} workers")


def _node_id(run: _Run, manager: Any, hostname: str) -> str:
    state = run.ctx.swarm.state(manager, "")
    ready = [n for n in state.nodes if n.hostname == hostname and n.state == "ready"]
    if not ready:
        raise SwarmbootError(f"{hostname} is not a ready swarm node")
    return ready[0].id


def _label(run: _Run, step: LabelNode) -> None:
    if step.label in run.unjoined or step.label in run.not_ready:
        return  # it did not join this round: the next round labels it once it has
    _, manager = _manager(run)
    run.ctx.swarm.set_labels(manager, _node_id(run, manager, step.label), dict(step.labels))
    run.report(step.describe())


def _remove_stale(run: _Run, step: RemoveStaleNode) -> None:
    _, manager = _manager(run)
    run.ctx.swarm.remove(manager, step.node_id)
    run.report(step.describe())


def _drain(run: _Run, step: DrainNode) -> None:
    """Drain the node and wait (up to settings.drain_timeout) until its tasks have moved."""
    ctx = run.ctx
    _, manager = _manager(run)
    ctx.swarm.drain(manager, step.node_id)
    try:
        Retrying(
            retry=retry_if_result(lambda moved: not moved),
            wait=lambda state: min(ctx.settings.poll_interval, 2.0),
            stop=stop_after_delay(ctx.settings.drain_timeout),
        )(lambda: ctx.swarm.drained(manager, step.node_id))
    except RetryError:
        ctx.reporter.failed(
            f"{step.label}: its tasks had not all moved after {ctx.settings.drain_timeout:.0f} s;"
            " going on"
        )
    run.report(step.describe())


def _demote(run: _Run, step: DemoteNode) -> None:
    _, manager = _manager(run)
    run.ctx.swarm.demote(manager, step.node_id)
    run.report(step.describe())


def _leave(run: _Run, step: LeaveSwarm) -> None:
    try:
        run.ctx.swarm.leave(run.ctx.remote(run.instances[step.label]))
    except (RemoteError, SwarmError) as exc:
        # Its entry is removed from a manager next, whether it left or not.
        log.info("%s did not leave the swarm itself: %s", step.label, exc)
    run.report(step.describe())


def _busy(exc: BaseException) -> bool:
    return isinstance(exc, CloudError) and exc.status == 400 and "busy" in exc.reason.lower()


def _rebuild(run: _Run, step: RebuildInstance) -> None:
    """A fresh disk from the image and the StackScript, with a new host key. The new key's
    pin goes into the tags before the rebuild is asked for, so whatever the node answers
    with afterwards can be checked, even after a crash in between."""
    ctx, spec = run.ctx, run.ctx.spec
    if run.script_id is None:
        raise SwarmbootError(f"StackScript {ctx.script.label} is not published")
    inst = run.instances[step.label]
    host_key = new_host_key()
    kept = tuple(t for t in inst.tags if not t.startswith(HOST_KEY_TAG))
    tags = (*kept, host_key_tag(host_key.fingerprint))
    run.call("tags", lambda: ctx.cloud.set_tags(inst.id, tags))
    node = next(n for n in spec.nodes() if n.label == step.label)
    request = RebuildRequest(
        image=spec.cluster.image,
        authorized_keys=(ctx.identity_public,),
        stackscript_id=run.script_id,
        stackscript_data=_stackscript_data(
            run, node.label, node.role, node.region, host_key.private_b64
        ),
        root_pass=_root_password(ctx),
    )
    # A Linode in the middle of a boot or shutdown is busy for a moment.
    Retrying(
        retry=retry_if_exception(_busy),
        wait=lambda state: ctx.settings.poll_interval,
        stop=stop_after_delay(ctx.settings.ready_timeout),
        reraise=True,
    )(lambda: run.call("rebuild", lambda: ctx.cloud.rebuild_instance(inst.id, request)))
    ctx.forget(step.label)
    run.instances[step.label] = replace(inst, tags=tags, status="rebuilding", config=None)
    run.report(step.describe())


def _delete(run: _Run, step: DeleteInstance) -> None:
    inst = run.instances.pop(step.label)
    run.ctx.forget(step.label)
    run.call("delete", lambda: run.ctx.cloud.delete_instance(inst.id))
    run.report(step.describe())


def _clear_mark(run: _Run, step: ClearRebuildMark) -> None:
    inst = run.instances[step.label]
    tags = tuple(t for t in inst.tags if not t.startswith(REBUILD_TAG))
    run.call("tags", lambda: run.ctx.cloud.set_tags(inst.id, tags))
    run.instances[step.label] = replace(inst, tags=tags)
    run.report(step.describe())


def _network(run: _Run, step: EnsureNetwork) -> None:
    _, manager = _manager(run)
    run.ctx.swarm.ensure_network(manager, step.name, step.encrypted, step.subnet)
    run.report(step.describe())


def _not_ready(run: _Run, step: NotReady) -> None:
    run.not_ready[step.label] = step.reason
    run.ctx.reporter.failed(step.describe())


_RUNNERS: dict[type, Callable[[_Run, Any], None]] = {
    PublishStackScript: _publish,
    EnsureCloudFirewall: _ensure_firewall,
    SetKernel: _set_kernel,
    NotReady: _not_ready,
    SyncMembers: _sync_members,
    SyncCloudFirewall: _sync_firewall,
    InitSwarm: _init,
    JoinManager: _join_manager,
    JoinWorkers: _join_workers,
    RemoveStaleNode: _remove_stale,
    LabelNode: _label,
    EnsureNetwork: _network,
    DrainNode: _drain,
    DemoteNode: _demote,
    LeaveSwarm: _leave,
    RebuildInstance: _rebuild,
    DeleteInstance: _delete,
    ClearRebuildMark: _clear_mark,
}


def _run_steps(run: _Run, steps: tuple[Step, ...]) -> None:
    try:
        _carry_out(run, steps)
    except Replan as why:
        log.info("the round ends early: %s", why)


def _carry_out(run: _Run, steps: tuple[Step, ...]) -> None:
    creates = [s for s in steps if isinstance(s, CreateInstance)]
    boots = [s for s in steps if isinstance(s, Boot)]
    wait = next((s for s in steps if isinstance(s, WaitReady)), None)
    for step in steps:
        if isinstance(step, CreateInstance):
            if step is creates[0]:
                run.ctx.parallel(lambda s: _create(run, s), creates)
            continue
        if isinstance(step, Boot | WaitReady):
            first = boots[0] if boots else wait
            if step is first:
                _bring_up(run, boots, wait)
            continue
        _run_step(run, step)


# Steps that can be repeated as they are: they look before they change. Init and joins are
# not among them; the next round observes and plans them afresh.
_REPEATABLE = (
    SyncMembers,
    SyncCloudFirewall,
    RemoveStaleNode,
    LabelNode,
    EnsureNetwork,
    DrainNode,
    DemoteNode,
    ClearRebuildMark,
)


def _run_step(run: _Run, step: Step) -> None:
    try:
        _RUNNERS[type(step)](run, step)
    except (SwarmError, Unreachable) as exc:
        if not isinstance(step, _REPEATABLE):
            raise
        # An SSH connection that broke under the step (a node's sshd restarted, a network
        # blip): reconnect and try the step once more.
        log.info("retrying %r after %s", step.describe(), exc)
        for node in run.ctx.spec.nodes():
            run.ctx.forget(node.label)
        _RUNNERS[type(step)](run, step)


def run_steps(ctx: Context, observed: Observed, steps: tuple[Step, ...]) -> list[str]:
    """Carry out planned steps on the world as observed; what was done."""
    run = _Run(ctx, observed)
    _run_steps(run, steps)
    return run.done


def _refresh(run: _Run) -> Observed:
    observed = observe(run.ctx)
    # What waiting found out (a failed probe, no machine) stands until the next `up`.
    observed = replace(observed, failures={**observed.failures, **run.not_ready})
    run.observed = observed
    run.instances.update({i.label: i for i in observed.instances})
    return observed


def _this_round(steps: tuple[Step, ...]) -> tuple[Step, ...]:
    """The steps to run before looking at the world again: up to the last rebuild (the
    nodes to rebuild leave the swarm first), else the cloud steps up to waiting for the
    nodes, else the swarm steps."""
    rebuilds = [n for n, s in enumerate(steps) if isinstance(s, RebuildInstance)]
    if rebuilds:
        return steps[: rebuilds[-1] + 1]
    cloud = tuple(s for s in steps if isinstance(s, (*CLOUD_STEPS, WaitReady)))
    return cloud or steps


def up(
    ctx: Context, *, rounds: int = 6, prune: bool = False, observed: Observed | None = None
) -> UpResult:
    """Converge the world to the spec; raise `NotReadyError` naming nodes left out.

    Each round plans from a fresh observation and runs the steps of one phase (rebuilds,
    then the cloud steps up to waiting for the nodes, then the swarm steps); a converged
    world plans nothing and ends it. With `prune`, Linodes the spec no longer has are
    drained, taken out of the swarm and deleted."""
    started = time.monotonic()
    run = _Run(ctx, observed or observe(ctx))
    for _ in range(rounds):
        steps = plan(ctx.spec, run.observed, ctx.script, prune=prune)
        for step in steps:
            if isinstance(step, NotReady) and step.label not in run.not_ready:
                _not_ready(run, step)
        pending = tuple(s for s in steps if not isinstance(s, NotReady))
        if not pending:
            break
        _run_steps(run, _this_round(pending))
        _refresh(run)
    else:
        left = [
            s.describe()
            for s in plan(ctx.spec, run.observed, ctx.script, prune=prune)
            if not isinstance(s, NotReady)
        ]
        if left:
            raise SwarmbootError(
                f"the cluster did not converge after {rounds} rounds; still "
                f"to do: {'; '.join(left[:3])}",
                hint="rerun `swarmboot up`; if it persists, `swarmboot plan` shows what is left",
            )
    result = UpResult(run.observed, run.done, run.not_ready, time.monotonic() - started)
    kept = surplus(ctx.spec, run.observed)
    if kept and not prune:
        ctx.reporter.failed(
            f"kept {len(kept)} node(s) the spec no longer has: "
            f"{', '.join(i.label for i in kept)}; `swarmboot up --prune` removes them"
        )
    if run.not_ready:
        names = "; ".join(f"{label}: {why}" for label, why in sorted(run.not_ready.items()))
        error = NotReadyError(
            f"{len(run.not_ready)} node(s) not joined: {names}",
            hint="`swarmboot status` shows each node; a failed StackScript logs to "
            "/var/log/swarmboot-stackscript.log on it; fix and rerun `swarmboot up`",
        )
        error.result = result  # type: ignore[attr-defined]
        raise error
    return result
