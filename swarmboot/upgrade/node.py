"""What `upgrade` runs on a node over SSH, and what the node says about itself: the apt-get
run (in a session of its own), the facts of its kernel, vxlan and Docker, and the flag a
reboot clears."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DOCKER_PACKAGES",
    "FACTS_COMMAND",
    "FLAG_COMMAND",
    "REBOOT_FLAG",
    "UPGRADE_LOG",
    "Kind",
    "NodeFacts",
    "parse_facts",
    "upgrade_command",
]

# The modes: packages (apt-get dist-upgrade), docker (Docker's packages), image (a rebuild).
Kind = Literal["packages", "docker", "image"]

# Docker's packages, from Docker's repository and from Debian's: those installed are
# upgraded, the others skipped (`--only-upgrade` installs nothing new).
DOCKER_PACKAGES = (
    "docker-ce",
    "docker-ce-cli",
    "containerd.io",
    "docker.io",
    "docker-cli",
    "containerd",
    "runc",
)
# Left on /run (a tmpfs) before a reboot: the node is back once SSH answers without it.
REBOOT_FLAG = "/run/swarmboot/upgrade-reboot"
FLAG_COMMAND = f"mkdir -p /run/swarmboot && touch {REBOOT_FLAG}"
FACTS_COMMAND = (
    "release=$(uname -r); "
    "newest=$(find /boot -maxdepth 1 -name 'vmlinuz-*' -printf '%f\\n' 2>/dev/null "
    "| sed 's/^vmlinuz-//' | sort -V | tail -n 1); "
    'distro=no; [ "$(dpkg-query -W -f=\'${db:Status-Status}\' "linux-image-$release" '
    '2>/dev/null)" = installed ] && distro=yes; '
    "required=no; [ -e /run/reboot-required ] && required=yes; "
    "ip link del swbupgrade0 >/dev/null 2>&1; vxlan=no; "
    "if ip link add swbupgrade0 type vxlan id 4243 dstport 4789 dev lo >/dev/null 2>&1; "
    "then ip link del swbupgrade0; vxlan=yes; fi; "
    "docker=$(timeout 20 docker version --format '{{.Server.Version}}' 2>/dev/null); "
    "printf 'kernel=%s\\nnewest=%s\\ndistro=%s\\nreboot_required=%s\\nvxlan=%s\\ndocker=%s\\n' "
    '"$release" "$newest" "$distro" "$required" "$vxlan" "$docker"'
)


@dataclass(frozen=True)
class NodeFacts:
    """What a node says about its kernel, vxlan and Docker (FACTS_COMMAND)."""

    kernel: str
    newest: str | None  # the newest kernel in /boot
    distro: bool  # the running kernel is a Debian package installed on the node
    reboot_required: bool  # /run/reboot-required: a package asks for a reboot
    vxlan: bool
    docker: str | None  # the daemon's version, None if it does not answer

    def reboot_wanted(self, require_distro_kernel: bool) -> bool:
        """Whether the upgrade asks for a reboot: a package says so, or (where the kernel is
        the node's own) a newer kernel is installed than the one running."""
        newer = self.newest is not None and self.newest != self.kernel
        return self.reboot_required or (require_distro_kernel and newer)

    def problems(self, require_distro_kernel: bool) -> tuple[str, ...]:
        """What keeps the node from being ready after its upgrade; empty when it is."""
        found = []
        if require_distro_kernel and not self.distro:
            found.append(f"it runs kernel {self.kernel}, which is not the distribution's")
        elif require_distro_kernel and self.newest and self.newest != self.kernel:
            found.append(f"it runs kernel {self.kernel}, not the newest installed ({self.newest})")
        if not self.vxlan:
            found.append("the vxlan probe did not pass")
        if not self.docker:
            found.append("Docker does not answer")
        return tuple(found)


def parse_facts(text: str) -> NodeFacts:
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    return NodeFacts(
        kernel=values.get("kernel", "").strip(),
        newest=values.get("newest", "").strip() or None,
        distro=values.get("distro", "").strip() == "yes",
        reboot_required=values.get("reboot_required", "").strip() == "yes",
        vxlan=values.get("vxlan", "").strip() == "yes",
        docker=values.get("docker", "").strip() or None,
    )


# Where the upgrade's apt-get writes on the node (its tail is in the error when it fails).
UPGRADE_LOG = "/var/log/swarmboot-upgrade.log"


def upgrade_command(kind: Kind) -> str:
    """The apt-get run on a node: non-interactive, its own configuration files kept, in a
    session of its own writing to UPGRADE_LOG, so that an `upgrade` killed meanwhile (its SSH
    connection gone) does not kill dpkg halfway; the next run waits for its lock, and first
    finishes what an interrupted dpkg left unconfigured."""
    apt = (
        "apt-get -q -y -o DPkg::Lock::Timeout=900 -o Dpkg::Options::=--force-confdef "
        "-o Dpkg::Options::=--force-confold"
    )
    if kind == "packages":
        what = f"{apt} dist-upgrade"
    else:
        what = f"{apt} install --only-upgrade {' '.join(DOCKER_PACKAGES)}"
    script = (
        "export DEBIAN_FRONTEND=noninteractive; "
        "dpkg --configure -a >/dev/null 2>&1 || true; "
        f"apt-get -q -o DPkg::Lock::Timeout=900 update && {what}"
    )
    return (
        f"setsid --wait sh -c {shlex.quote(script)} >{UPGRADE_LOG} 2>&1 </dev/null; "
        f"rc=$?; tail -n 5 {UPGRADE_LOG}; exit $rc"
    )
