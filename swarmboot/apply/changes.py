"""What a run changed in the world: one record per object a runner changed, for scripts and CI.

A runner records a change only once it has made it, and only when there was something to
make: a step that found the world as it wanted it (a network already there, an entry
already gone, labels already set) records nothing, so a second `up` on a converged cluster
reports an empty list. A change names its kind, the object's label or name and its id where
the object has one (a Linode's, a Cloud Firewall's, a swarm node's); never a secret.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["KINDS", "Change", "changes_data", "changes_line"]

# Every kind of change, with how one line says a number of them: (one, many, what was done).
KINDS: dict[str, tuple[str, str, str]] = {
    # The cloud
    "stackscript_published": ("StackScript", "StackScripts", "published"),
    "stackscript_updated": ("StackScript", "StackScripts", "updated"),
    "stackscript_deleted": ("StackScript", "StackScripts", "deleted"),
    "firewall_created": ("Cloud Firewall", "Cloud Firewalls", "created"),
    "firewall_updated": ("Cloud Firewall", "Cloud Firewalls", "updated"),
    "firewall_deleted": ("Cloud Firewall", "Cloud Firewalls", "deleted"),
    "placement_group_created": ("placement group", "placement groups", "created"),
    "placement_group_deleted": ("placement group", "placement groups", "deleted"),
    "vpc_created": ("VPC", "VPCs", "created"),
    "vpc_subnet_created": ("VPC subnet", "VPC subnets", "created"),
    "vpc_deleted": ("VPC", "VPCs", "deleted"),
    "vpc_marked": ("VPC", "VPCs", "marked as the cluster's"),
    "linode_placed": ("Linode", "Linodes", "put into a placement group"),
    "linode_created": ("Linode", "Linodes", "created"),
    "kernel_set": ("kernel", "kernels", "set to linode/grub2"),
    "linode_booted": ("Linode", "Linodes", "booted"),
    "linode_rebuilt": ("Linode", "Linodes", "rebuilt"),
    "linode_deleted": ("Linode", "Linodes", "deleted"),
    "linode_shut_down": ("Linode", "Linodes", "shut down"),
    "linode_marked": ("Linode", "Linodes", "marked as the cluster's"),
    "rebuild_marked": ("Linode", "Linodes", "marked for a rebuild"),
    "rebuild_finished": ("rebuild", "rebuilds", "finished"),
    "upgrade_marked": ("upgrade mark", "upgrade marks", "set"),
    "linode_rebooted": ("Linode", "Linodes", "rebooted"),
    # The nodes and the swarm
    "member_set_updated": ("firewall member set", "firewall member sets", "updated"),
    "swarm_initialised": ("swarm", "swarms", "initialised"),
    "swarm_forced_new": ("new swarm", "new swarms", "forced from a manager's raft state"),
    "swarm_restored": ("swarm", "swarms", "restored from a backup"),
    "node_unlocked": ("node", "nodes", "unlocked"),
    "node_joined": ("node", "nodes", "joined"),
    "node_promoted": ("node", "nodes", "promoted"),
    "node_demoted": ("node", "nodes", "demoted"),
    "node_drained": ("node", "nodes", "drained"),
    "node_upgraded": ("node", "nodes", "upgraded"),
    "node_reactivated": ("node", "nodes", "reactivated"),
    "node_labelled": ("node", "nodes", "labelled"),
    "node_left": ("node", "nodes", "made to leave the swarm"),
    "node_removed": ("swarm entry", "swarm entries", "removed"),
    "network_created": ("overlay network", "overlay networks", "created"),
    "heartbeat_set": ("swarm heartbeat", "swarm heartbeats", "set"),
    "join_tokens_rotated": ("pair of join tokens", "pairs of join tokens", "rotated"),
    "ca_rotated": ("swarm CA", "swarm CAs", "rotated"),
    # The application (deploy, secret set)
    "config_created": ("swarm config", "swarm configs", "created"),
    "config_removed": ("swarm config", "swarm configs", "removed"),
    "stack_deployed": ("stack", "stacks", "deployed"),
    "service_rolled_back": ("service", "services", "rolled back"),
    "secret_created": ("swarm secret", "swarm secrets", "created"),
    "secret_removed": ("swarm secret", "swarm secrets", "removed"),
}


@dataclass(frozen=True)
class Change:
    kind: str  # one of KINDS
    name: str  # the object's label or name
    id: int | str | None = None  # its id in Linode or the swarm, where it has one

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind of change: {self.kind}")

    def data(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "id": self.id}


def changes_data(changes: Iterable[Change]) -> list[dict[str, Any]]:
    """The changes as `--json` prints them, under "changed"."""
    return [c.data() for c in changes]


def changes_line(changes: Iterable[Change]) -> str:
    """One line saying what changed, by kind in the order each first happened:
    `changed: 3 Linodes created, 3 nodes joined`, or `nothing changed`."""
    counts = Counter(c.kind for c in changes)
    if not counts:
        return "nothing changed"
    parts = []
    for kind, count in counts.items():
        one, many, done = KINDS[kind]
        parts.append(f"{count} {one if count == 1 else many} {done}")
    return "changed: " + ", ".join(parts)
