"""What every category of the security sweep shares: the verdict of one hostile input, and
the records-only simulator the command line runs against (as `cli_sim` in tests/conftest.py
starts it: in this process, every exchange checked against Linode's OpenAPI spec)."""

from __future__ import annotations

import shutil
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent.parent
OPENAPI = REPO / "tests" / "data" / "linode-openapi-4.189.0.json.gz"
EXAMPLE = (REPO / "examples" / "itframe.toml").read_text()
# The one-manager spec of tests/test_bad_input.py.
ONE_MANAGER = (
    '[cluster]\nname = "solo"\n[regions.eu-central]\npools = [{ role = "manager", count = 1 }]\n'
)
CLI_TOKEN = "sweep-secret-token-7f3a"

REFUSED = "refused"
VALID = "accepted (valid)"
NOT_REFUSED = "NOT refused"


@dataclass(frozen=True)
class Outcome:
    """What one hostile input got: refused properly, accepted and harmless (with why), or
    not refused (with what happened)."""

    category: str
    case: str
    what: str
    verdict: str
    detail: str = ""

    @property
    def key(self) -> str:
        return f"{self.category}/{self.case}"


@dataclass
class CategoryResult:
    name: str
    title: str
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: str | None = None  # why the category did not run
    seconds: float = 0.0

    def count(self, verdict: str) -> int:
        return sum(1 for o in self.outcomes if o.verdict == verdict)


def shown(output: str, keep: int = 2) -> str:
    """An output for a report: whole when short, else its first and last lines."""
    lines = output.rstrip("\n").splitlines()
    if len(lines) <= 2 * keep:
        return "\n".join(lines)
    return "\n".join(
        [*lines[:keep], f"... ({len(lines) - 2 * keep} more lines) ...", *lines[-keep:]]
    )


def last_lines(text: str, n: int = 2) -> str:
    """The end of a traceback: where it ended and the exception."""
    return "\n".join(text.rstrip("\n").splitlines()[-n:])


@dataclass(frozen=True)
class Ran:
    exit_code: int
    output: str  # stdout and stderr as the user sees them
    traceback: str  # "" unless an exception escaped the command


class CliWorld:
    """A records-only simulator, spec-checked, and the environment the command line finds it
    by (SWARMBOOT_API_URL, the token in SWARMBOOT_SIM_TOKEN, a key in SWARMBOOT_SSH_KEY, a
    HOME of its own). `invoke` runs `swarmboot` through Typer's CliRunner."""

    def __init__(self) -> None:
        from swarmboot.sim.admin import SimAdmin
        from swarmboot.sim.config import SimConfig, Timings
        from swarmboot.sim.engine import Simulator
        from swarmboot.sim.ratelimit import RateLimits
        from swarmboot.sim.server import SimServer
        from swarmboot.sim.speccheck import load_spec_check

        self.dir = Path(tempfile.mkdtemp(prefix="swarmboot-sweep-"))
        # Without Linode's rate limits: hundreds of commands in a row would otherwise wait
        # out 429s (the limits are not what this sweep tries).
        config = SimConfig(
            port=0,
            token=CLI_TOKEN,
            timings=Timings(scale=0.001),
            rate_limits=RateLimits(enabled=False),
        )
        self.server = SimServer(Simulator(config), load_spec_check(OPENAPI))
        self.server.start()
        self.url = self.server.url
        self.admin = SimAdmin(self.url, CLI_TOKEN)
        self._kept: list[str] = []
        self.key = self.dir / "id_ed25519"
        self.key.write_bytes(
            Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.OpenSSH,
                serialization.NoEncryption(),
            )
        )
        self.env: dict[str, str | None] = {
            "HOME": str(self.dir),
            "SWARMBOOT_API_URL": self.url,
            "SWARMBOOT_SIM_TOKEN": CLI_TOKEN,
            "SWARMBOOT_SSH_KEY": str(self.key),
            "SWARMBOOT_POLL_INTERVAL": "0.05",
            "LINODE_TOKEN": None,
            "LINODE_CLI_TOKEN": None,
            "SWARMBOOT_DEBUG": None,
            "SWARMBOOT_ROOT_PASSWORD": None,
        }

    def __enter__(self) -> CliWorld:
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def invoke(self, args: list[str], env: dict[str, str | None] | None = None) -> Ran:
        from swarmboot.cli import app

        result = CliRunner(env={**self.env, **(env or {})}).invoke(app, args)
        escaped = ""
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            escaped = "".join(traceback.format_exception(result.exception))
        return Ran(result.exit_code, result.output, escaped)

    def last_seq(self) -> int:
        found = self.admin.requests()
        return found[-1]["seq"] if found else 0

    def writes_since(self, seq: int) -> list[str]:
        """The requests other than reads that reached the simulator after `seq`."""
        return [
            f"{r['method']} {r['route']} -> {r['status']}"
            for r in self.admin.requests(since=seq)
            if r["method"] != "GET"
        ]

    def reset(self) -> None:
        """Empty the simulator (its request log and violations too: those are kept)."""
        self._kept += self.server.violations
        self.admin.reset()

    def violations(self) -> list[str]:
        """Every exchange that broke Linode's OpenAPI spec so far."""
        return self._kept + list(self.server.violations)
