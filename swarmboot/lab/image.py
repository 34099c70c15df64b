"""Debian roots for nodes on this machine: built once with debootstrap, then cached.

`base_tarball` is a plain debootstrapped root (what the StackScript tests unpack and run the
scripts in). `node_image` is the lab's node image: that root with what the StackScript would
install already installed (the lab's nodes reach no package mirror), kept unpacked as the
read-only lower layer every lab node's root is an overlay of.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from swarmboot.errors import SwarmbootError

__all__ = [
    "BASE_INCLUDE",
    "MIRROR",
    "NODE_PACKAGES",
    "ImageError",
    "base_tarball",
    "default_cache",
    "node_image",
    "unmount_below",
]

MIRROR = "deb.debian.org"
IMAGE_VERSION = 1  # bump when the way images are built changes
# Linode's Debian images come with an SSH server; the StackScript installs everything else.
BASE_INCLUDE = ("openssh-server",)
# What the StackScript installs (docker_source = debian), plus tools a node here needs.
_NODE_PACKAGES = (
    "linux-image-amd64",
    "grub-pc",
    "docker.io",
    "apparmor",
    "ca-certificates",
    "nftables",
    "iproute2",
    "sudo",
    "curl",
    "gpg",
    "procps",
)
NODE_PACKAGES = {
    "bookworm": _NODE_PACKAGES,
    # trixie splits the docker CLI out of docker.io.
    "trixie": (*_NODE_PACKAGES[:3], "docker-cli", *_NODE_PACKAGES[3:]),
}
_TAR = ["tar", "--zstd", "--numeric-owner", "--xattrs", "--xattrs-include=*"]


class ImageError(SwarmbootError):
    pass


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "swarmboot"


def unmount_below(path: Path) -> None:
    """Unmount whatever is still mounted below `path` (after a failure)."""
    prefix = str(path.resolve()) + "/"
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        targets = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for target in sorted(targets, key=len, reverse=True):
        subprocess.run(["umount", "-l", target], check=False)


def _sources(codename: str) -> str:
    return (
        f"Types: deb\nURIs: http://{MIRROR}/debian\nSuites: {codename} {codename}-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        f"Types: deb\nURIs: http://{MIRROR}/debian-security\nSuites: {codename}-security\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )


def _run(cmd: list[str], log: Path, what: str, env: dict[str, str] | None = None) -> None:
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False, env=env)
    if done.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise ImageError(
            f"{what} failed (exit {done.returncode}); the end of {log}:\n" + "\n".join(tail)
        )


def _require(tool: str) -> None:
    if shutil.which(tool) is None:
        raise ImageError(f"{tool} is missing", hint=f"install it: apt-get install {tool}")


def base_tarball(codename: str, cache: Path | None = None) -> Path:
    """A debootstrapped `codename` root as a zstd tarball, built when absent."""
    cache = cache or default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"rootfs-debian-{codename}-v{IMAGE_VERSION}.tar.zst"
    with open(cache / "images.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if tarball.exists():
            return tarball
        for tool in ("debootstrap", "zstd"):
            _require(tool)
        build = cache / f"build-{codename}"
        log = cache / f"debootstrap-{codename}.log"
        log.write_text("")
        if build.exists():
            unmount_below(build)
            shutil.rmtree(build)
        try:
            _run(
                [
                    "debootstrap",
                    f"--include={','.join(BASE_INCLUDE)}",
                    codename,
                    str(build),
                    f"http://{MIRROR}/debian",
                ],
                log,
                f"debootstrap {codename}",
            )
            (build / "etc/apt/sources.list").unlink(missing_ok=True)
            (build / "etc/apt/sources.list.d/debian.sources").write_text(_sources(codename))
            _run(["chroot", str(build), "apt-get", "clean"], log, "apt-get clean")
            partial = tarball.with_suffix(".partial")
            _run([*_TAR, "-C", str(build), "-cpf", str(partial), "."], log, "packing the root")
            partial.rename(tarball)
        finally:
            unmount_below(build)
            shutil.rmtree(build, ignore_errors=True)
    return tarball


def node_image(codename: str, cache: Path | None = None) -> Path:
    """The lab's node image for `codename`, unpacked: base root + the StackScript's packages."""
    cache = cache or default_cache()
    packages = NODE_PACKAGES[codename]
    digest = hashlib.sha256(" ".join(packages).encode()).hexdigest()[:8]
    image = cache / f"lab-image-{codename}-v{IMAGE_VERSION}-{digest}"
    if (image / ".complete").exists():
        return image
    tarball = base_tarball(codename, cache)
    with open(cache / "images.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (image / ".complete").exists():
            return image
        log = cache / f"lab-image-{codename}.log"
        log.write_text("")
        build = image.with_name(image.name + ".build")
        if build.exists():
            unmount_below(build)
            shutil.rmtree(build)
        build.mkdir(parents=True)
        try:
            _run([*_TAR, "-C", str(build), "-xpf", str(tarball)], log, "unpacking the root")
            script = (
                "set -e\nroot=$1\nshift\n"
                'mount -t proc proc "$root/proc"\n'
                'mount --rbind /sys "$root/sys"\nmount --make-rslave "$root/sys"\n'
                'mount --rbind /dev "$root/dev"\nmount --make-rslave "$root/dev"\n'
                'mount -t tmpfs tmpfs "$root/run"\n'
                "printf '#!/bin/sh\\nexit 101\\n' > \"$root/usr/sbin/policy-rc.d\"\n"
                'chmod 755 "$root/usr/sbin/policy-rc.d"\n'
                "echo 'grub-pc grub-pc/install_devices_empty boolean true' | "
                'chroot "$root" debconf-set-selections\n'
                'cp /etc/resolv.conf "$root/etc/resolv.conf"\n'
                'chroot "$root" apt-get -q -y update\n'
                'chroot "$root" apt-get -q -y install --no-install-recommends "$@"\n'
                'chroot "$root" apt-get clean\n'
                'rm -f "$root/usr/sbin/policy-rc.d"\n'
            )
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
            # A private mount namespace: the mounts vanish with the process, even on failure.
            _run(
                [
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "--",
                    "/bin/bash",
                    "-c",
                    script,
                    "install",
                    str(build),
                    *packages,
                ],
                log,
                f"installing the node packages into the {codename} image",
                env=env,
            )
            (build / "etc/resolv.conf").write_text("nameserver 127.0.0.1\n")
            (build / ".complete").write_text(" ".join(packages) + "\n")
            if image.exists():
                shutil.rmtree(image)
            build.rename(image)
        finally:
            if build.exists():
                unmount_below(build)
                shutil.rmtree(build, ignore_errors=True)
    return image
