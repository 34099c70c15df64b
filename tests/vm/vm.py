"""A Linode-like machine under qemu: the rendered StackScript's disk, booted through GRUB.

The disk is what a Linode has: one ext4 filesystem labelled `linroot` with no partition
table, seen by the guest as /dev/sda. It is made from a debootstrapped Debian 12 root in which
the StackScript has run (tests/debian's harness, with the mirror reachable), then packed with
`mkfs.ext4 -d` (no loop device) and cached by the script's content.

Booting it "as a Linode with the `linode/grub2` kernel setting" is done with a small GRUB
rescue image standing in for Linode's own GRUB 2: it finds the disk by label and loads the
disk's own /boot/grub/grub.cfg, so the guest runs whatever kernel the StackScript left there.
Booting it with `-kernel`/`-initrd` instead stands in for a provider kernel handed in from
outside. qemu runs under TCG (software emulation; KVM cannot run here), with a hard time
limit, and is ended by the PID from its own pidfile. Every boot writes to a copy-on-write
overlay, so the cached disk stays as built.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swarmboot import facts
from swarmboot.keys import HostKey
from swarmboot.userdata import node_user_data
from tests.debian import harness

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CACHE = harness.CACHE_DIR
SCRIPT = REPO / "stackscripts" / "debian12-swarm-node.sh"
CLOUD_CONFIG = REPO / "stackscripts" / "debian12-swarm-node.cloud-config.yaml"
GRUB_PROBE = REPO / "swarmboot" / "lab" / "files" / "grub-probe"
VM_VERSION = 1  # bump when the way disks are built changes
DISK_SIZE = "6G"
# The filesystem UUID the grub-probe stand-in reports, so grub.cfg's search finds the disk.
DISK_UUID = "5a0cd7a1-1ab0-4f2e-9d3c-6c1e2b9a7f01"
TOOLS = ("qemu-system-x86_64", "qemu-img", "grub-mkrescue", "xorriso", "mkfs.ext4")
HOST_PACKAGES = ("qemu-system-x86", "qemu-utils", "grub-pc-bin", "grub-common", "xorriso", "mtools")


class VmError(RuntimeError):
    pass


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def _key() -> tuple[str, str]:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return base64.b64encode(private).decode(), public.decode()


def _fields() -> dict[str, str]:
    host_key, _ = _key()
    _, admin = _key()
    return {
        "hostname": "vmtest-eu-central-worker-1",
        "cluster": "vmtest",
        "swarm_role": "worker",
        "zone": "eu-central",
        "admin_ssh_keys": admin + " ops",
        "admin_user": "ops",
        "docker_source": "debian",
        "swarm_members": "198.51.100.2,198.51.100.3",
        "ssh_host_key": host_key,
        "apt_upgrade": "no",
    }


def _digest(*extra: Path) -> str:
    h = hashlib.sha256()
    for part in (SCRIPT, HERE / "guest-check.sh", GRUB_PROBE, *extra):
        h.update(part.read_bytes())
    h.update(f"{VM_VERSION} {DISK_UUID}".encode())
    return h.hexdigest()[:12]


def _as_linode_disk(node: harness.DebianNode) -> None:
    """Make a root what a Linode disk holds: its own network, fstab and a grub.cfg for
    /dev/sda (a chroot's grub-probe would name this machine's disk)."""
    root = node.root
    # The harness's chroot helpers go: the guest has systemd and its own network.
    (root / "usr/sbin/policy-rc.d").unlink(missing_ok=True)
    (root / "usr/local/sbin/systemctl").unlink(missing_ok=True)
    hosts = root / "etc/hosts"
    hosts.write_text(
        "".join(
            line + "\n" for line in hosts.read_text().splitlines() if harness.MIRROR not in line
        )
    )
    (root / "etc/resolv.conf").write_text("nameserver 10.0.2.3\n")  # qemu's user network
    (root / "etc/fstab").write_text("/dev/sda / ext4 errors=remount-ro 0 1\n")
    (root / "etc/network/interfaces.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/network/interfaces.d/eth0").write_text(
        "auto eth0\nallow-hotplug eth0\niface eth0 inet dhcp\n"
    )
    probe = root / "usr/sbin/grub-probe"
    real = probe.read_bytes()
    try:
        shutil.copyfile(GRUB_PROBE, probe)
        node.chroot("update-grub", timeout=300)
    finally:
        probe.write_bytes(real)
    grub_cfg = (root / "boot/grub/grub.cfg").read_text()
    if "root=/dev/sda" not in grub_cfg:
        raise VmError("update-grub did not write root=/dev/sda into grub.cfg")


def _unit(root: Path, name: str, text: str, target: str = "multi-user.target") -> None:
    (root / "etc/systemd/system" / name).write_text(text)
    wants = root / f"etc/systemd/system/{target}.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / name
    link.unlink(missing_ok=True)
    link.symlink_to(f"/etc/systemd/system/{name}")


def _install_checks(
    root: Path,
    fields: dict[str, str],
    *,
    first_boot: bool = False,
    cloud_init: bool = False,
) -> None:
    """The boot-time checks: a oneshot unit that reports and powers off. With `first_boot`,
    a unit standing in for Linode's first-boot StackScript run comes first and reboots."""
    check = root / "usr/local/sbin/swarmboot-vmcheck"
    shutil.copyfile(HERE / "guest-check.sh", check)
    check.chmod(0o755)
    done_marker = "/var/lib/swarmboot-vm/first-boot-done"
    _unit(
        root,
        "swarmboot-vmcheck.service",
        "[Unit]\nDescription=swarmboot boot checks\n"
        "After=docker.service ssh.service nftables.service network.target\n"
        + (f"ConditionPathExists={done_marker}\n" if first_boot else "")
        + "[Service]\nType=oneshot\nTimeoutStartSec=infinity\n"
        "ExecStart=/usr/local/sbin/swarmboot-vmcheck\n"
        "ExecStopPost=/bin/systemctl --no-block poweroff\n"
        "[Install]\nWantedBy=multi-user.target\n",
    )
    if first_boot:
        first = root / "usr/local/sbin/swarmboot-vmfirstboot"
        script = "guest-cloud-init-first-boot.sh" if cloud_init else "guest-first-boot.sh"
        shutil.copyfile(HERE / script, first)
        first.chmod(0o755)
        # After cloud-init's last stage, which comes after multi-user.target: the unit is
        # then cloud-init.target's, or the two orderings would make a cycle.
        target = "cloud-init.target" if cloud_init else "multi-user.target"
        _unit(
            root,
            "swarmboot-vmfirstboot.service",
            "[Unit]\nDescription=the node script on first boot, as Linode runs it\n"
            f"ConditionPathExists=!{done_marker}\n"
            "Wants=network-online.target\nAfter=network-online.target"
            + (" cloud-final.service\n" if cloud_init else "\n")
            + "[Service]\nType=oneshot\nTimeoutStartSec=infinity\n"
            "ExecStart=/usr/local/sbin/swarmboot-vmfirstboot\n"
            f"[Install]\nWantedBy={target}\n",
            target,
        )
    env = root / "root/.vmcheck-env"
    env.write_text("".join(f"{k}={_quote(v)}\n" for k, v in fields.items()))
    env.chmod(0o600)


def _finish_root(node: harness.DebianNode, fields: dict[str, str]) -> None:
    """Make the provisioned root a bootable Linode disk, with the boot-time checks."""
    _as_linode_disk(node)
    _install_checks(node.root, fields)


@contextlib.contextmanager
def _scratch_root() -> Iterator[harness.DebianNode]:
    """A Debian 12 root to build in, the mirror reachable; gone afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="swarmboot-vm-", dir=CACHE))
    try:
        node = harness.DebianNode("bookworm", workdir / "node")
        try:
            yield node
        finally:
            node.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _drop_stale(pattern: str, keep: Path) -> None:
    """Remove the cached disks an earlier script or check made (6 GB sparse each)."""
    for old in CACHE.glob(pattern):
        if old != keep:
            old.unlink(missing_ok=True)


def _pack(root: Path, target: Path) -> None:
    """A Linode disk: one ext4 filesystem labelled linroot, no partition table, no loop
    device needed."""
    options = ["-q", "-F", "-L", "linroot", "-U", DISK_UUID, "-d", str(root)]
    subprocess.run(["mkfs.ext4", *options, str(target), DISK_SIZE], check=True)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def build_disk(log=print) -> Path:
    """The provisioned Linode-like disk (raw, sparse), built when absent."""
    CACHE.mkdir(parents=True, exist_ok=True)
    disk = CACHE / f"vm-disk-bookworm-{_digest()}.raw"
    if disk.exists():
        return disk
    log("provisioning a Debian 12 root with the StackScript (debootstrap + packages)")
    with _scratch_root() as node:
        fields = _fields()
        _, orchestrator = _key()
        ssh = node.root / "root/.ssh"
        ssh.mkdir(mode=0o700, exist_ok=True)
        (ssh / "authorized_keys").write_text(orchestrator + " swarmboot\n")
        (ssh / "authorized_keys").chmod(0o600)
        run = node.run_script(SCRIPT.read_text(), fields)
        if run.returncode != 0:
            raise VmError(f"the StackScript failed in the chroot:\n{run.output[-3000:]}")
        _finish_root(node, fields)
        log(f"packing the disk ({DISK_SIZE}, ext4 labelled linroot, no partition table)")
        partial = disk.with_suffix(".partial")
        _pack(node.root, partial)
        partial.rename(disk)
        _drop_stale("vm-disk-bookworm-*.raw", disk)
    return disk


def build_image(log=print, *, cloud_init: bool = False) -> Path:
    """A disk as Linode deploys its Debian 12 image: debootstrap, the Debian kernel and GRUB
    (grub.cfg for /dev/sda on the serial console), the StackScript in /root with its fields,
    not run yet: the guest runs it on first boot over its own network, then reboots.

    With `cloud_init`, as Linode deploys it with user data: the image also carries Debian's
    cloud-init, and the node's user data (swarmboot.userdata: the committed cloud-config with
    the fields and host key appended) waits in a NoCloud seed standing in for Linode's
    Metadata service; cloud-init's own units run the script on first boot, then it reboots."""
    CACHE.mkdir(parents=True, exist_ok=True)
    first_boot = HERE / ("guest-cloud-init-first-boot.sh" if cloud_init else "guest-first-boot.sh")
    extra = (first_boot, CLOUD_CONFIG) if cloud_init else (first_boot,)
    kind = "vm-image-cloud-init-bookworm" if cloud_init else "vm-image-bookworm"
    image = CACHE / f"{kind}-{_digest(*extra)}.raw"
    if image.exists():
        return image
    log(
        "building a Linode-like Debian 12 image (kernel and GRUB"
        + (
            ", cloud-init and the user data in a NoCloud seed)"
            if cloud_init
            else ", no StackScript run)"
        )
    )
    with _scratch_root() as node:
        root = node.root
        node.chroot(
            "/bin/sh",
            "-c",
            "echo 'grub-pc grub-pc/install_devices_empty boolean true' | "
            "debconf-set-selections && apt-get -q -y update && "
            "DEBIAN_FRONTEND=noninteractive apt-get -q -y install --no-install-recommends "
            f"linux-image-amd64 grub-pc {'cloud-init' if cloud_init else ''} && apt-get clean",
            timeout=1800,
        )
        (root / "etc/default/grub.d").mkdir(parents=True, exist_ok=True)
        (root / "etc/default/grub.d/10-linode.cfg").write_text(
            'GRUB_CMDLINE_LINUX="console=ttyS0,19200n8 net.ifnames=0"\n'
            "GRUB_TERMINAL=serial\n"
            'GRUB_SERIAL_COMMAND="serial --speed=19200 --unit=0 --word=8 --parity=no '
            '--stop=1"\n'
            "GRUB_DISABLE_LINUX_UUID=true\n"
        )
        _as_linode_disk(node)
        # The guest reaches the Debian mirror and nothing else it would look for itself.
        mask = root / "etc/systemd/system/systemd-timesyncd.service"
        mask.unlink(missing_ok=True)
        mask.symlink_to("/dev/null")
        _, orchestrator = _key()
        ssh = root / "root/.ssh"
        ssh.mkdir(mode=0o700, exist_ok=True)
        (ssh / "authorized_keys").write_text(orchestrator + " swarmboot\n")
        (ssh / "authorized_keys").chmod(0o600)
        fields = {**_fields(), "apt_upgrade": "yes"}
        script = root / "root/StackScript"
        if cloud_init:
            _seed(root, fields)
            # The boot-time checks run the script again from where cloud-init writes it.
            script.symlink_to(f"{facts.CLOUD_INIT_SCRIPT_DIR}/{SCRIPT.name}")
        else:
            script.write_text(SCRIPT.read_text())
            script.chmod(0o700)
        _install_checks(root, fields, first_boot=True, cloud_init=cloud_init)
        log(f"packing the image ({DISK_SIZE}, ext4 labelled linroot)")
        partial = image.with_suffix(".partial")
        _pack(root, partial)
        partial.rename(image)
        _drop_stale(f"{kind}-*.raw", image)
    return image


def _seed(root: Path, fields: dict[str, str]) -> None:
    """The node's user data in a NoCloud seed, and cloud-init told to read it there and to
    leave the guest's network (ifupdown's) alone; the image has no locales to set."""
    host_key = HostKey(base64.b64decode(fields["ssh_host_key"]), _public_of(fields))
    seed = root / "var/lib/cloud/seed/nocloud"
    seed.mkdir(parents=True)
    (seed / "user-data").write_text(node_user_data(CLOUD_CONFIG.read_text(), fields, host_key))
    (seed / "user-data").chmod(0o600)
    (seed / "meta-data").write_text(
        f"instance-id: vmtest-1\nlocal-hostname: {fields['hostname']}\n"
    )
    (root / "etc/cloud/cloud.cfg.d/90-vmtest.cfg").write_text(
        "datasource_list: [NoCloud]\nnetwork: {config: disabled}\nlocale: false\n"
    )


def _public_of(fields: dict[str, str]) -> str:
    key = serialization.load_ssh_private_key(
        base64.b64decode(fields["ssh_host_key"]), password=None
    )
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


def foreign_kernel(log=print) -> tuple[Path, Path]:
    """A kernel and initrd handed in from outside, standing in for a provider's own kernel:
    Debian's bookworm-backports build, which is not installed on the disk (so neither its
    package nor its modules are there, as with Linode's kernels)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    kernel = CACHE / f"vm-foreign-vmlinuz-v{VM_VERSION}"
    initrd = CACHE / f"vm-foreign-initrd-v{VM_VERSION}"
    if kernel.exists() and initrd.exists():
        return kernel, initrd
    log("fetching a kernel from outside the disk (bookworm-backports) and its initrd")
    with _scratch_root() as node:
        (node.root / "etc/apt/sources.list.d/backports.sources").write_text(
            f"Types: deb\nURIs: http://{harness.MIRROR}/debian\nSuites: bookworm-backports\n"
            "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        )
        node.chroot("apt-get", "-q", "-y", "update", timeout=600)
        node.chroot(
            "env",
            "DEBIAN_FRONTEND=noninteractive",
            "apt-get",
            "-q",
            "-y",
            "install",
            "--no-install-recommends",
            "-t",
            "bookworm-backports",
            "linux-image-amd64",
            timeout=1800,
        )
        kernels = sorted((node.root / "boot").glob("vmlinuz-*"))
        initrds = sorted((node.root / "boot").glob("initrd.img-*"))
        if not kernels or not initrds:
            raise VmError("the backports kernel left no vmlinuz or initrd in /boot")
        shutil.copyfile(initrds[-1], initrd)
        shutil.copyfile(kernels[-1], kernel)
    return kernel, initrd


def grub_image() -> Path:
    """A GRUB rescue image standing in for Linode's GRUB 2: it loads the disk's grub.cfg."""
    iso = CACHE / f"vm-grub2-v{VM_VERSION}.iso"
    if iso.exists():
        return iso
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        cfg = Path(tmp) / "boot/grub/grub.cfg"
        cfg.parent.mkdir(parents=True)
        cfg.write_text(
            "serial --speed=19200 --unit=0 --word=8 --parity=no --stop=1\n"
            "terminal_input serial console\nterminal_output serial console\n"
            "insmod part_msdos\ninsmod ext2\n"
            "search --no-floppy --label --set=root linroot\n"
            "configfile /boot/grub/grub.cfg\n"
        )
        partial = iso.with_suffix(".partial")
        done = subprocess.run(
            ["grub-mkrescue", "-o", str(partial), tmp], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise VmError(f"grub-mkrescue failed: {done.stderr[-2000:]}")
        partial.rename(iso)
    return iso


@dataclass
class Boot:
    seconds: float
    console: str
    checks: dict[str, str]
    status: dict | None
    finished: bool


def boot(
    disk: Path,
    *,
    kernel: Path | None = None,
    initrd: Path | None = None,
    timeout: float = 900,
    network: bool = False,
    reboot: bool = False,
) -> Boot:
    """Boot the disk (through the GRUB stand-in, or a kernel handed in) and read the checks."""
    with tempfile.TemporaryDirectory(prefix="swarmboot-vmboot-", dir=CACHE) as tmp:
        work = Path(tmp)
        overlay = work / "overlay.qcow2"
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(disk), str(overlay)],
            check=True,
        )
        console, pidfile = work / "console.log", work / "qemu.pid"
        checks_log = work / "checks.log"
        cmd = [
            "qemu-system-x86_64",
            "-accel", "tcg,thread=multi",
            "-cpu", "max",
            "-smp", "2",
            "-m", "1536",
            "-display", "none",
            "-vga", "none",
            "-device", "virtio-scsi-pci,id=scsi",
            "-drive", f"file={overlay},if=none,id=d0,format=qcow2",
            "-device", "scsi-hd,drive=d0,bus=scsi.0",
            "-serial", f"file:{console}",
            "-serial", f"file:{checks_log}",
            "-pidfile", str(pidfile),
        ]  # fmt: skip
        cmd += ["-nic", "user,model=virtio-net-pci"] if network else ["-nic", "none"]
        if not reboot:
            cmd.append("-no-reboot")
        if kernel is None:
            cmd += ["-cdrom", str(grub_image()), "-boot", "order=d"]
        else:
            cmd += ["-kernel", str(kernel), "-append", "root=/dev/sda ro console=ttyS0,19200n8"]
            if initrd is not None:
                cmd += ["-initrd", str(initrd)]
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        finally:
            _end_qemu(proc, pidfile)
        seconds = time.monotonic() - started
        text = console.read_text(errors="replace") if console.exists() else ""
        found = checks_log.read_text(errors="replace") if checks_log.exists() else ""
    checks: dict[str, str] = {}
    status = None
    for line in found.splitlines():
        line = line.strip("\r")
        if line.startswith("VMFIRST ") and "=" in line:
            for pair in line.removeprefix("VMFIRST ").split():
                key, _, value = pair.partition("=")
                checks[f"first_boot_{key}"] = value
        elif line.startswith("VMCHECK ") and "=" in line:
            key, _, value = line.removeprefix("VMCHECK ").partition("=")
            checks[key] = value
        elif line.startswith("VMCHECK_STATUS "):
            with contextlib.suppress(json.JSONDecodeError):
                status = json.loads(line.removeprefix("VMCHECK_STATUS "))
    return Boot(seconds, text, checks, status, "VMCHECK_END" in found)


def _end_qemu(proc: subprocess.Popen, pidfile: Path) -> None:
    """End qemu by its own PID (the one it wrote, which is the process started here), never
    by name, and only while it still runs: a PID is not reused before it is reaped."""
    if proc.poll() is None:
        with contextlib.suppress(OSError, ValueError):
            written = int(pidfile.read_text().strip())
            if written != proc.pid:
                raise VmError(f"qemu wrote PID {written}, but {proc.pid} was started")
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
