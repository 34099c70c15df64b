"""Where swarmboot talks to, and with which token.

The token is never a command-line flag (it would show in `ps`): it comes from `LINODE_TOKEN`,
`LINODE_CLI_TOKEN`, or linode-cli's own configuration file; for the simulator, also from
`SWARMBOOT_SIM_TOKEN`. The API URL is Linode's unless `--api-url` or `SWARMBOOT_API_URL` says
otherwise.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from swarmboot.errors import ExitCode, SwarmbootError

__all__ = [
    "DEFAULT_API_URL",
    "NoTokenError",
    "Target",
    "find_target",
    "root_password",
    "unlock_key",
]

DEFAULT_API_URL = "https://api.linode.com/v4"


class NoTokenError(SwarmbootError):
    exit_code = ExitCode.NO_TOKEN


@dataclass(frozen=True)
class Target:
    api_url: str
    token: str = field(repr=False)
    source: str  # where the token was found, for messages (never the token itself)

    @property
    def is_local(self) -> bool:
        return urlsplit(self.api_url).hostname in ("127.0.0.1", "localhost", "::1")


def _cli_config_token(home: Path) -> tuple[str, str] | None:
    """linode-cli's configuration: the default user's token."""
    for path in (home / ".config" / "linode-cli", home / ".linode-cli"):
        if not path.is_file():
            continue
        parser = configparser.ConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, OSError):
            continue
        user = parser.get("DEFAULT", "default-user", fallback=None)
        if user and parser.has_section(user) and parser.get(user, "token", fallback=""):
            return parser.get(user, "token"), f"{path} (user {user})"
        token = parser.get("DEFAULT", "token", fallback="")
        if token:
            return token, str(path)
    return None


_URL_EXAMPLE = "give it as https://api.linode.com/v4 or http://127.0.0.1:8765/v4"


def _check_url(url: str) -> SplitResult:
    """The API URL's parts, once it is sure that the token goes where they say: the URL is
    read here with urllib's parser but sent by requests with urllib3's, so a URL they read
    differently (`http://127.0.0.2\\@127.0.0.1/v4`: urllib says 127.0.0.1, urllib3 connects
    to 127.0.0.2) would pass the checks and send the token elsewhere."""
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed [ of an IPv6 address
        raise SwarmbootError(f"--api-url {url!r} is not a URL", hint=_URL_EXAMPLE) from None
    if "@" in parts.netloc:  # the URL is not repeated: its user part may be a password
        raise SwarmbootError(
            "--api-url has a user part (user@ or user:password@ before the host), which "
            "can hide the host the token goes to",
            hint="give the address without it, as https://api.linode.com/v4",
        )
    odd = next((c for c in url if c == "\\" or not c.isascii() or not c.isprintable()), None)
    if odd is not None or " " in url:
        what = "a space" if odd is None else "a backslash" if odd == "\\" else f"{odd!r}"
        raise SwarmbootError(
            f"--api-url {url!r} has {what}, which parsers of web addresses read differently",
            hint=_URL_EXAMPLE + ("" if url.isascii() else " (a host in other scripts as xn--...)"),
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SwarmbootError(f"--api-url {url!r} is not an http(s) URL", hint=_URL_EXAMPLE)
    try:
        ours = (parts.scheme, parts.hostname, parts.port)
        theirs = parse_url(url)
    except (ValueError, LocationParseError):  # a port that is not 0 to 65535
        raise SwarmbootError(
            f"--api-url {url!r} has a port that is not a number up to 65535", hint=_URL_EXAMPLE
        ) from None
    host = (theirs.host or "").removeprefix("[").removesuffix("]").lower()
    if ours != (theirs.scheme, host, theirs.port):
        raise SwarmbootError(
            f"--api-url {url!r} names {parts.hostname} to one parser and {host or 'no host'} "
            "to the one that sends the token",
            hint=_URL_EXAMPLE,
        )
    return parts


def find_target(
    api_url: str | None = None, env: Mapping[str, str] = os.environ, home: Path | None = None
) -> Target:
    url = (api_url or env.get("SWARMBOOT_API_URL") or DEFAULT_API_URL).rstrip("/")
    parts = _check_url(url)
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SwarmbootError(
            f"--api-url {url!r} would send the token unencrypted",
            hint="use https, or http only for a simulator on 127.0.0.1",
        )
    names = ["LINODE_TOKEN", "LINODE_CLI_TOKEN"]
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if local:
        names.append("SWARMBOOT_SIM_TOKEN")
    for name in names:
        if env.get(name):
            return Target(url, env[name], name)
    found = _cli_config_token(home or Path.home())
    if found:
        return Target(url, found[0], found[1])
    where = "LINODE_TOKEN, LINODE_CLI_TOKEN" + (", SWARMBOOT_SIM_TOKEN" if local else "")
    raise NoTokenError(
        f"no Linode API token: looked in {where} and linode-cli's ~/.config/linode-cli",
        hint="export LINODE_TOKEN (never pass it on the command line), or try "
        "the simulator: `swarmboot sim` and --api-url "
        "http://127.0.0.1:8765/v4",
    )


ROOT_PASSWORD_ENV = "SWARMBOOT_ROOT_PASSWORD"


def root_password(env: Mapping[str, str] | None = None) -> str | None:
    """The root password for new and rebuilt Linodes (Lish's console login), from
    SWARMBOOT_ROOT_PASSWORD; None: a random one per Linode, known to nobody."""
    env = os.environ if env is None else env
    value = env.get(ROOT_PASSWORD_ENV)
    if not value:
        return None
    if len(value) < 11 or value.isalpha() or value.isdigit() or len(value) > 128:
        raise SwarmbootError(
            f"{ROOT_PASSWORD_ENV} is too weak for Linode: 11 to 128 characters, not only "
            "letters or only digits",
            hint=f"set a stronger one, or unset {ROOT_PASSWORD_ENV} for a random one per Linode",
        )
    return value


UNLOCK_KEY_ENV = "SWARMBOOT_UNLOCK_KEY"


def unlock_key(env: Mapping[str, str] | None = None) -> str | None:
    """The key that unlocks the swarm's managers when autolock is on (`docker swarm
    unlock-key`), from SWARMBOOT_UNLOCK_KEY; never an argument."""
    env = os.environ if env is None else env
    return env.get(UNLOCK_KEY_ENV) or None
