from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO


def _shellcheck() -> str:
    found = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which(
        "shellcheck"
    )
    assert found, "shellcheck is missing: install the dev extra (pip install -e '.[dev]')"
    return found


@pytest.mark.parametrize("name", ["debian12-swarm-node.sh", "debian13-swarm-node.sh"])
def test_rendered_script_has_no_shellcheck_findings(rendered, name, tmp_path):
    path = tmp_path / name
    path.write_text(rendered[name].text)
    result = subprocess.run(
        [_shellcheck(), "--severity=style", "--format=gcc", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_test_and_ci_scripts_have_no_shellcheck_findings():
    scripts = [
        REPO / ".ci/run",
        REPO / "tests/debian/enter-root.sh",
        REPO / "tests/debian/systemctl-shim",
    ]
    result = subprocess.run(
        [_shellcheck(), "--severity=style", *map(str, scripts)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout
