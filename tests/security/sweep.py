"""The security sweep: hostile inputs against swarmboot, category by category, each case a row
of data in its category's module, each category one runner.

    .venv/bin/python -m tests.security.sweep      (make security)

prints one row per category (tried, refused properly, accepted as valid, NOT refused, seconds),
then every value accepted as valid with why it is harmless, then every case NOT refused with
what happened; it exits 1 if any case was not refused. tests/security/test_sweep.py runs the
same sweep and fails naming each case not refused.

The requests to the simulator wait out its idle timeout (60 s) for their idle connections, so
that category runs in a thread of its own beside the others (it only talks over sockets to a
simulator process of its own).
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable

from . import cloud_trust, command_lines, host_keys, server_cases, server_requests, spec_values
from .common import NOT_REFUSED, REFUSED, VALID, CategoryResult, CliWorld, Outcome

__all__ = ["case_keys", "report", "run_sweep"]

# In the order the table shows them.
ORDER = (spec_values, command_lines, server_requests, host_keys, cloud_trust)


def case_keys() -> list[str]:
    """Every case's `category/id`, known before anything runs."""
    ids = {
        spec_values: [c.id for c in spec_values.CASES],
        command_lines: [c.id for c in command_lines.CASES],
        server_requests: server_cases.case_ids(),
        host_keys: [c.id for c in host_keys.CASES],
        cloud_trust: [c.id for c in cloud_trust.CASES],
    }
    return [f"{m.CATEGORY}/{i}" for m in ORDER for i in ids[m]]


def _timed(module, runner: Callable[[], list[Outcome]]) -> CategoryResult:
    result = CategoryResult(module.CATEGORY, module.TITLE)
    started = time.monotonic()
    try:
        result.outcomes = runner()
    except Exception:  # the runner itself broke: said as a case, not hidden
        result.outcomes.append(
            Outcome(
                module.CATEGORY,
                "runner",
                "the category's runner",
                NOT_REFUSED,
                traceback.format_exc(),
            )
        )
    result.seconds = time.monotonic() - started
    return result


def _with_world(world: CliWorld, module) -> CategoryResult:
    before = len(world.violations())
    result = _timed(module, lambda: module.run(world))
    broken = world.violations()[before:]
    if broken:  # swarmboot sent, or the simulator answered, what Linode's spec does not allow
        result.outcomes.append(
            Outcome(
                module.CATEGORY,
                "openapi",
                "exchanges against Linode's OpenAPI spec",
                NOT_REFUSED,
                "\n".join(broken),
            )
        )
    return result


def run_sweep() -> list[CategoryResult]:
    results: dict[str, CategoryResult] = {}
    server = threading.Thread(
        target=lambda: results.__setitem__("server", _timed(server_requests, server_requests.run)),
        name="sweep-server",
        daemon=True,
    )
    server.start()
    with CliWorld() as world:
        for module in (spec_values, command_lines):
            results[module.CATEGORY] = _with_world(world, module)
        skip = host_keys.skip_reason()
        if skip:
            results["hostkeys"] = CategoryResult(host_keys.CATEGORY, host_keys.TITLE, skipped=skip)
        else:
            results["hostkeys"] = _timed(host_keys, host_keys.run)
        results["trust"] = _with_world(world, cloud_trust)
    server.join()
    return [results[m.CATEGORY] for m in ORDER]


def report(results: list[CategoryResult], seconds: float) -> str:
    rows = [
        f"{'category':<46} {'tried':>5} {'refused':>8} {'accepted (valid)':>17} "
        f"{'NOT refused':>12} {'seconds':>8}"
    ]
    for r in results:
        if r.skipped:
            rows.append(f"{r.title:<46} skipped: {r.skipped}")
            continue
        rows.append(
            f"{r.title:<46} {len(r.outcomes):>5} {r.count(REFUSED):>8} {r.count(VALID):>17} "
            f"{r.count(NOT_REFUSED):>12} {r.seconds:>8.1f}"
        )
    every = [o for r in results for o in r.outcomes]
    rows.append(
        f"{'all':<46} {len(every):>5} {sum(o.verdict == REFUSED for o in every):>8} "
        f"{sum(o.verdict == VALID for o in every):>17} "
        f"{sum(o.verdict == NOT_REFUSED for o in every):>12} {seconds:>8.1f}"
    )
    valid = [o for o in every if o.verdict == VALID]
    rows += ["", f"Accepted as valid ({len(valid)}):"]
    rows += [f"  {o.key}: {o.what}: {o.detail}" for o in valid]
    bad = [o for o in every if o.verdict == NOT_REFUSED]
    rows += ["", f"NOT refused ({len(bad)}):"]
    for o in bad:
        rows.append(f"  {o.key}: {o.what}")
        rows += [f"      {line}" for line in o.detail.splitlines()]
    return "\n".join(rows) + "\n"


def main() -> int:
    started = time.monotonic()
    results = run_sweep()
    sys.stdout.write(report(results, time.monotonic() - started))
    return 1 if any(o.verdict == NOT_REFUSED for r in results for o in r.outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
