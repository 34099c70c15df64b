"""`upgrade`: the cluster's nodes upgraded one at a time, the swarm serving throughout.

Modes: `packages` (apt-get dist-upgrade over SSH), `docker` (Docker's packages only, an
`apt-get install --only-upgrade`), `image` (each node rebuilt onto the spec's new image with
its script, as `node rebuild` does).

The order: workers and load balancers zone by zone (the spec's regions in order; in each,
the workers, then the load balancers), managers last (the leader last of all). Each node:

1. marked in the cloud as taken out (`upgrade:<run>:<mode>:out`), drained, and waited for
   until its tasks run elsewhere (no task left on it; every replicated service that had one
   there back at its full count): Docker's drain does not wait, swarmboot does;
2. upgraded (apt-get, non-interactive, keeping the node's own configuration files; or
   rebuilt), then marked `upgraded`;
3. rebooted through GRUB (the Linode's reboot with its config profile, whose kernel is
   `linode/grub2`) when the upgrade asks for it: a newer kernel installed than the one
   running, or /run/reboot-required;
4. waited for until it is ready as `up` has it (the distribution kernel, and the newest one
   installed; the vxlan probe; Docker answers; Ready in the swarm), its status file brought
   up to date, made active again, checked to be Ready and active with its labels, and
   marked `done`.

A node is taken out only while the rest can carry its work: a manager only while every
other manager is reachable and raft keeps its majority without it; a load balancer while
its zone has another one Ready, or else with a warning naming the zone's endpoint and about
how long it is down. Before anything, the run is refused while the swarm has no quorum
(`recover`) or a node is not Ready (`repair`).

The run's progress is in the cloud, on each node's Linode, in one tag:

    upgrade:<run>:<p|d|i>:<out|upgraded|done>

`<run>` is the newest event id on the account when the run began (above every earlier
run's), `p`/`d`/`i` the mode. A run is unfinished while a node of the spec lacks its
`done`: `upgrade` carries that run on (with the same mode; another mode is refused), the
node it stopped at first, and leaves the nodes marked `done` alone. Once every node is
`done` the marks stay, as the record of the last run, until the next run replaces them
node by node. Each round observes the world afresh, so an `upgrade` killed at any point is
run again and carries on.
"""

from __future__ import annotations

from swarmboot.upgrade.node import (
    DOCKER_PACKAGES,
    FACTS_COMMAND,
    FLAG_COMMAND,
    REBOOT_FLAG,
    UPGRADE_LOG,
    NodeFacts,
    parse_facts,
    upgrade_command,
)
from swarmboot.upgrade.plan import Intent, intent, plan_upgrade
from swarmboot.upgrade.progress import (
    UPGRADE_TAG,
    UpgradeError,
    UpgradeMark,
    UpgradeMode,
    UpgradeUsage,
    UpgradeWorld,
    upgrade_mark,
)
from swarmboot.upgrade.run import UpgradeResult, observe_upgrade, upgrade
from swarmboot.upgrade.steps import (
    AwaitSwarm,
    AwaitUpgraded,
    CarryOnRebuild,
    CheckNode,
    MarkUpgrade,
    Reactivate,
    Reboot,
    TakeOut,
    UpgradePackages,
)

__all__ = [
    "DOCKER_PACKAGES",
    "FACTS_COMMAND",
    "FLAG_COMMAND",
    "REBOOT_FLAG",
    "UPGRADE_LOG",
    "UPGRADE_TAG",
    "AwaitSwarm",
    "AwaitUpgraded",
    "CarryOnRebuild",
    "CheckNode",
    "Intent",
    "MarkUpgrade",
    "NodeFacts",
    "Reactivate",
    "Reboot",
    "TakeOut",
    "UpgradeError",
    "UpgradeMark",
    "UpgradeMode",
    "UpgradePackages",
    "UpgradeResult",
    "UpgradeUsage",
    "UpgradeWorld",
    "intent",
    "observe_upgrade",
    "parse_facts",
    "plan_upgrade",
    "upgrade",
    "upgrade_command",
    "upgrade_mark",
]
