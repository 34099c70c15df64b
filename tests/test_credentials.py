from __future__ import annotations

from pathlib import Path

import pytest

from swarmboot.credentials import DEFAULT_API_URL, NoTokenError, find_target
from swarmboot.errors import SwarmbootError


def test_the_real_api_and_linode_token_by_default(tmp_path):
    target = find_target(None, env={"LINODE_TOKEN": "abc"}, home=tmp_path)
    assert (target.api_url, target.token, target.source) == (DEFAULT_API_URL, "abc", "LINODE_TOKEN")
    assert "abc" not in repr(target)
    assert not target.is_local


def test_order_of_the_places_a_token_is_looked_for(tmp_path):
    env = {"LINODE_CLI_TOKEN": "cli", "SWARMBOOT_SIM_TOKEN": "sim"}
    assert find_target(None, env=env, home=tmp_path).source == "LINODE_CLI_TOKEN"
    local = find_target(
        "http://127.0.0.1:8765/v4", env={"SWARMBOOT_SIM_TOKEN": "sim"}, home=tmp_path
    )
    assert local.token == "sim" and local.is_local
    # The simulator's token is never sent to the real API.
    with pytest.raises(NoTokenError):
        find_target(None, env={"SWARMBOOT_SIM_TOKEN": "sim"}, home=tmp_path)


def test_linode_clis_own_configuration(tmp_path):
    config = tmp_path / ".config" / "linode-cli"
    config.parent.mkdir()
    config.write_text(
        "[DEFAULT]\ndefault-user = ops\n\n[ops]\ntoken = from-cli-config\nregion = eu-central\n"
    )
    target = find_target(None, env={}, home=tmp_path)
    assert target.token == "from-cli-config"
    assert target.source == f"{config} (user ops)"


def test_url_from_the_environment_and_http_only_for_loopback(tmp_path):
    env = {"SWARMBOOT_API_URL": "http://localhost:9000/v4/", "LINODE_TOKEN": "t"}
    assert find_target(None, env=env, home=tmp_path).api_url == "http://localhost:9000/v4"
    with pytest.raises(SwarmbootError, match="would send the token unencrypted"):
        find_target("http://api.example.com/v4", env=env, home=tmp_path)
    with pytest.raises(SwarmbootError, match="is not an http"):
        find_target("ftp://x/v4", env=env, home=tmp_path)


def test_no_token_names_every_place(tmp_path):
    with pytest.raises(NoTokenError) as info:
        find_target(None, env={}, home=Path(tmp_path))
    assert info.value.exit_code == 5
    assert str(info.value).startswith(
        "no Linode API token: looked in LINODE_TOKEN, "
        "LINODE_CLI_TOKEN and linode-cli's ~/.config/linode-cli"
    )


def test_a_root_password_comes_only_from_its_variable_and_must_be_strong_enough():
    from swarmboot.credentials import root_password

    assert root_password({}) is None  # a random one per Linode
    assert root_password({"SWARMBOOT_ROOT_PASSWORD": "correct-Horse-9"}) == "correct-Horse-9"
    for weak in ("short-1", "onlyletterslong", "12345678901234"):
        with pytest.raises(SwarmbootError) as info:
            root_password({"SWARMBOOT_ROOT_PASSWORD": weak})
        assert weak not in str(info.value)  # a secret, even a weak one, is never echoed
        assert str(info.value).startswith("SWARMBOOT_ROOT_PASSWORD is too weak for Linode")
