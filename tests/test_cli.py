from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from swarmboot import __version__
from swarmboot.cli import app

from .conftest import REPO, STACKSCRIPTS, TEMPLATES

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def test_help_lists_the_commands():
    result = run("--help")
    assert result.exit_code == 0
    for command in ("render", "stackscript"):
        assert command in result.output


def test_no_arguments_shows_help_and_usage_exit_code():
    result = run()
    assert result.exit_code == 2
    assert "Usage" in result.output


def test_version():
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout == f"swarmboot {__version__}\n"


def test_render_check_passes_on_the_committed_scripts():
    result = run("render", "--check")
    assert result.exit_code == 0, result.output
    assert "2 StackScripts and 2 cloud-configs in" in result.stderr
    assert "match their templates" in result.stderr


def test_render_writes_then_reports_unchanged(tmp_path):
    first = run("render", "--out", str(tmp_path), "--json")
    assert first.exit_code == 0, first.output
    assert [r["written"] for r in json.loads(first.stdout)] == [True] * 4
    second = run("render", "--out", str(tmp_path))
    assert second.exit_code == 0
    assert second.stdout.splitlines() == [
        f"unchanged\t{tmp_path / 'debian12-swarm-node.sh'}",
        f"unchanged\t{tmp_path / 'debian13-swarm-node.sh'}",
        f"unchanged\t{tmp_path / 'debian12-swarm-node.cloud-config.yaml'}",
        f"unchanged\t{tmp_path / 'debian13-swarm-node.cloud-config.yaml'}",
    ]
    assert "(0 changed)" in second.stderr
    assert (tmp_path / "debian12-swarm-node.sh").read_text() == (
        STACKSCRIPTS / "debian12-swarm-node.sh"
    ).read_text()


def test_render_check_names_the_stale_file_and_exits_3(tmp_path):
    shutil.copytree(STACKSCRIPTS, tmp_path, dirs_exist_ok=True)
    stale = tmp_path / "debian13-swarm-node.sh"
    stale.write_text(stale.read_text().replace("GRUB_TIMEOUT=5", "GRUB_TIMEOUT=0"))
    result = run("render", "--check", "--out", str(tmp_path))
    assert result.exit_code == 3
    assert result.stderr == (
        f"Error: {stale} differs from what its template renders; run 'swarmboot render' "
        "(or 'make stackscripts') and commit\n"
    )
    assert stale.read_text().count("GRUB_TIMEOUT=0") == 1  # --check changes nothing


def test_render_check_json_lists_the_drift(tmp_path):
    result = run("render", "--check", "--json", "--out", str(tmp_path))
    assert result.exit_code == 3
    assert json.loads(result.stdout) == {
        "fresh": False,
        "drift": [
            {"file": str(tmp_path / "debian12-swarm-node.sh"), "kind": "missing"},
            {"file": str(tmp_path / "debian13-swarm-node.sh"), "kind": "missing"},
            {"file": str(tmp_path / "debian12-swarm-node.cloud-config.yaml"), "kind": "missing"},
            {"file": str(tmp_path / "debian13-swarm-node.cloud-config.yaml"), "kind": "missing"},
        ],
    }


def test_a_broken_template_folder_is_one_error_line(tmp_path):
    result = run("render", "--templates", str(tmp_path), "--out", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {tmp_path / 'catalog.toml'} not found; point --templates "
        "at a folder with a catalog.toml\n"
    )


def test_errors_show_a_traceback_only_when_asked(tmp_path, monkeypatch):
    quiet = run("render", "--templates", str(tmp_path))
    assert "Traceback" not in quiet.output
    verbose = run("-v", "render", "--templates", str(tmp_path))
    assert verbose.exit_code == 1 and "Traceback" in verbose.stderr
    monkeypatch.setenv("SWARMBOOT_DEBUG", "1")
    assert "Traceback" in run("render", "--templates", str(tmp_path)).stderr


def test_quiet_keeps_results_and_drops_progress(tmp_path):
    result = run("-q", "render", "--out", str(tmp_path))
    assert result.exit_code == 0
    assert result.stderr == ""
    assert len(result.stdout.splitlines()) == 4


def test_stackscript_udfs_lists_the_fields():
    result = run("stackscript", "udfs", str(STACKSCRIPTS / "debian12-swarm-node.sh"))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split("\t")[:3] == ["hostname", "text", "required"]
    assert lines[2].split("\t")[:3] == [
        "swarm_role",
        "one of manager, worker, lb",
        "default 'worker'",
    ]
    assert "11 UDFs, 2 required" in result.stderr


def test_stackscript_udfs_json_matches_the_api_shape():
    result = run("stackscript", "udfs", "--json", str(STACKSCRIPTS / "debian13-swarm-node.sh"))
    fields = json.loads(result.stdout)
    assert fields[2] == {
        "name": "swarm_role",
        "label": "Swarm role of the node",
        "example": "",
        "default": "worker",
        "oneof": "manager,worker,lb",
    }


def test_stackscript_udfs_names_the_broken_line(tmp_path):
    script = tmp_path / "mine.sh"
    script.write_text('#!/bin/bash\n# <UDF name="a" label="A" />\n# <UDF name="b" />\n')
    result = run("stackscript", "udfs", str(script))
    assert result.exit_code == 1
    assert result.stderr == f"Error: {script}:3: UDF 'b' has no label\n"


def test_stackscript_udfs_missing_file_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("stackscript", "udfs", "nope.sh")
    assert result.exit_code == 2
    assert "does not exist" in result.output


@pytest.mark.parametrize(
    ("args", "takes"),
    [
        (("plan", "SPEC", "tok-3f9a"), "swarmboot plan takes SPEC"),
        (
            ("node", "rebuild", "SPEC", "LABEL", "x", "tok-3f9a"),
            "swarmboot node rebuild takes SPEC and LABEL",
        ),
        (("stackscript", "list", "tok-3f9a"), "swarmboot stackscript list takes no arguments"),
        (("plan", "SPEC", "--", "tok-3f9a"), "swarmboot plan takes SPEC"),
    ],
)
def test_an_unexpected_argument_is_not_repeated(args, takes):
    # The likeliest one is a token pasted after the command.
    result = run(*args)
    assert result.exit_code == 2
    assert "tok-3f9a" not in result.output
    command = takes.split(" takes ")[0]
    assert result.output == (
        f"Error: {takes} and was given more arguments, not repeated here (one may be a secret); "
        "remove them, and put a token in LINODE_TOKEN, never on the command line "
        f"(see {command} -h)\n"
    )


def test_console_script_runs_without_a_traceback(tmp_path):
    exe = Path(sys.executable).parent / "swarmboot"
    done = subprocess.run(
        [str(exe), "render", "--templates", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("Error: ") and "Traceback" not in done.stderr


@pytest.mark.parametrize("module_run", [True])
def test_module_entry_point(module_run):
    done = subprocess.run(
        [sys.executable, "-m", "swarmboot", "--version"], capture_output=True, text=True, check=True
    )
    assert done.stdout == f"swarmboot {__version__}\n"


def test_cli_reference_is_generated_from_help(tmp_path):
    typer_cli = Path(sys.executable).parent / "typer"
    out = tmp_path / "cli.md"
    subprocess.run(
        [
            str(typer_cli),
            "swarmboot.cli",
            "utils",
            "docs",
            "--name",
            "swarmboot",
            "--output",
            str(out),
        ],
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    committed = REPO / "docs" / "cli.md"
    assert committed.read_text() == out.read_text(), "docs/cli.md is stale: run 'make docs'"


def test_templates_folder_is_where_the_cli_looks():
    from swarmboot import paths

    assert paths.templates_dir() == TEMPLATES
    assert paths.stackscripts_dir() == STACKSCRIPTS
