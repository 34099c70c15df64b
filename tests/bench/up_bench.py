"""`up` wall time for N = 1, 5, 20, 50, 200 nodes against the simulator, its API requests and
SSH sessions per node, the same creation by a plain sequential linode-cli loop, and start-up
time.

Real Linode timings are all scaled by SCALE, so the figures keep their proportions and the run
stays short: provisioning 35 s and boot 20 s (the simulator's defaults), the StackScript's
first run SCRIPT_SECONDS, Linode's rate limits as its rate-limit page gives them in 2026 (20
creates per 15 s; 1600 requests a minute, 200 per paginated GET, 60 StackScript lists a
minute; `X-RateLimit-Reset` to the millisecond, as the windows are scaled below a second),
and swarmboot's own poll interval (5 s, its default). Nodes are the test suite's fake
machines: SSH and Docker answer at once, and the StackScript reports done SCRIPT_SECONDS
after the boot.

The floor of `up` is what no tool can beat: the N creates sent as fast as the create limit
lets (the last batch of 20 goes out (ceil(N/20) - 1) windows after the first), then one
node's provisioning, boot and StackScript. The targets: T(N) within 10% of the floor, no
request over a rate limit (no 429), at most 10 API requests per node at N = 1 and 6 from
N = 5, `swarmboot --help` under 0.35 s.

Run with `make bench` (or `python -m tests.bench.up_bench [N ...]`).
"""

from __future__ import annotations

import collections
import json
import math
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from swarmboot.cloud import LinodeCloud
from swarmboot.cluster import Context, Settings
from swarmboot.credentials import Target
from swarmboot.marks import MemberMarks
from swarmboot.publish import local_scripts
from swarmboot.report import RecordingReporter
from swarmboot.sim.admin import SimAdmin
from swarmboot.sim.config import SimConfig, Timings
from swarmboot.sim.engine import Simulator
from swarmboot.sim.ratelimit import Limit, RateLimits
from swarmboot.sim.server import SimServer
from swarmboot.spec import parse_spec
from tests.fakes import FakeConnector, FakeFleet, FakeSwarm

SCALE = 0.05
# A first boot's StackScript on a Linode (apt from Linode's mirror, Docker, GRUB, the probes).
# Not measured on Linode from here: the lab's real run, with the packages already in its image,
# takes 23 s (docs/lab.md); downloading them on a Linode is taken to add the rest.
SCRIPT_SECONDS = float(os.environ.get("BENCH_SCRIPT_SECONDS", "60"))
TIMINGS = Timings(scale=SCALE)
# Linode's published limits (swarmboot.sim.ratelimit), their windows scaled as the timings.
LIMITS = RateLimits(
    **{
        name: Limit(requests=limit.requests, window=limit.window * SCALE)
        for name, limit in RateLimits()
        if isinstance(limit, Limit)
    },
    reset_decimals=3,
)
CREATES = LIMITS.linode_create
TOKEN = "bench-token"
# The benchmarking range (RFC 2544): the fake machines live only in this process.
RANGES = {"eu-central": "198.18.0.0/24", "gb-lon": "198.18.1.0/24"}
BIN = Path(sys.executable).parent
# Calls about one Linode (create, its config, boot, ...): the rest list or set up the cluster.
POLLS = re.compile(r"GET /account/events")
PER_LINODE = re.compile(r"^(POST /linode/instances|\w+ /linode/instances/\{linodeId\}.*)$")


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


def floor(n: int) -> float:
    """N creates at the create limit, then one node's provisioning, boot and StackScript."""
    sending = (math.ceil(n / CREATES.requests) - 1) * CREATES.window
    return sending + TIMINGS.of("provision") + TIMINGS.of("boot") + SCRIPT_SECONDS * SCALE


def _server(fleet: FakeFleet | None = None) -> SimServer:
    config = SimConfig(
        port=0, token=TOKEN, timings=TIMINGS, public_ranges=RANGES, rate_limits=LIMITS
    )
    server = SimServer(Simulator(config, backend=fleet) if fleet else Simulator(config))
    server.start()
    return server


def _counts(admin: SimAdmin) -> tuple[int, int, int, int]:
    """(requests, requests about one Linode, polls, 429 answers) the simulator saw. The polls
    are the reads that only look for a change while waiting: `up` waits on the account's
    events (a Linode's provisioning and boot), never on the Linodes one by one."""
    log = admin.requests()
    routes = collections.Counter(f"{r['method']} {r['route']}" for r in log)
    per_linode = sum(count for route, count in routes.items() if PER_LINODE.match(route))
    polls = sum(count for route, count in routes.items() if POLLS.match(route))
    return len(log), per_linode, polls, sum(1 for r in log if r["status"] == 429)


def run_up(n: int) -> dict:
    # The simulator starts a node's machine as its boot begins; the StackScript runs once the
    # boot is done.
    fleet = FakeFleet(script_seconds=TIMINGS.of("boot") + SCRIPT_SECONDS * SCALE)
    server = _server(fleet)
    try:
        spec = parse_spec(spec_for(n))
        connector = FakeConnector(fleet)
        ctx = Context(
            spec=spec,
            spec_path=Path("bench.toml"),
            cloud=LinodeCloud(Target(server.url, TOKEN, "bench"), retry_interval=0.05),
            connector=connector,
            swarm=FakeSwarm(fleet),
            reporter=RecordingReporter(),
            script=local_scripts()[spec.cluster.stackscript],
            identity_public="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBench bench",
            marks=MemberMarks(b"bench"),
            # swarmboot's defaults, with its waits scaled as the simulator's timings are.
            settings=Settings(
                poll_interval=Settings().poll_interval * SCALE,
                create_limit=(CREATES.requests, CREATES.window),
            ),
        )
        from swarmboot.apply import up

        started = time.monotonic()
        result = up(ctx)
        seconds = time.monotonic() - started
        assert len(result.observed.swarm.nodes) == n, result.observed.swarm.nodes
        requests, per_linode, polls, limited = _counts(SimAdmin(server.url, TOKEN))
        return {
            "seconds": seconds,
            "requests": requests,
            "per_linode": per_linode,
            "polls": polls,
            "limited": limited,
            "ssh": connector.connections,
        }
    finally:
        server.stop()


def run_cli_loop(n: int) -> dict:
    """What a user would otherwise write: one `linode-cli linodes create` after another, with
    the StackScript and booted, then `linode-cli linodes list` until every one runs."""
    server = _server()
    try:
        admin = SimAdmin(server.url, TOKEN)
        env = {
            "PATH": f"{BIN}:/usr/bin:/bin",
            "HOME": "/nonexistent",  # no configuration file: everything comes from here
            "LINODE_CLI_TOKEN": TOKEN,
            "LINODE_CLI_API_HOST": urlsplit(server.url).netloc,
            "LINODE_CLI_API_SCHEME": "http",
            "LINODE_CLI_API_VERSION": "v4",
        }
        script = local_scripts()["debian12-swarm-node.sh"]

        def cli(*args: str) -> list:
            done = subprocess.run(
                [str(BIN / "linode-cli"), "--suppress-warnings", *args, "--json"],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:  # its argv has the password: say what it printed only
                raise SystemExit(f"linode-cli {args[0]} {args[1]}: {done.stderr.strip()}")
            return json.loads(done.stdout)

        (published,) = cli(
            "stackscripts",
            "create",
            "--label",
            "loop-node",
            "--images",
            "linode/debian12",
            "--script",
            script.text,
        )
        # The loop's root password: random, for this run only (a user's loop passes one too).
        password = secrets.token_urlsafe(18)
        started = time.monotonic()
        for i in range(n):
            cli(
                "linodes",
                "create",
                "--label",
                f"loop-{i}",
                "--region",
                "eu-central" if i % 2 == 0 else "gb-lon",
                "--type",
                "g6-standard-2",
                "--image",
                "linode/debian12",
                "--root_pass",
                password,
                "--stackscript_id",
                str(published["id"]),
                "--stackscript_data",
                json.dumps(
                    {"hostname": f"loop-{i}", "zone": "eu-central" if i % 2 == 0 else "gb-lon"}
                ),
                "--tags",
                "loop",
                "--booted",
                "true",
            )
        while any(i["status"] != "running" for i in cli("linodes", "list", "--tags", "loop")):
            time.sleep(Settings().poll_interval * SCALE)
        running = time.monotonic() - started
        requests, _, _, limited = _counts(admin)
        return {"seconds": running, "requests": requests, "limited": limited}
    finally:
        server.stop()


def startup() -> list[float]:
    """Wall time of `swarmboot --help`, five runs, as installed: with its bytecode written."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    times = []
    for _ in range(6):
        started = time.monotonic()
        subprocess.run([str(BIN / "swarmboot"), "--help"], capture_output=True, check=True, env=env)
        times.append(time.monotonic() - started)
    return times[1:]


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [1, 5, 20, 50, 200]
    print(
        f"up against the simulator: real timings x{SCALE} (provisioning 35 s, boot 20 s, "
        f"StackScript {SCRIPT_SECONDS:g} s, poll 5 s), create limit {CREATES.requests} per "
        f"{CREATES.window:g} s ({CREATES.window / SCALE:g} s on Linode), fake nodes"
    )
    print(
        f"{'N':>4} {'T(N) s':>7} {'T/T(1)':>7} {'floor s':>8} {'T/floor':>8} {'429s':>5} "
        f"{'API/node':>9} {'per-Linode':>11} {'polls/node':>11} {'SSH/node':>9} {'loop s':>7} "
        f"{'loop 429s':>10}"
    )
    print(
        "  (API/node: every request over N; per-Linode: those about one Linode; polls: the reads"
        " of events while waiting; loop: linode-cli creates one by one, booted, then lists until"
        " all run: no StackScript wait, no join)"
    )
    one = None
    verdicts = []
    for n in sizes:
        got = run_up(n)
        loop = run_cli_loop(n)
        one = one or (got["seconds"] if n == 1 else run_up(1)["seconds"])
        over = got["seconds"] / floor(n)
        per_node = got["requests"] / n
        print(
            f"{n:4} {got['seconds']:7.2f} {got['seconds'] / one:7.2f} {floor(n):8.2f} "
            f"{over:8.2f} {got['limited']:5} {per_node:9.1f} {got['per_linode'] / n:11.1f} "
            f"{got['polls'] / n:11.1f} "
            f"{got['ssh'] / n:9.1f} {loop['seconds']:7.2f} {loop['limited']:10}",
            flush=True,
        )
        shared = got["requests"] - got["per_linode"]
        verdicts.append(
            (
                n,
                over <= 1.10,
                got["limited"] == 0,
                got["per_linode"] / n,
                got["polls"] / n,
                per_node,
                shared,
            )
        )
    times = startup()
    print(
        f"swarmboot --help: median {statistics.median(times):.3f} s, slowest {max(times):.3f} s "
        f"(5 runs after a first one that compiles the bytecode)"
    )
    print(
        "targets (T <= 1.10 x floor, no 429, polling and all API requests per node <= 10 at "
        "N = 1, <= 6 above):"
    )
    for n, in_floor, no_429, per_linode, polls, per_node, shared in verdicts:
        most = 10 if n == 1 else 6
        marks = [
            f"floor {'met' if in_floor else 'MISSED'}",
            f"rate limits {'kept' if no_429 else 'EXCEEDED'}",
            f"requests per Linode {'met' if per_linode <= most else 'MISSED'}",
            f"polls per node {'met' if polls <= most else 'MISSED'} ({polls:.1f})",
            f"all requests / N {'met' if per_node <= most else 'MISSED'}"
            + ("" if per_node <= most else f" ({shared} shared by all nodes: polls and set-up)"),
        ]
        print(f"  N={n}: " + ", ".join(marks))
    print(f"  start-up (median) {'met' if statistics.median(times) < 0.35 else 'MISSED'}")


if __name__ == "__main__":
    main()
