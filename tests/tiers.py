"""make test: the suite in two tiers run side by side, each a pytest of its own.

    python -m tests.tiers [PYTEST ARGS...]

- machine: the tests that run real machinery (`debian`, `lab`, `vm` markers): Debian roots,
  lab swarms of Docker daemons in namespaces, qemu. They share this machine's namespaces,
  mounts and caches, so they run one at a time, in one pytest, as before.
- fast: everything else (fakes, the simulator, the security sweep, the in-suite drills),
  which touches none of that, at a lower CPU priority (nice 10), so that the machine tier,
  the longer one, is slowed by it as little as can be.

Each line a tier prints is shown as it comes, behind the tier's name; the run exits 0 when
both pass (or one had nothing selected), else with the first failing tier's exit code. An interrupt
(Ctrl-C, SIGTERM) is passed on to both, and each is ended by its own process group, which
is of this run's making only. `pytest` alone still runs the whole suite in one process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

MACHINE = "debian or lab or vm"
TIERS = (("machine", MACHINE, 0), ("fast", f"not ({MACHINE})", 10))
NO_TESTS = 5  # pytest's exit code when nothing was selected
GRACE = 60  # seconds a tier has to finish after an interrupt before it is killed


@dataclass
class Tier:
    name: str
    proc: subprocess.Popen
    started: float
    ended: float = 0.0


def _start(name: str, expression: str, niceness: int, args: list[str]) -> Tier:
    # At least `niceness`, never lower than this run's own: a run inside a lowered one (the
    # fast tier's own test of this module) is not lowered again, out of the CPU's reach.
    add = max(0, niceness - os.nice(0))
    nice = ["nice", "-n", str(add)] if add else []  # nice execs: the same PID
    proc = subprocess.Popen(
        [*nice, sys.executable, "-m", "pytest", "-m", expression, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,  # a group of its own, ended as one
    )
    return Tier(name, proc, time.monotonic())


def _relay(tier: Tier, lock: threading.Lock) -> None:
    assert tier.proc.stdout is not None
    for line in tier.proc.stdout:
        with lock:
            sys.stdout.write(f"[{tier.name}] {line}")
            sys.stdout.flush()
    tier.proc.wait()
    tier.ended = time.monotonic()


def _end(tiers: list[Tier], sig: int) -> None:
    for tier in tiers:
        if tier.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(tier.proc.pid, sig)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    lock = threading.Lock()
    tiers = [_start(name, expr, niceness, args) for name, expr, niceness in TIERS]
    relays = [threading.Thread(target=_relay, args=(t, lock), daemon=True) for t in tiers]
    for relay in relays:
        relay.start()

    def interrupted(signum: int, _frame: object) -> None:
        _end(tiers, signal.SIGINT)
        deadline = time.monotonic() + GRACE
        for tier in tiers:
            try:
                tier.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _end([tier], signal.SIGKILL)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    for relay in relays:
        relay.join()
    for tier in tiers:
        print(f"{tier.name} tier: exit {tier.proc.returncode} in {tier.ended - tier.started:.0f} s")
    return outcome([t.proc.returncode for t in tiers])


def outcome(codes: list[int]) -> int:
    """The run's exit code from the tiers' (machine first): 0 when every tier passed or
    had no test to run (pytest's 5, as when paths given select one tier only) and at least
    one ran, else the first other non-zero code."""
    if all(code in (0, NO_TESTS) for code in codes):
        return NO_TESTS if all(code == NO_TESTS for code in codes) else 0
    return next(code for code in codes if code not in (0, NO_TESTS))


if __name__ == "__main__":
    sys.exit(main())
