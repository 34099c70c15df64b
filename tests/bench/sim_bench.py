"""How fast the simulator answers on one core, and its memory with 500 instances.

Run with `make bench` (or `python -m tests.bench.sim_bench`). The simulator runs as users run
it (`swarmboot sim`, records backend, no rate limits, no delays) pinned to core 0; the load
comes from threads with keep-alive connections pinned to the other cores. Prints a table.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

EXE = str(Path(sys.executable).parent / "swarmboot")
TOKEN = "bench-token"
INSTANCES = 500
CLIENTS = 8
SECONDS = 4.0
# The benchmarking range (RFC 2544): the records backend never sends anything to it.
RANGES = ("eu-central=198.18.0.0/23", "gb-lon=198.18.2.0/23")


def _start() -> tuple[subprocess.Popen, str, int]:
    env = {**os.environ, "SWARMBOOT_SIM_TOKEN": TOKEN}
    cmd = [EXE, "-q", "sim", "--port", "0", "--time-scale", "0", "--no-rate-limits"]
    for value in RANGES:
        cmd += ["--public-range", value]
    if os.cpu_count() and os.cpu_count() > 1:
        cmd = ["taskset", "-c", "0", *cmd]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    host, port = url.split("//")[1].split("/")[0].split(":")
    return proc, host, int(port)


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Conn:
    def __init__(self, host: str, port: int) -> None:
        self.http = http.client.HTTPConnection(host, port, timeout=30)

    def call(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        self.http.request(
            method,
            "/v4" + path,
            body=data,
            headers={
                "Authorization": f"Bearer {TOKEN}",
                "Content-Type": "application/json",
                **(headers or {}),
            },
        )
        response = self.http.getresponse()
        return response.status, response.read()


def _rate(host: str, port: int, make: Callable[[Conn, int], None]) -> float:
    """Requests per second from CLIENTS threads for SECONDS."""
    counts = [0] * CLIENTS
    stop = time.monotonic() + SECONDS

    def worker(n: int) -> None:
        if os.cpu_count() and os.cpu_count() > 1:
            os.sched_setaffinity(0, set(range(1, os.cpu_count())))
        conn = Conn(host, port)
        i = 0
        while time.monotonic() < stop:
            make(conn, n * 1_000_000 + i)
            i += 1
        counts[n] = i

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(CLIENTS)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - started)


def main() -> None:
    proc, host, port = _start()
    try:
        setup = Conn(host, port)
        baseline = _rss_mib(proc.pid)
        started = time.monotonic()
        ids = []
        for n in range(INSTANCES):
            status, body = setup.call(
                "POST",
                "/linode/instances",
                {
                    "type": "g6-nanode-1",
                    "region": "eu-central" if n % 2 else "gb-lon",
                    "label": f"bench-{n:03d}",
                    "tags": ["swarmboot:bench"],
                    "booted": False,
                },
            )
            assert status == 200, body
            ids.append(json.loads(body)["id"])
        create_rate = INSTANCES / (time.monotonic() - started)
        time.sleep(0.3)
        loaded = _rss_mib(proc.pid)

        def get_one(conn: Conn, i: int) -> None:
            assert conn.call("GET", f"/linode/instances/{ids[i % len(ids)]}")[0] == 200

        def list_tagged(conn: Conn, i: int) -> None:
            status, _ = conn.call(
                "GET",
                "/linode/instances?page_size=500",
                headers={"X-Filter": '{"tags": {"+contains": "swarmboot:bench"}}'},
            )
            assert status == 200

        def list_page(conn: Conn, i: int) -> None:
            assert conn.call("GET", "/linode/instances?page_size=25&page=3")[0] == 200

        def events(conn: Conn, i: int) -> None:
            status, _ = conn.call(
                "GET",
                "/account/events?page_size=25",
                headers={"X-Filter": '{"action": "linode_create"}'},
            )
            assert status == 200

        rows = [
            ("GET one instance", _rate(host, port, get_one)),
            ("GET 25 instances (page 3)", _rate(host, port, list_page)),
            ("GET 500 instances, tag filter", _rate(host, port, list_tagged)),
            ("GET events, action filter", _rate(host, port, events)),
        ]
        # What a 50-node `up` asks of it at its busiest: its creates are capped by Linode's
        # limit (20 per 15 s), its waits ask for the events every 0.5 s at most, the rest
        # is a few calls per node. Four requests a second is a generous peak.
        need = 4.0
        print(f"swarmboot sim, one core, {CLIENTS} keep-alive clients, {SECONDS:.0f} s each")
        print(f"{'what':34} {'requests/s':>11} {'x a 50-node peak':>17}")
        print(
            f"{'create (sequential, one client)':34} {create_rate:11.0f} "
            f"{create_rate / need:16.0f}x"
        )
        for name, rate in rows:
            print(f"{name:34} {rate:11.0f} {rate / need:16.0f}x")
        print(
            f"memory: {baseline:.0f} MiB at start, {loaded:.0f} MiB with {INSTANCES} "
            f"instances ({(loaded - baseline) * 1024 / INSTANCES:.1f} KiB each)"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=15)


if __name__ == "__main__":
    main()
