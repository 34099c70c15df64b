"""`deploy` end to end against the simulator and the fake swarm's stacks: a first deploy and
its rollout, a deploy that changes nothing, an update, a broken image rolled back (by
swarmboot when Docker paused, by Docker when the file says rollback), a new service that
keeps failing, a deploy killed half-way and run again, registry logins and secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmboot.cluster import observe
from swarmboot.deploy import DeployFailed, deploy, prepare
from swarmboot.errors import ExitCode
from swarmboot.stack_secrets import set_secret

from .world import make_context

STACK = """
services:
  app:
    image: ${APP_IMAGE}
    environment:
      ZONE: ${zone}
    networks: [itframe]
    deploy:
      replicas: 2
      update_config: {parallelism: 1, order: start-first, failure_action: FAILURE}
    x-swarmboot:
      per_zone: true
networks:
  itframe:
    external: true
"""
SERVICES = {"app-eu-central", "app-gb-lon"}


def _stack(tmp_path: Path, failure_action: str = "pause", extra: str = "") -> Path:
    path = tmp_path / "stack.yml"
    path.write_text(STACK.replace("FAILURE", failure_action) + extra)
    return path


def _deploy(server, fleet, path: Path, image: str, **kw):
    ctx = make_context(server, fleet)
    observed = observe(ctx)
    rendered = prepare(ctx, observed, path, "itframe", {"APP_IMAGE": image})
    return ctx, deploy(ctx, rendered, observed=observed, **kw)


@pytest.fixture
def swarm(world):
    from swarmboot.apply import up

    server, fleet = world
    up(make_context(server, fleet))
    return server, fleet


def test_a_first_deploy_waits_for_every_service_and_a_second_changes_nothing(swarm, tmp_path):
    server, fleet = swarm
    path = _stack(tmp_path)
    ctx, first = _deploy(server, fleet, path, "registry.example.com/app:1")
    assert first.changed
    assert {n.removeprefix("itframe_") for n in first.services} == SERVICES
    assert all(v.state == "converged" and v.running == 2 for v in first.services.values())
    assert "✓ app-eu-central 2/2 updated" in ctx.reporter.lines
    swarm_ = ctx.swarm
    assert len(swarm_.deploys) == 1
    ctx2, second = _deploy(server, fleet, path, "registry.example.com/app:1")
    assert not second.changed and second.steps_run == []
    assert len(ctx2.swarm.deploys) == 1  # nothing sent


def test_a_new_image_rolls_and_the_per_zone_services_carry_their_zone(swarm, tmp_path):
    server, fleet = swarm
    path = _stack(tmp_path)
    _deploy(server, fleet, path, "registry.example.com/app:1")
    ctx, result = _deploy(server, fleet, path, "registry.example.com/app:2")
    assert result.changed
    text = ctx.swarm._stack_state()["texts"][-1]
    assert "registry.example.com/app:2" in text
    assert "node.labels.zone==eu-central" in text.replace(" ", "")
    assert "ZONE: gb-lon" in text


def test_a_broken_image_that_docker_paused_is_rolled_back_and_named(swarm, tmp_path):
    server, fleet = swarm
    path = _stack(tmp_path)
    _deploy(server, fleet, path, "registry.example.com/app:1")
    with pytest.raises(DeployFailed) as failed:
        _deploy(server, fleet, path, "registry.example.com/app:broken")
    assert failed.value.exit_code == ExitCode.DEPLOY_FAILED == 8
    message = failed.value.message
    assert "app-eu-central" in message and "task: non-zero exit (1)" in message, message
    ctx = make_context(server, fleet)
    assert sorted(ctx.swarm.rollbacks) == ["itframe_app-eu-central", "itframe_app-gb-lon"]
    # Back on the previous spec: the next deploy of the good file changes nothing.
    _, again = _deploy(server, fleet, path, "registry.example.com/app:1")
    assert not again.changed


def test_docker_rolling_back_itself_is_waited_for_and_not_rolled_back_twice(swarm, tmp_path):
    server, fleet = swarm
    path = _stack(tmp_path, failure_action="rollback")
    _deploy(server, fleet, path, "registry.example.com/app:1")
    with pytest.raises(DeployFailed) as failed:
        _deploy(server, fleet, path, "registry.example.com/app:broken")
    assert "rolled back" in failed.value.message
    assert make_context(server, fleet).swarm.rollbacks == []


def test_a_new_service_that_keeps_failing_is_named_and_left(swarm, tmp_path):
    server, fleet = swarm
    with pytest.raises(DeployFailed) as failed:
        _deploy(server, fleet, _stack(tmp_path), "registry.example.com/app:broken")
    assert "tasks failed" in failed.value.message
    assert make_context(server, fleet).swarm.rollbacks == []


def test_a_deploy_killed_after_sending_is_finished_by_the_next_run(swarm, tmp_path):
    server, fleet = swarm
    path = _stack(tmp_path)
    ctx = make_context(server, fleet)
    observed = observe(ctx)
    rendered = prepare(ctx, observed, path, "itframe", {"APP_IMAGE": "registry.example.com/a:1"})
    manager = ctx.remote(observed.instance(observed.swarm.manager))
    ctx.swarm.deploy_stack(manager, "itframe", rendered.text)  # then the process died
    _, result = _deploy(server, fleet, path, "registry.example.com/a:1")
    assert len(make_context(server, fleet).swarm.deploys) == 1  # not sent again
    assert all(v.state == "converged" for v in result.services.values())
    assert any(line.startswith("Wait until") for line in result.steps_run)


def test_a_registry_login_goes_with_the_deploy_and_nowhere_else(swarm, tmp_path, capsys):
    server, fleet = swarm
    path = _stack(tmp_path)
    env = {
        "APP_IMAGE": "registry.example.com/app:1",
        "SWARMBOOT_REGISTRY_USER": "ci",
        "SWARMBOOT_REGISTRY_PASSWORD": "hunter2-registry-secret",
    }
    ctx = make_context(server, fleet)
    observed = observe(ctx)
    rendered = prepare(ctx, observed, path, "itframe", env)
    assert ctx.registry_auth.registries() == ("registry.example.com",)
    assert "hunter2" not in repr(ctx) and "hunter2" not in rendered.text
    result = deploy(ctx, rendered, observed=observed, registries=ctx.registry_auth.registries())
    assert ctx.swarm.deploys[-1] == ("itframe", ("registry.example.com",))
    seen = "\n".join(ctx.reporter.lines) + repr(result.data()) + str(capsys.readouterr())
    assert "hunter2" not in seen


def test_a_changed_secret_gets_a_new_version_that_the_next_deploy_rolls_onto(swarm, tmp_path):
    server, fleet = swarm
    path = _stack(tmp_path, extra="secrets:\n  db_password:\n    external: true\n")
    text = path.read_text().replace(
        "    networks: [itframe]\n", "    networks: [itframe]\n    secrets: [db_password]\n", 1
    )
    path.write_text(text)
    ctx = make_context(server, fleet)
    assert set_secret(ctx, "db_password", b"one") != []
    assert set_secret(make_context(server, fleet), "db_password", b"one") == []  # same value
    ctx, _ = _deploy(server, fleet, path, "registry.example.com/app:1")
    assert "db_password.v1" in ctx.swarm._stack_state()["texts"][-1]
    set_secret(make_context(server, fleet), "db_password", b"two")
    ctx, second = _deploy(server, fleet, path, "registry.example.com/app:1")
    assert second.changed
    assert "db_password.v2" in ctx.swarm._stack_state()["texts"][-1]
    set_secret(make_context(server, fleet), "db_password", b"three")
    names = sorted(ctx.swarm.stack_secrets)
    assert "db_password.v1" not in names  # unused: removed; v2 (in use, a rollback's) stays
    assert names == ["db_password.v2", "db_password.v3"]
