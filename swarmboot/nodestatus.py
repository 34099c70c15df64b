"""The status file a node's StackScript writes, and what it says about the node's readiness.

The StackScript writes `/var/lib/swarmboot/status.json` (see `facts.STATUS_PATH`); the
provisioner reads it over SSH. Parsing and judging it is pure, so it is tested without a node.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from swarmboot import facts
from swarmboot.errors import SwarmbootError

__all__ = ["NodeStatus", "StatusError", "parse_status"]


class StatusError(SwarmbootError):
    """A node's status file is missing or unreadable."""


class NodeStatus(BaseModel):
    """What the StackScript reported, field for field."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_: int = 1
    phase: Literal["running", "done", "failed"]
    script: str
    script_sha256: str | None = None
    hostname: str
    cluster: str
    role: str
    zone: str
    kernel_release: str
    distro_kernel: bool
    newest_kernel: str | None = None
    reboot_required: bool
    vxlan_ok: bool | None = None
    esp_ok: bool | None = None
    # Why ESP is missing, when it is: a modprobe rule that disables esp4/esp6 (named with its
    # file), or what the kernel answered.
    esp_error: str | None = None
    docker_ok: bool | None = None
    docker_version: str | None = None
    firewall_ok: bool | None = None
    changes: tuple[str, ...] = ()
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None

    def problems(self, *, require_esp: bool, require_distro_kernel: bool = True) -> tuple[str, ...]:
        """Why the node is not ready to join the swarm; empty when it is.

        `require_esp` is set when the cluster's overlay network is encrypted: a kernel without
        ESP would accept that network and then drop its traffic. `require_distro_kernel` is
        unset only where the kernel is not the node's to choose (a lab on a shared kernel).
        """
        if self.phase == "running":
            return ("the StackScript is still running",)
        found: list[str] = []
        # On a kernel that is not the node's own (a provider kernel, without the modules the
        # disk has), the script fails for that reason first: say it before its error.
        if not self.distro_kernel and require_distro_kernel:
            found.append(
                f"not on the GRUB kernel: running {self.kernel_release}, which is not a "
                f"kernel installed on the node; set the config profile kernel to "
                f"{facts.GRUB_KERNEL} and reboot"
            )
        if self.phase == "failed":
            found.append(f"the StackScript failed: {self.error or 'no error recorded'}")
            return tuple(found)
        if self.distro_kernel and self.reboot_required and require_distro_kernel:
            found.append(
                f"running kernel {self.kernel_release} but {self.newest_kernel} is "
                "installed; reboot"
            )
        if self.vxlan_ok is not True:
            found.append("the vxlan probe did not pass")
        if require_esp and self.esp_ok is not True:
            found.append(
                "the kernel lacks IPsec ESP, which the encrypted overlay needs"
                + (f": {self.esp_error}" if self.esp_error else "")
            )
        if self.docker_ok is not True:
            found.append("Docker does not answer")
        if self.firewall_ok is not True:
            found.append("the firewall is not loaded")
        return tuple(found)


def parse_status(text: str, *, source: str = facts.STATUS_PATH) -> NodeStatus:
    """Read a status file's text; raise `StatusError` naming what is wrong."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StatusError(f"{source}: not JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(raw, dict):
        raise StatusError(f"{source}: expected a JSON object")
    if raw.get("schema") != 1:
        raise StatusError(
            f"{source}: unknown schema {raw.get('schema')!r}",
            hint="the node runs a StackScript from another swarmboot version",
        )
    try:
        return NodeStatus.model_validate({**raw, "schema_": raw["schema"]})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise StatusError(f"{source}: {where}: {first['msg']}") from exc
