"""Secrets stay secret: the API token, root's password and the swarm's join tokens never show in
what swarmboot prints (stdout, stderr, with -v and SWARMBOOT_DEBUG=1, which add logs and
tracebacks), nor in the argv of any process on this machine while it runs, the lab's nodes
(sshd, dockerd and what they run) among them.

Every command runs through the command line against the lab, as a user runs it, including
ones that fail. A sampler reads every process's command line while each command runs.
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from .lab import EXE, REPO, TOKEN, LabSim, on_node, pinned

pytestmark = pytest.mark.lab

SPEC = REPO / "examples" / "itframe-lab.toml"
ROOT_PASSWORD = "Root-pass-5ecret-7q"


class ArgvSampler:
    """Every distinct command line seen in /proc while it runs."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for proc in Path("/proc").iterdir():
                if proc.name.isdigit():
                    try:
                        raw = (proc / "cmdline").read_bytes()
                    except OSError:
                        continue
                    if raw:
                        self.seen.add(raw.replace(b"\0", b" ").decode(errors="replace"))
            self._stop.wait(0.02)

    def __enter__(self) -> ArgvSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _run(sim: LabSim, *args: str) -> subprocess.CompletedProcess:
    env = {**sim.client_env(), "SWARMBOOT_ROOT_PASSWORD": ROOT_PASSWORD, "SWARMBOOT_DEBUG": "1"}
    api = () if args[:2] == ("lb", "render") else ("--api-url", sim.url)
    return subprocess.run(
        [EXE, "-v", *args, *api],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_no_secret_in_output_logs_tracebacks_or_any_processes_argv(lab, key, tmp_path):
    outputs: list[str] = []
    with ArgvSampler() as sampler:

        def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
            done = _run(lab, *args)
            outputs.extend((done.stdout, done.stderr))
            if ok:
                assert done.returncode == 0, done.stderr[-2000:]
            return done

        spec = ("--ssh-key", str(key))
        run("up", str(SPEC), *spec, "--json")
        known = tmp_path / "known_hosts"
        known.write_text(run("known-hosts", str(SPEC), *spec).stdout)
        manager = pinned(lab)["itframe-eu-central-manager-1"][0]
        join_tokens = [
            on_node(known, key, manager, f"docker swarm join-token -q {role}").strip()
            for role in ("worker", "manager")
        ]
        run("plan", str(SPEC), *spec, "--json")
        run("status", str(SPEC), *spec, "--json")
        run("node", "rebuild", str(SPEC), "itframe-gb-lon-worker-1", *spec, "--yes")
        run("repair", str(SPEC), *spec, "--yes")
        run("stackscript", "publish", "--dry-run")
        run("lb", "render", str(SPEC))
        # Failures, with their tracebacks (SWARMBOOT_DEBUG=1): a refused rebuild, a label
        # the spec lacks, a wrong token, an unreadable key.
        assert run("node", "rebuild", str(SPEC), "itframe-x-1", *spec, "--yes", ok=False).returncode
        wrong = {**lab.client_env(), "SWARMBOOT_SIM_TOKEN": "not-" + TOKEN}
        done = subprocess.run(
            [EXE, "-v", "plan", str(SPEC), "--api-url", lab.url],
            env=wrong,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        outputs.extend((done.stdout, done.stderr))
        assert done.returncode == 5
        missing = ("--ssh-key", str(tmp_path / "absent"))
        assert run("plan", str(SPEC), *missing, ok=False).returncode == 1
        run("down", str(SPEC), *spec, "--yes")
    secrets = {"API token": TOKEN, "root password": ROOT_PASSWORD}
    secrets.update({f"join token {n}": t for n, t in enumerate(join_tokens)})
    assert all(len(t) > 40 and t.startswith("SWMTKN-") for t in join_tokens)
    printed = "\n".join(outputs)
    assert "Traceback" in printed  # the debug paths did run
    for name, secret in secrets.items():
        assert secret not in printed, f"the {name} was printed"
        leaked = [argv for argv in sampler.seen if secret in argv]
        assert leaked == [], f"the {name} was in a process's argv: {leaked[:2]}"
    assert len(sampler.seen) > 50  # it did look: swarmboot, the nodes' sshd, dockerd, …
    assert any("swarmboot" in argv and " up " in argv for argv in sampler.seen)
