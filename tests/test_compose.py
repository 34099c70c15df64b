"""A Compose file made into the text `deploy` hands a manager (swarmboot.compose), as data.

Each folder of tests/compose_cases/ is a case: `input.yml` (the stack file, with any files it
names beside it), `env.json` (the environment; none: empty), `args.json` (stack, zones,
cluster, secret_versions, when not the defaults below), and either `expected.yml` (the text,
with the digest written <digest>) or `error.txt` (the error's line, then its hint).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmboot import compose_yaml
from swarmboot.compose import (
    Rendered,
    StackConfig,
    StackError,
    load_stack,
    render_stack,
    stack_name_ok,
)
from swarmboot.interpolation import TemplateProblem, escape, substitute

CASES_DIR = Path(__file__).parent / "compose_cases"
CASES = sorted(p for p in CASES_DIR.iterdir() if p.is_dir())
DEFAULTS = {
    "stack": "itframe",
    "zones": ["eu-central", "gb-lon"],
    "cluster": "itframe",
    "secret_versions": {},
}


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def render_case(case: Path) -> Rendered:
    """The case rendered as `deploy` would render it, the stack file named as the user would."""
    args = {**DEFAULTS, **_json(case / "args.json")}
    cwd = os.getcwd()
    os.chdir(case)  # the file is named relatively in messages, as a user names it
    try:
        doc = load_stack(Path("input.yml"))
    finally:
        os.chdir(cwd)
    return render_stack(
        doc,
        source="input.yml",
        stack=args["stack"],
        zones=tuple(args["zones"]),
        env=_json(case / "env.json"),
        base=case,
        secret_versions=args["secret_versions"],
        cluster=args["cluster"],
    )


def outcome(case: Path) -> tuple[str, str]:
    """("expected.yml", the text) or ("error.txt", its message and hint)."""
    try:
        r = render_case(case)
    except StackError as exc:
        return "error.txt", exc.message + "\n" + (f"{exc.hint}\n" if exc.hint else "")
    return "expected.yml", r.text.replace(r.digest, "<digest>")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Path) -> None:
    wanted = [n for n in ("expected.yml", "error.txt") if (case / n).exists()]
    assert len(wanted) == 1, f"{case.name} needs one of expected.yml and error.txt"
    kind, got = outcome(case)
    assert kind == wanted[0], got
    assert got == (case / kind).read_text()


# --- the two-zone application, whole -------------------------------------------------------


def test_two_zones_make_one_service_each():
    r = render_case(CASES_DIR / "per-zone-two-zones")
    assert r.services == ("itframe_app-eu-central", "itframe_app-gb-lon")
    services = compose_yaml.load(r.text)["services"]
    for zone in ("eu-central", "gb-lon"):
        app = services[f"app-{zone}"]
        assert app["image"] == "registry.example.com/app:2"
        assert app["environment"] == {"ZONE": zone, "GREETING": f"hello from {zone}"}
        assert app["deploy"]["placement"]["constraints"] == [
            "node.labels.role == worker",
            f"node.labels.zone=={zone}",
        ]
        assert app["deploy"]["labels"] == {
            "swarmboot.deploy": r.digest,
            "swarmboot.cluster": "itframe",
        }
        assert "x-swarmboot" not in app
    assert r.configs == () and r.secrets == ()


def test_configs_and_secrets_are_returned():
    r = render_case(CASES_DIR / "configs-from-files")
    assert [(c.key, c.name) for c in r.configs] == [
        ("nginx", "itframe_nginx-b28ddd1bc58c"),
        ("unused", "itframe_unused-2154afe8cfbf"),
    ]
    assert r.configs[0].content == (CASES_DIR / "configs-from-files/conf/nginx.conf").read_bytes()
    assert "content" not in repr(r.configs[0])
    r = render_case(CASES_DIR / "secrets-versioned")
    assert r.secrets == ("api_token", "by_hand", "db_password")


# --- determinism and the digest ------------------------------------------------------------


def _render(doc: dict, base: Path, env: dict | None = None, **kw) -> Rendered:
    args = {
        "source": "stack.yml",
        "stack": "itframe",
        "zones": ("eu-central", "gb-lon"),
        "env": env or {},
        "base": base,
        "secret_versions": {},
        "cluster": "itframe",
        **kw,
    }
    return render_stack(doc, **args)


def test_same_inputs_same_text_and_input_untouched():
    case = CASES_DIR / "top-level-x-dropped"
    doc = load_stack(case / "input.yml")
    before = copy.deepcopy(doc)
    env = {"TAG": "7", "OTHER": "x"}
    first = _render(doc, case, env)
    assert doc == before  # the aliases' shared mappings were not changed in place
    again = _render(copy.deepcopy(doc), case, dict(reversed(list(env.items()))))
    assert again == first
    assert again.text.encode() == first.text.encode()


def test_the_same_text_in_another_process():
    """No set or hash order leaks into the text (PYTHONHASHSEED differs per process)."""
    script = (
        "import sys; from pathlib import Path; from tests.test_compose import render_case; "
        "sys.stdout.write(render_case(Path(sys.argv[1])).text)"
    )
    for name in ("per-zone-two-zones", "configs-from-files", "env-file-inlined"):
        texts = {
            subprocess.run(
                [sys.executable, "-c", script, str(CASES_DIR / name)],
                env={**os.environ, "PYTHONHASHSEED": seed},
                cwd=CASES_DIR.parent.parent,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            for seed in ("1", "2", "3")
        }
        assert texts == {render_case(CASES_DIR / name).text}


def test_the_digest_follows_what_is_deployed(tmp_path):
    doc = {
        "services": {"app": {"image": "app:${TAG}", "configs": ["conf"], "secrets": ["pw"]}},
        "configs": {"conf": {"file": "app.conf"}},
        "secrets": {"pw": {"external": True}},
    }

    def render(tag: str = "1", version: str = "pw.v1", cluster: str = "itframe") -> Rendered:
        return _render(
            doc, tmp_path, {"TAG": tag}, secret_versions={"pw": version}, cluster=cluster
        )

    (tmp_path / "app.conf").write_text("one\n")
    first = render()
    assert render() == first
    assert render(tag="2").digest != first.digest  # a new image
    assert render(version="pw.v2").digest != first.digest  # a new secret version
    (tmp_path / "app.conf").write_text("two\n")  # a changed config file
    changed = render()
    assert changed.digest != first.digest
    assert changed.configs[0].name != first.configs[0].name
    # The cluster is a label beside the digest, not part of it.
    assert render(cluster="other").digest == changed.digest


# --- $ round trips -------------------------------------------------------------------------

_TEXT = st.text(alphabet=st.sampled_from("$${}:-?+_aZ9 \n.'\"#=é"), max_size=30)


def _through_a_manager(r: Rendered, service: str = "app") -> str:
    """What Docker on a manager gives the container for V: the text read as Go reads it,
    substituted with an environment that has nothing of the user's."""
    value = compose_yaml.load(r.text)["services"][service]["environment"]["V"]
    return substitute(value, lambda name: None)


@settings(max_examples=300, deadline=None)
@given(literal=_TEXT)
def test_a_literal_in_the_file_reaches_the_container(literal, tmp_path_factory):
    doc = {"services": {"app": {"image": "app:1", "environment": {"V": escape(literal)}}}}
    r = _render(doc, tmp_path_factory.getbasetemp())
    assert _through_a_manager(r) == literal


@settings(max_examples=300, deadline=None)
@given(value=_TEXT)
def test_a_value_from_the_environment_reaches_the_container(value, tmp_path_factory):
    doc = {"services": {"app": {"image": "app:1", "environment": {"V": "${X}"}}}}
    r = _render(doc, tmp_path_factory.getbasetemp(), {"X": value})
    assert _through_a_manager(r) == value


@settings(max_examples=500, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from("0123456789._-+:eExXoObB ynYNtf~#\n'\"$"), max_size=12)
)
def test_yaml_strings_come_back_strings(text):
    assert compose_yaml.load(compose_yaml.dump({"k": text})) == {"k": text}


# --- substitution, the forms one by one ----------------------------------------------------

ENV = {"A": "a", "E": ""}


@pytest.mark.parametrize(
    ("template", "result"),
    [
        ("$A${A}", "aa"),
        ("${U:-d}|${E:-d}|${A:-d}", "d|d|a"),
        ("${U-d}|${E-d}|${A-d}", "d||a"),
        ("${U:+x}|${E:+x}|${A:+x}", "||x"),
        ("${U+x}|${E+x}|${A+x}", "|x|x"),
        ("${E?m}|${A:?m}", "|a"),
        ("${U:-${A}${A}}", "aa"),
        ("${A:-${U}}", "a"),  # a default that is not used is not substituted
        ("${U:-{x}}", "{x}"),
        ("${U:-a}}", "a}"),
        ("$$A $${A} $$$$", "$A ${A} $$"),
        ("$A-b $A.b", "a-b a.b"),
        ("${U:-$$}", "$"),
    ],
)
def test_substitute(template, result):
    assert substitute(template, ENV.get) == result


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("${U}", "the variable U is not set"),
        ("$U", "the variable U is not set"),
        ("${U:?say why}", "the variable U is not set: say why"),
        ("${E:?}", "the variable E is empty"),
        ("${U?}", "the variable U is not set"),
        ("${A", "malformed ${...} in '${A'"),
        ("${A:-${B}", "malformed ${...} in '${A:-${B}'"),
        ("${A:x}", "malformed ${...} in '${A:x}'"),
        ("${1A}", "malformed ${...} in '${1A}'"),
        ("${ A}", "malformed ${...} in '${ A}'"),
        ("5$", "a $ that starts no variable in '5$'"),
        ("$1", "a $ that starts no variable in '$1'"),
        ("${U:-${V}}", "the variable V is not set"),
    ],
)
def test_substitute_refuses(template, problem):
    with pytest.raises(TemplateProblem) as info:
        substitute(template, ENV.get)
    assert info.value.problem == problem


# --- files: what a stack may read ----------------------------------------------------------


def test_a_link_out_of_the_folder_is_refused(tmp_path):
    stack = tmp_path / "stack"
    stack.mkdir()
    (tmp_path / "outside.env").write_text("SECRET=1\n")
    (stack / "app.env").symlink_to(tmp_path / "outside.env")
    (stack / "inner.env").write_text("A=1\n")
    (stack / "link.env").symlink_to(stack / "inner.env")
    doc = {"services": {"app": {"image": "app:1", "env_file": ["link.env"]}}}
    assert "A: '1'" in _render(doc, stack).text  # a link inside the folder is read
    doc = {"services": {"app": {"image": "app:1", "env_file": ["app.env"]}}}
    with pytest.raises(StackError) as info:
        _render(doc, stack)
    assert info.value.message == (
        "stack.yml: services.app.env_file[0]: app.env is a link out of the stack file's folder"
    )
    (stack / "proc.conf").symlink_to("/proc/self/environ")
    doc = {"services": {"app": {"image": "app:1"}}, "configs": {"c": {"file": "proc.conf"}}}
    with pytest.raises(StackError, match="is a link out of the stack file's folder"):
        _render(doc, stack)


def test_a_config_larger_than_swarm_takes_is_refused(tmp_path):
    (tmp_path / "big").write_bytes(b"x" * (500 * 1024 + 1))
    doc = {"services": {"app": {"image": "app:1"}}, "configs": {"c": {"file": "big"}}}
    with pytest.raises(StackError) as info:
        _render(doc, tmp_path)
    assert info.value.message == "stack.yml: configs.c.file: big is larger than 512000 bytes"


def test_aliases_that_multiply_are_refused(tmp_path):
    lines = ["x-l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for n in range(1, 6):
        lines.append(f"x-l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 10) + "]")
    lines += ["services:", "  app:", "    image: app:1", "    labels: {big: *l5}"]
    (tmp_path / "stack.yml").write_text("\n".join(lines) + "\n")
    with pytest.raises(StackError, match="more than 100000 values once YAML aliases are expanded"):
        _render(load_stack(tmp_path / "stack.yml"), tmp_path)


def test_an_alias_inside_itself_is_refused(tmp_path):
    (tmp_path / "stack.yml").write_text(
        "services:\n  app: &app\n    image: app:1\n    labels:\n      self: *app\n"
    )
    with pytest.raises(StackError, match="nested more than 64 levels"):
        _render(load_stack(tmp_path / "stack.yml"), tmp_path)


def test_load_stack_refuses_what_is_not_a_stack_file(tmp_path):
    with pytest.raises(StackError) as info:
        load_stack(tmp_path)
    assert info.value.message == f"{tmp_path}: is a directory, not a file"
    with pytest.raises(StackError) as info:
        load_stack(tmp_path / "missing.yml")
    assert info.value.message == f"{tmp_path / 'missing.yml'}: no such file"
    (tmp_path / "deep.yml").write_text("services: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(StackError, match="nested too deeply"):
        load_stack(tmp_path / "deep.yml")


# --- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("itframe", True),
        ("app-2", True),
        ("9", True),
        ("a" * 40, True),
        ("a" * 41, False),
        ("", False),
        ("My-App", False),
        ("my_app", False),  # <stack>_<service>: an _ in a stack's name could meet another's
        ("-app", False),
        ("app-", False),
        ("app\n", False),
        ("app.web", False),
    ],
)
def test_stack_name_ok(name, ok):
    assert stack_name_ok(name) is ok


def test_stack_config_hides_its_content():
    assert repr(StackConfig("k", "s_k-0", b"secret")) == "StackConfig(key='k', name='s_k-0')"


# --- Docker reads what is written ----------------------------------------------------------


def nothing(name: str) -> None:
    return None


def _docker_reads(text: str, tmp_path: Path) -> dict:
    """The stack as `docker stack config` loads it (the client only: no daemon is asked),
    run as a manager would, with an environment of its own."""
    (tmp_path / "stack.yml").write_text(text)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DOCKER_HOST": "unix:///nonexistent/docker.sock",
        "DOCKER_CONFIG": str(tmp_path / "docker"),
        "TAG": "from-the-manager",
        "zone": "from-the-manager",
    }
    done = subprocess.run(
        ["docker", "stack", "config", "-c", "stack.yml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0 and "stack config" in done.stderr and "unknown" in done.stderr:
        pytest.skip("this docker has no `stack config`")
    assert done.returncode == 0, done.stderr
    return compose_yaml.load(done.stdout)


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI")
@pytest.mark.parametrize(
    "name",
    [
        "dollar-kept-literal",
        "interpolation-forms",
        "yaml-read-as-docker-reads-it",
        "per-zone-two-zones",
        "cast-after-substitution",
        "env-file-inlined",
    ],
)
def test_docker_reads_what_is_meant(name, tmp_path):
    r = render_case(CASES_DIR / name)
    ours = compose_yaml.load(r.text)
    theirs = _docker_reads(r.text, tmp_path)
    for service, mine in ours["services"].items():
        docker = theirs["services"][service]
        for key, value in mine.get("environment", {}).items():
            if isinstance(value, str) and value != "":  # "" Docker fills from where it runs
                assert docker["environment"][key] == substitute(value, nothing)
        assert docker["image"] == substitute(mine["image"], nothing)
        if "command" in mine:
            assert docker["command"] == [substitute(c, nothing) for c in mine["command"]]
        assert docker["deploy"]["labels"]["swarmboot.deploy"] == r.digest
