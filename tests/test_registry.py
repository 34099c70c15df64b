"""Registry logins for `deploy`: from the environment or a Docker client configuration; each
mistake one line naming the variable, never the value."""

from __future__ import annotations

import base64
import json

import pytest

from swarmboot.errors import ExitCode
from swarmboot.registry import DOCKER_HUB, RegistryError, registry_auth, registry_of
from swarmboot.stacks import RegistryAuth, deploy_script

SECRET = "pa55-not-shown"


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("nginx:1.27", DOCKER_HUB),
        ("library/nginx", DOCKER_HUB),
        ("example/app:2", DOCKER_HUB),
        ("ghcr.io/example/app:2", "ghcr.io"),
        ("registry.example.com:5000/app@sha256:" + "0" * 64, "registry.example.com:5000"),
        ("localhost/app", "localhost"),
    ],
)
def test_the_registry_an_image_names(image, registry):
    assert registry_of(image) == registry


def test_no_login_given_is_none():
    assert registry_auth({}, ["ghcr.io/x/app:1"]) is None


def test_a_user_and_password_log_in_to_the_one_private_registry_of_the_images():
    auth = registry_auth(
        {"SWARMBOOT_REGISTRY_USER": "ci", "SWARMBOOT_REGISTRY_PASSWORD": SECRET},
        ["ghcr.io/x/app:1", "nginx:1.27"],
    )
    assert auth.registries() == ("ghcr.io",)
    config = json.loads(auth.config_json())
    assert base64.b64decode(config["auths"]["ghcr.io"]["auth"]).decode() == f"ci:{SECRET}"
    assert SECRET not in repr(auth)


def test_the_password_from_a_file_and_the_registry_named(tmp_path):
    path = tmp_path / "password"
    path.write_text(SECRET + "\n")
    auth = registry_auth(
        {
            "SWARMBOOT_REGISTRY_USER": "ci",
            "SWARMBOOT_REGISTRY_PASSWORD_FILE": str(path),
            "SWARMBOOT_REGISTRY": "registry.example.com",
        },
        ["nginx:1.27"],
    )
    assert auth.registries() == ("registry.example.com",)
    assert (
        SECRET
        in base64.b64decode(
            json.loads(auth.config_json())["auths"]["registry.example.com"]["auth"]
        ).decode()
    )


def test_a_docker_config_gives_the_logins_of_the_images_registries(tmp_path):
    path = tmp_path / "config.json"
    token = base64.b64encode(f"ci:{SECRET}".encode()).decode()
    path.write_text(
        json.dumps({"auths": {"ghcr.io": {"auth": token}, "other.io": {"auth": token}}})
    )
    auth = registry_auth({"SWARMBOOT_REGISTRY_CONFIG": str(path)}, ["ghcr.io/x/app:1"])
    assert auth.registries() == ("ghcr.io",)  # only what the stack pulls from


@pytest.mark.parametrize(
    ("env", "config", "first_words"),
    [
        (
            {"SWARMBOOT_REGISTRY_PASSWORD": SECRET},
            None,
            "SWARMBOOT_REGISTRY_PASSWORD is set without",
        ),
        (
            {"SWARMBOOT_REGISTRY_USER": "ci"},
            None,
            "SWARMBOOT_REGISTRY_USER is set without a password",
        ),
        (
            {
                "SWARMBOOT_REGISTRY_USER": "ci",
                "SWARMBOOT_REGISTRY_PASSWORD": SECRET,
                "SWARMBOOT_REGISTRY_PASSWORD_FILE": "/x",
            },
            None,
            "SWARMBOOT_REGISTRY_PASSWORD and SWARMBOOT_REGISTRY_PASSWORD_FILE are both set",
        ),
        (
            {
                "SWARMBOOT_REGISTRY_USER": "ci",
                "SWARMBOOT_REGISTRY_PASSWORD_FILE": "/nonexistent/pw",
            },
            None,
            "SWARMBOOT_REGISTRY_PASSWORD_FILE: /nonexistent/pw cannot be read",
        ),
        (
            {
                "SWARMBOOT_REGISTRY_USER": "ci",
                "SWARMBOOT_REGISTRY_PASSWORD": SECRET,
                "SWARMBOOT_REGISTRY": "https://ghcr.io/v2/",
            },
            None,
            "SWARMBOOT_REGISTRY must be a registry's host name",
        ),
        ({}, "{not json", "SWARMBOOT_REGISTRY_CONFIG: "),
        ({}, json.dumps({"credsStore": "desktop"}), "SWARMBOOT_REGISTRY_CONFIG: "),
        ({}, json.dumps({"auths": {"ghcr.io": {"auth": "%%%"}}}), "SWARMBOOT_REGISTRY_CONFIG: "),
    ],
)
def test_each_mistake_is_one_line_naming_the_variable_and_never_the_value(
    tmp_path, env, config, first_words
):
    if config is not None:
        path = tmp_path / "config.json"
        path.write_text(config)
        env = {**env, "SWARMBOOT_REGISTRY_CONFIG": str(path)}
    with pytest.raises(RegistryError) as refused:
        registry_auth(env, ["ghcr.io/x/app:1", "registry.example.com/y:1"])
    assert refused.value.exit_code == ExitCode.BAD_SPEC
    assert str(refused.value).startswith(first_words), str(refused.value)
    assert SECRET not in str(refused.value) and "\n" not in str(refused.value)


def test_two_private_registries_need_to_be_told_which_the_login_is_for():
    with pytest.raises(RegistryError) as refused:
        registry_auth(
            {"SWARMBOOT_REGISTRY_USER": "ci", "SWARMBOOT_REGISTRY_PASSWORD": SECRET},
            ["ghcr.io/x/app:1", "registry.example.com/y:1"],
        )
    assert "SWARMBOOT_REGISTRY does not say" in str(refused.value)


def test_the_managers_command_reads_the_login_from_a_file_it_removes_never_from_argv():
    auth_cmd = deploy_script(
        "/root/.swarmboot/deploy/itframe", "itframe", prune=False, auth=True, resolve="always"
    )
    assert "--with-registry-auth" in auth_cmd and "trap 'rm -rf docker stack.yml' EXIT" in auth_cmd
    assert "DOCKER_CONFIG=/root/.swarmboot/deploy/itframe/docker" in auth_cmd
    plain = deploy_script(
        "/root/.swarmboot/deploy/itframe", "itframe", prune=True, auth=False, resolve="never"
    )
    assert "--with-registry-auth" not in plain and "--prune --resolve-image never" in plain
    assert SECRET not in RegistryAuth.login("ghcr.io", "ci", SECRET).registries()


class _Manager:
    """A manager whose `docker service rollback` first meets a service changing under it."""

    label = "itframe-eu-central-manager-1"

    def __init__(self, refusals: int) -> None:
        self.refusals, self.commands = refusals, []

    def run(self, command: str, *, stdin=None, timeout: float = 120.0) -> str:
        from swarmboot.remote import RemoteError

        self.commands.append(command)
        if self.refusals:
            self.refusals -= 1
            raise RemoteError(
                f"{self.label}: `{command}` exited with 1: Error response from daemon: rpc "
                "error: code = Unknown desc = update out of sequence"
            )
        return ""


def test_a_rollback_met_by_update_out_of_sequence_is_asked_again():
    """Seen in the lab: the other service's rollback raced Docker pausing its update."""
    from swarmboot.stacks import ROLLBACK_TRIES, StackCalls
    from swarmboot.swarm import SwarmError

    calls = StackCalls()
    slept: list[float] = []
    calls._sleep = slept.append  # type: ignore[method-assign]
    manager = _Manager(refusals=2)
    calls.rollback_service(manager, "itframe_app-gb-lon")
    assert len(manager.commands) == 3 and slept == [1.0, 1.0]
    stuck = _Manager(refusals=ROLLBACK_TRIES)
    with pytest.raises(SwarmError) as failed:
        calls.rollback_service(stuck, "itframe_app-gb-lon")
    assert "update out of sequence" in str(failed.value)
    assert len(stuck.commands) == ROLLBACK_TRIES
