"""make fidelity: the official clients' integration suites, unchanged, against a fresh
simulator; one row per file (passed, failed, errored, skipped by the suite, out of scope)
and the total. Fetches nothing: the suites and their venv come from
`python -m tests.fidelity.prepare` (see there), under .cache/fidelity/.

    python -m tests.fidelity.run [--suite linode_api4|linode-cli] [--only SUBSTRING]
        [--sim-src DIR] [--json FILE] [--failures]

--sim-src runs the simulator of another checkout (the "before" of a change).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from tests.fidelity.prepare import CACHE, JS_PACKAGE, VENV
from tests.fidelity.scope import SUITES, Suite

REPO = Path(__file__).resolve().parents[2]
TOKEN = "fidelity-token"
# Seconds each transition takes in the run: fast, but a reboot keeps its real length, since
# linode_api4's test_linode_reboot must see `rebooting` through a status the client caches
# for 15 s (linode_api4.objects.base.volatile_refresh_timeout) and polls every 3 s.
TIMINGS = {"scale": 1, "provision": 2, "boot": 1, "shutdown": 1, "reboot": 30, "rebuild": 2}
FILE_LIMIT = 1200  # seconds a file may take before it is stopped (counted as errored)
MISSING = """\
The suites are not unpacked under .cache/fidelity/ (make fidelity fetches nothing). Get them:
  1. linode_api4's sdist (it carries test/integration/):
       .venv/bin/pip download --no-deps --no-binary :all: linode_api4==5.48.0 -d /tmp/sdists
  2. linode-cli's repository (its sdist has no tests): a clone, or GitHub's source tarball
       git clone --bare https://github.com/linode/linode-cli /tmp/linode-cli.git
  3. .venv/bin/python -m tests.fidelity.prepare \\
       --api4 /tmp/sdists/linode_api4-5.48.0.tar.gz --cli /tmp/linode-cli.git
     (or: make fidelity-prepare API4=... CLI=...)"""


@dataclass
class Row:
    suite: str
    file: str
    passed: int = 0
    failed: int = 0
    errored: int = 0
    skipped: int = 0
    out: int = 0
    seconds: float = 0.0
    note: str = ""
    problems: list[tuple[str, str]] = field(default_factory=list)  # (test, first line)


def region_ranges() -> list[str]:
    """A public /24 for every region of the catalogue, as Linode's addresses are (the suites
    assert prefix 24), from 100.64.0.0/10: no one's public addresses, enough for a run."""
    from swarmboot.sim.catalog import REGIONS

    spare = ipaddress.IPv4Network("100.64.0.0/10").subnets(new_prefix=24)
    return [f"{r['id']}={next(spare)}" for r in REGIONS]


class Sim:
    def __init__(self, src: Path) -> None:
        args = [str(VENV / "bin" / "python"), "-m", "swarmboot", "sim", "--port", "0"]
        for value in region_ranges():
            args += ["--public-range", value]
        env = {**os.environ, "SWARMBOOT_SIM_TOKEN": TOKEN, "PYTHONPATH": str(src)}
        self.proc = subprocess.Popen(  # in `src`: `python -m` puts the cwd first on the path
            args, env=env, cwd=src, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http"):
            self.proc.kill()
            raise SystemExit(f"the simulator did not start (said {line!r})")
        self.url = line  # http://127.0.0.1:PORT/v4
        self._admin("PUT", "/_sim/timings", TIMINGS)

    def _admin(self, method: str, path: str, body: object = None) -> None:
        import requests

        requests.request(
            method,
            self.url.removesuffix("/v4") + path,
            json=body,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        ).raise_for_status()

    def reset(self) -> None:
        self._admin("POST", "/_sim/reset")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def suite_env(suite: Suite, sim: Sim, home: Path) -> dict[str, str]:
    netloc = sim.url.split("://", 1)[1].split("/", 1)[0]
    env = {
        "PATH": f"{VENV / 'bin'}:{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(home),
        "PYTHONPATH": str(REPO / "tests" / "fidelity" / "plugin"),
        "LANG": "C.UTF-8",
    }
    if suite.name == "linode_api4":
        # The suite's default base is /v4beta (its error tests name it); the simulator
        # serves both, as Linode does.
        env |= {"LINODE_TOKEN": TOKEN, "LINODE_API_URL": sim.url.removesuffix("/v4") + "/v4beta"}
    else:
        env |= {
            "LINODE_CLI_TOKEN": TOKEN,
            "LINODE_CLI_API_HOST": netloc,
            "LINODE_CLI_API_SCHEME": "http",
            "LINODE_CLI_API_VERSION": "v4",
        }
    return env


def collect(suite: Suite, files: list[str], sim: Sim) -> dict[str, list[str]]:
    """Node ids per file, as pytest collects them (no test runs; some modules ask the API
    at import)."""
    with tempfile.TemporaryDirectory() as home:
        done = subprocess.run(
            [
                str(VENV / "bin" / "python"),
                "-m",
                "pytest",
                "--collect-only",
                "-q",
                "-p",
                "no:cacheprovider",
                "--continue-on-collection-errors",
                *files,
            ],
            cwd=CACHE / suite.folder,
            capture_output=True,
            text=True,
            env=suite_env(suite, sim, Path(home)),
        )
    found: dict[str, list[str]] = {f: [] for f in files}
    for line in done.stdout.splitlines():
        path = line.split("::", 1)[0]
        if "::" in line and path in found:
            found[path].append(line.strip())
    return found


def first_line(text: str) -> str:
    """What went wrong, in a line: the error's first line, or what a failed linode-cli
    command wrote to stderr."""
    lines = [x.strip() for x in (text or "").splitlines() if x.strip()]
    errors = [x[1:].strip() for x in lines if x.startswith("E ")]
    if "Stderr:" in " ".join(errors):
        after = " ".join(errors).split("Stderr:", 1)[1].strip()
        return (errors[0].split(":", 1)[0] + ": " + after)[:200]
    if errors:
        return errors[0][:200]
    return (lines[-1] if lines else "")[:200]


def run_file(suite: Suite, path: str, sim: Sim, deselect: list[str]) -> Row:
    row = Row(suite.name, path.removeprefix(suite.root + "/"), out=len(deselect))
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.xml"
        home = Path(tmp) / "home"
        home.mkdir()
        args = [
            str(VENV / "bin" / "python"),
            "-m",
            "pytest",
            path,
            "-p",
            "fidelity_ipify",
            "-p",
            "no:cacheprovider",
            "-q",
            "--tb=short",
            f"--junitxml={report}",
        ]
        for node in deselect:
            args += ["--deselect", node]
        start = time.monotonic()
        proc = subprocess.Popen(
            args,
            cwd=CACHE / suite.folder,
            env=suite_env(suite, sim, home),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            proc.wait(FILE_LIMIT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            row.note = f"stopped after {FILE_LIMIT} s"
        row.seconds = time.monotonic() - start
        if not report.exists():
            row.errored = max(1, row.errored)
            row.note = row.note or f"pytest exited {proc.returncode} without a report"
            return row
        for case in ET.parse(report).getroot().iter("testcase"):
            name = case.get("name", "")
            kinds = {child.tag: child for child in case}
            if "error" in kinds:
                row.errored += 1
                e = kinds["error"]
                row.problems.append((name, first_line(e.text or e.get("message", ""))))
            elif "failure" in kinds:
                row.failed += 1
                f = kinds["failure"]
                row.problems.append((name, first_line(f.text or f.get("message", ""))))
            elif "skipped" in kinds:
                row.skipped += 1
            else:
                row.passed += 1
    return row


JS_SUITE = "@linode/api-v4"
JS_CALLS = REPO / "tests" / "fidelity" / "js" / "calls.mjs"


def run_js(sim: Sim) -> Row:
    """Linode's JavaScript client through the project's calls (tests/fidelity/js/calls.mjs,
    one JSON line per check): the package has no suite of its own to run."""
    row = Row(JS_SUITE, "calls.mjs (the project's checks)")
    start = time.monotonic()
    try:
        done = subprocess.run(
            ["node", str(JS_CALLS)],
            env={
                "PATH": "/usr/bin:/bin",
                "SIM_URL": sim.url,
                "LINODE_TOKEN": TOKEN,
                "API_V4": str(JS_PACKAGE),
            },
            capture_output=True,
            text=True,
            timeout=FILE_LIMIT,
        )
    except subprocess.TimeoutExpired:
        row.errored, row.note = 1, f"stopped after {FILE_LIMIT} s"
        return row
    row.seconds = time.monotonic() - start
    for line in done.stdout.splitlines():
        check = json.loads(line)
        if check["ok"]:
            row.passed += 1
        else:
            row.failed += 1
            row.problems.append((check["name"], check["error"]))
    if done.returncode or not (row.passed or row.failed):
        row.errored += 1
        row.problems.append(("calls.mjs", first_line(done.stderr) or f"exit {done.returncode}"))
    return row


def table(rows: list[Row]) -> str:
    head = ("suite", "file", "passed", "failed", "errored", "skipped", "out of scope")
    body = [
        (
            r.suite,
            r.file + (f" ({r.note})" if r.note else ""),
            r.passed,
            r.failed,
            r.errored,
            r.skipped,
            r.out,
        )
        for r in rows
    ]
    total = ("total", "", *(sum(r[i] for r in body) for i in range(2, 7)))
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in [*body, total]]
    in_scope = sum(r.passed + r.failed + r.errored for r in rows)
    passed = sum(r.passed for r in rows)
    pct = f"{100 * passed / in_scope:.0f}%" if in_scope else "-"
    lines.append(f"\nin scope and run: {in_scope}; passed {passed} ({pct})")
    return "\n".join(lines)


def clients() -> str:
    """The clients' releases the suites run with, as the suites' venv imports them."""
    probe = (
        "import importlib.metadata as m; "
        "print(*(f'{d} {m.version(d)}' for d in ('linode_api4', 'linode-cli')), sep=', ')"
    )
    return subprocess.run(
        [str(VENV / "bin" / "python"), "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()


def js_client() -> str:
    try:
        version = json.loads((JS_PACKAGE / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return ""
    return f", {JS_SUITE} {version}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=[*(s.name for s in SUITES), "@linode/api-v4"])
    parser.add_argument("--only", help="run only in-scope files whose path has this")
    parser.add_argument("--sim-src", type=Path, default=REPO, help="checkout to simulate")
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--failures", action="store_true", help="list each failure")
    args = parser.parse_args(argv)
    missing = [s.folder for s in SUITES if not (CACHE / s.folder / s.root).is_dir()]
    if missing or not (VENV / "bin" / "python").exists():
        print(f"Error: missing under {CACHE}: {', '.join(missing) or 'venv'}", file=sys.stderr)
        print(MISSING, file=sys.stderr)
        return 2
    rows: list[Row] = []
    sources = (
        json.loads((CACHE / "sources.json").read_text())
        if (CACHE / "sources.json").exists()
        else {}
    )
    suites = {k: v for k, v in sources.items() if k in ("linode_api4", "linode-cli")}
    print(f"suites: {', '.join(f'{k} {v}' for k, v in suites.items())}")
    print(f"clients: {clients()}{js_client()}", flush=True)
    sim = Sim(args.sim_src.resolve())
    try:
        for suite in SUITES:
            if args.suite and suite.name != args.suite:
                continue
            files = [f for f in suite.in_scope if not args.only or args.only in f]
            nodes = collect(suite, [*files, *([] if args.only else suite.out_files)], sim)
            for path in files:
                deselect = [n for n in nodes[path] if n in suite.out_tests]
                sim.reset()
                row = run_file(suite, path, sim, deselect)
                print(
                    f"  {suite.name} {row.file}: {row.passed} passed, {row.failed} failed, "
                    f"{row.errored} errored ({row.seconds:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
                rows.append(row)
            if not args.only:
                for path, why in suite.out_files.items():
                    rows.append(
                        Row(
                            suite.name,
                            path.removeprefix(suite.root + "/"),
                            out=len(nodes.get(path, [])),
                            note=f"out: {why}",
                        )
                    )
        if args.suite in (None, JS_SUITE) and not args.only:
            if JS_PACKAGE.is_dir():
                sim.reset()
                row = run_js(sim)
                print(
                    f"  {row.suite} {row.file}: {row.passed} passed, {row.failed} failed, "
                    f"{row.errored} errored ({row.seconds:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
                rows.append(row)
            else:
                print(f"{JS_SUITE}: not installed under {CACHE} (prepare --js)", file=sys.stderr)
    finally:
        sim.stop()
    print(table(rows))
    if args.failures:
        for r in rows:
            for name, why in r.problems:
                print(f"- {r.suite} {r.file}::{name}: {why}")
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in rows], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
