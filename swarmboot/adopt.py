"""`adopt` as a plan: mark as the cluster's the Linodes that carry its tag under a node label
but not the mark this SSH identity makes (made before swarmboot marked its Linodes, or with
another identity), and the VPCs under its VPC labels with its tag but not the mark in their
description, each by a step the engine runs.

A mark is the operator's word that a Linode is the cluster's: `adopt` names every Linode it
would mark (label, Linode id, pinned host key) and asks first. It reads and changes the cloud
only; a rerun after a crash marks what is left, and one with nothing left plans nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from swarmboot.errors import ExitCode, SwarmbootError
from swarmboot.interfaces import MarkVpc, unmarked_vpcs, vpc_description
from swarmboot.marks import MemberMarks, marked_tags
from swarmboot.spec import Spec
from swarmboot.state import Observed

__all__ = ["MarkInstance", "NotUnmarked", "plan_adopt"]


class NotUnmarked(SwarmbootError):
    """A label given to `adopt` that is not an unmarked Linode of the cluster."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class MarkInstance:
    label: str
    linode_id: int
    # The Linode's tags with the new mark (its pin kept: the mark covers it).
    tags: tuple[str, ...]
    fingerprint: str | None

    def describe(self) -> str:
        pin = self.fingerprint or "no pinned host key (`node rebuild` pins a new one)"
        return f"Mark {self.label} (Linode {self.linode_id}, {pin}) as this cluster's"


def plan_adopt(
    spec: Spec, observed: Observed, marks: MemberMarks, labels: tuple[str, ...] = ()
) -> tuple[MarkInstance | MarkVpc, ...]:
    """A mark for each unmarked Linode of the cluster, in label order, then for each of its
    unmarked VPCs (of `labels` only, when given). A label that is neither is refused."""
    vpcs = unmarked_vpcs(spec, observed)
    unknown = sorted(set(labels) - {i.label for i in observed.unmarked} - {v.label for v in vpcs})
    if unknown:
        members = {i.label for i in observed.instances}
        why = (
            "already marked: members of the cluster"
            if set(unknown) <= members
            else "not an unmarked Linode of the cluster (its tag and a node label), nor one of "
            "its VPCs"
        )
        raise NotUnmarked(
            f"{', '.join(unknown)}: {why}",
            hint="`swarmboot status SPEC` names the Linodes that are not members",
        )
    chosen = [i for i in observed.unmarked if not labels or i.label in labels]
    steps: list[MarkInstance | MarkVpc] = [
        MarkInstance(
            inst.label,
            inst.id,
            marked_tags(
                inst.tags, marks.mark(spec.cluster.name, inst.label, inst.host_key_fingerprint)
            ),
            inst.host_key_fingerprint,
        )
        for inst in sorted(chosen, key=lambda i: i.label)
    ]
    steps += [
        MarkVpc(v.label, v.id, vpc_description(spec, marks, v.label, v.region))
        for v in sorted(vpcs, key=lambda v: v.label)
        if not labels or v.label in labels
    ]
    return tuple(steps)
