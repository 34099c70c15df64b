"""The lab machine backend: a simulated Linode that boots becomes a node on this machine.

Each node is a network namespace with the Linode's addresses on its eth0 (a port of its
region's bridge in the lab router) and, in fresh mount, PID and UTS namespaces, an overlay
root over the lab's node image. Its first boot after a deploy runs the Linode's StackScript
with its fields, as Linode does, or Debian's cloud-init on the Linode's user data (a NoCloud
seed stands in for the Metadata service). sshd comes up at once with the Linode's authorized
keys and the host key swarmboot passed in (put in place by cloud-init's first stages, for
user data), Docker when the node script (or a later boot) starts it.
Stop ends the node's processes and keeps its disk; rebuild and delete wipe it. Nothing
outlives `close()`: not a namespace, a mount, a process or a route.

Load with `swarmboot sim --lab` (or `--backend swarmboot.lab.backend:LabBackend`); needs
root, debootstrap and the Debian mirror for the image (built once, then cached).
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from swarmboot.lab.image import NodeImage, default_cache, node_image
from swarmboot.lab.net import LabError, LabNetwork, Region, check_ranges, ip
from swarmboot.sim.backend import Machine, MachineError

__all__ = ["LabBackend"]

log = logging.getLogger("swarmboot.lab")
FILES = Path(__file__).resolve().parent / "files"
CODENAMES = {"linode/debian12": "bookworm", "linode/debian13": "trixie"}


@dataclass
class _Node:
    instance_id: int
    label: str
    region: str
    netns: str
    port: str
    directory: Path
    process: subprocess.Popen | None = None


class LabBackend:
    def __init__(self, config) -> None:
        if os.geteuid() != 0:
            raise LabError(
                "the lab needs root (namespaces, mounts, a bridge)",
                hint="run `swarmboot sim --lab` as root, or without --lab",
            )
        for tool in ("ip", "nsenter", "unshare", "debootstrap"):
            if shutil.which(tool) is None:
                raise LabError(f"the lab needs {tool}", hint="run `make host-deps` as root")
        self.cache = Path(os.environ.get("SWARMBOOT_LAB_CACHE") or default_cache())
        # Held (leased) until close(): no other process removes an image a node runs on.
        self._images: dict[str, NodeImage] = {}
        self._lock = threading.RLock()
        self._nodes: dict[int, _Node] = {}
        from swarmboot.sim import catalog

        region_ids = [r["id"] for r in catalog.REGIONS]
        regions = {}
        for index, (name, cidr) in enumerate(sorted(config.public_ranges.items())):
            private = config.private_range(name, region_ids.index(name))
            regions[name] = Region(
                name, index, ipaddress.IPv4Network(cidr), ipaddress.IPv4Network(private)
            )
        self.network = LabNetwork(regions)
        check_ranges(self.network.ranges())  # before minutes go into an image
        # The default image is made (once, a few minutes) before the API answers, not while a
        # boot waits for it.
        log.info("preparing the lab's node image (built once, then cached in %s)", self.cache)
        self._images["bookworm"] = node_image("bookworm", self.cache)
        self.workdir = Path(tempfile.mkdtemp(prefix="swarmboot-lab-", dir=self._work_parent()))
        try:
            self.network.create()
        except BaseException:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self._release_images()
            raise
        log.info(
            "lab %s up: %s",
            self.network.lab_id,
            ", ".join(f"{r.name} {r.public}" for r in regions.values()),
        )

    def _work_parent(self) -> str:
        # Docker's overlay2 needs a plain filesystem (ext4 or xfs) under the node directories.
        parent = self.cache / "lab-nodes"
        parent.mkdir(parents=True, exist_ok=True)
        return str(parent)

    def _image(self, machine: Machine) -> Path:
        codename = CODENAMES.get(machine.image or "")
        if codename is None:
            raise MachineError(
                f"the lab has no image for {machine.image}; it runs {', '.join(CODENAMES)}"
            )
        with self._lock:
            if codename not in self._images:
                self._images[codename] = node_image(codename, self.cache)
            return self._images[codename].path

    # --- MachineBackend --------------------------------------------------------------------

    def start(self, machine: Machine) -> None:
        if machine.region not in self.network.regions:
            raise MachineError(f"the lab has no range for {machine.region}")
        image = self._image(machine)
        with self._lock:
            node = self._nodes.get(machine.instance_id)
            if node is not None and node.process is not None:
                return
            if node is None or machine.first_boot:
                if node is not None:
                    self._stop(node)
                    self._wipe(node)
                node = self._make(machine)
            try:
                self._boot(node, machine, image)
            except BaseException:
                self._stop(node)
                raise

    def stop(self, instance_id: int) -> None:
        with self._lock:
            node = self._nodes.get(instance_id)
            if node is not None:
                self._stop(node)

    def rebuild(self, machine: Machine) -> None:
        with self._lock:
            node = self._nodes.pop(machine.instance_id, None)
            if node is not None:
                self._stop(node)
                self._wipe(node)

    def delete(self, instance_id: int) -> None:
        with self._lock:
            node = self._nodes.pop(instance_id, None)
            if node is not None:
                self._stop(node)
                self._wipe(node)

    def close(self) -> None:
        with self._lock:
            for node in list(self._nodes.values()):
                self._stop(node)
                self._wipe(node)
            self._nodes.clear()
            self.network.destroy()
            shutil.rmtree(self.workdir, ignore_errors=True)
            self._release_images()

    def _release_images(self) -> None:
        for held in self._images.values():
            held.release()
        self._images.clear()

    # --- nodes -----------------------------------------------------------------------------

    def _make(self, machine: Machine) -> _Node:
        directory = self.workdir / str(machine.instance_id)
        node = _Node(
            machine.instance_id,
            machine.label,
            machine.region,
            netns=f"swblab-{self.network.lab_id}-{machine.instance_id}",
            port=f"p{machine.instance_id}",
            directory=directory,
        )
        for sub in ("upper", "work", "merged", "docker", "upper/var/lib/docker"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        upper = directory / "upper"
        # What Linode puts on a fresh disk before the first boot: root's authorized keys,
        # and here also the host key swarmboot passed in (the StackScript would install it).
        ssh = upper / "root" / ".ssh"
        ssh.mkdir(parents=True, mode=0o700)
        (ssh / "authorized_keys").write_text("".join(k + "\n" for k in machine.authorized_keys))
        (ssh / "authorized_keys").chmod(0o600)
        host_key = machine.stackscript_data.get("ssh_host_key")
        if host_key:
            keys = upper / "etc" / "ssh"
            keys.mkdir(parents=True, exist_ok=True)
            private = keys / "ssh_host_ed25519_key"
            private.write_bytes(base64.b64decode(host_key))
            private.chmod(0o600)
            key = serialization.load_ssh_private_key(base64.b64decode(host_key), password=None)
            (keys / "ssh_host_ed25519_key.pub").write_bytes(
                key.public_key().public_bytes(
                    serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
                )
                + b"\n"
            )
            (keys / "sshd_config.d").mkdir(exist_ok=True)
            (keys / "sshd_config.d" / "00-lab-hostkey.conf").write_text(
                "HostKey /etc/ssh/ssh_host_ed25519_key\n"
            )
        (upper / "etc").mkdir(exist_ok=True)
        (upper / "etc" / "hostname").write_text(machine.label + "\n")
        (upper / "etc" / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        sbin = upper / "usr" / "local" / "sbin"
        sbin.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(FILES / "systemctl", sbin / "systemctl")
        (sbin / "systemctl").chmod(0o755)
        if machine.user_data is not None:
            self._seed(upper, machine)
        if machine.stackscript:
            script = upper / "root" / "StackScript"
            script.write_text(machine.stackscript)
            script.chmod(0o700)
            env = {
                **machine.stackscript_data,
                "LINODE_ID": str(machine.instance_id),
                "LINODE_LISHUSERNAME": f"linode{machine.instance_id}",
                "LINODE_RAM": "1024",
                "LINODE_DATACENTERID": "1",
            }
            envfile = directory / "stackscript.env"
            envfile.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items()))
            envfile.chmod(0o600)
        (directory / "hostname").write_text(machine.label + "\n")
        self._nodes[machine.instance_id] = node
        return node

    @staticmethod
    def _seed(upper: Path, machine: Machine) -> None:
        """The Linode's user data where Debian's cloud-init finds it: a NoCloud seed standing
        in for Linode's Metadata service (root's only, as cloud-init keeps it), and settings
        for a node here (its network and disk are the lab's; the image has no locales)."""
        seed = upper / "var" / "lib" / "cloud" / "seed" / "nocloud"
        seed.mkdir(parents=True, mode=0o700)
        user_data = seed / "user-data"
        user_data.write_bytes(base64.b64decode(machine.user_data or ""))
        user_data.chmod(0o600)
        (seed / "meta-data").write_text(
            f"instance-id: linode{machine.instance_id}\nlocal-hostname: {machine.label}\n"
        )
        settings = upper / "etc" / "cloud" / "cloud.cfg.d"
        settings.mkdir(parents=True, exist_ok=True)
        (settings / "90-swarmboot-lab.cfg").write_text(
            "datasource_list: [NoCloud]\n"
            "network: {config: disabled}\n"
            "growpart: {mode: 'off'}\n"
            "resize_rootfs: false\n"
            "locale: false\n"
        )

    def _boot(self, node: _Node, machine: Machine, image: Path) -> None:
        ip("netns", "add", node.netns, check=False)
        if not Path(f"/sys/class/net/{node.port}").exists():
            ip("-n", self.network.router, "link", "del", node.port, check=False)
        self.network.attach(
            node.netns, node.region, node.port, machine.ipv4_public, machine.ipv4_private
        )
        (node.directory / "ready").unlink(missing_ok=True)
        mode = "first" if machine.first_boot else "boot"
        out = open(node.directory / "init.out", "ab")  # noqa: SIM115 (kept by the process)
        node.process = subprocess.Popen(
            [
                "nsenter",
                f"--net=/run/netns/{node.netns}",
                "--",
                "unshare",
                "--mount",
                "--uts",
                "--ipc",
                "--pid",
                "--fork",
                "--kill-child",
                "--propagation",
                "private",
                "/bin/bash",
                str(FILES / "node-init.sh"),
                str(node.directory),
                str(image),
                mode,
                f"/swarmboot-lab-{node.netns}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        out.close()
        deadline = time.monotonic() + 30
        while not (node.directory / "ready").exists():
            if node.process.poll() is not None:
                tail = (node.directory / "init.out").read_text(errors="replace")[-500:]
                raise MachineError(f"{node.label}: the lab node did not start: {tail}")
            if time.monotonic() > deadline:
                raise MachineError(f"{node.label}: the lab node did not start within 30 s")
            time.sleep(0.05)

    def _stop(self, node: _Node) -> None:
        process = node.process
        if process is not None:
            if process.poll() is None:
                # The init is PID 1 of the node: its end ends every process of the node.
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
            node.process = None
        self.network.detach(node.port)
        ip("netns", "del", node.netns, check=False)
        _remove_cgroups(f"swarmboot-lab-{node.netns}")

    def _wipe(self, node: _Node) -> None:
        shutil.rmtree(node.directory, ignore_errors=True)


def _remove_cgroups(name: str) -> None:
    """Remove the cgroups the node's Docker made for its containers (empty once they died)."""
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        top = hierarchy / name
        if not top.is_dir():
            continue
        for directory in sorted(
            (d for d in top.rglob("*") if d.is_dir()), key=lambda d: len(d.parts), reverse=True
        ):
            _rmdir(directory)
        _rmdir(top)


def _rmdir(directory: Path) -> None:
    # A cgroup whose last process is still exiting is busy for a moment.
    for _ in range(50):
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05)
    log.warning("could not remove the cgroup %s", directory)
