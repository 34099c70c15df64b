"""Run rendered StackScripts for real in a Debian root, isolated from this machine.

A root made by debootstrap is cached as a zstd tarball (built once, about a minute) and
unpacked per test. Each run happens in a network namespace of the test's own and in fresh
mount, PID and UTS namespaces, so the firewall rules, vxlan and xfrm probes, hostname and the
Docker daemon the script starts touch nothing of the host, and everything the run started dies
with it. The namespace reaches the Debian mirror only through a forwarder on its loopback.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import http.server
import itertools
import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarmboot import facts
from swarmboot.lab import image

from ..conftest import TEST_CACHE

HERE = Path(__file__).resolve().parent
CACHE_DIR = TEST_CACHE
MIRROR = image.MIRROR

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_counter = itertools.count()


class HarnessError(RuntimeError):
    pass


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kwargs)


# tar that keeps owners, modes and file capabilities (ping's) of a root filesystem
_TAR = ["tar", "--zstd", "--numeric-owner", "--xattrs", "--xattrs-include=*"]


# --- cached roots -----------------------------------------------------------------------------


def ensure_rootfs(codename: str) -> Path:
    """The cached tarball of a debootstrapped `codename` root, built when absent: the same
    root the lab's node image starts from (swarmboot.lab.image)."""
    try:
        return image.base_tarball(codename, CACHE_DIR)
    except image.ImageError as exc:
        raise HarnessError(exc.message) from None


# --- network namespaces -----------------------------------------------------------------------


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def listen_in_netns(netns: Path, port: int) -> socket.socket:
    """A TCP socket listening on 127.0.0.1:`port` inside `netns`, owned by this process."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(netns, os.O_RDONLY)
    try:
        _setns(target)
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen(64)
        finally:
            _setns(own)
    finally:
        os.close(own)
        os.close(target)
    return sock


class Forwarder:
    """Relay connections accepted in the namespace to an address reached from the host."""

    def __init__(self, listener: socket.socket, upstream: tuple[str, int]) -> None:
        self._listener = listener
        self._upstream = upstream
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, conn: socket.socket) -> None:
        try:
            up = socket.create_connection(self._upstream, timeout=30)
        except OSError:
            conn.close()
            return
        up.settimeout(None)
        with self._lock:
            self._open.update((conn, up))
        back = threading.Thread(target=_pump, args=(up, conn), daemon=True)
        back.start()
        _pump(conn, up)
        back.join()
        with self._lock:
            self._open.difference_update((conn, up))
        conn.close()
        up.close()

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


class StaticServer:
    """Serve fixed files over HTTP from inside the namespace (stands in for a remote server)."""

    def __init__(self, listener: socket.socket, files: Mapping[str, bytes]) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = files.get(self.path)
                self.send_response(200 if body is not None else 404)
                body = body if body is not None else b"not found\n"
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(
            listener.getsockname(), Handler, bind_and_activate=False
        )
        self._server.socket.close()
        self._server.socket = listener
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# --- a Debian node in a chroot ----------------------------------------------------------------


@dataclass(frozen=True)
class ScriptRun:
    returncode: int
    output: str
    status: dict | None
    log: str
    console: str


# Paths whose contents change on every run by design: runtime state, caches, our logs.
VOLATILE = (
    "proc",
    "sys",
    "dev",
    "run",
    "tmp",
    "var/tmp",
    "var/cache/apt/archives",
    "var/lib/docker",
    "var/lib/containerd",
    "root/StackScript",
    "var/log/swarmboot-stackscript.log",
    "var/log/dockerd.log",
    "var/log/systemctl-shim.log",
    "var/lib/swarmboot/status.json",
)


class DebianNode:
    """An unpacked Debian root with a network namespace of its own."""

    def __init__(self, codename: str, workdir: Path) -> None:
        self.codename = codename
        self.workdir = workdir
        self.root = workdir / "root"
        self.console_file = workdir / "console.log"
        self.netns = f"swbtest-{os.getpid()}-{next(_counter)}"
        self.netns_path = Path("/run/netns") / self.netns
        self._closers: list = []
        self.archives = CACHE_DIR / f"apt-archives-{codename}"
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        tarball = ensure_rootfs(self.codename)
        self.root.mkdir(parents=True)
        self._closers.append(lambda: shutil.rmtree(self.workdir, ignore_errors=True))
        _run([*_TAR, "-C", str(self.root), "-xpf", str(tarball)])
        self.console_file.write_text("")
        (self.archives / "partial").mkdir(parents=True, exist_ok=True)
        self._prepare_root()
        _run(["ip", "netns", "add", self.netns])
        self._closers.append(lambda: _run(["ip", "netns", "del", self.netns]))
        _run(["ip", "-n", self.netns, "link", "set", "lo", "up"])
        mirror = socket.getaddrinfo(MIRROR, 80, socket.AF_INET, socket.SOCK_STREAM)[0][4]
        forwarder = Forwarder(listen_in_netns(self.netns_path, 80), mirror)
        self._closers.append(forwarder.close)

    def _prepare_root(self) -> None:
        etc = self.root / "etc"
        (etc / "hosts").write_text(f"127.0.0.1\tlocalhost\n127.0.0.1\t{MIRROR}\n")
        # No name server: anything but the mirror fails at once instead of waiting.
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        # Packages must not start services while installing (as in any chroot).
        policy = self.root / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        shim = self.root / "usr/local/sbin/systemctl"
        shutil.copyfile(HERE / "systemctl-shim", shim)
        shim.chmod(0o755)

    def serve(self, port: int, files: Mapping[str, bytes]) -> None:
        """Serve `files` at http://127.0.0.1:`port` inside the node's namespace."""
        server = StaticServer(listen_in_netns(self.netns_path, port), files)
        self._closers.append(server.close)

    def _enter(
        self,
        command: list[str],
        env: Mapping[str, str],
        timeout: float,
        console: Path | None = None,
    ) -> subprocess.CompletedProcess:
        runner = [
            "nsenter",
            f"--net={self.netns_path}",
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
            str(HERE / "enter-root.sh"),
            str(self.root),
            str(console or "/dev/null"),
            str(self.archives),
            *command,
        ]
        base = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            "TERM": "dumb",
        }
        return subprocess.run(
            runner,
            env={**base, **env},
            text=True,
            capture_output=True,
            timeout=timeout,
            check=False,
        )

    def run_script(
        self, script: str, fields: Mapping[str, str], timeout: float = 1200
    ) -> ScriptRun:
        """Run a StackScript as Linode does: as root, from /root/StackScript, fields in env."""
        path = self.root / "root/StackScript"
        path.write_text(script)
        path.chmod(0o700)
        env = {
            "LINODE_ID": "4242",
            "LINODE_LISHUSERNAME": "linode4242",
            "LINODE_RAM": "4096",
            "LINODE_DATACENTERID": "10",
            **fields,
        }
        console_before = self.console_file.read_text()
        done = self._enter(
            ["/bin/bash", "/root/StackScript"], env, timeout, console=self.console_file
        )
        status_file = self.root / "var/lib/swarmboot/status.json"
        status = json.loads(status_file.read_text()) if status_file.exists() else None
        log_file = self.root / "var/log/swarmboot-stackscript.log"
        return ScriptRun(
            returncode=done.returncode,
            output=done.stdout + done.stderr,
            status=status,
            log=log_file.read_text(errors="replace") if log_file.exists() else "",
            console=self.console_file.read_text()[len(console_before) :],
        )

    def install_cloud_init(self) -> None:
        """Debian's own cloud-init from the mirror, as a Linode image with the `cloud-init`
        capability carries it, told to read the NoCloud seed (standing in for Linode's
        Metadata service) and to leave this machine's disk and the namespace's network alone
        (the root is a folder here, not a Linode's disk; the network is the test's)."""
        self.chroot(
            "/bin/sh",
            "-c",
            "apt-get update -q && apt-get install -y -q --no-install-recommends cloud-init",
            timeout=900,
        )
        (self.root / "etc/cloud/cloud.cfg.d/90-swarmboot-test.cfg").write_text(
            "datasource_list: [NoCloud]\n"
            "network: {config: disabled}\n"
            "growpart: {mode: 'off'}\n"
            "resize_rootfs: false\n"
            # The debootstrapped root has no en_US.UTF-8 to set (a Linode image has).
            "locale: false\n"
        )

    def run_cloud_init(
        self, user_data: str, instance_id: str, hostname: str, timeout: float = 1200
    ) -> ScriptRun:
        """Boot's cloud-init stages as systemd runs them (local, network, config, final), in
        one go, with `user_data` in the NoCloud seed: what a Linode's first boot does with
        its metadata.user_data."""
        seed = self.root / "var/lib/cloud/seed/nocloud"
        seed.mkdir(parents=True, exist_ok=True)
        (seed / "user-data").write_text(user_data)
        (seed / "user-data").chmod(0o600)
        (seed / "meta-data").write_text(f"instance-id: {instance_id}\nlocal-hostname: {hostname}\n")
        console_before = self.console_file.read_text()
        done = self._enter(
            [
                "/bin/sh",
                "-c",
                # Each stage runs whatever the one before it did, as systemd's units do.
                "rc=0; for stage in 'init --local' init 'modules --mode=config' "
                "'modules --mode=final'; do cloud-init $stage || rc=1; done; "
                f"if [ -e {facts.NODE_ENV_FILE} ]; then echo 'node.env left behind'; rc=1; fi; "
                "cloud-init status --long; cloud-init schema --system; exit $rc",
            ],
            {},
            timeout,
            console=self.console_file,
        )
        status_file = self.root / "var/lib/swarmboot/status.json"
        log_file = self.root / "var/log/swarmboot-stackscript.log"
        return ScriptRun(
            returncode=done.returncode,
            output=done.stdout + done.stderr,
            status=json.loads(status_file.read_text()) if status_file.exists() else None,
            log=log_file.read_text(errors="replace") if log_file.exists() else "",
            console=self.console_file.read_text()[len(console_before) :],
        )

    def chroot(self, *command: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run a command in the root, in the node's namespaces; it must succeed."""
        done = self._enter(list(command), {}, timeout)
        if done.returncode != 0:
            raise HarnessError(
                f"{' '.join(command)} exited {done.returncode}: {done.stdout}{done.stderr}"
            )
        return done

    def snapshot(self) -> dict[str, tuple]:
        """Every file's type, mode, owner, size, mtime and inode, less the volatile paths."""
        skip = {str(self.root / v) for v in VOLATILE}
        found: dict[str, tuple] = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in skip]
            for name in dirnames + filenames:
                full = os.path.join(dirpath, name)
                if full in skip:
                    continue
                st = os.lstat(full)
                rel = os.path.relpath(full, self.root)
                if os.path.isdir(full) and not os.path.islink(full):
                    found[rel] = ("dir", st.st_mode, st.st_uid, st.st_gid)
                elif os.path.islink(full):
                    found[rel] = ("link", os.readlink(full))
                else:
                    found[rel] = (
                        "file",
                        st.st_mode,
                        st.st_uid,
                        st.st_gid,
                        st.st_size,
                        st.st_mtime_ns,
                        st.st_ino,
                    )
        return found

    def close(self) -> None:
        errors = []
        for closer in reversed(self._closers):
            try:
                closer()
            except Exception as exc:  # keep closing the rest
                errors.append(exc)
        self._closers.clear()
        if errors:
            raise HarnessError(f"cleanup failed: {errors}")


def per_release(
    make: Callable[[str, Path], Any], names: Mapping[str, str], tmp_path_factory: Any
) -> Iterator[dict[str, Any]]:
    """`make(name, workdir)` for every script name at once, each giving something with a
    `node`: each run is mostly a single-threaded dpkg or a wait on the mirror, so two go side
    by side on two cores. Yields them by name; every node made is closed afterwards."""
    with concurrent.futures.ThreadPoolExecutor(len(names)) as pool:
        futures = {
            name: pool.submit(
                make, name, tmp_path_factory.mktemp(name.removesuffix(".sh")) / "node"
            )
            for name in sorted(names)
        }
        concurrent.futures.wait(futures.values())
    done = {name: f.result() for name, f in futures.items() if f.exception() is None}
    try:
        for future in futures.values():
            if future.exception() is not None:
                raise future.exception()
        yield done
    finally:
        for each in done.values():
            each.node.close()
