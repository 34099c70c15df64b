"""The lab simulator as a test runs it: its own process, and a check that it left nothing.

`LabSim.start()` runs `swarmboot sim --lab` (as a user would) and finds the lab it made by
the router namespace that appeared; `stop()` ends it with SIGTERM, as Ctrl-C would, and
returns what of the lab survived: namespaces, routes, links, mounts, cgroups, processes.
Whatever survived is then removed (only what carries this lab's id, processes by PID) so a
failed test does not leave the machine dirty for the next one.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from linode_api4 import LinodeClient

from swarmboot.sim.admin import SimAdmin

from ..conftest import TEST_CACHE

REPO = Path(__file__).resolve().parent.parent.parent
EXE = str(Path(sys.executable).parent / "swarmboot")
CACHE = TEST_CACHE
TOKEN = "lab-test-token"


def require_lab() -> None:
    missing = [t for t in ("ip", "nsenter", "unshare", "debootstrap", "ssh") if not _which(t)]
    if os.geteuid() != 0 or missing:
        why = "needs root" if os.geteuid() != 0 else f"needs {', '.join(missing)} (make host-deps)"
        if os.environ.get("SWARMBOOT_REQUIRE_DEBIAN_TESTS") == "1":
            pytest.fail(f"the lab {why}")
        pytest.skip(f"the lab {why}")


def _which(tool: str) -> bool:
    import shutil

    return shutil.which(tool) is not None


def _out(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout


def netns_names() -> list[str]:
    return sorted(line.split()[0] for line in _out("ip", "netns", "list").splitlines() if line)


def lab_netns(lab_id: str) -> list[str]:
    """The instance ids of the lab's node namespaces (the router's left out)."""
    prefix = f"swblab-{lab_id}-"
    return sorted(
        n.removeprefix(prefix) for n in netns_names() if n.startswith(prefix) and n != prefix + "r"
    )


def _cgroups(pattern: str) -> list[str]:
    return sorted(str(p) for p in Path("/sys/fs/cgroup").glob(f"*/{pattern}"))


def host_snapshot() -> dict[str, object]:
    """What the lab must leave as it found it."""
    firewall = _out("iptables-save") if _which("iptables-save") else ""
    firewall = "\n".join(line for line in firewall.splitlines() if not line.startswith("#"))
    return {
        "routes": _out("ip", "-4", "route", "show", "table", "all"),
        "links": sorted(link["ifname"] for link in json.loads(_out("ip", "-j", "link") or "[]")),
        "netns": netns_names(),
        "mounts": sorted(line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()),
        "cgroups": _cgroups("swarmboot-lab-*"),
        "forwarding": Path("/proc/sys/net/ipv4/ip_forward").read_text(),
        "firewall": firewall,
    }


def kernel_log(since: float = 0.0) -> list[str]:
    """The kernel's log lines stamped after `since` (seconds since boot; dmesg needs root, as
    the lab does). The ring buffer wraps: lines are told by their stamps, not their count."""
    found = []
    for line in _out("dmesg").splitlines():
        stamp = re.match(r"\[\s*(\d+\.\d+)\]", line)
        if stamp and float(stamp.group(1)) > since:
            found.append(line)
    return found


def _uptime() -> float:
    return float(Path("/proc/uptime").read_text().split()[0])


# What the kernel says when a process dies of a fault or storage fails under it.
_KERNEL_TROUBLE = re.compile(
    r"segfault|traps:|general protection|invalid opcode|Out of memory|oom-kill|"
    r"I/O error|EXT4-fs (error|warning)|overlayfs:|Bus error",
    re.IGNORECASE,
)
# What a node's logs say when one of its processes died.
_NODE_TROUBLE = re.compile(
    r"panic|fatal|SIGSEGV|SIGBUS|segmentation|exited with status|level=error|"
    r"Connection (closed|reset)|Timeout|Disconnected",
    re.IGNORECASE,
)


@dataclass
class LabSim:
    proc: subprocess.Popen
    url: str
    lab_id: str
    workdir: Path
    started: float = 0.0  # seconds since boot, for the kernel's log

    @staticmethod
    def cache_env() -> dict[str, str]:
        return {"SWARMBOOT_LAB_CACHE": str(CACHE)}

    @classmethod
    def start(cls, *args: str) -> LabSim:
        require_lab()
        routers = {n for n in netns_names() if n.endswith("-r")}
        workdirs = set((CACHE / "lab-nodes").glob("swarmboot-lab-*"))
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("SWARMBOOT_SIM_TOKEN", "LINODE_TOKEN", "LINODE_CLI_TOKEN")
        }
        env.update(SWARMBOOT_SIM_TOKEN=TOKEN, **cls.cache_env())
        proc = subprocess.Popen(
            [EXE, "sim", "--lab", "--port", "0", "--time-scale", "0.05", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        url = proc.stdout.readline().strip()  # after the image is ready: minutes on first use
        if not url:
            _, err = proc.communicate(timeout=30)
            raise AssertionError(f"the lab simulator did not start: {err[-3000:]}")
        new = sorted({n for n in netns_names() if n.endswith("-r")} - routers)
        workdir = sorted(set((CACHE / "lab-nodes").glob("swarmboot-lab-*")) - workdirs)
        assert len(new) == 1 and len(workdir) == 1, (new, workdir)
        # The real path: processes and mounts name it so, even when the cache is a symlink.
        sim = cls(
            proc,
            url,
            new[0].removeprefix("swblab-").removesuffix("-r"),
            workdir[0].resolve(),
            started=_uptime(),
        )
        deadline = time.monotonic() + 30
        while not sim.admin.healthy():
            assert time.monotonic() < deadline, "the lab simulator does not answer"
            time.sleep(0.05)
        return sim

    @property
    def admin(self) -> SimAdmin:
        return SimAdmin(self.url, TOKEN)

    def client_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("LINODE_TOKEN", "LINODE_CLI_TOKEN")}
        env["SWARMBOOT_SIM_TOKEN"] = TOKEN
        # The lab runs Linode's timings at x0.05: a poll every second is 20 s of Linode time
        # (the default 5 s would be 100 s, and most of a lab test's waiting).
        env.setdefault("SWARMBOOT_POLL_INTERVAL", "1")
        return env

    def nodes_dir(self) -> Path:
        return self.workdir

    def node_processes(self) -> list[str]:
        """Processes of this lab's nodes: those whose root is a node's root."""
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                root = os.readlink(proc / "root")
                if root.startswith(str(self.workdir) + "/"):
                    found.append(f"{proc.name} {(proc / 'comm').read_text().strip()}")
        return found

    def evidence(self) -> str:
        """What a failed command leaves to go on: the kernel's complaints since the lab
        started, and for each node the lines of its logs that say something died or a
        connection ended, and the last lines of its SSH server's log."""
        lines = [f"kernel: {line}" for line in kernel_log(self.started)]
        lines = [line for line in lines if _KERNEL_TROUBLE.search(line)]
        for node in sorted(self.workdir.iterdir()) if self.workdir.exists() else []:
            for log, last in (
                (node / "init.out", 0),
                (node / "stackscript.out", 0),
                (node / "cloud-init.out", 0),
                (node / "upper/var/log/dockerd.log", 0),
                (node / "upper/var/log/sshd-lab.log", 3),
            ):
                with contextlib.suppress(OSError):
                    text = log.read_text(errors="replace").splitlines()
                    found = [line for line in text if _NODE_TROUBLE.search(line)][-5:]
                    found += [line for line in text[-last:] if last and line not in found]
                    lines += [f"node {node.name} {log.name}: {line}" for line in found]
        return "\n".join(lines) or "no kernel or node log line says that anything died"

    def kill_node(self, instance_id: int) -> list[int]:
        """A dead Linode: SIGKILL every process of one node (all started by this lab's
        simulator), by PID. Linode still says running; its disk stays."""
        root = str(self.workdir / str(instance_id)) + "/"
        killed = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                if os.readlink(proc / "root").startswith(root):
                    os.kill(int(proc.name), signal.SIGKILL)
                    killed.append(int(proc.name))
        return killed

    def wait_for_no_nodes(self, timeout: float = 60.0) -> None:
        """Deletes reach the lab's backend after the API answered: wait for the nodes to go."""
        deadline = time.monotonic() + timeout
        while lab_netns(self.lab_id) or any(self.workdir.iterdir()):
            assert time.monotonic() < deadline, f"lab nodes left: {lab_netns(self.lab_id)}"
            time.sleep(0.1)

    def stop(self) -> list[str]:
        """End the simulator as Ctrl-C would; what of the lab survived it (then removed)."""
        leftovers: list[str] = []
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=30)
            leftovers.append(f"the simulator did not stop on SIGINT: {err[-2000:]}")
        if self.proc.returncode != 0:
            leftovers.append(f"the simulator exited with {self.proc.returncode}: {err[-2000:]}")
        leftovers += [f"process {p}" for p in self.node_processes()]
        leftovers += [f"netns {n}" for n in netns_names() if n.startswith(f"swblab-{self.lab_id}-")]
        routes = _out("ip", "-4", "route")
        leftovers += [f"route {r}" for r in routes.splitlines() if f"swb{self.lab_id}h" in r]
        leftovers += [
            f"mount {m}"
            for m in Path("/proc/mounts").read_text().split()
            if m.startswith(str(self.workdir))
        ]
        leftovers += [f"cgroup {c}" for c in _cgroups(f"swarmboot-lab-swblab-{self.lab_id}-*")]
        if self.workdir.exists():
            leftovers.append(f"directory {self.workdir}")
        if leftovers:
            self._clean()
        return leftovers

    def _clean(self) -> None:
        for line in self.node_processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(line.split()[0]), signal.SIGKILL)
        for name in netns_names():
            if name.startswith(f"swblab-{self.lab_id}-"):
                subprocess.run(["ip", "netns", "del", name], check=False)
        subprocess.run(["ip", "link", "del", f"swb{self.lab_id}h"], check=False)
        mounts = [
            m for m in Path("/proc/mounts").read_text().split() if m.startswith(str(self.workdir))
        ]
        for mount in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], check=False)
        for cgroup in _cgroups(f"swarmboot-lab-swblab-{self.lab_id}-*"):
            for sub in sorted(Path(cgroup).rglob("*"), key=lambda p: len(p.parts), reverse=True):
                if sub.is_dir():
                    with contextlib.suppress(OSError):
                        sub.rmdir()
            with contextlib.suppress(OSError):
                Path(cgroup).rmdir()
        subprocess.run(["rm", "-rf", "--one-file-system", str(self.workdir)], check=False)


# --- what the tests do with a lab ---------------------------------------------------------


def swarmboot(
    sim: LabSim,
    *args: str,
    check: bool = True,
    timeout: float = 900,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """swarmboot's command line against the lab's API, as a user runs it (`env`: more of
    its environment, such as a secret it reads)."""
    done = subprocess.run(
        [EXE, *args, "--api-url", sim.url],
        env={**sim.client_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check:
        assert done.returncode == 0, (
            f"swarmboot {' '.join(args)}: {done.stderr[-3000:]}\n"
            f"what the lab saw:\n{sim.evidence()}"
        )
    return done


def linodes(sim: LabSim) -> list:
    """The Linodes, as the official client sees them."""
    return list(LinodeClient(TOKEN, base_url=sim.url).linode.instances())


def pinned(sim: LabSim) -> dict[str, tuple[str, str]]:
    """label -> (public IPv4, pinned SHA256 fingerprint) from the Linodes' tags."""
    out = {}
    for inst in linodes(sim):
        tag = next(t for t in inst.tags if t.startswith("hk:"))
        out[inst.label] = (inst.ipv4[0], "SHA256:" + tag.removeprefix("hk:"))
    return out


def fingerprint_of(line: str) -> str:
    blob = base64.b64decode(line.split()[2])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def on_node(
    known_hosts: Path, key: Path, address: str, command: str, stdin: bytes | None = None
) -> str:
    """Run a command on a node with OpenSSH, accepting only the key in known_hosts."""
    done = subprocess.run(
        [
            "ssh",
            "-i",
            str(key),
            "-o",
            f"UserKnownHostsFile={known_hosts}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            f"root@{address}",
            command,
        ],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=120,
        check=False,
    )
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 0, f"{address}: {command}: {stderr}"
    return done.stdout.decode(errors="replace")
