"""Unpack the official clients' integration suites into .cache/fidelity/, and make the
venv they run in. Nothing of the suites enters the project: they are read from the
sources given here and kept under .cache/ (ignored by git).

    python -m tests.fidelity.prepare --api4 linode_api4-5.48.0.tar.gz \\
        --cli /work/.mirror/linode+linode-cli/repo [--cli-ref v5.68.0]

--api4 is linode_api4's sdist from PyPI (it carries test/integration/):
    pip download --no-deps --no-binary :all: linode_api4==5.48.0 -d DIR
--cli is linode-cli's repository (a bare or normal git dir, read at --cli-ref) or a
tarball of it (GitHub's source archive of a tag): its sdist on PyPI has no tests.

The venv (.cache/fidelity/venv) sees the project's venv (linode_api4, pytest, swarmboot)
through a .pth file and adds what the suites need beyond it, installed from the package
registry here, never at run time: httpretty and polling, which they import, and the
linode-cli release of the suite's own tag (--cli-version, by default the tag's number), so
that each suite drives the client it was written for. The project's venv keeps the newer
linode-cli its own tests use; the venv's one comes first on the suites' PATH and path.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "fidelity"
API4_DIR = CACHE / "linode_api4"
CLI_DIR = CACHE / "linode-cli"
VENV = CACHE / "venv"
JS_DIR = CACHE / "js"
JS_PACKAGE = JS_DIR / "node_modules" / "@linode" / "api-v4"
DEFAULT_JS = "0.158.0"  # @linode/api-v4, the newest on npm when this was written
SOURCES = CACHE / "sources.json"
# What the suites import that the project's venv lacks (pytest-rerunfailures is left out
# on purpose: a rerun would hide a failure the simulator caused).
EXTRA_DEPS = ("httpretty==1.1.4", "polling==0.3.2")
DEFAULT_CLI_REF = "v5.68.0"  # the newest tag in linode-cli's repository (5.69.0 has none)
VERSION = re.compile(r"(\d+\.\d+\.\d+)")


def cli_version(source: Path, ref: str) -> str:
    """The linode-cli release whose suite this is: the tag's number (v5.68.0), or the
    number in a tarball's name (linode-cli-5.68.0.tar.gz)."""
    named = ref if source.is_dir() else source.name
    found = VERSION.search(named)
    if not found:
        raise SystemExit(
            f"Error: --cli-version: no release number in {named!r}; name the linode-cli"
            " release the suite belongs to, e.g. --cli-version 5.68.0"
        )
    return found.group(1)


def _extract(tar: tarfile.TarFile, dest: Path, keep: str) -> None:
    """Extract the members under `keep` (after the archive's top folder, if any) to dest."""
    dest.mkdir(parents=True)
    for member in tar.getmembers():
        parts = Path(member.name).parts
        if parts and parts[0] not in (keep.split("/")[0],):
            parts = parts[1:]  # the archive's top folder (name-version/)
        rel = Path(*parts) if parts else None
        if rel is None or not str(rel).startswith(keep):
            continue
        if not (member.isfile() or member.isdir()):
            continue
        member.name = str(rel)
        tar.extract(member, dest, filter="data")


def unpack_api4(sdist: Path) -> str:
    shutil.rmtree(API4_DIR, ignore_errors=True)
    with tarfile.open(sdist) as tar:
        _extract(tar, API4_DIR, "test")
        top = tar.getmembers()[0].name.split("/")[0]
    # Its pytest settings (python_files = *_test.py too) and markers, from its pyproject.
    (API4_DIR / "pytest.ini").write_text(
        "[pytest]\npython_files = *_test.py test_*.py\n"
        "markers =\n    smoke: smoke test\n    flaky: rerun\n"
    )
    return top


def unpack_cli(source: Path, ref: str) -> str:
    shutil.rmtree(CLI_DIR, ignore_errors=True)
    if source.is_dir():
        git = ["git", f"--git-dir={source / '.git' if (source / '.git').exists() else source}"]
        commit = subprocess.run(
            [*git, "rev-parse", f"{ref}^{{commit}}"], capture_output=True, text=True, check=True
        ).stdout.strip()
        data = subprocess.run(
            [*git, "archive", "--format=tar", commit, "tests"], capture_output=True, check=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            _extract(tar, CLI_DIR, "tests")
        described = f"{source} at {ref} ({commit})"
    else:
        with tarfile.open(source) as tar:
            _extract(tar, CLI_DIR, "tests")
        described = str(source)
    (CLI_DIR / "pytest.ini").write_text("[pytest]\nmarkers =\n    smoke: smoke test\n")
    return described


def make_venv(cli: str) -> None:
    venv = VENV.resolve()  # its scripts' #! lines name the real path, not a link's
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pyver = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = venv / "lib" / pyver / "site-packages"
    # The project's venv (linode_api4, pytest, swarmboot) behind the venv's own.
    (site / "swarmboot-project.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            *EXTRA_DEPS,
            # Its dependencies are the project's (the same as the newer one's); a new one
            # would be found missing by the run's first command.
            f"linode-cli=={cli}",
        ],
        check=True,
    )


def install_js(version: str) -> str:
    """Linode's JavaScript client from npm's registry into .cache/fidelity/js, for the
    project's calls (tests/fidelity/js/calls.mjs); nothing when npm is absent."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        print("@linode/api-v4: skipped, no node and npm here", file=sys.stderr)
        return ""
    shutil.rmtree(JS_DIR, ignore_errors=True)
    JS_DIR.mkdir(parents=True)
    (JS_DIR / "package.json").write_text('{"private": true}\n')
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--silent", f"@linode/api-v4@{version}"],
        cwd=JS_DIR,
        check=True,
    )
    return version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api4", type=Path, required=True, help="linode_api4's sdist")
    parser.add_argument("--cli", type=Path, required=True, help="linode-cli's git dir or tarball")
    parser.add_argument("--cli-ref", default=DEFAULT_CLI_REF, help="tag or commit (git dir)")
    parser.add_argument(
        "--cli-version", help="the linode-cli release to run the suite with (default: the ref's)"
    )
    parser.add_argument("--js", default=DEFAULT_JS, help="@linode/api-v4's version ('' for none)")
    parser.add_argument("--no-venv", action="store_true", help="leave the venv as it is")
    args = parser.parse_args(argv)
    version = args.cli_version or cli_version(args.cli, args.cli_ref)
    CACHE.mkdir(parents=True, exist_ok=True)
    api4 = unpack_api4(args.api4)
    cli = unpack_cli(args.cli, args.cli_ref)
    if not args.no_venv:
        make_venv(version)
    js = install_js(args.js) if args.js else ""
    sources = {"linode_api4": api4, "linode-cli": cli, "linode-cli release": version}
    if js:
        sources["@linode/api-v4"] = js
    SOURCES.write_text(json.dumps(sources, indent=1) + "\n")
    print(f"linode_api4: {api4} -> {API4_DIR}")
    print(f"linode-cli: {cli} -> {CLI_DIR}, run with linode-cli {version}")
    print(f"venv: {VENV}")
    if js:
        print(f"@linode/api-v4: {js} -> {JS_PACKAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
