"""Debian roots for nodes on this machine: built once with debootstrap, then cached.

`base_tarball` is a plain debootstrapped root (what the StackScript tests unpack and run the
scripts in). `node_image` is the lab's node image: that root with what the StackScript would
install already installed (the lab's nodes reach no package mirror), kept unpacked as the
read-only lower layer every lab node's root is an overlay of.

A lower layer must never change while an overlay uses it: a binary rewritten under a running
node makes its processes crash in ways that name nothing. So an image is

- content-addressed: its name is a digest of everything it is built from (the base tarball's
  content, the packages, the build script), so a different build is a different directory;
- built under a lock of its own, to a temporary name, and renamed into place whole;
- sealed: a manifest of every entry's inode, size, mode and times is written when it is built,
  and every use checks it, so a change made after the build (by anything) is refused by name
  instead of crashing nodes;
- leased while used: a lab holds a shared lock on its image's directory, and a superseded image
  is only removed under an exclusive lock that no running lab holds (and only once it has gone
  unused for a week).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from swarmboot.errors import SwarmbootError

__all__ = [
    "BASE_INCLUDE",
    "MIRROR",
    "NODE_PACKAGES",
    "ImageError",
    "NodeImage",
    "base_tarball",
    "default_cache",
    "image_path",
    "node_image",
    "prune_superseded",
    "seal",
    "unmount_below",
    "verify",
]

MIRROR = "deb.debian.org"
BASE_VERSION = 1  # bump when the way base tarballs are built changes
IMAGE_VERSION = 2  # bump when the way node images are built changes (beyond _INSTALL)
# Linode's Debian images come with an SSH server; the StackScript installs everything else.
BASE_INCLUDE = ("openssh-server",)
# What the StackScript installs (docker_source = debian), plus tools a node here needs, and
# Debian's cloud-init, which Linode's images carry (it runs the user data of a node made with
# cluster.bootstrap = "cloud-init").
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
    "cloud-init",
)
NODE_PACKAGES = {
    "bookworm": _NODE_PACKAGES,
    # trixie splits the docker CLI out of docker.io.
    "trixie": (*_NODE_PACKAGES[:3], "docker-cli", *_NODE_PACKAGES[3:]),
}
_TAR = ["tar", "--zstd", "--numeric-owner", "--xattrs", "--xattrs-include=*"]
# Installs the node packages into the unpacked root $1 (run in a private mount namespace: the
# mounts vanish with the process, even on failure). Part of the image's digest.
_INSTALL = (
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
_MANIFEST = ".manifest"
_COMPLETE = ".complete"


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


@contextlib.contextmanager
def _locked(target: Path) -> Iterator[None]:
    """An exclusive lock for building `target` (one lock per thing built: different things
    build at once, the same thing once)."""
    with open(target.with_name(target.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


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


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _clear(build: Path) -> None:
    if build.exists():
        unmount_below(build)
        shutil.rmtree(build)


def base_tarball(codename: str, cache: Path | None = None) -> Path:
    """A debootstrapped `codename` root as a zstd tarball, built when absent; its sha256 is
    kept beside it (`<tarball>.sha256`) for the images built from it."""
    cache = cache or default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"rootfs-debian-{codename}-v{BASE_VERSION}.tar.zst"
    digest = tarball.with_name(tarball.name + ".sha256")
    if tarball.exists() and digest.exists():
        return tarball
    with _locked(tarball):
        if tarball.exists():
            if not digest.exists():  # a tarball from before digests were kept
                digest.write_text(_sha256(tarball) + "\n")
            return tarball
        for tool in ("debootstrap", "zstd"):
            _require(tool)
        build = cache / f"build-{codename}"
        log = cache / f"debootstrap-{codename}.log"
        log.write_text("")
        _clear(build)
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
            digest.write_text(_sha256(partial) + "\n")
            partial.rename(tarball)
        finally:
            unmount_below(build)
            shutil.rmtree(build, ignore_errors=True)
    return tarball


def image_path(codename: str, cache: Path) -> Path:
    """Where the node image for `codename` is: named by a digest of what it is built from
    (building the base tarball first when it is absent)."""
    tarball = base_tarball(codename, cache)
    h = hashlib.sha256()
    for part in (
        f"image v{IMAGE_VERSION} {codename}",
        " ".join(NODE_PACKAGES[codename]),
        _INSTALL,
        tarball.with_name(tarball.name + ".sha256").read_text().strip(),
    ):
        h.update(part.encode() + b"\0")
    return cache / f"lab-image-{codename}-{h.hexdigest()[:16]}"


# --- the seal: what an image was when it was built ---------------------------------------


def _entries(root: Path) -> Iterator[str]:
    """One line per entry below `root`: path, inode, type and mode, owner, size, mtime, ctime.
    ctime cannot be set by a program: any change to an entry after the seal changes it."""

    def walk(directory: str, rel: str) -> Iterator[str]:
        with os.scandir(directory) as it:
            found = sorted(it, key=lambda e: e.name)
        for entry in found:
            path = f"{rel}{entry.name}"
            if not rel and entry.name in (_MANIFEST, _COMPLETE):
                continue
            st = entry.stat(follow_symlinks=False)
            yield (
                f"{path!r}\t{st.st_ino}\t{st.st_mode:o}\t{st.st_uid}:{st.st_gid}\t"
                f"{st.st_size}\t{st.st_mtime_ns}\t{st.st_ctime_ns}"
            )
            if entry.is_dir(follow_symlinks=False):
                yield from walk(entry.path, path + "/")

    return walk(str(root), "")


def seal(root: Path) -> None:
    """Record what `root` holds (its manifest) and mark it complete. Only a sealed directory
    is an image."""
    (root / _MANIFEST).write_text("".join(line + "\n" for line in _entries(root)))
    (root / _COMPLETE).write_text(f"sealed image v{IMAGE_VERSION}\n")


def verify(root: Path) -> None:
    """Raise ImageError, naming what changed, unless `root` is as it was sealed."""
    try:
        sealed = (root / _MANIFEST).read_text().splitlines()
    except FileNotFoundError:
        raise ImageError(f"the lab image {root} has no manifest: it was never sealed") from None
    now = list(_entries(root))
    if now == sealed:
        return
    before = {line.split("\t", 1)[0]: line for line in sealed}
    after = {line.split("\t", 1)[0]: line for line in now}
    changed = sorted(p for p in before.keys() & after.keys() if before[p] != after[p])
    gone = sorted(before.keys() - after.keys())
    added = sorted(after.keys() - before.keys())
    parts = []
    for what, paths in (("changed", changed), ("removed", gone), ("added", added)):
        if paths:
            shown = ", ".join(_shown(p) for p in paths[:5])
            more = f" and {len(paths) - 5} more" if len(paths) > 5 else ""
            parts.append(f"{what}: {shown}{more}")
    raise ImageError(
        f"the lab image {root} changed after it was built ({'; '.join(parts)}): it is the "
        "read-only lower layer of every lab node, and nothing may write into it",
        hint=f"remove it (rm -r {root}) and it is built again; find what wrote into it",
    )


def _shown(quoted: str) -> str:
    """A manifest path (written as a Python literal) as a reader wants it."""
    return quoted[1:-1]


# --- leases: an image in use is never removed --------------------------------------------


class NodeImage:
    """A node image held for use: while held, no other process removes it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# A superseded image unused for this long is removed (when no lab holds it): switching
# between versions of the code that build different images does not rebuild each time.
UNUSED_DAYS = 7


def _used_stamp(path: Path) -> Path:
    return path.with_name(path.name + ".used")  # beside the image: the image stays as sealed


def _lease(path: Path) -> NodeImage | None:
    """Hold `path` (a shared lock on its directory) if it is a complete image, else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return None
    fcntl.flock(fd, fcntl.LOCK_SH)
    try:
        # A pruner renames an image away before removing it: the name must still be this one.
        held = os.stat(path).st_ino == os.fstat(fd).st_ino and (path / _COMPLETE).exists()
    except FileNotFoundError:
        held = False
    if not held:
        os.close(fd)
        return None
    _used_stamp(path).touch()
    return NodeImage(path, fd)


def prune_superseded(codename: str, keep: Path, now: float | None = None) -> list[Path]:
    """Remove the other node images of `codename` in `keep`'s cache (1 GB or more each) that
    no lab holds and none used for UNUSED_DAYS. Returns what was removed."""
    removed = []
    cutoff = (time.time() if now is None else now) - UNUSED_DAYS * 86400
    for old in sorted(keep.parent.glob(f"lab-image-{codename}-*")):
        if old == keep or not old.is_dir() or old.name.endswith(".build"):
            continue
        stamp = _used_stamp(old)
        if stamp.exists() and stamp.stat().st_mtime > cutoff:
            continue
        try:
            fd = os.open(old, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # a running lab holds it
        try:
            trash = old.with_name(f"{old.name}.build")  # cleared by the next build of it
            old.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
            stamp.unlink(missing_ok=True)
            old.with_name(old.name + ".lock").unlink(missing_ok=True)
            removed.append(old)
        finally:
            os.close(fd)
    return removed


def node_image(codename: str, cache: Path | None = None) -> NodeImage:
    """The lab's node image for `codename` (base root + the StackScript's packages), built when
    absent, checked against its seal and held for the caller until `release()`."""
    cache = cache or default_cache()
    image = image_path(codename, cache)
    held = _lease(image)
    if held is None:
        _build(codename, image)
        held = _lease(image)
        if held is None:
            raise ImageError(f"the lab image {image} went away as soon as it was built")
        prune_superseded(codename, image)
    try:
        verify(image)
    except BaseException:
        held.release()
        raise
    return held


def _build(codename: str, image: Path) -> None:
    cache = image.parent
    tarball = base_tarball(codename, cache)
    with _locked(image):
        if (image / _COMPLETE).exists():
            return  # another process built it while this one waited
        log = cache / f"lab-image-{codename}.log"
        log.write_text("")
        build = image.with_name(image.name + ".build")
        _clear(build)
        if image.exists():  # an unsealed leftover: never used by a node
            shutil.rmtree(image)
        build.mkdir(parents=True)
        try:
            _run([*_TAR, "-C", str(build), "-xpf", str(tarball)], log, "unpacking the root")
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
            _run(
                [
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "--",
                    "/bin/bash",
                    "-c",
                    _INSTALL,
                    "install",
                    str(build),
                    *NODE_PACKAGES[codename],
                ],
                log,
                f"installing the node packages into the {codename} image",
                env=env,
            )
            (build / "etc/resolv.conf").write_text("nameserver 127.0.0.1\n")
            build.rename(image)
            seal(image)
        finally:
            if build.exists():
                unmount_below(build)
                shutil.rmtree(build, ignore_errors=True)
