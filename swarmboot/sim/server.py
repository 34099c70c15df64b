"""The simulator's HTTP face: `/v4/…` as Linode serves it, and `/_sim/…` to steer it.

Every `/v4` request passes, in order: routing (404/405), the bearer token (401), the body
(400 for a Content-Length that is not a number, 411 for one without a length, 413 past
MAX_BODY; read only once the token is good), injected faults (a dropped connection, a delay,
a 429 storm, a 5xx), the rate limits (429), the handler, and for an instance create the
lost-response fault. With a spec validator attached, each request and response is checked
against Linode's OpenAPI spec and violations are kept. A connection idle for the config's
`idle_timeout` (60 s) is closed, and so is one whose body was left unread.
"""

from __future__ import annotations

import collections
import hmac
import http.server
import json
import logging
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import TypeAdapter, ValidationError

from swarmboot.sim import placement, routes
from swarmboot.sim.config import Timings
from swarmboot.sim.engine import Simulator
from swarmboot.sim.errors import ApiError, Problem
from swarmboot.sim.faults import FaultConfig, Faults
from swarmboot.sim.inputs import load_json
from swarmboot.sim.ratelimit import RateLimiter, RateLimits

# PUT /_sim/withheld: {"gb-lon": ["Metadata"], "linode/debian12": ["cloud-init"]}.
_WITHHELD = TypeAdapter(dict[str, tuple[str, ...]])

__all__ = ["SimServer", "SpecCheck"]

log = logging.getLogger("swarmboot.sim")

SPEC_VERSION = "4.229.1"
# The largest request body read (a StackScript is at most 1 MiB with its data and more).
MAX_BODY = 2 * 1024 * 1024
API_PREFIXES = ("/v4", "/v4beta")

# (method, path, query, headers, body, status, response headers, response body) -> problems
SpecCheck = Callable[
    [str, str, dict[str, str], dict[str, str], Any, int, dict[str, str], Any], list[str]
]


class _Drop(Exception):
    """Close the connection without an answer."""


# A number as HTTP and the admin API write it: ASCII digits ("²" and "٣" pass str.isdigit()).
_NUMBER = re.compile(r"[0-9]+")


class SimServer:
    """A simulator behind a threaded HTTP server; `start()` serves in a background thread."""

    def __init__(self, sim: Simulator, spec_check: SpecCheck | None = None) -> None:
        self.sim = sim
        self.spec_check = spec_check
        self.violations: list[str] = []
        self.requests: collections.deque[dict[str, Any]] = collections.deque(maxlen=200_000)
        self._seq = 0
        self._lock = threading.Lock()
        # The socket's timeout: an idle client does not hold its thread forever.
        handler = type(
            "Handler", (_Handler,), {"server_app": self, "timeout": sim.config.idle_timeout}
        )
        self.httpd = _HTTPServer((sim.config.host, sim.config.port), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v4"

    def start(self) -> None:
        self.sim.start()
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="sim-http", daemon=True
        )
        self._thread.start()

    def serve_forever(self) -> None:
        self.sim.start()
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.sim.close()

    # --- recording -------------------------------------------------------------------------

    def record(self, method: str, route: str, status: int, started: float) -> None:
        with self._lock:
            self._seq += 1
            self.requests.append(
                {
                    "seq": self._seq,
                    "method": method,
                    "route": route,
                    "status": status,
                    "at": started,
                    "seconds": round(time.monotonic() - started, 6),
                }
            )

    # --- the admin API ---------------------------------------------------------------------

    def admin(self, method: str, path: str, params: dict[str, str], body: Any) -> tuple[int, Any]:
        sim = self.sim
        if (method, path) == ("GET", "/_sim/stats"):
            with self._lock:
                log_ = list(self.requests)
            statuses = collections.Counter(str(r["status"]) for r in log_)
            routes_ = collections.Counter(f"{r['method']} {r['route']}" for r in log_)
            with sim.lock:
                return 200, {
                    "requests": len(log_),
                    "statuses": dict(statuses),
                    "routes": dict(routes_),
                    "instances": len(sim.world.instances),
                    "counters": dict(sim.stats),
                    "faults_fired": len(sim.faults.fired),
                    "violations": len(self.violations),
                }
        if (method, path) == ("GET", "/_sim/requests"):
            since_text = params.get("since", "0")
            # Not "²" or "٣" (str.isdigit() takes them), nor past int()'s 4300 digits.
            if not _NUMBER.fullmatch(since_text) or len(since_text) > 18:
                return 400, {"errors": [{"reason": "since must be a number", "field": "since"}]}
            since = int(since_text)
            with self._lock:
                return 200, [r for r in self.requests if r["seq"] > since]
        if (method, path) == ("GET", "/_sim/faults/fired"):
            return 200, [f.__dict__ for f in sim.faults.fired]
        if (method, path) == ("GET", "/_sim/violations"):
            return 200, list(self.violations)
        if (method, path) == ("POST", "/_sim/reset"):
            sim.reset()
            with self._lock:
                self.requests.clear()
                self.violations.clear()
            sim.faults = Faults(sim.config.faults, sim.clock())
            return 200, {}
        if method == "PUT" and path in (
            "/_sim/faults",
            "/_sim/timings",
            "/_sim/rate-limits",
            "/_sim/withheld",
        ):
            return self._configure(path, body)
        if path == "/_sim/hosts" or path.startswith("/_sim/hosts/"):
            return self._hosts(method, path, body)
        if (method, path) == ("GET", "/_sim/instances"):
            with sim.lock:
                return 200, [
                    {"id": i.id, "label": i.label, "status": i.status, "first_boot": i.first_boot}
                    for i in sim.world.instances.values()
                ]
        return 404, {"errors": [{"reason": "Not found"}]}

    def _hosts(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        """Each Linode's host; moving Linodes onto one host, or each back onto its own."""
        sim = self.sim
        with sim.lock:
            try:
                if (method, path) == ("GET", "/_sim/hosts"):
                    return 200, placement.hosts(sim.world)
                if (method, path) == ("POST", "/_sim/hosts/share"):
                    answer = placement.share_host(sim.world, body)
                elif (method, path) == ("POST", "/_sim/hosts/separate"):
                    answer = placement.separate_hosts(sim.world, body)
                else:
                    return 404, {"errors": [{"reason": "Not found"}]}
            except ApiError as exc:
                return exc.status, exc.body()
            sim.mark_dirty()
            return 200, answer

    def _configure(self, path: str, body: Any) -> tuple[int, Any]:
        sim = self.sim
        if body is None:  # no body: the defaults
            body = {}
        if not isinstance(body, dict):  # [] would have been read as no settings: the defaults
            return 400, {"errors": [{"reason": "Request body must be a JSON object"}]}
        try:
            if path == "/_sim/faults":
                faults = FaultConfig.model_validate(body)
                with sim.lock:
                    sim.config = sim.config.model_copy(update={"faults": faults})
                    sim.faults = Faults(faults, sim.clock())
                return 200, faults.model_dump()
            if path == "/_sim/withheld":
                # The capabilities the catalogue leaves out, by region or image id.
                withheld = _WITHHELD.validate_python(body)
                with sim.lock:
                    sim.config = sim.config.model_copy(update={"withheld": withheld})
                return 200, {k: list(v) for k, v in withheld.items()}
            if path == "/_sim/timings":
                timings = Timings.model_validate(body)
                with sim.lock:
                    sim.config = sim.config.model_copy(update={"timings": timings})
                return 200, timings.model_dump()
            limits = RateLimits.model_validate(body)
            with sim.lock:
                sim.config = sim.config.model_copy(update={"rate_limits": limits})
                sim.limiter = RateLimiter(limits, sim.clock)
            return 200, limits.model_dump()
        except ValidationError as exc:
            first = exc.errors()[0]
            return 400, {
                "errors": [{"reason": first["msg"], "field": ".".join(map(str, first["loc"]))}]
            }


class _HTTPServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away mid-request (killed, or a timeout of its own) is its
        # business, not a traceback on the simulator's terminal.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            log.debug("client %s went away: %r", client_address, error)
            return
        super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "swarmboot-sim"
    sys_version = ""
    server_app: SimServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.client_address[0], *args)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    # --- plumbing --------------------------------------------------------------------------

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Spec-Version", SPEC_VERSION)
        self.send_header("X-OAuth-Scopes", routes.TOKEN_SCOPES)
        self.send_header("Access-Control-Allow-Origin", "*")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            # Said before closing (RFC 9112, 9.6), so that a client does not send its next
            # request down a connection about to close (an answer before the body was read).
            self.send_header("Connection", "close")
        # Head and body in one write: split, they meet Nagle and delayed ACKs (40 ms each).
        self._headers_buffer.append(b"\r\n" + data)
        self.flush_headers()

    def _drop(self) -> None:
        self.close_connection = True

    def _authorized(self) -> bool:
        given = self.headers.get("Authorization", "")
        scheme, _, token = given.partition(" ")
        expected = self.server_app.sim.config.token.get_secret_value()
        return scheme.lower() in ("bearer", "token") and hmac.compare_digest(
            token.strip().encode(), expected.encode()
        )

    def _content_length(self) -> int | None:
        """The body's length as the request frames it (RFC 9112, 6.3); ApiError for framing
        that cannot be trusted, and the connection is then closed."""
        values = self.headers.get_all("Content-Length") or []
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            if values:  # both: a request smuggler's framing
                raise ApiError(400, (Problem("Invalid Content-Length with Transfer-Encoding"),))
            raise ApiError(411, (Problem("Length Required"),))
        if not values:
            return None
        # Repeated or listed, a length counts only if every copy is the same.
        lengths = {part.strip() for value in values for part in value.split(",")}
        if len(lengths) != 1:
            self.close_connection = True
            raise ApiError(400, (Problem("Invalid Content-Length: two different lengths"),))
        value = lengths.pop()
        if not _NUMBER.fullmatch(value):  # a word, negative, or not ASCII digits ("²")
            self.close_connection = True
            raise ApiError(400, (Problem("Invalid Content-Length"),))
        if len(value) > 12 or int(value) > MAX_BODY:
            self.close_connection = True
            raise ApiError(413, (Problem(f"Request body larger than {MAX_BODY} bytes"),))
        return int(value)

    def _read_body(self) -> bytes:
        """The request's body, read only now (after the token check); ApiError for one that
        will not be read, and the connection is then closed (its framing is not known). A
        client that stops sending mid-body gets 408 once the socket's timeout passes; one that
        hangs up is let go."""
        length = self._content_length()
        if not length:
            return b""
        try:
            data = self.rfile.read(length)
        except TimeoutError:
            self.close_connection = True  # the socket cannot be read again
            raise ApiError(408, (Problem("Request Timeout"),)) from None
        except ConnectionError:
            self.close_connection = True
            raise _Drop from None
        if len(data) < length:  # the client hung up mid-body
            self.close_connection = True
            raise _Drop
        return data

    def _leave_unread_body(self) -> None:
        """An answer before the body was read: the body is never read, the connection ends."""
        if self.headers.get("Content-Length", "0").strip() not in ("", "0") or self.headers.get(
            "Transfer-Encoding"
        ):
            self.close_connection = True

    def _serve(self, method: str) -> None:
        started = time.monotonic()
        app = self.server_app
        sim = app.sim
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}

        if url.path.startswith("/_sim/"):
            self._admin(method, url.path, params)
            return

        if url.path.endswith("/") and url.path.strip("/").count("/") >= 1:
            # A trailing slash names the same resource, as the real API takes it
            # (linode_api4 posts to /networking/ips/ and loads /account/events/).
            url = url._replace(path=url.path.rstrip("/"))
        prefix = next((p for p in API_PREFIXES if url.path.startswith(p + "/")), None)
        if prefix is None:
            self._send(404, {"errors": [{"reason": "Not found"}]})
            return
        path = url.path[len(prefix) :]
        route, args, path_known = routes.match(method, path)
        template = route.template if route else path
        raw: bytes | None = None
        reply: tuple[int, Any, dict[str, str]] | None = None
        try:
            scope = None if route or path_known else routes.unscoped(path)
            if scope is not None:
                if not self._authorized():
                    raise ApiError(401, (Problem("Invalid Token"),))
                level = "read_only" if method == "GET" else "read_write"
                raise ApiError(
                    401,
                    (Problem(routes.NOT_AUTHORIZED),),
                    {"X-Accepted-OAuth-Scopes": f"{scope}:{level}"},
                )
            if route is None:
                raise ApiError(
                    405 if path_known else 404,
                    (Problem("Method Not Allowed" if path_known else "Not found"),),
                )
            if not self._authorized():
                raise ApiError(401, (Problem("Invalid Token"),))
            raw = self._read_body()
            fault, delay = sim.faults.request(method, template, sim.clock())
            if delay:
                time.sleep(delay)
            if fault is not None:
                if fault.kind == "drop":
                    raise _Drop
                if fault.kind == "storm":
                    raise ApiError(
                        429,
                        (Problem("Too Many Requests"),),
                        {"Retry-After": str(fault.retry_after)},
                    )
                raise ApiError(
                    fault.status,
                    (
                        Problem(
                            "Internal Server Error"
                            if fault.status == 500
                            else "Service Unavailable"
                        ),
                    ),
                )
            token = sim.config.token.get_secret_value()
            verdict = sim.limiter.check(token, method, template, route.collection)
            if not verdict.allowed:
                sim.count("rate_limited")
                raise ApiError(429, (Problem("Too Many Requests"),), verdict.headers())
            body = load_json(raw) if raw else None
            if body is not None and not isinstance(body, dict):
                # Every body of the API is an object: refused before any record is looked
                # up, as each operation's own check would.
                raise ApiError(400, (Problem("Request body must be a JSON object"),))
            request = routes.Request(method, path, params, headers, body, args)
            answer = route.handler(sim, request)
            if (method, template) == (
                "POST",
                "/linode/instances",
            ) and sim.faults.lose_create_response(answer.get("label", ""), sim.clock()):
                raise _Drop
            self._check(method, url.path, params, headers, body, 200, answer)
            reply = (200, answer, verdict.headers())
        except _Drop:
            self._drop()
        except ApiError as exc:
            if raw is None:
                self._leave_unread_body()
            self._check(method, url.path, params, headers, None, exc.status, exc.body())
            reply = (exc.status, exc.body(), exc.headers)
        except Exception:
            log.exception("simulator error on %s %s", method, url.path)
            reply = (500, {"errors": [{"reason": "Internal Server Error"}]}, {})
        # Recorded before it is answered: a client that reads the log once it has its answer
        # finds its request there.
        app.record(method, template, reply[0] if reply else 0, started)
        if reply is not None:
            self._send(*reply)

    def _admin(self, method: str, path: str, params: dict[str, str]) -> None:
        if path == "/_sim/health":
            self._leave_unread_body()
            self._send(200, {"ok": True, "machines": self.server_app.sim.has_machines})
            return
        if not self._authorized():
            self._leave_unread_body()
            self._send(401, {"errors": [{"reason": "Invalid Token"}]})
            return
        try:
            raw = self._read_body()
            body = load_json(raw) if raw else None
            status, answer = self.server_app.admin(method, path, params, body)
        except _Drop:
            self._drop()
            return
        except ApiError as exc:
            status, answer = exc.status, exc.body()
        except Exception:  # answered, not a dropped connection
            log.exception("simulator error on %s %s", method, path)
            status, answer = 500, {"errors": [{"reason": "Internal Server Error"}]}
        self._send(status, answer)

    def _check(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        headers: dict[str, str],
        body: Any,
        status: int,
        answer: Any,
    ) -> None:
        check = self.server_app.spec_check
        if check is None:
            return
        problems = check(method, path, params, headers, body, status, {}, answer)
        if problems:
            with self.server_app._lock:
                self.server_app.violations.extend(problems)
