"""What the lab costs on this machine: time to bring nodes up, memory, CPU at rest.

As root: `python -m tests.bench.lab_bench [N ...]` starts `swarmboot sim --lab` (timings
x0.05, as the tests run it) and, for one node, for the example cluster and for each N given
(one region, three managers, the rest workers), runs `swarmboot up` through its command line
and prints: wall time of `up`, memory of the nodes (PSS and RSS summed over each node's
processes), the machine's used memory, and CPU busy while the swarm is at rest. Each cluster
is taken down before the next one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.lab.lab import REPO, LabSim, lab_netns, swarmboot

LAB_CLUSTER = """
[cluster]
name = "{name}"
image = "linode/debian12"
type = "g6-standard-2"
stackscript = "debian12-swarm-node.sh"
docker_source = "debian"
apt_upgrade = false
require_grub_kernel = false

[network]
require_esp = false

[regions.eu-central]
pools = [{pools}]
"""


def _spec(directory: Path, name: str, nodes: int) -> Path:
    managers = 1 if nodes < 3 else 3
    pools = [f'{{ role = "manager", count = {managers} }}']
    if nodes > managers:
        pools.append(f'{{ role = "worker", count = {nodes - managers} }}')
    path = directory / f"{name}.toml"
    path.write_text(LAB_CLUSTER.format(name=name, pools=", ".join(pools)))
    return path


def _used_mib() -> int:
    info = dict(
        (line.split(":")[0], int(line.split()[1]))
        for line in Path("/proc/meminfo").read_text().splitlines()
    )
    return (info["MemTotal"] - info["MemAvailable"]) // 1024


def _node_memory(lab_id: str) -> list[tuple[float, float]]:
    """(PSS, RSS) in MiB of each node: the sum over the processes in its namespace."""
    out = []
    for instance in lab_netns(lab_id):
        pids = subprocess.run(
            ["ip", "netns", "pids", f"swblab-{lab_id}-{instance}"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        pss = rss = 0
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
                    elif line.startswith("Rss:"):
                        rss += int(line.split()[1])
            except OSError:
                continue
        out.append((pss / 1024, rss / 1024))
    return out


def _cpu_busy(seconds: float = 10.0) -> float:
    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields), idle

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 100.0 * (1 - (idle1 - idle0) / max(total1 - total0, 1))


def measure(sim: LabSim, key: Path, spec: Path, nodes: int) -> dict[str, object]:
    before = _used_mib()
    started = time.monotonic()
    done = swarmboot(
        sim, "up", str(spec), "--ssh-key", str(key), "--json", check=False, timeout=3600
    )
    seconds = time.monotonic() - started
    row: dict[str, object] = {"cluster": spec.stem, "nodes": nodes}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        row["failed"] = last[:300]
    else:
        summary = json.loads(done.stdout)
        time.sleep(5)  # let the swarm settle before measuring it at rest
        memory = _node_memory(sim.lab_id)
        busy = _cpu_busy()
        pss = [m[0] for m in memory]
        rss = [m[1] for m in memory]
        row.update(
            ready=sum(1 for r in summary["nodes"] if r["swarm"].endswith("ready")),
            up_s=round(seconds, 1),
            s_per_node=round(seconds / nodes, 2),
            pss_mib_avg=round(sum(pss) / len(pss), 1),
            rss_mib_avg=round(sum(rss) / len(rss), 1),
            used_mib=_used_mib() - before,
            cpu_busy_at_rest_pct=round(busy, 1),
        )
    down = swarmboot(sim, "down", str(spec), "--yes", check=False, timeout=3600)
    if down.returncode != 0:
        sys.exit(f"down {spec} failed: {down.stderr[-2000:]}")
    sim.wait_for_no_nodes(timeout=300)
    return row


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [20]
    key_dir = Path(tempfile.mkdtemp(prefix="swarmboot-bench-"))
    key = key_dir / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    sim = LabSim.start()
    rows = []
    try:
        rows.append(measure(sim, key, _spec(key_dir, "one", 1), 1))
        rows.append(measure(sim, key, REPO / "examples" / "itframe-lab.toml", 9))
        for n in sizes:
            rows.append(measure(sim, key, _spec(key_dir, f"n{n}", n), n))
    finally:
        leftovers = sim.stop()
        subprocess.run(["rm", "-rf", str(key_dir)], check=False)
    print(f"lab on {os.cpu_count()} cores, timings x0.05 (provision 1.75 s, boot 1 s)")
    header = list(next((r for r in rows if "failed" not in r), rows[0]))
    print(" | ".join(header))
    for row in rows:
        if "failed" in row:
            print(f"{row['cluster']} | {row['nodes']} | up failed: {row['failed']}")
        else:
            print(" | ".join(str(row[h]) for h in header))
    if leftovers:
        sys.exit(f"the lab left: {leftovers}")


if __name__ == "__main__":
    main()
