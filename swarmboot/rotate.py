"""`rotate`: the swarm's join tokens and its certificate authority made anew.

Join tokens (`--join-tokens`) are what a node shows to join the swarm, one for workers and
one for managers; anyone who has seen one (a log, a shell history, a departed colleague) can
join a node until they are rotated. Rotating them is `docker swarm join-token --rotate` for
both: the old ones join no node any more, and the nodes in the swarm are not touched.

The CA (`--ca`) signs every node's certificate, which the nodes' mutual TLS rests on.
Rotating it is `docker swarm ca --rotate`: the spec's `CAConfig.ForceRotate` is raised by one,
the managers make a new root key and certificate, every node is given a new certificate
from it (cross-signed meanwhile, so the nodes keep talking to each other), and then every
node trusts the new root alone. It is done when the swarm says no rotation is in progress
and every node's TLS information names the new issuer and root, as `docker swarm ca
--rotate` waits for. A node that is down gets no new certificate and the rotation waits for
it, so it is refused while one is: `repair` it first.

A plan from what is observed, run by the engine `up` uses. Run again after it was killed, it
carries on: a rotation in progress (or whose nodes have not all taken the new root yet) is
waited for, not started again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from swarmboot.errors import ExitCode, SwarmbootError
from swarmboot.recover import refuse_lost_quorum
from swarmboot.spec import Spec
from swarmboot.state import Observed, SwarmState

if TYPE_CHECKING:
    from swarmboot.apply.changes import Change
    from swarmboot.cluster import Context

__all__ = [
    "AwaitCARotation",
    "NothingToRotate",
    "RotateCA",
    "RotateJoinTokens",
    "RotateResult",
    "ca_behind",
    "check_asked",
    "plan_rotate",
    "rotate",
]


class NothingToRotate(SwarmbootError):
    """`rotate` was given neither --join-tokens nor --ca."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class RotateJoinTokens:
    via: str

    def describe(self) -> str:
        return (
            f"Rotate the swarm's worker and manager join tokens through {self.via}: the old "
            "ones join no node any more"
        )


@dataclass(frozen=True)
class RotateCA:
    via: str
    force_rotate: int  # CAConfig.ForceRotate to set: the value read, plus one
    nodes: int

    def describe(self) -> str:
        return (
            f"Rotate the swarm's CA through {self.via}: a new root key and certificate, and "
            f"a new certificate for each of its {self.nodes} nodes"
        )


@dataclass(frozen=True)
class AwaitCARotation:
    """Wait through the manager `via` until the swarm's CA rotation is over and every node
    in it has a certificate from the new CA and trusts its root."""

    via: str
    labels: tuple[str, ...]

    def describe(self) -> str:
        return (
            f"Wait until each of the {len(self.labels)} nodes has its certificate from the "
            "new CA and trusts its root"
        )


def ca_behind(swarm: SwarmState) -> list[str]:
    """The nodes whose certificate or trusted root is not the swarm's CA's yet."""
    ca = swarm.ca
    assert ca is not None
    return sorted(
        e.hostname for e in swarm.nodes if (e.issuer, e.trust_root) != (ca.issuer, ca.trust_root)
    )


def check_asked(join_tokens: bool, ca: bool) -> None:
    """Refuse `rotate` with nothing to rotate (a usage error, exit 2)."""
    if not (join_tokens or ca):
        raise NothingToRotate(
            "nothing to rotate: give --join-tokens, --ca or both",
            hint="see `swarmboot rotate -h`",
        )


def plan_rotate(spec: Spec, observed: Observed, *, join_tokens: bool, ca: bool) -> tuple:
    """The steps of `rotate`: the join tokens, the CA, or both; a CA rotation in progress is
    only waited for."""
    check_asked(join_tokens, ca)
    refuse_lost_quorum(observed)
    swarm = observed.swarm
    if swarm is None or swarm.ca is None:
        raise SwarmbootError(
            f"{spec.cluster.name} has no swarm to rotate: no manager answers",
            hint="`swarmboot status` shows each node; `swarmboot up` makes the cluster",
        )
    steps: list = []
    if join_tokens:
        steps.append(RotateJoinTokens(swarm.manager))
    if ca:
        down = sorted({e.hostname for e in swarm.nodes if e.state != "ready"})
        in_progress = swarm.ca.rotating or bool(ca_behind(swarm))
        if down:
            names = f"{', '.join(down)} {'is' if len(down) == 1 else 'are'} not ready"
            raise SwarmbootError(
                f"the swarm's CA rotation in progress waits for nodes, and {names} in the swarm"
                if in_progress
                else f"the swarm's CA cannot be rotated while {names} in the swarm: a node "
                "that is down gets no new certificate, and the rotation waits for it",
                hint="`swarmboot repair SPEC` rebuilds the nodes that are down (`swarmboot up` "
                "removes the entries of nodes that are gone); then rotate again",
            )
        labels = tuple(sorted(e.hostname for e in swarm.nodes))
        if not in_progress:
            steps.append(RotateCA(swarm.manager, swarm.ca.force_rotate + 1, len(labels)))
        steps.append(AwaitCARotation(swarm.manager, labels))
    return tuple(steps)


def _starts(step: object) -> bool:
    """A step that changes the swarm (one that only waits does not)."""
    return not isinstance(step, AwaitCARotation)


@dataclass
class RotateResult:
    observed: Observed
    steps_run: list[str]
    seconds: float
    changes: list[Change] = field(default_factory=list)


def rotate(
    ctx: Context,
    observed: Observed,
    *,
    join_tokens: bool,
    ca: bool,
    confirm: Callable[[], None] | None = None,
) -> RotateResult:
    """Carry out `rotate` from the world as observed; `confirm` is asked before a step that
    changes the swarm (a rotation in progress is waited for without asking)."""
    from swarmboot.apply import run_steps
    from swarmboot.certs import observe_certificates
    from swarmboot.cluster import observe

    started = ctx.clock.monotonic()
    steps = plan_rotate(ctx.spec, observed, join_tokens=join_tokens, ca=ca)
    if confirm is not None and any(_starts(s) for s in steps):
        confirm()
    changes: list[Change] = []
    done = run_steps(ctx, observed, steps, changes=changes)
    after = observe_certificates(ctx, observe(ctx))
    return RotateResult(after, done, ctx.clock.monotonic() - started, changes)
