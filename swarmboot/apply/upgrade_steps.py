"""The runners of `upgrade`'s steps: a node marked, taken out of service, upgraded, rebooted,
waited for, made active again and checked (see swarmboot.upgrade)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tenacity import Retrying, retry_if_exception

from swarmboot import facts
from swarmboot.apply.cloud_steps import busy
from swarmboot.apply.run import Run
from swarmboot.clock import stop_after
from swarmboot.errors import SwarmbootError
from swarmboot.remote import HostKeyMismatch, Remote, RemoteError, Unreachable
from swarmboot.routes import NotRoutable
from swarmboot.swarm import SwarmError
from swarmboot.upgrade import (
    FACTS_COMMAND,
    FLAG_COMMAND,
    REBOOT_FLAG,
    UPGRADE_LOG,
    AwaitSwarm,
    AwaitUpgraded,
    CheckNode,
    MarkUpgrade,
    NodeFacts,
    Reactivate,
    Reboot,
    TakeOut,
    UpgradePackages,
    parse_facts,
    upgrade_command,
)

__all__ = ["REPEATABLE", "RUNNERS", "SWARM_STEPS"]

# How long an apt-get run may take on a node (a dist-upgrade with a new kernel and initramfs).
APT_TIMEOUT = 1800.0


def _manager(run: Run, label: str) -> Remote:
    return run.ctx.remote(run.instance(label))


def _mark(run: Run, step: MarkUpgrade) -> None:
    inst = run.instance(step.label)
    run.call("tags", lambda: run.ctx.cloud.set_tags(step.linode_id, step.tags))
    run.instances[step.label] = replace(inst, tags=step.tags)
    run.report(step.describe())
    run.changed("upgrade_marked", step.label, step.linode_id)


def _move_sole_services(run: Run, step: TakeOut, manager: Remote) -> None:
    """A replicated service whose every task runs on the node (its other nodes upgraded
    before it, say) would stop serving for a moment if the node were drained: its tasks
    stop at once, and new ones take a while to answer. So the node is paused (it takes no
    new task) and such a service rolled (`docker service update --force`): its tasks move
    elsewhere one at a time, start-first where its update_config says so."""
    ctx = run.ctx
    sole = ctx.swarm.sole_services(manager, step.node_id)
    if not sole:
        return
    ctx.swarm.pause(manager, step.node_id)
    for name in sole:
        ctx.swarm.roll(manager, name)
    if not run.until(
        lambda: ctx.swarm.moved(manager, step.node_id, sole), ctx.settings.drain_timeout
    ):
        raise SwarmbootError(
            f"{', '.join(sole)} had not moved off {step.label} "
            f"{ctx.settings.drain_timeout:.0f} s after it was paused and they were rolled",
            hint="`docker service ps` on a manager shows why (constraints or resources may "
            "leave no other node for them)",
        )
    ctx.reporter.ok(f"Moved {', '.join(sole)} off {step.label}, one task at a time")


def _take_out(run: Run, step: TakeOut) -> None:
    """Move off the services that run only there, drain the node and wait until its tasks
    have moved; not in time: the upgrade stops here (the node stays out)."""
    ctx = run.ctx
    manager = _manager(run, step.via)
    _move_sole_services(run, step, manager)
    drained = ctx.swarm.drain(manager, step.node_id)
    if drained:
        run.changed("node_drained", step.label, step.node_id)
    if not run.until(lambda: ctx.swarm.drained(manager, step.node_id), ctx.settings.drain_timeout):
        raise SwarmbootError(
            f"{step.label}'s tasks had not all moved {ctx.settings.drain_timeout:.0f} s after "
            "its drain (a task still runs there, or a replicated service is below its count "
            "elsewhere)",
            hint="`docker service ls` on a manager shows which; constraints or resources may "
            "leave no other node for it",
        )
    run.report(step.describe())


def _upgrade_packages(run: Run, step: UpgradePackages) -> None:
    remote = run.ctx.remote(run.instance(step.label))
    try:
        remote.run(upgrade_command(step.kind), timeout=APT_TIMEOUT)
    except Unreachable:
        raise
    except RemoteError as exc:
        # The command is long and the same every time: its exit and output's tail say it.
        said = exc.message.rsplit("`", 1)[-1].strip()
        raise SwarmbootError(
            f"{step.label}: apt-get {said}",
            hint=f"{UPGRADE_LOG} on the node has its whole output",
        ) from None
    run.report(step.describe())
    run.changed("node_upgraded", step.label)


def _read_facts(run: Run, label: str) -> NodeFacts:
    return parse_facts(run.ctx.remote(run.instance(label)).run(FACTS_COMMAND, timeout=60))


def _reboot(run: Run, step: Reboot) -> None:
    """A flag on /run (a tmpfs), the Linode rebooted with its config profile, and a wait
    until SSH answers without the flag: the node has booted again."""
    ctx = run.ctx
    inst = run.instance(step.label)
    remote = ctx.remote(inst)
    remote.run(FLAG_COMMAND)
    Retrying(
        retry=retry_if_exception(busy),
        wait=lambda state: ctx.settings.poll_interval,
        stop=stop_after(ctx.clock, ctx.settings.ready_timeout),
        sleep=ctx.clock.sleep,
        reraise=True,
    )(lambda: run.call("reboot", lambda: ctx.cloud.reboot(step.linode_id)))
    run.changed("linode_rebooted", step.label, step.linode_id)
    ctx.forget(step.label)

    def booted() -> bool:
        try:
            return ctx.remote(inst).read_file(REBOOT_FLAG) is None
        except HostKeyMismatch:
            raise
        except (RemoteError, NotRoutable):
            ctx.forget(step.label)
            return False

    if not run.until(booted, ctx.settings.ready_timeout, longest=ctx.settings.poll_interval):
        raise SwarmbootError(
            f"{step.label} did not answer SSH after its reboot within "
            f"{ctx.settings.ready_timeout:.0f} s",
            hint="Lish (the Linode's console) shows how far it booted",
        )
    run.report(step.describe())


def _refresh_status(remote: Remote, found: NodeFacts) -> None:
    """The status file brought up to date with the node's kernel, vxlan and Docker after
    its upgrade (the script wrote it at the first boot; `status` reads it)."""
    text = remote.read_file(facts.STATUS_PATH)
    if not text:
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return
    data.update(
        kernel_release=found.kernel,
        distro_kernel=found.distro,
        newest_kernel=found.newest,
        reboot_required=found.reboot_required,
        vxlan_ok=found.vxlan,
        docker_ok=found.docker is not None,
        docker_version=found.docker,
    )
    remote.put_file(facts.STATUS_PATH, json.dumps(data, indent=2) + "\n")


def _await_upgraded(run: Run, step: AwaitUpgraded) -> None:
    """Until the node is ready as `up` has it (kernel, vxlan, Docker) and Ready in the
    swarm; its status file is then brought up to date."""
    ctx = run.ctx
    require = ctx.spec.cluster.require_grub_kernel
    why = ["no answer yet"]

    def ready() -> bool:
        try:
            found = _read_facts(run, step.label)
        except HostKeyMismatch:
            raise
        except (RemoteError, NotRoutable) as exc:
            ctx.forget(step.label)
            why[0] = f"no SSH ({exc.message.split(': ', 1)[-1]})"
            return False
        problems = found.problems(require)
        if problems:
            why[0] = "; ".join(problems)
            return False
        try:
            entry = ctx.swarm.state(_manager(run, step.via), step.via).node(step.label)
        except (SwarmError, RemoteError) as exc:
            why[0] = f"the swarm could not be read: {exc.message}"
            return False
        if entry is None or entry.state != "ready":
            why[0] = f"it is {entry.state if entry else 'missing'} in the swarm"
            return False
        _refresh_status(ctx.remote(run.instance(step.label)), found)
        return True

    if not run.until(ready, ctx.settings.ready_timeout, longest=5.0):
        raise SwarmbootError(
            f"{step.label} was not ready {ctx.settings.ready_timeout:.0f} s after its upgrade: "
            f"{why[0]}",
            hint="a kernel that is not the newest installed means GRUB booted another one: "
            "check the config profile's kernel (linode/grub2) and /boot/grub/grub.cfg",
        )
    run.report(step.describe())


def _reactivate(run: Run, step: Reactivate) -> None:
    if run.ctx.swarm.activate(_manager(run, step.via), step.node_id):
        run.changed("node_reactivated", step.label, step.node_id)
    run.report(step.describe())


def _check(run: Run, step: CheckNode) -> None:
    entry = run.ctx.swarm.state(_manager(run, step.via), step.via).node(step.label)
    if entry is None or entry.state != "ready" or entry.availability != "active":
        found = f"{entry.state}, {entry.availability}" if entry else "missing"
        raise SwarmbootError(f"{step.label} is not Ready and active in the swarm: it is {found}")
    held = dict(entry.labels)
    wrong = [f"{k}={v}" for k, v in step.labels if held.get(k) != v]
    if wrong:
        raise SwarmbootError(
            f"{step.label} lacks its labels {', '.join(wrong)}",
            hint="`swarmboot up` labels it again",
        )
    run.report(step.describe())


def _await_swarm(run: Run, step: AwaitSwarm) -> None:
    """Until the leader has every node Ready (up to settings.heard_timeout): after a
    manager restarted, the next node is taken out only from a whole swarm."""
    ctx = run.ctx
    left: list[str] = []

    def whole() -> bool:
        try:
            swarm = ctx.swarm.state(_manager(run, step.via), step.via)
        except (SwarmError, RemoteError) as exc:
            left[:] = [f"the swarm could not be read ({exc.message})"]
            return False
        ready = {e.hostname for e in swarm.nodes if e.state == "ready"}
        left[:] = [label for label in step.labels if label not in ready]
        return not left

    if not run.until(whole, ctx.settings.heard_timeout):
        raise SwarmbootError(
            f"{', '.join(left)} not Ready to the swarm's leader "
            f"{ctx.settings.heard_timeout:.0f} s after a manager's upgrade",
            hint="`swarmboot status SPEC` shows each node",
        )
    run.report(step.describe())


RUNNERS: dict[type, Callable[[Run, Any], None]] = {
    MarkUpgrade: _mark,
    TakeOut: _take_out,
    UpgradePackages: _upgrade_packages,
    Reboot: _reboot,
    AwaitUpgraded: _await_upgraded,
    Reactivate: _reactivate,
    CheckNode: _check,
    AwaitSwarm: _await_swarm,
}
# Steps that change nothing in the cloud (the engine's `_changes`).
SWARM_STEPS = (TakeOut, UpgradePackages, AwaitUpgraded, Reactivate, CheckNode, AwaitSwarm)
# Steps that look before they change: repeated once after a broken SSH connection.
REPEATABLE = (TakeOut, Reactivate, CheckNode)
