"""`up` wall time for N = 1, 5, 20, 50 nodes against the simulator, and API requests per node.

Real Linode timings (provision 35 s, boot 20 s) and Linode's create limit (10 per 30 s) are
all scaled by SCALE, so the figures keep their proportions and the run stays short. Nodes are
the test suite's fake machines (SSH and Docker answer at once), so the figures measure what
swarmboot itself adds: the floor is the time to send N creates at the limit plus one node's
boot and join, the latter measured as T(1).

Run with `make bench` (or `python -m tests.bench.up_bench`).
"""

from __future__ import annotations

import math
import sys
import time

from swarmboot.cloud import LinodeCloud
from swarmboot.cluster import Context, Settings
from swarmboot.credentials import Target
from swarmboot.publish import local_scripts
from swarmboot.report import RecordingReporter
from swarmboot.sim.admin import SimAdmin
from swarmboot.sim.config import SimConfig, Timings
from swarmboot.sim.engine import Simulator
from swarmboot.sim.server import SimServer
from swarmboot.spec import parse_spec
from tests.fakes import FakeConnector, FakeFleet, FakeSwarm

SCALE = 0.05
LIMIT, WINDOW = 10, 30.0
POLL = 2.0  # seconds between list polls while waiting, before scaling
TOKEN = "bench-token"
# The benchmarking range (RFC 2544): the fake machines live only in this process.
RANGES = {"eu-central": "198.18.0.0/24", "gb-lon": "198.18.1.0/24"}


def spec_for(n: int) -> str:
    """n nodes over two regions: 1 manager below 5 nodes, then 3; the rest split."""
    managers = 1 if n < 5 else 3
    rest = n - managers
    eu_m, lon_m = (managers + 1) // 2, managers // 2
    eu_w, lon_w = (rest + 1) // 2, rest // 2
    pools = {
        "eu-central": [("manager", eu_m), ("worker", eu_w)],
        "gb-lon": [("manager", lon_m), ("worker", lon_w)],
    }
    text = f'[cluster]\nname = "b{n}"\n[network]\nencrypted = false\n'
    for region, wanted in pools.items():
        entries = ", ".join(
            f'{{ role = "{role}", count = {count} }}' for role, count in wanted if count
        )
        if entries:
            text += f"[regions.{region}]\npools = [{entries}]\n"
    return text


def run_once(n: int) -> tuple[float, int, int]:
    fleet = FakeFleet()
    config = SimConfig(
        port=0,
        token="bench-token",
        timings=Timings(scale=SCALE),
        public_ranges=RANGES,
        rate_limits={"linode_create": {"requests": LIMIT, "window": WINDOW * SCALE}},
    )
    server = SimServer(Simulator(config, backend=fleet))
    server.start()
    try:
        spec = parse_spec(spec_for(n))
        ctx = Context(
            spec=spec,
            spec_path=__import__("pathlib").Path("bench.toml"),
            cloud=LinodeCloud(Target(server.url, TOKEN, "bench"), retry_interval=0.05),
            connector=FakeConnector(fleet),
            swarm=FakeSwarm(fleet),
            reporter=RecordingReporter(),
            script=local_scripts()[spec.cluster.stackscript],
            identity_public="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBench bench",
            settings=Settings(
                poll_interval=POLL * SCALE,
                ready_timeout=600,
                create_limit=(LIMIT, WINDOW * SCALE),
                workers=8,
            ),
        )
        from swarmboot.apply import up

        started = time.monotonic()
        result = up(ctx)
        seconds = time.monotonic() - started
        assert len(result.observed.swarm.nodes) == n
        stats = SimAdmin(server.url, TOKEN).stats()
        return seconds, stats["requests"], stats["statuses"].get("429", 0)
    finally:
        server.stop()


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [1, 5, 20, 50]
    one = None
    print(
        f"up against the simulator: real timings x{SCALE}, create limit {LIMIT} per "
        f"{WINDOW * SCALE:g} s, fake nodes"
    )
    print(
        f"{'N':>4} {'T(N) s':>8} {'T(N)/T(1)':>10} {'floor s':>8} {'T/floor':>8} "
        f"{'requests/node':>14} {'429s':>5}"
    )
    for n in sizes:
        seconds, requests, limited = run_once(n)
        if one is None:
            one = seconds if n == 1 else run_once(1)[0]
        floor = (math.ceil(n / LIMIT) - 1) * WINDOW * SCALE + one
        print(
            f"{n:4} {seconds:8.2f} {seconds / one:10.2f} {floor:8.2f} {seconds / floor:8.2f} "
            f"{requests / n:14.1f} {limited:5}"
        )


if __name__ == "__main__":
    main()
