"""Fault drills in the lab: real swarm nodes behind the simulator, `up`, `node rebuild` and
`down` SIGKILLed at a random moment under seeded API faults, then run again until they end
well, and what they left checked on the nodes themselves.

Each drill (one seed) draws API faults as the records-only drills do (5xx, dropped and slow
answers, a 429 storm, lost creates, failed boots; not Linodes stuck in provisioning, which
only wait out a timeout and are drilled on the records-only simulator), then:

1. `up` of examples/itframe-lab.toml, killed after a random delay within a whole run
   (so in its cloud steps, its waits or its swarm steps), then run again until it exits 0;
2. `node rebuild` of a node drawn from the seed, killed the same way, run again until 0;
3. every node of eu-central killed at once (two of the three managers: the quorum is lost),
   then `recover --yes`, killed the same way, run again until 0;
4. `down --yes`, killed the same way, run again until 0.

After 1, 2 and 3: every Linode of the spec exactly once (no duplicate, none leaked),
running, pinned, no rebuild mark left; on a manager (OpenSSH with the pinned keys, the docker
CLI) exactly one swarm entry per node (none stale), each Ready and Active with its labels,
three managers reachable; after 2 exactly one rebuild call answered, the node on its own
Linode with a new pinned key; after 3 exactly one rebuild call for each lost node, none for
the others. After 4: no Linode and no lab node left. The lab is one `swarmboot sim
--lab` for all drills; at the end the host is checked to be as it was.

As root: `python -m tests.drills.lab_drill [N] [FIRST_SEED]` (`make drills-lab`, N = 5).
Not while another lab or the records-only drills run (they share 198.51.100.0/24).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swarmboot.spec import load_spec
from tests.drills.drill import Tally, faults_for
from tests.lab.lab import EXE, REPO, LabSim, host_snapshot, linodes, on_node, pinned

SPEC = REPO / "examples" / "itframe-lab.toml"
ATTEMPTS = 5
# A whole run's length in the lab (seconds), within which each kill is drawn.
KILL_WITHIN = {"up": 30.0, "node": 40.0, "recover": 60.0, "down": 2.5}
LOST = "eu-central"
REBUILD = ("POST", "/linode/instances/{linodeId}/rebuild", 200)


@dataclass
class LabTally(Tally):
    """The records-only drills' counts, and the swarm entries the lab can see."""

    stale_entries: int = 0
    recovers: int = 0
    seconds: list[float] = field(default_factory=list)

    def line(self) -> str:
        return "lab " + super().line().replace(
            ", rebuilds",
            f", stale swarm entries {self.stale_entries}, regions recovered {self.recovers}, "
            "rebuilds",
        )


def lab_faults(seed: int) -> dict:
    faults = faults_for(seed)
    faults.pop("stuck_rate", None)
    return faults


class LabDrills:
    def __init__(self) -> None:
        self.spec = load_spec(SPEC)
        self.wanted = {n.label: n for n in self.spec.nodes()}
        self.dir = Path(tempfile.mkdtemp(prefix="swarmboot-lab-drills-"))
        self.key = self.dir / "id_ed25519"
        self.key.write_bytes(
            Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.OpenSSH,
                serialization.NoEncryption(),
            )
        )
        self.key.chmod(0o600)
        self.before = host_snapshot()
        self.lab = LabSim.start()
        self.seq = 0

    def close(self) -> list[str]:
        leftovers = self.lab.stop()
        if host_snapshot() != self.before:
            leftovers.append("the host's routes, links, mounts or namespaces changed")
        return leftovers

    # --- one drill ------------------------------------------------------------------------

    def run(self, seed: int, tally: LabTally) -> None:
        rng = random.Random(seed)
        tally.drills += 1
        started = time.monotonic()
        spec = str(SPEC)
        self._converge(seed, rng, ["up", spec], tally)
        problems = self._check_whole(tally)
        label = rng.choice(sorted(self.wanted))
        before = self._quiet(lambda: {i.label: (i.id, _pin(i)) for i in linodes(self.lab)})
        self._requests_since()
        pin = before[label][1]

        def rebuilt() -> bool:
            """The rebuild finished (a new pin, no mark) though its run was killed: an
            operator who looks first does not ask for another."""
            found = self._quiet(lambda: {i.label: i for i in linodes(self.lab)}).get(label)
            return (
                found is not None
                and _pin(found) != pin
                and not any(t.startswith("rebuild:") for t in found.tags)
            )

        self._converge(seed, rng, ["node", "rebuild", spec, label, "--yes"], tally, rebuilt)
        tally.rebuilds += 1
        calls = sum(
            1 for r in self._requests_since() if (r["method"], r["route"], r["status"]) == REBUILD
        )
        tally.rebuild_calls += calls
        if calls != 1:
            problems.append(f"{calls} rebuild calls for {label}")
        after = self._quiet(lambda: {i.label: (i.id, _pin(i)) for i in linodes(self.lab)})
        for name, (linode_id, pin) in before.items():
            now = after.get(name, (None, None))
            if now[0] != linode_id:
                problems.append(f"{name} is Linode {now[0]}, was {linode_id}")
            if (now[1] != pin) != (name == label):
                problems.append(f"{name}: pinned key {pin} -> {now[1]}")
        problems += self._check_whole(tally)
        problems += self._lose_a_region(seed, rng, tally)
        self._converge(seed, rng, ["down", spec, "--yes"], tally)
        self.lab.admin.set_faults()
        left = [i.label for i in linodes(self.lab)]
        tally.left_after_down += len(left)
        try:
            self.lab.wait_for_no_nodes(timeout=120)
        except AssertionError as exc:
            problems.append(str(exc))
        if left:
            problems.append(f"left after down: {left}")
        if problems:
            tally.problems += [f"seed {seed}: {p}" for p in problems]
        else:
            tally.converged += 1
        tally.seconds.append(time.monotonic() - started)

    def _lose_a_region(self, seed: int, rng: random.Random, tally: LabTally) -> list[str]:
        """Every node of LOST killed at once, then `recover` until it ends well: each lost
        node rebuilt once, on its own Linode, the others untouched."""
        problems: list[str] = []
        found = self._quiet(lambda: {i.label: (i.id, _pin(i)) for i in linodes(self.lab)})
        lost = {label for label in found if f"-{LOST}-" in label}
        for label in sorted(lost):
            self.lab.kill_node(found[label][0])
        self._requests_since()
        self._converge(seed, rng, ["recover", str(SPEC), "--yes"], tally)
        tally.recovers += 1
        calls = sum(
            1 for r in self._requests_since() if (r["method"], r["route"], r["status"]) == REBUILD
        )
        tally.rebuild_calls += calls
        if calls != len(lost):
            problems.append(f"recover made {calls} rebuild calls for {len(lost)} lost nodes")
        after = self._quiet(lambda: {i.label: (i.id, _pin(i)) for i in linodes(self.lab)})
        for name, (linode_id, pin) in found.items():
            now = after.get(name, (None, None))
            if now[0] != linode_id:
                problems.append(f"{name} is Linode {now[0]}, was {linode_id}")
            if (now[1] != pin) != (name in lost):
                problems.append(f"{name}: pinned key {pin} -> {now[1]}")
        return problems + self._check_whole(tally)

    def _converge(
        self,
        seed: int,
        rng: random.Random,
        args: list[str],
        tally: LabTally,
        finished: Callable[[], bool] | None = None,
    ) -> None:
        """Under the seed's faults: run, SIGKILL after a random delay, run again until 0.
        A first run that ends well before its kill, or whose work `finished` says is done
        though the kill came before it exited, is not run again (a second `node rebuild`
        would rightly rebuild the node again)."""
        self.lab.admin.set_faults(**lab_faults(seed * 10 + len(args)))
        proc = self._start(args)
        delay = rng.uniform(0.0, KILL_WITHIN[args[0]])
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            tally.killed += 1
            tally.killed_in[" ".join(args[:2]) if args[0] == "node" else args[0]] += 1
            _verbose(f"  {args[0]} killed after {delay:.1f} s")
        _, err = proc.communicate(timeout=60)
        tally.runs += 1
        if proc.returncode != 0 and finished is not None:
            self.lab.admin.set_faults()
            if finished():
                _verbose(f"  {args[0]} was killed once its work was done")
                return
            self.lab.admin.set_faults(**lab_faults(seed * 10 + len(args)))
        if proc.returncode == 0:
            _verbose(f"  {args[0]} -> 0 before its kill: {(err.strip().splitlines() or [''])[-1]}")
            self.lab.admin.set_faults()
            return
        for _ in range(ATTEMPTS):
            proc = self._start(args)
            _, err = proc.communicate(timeout=1200)
            tally.runs += 1
            last = (err.strip().splitlines() or [""])[-1]
            _verbose(f"  {args[0]} -> {proc.returncode}: {last[:160]}")
            if os.environ.get("DRILLS_VERBOSE") == "2":
                print(err, flush=True)
            if proc.returncode == 0:
                self.lab.admin.set_faults()
                return
        self.lab.admin.set_faults()
        tally.problems.append(f"seed {seed}: {' '.join(args[:2])} did not end well: {err[-400:]}")

    def _start(self, args: list[str]) -> subprocess.Popen:
        env = self.lab.client_env()
        env.update(SWARMBOOT_SSH_KEY=str(self.key))
        return subprocess.Popen(
            [EXE, *args, "--api-url", self.lab.url],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def _requests_since(self) -> list[dict]:
        found = self.lab.admin.requests(since=self.seq)
        if found:
            self.seq = found[-1]["seq"]
        return found

    @staticmethod
    def _quiet(fn):
        """The drill's own look (faults are off by now; a node may still be settling)."""
        for _ in range(10):
            try:
                return fn()
            except Exception:  # tried again, then raised
                time.sleep(1)
        return fn()

    # --- what a converged cluster is --------------------------------------------------------

    def _check_whole(self, tally: LabTally) -> list[str]:
        problems: list[str] = []
        found = linodes(self.lab)
        labels = [i.label for i in found]
        duplicates = len(labels) - len(set(labels))
        leaked = sorted(set(labels) - set(self.wanted))
        missing = sorted(set(self.wanted) - set(labels))
        tally.duplicates += duplicates
        tally.leaked += len(leaked)
        if duplicates or leaked or missing:
            problems.append(f"Linodes: {duplicates} twice, leaked {leaked}, missing {missing}")
        for inst in found:
            if inst.status != "running":
                problems.append(f"{inst.label} is {inst.status}")
            if any(t.startswith("rebuild:") for t in inst.tags):
                problems.append(f"{inst.label} still has its rebuild mark")
        entries = self._entries()
        hostnames = [e["Description"]["Hostname"] for e in entries]
        stale = len(hostnames) - len(set(hostnames)) + len(set(hostnames) - set(self.wanted))
        stale += sum(1 for e in entries if e["Status"]["State"] != "ready")
        tally.stale_entries += stale
        if sorted(set(hostnames)) != sorted(self.wanted) or stale:
            problems.append(f"swarm entries {sorted(hostnames)}")
        for entry in entries:
            plan = self.wanted.get(entry["Description"]["Hostname"])
            if plan is None:
                continue
            labels_ = entry["Spec"].get("Labels") or {}
            if (labels_.get("zone"), labels_.get("role")) != (plan.region, plan.role):
                problems.append(f"{plan.label} labels {labels_}")
            if entry["Spec"]["Availability"] != "active":
                problems.append(f"{plan.label} is {entry['Spec']['Availability']}")
        managers = [e for e in entries if e["Spec"]["Role"] == "manager"]
        reachable = [e for e in managers if e["ManagerStatus"]["Reachability"] == "reachable"]
        if len(reachable) != 3:
            problems.append(f"{len(reachable)} reachable managers")
        return problems

    def _entries(self) -> list[dict]:
        """`docker node inspect` of every entry, from the first manager that answers."""
        known = self.dir / "known_hosts"
        done = subprocess.run(
            [EXE, "known-hosts", str(SPEC), "--api-url", self.lab.url],
            env={**self.lab.client_env(), "SWARMBOOT_SSH_KEY": str(self.key)},
            capture_output=True,
            text=True,
            check=False,
        )
        known.write_text(done.stdout)
        pins = pinned(self.lab)
        last: Exception | None = None
        for label in sorted(pins):
            if self.wanted.get(label) is None or self.wanted[label].role != "manager":
                continue
            try:
                return json.loads(
                    on_node(
                        known, self.key, pins[label][0], "docker node inspect $(docker node ls -q)"
                    )
                )
            except (AssertionError, ValueError) as exc:
                last = exc
        raise AssertionError(f"no manager answered: {last}")


def _pin(inst) -> str | None:
    return next((t for t in inst.tags if t.startswith("hk:")), None)


def _verbose(line: str) -> None:
    if os.environ.get("DRILLS_VERBOSE"):
        print(line, flush=True)


def main(argv: list[str]) -> int:
    count = int(argv[0]) if argv else 5
    first = int(argv[1]) if len(argv) > 1 else 1
    drills = LabDrills()
    tally = LabTally()
    try:
        for seed in range(first, first + count):
            known = len(tally.problems)
            try:
                drills.run(seed, tally)
            except Exception as exc:  # one drill's failure is counted, not fatal
                tally.problems.append(f"seed {seed}: {type(exc).__name__}: {exc}")
            for problem in tally.problems[known:]:
                print(f"  {problem}", flush=True)
            print(f"  seed {seed}: {tally.line()}", flush=True)
    finally:
        leftovers = drills.close()
    print(tally.line())
    if tally.seconds:
        print(f"seconds per drill: {', '.join(f'{s:.0f}' for s in tally.seconds)}")
    for leftover in leftovers:
        print(f"  left on the host: {leftover}")
    return 0 if not tally.problems and not leftovers and tally.converged == tally.drills else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
