"""Fault drills on the records-only simulator: `up` and `down` under seeded faults, killed with
SIGKILL at a random moment, then run again until they converge.

Each drill picks, from its seed, a mix of the simulator's faults (5xx answers, dropped
connections, slow answers, a 429 storm, creates carried out but answered by a closed
connection, Linodes stuck in provisioning, failed boots), runs `swarmboot up` through its
command line in a process of its own, SIGKILLs it after a random delay (if it has not ended),
and runs it again, as an operator would, following what it says (a Linode stuck in
provisioning is deleted, as its message advises), until it converges: every Linode of the spec
exactly once, booted, on linode/grub2, with its pinned key, in its Cloud Firewall; no other
Linode of the cluster. Then `node rebuild` of a node drawn from the seed the same way: the
rebuild is carried out exactly once (one POST .../rebuild answered, however often it was
killed), the node keeps its Linode and gets a new pinned key, every other node is untouched.
Then `down --yes`: killed at random, run again, until nothing of the cluster is left. The
records-only simulator has no machines, so `up` and `node rebuild` end with exit 6 after the
cloud steps (each node "is not a machine"): that is converged here; the swarm side is drilled in the
lab (tests/drills/lab_drill.py).

Each drill runs on one interface generation: `legacy` (the example as it is: each Linode
behind its Cloud Firewall as a whole) or `linode` (the example with `cluster.interfaces =
"auto"` on an account whose new Linodes get Linode interfaces: each Linode with a public
interface and one in its region's VPC, each behind its firewall, a VPC per region). With
`linode`, converged also means: each Linode has exactly those two interfaces, both behind
its own firewall and no Linode behind one as a whole, its VPC interface in its region's VPC,
one VPC per region; a rebuilt node keeps its interfaces and VPC address; and no VPC is left
after `down`.

`python -m tests.drills.drill [N] [FIRST_SEED] [GENERATION...]` runs N drills (default 200)
on each generation named (default both) and prints the counts per generation;
tests/drills/test_drills.py runs a few in the test suite.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from linode_api4 import LinodeClient

from swarmboot.placement import wanted_groups
from swarmboot.sim.admin import SimAdmin
from swarmboot.sim.config import SimConfig, Timings
from swarmboot.sim.engine import Simulator
from swarmboot.sim.server import SimServer
from swarmboot.spec import load_spec

REPO = Path(__file__).resolve().parent.parent.parent
EXE = str(Path(sys.executable).parent / "swarmboot")
SPEC = REPO / "examples" / "itframe.toml"
TOKEN = "drill-token"
GENERATIONS = ("legacy", "linode")
# How many times an operator runs a command again before the drill counts it as stuck.
ATTEMPTS = 6


@dataclass
class Tally:
    drills: int = 0
    killed: int = 0
    runs: int = 0
    converged: int = 0
    duplicates: int = 0
    leaked: int = 0
    left_after_down: int = 0
    rebuilds: int = 0
    rebuild_calls: int = 0
    problems: list[str] = field(default_factory=list)
    faults: collections.Counter = field(default_factory=collections.Counter)
    killed_in: collections.Counter = field(default_factory=collections.Counter)

    def line(self) -> str:
        where = ", ".join(f"{k} {v}" for k, v in sorted(self.killed_in.items()))
        return (
            f"drills {self.drills}, swarmboot killed {self.killed} times ({where}), "
            f"{self.runs} runs, "
            f"converged {self.converged}, duplicate Linodes {self.duplicates}, leaked Linodes "
            f"{self.leaked}, rebuilds {self.rebuilds} with {self.rebuild_calls} rebuild calls, "
            f"left after down {self.left_after_down}"
        )


def faults_for(seed: int) -> dict:
    rng = random.Random(seed)
    faults: dict = {"seed": seed}
    if rng.random() < 0.6:
        faults.update(error_rate=rng.choice([0.03, 0.08, 0.15]), error_statuses=[500, 502, 503])
    if rng.random() < 0.4:
        faults["drop_rate"] = rng.choice([0.02, 0.05])
    if rng.random() < 0.3:
        faults.update(slow_rate=0.1, slow_seconds=rng.choice([0.5, 1.5]))
    if rng.random() < 0.4:
        faults.update(
            storm_after=rng.uniform(0, 2),
            storm_seconds=rng.uniform(1, 3),
            storm_rate=0.7,
            storm_retry_after=1,
        )
    if rng.random() < 0.5:
        faults["lost_create_rate"] = rng.choice([0.2, 0.5])
    if rng.random() < 0.25:
        faults["stuck_rate"] = 0.15
    if rng.random() < 0.25:
        faults["boot_failure_rate"] = 0.15
    return faults


class Drills:
    def __init__(self, spec: Path = SPEC, interfaces: str = "legacy") -> None:
        config = SimConfig(
            port=0,
            token=TOKEN,
            timings=Timings(scale=0.002),
            rate_limits={"linode_create": {"requests": 10, "window": 1.0}},
        )
        # No spec checker: the faults answer what the spec does not list (a 503 anywhere).
        self.server = SimServer(Simulator(config))
        self.server.start()
        self.admin = SimAdmin(self.server.url, TOKEN)
        self.client = LinodeClient(TOKEN, base_url=self.server.url, retry_rate_limit_interval=0.1)
        self.interfaces = interfaces
        self.key = self._key()
        if interfaces == "linode":
            # "auto" on an account whose new Linodes get Linode interfaces.
            self.admin.set_interfaces_for_new_linodes("linode_default_but_legacy_config_allowed")
            text = spec.read_text().replace(
                'name = "itframe"\n', 'name = "itframe"\ninterfaces = "auto"\n', 1
            )
            spec = self.key.parent / spec.name
            spec.write_text(text)
        self.spec_path = spec
        self.spec = load_spec(spec)
        self.faults: dict = {}
        self._seq = 0

    def _key(self) -> Path:
        import tempfile

        directory = Path(tempfile.mkdtemp(prefix="swarmboot-drills-"))
        key = directory / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        return key

    def close(self) -> None:
        self.server.stop()

    def _start(self, *args: str) -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items() if k not in ("LINODE_TOKEN", "LINODE_CLI_TOKEN")}
        # The simulator's timings are x0.002: poll it often.
        env.update(
            SWARMBOOT_SIM_TOKEN=TOKEN,
            SWARMBOOT_SSH_KEY=str(self.key),
            SWARMBOOT_POLL_INTERVAL="0.1",
        )
        return subprocess.Popen(
            [EXE, *args, "--api-url", self.server.url],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def _instances(self) -> list:
        prefix = f"{self.spec.cluster.name}-"
        return [i for i in self.client.linode.instances() if i.label.startswith(prefix)]

    def run(self, seed: int, tally: Tally) -> None:
        rng = random.Random(seed)
        self.faults = faults = faults_for(seed)
        tally.faults.update(k for k in faults if k not in ("seed", "error_statuses"))
        self.admin.set_faults(**faults)
        tally.drills += 1
        self._converge(rng, ["up", str(self.spec_path), "--timeout", "10"], tally, self._up_done)
        self._check_up(seed, tally)
        self._rebuild(rng, seed, tally)
        self._converge(rng, ["down", str(self.spec_path), "--yes"], tally, self._down_done)
        self.admin.set_faults()  # the drill is over: look without faults
        left = [i.label for i in self._instances()]
        left += [g["label"] for g in self._placement_groups()]
        left += [v["label"] for v in self._vpcs()]
        if left:
            tally.left_after_down += len(left)
            tally.problems.append(f"seed {seed}: left after down: {left}")
        self.admin.set_faults()

    def _rebuild(self, rng: random.Random, seed: int, tally: Tally) -> None:
        """`node rebuild` of one node, killed at random and run again until done."""
        label = rng.choice(sorted(n.label for n in self.spec.nodes()))
        before: dict = {}
        self._quiet(lambda: before.update(self._pins()))
        self._requests_since()
        self._converge(
            rng,
            ["node", "rebuild", str(self.spec_path), label, "--yes", "--timeout", "10"],
            tally,
            self._up_done,
        )
        tally.rebuilds += 1
        calls = sum(
            1
            for r in self._requests_since()
            if (r["method"], r["route"], r["status"])
            == ("POST", "/linode/instances/{linodeId}/rebuild", 200)
        )
        tally.rebuild_calls += calls
        after: dict = {}
        self._quiet(lambda: after.update(self._pins()))
        problems = [] if calls == 1 else [f"{calls} rebuild calls for {label}"]
        if set(after) != set(before):
            problems.append(f"labels before {sorted(before)}, after {sorted(after)}")
        for name, (linode_id, pin, interfaces) in before.items():
            now = after.get(name)
            if now is None:
                continue
            if now[0] != linode_id:
                problems.append(f"{name} is Linode {now[0]}, was {linode_id}")
            if (now[1] != pin) != (name == label):
                problems.append(f"{name}: pinned key {pin} -> {now[1]}")
            if now[2] != interfaces:  # a rebuild keeps a Linode's interfaces
                problems.append(f"{name}: interfaces {interfaces} -> {now[2]}")
        found: dict = {}
        self._quiet(lambda: found.update(self._look()))
        problems += found["problems"]
        if problems:
            tally.problems.append(f"seed {seed}: rebuild of {label}: {'; '.join(problems)}")

    def _pins(self) -> dict:
        """label -> (Linode id, pinned host key, its Linode interfaces) of the cluster's
        Linodes (the interfaces with their ids, VPC addresses and firewalls; () for legacy)."""
        return {
            i.label: (
                i.id,
                next((t for t in i.tags if t.startswith("hk:")), None),
                self._interfaces(i.id) if self.interfaces == "linode" else (),
            )
            for i in self._instances()
        }

    def _interfaces(self, linode_id: int) -> tuple:
        found = self._get(f"/linode/instances/{linode_id}/interfaces")["interfaces"]
        return tuple(
            (
                f["id"],
                "vpc" if f["vpc"] else "public" if f["public"] else "vlan",
                f["vpc"]["ipv4"]["addresses"][0]["address"] if f["vpc"] else None,
                f["vpc"]["subnet_id"] if f["vpc"] else None,
                f["firewall_id"],
            )
            for f in found
        )

    def _requests_since(self) -> list[dict]:
        """The simulator's request log since the last call."""
        found = self.admin.requests(since=self._seq)
        if found:
            self._seq = found[-1]["seq"]
        return found

    def _converge(self, rng: random.Random, args: list[str], tally: Tally, done) -> None:
        """Run, SIGKILL after a random delay, then run again until `done` says so (a first
        run that ended well before its kill is not run again)."""
        proc = self._start(*args)
        try:
            proc.wait(timeout=rng.uniform(0.0, 3.0))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            tally.killed += 1
            tally.killed_in[" ".join(args[:2]) if args[0] == "node" else args[0]] += 1
        _, err = proc.communicate(timeout=60)
        tally.runs += 1
        if proc.returncode is not None and proc.returncode >= 0 and done(proc.returncode, err):
            return  # it ended well before its kill
        for _ in range(ATTEMPTS):
            started = time.monotonic()
            proc = self._start(*args)
            _, err = proc.communicate(timeout=300)
            tally.runs += 1
            if os.environ.get("DRILLS_VERBOSE"):
                last = err.strip().splitlines()[-1:] or [""]
                print(
                    f"    {args[0]} -> {proc.returncode} in {time.monotonic() - started:.1f} s: "
                    f"{last[0][:150]}",
                    flush=True,
                )
            if done(proc.returncode, err):
                return
            # What an operator does with the advice printed (the drill's own calls are not
            # what is being drilled: the faults pause for them).
            if "did not finish provisioning" in err:
                self._quiet(self._delete_provisioning)
        tally.problems.append(f"{' '.join(args[:2])} did not converge: {err.strip()[-300:]}")

    def _quiet(self, fn) -> None:
        """The drill's own calls meet the same faults: tried again until they get through
        (setting the faults again would reset what they count, e.g. stuck creates)."""
        import requests
        from linode_api4 import ApiError

        for _ in range(50):
            try:
                fn()
                return
            except (ApiError, requests.RequestException):
                time.sleep(0.2)
        fn()

    def _get(self, path: str) -> dict:
        """One GET of the drill's own, tried again through the faults until it gets through
        (a look of many requests would rarely get through whole)."""
        found: dict = {}
        self._quiet(lambda: found.update(self.client.get(path)))
        return found

    def _delete_provisioning(self) -> None:
        for inst in self._instances():
            if inst.status == "provisioning":
                inst.delete()

    @staticmethod
    def _up_done(code: int, err: str) -> bool:
        # No machines behind the records-only simulator: every node booted and named as not
        # on this machine is as far as `up` goes here. A wait that timed out, a boot that
        # failed or a Linode stuck in provisioning is run again.
        last = err.strip().splitlines()[-1] if err.strip() else ""
        return (
            code == 6
            and "node(s) not joined" in last
            and all(
                "is not a machine" in part
                for part in last.split(": ", 1)[1].split("; ")
                if part.startswith("itframe-")
            )
            and "boot failed" not in last
        )

    @staticmethod
    def _down_done(code: int, err: str) -> bool:
        return code == 0

    def _check_up(self, seed: int, tally: Tally) -> None:
        found: dict = {}
        self._quiet(lambda: found.update(self._look()))
        labels, problems = found["labels"], found["problems"]
        wanted = {n.label for n in self.spec.nodes()}
        duplicates = len(labels) - len(set(labels))
        leaked = sorted(set(labels) - wanted)
        tally.duplicates += duplicates
        tally.leaked += len(leaked)
        if set(labels) != wanted:
            problems.append(f"labels {sorted(set(labels) ^ wanted)}")
        if problems or duplicates or leaked:
            tally.problems.append(f"seed {seed}: {'; '.join(problems)}")
        else:
            tally.converged += 1

    def _look(self) -> dict:
        """The cluster's Linodes as the API has them, and what is wrong with each."""
        found = self._instances()
        problems = []
        for inst in found:
            if inst.status != "running":
                problems.append(f"{inst.label} {inst.status}")
            if not any(t.startswith("hk:") for t in inst.tags):
                problems.append(f"{inst.label} has no pinned key")
            kernel = self._get(f"/linode/instances/{inst.id}/configs")["data"][0]["kernel"]
            if kernel != "linode/grub2":
                problems.append(f"{inst.label} kernel {kernel}")
        firewalls = [
            f
            for f in self._get("/networking/firewalls?page_size=500")["data"]
            if f["label"].startswith("itframe-")
        ]
        if self.interfaces == "linode":
            problems += self._look_at_interfaces(found, firewalls)
        else:
            attached = {e["id"] for f in firewalls for e in f["entities"]}
            if attached != {i.id for i in found}:
                problems.append("Cloud Firewall devices differ from the Linodes")
        # Each region's managers (two or more) in their placement group, and nothing else.
        groups = {g["label"]: g for g in self._placement_groups()}
        for region, label in wanted_groups(self.spec).items():
            managers = {
                i.id for i in found if i.region.id == region and i.label.split("-")[-2] == "manager"
            }
            held = {m["linode_id"] for m in groups.get(label, {}).get("members", [])}
            if held != managers:
                problems.append(f"placement group {label} holds {sorted(held)}")
        return {"labels": [i.label for i in found], "problems": problems}

    def _look_at_interfaces(self, found: list, firewalls: list) -> list[str]:
        """Each Linode with a public and a VPC interface, both behind its own firewall (and
        none behind one as a whole), the VPC one in its region's VPC; one VPC per region."""
        problems = []
        firewall_of = {f["label"]: f["id"] for f in firewalls}
        whole = [e["id"] for f in firewalls for e in f["entities"] if e["type"] == "linode"]
        if whole:
            problems.append(f"Linodes {whole} behind a firewall as a whole")
        vpcs = {v["region"]: v for v in self._vpcs()}
        if sorted(vpcs) != sorted(self.spec.regions):
            problems.append(f"VPCs in {sorted(vpcs)}")
        for inst in found:
            if inst.interface_generation != "linode":
                problems.append(f"{inst.label} has {inst.interface_generation} interfaces")
                continue
            wanted = firewall_of.get("itframe-lb" if "-lb-" in inst.label else "itframe-nodes")
            interfaces = self._interfaces(inst.id)
            if sorted(kind for _, kind, *_ in interfaces) != ["public", "vpc"]:
                problems.append(f"{inst.label} has interfaces {interfaces}")
            if {f[4] for f in interfaces} != {wanted}:
                problems.append(
                    f"{inst.label}'s interfaces are behind {[f[4] for f in interfaces]}"
                )
            subnets = {s["id"] for s in vpcs.get(inst.region.id, {}).get("subnets", ())}
            if not any(f[3] in subnets for f in interfaces if f[1] == "vpc"):
                problems.append(f"{inst.label} is not in its region's VPC")
        return problems

    def _vpcs(self) -> list[dict]:
        prefix = f"{self.spec.cluster.name}-"
        found = self._get("/vpcs?page_size=500")["data"]
        return [v for v in found if v["label"].startswith(prefix)]

    def _placement_groups(self) -> list[dict]:
        prefix = f"{self.spec.cluster.name}-"
        found = self._get("/placement/groups?page_size=500")["data"]
        return [g for g in found if g["label"].startswith(prefix)]


def main(argv: list[str]) -> int:
    count = int(argv[0]) if argv else 200
    first = int(argv[1]) if len(argv) > 1 else 1
    generations = tuple(argv[2:]) or GENERATIONS
    unknown = [g for g in generations if g not in GENERATIONS]
    if unknown:
        print(f"unknown interface generations {unknown}: give {' or '.join(GENERATIONS)}")
        return 2
    failed = False
    for generation in generations:
        failed |= not _drill(generation, count, first)
    return 1 if failed else 0


def _drill(generation: str, count: int, first: int) -> bool:
    """N drills on one interface generation; whether they all converged without a problem."""
    print(f"interfaces {generation}:", flush=True)
    drills = Drills(interfaces=generation)
    tally = Tally()
    started = time.monotonic()
    try:
        for seed in range(first, first + count):
            known = len(tally.problems)
            drills.run(seed, tally)
            for problem in tally.problems[known:]:
                print(f"  seed {seed}: {problem}", flush=True)
            if seed % 10 == 0 or os.environ.get("DRILLS_VERBOSE"):
                print(f"  {tally.line()} ({time.monotonic() - started:.0f} s)", flush=True)
    finally:
        drills.close()
    print(f"interfaces {generation}: {tally.line()} ({time.monotonic() - started:.0f} s)")
    print("faults drawn: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.faults.items())))
    for problem in tally.problems[:20]:
        print("  problem: " + problem)
    return not tally.problems and tally.converged == tally.drills


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
