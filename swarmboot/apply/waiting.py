"""Booting the Linodes and waiting until each node is ready: the runner of `Boot` and
`WaitReady`, of `NotReady` (a node left out, and why), and of `AwaitNodes` (a new leader
hearing from every node)."""

from __future__ import annotations

from dataclasses import replace

from tenacity import RetryError, Retrying, retry_if_result

from swarmboot import facts
from swarmboot.apply.cloud_steps import busy
from swarmboot.apply.run import NotReadyError, Replan, Run
from swarmboot.clock import stop_after
from swarmboot.cloud import CloudError
from swarmboot.errors import SwarmbootError
from swarmboot.membership import cluster_linodes, listing
from swarmboot.nodestatus import StatusError, parse_status
from swarmboot.plan import Boot, NotReady, WaitReady
from swarmboot.readiness import UNHEARD, judge
from swarmboot.recover import AwaitNodes
from swarmboot.remote import HostKeyMismatch, RemoteError
from swarmboot.routes import NotRoutable
from swarmboot.state import Instance

__all__ = ["LIST_EVERY", "await_nodes", "bring_up", "not_ready"]

# While only StackScripts are waited for, the Linodes are listed on every LIST_EVERY-th poll.
LIST_EVERY = 4


def bring_up(run: Run, boots: list[Boot], wait: WaitReady | None) -> None:
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
            listed = {i.label: i for i in cluster_linodes(ctx.spec, found, ctx.marks)}
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
                        if busy(exc):
                            continue
                        raise
                    to_boot.discard(label)
                    run.report(f"Boot {label}")
                    run.changed("linode_booted", label, inst.id)
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
        stop=stop_after(ctx.clock, ctx.settings.ready_timeout),
        wait=lambda state: ctx.settings.poll_interval,
        sleep=ctx.clock.sleep,
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


def _probe(run: Run, inst: Instance) -> tuple[str, str]:
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
    try:
        report = parse_status(text, source=f"{inst.label}:{facts.STATUS_PATH}")
    except StatusError as exc:
        return "waiting", exc.message
    return judge(ctx.spec, report)


def not_ready(run: Run, step: NotReady) -> None:
    run.not_ready[step.label] = step.reason
    run.ctx.reporter.failed(step.describe())


def await_nodes(run: Run, step: AwaitNodes) -> None:
    """Poll the swarm through the leader until none of the step's nodes is `unknown` to it
    (`until="heard"`), or every one is ready (`until="ready"`), up to settings.heard_timeout.
    Not heard from in time: the round ends and the next plans again. Not ready in time: a
    node that answers and will not reconnect is named, with the fix."""
    ctx = run.ctx
    manager = ctx.remote(run.instance(step.via))

    def left() -> set[str]:
        swarm = ctx.swarm.state(manager, step.via)
        ready = {e.hostname for e in swarm.nodes if e.state == "ready"}
        if step.until == "ready":
            return set(step.labels) - ready
        return {
            e.hostname
            for e in swarm.nodes
            if e.hostname in step.labels and e.state == UNHEARD and e.hostname not in ready
        }

    try:
        Retrying(
            stop=stop_after(ctx.clock, ctx.settings.heard_timeout),
            wait=lambda state: min(ctx.settings.poll_interval, 2.0),
            sleep=ctx.clock.sleep,
            retry=retry_if_result(bool),
        )(left)
    except RetryError as exc:
        names = ", ".join(sorted(exc.last_attempt.result()))
        if step.until == "ready":
            raise SwarmbootError(
                f"{names} answer but have not reconnected to the swarm after "
                f"{ctx.settings.heard_timeout:.0f} s",
                hint="`swarmboot node rebuild SPEC LABEL` replaces such a node; `swarmboot "
                "recover` again waits once more",
            ) from None
        raise Replan(
            f"the leader had not heard from {names} after {ctx.settings.heard_timeout:.0f} s"
        ) from None
    run.report(step.describe())
