"""The lab's node images: named by what they are built from, sealed, checked at every use, and
never removed while a lab holds them. (No root, no debootstrap: the images here are small
directories standing in for built ones.)"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from swarmboot.lab import image


def _base(cache: Path, content: bytes = b"a debootstrapped root") -> None:
    """A base tarball as base_tarball() leaves it: the file and its sha256 beside it."""
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"rootfs-debian-bookworm-v{image.BASE_VERSION}.tar.zst"
    tarball.write_bytes(content)
    digest = tarball.with_name(tarball.name + ".sha256")
    digest.write_text(image._sha256(tarball) + "\n")


def _built(cache: Path) -> Path:
    """A small sealed image where node_image() looks for bookworm's."""
    path = image.image_path("bookworm", cache)
    (path / "usr/bin").mkdir(parents=True)
    (path / "usr/bin/od").write_bytes(b"\x7fELF od")
    (path / "usr/bin/docker").write_bytes(b"\x7fELF docker")
    (path / "etc").mkdir()
    (path / "etc/hostname").write_text("image\n")
    os.symlink("usr/bin", path / "bin")
    image.seal(path)
    return path


def test_the_name_follows_everything_the_image_is_built_from(tmp_path, monkeypatch):
    _base(tmp_path / "a")
    _base(tmp_path / "b")
    _base(tmp_path / "c", b"another debootstrap of the same release")
    a = image.image_path("bookworm", tmp_path / "a")
    assert a.name == image.image_path("bookworm", tmp_path / "b").name
    assert a.name != image.image_path("bookworm", tmp_path / "c").name
    monkeypatch.setitem(image.NODE_PACKAGES, "bookworm", (*image.NODE_PACKAGES["bookworm"], "x"))
    assert a.name != image.image_path("bookworm", tmp_path / "a").name
    monkeypatch.undo()
    monkeypatch.setattr(image, "_INSTALL", image._INSTALL + "true\n")
    assert a.name != image.image_path("bookworm", tmp_path / "a").name


def test_a_sealed_image_is_used_as_it_is(tmp_path):
    _base(tmp_path)
    path = _built(tmp_path)
    held = image.node_image("bookworm", tmp_path)
    try:
        assert held.path == path
    finally:
        held.release()


@pytest.mark.parametrize(
    "change, named",
    [
        # A binary rewritten in place, keeping its size and times: what crashes a node's
        # processes when the file is their lower layer.
        ("rewrite", "changed: usr/bin/od"),
        ("replace", "changed: usr/bin/docker"),
        ("chmod", "changed: etc/hostname"),
        ("remove", "removed: etc/hostname"),
        ("add", "added: usr/bin/stray"),
    ],
)
def test_an_image_changed_after_its_seal_is_refused_naming_the_change(tmp_path, change, named):
    _base(tmp_path)
    path = _built(tmp_path)
    od = path / "usr/bin/od"
    if change == "rewrite":
        st = od.stat()
        with open(od, "r+b") as f:
            f.write(b"\x7fELF xx")
        os.utime(od, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert od.stat().st_size == st.st_size and od.stat().st_mtime_ns == st.st_mtime_ns
    elif change == "replace":
        new = path / "usr/bin/.docker.new"
        new.write_bytes(b"\x7fELF docker 2")
        new.rename(path / "usr/bin/docker")
    elif change == "chmod":
        (path / "etc/hostname").chmod(0o600)
    elif change == "remove":
        (path / "etc/hostname").unlink()
    else:
        (path / "usr/bin/stray").write_bytes(b"")
    with pytest.raises(image.ImageError) as caught:
        image.node_image("bookworm", tmp_path)
    message = str(caught.value)
    kind, what = named.split(": ")
    assert f"{kind}: " in message and what in message
    assert f"lab image {path} changed after it was built (" in message
    assert f"remove it (rm -r {path}) and it is built again" in message


def _hold_elsewhere(path: Path) -> subprocess.Popen:
    """Another process holding `path` as a running lab does (a shared lock on it)."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys\n"
            "fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)\n"
            "fcntl.flock(fd, fcntl.LOCK_SH)\n"
            "print('held', flush=True)\n"
            "sys.stdin.read()\n",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


LATER = time.time() + (image.UNUSED_DAYS + 1) * 86400  # when the old image is long unused


def test_a_superseded_image_is_removed_only_when_no_lab_holds_it(tmp_path):
    _base(tmp_path, b"last month's root")
    old = _built(tmp_path)
    image.node_image("bookworm", tmp_path).release()  # used once, then not for a week
    _base(tmp_path, b"today's root")
    new = _built(tmp_path)
    assert old != new
    holder = _hold_elsewhere(old)
    try:
        assert image.prune_superseded("bookworm", keep=new, now=LATER) == []
        image.verify(old)  # untouched
    finally:
        holder.communicate("")
    assert image.prune_superseded("bookworm", keep=new, now=LATER) == [old]
    assert not old.exists() and not old.with_name(old.name + ".build").exists()
    assert [p.name for p in tmp_path.glob(old.name + "*")] == []
    image.verify(new)


def test_this_process_holds_its_image_until_it_releases_it(tmp_path):
    _base(tmp_path, b"last month's root")
    old = _built(tmp_path)
    held = image.node_image("bookworm", tmp_path)
    _base(tmp_path, b"today's root")
    new = _built(tmp_path)
    try:
        assert image.prune_superseded("bookworm", keep=new, now=LATER) == []
    finally:
        held.release()
    assert image.prune_superseded("bookworm", keep=new, now=LATER) == [old]


def test_a_superseded_image_used_this_week_stays(tmp_path):
    """Switching between versions of the code that build different images does not rebuild
    them each time."""
    _base(tmp_path, b"last month's root")
    old = _built(tmp_path)
    image.node_image("bookworm", tmp_path).release()
    _base(tmp_path, b"today's root")
    new = _built(tmp_path)
    assert image.prune_superseded("bookworm", keep=new) == []
    image.verify(old)
