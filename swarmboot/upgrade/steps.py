"""The steps of `upgrade`, frozen data that describe themselves; their runners are in
swarmboot.apply.upgrade_steps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "AwaitSwarm",
    "AwaitUpgraded",
    "CarryOnRebuild",
    "CheckNode",
    "MarkUpgrade",
    "Reactivate",
    "Reboot",
    "TakeOut",
    "UpgradePackages",
]


@dataclass(frozen=True)
class MarkUpgrade:
    label: str
    linode_id: int
    tags: tuple[str, ...]  # its tags with the mark
    mark: str

    def describe(self) -> str:
        state = self.mark.rsplit(":", 1)[1]
        text = {
            "out": "taken out for its upgrade",
            "upgraded": "upgraded",
            "done": "done, back in service",
        }[state]
        return f"Mark {self.label} {text} ({self.mark})"


@dataclass(frozen=True)
class TakeOut:
    label: str
    node_id: str
    via: str

    def describe(self) -> str:
        return (
            f"Drain {self.label} and wait until its tasks run elsewhere (replicated services "
            "at full count)"
        )


@dataclass(frozen=True)
class UpgradePackages:
    label: str
    kind: Literal["packages", "docker"]

    def describe(self) -> str:
        if self.kind == "packages":
            return f"Upgrade the packages of {self.label} (apt-get dist-upgrade)"
        return f"Upgrade Docker on {self.label} (apt-get install --only-upgrade)"


@dataclass(frozen=True)
class Reboot:
    label: str
    linode_id: int
    why: str

    def describe(self) -> str:
        return f"Reboot {self.label} through GRUB: {self.why}"


@dataclass(frozen=True)
class AwaitUpgraded:
    label: str
    via: str

    def describe(self) -> str:
        return (
            f"Wait until {self.label} is ready: the distribution kernel, vxlan, Docker, Ready "
            "in the swarm"
        )


@dataclass(frozen=True)
class Reactivate:
    label: str
    node_id: str
    via: str

    def describe(self) -> str:
        return f"Reactivate {self.label} (availability active)"


@dataclass(frozen=True)
class CheckNode:
    label: str
    via: str
    labels: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        text = ", ".join(f"{k}={v}" for k, v in self.labels)
        return f"Check that {self.label} is Ready and active with its labels ({text})"


@dataclass(frozen=True)
class AwaitSwarm:
    """After a manager's upgrade: the leadership may have moved (the leader restarted), and
    a new leader knows the other nodes only once each has reached it."""

    labels: tuple[str, ...]
    via: str

    def describe(self) -> str:
        return (
            f"Wait until all {len(self.labels)} nodes are Ready to the swarm's leader again "
            "(a manager's restart may move the leadership)"
        )


@dataclass(frozen=True)
class CarryOnRebuild:
    """The node's rebuild is marked: `up` carries it out (as after `node rebuild`)."""

    label: str

    def describe(self) -> str:
        return f"Rebuild {self.label} as marked and join it again (as `swarmboot up` does)"
