"""The fidelity run's own parts (tests/fidelity/), which need none of the clients' suites:
the written scope is consistent, the linode-cli release is read from the suite's source,
the public-IP plugin answers without the network, and the table adds up."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.fidelity import prepare, run
from tests.fidelity.scope import SUITES

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.name)
def test_the_scope_names_each_file_once_and_deselects_only_from_files_it_runs(suite):
    assert not set(suite.in_scope) & set(suite.out_files)
    assert len(set(suite.in_scope)) == len(suite.in_scope)
    for path in [*suite.in_scope, *suite.out_files]:
        assert path.startswith(suite.root + "/"), path
    for node, why in suite.out_tests.items():
        assert node.split("::", 1)[0] in suite.in_scope, node
        assert why.strip(), node
    assert all(why.strip() for why in suite.out_files.values())


@pytest.mark.parametrize(
    ("source", "ref", "version"),
    [
        ("/work/linode-cli.git", "v5.68.0", "5.68.0"),
        ("linode-cli-5.67.0.tar.gz", "ignored", "5.67.0"),
    ],
)
def test_the_linode_cli_release_comes_from_the_suites_tag_or_tarball(
    tmp_path, source, ref, version
):
    path = tmp_path / Path(source).name
    if source.endswith(".git"):
        path.mkdir()
    assert prepare.cli_version(path, ref) == version


def test_a_source_without_a_release_number_names_the_option(tmp_path):
    with pytest.raises(SystemExit) as stopped:
        prepare.cli_version(tmp_path, "main")
    assert str(stopped.value).startswith("Error: --cli-version: no release number in 'main'")


def test_the_plugin_answers_the_public_ip_lookup_and_nothing_else(tmp_path):
    (tmp_path / "test_lookup.py").write_text(
        textwrap.dedent(
            """
            import requests

            def test_lookup():
                for host in ("api.ipify.org", "api64.ipify.org"):
                    answer = requests.get(f"https://{host}?format=json", timeout=1)
                    assert answer.json() == {"ip": "203.0.113.10"}

            def test_other_hosts_go_out():
                try:
                    requests.get("http://127.0.0.1:9/", timeout=1)
                except requests.ConnectionError:
                    return
                raise AssertionError("the plugin answered another host")
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "fidelity_ipify", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO / "tests" / "fidelity" / "plugin"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def test_the_table_totals_the_rows_and_counts_failures_against_the_scope():
    rows = [
        run.Row("linode_api4", "a.py", passed=3, failed=1, out=2),
        run.Row("linode-cli", "b.py", passed=5, errored=1, skipped=2),
        run.Row("linode-cli", "c.py", out=7, note="out: Object Storage"),
    ]
    text = run.table(rows)
    assert "| linode-cli | c.py (out: Object Storage) | 0 | 0 | 0 | 0 | 7 |" in text
    assert "| total |  | 8 | 1 | 1 | 2 | 9 |" in text
    assert text.endswith("in scope and run: 10; passed 8 (80%)")


@pytest.mark.parametrize(
    ("report", "line"),
    [
        ("x\nE   AssertionError: assert 1 == 2\nE   more", "AssertionError: assert 1 == 2"),
        (
            "E   RuntimeError: Command failed\nE   Stderr: Request failed: 400",
            "RuntimeError: Request failed: 400",
        ),
        ("collected 0 items\nno tests ran", "no tests ran"),
    ],
)
def test_a_failure_is_told_in_its_first_line(report, line):
    assert run.first_line(report) == line
