"""The simulator as a server facing hostile clients: each bad request gets the answer the
real API would give (400, 401, 411, 413), the token is checked before a body is read, bodies
are capped, and idle connections are closed. None of it leaves a traceback behind."""

from __future__ import annotations

import json
import socket
import time

import pytest

from swarmboot.sim.config import SimConfig, Timings
from swarmboot.sim.engine import Simulator
from swarmboot.sim.server import MAX_BODY, SimServer

from .conftest import TOKEN


def _exchange(server: SimServer, head: str, body: bytes = b"", *, close: bool = False):
    """Send a raw request; (status, JSON body, closed). With `close`, waits (up to 10 s) to
    see whether the server then closes the connection; else `closed` is None."""
    timeout = 10.0
    host, port = server.httpd.server_address[:2]
    with socket.create_connection((host, port), timeout=timeout) as conn:
        # Latin-1, as http.server reads a head: "\u00b2" goes as the one byte 0xb2.
        conn.sendall(head.replace("\n", "\r\n").encode("latin-1") + b"\r\n" + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        head_part, _, rest = data.partition(b"\r\n\r\n")
        lines = head_part.decode().split("\r\n")
        status = int(lines[0].split()[1])
        fields = dict(line.split(": ", 1) for line in lines[1:])
        length = int(fields.get("Content-Length", "0"))
        while len(rest) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            rest += chunk
        closed = None
        if close:
            try:
                closed = conn.recv(1) == b""
            except TimeoutError:
                closed = False
    return status, json.loads(rest[:length] or b"null"), closed


def _head(method: str, path: str, *extra: str, token: str | None = TOKEN) -> str:
    lines = [f"{method} {path} HTTP/1.1", "Host: sim"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    lines += list(extra)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("what", "path", "extra", "body", "status", "reason"),
    [
        ("bad JSON", "/v4/linode/instances", ["Content-Length: 5"], b"{nope", 400, "Invalid JSON"),
        (
            "bad JSON to the admin API",
            "/_sim/faults",
            ["Content-Length: 5"],
            b"{nope",
            400,
            "Invalid JSON",
        ),
        (
            "not UTF-8",
            "/v4/linode/instances",
            ["Content-Length: 2"],
            b"\xff\xfe",
            400,
            "Invalid JSON",
        ),
        (
            "a length that is not a number",
            "/v4/linode/instances",
            ["Content-Length: ten"],
            b"",
            400,
            "Invalid Content-Length",
        ),
        (
            "a negative length",
            "/v4/linode/instances",
            ["Content-Length: -5"],
            b"",
            400,
            "Invalid Content-Length",
        ),
        (
            "a length in other digits than 0-9",
            "/v4/linode/instances",
            ["Content-Length: \u00b2"],
            b"{}",
            400,
            "Invalid Content-Length",
        ),
        (
            "two different lengths",
            "/v4/linode/stackscripts",
            ["Content-Length: 2", "Content-Length: 42"],
            b"{}" + b" " * 40,
            400,
            "Invalid Content-Length: two different lengths",
        ),
        (
            "a length of 5000 digits",
            "/v4/linode/instances",
            ["Content-Length: " + "9" * 5000],
            b"",
            413,
            f"Request body larger than {MAX_BODY} bytes",
        ),
        (
            "a length and a transfer encoding",
            "/v4/linode/instances",
            ["Content-Length: 2", "Transfer-Encoding: chunked"],
            b"{}",
            400,
            "Invalid Content-Length with Transfer-Encoding",
        ),
        (
            "a body nested 100,000 levels deep",
            "/v4/linode/instances",
            [f"Content-Length: {200_000}"],
            b"[" * 100_000 + b"]" * 100_000,
            400,
            "Invalid JSON: nested more than 64 levels deep",
        ),
        (
            "a JSON array for the admin API's object",
            "/_sim/faults",
            ["Content-Length: 2"],
            b"[]",
            400,
            "Request body must be a JSON object",
        ),
        (
            "a body without a length",
            "/v4/linode/instances",
            ["Transfer-Encoding: chunked"],
            b"",
            411,
            "Length Required",
        ),
        (
            "a body past the cap",
            "/v4/linode/instances",
            [f"Content-Length: {MAX_BODY + 1}"],
            b"",
            413,
            f"Request body larger than {MAX_BODY} bytes",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and " " in v else None,
)
def test_a_bad_request_is_answered_as_the_api_would(
    sim, capfd, what, path, extra, body, status, reason
):
    method = "PUT" if path.startswith("/_sim/") else "POST"
    unread = status in (411, 413) or "length" in what  # its body is never read
    got, answer, closed = _exchange(sim, _head(method, path, *extra), body, close=unread)
    assert (got, answer["errors"][0]["reason"]) == (status, reason), what
    if unread:
        assert closed  # the connection ends
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("since", ["abc", "%C2%B2", "%D9%A3", "9" * 5000])
def test_a_non_numeric_since_is_a_400(sim, capfd, since):
    status, answer, _ = _exchange(sim, _head("GET", f"/_sim/requests?since={since}"))
    assert status == 400 and answer["errors"][0]["field"] == "since"
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("path", ["/_sim/faults", "/_sim/timings", "/_sim/rate-limits"])
def test_the_admin_settings_take_an_object_only(sim, admin, path):
    before = admin.set_timings(scale=0.5)
    status, answer, _ = _exchange(sim, _head("PUT", path, "Content-Length: 2"), b"[]")
    assert (status, answer["errors"][0]["reason"]) == (400, "Request body must be a JSON object")
    assert admin.set_timings(**before) == before  # unchanged, not reset to the defaults


def test_a_deeply_nested_filter_is_a_400(sim, capfd):
    deep = "X-Filter: " + "[" * 30_000 + "]" * 30_000
    status, answer, _ = _exchange(sim, _head("GET", "/v4/linode/instances", deep))
    assert (status, answer["errors"][0]) == (
        400,
        {"reason": "Invalid JSON: nested more than 64 levels deep", "field": "X-Filter"},
    )
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize(
    "query", ["page=%D9%A3", "page=3_0", "page=+3", "page_size=%EF%BC%92%EF%BC%95"]
)
def test_paging_takes_ascii_digits(sim, query):
    status, answer, _ = _exchange(sim, _head("GET", f"/v4/linode/instances?{query}"))
    assert (status, answer["errors"][0]["reason"]) == (400, "Must be an integer")


def test_the_token_is_checked_before_a_body_is_read(sim):
    # 200 MiB announced, none sent: the answer comes at once, and the connection ends.
    started = time.monotonic()
    big = f"Content-Length: {200 * 1024 * 1024}"
    for path in ("/v4/linode/instances", "/_sim/faults"):
        method = "PUT" if path.startswith("/_sim/") else "POST"
        status, answer, closed = _exchange(sim, _head(method, path, big, token="wrong"), close=True)
        assert (status, answer["errors"][0]["reason"], closed) == (401, "Invalid Token", True)
    assert time.monotonic() - started < 5.0
    # An unknown route is not read either.
    status, _, closed = _exchange(sim, _head("POST", "/v4/nowhere", big), close=True)
    assert (status, closed) == (404, True)


def test_a_body_that_stops_coming_is_answered_408_without_a_traceback(spec_check, capfd):
    config = SimConfig(port=0, token=TOKEN, timings=Timings(scale=0.001), idle_timeout=0.3)
    server = SimServer(Simulator(config))
    server.start()
    try:
        host, port = server.httpd.server_address[:2]
        with socket.create_connection((host, port), timeout=10) as conn:
            head = _head("POST", "/v4/networking/firewalls", "Content-Length: 100")
            conn.sendall(head.replace("\n", "\r\n").encode() + b'\r\n{"label":"')
            data = b""
            while chunk := conn.recv(65536):  # until the server hangs up
                data += chunk
        assert data.startswith(b"HTTP/1.1 408 ")
        assert b'"Request Timeout"' in data
        # Recorded as answered; nothing was made.
        assert [r["status"] for r in server.requests] == [408]
        assert server.sim.world.firewalls == {}
    finally:
        server.stop()
    assert "Traceback" not in capfd.readouterr().err


def test_the_log_has_a_request_before_its_answer(sim, admin):
    # It was written after the answer: a client reading it at once could miss its request.
    for _ in range(200):
        seq = admin.requests()[-1]["seq"] if admin.requests() else 0
        _exchange(sim, _head("GET", "/v4/regions"))
        assert [r["route"] for r in admin.requests(since=seq)] == ["/regions"]


def test_an_idle_connection_is_closed(spec_check):
    config = SimConfig(port=0, token=TOKEN, timings=Timings(scale=0.001), idle_timeout=0.3)
    server = SimServer(Simulator(config))
    server.start()
    try:
        host, port = server.httpd.server_address[:2]
        with socket.create_connection((host, port), timeout=10) as conn:
            conn.sendall(b"POST /v4/linode/instances HTTP/1.1\r\nHost: sim\r\n")  # and no more
            started = time.monotonic()
            assert conn.recv(1024) == b""  # the server hung up
            assert time.monotonic() - started < 5.0
    finally:
        server.stop()


def test_the_idle_timeout_is_a_minute_unless_set():
    assert SimConfig(token=TOKEN).idle_timeout == 60.0
    with pytest.raises(ValueError, match="idle_timeout"):
        SimConfig(token=TOKEN, idle_timeout=0)


def test_a_firewall_protocol_in_other_digits_is_a_400(api, capfd):
    rules = {"inbound_policy": "DROP", "outbound_policy": "ACCEPT"}
    for protocol in ("\u00b2", "\u0665\u0660", "9" * 5000):
        rule = {"action": "ACCEPT", "protocol": protocol, "addresses": {"ipv4": ["0.0.0.0/0"]}}
        answer = api(
            "POST",
            "/networking/firewalls",
            {"label": "sweep-fw", "rules": {**rules, "inbound": [rule]}},
        )
        assert answer.status_code == 400, protocol
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("label", ["sweep\n", "sweep--x"])
def test_a_label_with_a_trailing_newline_or_two_hyphens_is_a_400(api, label):
    rules = {"inbound": [], "inbound_policy": "DROP", "outbound_policy": "ACCEPT"}
    answer = api("POST", "/networking/firewalls", {"label": label, "rules": rules})
    assert answer.status_code == 400 and answer.json()["errors"][0]["field"] == "label"
