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


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (
            "http://127.0.0.2:1\\@127.0.0.1:2/v4",
            "--api-url has a user part (user@ or user:password@ before the host), which can "
            "hide the host the token goes to; give the address without it, as "
            "https://api.linode.com/v4",
        ),
        ("https://user:secret@api.linode.com/v4", "--api-url has a user part"),
        ("http://127.0.0.1%2f@127.0.0.2/v4", "--api-url has a user part"),
        (
            "https://api.linode.com\\.example.com/v4",
            "--api-url 'https://api.linode.com\\\\.example.com/v4' has a backslash, which "
            "parsers of web addresses read differently; give it as https://api.linode.com/v4 or "
            "http://127.0.0.1:8765/v4",
        ),
        ("http://127.0.0.1:8765/v4\nX-Injected: 1", "--api-url 'http://127.0.0.1:8765/v4\\nX"),
        (
            "https://\u0430pi.linode.com/v4",
            "--api-url 'https://\u0430pi.linode.com/v4' has '\u0430'",
        ),
        ("http://127.0.0.1:99999/v4", "--api-url 'http://127.0.0.1:99999/v4' has a port that"),
        ("http://[::1/v4", "--api-url 'http://[::1/v4' is not a URL"),
    ],
)
def test_an_api_url_the_parsers_could_read_differently_is_refused(tmp_path, url, says):
    env = {"LINODE_TOKEN": "t"}
    with pytest.raises(SwarmbootError) as info:
        find_target(url, env=env, home=tmp_path)
    assert str(info.value).startswith(says), str(info.value)
    assert "secret" not in str(info.value)
    with pytest.raises(SwarmbootError):  # from the environment too
        find_target(None, env={**env, "SWARMBOOT_API_URL": url}, home=tmp_path)


def test_loopback_urls_the_parsers_agree_on(tmp_path):
    env = {"SWARMBOOT_SIM_TOKEN": "sim"}
    for url in ("http://[::1]:8765/v4", "http://LOCALHOST:8765/v4", "http://127.0.0.1:8765/v4"):
        assert find_target(url, env=env, home=tmp_path).is_local


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
