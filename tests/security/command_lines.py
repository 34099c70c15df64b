"""Bad command lines: unknown commands and options, missing arguments, bad option values, bad
files, API URLs that are wrong or would send the token elsewhere, a token given as an
argument.

Refused properly: the exit code the README's table gives (2 for a bad command line), one
`Error:` line or one usage error (or the usage itself), no traceback, the token (set in the
environment) nowhere in the output, nothing but reads reaching the simulator, and no request
reaching the trap (a listener on 127.0.0.2 standing for any host that is not the API).
`swarmboot sim` cases run in a process of their own: one that starts serving was not refused
(it is stopped by its PID).
"""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .common import (
    CLI_TOKEN,
    EXAMPLE,
    NOT_REFUSED,
    ONE_MANAGER,
    REFUSED,
    CliWorld,
    Outcome,
    Ran,
    last_lines,
    shown,
)

CATEGORY = "cli"
TITLE = "bad command lines"
EXE = str(Path(sys.executable).parent / "swarmboot")
# A Linode token, as a user would have one exported too: it must go nowhere but the API.
LINODE_TOKEN = "linode-secret-token-9c1e"
SECRET = "SECRETHASH-0d1f"  # in a file a case points at: never to be echoed
USAGE, ERROR, SPEC_BAD = frozenset({2}), frozenset({1}), frozenset({4})
ERROR_OR_USAGE = frozenset({1, 2})


@dataclass(frozen=True)
class CliCase:
    id: str
    what: str
    # SPEC: a valid one-manager spec, LBSPEC: the example, DIR: the case's folder with the
    # files below, URL: the simulator, CLOSED: a port nobody listens on, TRAP: host:port of
    # the trap, TOKEN: the token in the environment.
    args: tuple[str, ...]
    exit: frozenset[int] = USAGE
    env: dict[str, str | None] = field(default_factory=dict)
    process: bool = False  # run as its own process (`swarmboot sim` serves until stopped)


FILES: dict[str, str | bytes] = {
    "solo.toml": ONE_MANAGER,
    "itframe.toml": EXAMPLE,
    "secret.txt": f"root:$6${SECRET}:19000:0:99999:7:::\n",
    "id.pub": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB0orchestrator0000000000000000000000000 x\n",
    "binary.sh": b'\xff\xfe#!/bin/bash\n# <UDF name="x" label="x" />\n',
    "faults.json": '{"error_rate": 5}',
    "state.json": "{not json",
}

C = CliCase
# What an --api-url must never do: send the Linode token a user has exported elsewhere.
WITH_LINODE_TOKEN = {"LINODE_TOKEN": LINODE_TOKEN}


def U(id: str, what: str, url: str, exit: frozenset[int] = ERROR_OR_USAGE) -> CliCase:
    """plan SPEC --api-url URL, with a Linode token exported."""
    return CliCase(id, what, ("plan", "SPEC", "--api-url", url), exit, WITH_LINODE_TOKEN)


CASES = [
    C("unknown-command", "a command swarmboot does not have", ("frobnicate",)),
    C("unknown-option", "an option plan does not have", ("plan", "SPEC", "--frobnicate")),
    C("unknown-global-option", "a global option that does not exist", ("--debug", "plan", "SPEC")),
    C("missing-spec", "plan without its SPEC", ("plan",)),
    C("missing-spec-up", "up without its SPEC", ("up",)),
    C("missing-spec-down", "down --yes without its SPEC", ("down", "--yes")),
    C("missing-label", "node rebuild without the node's label", ("node", "rebuild", "SPEC")),
    C("missing-subcommand", "node without a subcommand", ("node",)),
    C("missing-subcommand-lb", "lb without a subcommand", ("lb",)),
    C("extra-argument", "plan with two specs", ("plan", "SPEC", "SPEC")),
    C("timeout-negative", "a negative --timeout", ("up", "SPEC", "--timeout", "-5")),
    C("timeout-zero", "--timeout 0", ("up", "SPEC", "--timeout", "0")),
    C("timeout-word", "a --timeout that is a word", ("up", "SPEC", "--timeout", "ten")),
    C("timeout-nan", "--timeout nan", ("repair", "SPEC", "--timeout", "nan")),
    C("timeout-hex", "--timeout 0x10", ("up", "SPEC", "--timeout", "0x10")),
    C("timeout-no-value", "--timeout without its value", ("up", "SPEC", "--timeout")),
    C("spec-missing", "a spec file that does not exist", ("plan", "DIR/none.toml"), SPEC_BAD),
    C("spec-directory", "a directory as the spec", ("plan", "DIR")),
    C("spec-empty-path", "an empty spec path", ("plan", ""), frozenset({2, 4})),
    C("spec-not-toml", "a file of secrets as the spec", ("plan", "DIR/secret.txt"), SPEC_BAD),
    C("spec-dev-zero", "/dev/zero as the spec", ("plan", "/dev/zero"), SPEC_BAD),
    C("ssh-key-directory", "a directory as --ssh-key", ("plan", "SPEC", "--ssh-key", "DIR")),
    C(
        "ssh-key-missing",
        "an --ssh-key that does not exist",
        ("plan", "SPEC", "--ssh-key", "DIR/no"),
        ERROR,
    ),
    C(
        "ssh-key-not-a-key",
        "a file of secrets as --ssh-key",
        ("plan", "SPEC", "--ssh-key", "DIR/secret.txt"),
        ERROR,
    ),
    C(
        "ssh-key-public-half",
        "a public key as --ssh-key",
        ("plan", "SPEC", "--ssh-key", "DIR/id.pub"),
        ERROR,
    ),
    U("api-url-ftp", "an ftp:// --api-url", "ftp://127.0.0.1/v4"),
    U("api-url-file", "a file:// --api-url", "file:///etc/passwd"),
    U("api-url-javascript", "a javascript: --api-url", "javascript:alert(1)"),
    U("api-url-no-scheme", "an --api-url without a scheme", "127.0.0.1:8765/v4"),
    U("api-url-http-remote", "plain http to a remote API", "http://api.linode.com/v4"),
    U(
        "api-url-userinfo",
        "an --api-url whose user part names localhost",
        "http://127.0.0.1:1@TRAP/v4",
    ),
    U(
        "api-url-backslash",
        "an --api-url that urlsplit reads as 127.0.0.1 and requests as another host",
        "http://TRAP\\@127.0.0.1:CLOSED/v4",
    ),
    U("api-url-newline", "an --api-url with a newline and a header", "URL\nX-Injected: 1"),
    U(
        "api-url-closed-port",
        "an --api-url where nobody listens",
        "http://127.0.0.1:CLOSED/v4",
        ERROR,
    ),
    U("api-url-not-the-api", "an --api-url that answers 404 to everything (no /v4)", "ROOT", ERROR),
    C(
        "api-url-env",
        "SWARMBOOT_API_URL with a bad scheme",
        ("plan", "SPEC"),
        ERROR_OR_USAGE,
        {"SWARMBOOT_API_URL": "gopher://127.0.0.1/v4", **WITH_LINODE_TOKEN},
    ),
    C("token-option", "the token as --token", ("plan", "SPEC", "--token", "TOKEN")),
    C("token-option-equals", "the token as --token=...", ("plan", "SPEC", "--token=TOKEN")),
    C("token-argument", "the token as an extra argument", ("plan", "SPEC", "TOKEN")),
    C(
        "label-injection",
        "node rebuild of a label with a shell command",
        ("node", "rebuild", "SPEC", "x;reboot", "--yes"),
    ),
    C(
        "label-foreign",
        "node rebuild of a label the spec does not have",
        ("node", "rebuild", "SPEC", "shop-web-1", "--yes"),
    ),
    C(
        "render-templates-file",
        "a file as --templates",
        ("render", "--check", "--templates", "SPEC"),
    ),
    C(
        "render-templates-missing",
        "a --templates folder that does not exist",
        ("render", "--check", "--templates", "DIR/none"),
        ERROR_OR_USAGE,
    ),
    C(
        "lb-render-out-file",
        "a file as lb render --out",
        ("lb", "render", "LBSPEC", "--out", "SPEC"),
        ERROR_OR_USAGE,
    ),
    C(
        "udfs-missing",
        "stackscript udfs of a file that does not exist",
        ("stackscript", "udfs", "DIR/none.sh"),
        ERROR_OR_USAGE,
    ),
    C("udfs-directory", "stackscript udfs of a directory", ("stackscript", "udfs", "DIR")),
    C(
        "udfs-not-utf8",
        "stackscript udfs of a file that is not UTF-8",
        ("stackscript", "udfs", "DIR/binary.sh"),
        ERROR,
    ),
    C(
        "poll-interval-word",
        "SWARMBOOT_POLL_INTERVAL that is a word",
        ("plan", "SPEC"),
        ERROR,
        {"SWARMBOOT_POLL_INTERVAL": "soon"},
    ),
    C(
        "root-password-weak",
        "a weak SWARMBOOT_ROOT_PASSWORD",
        ("plan", "SPEC"),
        ERROR,
        {"SWARMBOOT_ROOT_PASSWORD": "hunter2"},
    ),
    # `swarmboot sim`, each in its own process.
    C("sim-port-negative", "sim --port -1", ("sim", "--port", "-1"), ERROR_OR_USAGE, process=True),
    C(
        "sim-port-too-big",
        "sim --port 70000",
        ("sim", "--port", "70000"),
        ERROR_OR_USAGE,
        process=True,
    ),
    C("sim-port-word", "sim --port http", ("sim", "--port", "http"), process=True),
    C(
        "sim-time-scale-negative",
        "sim --time-scale -1",
        ("sim", "--port", "0", "--time-scale", "-1"),
        process=True,
    ),
    C(
        "sim-time-scale-nan",
        "sim --time-scale nan",
        ("sim", "--port", "0", "--time-scale", "nan"),
        ERROR_OR_USAGE,
        process=True,
    ),
    C(
        "sim-faults-missing",
        "sim --faults of a file that does not exist",
        ("sim", "--port", "0", "--faults", "DIR/none.json"),
        process=True,
    ),
    C(
        "sim-faults-directory",
        "sim --faults of a directory",
        ("sim", "--port", "0", "--faults", "DIR"),
        process=True,
    ),
    C(
        "sim-faults-not-json",
        "sim --faults of a file of secrets",
        ("sim", "--port", "0", "--faults", "DIR/secret.txt"),
        ERROR,
        process=True,
    ),
    C(
        "sim-faults-bad-value",
        "sim --faults with an error rate of 5",
        ("sim", "--port", "0", "--faults", "DIR/faults.json"),
        ERROR,
        process=True,
    ),
    C(
        "sim-range-no-cidr",
        "sim --public-range without =CIDR",
        ("sim", "--port", "0", "--public-range", "eu-central"),
        process=True,
    ),
    C(
        "sim-range-bad-cidr",
        "sim --public-range with a /33",
        ("sim", "--port", "0", "--public-range", "eu-central=198.51.100.0/33"),
        ERROR,
        process=True,
    ),
    C(
        "sim-state-directory",
        "sim --state of a directory",
        ("sim", "--port", "0", "--state", "DIR"),
        process=True,
    ),
    C(
        "sim-state-not-json",
        "sim --state of a file that is not a state",
        ("sim", "--port", "0", "--state", "DIR/state.json"),
        ERROR,
        process=True,
    ),
    C(
        "sim-lab-with-state",
        "sim --lab with --state",
        ("sim", "--port", "0", "--lab", "--state", "DIR/s.json"),
        ERROR,
        process=True,
    ),
    C(
        "sim-validate-spec-bad",
        "sim --validate-spec of a file of secrets",
        ("sim", "--port", "0", "--validate-spec", "DIR/secret.txt"),
        ERROR,
        process=True,
    ),
    C(
        "sim-backend-unknown",
        "sim --backend of a module that does not exist",
        ("sim", "--port", "0", "--backend", "no.such:thing"),
        ERROR,
        process=True,
    ),
    C("deploy-missing-stack", "deploy without its STACK file", ("deploy", "SPEC")),
    C(
        "bootstrap-word",
        "an --bootstrap that is neither stackscript nor cloud-init",
        ("up", "SPEC", "--bootstrap", "cloudinit"),
    ),
    C(
        "sim-withhold-no-capability",
        "sim --withhold without the capability",
        ("sim", "--port", "0", "--withhold", "gb-lon"),
        process=True,
    ),
    C(
        "deploy-resolve-word",
        "a --resolve-image docker does not have",
        ("deploy", "SPEC", "DIR/secret.txt", "--resolve-image", "sometimes"),
    ),
    C(
        "deploy-timeout-zero",
        "deploy --timeout 0",
        ("deploy", "SPEC", "DIR/x.yml", "--timeout", "0"),
    ),
    C(
        "deploy-stack-is-secrets",
        "a file of secrets as the stack file (never echoed)",
        ("deploy", "SPEC", "DIR/secret.txt"),
        SPEC_BAD,
    ),
    C(
        "deploy-stack-dev-zero",
        "/dev/zero as the stack file",
        ("deploy", "SPEC", "/dev/zero"),
        SPEC_BAD,
    ),
    C("deploy-stack-directory", "a directory as the stack file", ("deploy", "SPEC", "DIR")),
    C(
        "secret-value-as-argument",
        "a secret's value given as an argument (it is not repeated)",
        ("secret", "set", "SPEC", "db", "SECRETHASH-0d1f"),
    ),
    C(
        "secret-from-file-missing",
        "secret set --from-file of a file that does not exist",
        ("secret", "set", "SPEC", "db", "--from-file", "DIR/none"),
        ERROR,
    ),
    C(
        "sim-no-token",
        "sim without a token in the environment",
        ("sim", "--port", "0"),
        ERROR,
        {"SWARMBOOT_SIM_TOKEN": None},
        process=True,
    ),
]


class Trap:
    """A listener on 127.0.0.2 that answers 401 and keeps what reached it."""

    def __init__(self) -> None:
        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self) -> None:
                seen.append(f"{self.command} {self.path} {dict(self.headers)}")
                body = b'{"errors": [{"reason": "Invalid Token"}]}'
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        host, port = self.httpd.server_address[:2]
        self.address = f"{host}:{port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_process(args: list[str], env: dict[str, str | None], where: Path) -> Ran:
    """`swarmboot ARGS` in its own process; one still running after 15 s, or that printed its
    URL, is serving: it is stopped by its PID and said so."""
    full = {k: v for k, v in os.environ.items() if not k.endswith("_TOKEN")}
    for name, value in env.items():
        if value is None:
            full.pop(name, None)
        else:
            full[name] = value
    out, err = where / "stdout", where / "stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen([EXE, *args], env=full, stdout=stdout, stderr=stderr)
        deadline = time.monotonic() + 15
        while proc.poll() is None and time.monotonic() < deadline:
            if out.read_bytes().startswith(b"http"):
                break
            time.sleep(0.05)
        serving = proc.poll() is None
        if serving:
            proc.terminate()
            proc.wait(timeout=15)
    text = out.read_text(errors="replace") + err.read_text(errors="replace")
    if serving:
        return Ran(-1, f"(it started serving; stopped by its PID)\n{text}", "")
    return Ran(proc.returncode, text, "")


def _error_count(output: str) -> int:
    return sum(1 for ln in output.splitlines() if ln.startswith("Error: ") or "╭─ Error" in ln)


def _judge(case: CliCase, ran: Ran, writes: list[str], trapped: list[str]) -> tuple[str, str]:
    what = f"exit {ran.exit_code}: {shown(ran.output)}"
    leaked = [s for s in (CLI_TOKEN, LINODE_TOKEN, SECRET) if s in ran.output]
    if ran.traceback:
        return NOT_REFUSED, f"{what}\ntraceback: {last_lines(ran.traceback)}"
    if "Traceback" in ran.output:
        return NOT_REFUSED, f"{what}\n(a traceback in the output)"
    if leaked:
        return NOT_REFUSED, f"{what}\n(secret in the output: {leaked})"
    if writes:
        return NOT_REFUSED, f"{what}\nwrites reached the simulator: {writes}"
    if trapped:
        return NOT_REFUSED, f"{what}\nrequests reached another host: {trapped}"
    if ran.exit_code not in case.exit:
        return NOT_REFUSED, f"{what}\n(expected exit {'/'.join(map(str, sorted(case.exit)))})"
    errors = _error_count(ran.output)
    if errors == 1 or (errors == 0 and ran.exit_code == 2 and "Usage:" in ran.output):
        return REFUSED, ""
    return NOT_REFUSED, f"{what}\n({errors} error messages, expected one)"


def run(world: CliWorld) -> list[Outcome]:
    trap = Trap()
    closed = str(_closed_port())
    values = {
        "LBSPEC": "DIR/itframe.toml",
        "SPEC": "DIR/solo.toml",
        "ROOT": world.url.removesuffix("/v4"),
        "URL": world.url,
        "CLOSED": closed,
        "TRAP": trap.address,
        "TOKEN": CLI_TOKEN,
    }

    def fill(text: str, where: Path) -> str:
        for name, value in values.items():
            text = text.replace(name, value)
        return text.replace("DIR", str(where))

    def prepare(case: CliCase) -> tuple[Path, list[str], dict[str, str | None]]:
        where = world.dir / "cli" / case.id
        where.mkdir(parents=True)
        for name, content in FILES.items():
            path = where / name
            path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
        env = {k: fill(v, where) if v else v for k, v in case.env.items()}
        return where, [fill(a, where) for a in case.args], env

    try:
        ran: dict[str, Ran] = {}
        processes = [c for c in CASES if c.process]
        with ThreadPoolExecutor(4) as pool:
            futures = {}
            for case in processes:
                where, args, env = prepare(case)
                env = {**world.env, "SWARMBOOT_SIM_TOKEN": CLI_TOKEN, **env}
                futures[case.id] = pool.submit(_run_process, args, env, where)
            out = []
            for case in CASES:
                if case.process:
                    continue
                where, args, env = prepare(case)
                seq, before = world.last_seq(), len(trap.seen)
                ran[case.id] = world.invoke(args, env)
                verdict, detail = _judge(
                    case, ran[case.id], world.writes_since(seq), trap.seen[before:]
                )
                out.append(Outcome(CATEGORY, case.id, case.what, verdict, detail))
            for case in processes:
                verdict, detail = _judge(case, futures[case.id].result(), [], [])
                out.append(Outcome(CATEGORY, case.id, case.what, verdict, detail))
    finally:
        trap.close()
    return out
