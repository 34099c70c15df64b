"""`swarmboot sim`: a local Linode API to try swarmboot without an account (and to test it)."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from swarmboot.cli._common import Ctx, command, state_of
from swarmboot.errors import SwarmbootError
from swarmboot.files import FileTooLarge, NotAFile, read_capped

TOKEN_VARIABLES = ("SWARMBOOT_SIM_TOKEN", "LINODE_TOKEN", "LINODE_CLI_TOKEN")


def _token() -> str:
    for name in TOKEN_VARIABLES:
        value = os.environ.get(name)
        if value:
            return value
    raise SwarmbootError(
        "the simulator needs the token its clients will send",
        hint=f"set one of {', '.join(TOKEN_VARIABLES)} (any value; never on the command line)",
    )


def _json_file(path: Path, what: str) -> object:
    """A small JSON file's content; SwarmbootError naming the file and what is wrong."""
    try:
        return json.loads(read_capped(path, 1024 * 1024).decode("utf-8"))
    except NotAFile as exc:
        raise SwarmbootError(f"{path}: it is {exc.kind}", hint=what) from None
    except FileTooLarge:
        raise SwarmbootError(f"{path}: larger than 1 MiB", hint=what) from None
    except UnicodeDecodeError as exc:
        raise SwarmbootError(f"{path}: not UTF-8 text (byte {exc.start})", hint=what) from None
    except json.JSONDecodeError as exc:
        raise SwarmbootError(
            f"{path}: not JSON ({exc.msg} at line {exc.lineno})", hint=what
        ) from None


def _ranges(values: list[str], option: str) -> dict[str, str]:
    found = {}
    for value in values:
        region, _, cidr = value.partition("=")
        if not region or not cidr:
            raise typer.BadParameter(f"{value!r}: write it as REGION=CIDR", param_hint=option)
        found[region] = cidr
    return found


def _withheld(values: list[str]) -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for value in values:
        what, _, capability = value.partition("=")
        if not what or not capability:
            raise typer.BadParameter(
                f"{value!r}: write it as REGION=CAPABILITY or IMAGE=CAPABILITY "
                "(e.g. gb-lon=Metadata, linode/debian12=cloud-init)",
                param_hint="--withhold",
            )
        found[what] = (*found.get(what, ()), capability)
    return found


@command
def sim_cmd(
    ctx: Ctx,
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1 (0: any free port).")] = 8765,
    state: Annotated[
        Path | None,
        typer.Option(
            "--state",
            metavar="FILE",
            dir_okay=False,
            help="Keep the account in this JSON file, so it survives restarts.",
        ),
    ] = None,
    time_scale: Annotated[
        float,
        typer.Option(
            "--time-scale",
            min=0.0,
            help="Multiply real Linode timings (provision 35 s, boot 20 s, ...) by this.",
        ),
    ] = 1.0,
    public_range: Annotated[
        list[str],
        typer.Option(
            "--public-range",
            metavar="REGION=CIDR",
            help="Public IPv4 range of a region (repeatable). Default: /26 slices of "
            "198.51.100.0/24 for eu-central, gb-lon, us-east and us-ord.",
        ),
    ] = [],  # noqa: B006
    private_range: Annotated[
        list[str],
        typer.Option(
            "--private-range",
            metavar="REGION=CIDR",
            help="Private IPv4 range of a region (repeatable). Default: a /24 of "
            "192.168.128.0/17 per region.",
        ),
    ] = [],  # noqa: B006
    withhold: Annotated[
        list[str],
        typer.Option(
            "--withhold",
            metavar="ID=CAPABILITY",
            help="Leave a capability out of a region's or image's catalogue entry "
            "(repeatable), as where Linode does not offer it: gb-lon=Metadata, "
            "linode/debian12=cloud-init.",
        ),
    ] = [],  # noqa: B006
    lab: Annotated[
        bool,
        typer.Option(
            "--lab",
            help="Run every Linode as a real node on this machine (as root; see docs/lab.md).",
        ),
    ] = False,
    backend: Annotated[
        str,
        typer.Option(
            metavar="NAME",
            help="Where instances run: 'records' (nowhere), or package.module:factory.",
        ),
    ] = "records",
    faults: Annotated[
        Path | None,
        typer.Option(
            "--faults",
            metavar="FILE",
            exists=True,
            dir_okay=False,
            help="JSON fault settings (error_rate, drop_rate, lost_create_rate, seed, ...).",
        ),
    ] = None,
    idle_timeout: Annotated[
        float,
        typer.Option(
            "--idle-timeout",
            metavar="SECONDS",
            help="Close a connection idle (between requests, or within one) this long.",
        ),
    ] = 60.0,
    no_rate_limits: Annotated[
        bool, typer.Option("--no-rate-limits", help="Serve without Linode's rate limits.")
    ] = False,
    validate_spec: Annotated[
        Path | None,
        typer.Option(
            "--validate-spec",
            metavar="FILE",
            exists=True,
            dir_okay=False,
            help="Check all traffic against this OpenAPI spec (needs openapi-core).",
        ),
    ] = None,
) -> None:
    """Serve a simulated Linode API v4 at http://127.0.0.1:PORT/v4 until interrupted."""
    from pydantic import ValidationError

    from swarmboot.sim.config import DEFAULT_PUBLIC_RANGES, SimConfig
    from swarmboot.sim.engine import Simulator, StateFileError
    from swarmboot.sim.faults import FaultConfig
    from swarmboot.sim.ratelimit import RateLimits
    from swarmboot.sim.server import SimServer

    reporter = state_of(ctx).reporter
    if lab:
        if state is not None:
            raise SwarmbootError(
                "--state cannot be used with --lab: the lab's nodes do not outlive the simulator",
                hint="drop --state (a lab starts empty), or drop --lab",
            )
        backend = "swarmboot.lab.backend:LabBackend"
    try:
        fault_config = FaultConfig.model_validate(
            _json_file(faults, "--faults takes a JSON object of fault settings") if faults else {}
        )
        config = SimConfig(
            port=port,
            token=_token(),
            state_file=state,
            backend=backend,
            timings={"scale": time_scale},
            faults=fault_config,
            rate_limits=RateLimits(enabled=not no_rate_limits),
            public_ranges={**DEFAULT_PUBLIC_RANGES, **_ranges(public_range, "--public-range")},
            private_ranges=_ranges(private_range, "--private-range"),
            validate_spec=validate_spec,
            withheld=_withheld(withhold),
            idle_timeout=idle_timeout,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        reason = str(first["msg"]).removeprefix("Value error, ")
        raise SwarmbootError(f"simulator settings: {where}: {reason}") from None
    spec_check = None
    if validate_spec is not None:
        from swarmboot.sim.speccheck import SpecCheckError, load_spec_check

        try:
            spec_check = load_spec_check(validate_spec)
        except SpecCheckError as exc:
            raise SwarmbootError(
                str(exc), hint="--validate-spec takes Linode's OpenAPI spec (.json or .json.gz)"
            ) from None
    try:
        server = SimServer(Simulator(config), spec_check)
    except StateFileError as exc:
        raise SwarmbootError(
            str(exc),
            hint="give --state a file the simulator wrote, or a path that does not exist yet "
            "(it starts empty and writes it)",
        ) from None
    except ValueError as exc:  # a backend that cannot be loaded
        raise SwarmbootError(str(exc), hint="name it as package.module:factory") from None
    except OSError as exc:
        raise SwarmbootError(
            f"cannot listen on 127.0.0.1:{port}: {exc.strerror}", hint="choose another --port"
        ) from None

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    typer.echo(server.url)
    reporter.ok(
        f"Linode API simulator at {server.url} ({backend} backend, time scale "
        f"{time_scale:g}{', state in ' + str(state) if state else ''})"
    )
    reporter.info("Point swarmboot at it with --api-url or SWARMBOOT_API_URL; Ctrl-C stops it.")
    stop.wait()
    server.stop()
    reporter.ok("Simulator stopped" + (f"; state saved in {state}" if state else ""))
