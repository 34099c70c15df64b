"""The CI examples (examples/ci/) run commands swarmboot has, with the options it takes, and
take every secret from the CI's secrets, never from the file or a command line."""

from __future__ import annotations

import shlex

import pytest
import typer
import yaml

from swarmboot.cli import app

from .conftest import REPO

CI = REPO / "examples" / "ci"


def _github_lines(doc: dict) -> list[tuple[str, dict]]:
    out = []
    for job in doc["jobs"].values():
        for step in job["steps"]:
            for line in str(step.get("run", "")).splitlines():
                out.append((line, {**job.get("env", {}), **step.get("env", {})}))
    return out


def _gitlab_lines(doc: dict) -> list[tuple[str, dict]]:
    out = []
    for job in doc.values():
        if isinstance(job, dict) and "script" in job:
            for line in job["script"]:
                out.append((line, {**doc.get("variables", {}), **job.get("variables", {})}))
    return out


WORKFLOWS = {
    "github-actions.yml": _github_lines,
    "gitlab-ci.yml": _gitlab_lines,
}


def _swarmboot_commands(lines: list[tuple[str, dict]]) -> list[tuple[list[str], dict]]:
    found = []
    for line, env in lines:
        words = shlex.split(line.split(">")[0])  # the command, not where its output goes
        if words and words[0] == "swarmboot":
            found.append((words[1:], env))
    return found


def _parses(argv: list[str]) -> None:
    """As swarmboot's own command line would take it (options known, arguments given)."""
    group = typer.main.get_command(app)
    command = group.get_command(None, argv[0])  # type: ignore[attr-defined]
    assert command is not None, argv
    command.make_context(argv[0], argv[1:])


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_each_workflow_deploys_with_pinned_host_keys_and_secrets_from_ci(name):
    doc = yaml.safe_load((CI / name).read_text())
    commands = _swarmboot_commands(WORKFLOWS[name](doc))
    verbs = [argv[0] for argv, _ in commands]
    assert verbs == ["known-hosts", "deploy"], verbs
    for argv, _ in commands:
        _parses(argv)
        assert argv[1] == "examples/itframe.toml"
    deploy, env = commands[-1]
    assert deploy[2] == "examples/stack.yml" and "--json" in deploy
    text = (CI / name).read_text()
    if name == "github-actions.yml":
        assert env["LINODE_TOKEN"] == "${{ secrets.LINODE_TOKEN }}"
        assert env["SWARMBOOT_REGISTRY_PASSWORD"] == "${{ secrets.GITHUB_TOKEN }}"
        assert "${{ secrets.SWARMBOOT_SSH_KEY }}" in text
    else:
        # GitLab's CI/CD variables hold them: never defined in the file.
        assert "LINODE_TOKEN" not in env and "SWARMBOOT_SSH_KEY" not in env
        assert env["SWARMBOOT_REGISTRY_PASSWORD"] == "$CI_REGISTRY_PASSWORD"
    # No secret on a command line: swarmboot takes none there.
    for argv, _ in commands:
        assert not any("token" in a.lower() or "password" in a.lower() for a in argv), argv


def test_the_example_stack_is_a_valid_deploy_for_the_example_spec(tmp_path):
    from swarmboot.compose import load_stack, render_stack
    from swarmboot.deploy import stack_zones
    from swarmboot.spec import load_spec

    spec = load_spec(REPO / "examples" / "itframe.toml")
    path = REPO / "examples" / "stack.yml"
    rendered = render_stack(
        load_stack(path),
        source=str(path),
        stack="itframe",
        zones=stack_zones(spec),
        env={"APP_IMAGE": "registry.example.com/app:2"},
        base=path.parent,
        secret_versions={},
        cluster="itframe",
    )
    assert rendered.services == ("itframe_app-eu-central", "itframe_app-gb-lon")
    services = yaml.safe_load(rendered.text)["services"]
    assert services["app-gb-lon"]["environment"]["ZONE"] == "gb-lon"
    assert "node.labels.zone==gb-lon" in [
        c.replace(" ", "") for c in services["app-gb-lon"]["deploy"]["placement"]["constraints"]
    ]
    # What each zone's load balancer sends to: tasks.<lb.service>-<zone>.
    assert spec.lb is not None and f"{spec.lb.service}-gb-lon" in services
