"""When a node is ready to join the swarm, from its status report: one rule that plan, apply
(while it waits), status and rebuild all use.

A node joins once its StackScript is done and nothing keeps it out (a kernel that is not its
own, a failed script, no vxlan, no Docker, no firewall). A kernel without IPsec ESP does not
keep a node out by itself: on an encrypted overlay it is the cluster's problem (the plan
refuses, `network.require_esp`), and `status` shows it on the node.
"""

from __future__ import annotations

from typing import Literal

from swarmboot.nodestatus import NodeStatus
from swarmboot.spec import Spec
from swarmboot.state import Observed

__all__ = [
    "UNHEARD",
    "Verdict",
    "esp_lacking",
    "is_ready",
    "join_problems",
    "judge",
    "status_problems",
    "unhealthy",
    "unheard",
    "why_failed",
]

# Linode statuses of a Linode that is not running and is not on its way there.
_STOPPED = ("offline", "stopped", "billing_suspension")

Verdict = tuple[Literal["ready", "failed", "waiting"], str]


def join_problems(spec: Spec, report: NodeStatus) -> tuple[str, ...]:
    """What keeps the node out of the swarm; empty when it may join."""
    return report.problems(
        require_esp=False, require_distro_kernel=spec.cluster.require_grub_kernel
    )


def status_problems(spec: Spec, report: NodeStatus) -> tuple[str, ...]:
    """What `status` shows on the node: what keeps it out, and a kernel without the ESP the
    cluster's encrypted overlay needs."""
    return report.problems(
        require_esp=spec.encrypted and spec.network.require_esp,
        require_distro_kernel=spec.cluster.require_grub_kernel,
    )


def esp_lacking(spec: Spec, observed: Observed) -> tuple[str, ...]:
    """The nodes whose kernel lacks the IPsec ESP that the spec's encrypted overlay requires."""
    if not spec.encrypted or not spec.network.require_esp:
        return ()
    return tuple(
        sorted(
            label
            for label, report in observed.reports.items()
            if report.phase == "done" and report.esp_ok is False
        )
    )


def is_ready(spec: Spec, observed: Observed, label: str) -> bool:
    report = observed.reports.get(label)
    return report is not None and join_problems(spec, report) == ()


def why_failed(spec: Spec, observed: Observed, label: str) -> str | None:
    """Why a node that has finished its StackScript cannot join, if it cannot (or what
    waiting found out about it)."""
    if label in observed.failures:
        return observed.failures[label]
    report = observed.reports.get(label)
    if report is None or report.phase == "running":
        return None
    problems = join_problems(spec, report)
    return "; ".join(problems) if problems else None


def judge(spec: Spec, report: NodeStatus) -> Verdict:
    """A running node's report as waiting sees it: ready (with a summary), failed (why) or
    still waiting."""
    if report.phase == "running":
        return "waiting", "the StackScript is running"
    problems = join_problems(spec, report)
    if problems:
        return "failed", "; ".join(problems)
    esp = "ESP" if report.esp_ok else "no ESP"
    return "ready", f"kernel {report.kernel_release}, vxlan, {esp}, Docker {report.docker_version}"


def unhealthy(spec: Spec, observed: Observed) -> list[tuple[str, str]]:
    """The spec's nodes to rebuild, in the order nodes are made (managers first), and why:
    gone while the swarm still has entries for them, a rebuild cut short, a Linode that is
    not running, or no entry of theirs ready in the swarm (one the leader has not heard from
    yet is not known to be dead: see `unheard`). `repair` and `recover` rebuild these."""
    out = []
    swarm = observed.swarm
    for node in spec.nodes():
        inst = observed.instance(node.label)
        entries = [e for e in swarm.nodes if e.hostname == node.label] if swarm else []
        if inst is None:
            # Gone, if it was ever there: a node never made is `up`'s to make.
            if entries:
                out.append((node.label, "its Linode is gone"))
        elif inst.rebuild_since is not None:
            out.append((node.label, "its rebuild was cut short"))
        elif inst.status in _STOPPED:
            out.append((node.label, f"its Linode is {inst.status}"))
        elif entries and not any(e.state in ("ready", UNHEARD) for e in entries):
            out.append((node.label, f"it is {entries[0].state} in the swarm"))
    return out


def silent_and_down(observed: Observed, label: str) -> str | None:
    """Why waiting for a node is in vain, if it is: it joined the swarm once, and now its
    Linode runs without a rebuild or an upgrade under way, it does not answer over SSH,
    and no entry of its is ready in the swarm (nor unheard since a new leader took over).
    Such a node is dead, not booting; `repair` rebuilds it."""
    inst = observed.instance(label)
    swarm = observed.swarm
    if inst is None or inst.status != "running" or inst.rebuild_since is not None:
        return None
    if any(t.startswith("upgrade:") and not t.endswith(":done") for t in inst.tags):
        return None  # out for its upgrade (swarmboot.upgrade.progress): it may be rebooting
    if swarm is None or label in observed.reports or label in observed.failures:
        return None
    entries = [e for e in swarm.nodes if e.hostname == label]
    if not entries or any(e.state in ("ready", UNHEARD) for e in entries):
        return None
    return (
        f"it is {entries[0].state} in the swarm and does not answer over SSH; "
        "`swarmboot repair` rebuilds it"
    )


# A node's state after its swarm's leader changed, until the new leader hears from it (a
# heartbeat: it is ready) or gives up on it (it is down): not known to be dead.
UNHEARD = "unknown"


def unheard(observed: Observed) -> tuple[str, ...]:
    """The nodes whose swarm entry the leader has not heard from since it took over."""
    swarm = observed.swarm
    if swarm is None:
        return ()
    ready = {e.hostname for e in swarm.nodes if e.state == "ready"}
    return tuple(sorted({e.hostname for e in swarm.nodes if e.state == UNHEARD} - ready))
