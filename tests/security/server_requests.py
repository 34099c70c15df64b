"""Hostile requests to the simulator as a server (the cases are server_cases.py): `swarmboot
-v sim` in its own process (its stderr kept, to find tracebacks), spoken to over raw sockets.

Refused properly: the status the real API gives (401, 400, 404, 405, 411, 413, ...) with its
reason where it has one, an answer rather than a dropped connection, no state change (the
account read after each request that is not a GET), no traceback on the simulator's stderr,
and for a body announced past the cap and streamed, no growth of the simulator's peak RSS (it
is refused before it is read). Idle connections are closed after the server's idle timeout
(60 s by default; the sweep serves with IDLE_TIMEOUT, `--idle-timeout`, so as not to wait a
minute for it), and a crowd of them does not stop it answering.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .common import NOT_REFUSED, REFUSED, Outcome
from .server_cases import (
    AUTO,
    CASES,
    CROWD,
    GOOD,
    IDLE,
    MIB,
    NONE,
    TOKEN,
    TOKEN_B,
    WRONG,
    Idle,
    Req,
)

CATEGORY = "server"
TITLE = "requests to the simulator (swarmboot sim)"
EXE = str(Path(sys.executable).parent / "swarmboot")
IDLE_TIMEOUT = 5.0  # the simulator's --idle-timeout here
RSS_GROWTH_LIMIT = 16 * MIB  # a body refused unread must not grow the simulator by more


# --- talking to it ---------------------------------------------------------------------------


@dataclass
class Reply:
    status: int | None  # None: no answer
    reason: str | None
    text: str


def _read_reply(conn: socket.socket, method: str) -> Reply:
    data = b""
    while True:
        while b"\r\n\r\n" not in data and not data.startswith(b"<!DOCTYPE HTML>"):
            try:
                chunk = conn.recv(65536)
            except (ConnectionError, TimeoutError) as exc:
                return Reply(None, None, f"no answer ({exc!r}) after {data[:200]!r}")
            if not chunk:
                return Reply(None, None, f"connection closed after {data[:200]!r}")
            data += chunk
        if data.startswith(b"<!DOCTYPE HTML>"):  # http.server's answer to an HTTP/0.9 line
            while chunk := conn.recv(65536):
                data += chunk
            code = re.search(rb"Error code: (\d+)", data)
            text = "(HTTP/0.9: no status line) " + data[-200:].decode("latin-1")
            return Reply(int(code.group(1)) if code else None, None, text)
        head, _, rest = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status != 100:
            break
        data = rest  # an interim answer: the real one follows
    fields = {}
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        fields[key.strip().lower()] = value.strip()
    length = 0 if method == "HEAD" else int(fields.get(b"content-length", b"0"))
    while len(rest) < length:
        try:
            chunk = conn.recv(65536)
        except (ConnectionError, TimeoutError):
            break
        if not chunk:
            break
        rest += chunk
    body = rest[:length]
    reason = None
    with contextlib.suppress(ValueError, KeyError, IndexError, TypeError):
        reason = json.loads(body)["errors"][0]["reason"]
    return Reply(status, reason, (head.split(b"\r\n")[0] + b" " + body[:200]).decode("latin-1"))


class _Ids(dict):
    """The ids of the objects made first; 1 for a kind the sweep made none of."""

    def __missing__(self, key: str) -> str:
        return "1"


def _request_bytes(case: Req, ids: dict[str, str]) -> bytes:
    if case.raw is not None:
        return case.raw
    lines = [f"{case.method} {case.path.format_map(_Ids(ids))} HTTP/1.1".encode(), b"Host: sim"]
    auth = {GOOD: b"Bearer " + TOKEN_B, WRONG: b"Bearer wrong-token", NONE: None}.get(
        case.auth, case.auth
    )
    if auth is not None:
        lines.append(b"Authorization: " + auth)  # type: ignore[operator]
    if case.length == AUTO:
        lines.append(b"Content-Length: %d" % len(case.body))
    elif case.length is not None:
        lines.append(b"Content-Length: " + case.length)
    lines += list(case.headers)
    return b"\r\n".join(lines) + b"\r\n\r\n" + case.body


class SimProcess:
    """`swarmboot -v sim` on a free port, its stderr in a file."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="swarmboot-sweep-sim-"))
        self.stderr = self.dir / "stderr"
        env = {k: v for k, v in os.environ.items() if not k.endswith("_TOKEN")}
        env["SWARMBOOT_SIM_TOKEN"] = TOKEN
        with self.stderr.open("wb") as err:
            self.proc = subprocess.Popen(
                [
                    EXE,
                    "-v",
                    "sim",
                    "--port",
                    "0",
                    "--time-scale",
                    "0.001",
                    "--no-rate-limits",
                    "--idle-timeout",
                    str(IDLE_TIMEOUT),
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        self.url = self.proc.stdout.readline().decode().strip()  # type: ignore[union-attr]
        if not self.url:
            raise RuntimeError(f"the simulator did not start: {self.stderr.read_text()}")
        host, port = self.url.split("//")[1].split("/")[0].split(":")
        self.address = (host, int(port))

    def peak_rss(self) -> int:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]

    def tracebacks(self) -> str:
        """Its stderr from its first traceback on ("" while it has none)."""
        text = self.stderr.read_text(errors="replace")
        first = text.find("Traceback")
        if first < 0:
            return ""
        return text[text.rfind("\n", 0, text.rfind("\n", 0, first)) + 1 :]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def call(self, method: str, path: str, body: object = None, filter: str | None = None):
        data = json.dumps(body).encode() if body is not None else b""
        case = Req("", "", method, path, frozenset(), body=data)
        if filter:
            case = Req(
                "", "", method, path, frozenset(), headers=(b"X-Filter: " + filter.encode(),)
            )
        with socket.create_connection(self.address, timeout=10) as conn:
            conn.sendall(_request_bytes(case, {}))
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
                head, _, rest = data.partition(b"\r\n\r\n")
                match = re.search(rb"Content-Length: (\d+)", head)
                if match and len(rest) >= int(match.group(1)):
                    return json.loads(rest[: int(match.group(1))])
        raise RuntimeError(f"{method} {path}: {data[:300]!r}")


def _send(sim: SimProcess, case: Req, ids: dict[str, str]) -> tuple[Reply, int]:
    """The reply, and how much the simulator's peak RSS grew meanwhile."""
    before = sim.peak_rss()
    with socket.create_connection(sim.address, timeout=10) as conn:
        data = _request_bytes(case, ids)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.sendall(data)
        if case.stream:
            ready, _, _ = select.select([conn], [], [], 2.0)
            reply = _read_reply(conn, case.method) if ready else None
            chunk, sent = b"\0" * MIB, 0
            try:
                while sent < case.stream:
                    conn.sendall(chunk)
                    sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                pass
            reply = reply or _read_reply(conn, case.method)
            reply.text += f" (streamed {sent // MIB} MiB before the server hung up)"
        else:
            reply = _read_reply(conn, case.method)
    return reply, sim.peak_rss() - before


def _setup(sim: SimProcess) -> dict[str, str]:
    """An instance (with its config and disk), a StackScript, a firewall with the instance
    behind it: real ids for the routes, and state that a request let through would change."""
    inst = sim.call(
        "POST",
        "/v4/linode/instances",
        {
            "region": "eu-central",
            "type": "g6-nanode-1",
            "label": "sweep-1",
            "image": "linode/debian12",
            "root_pass": "correct-Horse-battery-42",
            "booted": False,
            "tags": ["sweep"],
        },
    )
    script = sim.call(
        "POST",
        "/v4/linode/stackscripts",
        {"label": "sweep-script", "script": "#!/bin/bash\n", "images": ["linode/debian12"]},
    )
    rules = {"inbound": [], "inbound_policy": "DROP", "outbound_policy": "ACCEPT"}
    fw = sim.call("POST", "/v4/networking/firewalls", {"label": "sweep-fw", "rules": rules})
    device = sim.call(
        "POST", f"/v4/networking/firewalls/{fw['id']}/devices", {"id": inst["id"], "type": "linode"}
    )
    group = sim.call(
        "POST",
        "/v4/placement/groups",
        {
            "label": "sweep-pg",
            "region": "eu-central",
            "placement_group_type": "anti_affinity:local",
            "placement_group_policy": "flexible",
        },
    )
    deadline = time.monotonic() + 10
    while sim.call("GET", f"/v4/linode/instances/{inst['id']}")["status"] != "offline":
        if time.monotonic() > deadline:
            raise RuntimeError("the sweep's instance did not settle")
        time.sleep(0.05)
    iid = inst["id"]
    return {
        "linodeId": str(iid),
        "configId": str(sim.call("GET", f"/v4/linode/instances/{iid}/configs")["data"][0]["id"]),
        "diskId": str(sim.call("GET", f"/v4/linode/instances/{iid}/disks")["data"][0]["id"]),
        "stackscriptId": str(script["id"]),
        "firewallId": str(fw["id"]),
        "deviceId": str(device["id"]),
        "eventId": str(sim.call("GET", "/v4/account/events")["data"][0]["id"]),
        "groupId": str(group.get("id", 1)),  # where the simulator serves placement groups
        "regionId": "eu-central",
        "typeId": "g6-nanode-1",
        "kernelId": "linode%2Fgrub2",
        "imageId": "linode%2Fdebian12",
    }


def _snapshot(sim: SimProcess) -> str:
    firewalls = sim.call("GET", "/v4/networking/firewalls")["data"]
    return json.dumps(
        [
            sim.call("GET", "/v4/linode/instances")["data"],
            firewalls,
            [sim.call("GET", f"/v4/networking/firewalls/{f['id']}/devices") for f in firewalls],
            sim.call("GET", "/v4/linode/stackscripts", filter='{"mine": true}')["data"],
            sim.call("GET", "/_sim/instances"),
            sim.call("GET", "/v4/placement/groups"),
        ],
        sort_keys=True,
    )


def _traces(text: str) -> str:
    """Of a stderr with tracebacks, what said where and the exception lines."""
    keep = [
        ln
        for ln in text.splitlines()
        if ln.startswith(("swarmboot.sim: ", "Exception occurred"))
        or re.match(r"^[A-Za-z.]*(Error|Exception|Exit)\b", ln)
    ]
    return f"{text.count('Traceback')} traceback(s): " + " | ".join(keep)


def _judge(case: Req, reply: Reply, grew: int, changed: bool, traceback: str) -> tuple[str, str]:
    what = f"answer: {reply.text}"
    if traceback:
        return NOT_REFUSED, f"{what}\nsimulator stderr: {_traces(traceback)}"
    if reply.status is None:
        return NOT_REFUSED, f"dropped: {reply.text}"
    if changed:
        return NOT_REFUSED, f"{what}\n(the account changed)"
    if reply.status not in case.expect:
        return NOT_REFUSED, f"{what}\n(expected {'/'.join(map(str, sorted(case.expect)))})"
    if case.reason and not (reply.reason or "").startswith(case.reason):
        return NOT_REFUSED, f"{what}\n(expected the reason {case.reason!r})"
    if case.stream and grew > RSS_GROWTH_LIMIT:
        return NOT_REFUSED, f"{what}\n(peak RSS grew {grew // MIB} MiB: the body was read)"
    return REFUSED, ""


def _idle(sim: SimProcess, case: Idle, results: dict[str, tuple[str, bytes, float, int]]) -> None:
    """Send the case's bytes, then wait: what came back, and when the server hung up."""
    limit = IDLE_TIMEOUT + 15
    with socket.create_connection(sim.address, timeout=limit) as conn:
        port = conn.getsockname()[1]
        conn.sendall(case.send)
        started, data, end = time.monotonic(), b"", "closed"
        try:
            while chunk := conn.recv(65536):
                data += chunk
        except TimeoutError:
            end = "open"
        except ConnectionError as exc:
            end = repr(exc)
        results[case.id] = (end, data, time.monotonic() - started, port)


def _idle_verdict(case: Idle, found: tuple[str, bytes, float, int], errors: str) -> tuple[str, str]:
    end, data, took, port = found
    path = case.send.split(b" ")[1].decode() if case.send else "-"
    own = [
        block
        for block in re.split(r"\n(?=swarmboot\.sim: |-{40})", errors)
        if "Traceback" in block and (f", {port})" in block or f" {path}\n" in block)
    ]
    answer = data.split(b"\r\n", 1)[0].decode("latin-1")
    what = f"{end} after {took:.0f} s; answer: {answer or 'none'}"
    if own:
        traces = _traces("\n".join(own))
        return NOT_REFUSED, f"{what}\nsimulator stderr: {traces}"
    if end == "open":
        return NOT_REFUSED, what
    if answer and not re.match(r"HTTP/1\.[01] (400|408) ", answer):
        return NOT_REFUSED, what
    return REFUSED, ""


def _crowd(sim: SimProcess) -> tuple[str, str]:
    """CROWD idle connections open: a good request is still answered at once."""
    idle = [socket.create_connection(sim.address, timeout=10) for _ in range(CROWD)]
    try:
        started = time.monotonic()
        sim.call("GET", "/v4/regions")
        took = time.monotonic() - started
    except (OSError, RuntimeError) as exc:
        return NOT_REFUSED, f"with {CROWD} idle connections open: {exc!r}"
    finally:
        for conn in idle:
            conn.close()
    if took > 5:
        return NOT_REFUSED, f"with {CROWD} idle connections open, a GET took {took:.1f} s"
    return REFUSED, ""


def run() -> list[Outcome]:
    sim = SimProcess()
    out: list[Outcome] = []
    try:
        ids = _setup(sim)
        start = current = _snapshot(sim)
        idle_results: dict[str, tuple[str, bytes, float, int]] = {}
        threads = [
            threading.Thread(target=_idle, args=(sim, c, idle_results), daemon=True) for c in IDLE
        ]
        for thread in threads:
            thread.start()
        seen = ""
        for case in CASES:
            reply, grew = _send(sim, case, ids)
            changed = False
            if case.method != "GET":
                now = _snapshot(sim)
                changed, current = now != current, now
            if reply.status is None or reply.status >= 500:
                time.sleep(0.2)  # a traceback is written as the connection ends
            errors = sim.tracebacks()
            new, seen = errors[len(seen) :], errors
            verdict, detail = _judge(case, reply, grew, changed, new)
            out.append(Outcome(CATEGORY, case.id, case.what, verdict, detail))
        out.append(Outcome(CATEGORY, "idle-crowd", f"{CROWD} idle connections", *_crowd(sim)))
        for thread in threads:
            thread.join(IDLE_TIMEOUT + 30)
        time.sleep(0.2)
        later = sim.tracebacks()[len(seen) :]
        for case in IDLE:
            found = idle_results.get(case.id, ("no result", b"", 0.0, 0))
            verdict, detail = _idle_verdict(case, found, later)
            out.append(Outcome(CATEGORY, case.id, case.what, verdict, detail))
        final = _snapshot(sim)
        verdict = REFUSED if final == start else NOT_REFUSED
        detail = "" if final == start else "the account differs from before the sweep"
        out.append(
            Outcome(CATEGORY, "state-unchanged", "the account after it all", verdict, detail)
        )
    finally:
        sim.stop()
    errors = sim.tracebacks()
    shutil.rmtree(sim.dir, ignore_errors=True)
    out.append(
        Outcome(
            CATEGORY,
            "stderr-clean",
            "no traceback on the simulator's stderr",
            NOT_REFUSED if errors else REFUSED,
            _traces(errors) if errors else "",
        )
    )
    return out
