"""make test's two tiers (tests/tiers.py): each test runs in exactly one, their lines are
shown behind the tier's name, the exit code is the failing tier's, and an interrupt ends
both tiers' processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests import tiers

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("codes", "code"),
    [
        ([0, 0], 0),
        ([1, 0], 1),
        ([0, 1], 1),
        ([2, 1], 2),
        ([5, 0], 0),  # paths given select the fast tier only
        ([0, 5], 0),
        ([5, 1], 1),
        ([5, 5], 5),
    ],
)
def test_the_run_exits_with_the_failing_tiers_code(codes, code):
    assert tiers.outcome(codes) == code


def _suite(tmp_path: Path, body: str) -> Path:
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nmarkers =\n    lab: l\n    debian: d\n    vm: v\n"
    )
    (tmp_path / "test_tiny.py").write_text(textwrap.dedent(body))
    return tmp_path


def _run(cwd: Path, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.tiers", "-q", "-p", "no:cacheprovider", str(cwd)],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def test_each_test_runs_in_one_tier_and_a_failure_fails_the_run(tmp_path):
    suite = _suite(
        tmp_path,
        """
        import os, pytest

        @pytest.mark.lab
        def test_machine():
            print(os.getpid())

        @pytest.mark.debian
        def test_debian():
            pass

        def test_fast_fails():
            assert False, "the fast tier's failure"
        """,
    )
    proc = _run(suite)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, out
    lines = out.splitlines()
    assert any(x.startswith("[machine] ") and "2 passed, 1 deselected" in x for x in lines), out
    assert any(x.startswith("[fast] ") and "1 failed, 2 deselected" in x for x in lines), out
    assert any(x.startswith("machine tier: exit 0 in ") for x in lines), out
    assert any(x.startswith("fast tier: exit 1 in ") for x in lines), out


def test_an_interrupt_ends_both_tiers_and_their_processes(tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    suite = _suite(
        tmp_path,
        f"""
        import os, time, pytest

        def _wait(name):
            open(os.path.join({str(pids)!r}, name), "w").write(str(os.getpid()))
            time.sleep(120)

        @pytest.mark.lab
        def test_machine():
            _wait("machine")

        def test_fast():
            _wait("fast")
        """,
    )
    proc = _run(suite)
    started: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 60
        while len(list(pids.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        started = {p.name: int(p.read_text()) for p in pids.iterdir()}
        assert set(started) == {"machine", "fast"}
        proc.send_signal(signal.SIGTERM)
        proc.wait(tiers.GRACE + 60)  # a bound, not a measure: the tiers end on SIGINT
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            for pid in started.values():  # the tiers this test started, should the run not end them
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
    assert proc.returncode == 128 + signal.SIGTERM
    for name, pid in started.items():
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(pid), f"the {name} tier's pytest ({pid}) outlived the run"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child of ours reaped by nobody yet shows as a zombie: gone all the same.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ", 1)[1][0] != "Z"
