"""The hostile requests of the simulator's category (server_requests.py runs them), as data.

Every route the simulator serves (swarmboot.sim.routes.ROUTES) and every admin endpoint gets
no token, a wrong token and a malformed Authorization header; every route that takes a body
gets a body that is not JSON and one that is not an object; then broken framing, bad paging
and filters, bad ids, methods it does not serve, oversized heads, and idle connections.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from swarmboot.sim.routes import ROUTES
from swarmboot.sim.server import MAX_BODY

TOKEN = "sim-sweep-token-51b2"
TOKEN_B = TOKEN.encode()
MIB = 1024 * 1024

GOOD, NONE, WRONG = "good", "none", "wrong"
BAD_TOKEN = "Invalid Token"
BAD_JSON = "Invalid JSON"
BAD_LENGTH = "Invalid Content-Length"
TOO_LARGE = "Request body larger"
AUTO = b"auto"  # Content-Length: the body's length
BAD = frozenset({400})


@dataclass(frozen=True)
class Req:
    id: str
    what: str
    method: str
    path: str  # {linodeId} and the like: ids of objects made first
    expect: frozenset[int]
    auth: str | bytes = GOOD  # GOOD, NONE, WRONG, or a raw Authorization value
    body: bytes = b""
    length: bytes | None = AUTO  # the raw Content-Length value; None: no header
    headers: tuple[bytes, ...] = ()  # more raw header lines
    reason: str | None = None  # errors[0].reason expected (a prefix)
    stream: int = 0  # bytes sent after the head whatever the answer (peak RSS checked)
    raw: bytes | None = None  # the whole request as is


@dataclass(frozen=True)
class Idle:
    id: str
    what: str
    send: bytes  # then nothing more


# Malformed Authorization values, taken in turn by the routes.
MALFORMED: tuple[tuple[str, bytes], ...] = (
    ("the scheme alone", b"Bearer"),
    ("the token with a suffix", b"Bearer " + TOKEN_B + b"x"),
    ("the token without a scheme", TOKEN_B),
    ("Basic with the token", b"Basic " + base64.b64encode(b"root:" + TOKEN_B)),
    ("the token cut short", b"Bearer " + TOKEN_B[:-1]),
    ("the token in capitals", b"Bearer " + TOKEN_B.upper()),
    ("a tab for the space", b"Bearer\t" + TOKEN_B),
    ("a NUL after the token", b"Bearer " + TOKEN_B + b"\x00"),
    ("a Latin-1 byte before the token", b"Bearer \xb2" + TOKEN_B),
    ("another scheme", b"Negotiate " + TOKEN_B),
)
ADMIN = (
    ("GET", "/_sim/stats"),
    ("GET", "/_sim/requests"),
    ("GET", "/_sim/faults/fired"),
    ("GET", "/_sim/violations"),
    ("GET", "/_sim/instances"),
    ("POST", "/_sim/reset"),
    ("PUT", "/_sim/faults"),
    ("PUT", "/_sim/timings"),
    ("PUT", "/_sim/rate-limits"),
)
# Routes that take a body but whose handler reads none.
NO_BODY = {("POST", "/linode/instances/{linodeId}/shutdown")}


def _slug(method: str, path: str) -> str:
    words = re.sub(r"\{\w+\}", "id", path).strip("/").replace("_sim/", "sim-").replace("/", "-")
    return f"{method.lower()}-{words}"


def _auth_cases() -> list[Req]:
    out = []
    every = [(r.method, "/v4" + r.template) for r in ROUTES] + list(ADMIN)
    for n, (method, path) in enumerate(every):
        body = b'{"label": "sweep"}' if method in ("POST", "PUT") else b""
        bad_name, bad = MALFORMED[n % len(MALFORMED)]
        for kind, what, auth in (
            ("no-token", "no token", NONE),
            ("wrong-token", "a wrong token", WRONG),
            ("malformed-auth", f"Authorization: {bad_name}", bad),
        ):
            out.append(
                Req(
                    f"{kind}-{_slug(method, path)}",
                    f"{method} {path} with {what}",
                    method,
                    path,
                    frozenset({401}),
                    auth=auth,
                    body=body,
                    reason=BAD_TOKEN,
                )
            )
    return out


def _body_cases() -> list[Req]:
    out = []
    writes = [(r.method, "/v4" + r.template) for r in ROUTES if r.method in ("POST", "PUT")]
    for method, path in writes + [(m, p) for m, p in ADMIN if m == "PUT"]:
        slug, where = _slug(method, path), f"{method} {path}"
        what = f"{where} with a body that is not JSON"
        out.append(Req(f"bad-json-{slug}", what, method, path, BAD, body=b"{nope", reason=BAD_JSON))
        if (method, path.removeprefix("/v4")) not in NO_BODY:
            what = f"{where} with a JSON array for its object"
            out.append(Req(f"json-array-{slug}", what, method, path, BAD, body=b"[]"))
    return out


# fmt: off
# POST /v4/linode/instances with a good token: (id, what, status, body, Content-Length, more
# headers, reason, bytes streamed after the head).
_FRAMING: list[tuple[str, str, int, bytes, bytes | None, tuple, str | None, int]] = [
    ("body-not-utf8", "a body that is not UTF-8", 400, b"\xff\xfe", AUTO, (), BAD_JSON, 0),
    ("body-deep-nesting", "a JSON body nested 100,000 arrays deep", 400,
     b"[" * 100_000 + b"]" * 100_000, AUTO, (), None, 0),
    ("length-word", "Content-Length: ten", 400, b"", b"ten", (), BAD_LENGTH, 0),
    ("length-negative", "Content-Length: -5", 400, b"", b"-5", (), BAD_LENGTH, 0),
    ("length-plus", "Content-Length: +2", 400, b"{}", b"+2", (), BAD_LENGTH, 0),
    ("length-hex", "Content-Length: 0x2", 400, b"{}", b"0x2", (), BAD_LENGTH, 0),
    ("length-float", "Content-Length: 2.0", 400, b"{}", b"2.0", (), BAD_LENGTH, 0),
    ("length-superscript", "Content-Length: \xb2 (a Latin-1 superscript two)", 400, b"{}",
     b"\xb2", (), BAD_LENGTH, 0),
    ("length-chunked", "Transfer-Encoding: chunked", 411, b"2\r\n{}\r\n0\r\n\r\n", None,
     (b"Transfer-Encoding: chunked",), "Length Required", 0),
    ("length-past-cap", "a Content-Length one past the cap", 413, b"",
     str(MAX_BODY + 1).encode(), (), TOO_LARGE, 0),
    ("stream-1gib", "1 GiB announced, 64 MiB streamed, good token", 413, b"",
     str(1024 * MIB).encode(), (), TOO_LARGE, 64 * MIB),
]

# (id, what, method, path, statuses, more Req fields)
_PATHS: list[tuple[str, str, str, str, tuple[int, ...], dict]] = [
    ("length-twice", "two different Content-Lengths", "POST", "/v4/linode/stackscripts", (400,),
     {"body": b"{}" + b" " * 40, "length": None, "reason": BAD_LENGTH,
      "headers": (b"Content-Length: 2", b"Content-Length: 42")}),
    ("length-missing", "a body without a Content-Length", "POST", "/v4/linode/stackscripts",
     (400, 411), {"body": b'{"label": "x"}', "length": None}),
    ("stream-1gib-wrong-token", "1 GiB announced, 64 MiB streamed, wrong token", "POST",
     "/v4/linode/instances", (401,), {"auth": WRONG, "length": str(1024 * MIB).encode(),
                                   "stream": 64 * MIB, "reason": BAD_TOKEN}),
    ("stream-1gib-admin", "1 GiB announced to the admin API, 64 MiB streamed", "PUT",
     "/_sim/faults", (413,), {"length": str(1024 * MIB).encode(), "stream": 64 * MIB,
                           "reason": TOO_LARGE}),
    ("stream-expect-continue", "Expect: 100-continue, 200 MiB announced, wrong token", "POST",
     "/v4/linode/instances", (401,), {"auth": WRONG, "length": str(200 * MIB).encode(),
                                   "headers": (b"Expect: 100-continue",), "stream": 16 * MIB,
                                   "reason": BAD_TOKEN}),
    *(
        (f"since-{name}", f"/_sim/requests?since={value}", "GET",
         f"/_sim/requests?since={value}", (400,), {})
        for name, value in (("word", "abc"), ("negative", "-1"), ("fraction", "1.5"),
                            ("empty", ""), ("superscript", "%C2%B2"), ("exponent", "1e3"))
    ),
    *(
        (f"paging-{name}", f"GET /v4/linode/instances?{query}", "GET",
         f"/v4/linode/instances?{query}", (400,), {})
        for name, query in (("page-word", "page=abc"), ("page-zero", "page=0"),
                            ("page-negative", "page=-1"), ("page-superscript", "page=%C2%B2"),
                            ("page-size-1", "page_size=1"), ("page-size-huge", "page_size=100000"),
                            ("page-size-word", "page_size=abc"),
                            ("page-size-exponent", "page_size=1e2"))
    ),
    *(
        (f"filter-{name}", f"X-Filter: {value[:40]!r}", "GET", "/v4/linode/instances", (400,),
         {"headers": (b"X-Filter: " + value,)})
        for name, value in (("not-json", b"{nope"), ("unfilterable", b'{"root_pass": "x"}'),
                            ("order-by-secret", b'{"+order_by": "root_pass"}'),
                            ("unknown-operator", b'{"label": {"+regex": ".*"}}'),
                            ("deep-nesting", b"[" * 30_000 + b"]" * 30_000),
                            ("not-an-object", b"[]"))
    ),
    *(
        (f"id-{name}", f"GET /v4/linode/instances/{value}", "GET",
         f"/v4/linode/instances/{value}", (404,), {})
        for name, value in (("word", "abc"), ("negative", "-1"), ("huge", "9" * 30),
                            ("nul", "1%00"), ("dot-dot", "%2e%2e"))
    ),
    *(
        (f"method-{m.lower()}", f"{m} /v4/linode/instances (405, or http.server's 501)", m,
         "/v4/linode/instances", (405, 501), {})
        for m in ("PATCH", "OPTIONS", "TRACE", "HEAD")
    ),
    ("head-long-line", "a request line of 70,000 characters", "GET", "/v4/" + "a" * 70_000,
     (414,), {}),
    ("head-long-header", "a header of 70,000 characters", "GET", "/v4/regions", (431,),
     {"headers": (b"X-Long: " + b"a" * 70_000,)}),
    ("head-many-headers", "150 headers", "GET", "/v4/regions", (431,),
     {"headers": tuple(b"X-H%d: 1" % n for n in range(150))}),
    ("head-garbage", "a request line that is not HTTP", "GET", "/", (400,),
     {"raw": b"HELLO THERE WORLD\r\n\r\n"}),
    ("head-http-version", "HTTP/9.9", "GET", "/", (505,),
     {"raw": b"GET /v4/regions HTTP/9.9\r\n\r\n"}),
]
# fmt: on


def _other_cases() -> list[Req]:
    out = [
        Req(i, what, "POST", "/v4/linode/instances", frozenset({status}), body=body,
            length=length, headers=headers, reason=reason, stream=stream)
        for i, what, status, body, length, headers, reason, stream in _FRAMING
    ]  # fmt: skip
    out += [
        Req(i, what, method, path, frozenset(statuses), **more)
        for i, what, method, path, statuses, more in _PATHS
    ]
    return out


CASES = _auth_cases() + _body_cases() + _other_cases()

IDLE = (
    Idle("idle-silent", "a connection that sends nothing", b""),
    Idle(
        "idle-partial-head",
        "a request head cut off",
        b"POST /v4/linode/stackscripts HTTP/1.1\r\nHost: sim\r\n",
    ),
    Idle(
        "idle-partial-body",
        "10 bytes of an announced 100, good token",
        b"POST /v4/networking/firewalls HTTP/1.1\r\nHost: sim\r\nAuthorization: Bearer "
        + TOKEN_B
        + b'\r\nContent-Length: 100\r\n\r\n{"label":"',
    ),
)
CROWD = 64  # idle connections open while a good request must still be answered
# Checks over the whole run, after the cases.
FINAL = ("idle-crowd", "state-unchanged", "stderr-clean")


def case_ids() -> list[str]:
    return [c.id for c in CASES] + [c.id for c in IDLE] + list(FINAL)
