"""Registry logins for `deploy`, from the environment or a Docker client configuration.

`SWARMBOOT_REGISTRY_USER` with `SWARMBOOT_REGISTRY_PASSWORD` (or `_PASSWORD_FILE`) log in to
`SWARMBOOT_REGISTRY`, or to the one registry the stack's images name; or
`SWARMBOOT_REGISTRY_CONFIG` names a Docker client configuration (`~/.docker/config.json`)
whose `auths` hold the logins of the registries the images name. Nothing of them is ever
shown: errors name the variable, never its value.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from swarmboot.errors import ExitCode, SwarmbootError
from swarmboot.stacks import RegistryAuth

__all__ = ["DOCKER_HUB", "RegistryError", "registry_auth", "registry_of"]

# The key Docker clients file Docker Hub's login under.
DOCKER_HUB = "https://index.docker.io/v1/"


class RegistryError(SwarmbootError):
    exit_code = ExitCode.BAD_SPEC


def registry_of(image: str) -> str:
    """The registry an image reference names, as a Docker client configuration keys it."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return DOCKER_HUB


def _read(path: Path, variable: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise RegistryError(
            f"{variable}: {path} cannot be read ({exc.strerror})",
            hint=f"set {variable} to a readable file",
        ) from None


def _from_config(path: Path, wanted: set[str]) -> RegistryAuth:
    variable = "SWARMBOOT_REGISTRY_CONFIG"
    try:
        data = json.loads(_read(path, variable))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise RegistryError(
            f"{variable}: {path} is not a Docker client configuration (JSON)",
            hint="name a config.json as `docker login` writes it",
        ) from None
    auths = data.get("auths") if isinstance(data, dict) else None
    found: dict[str, str] = {}
    for registry, entry in (auths or {}).items():
        if not isinstance(entry, dict):
            continue
        token = entry.get("auth")
        if not token and entry.get("username") and entry.get("password"):
            token = base64.b64encode(f"{entry['username']}:{entry['password']}".encode()).decode()
        if not isinstance(token, str) or not token:
            continue
        try:
            base64.b64decode(token, validate=True)
        except (binascii.Error, ValueError):
            raise RegistryError(
                f"{variable}: the login for {registry} in {path} is not base64",
                hint="log in again with `docker login` into that configuration",
            ) from None
        found[registry] = token
    lacking = sorted(wanted - set(found))
    if lacking:
        helpers = isinstance(data, dict) and (data.get("credsStore") or data.get("credHelpers"))
        raise RegistryError(
            f"{variable}: {path} holds no login for {', '.join(lacking)}"
            + (
                " (its logins are in a credential helper, which a deploy cannot read)"
                if helpers
                else ""
            ),
            hint="log in with `DOCKER_CONFIG=DIR docker login` into a configuration without a "
            "credential helper, or use SWARMBOOT_REGISTRY_USER and SWARMBOOT_REGISTRY_PASSWORD",
        )
    return RegistryAuth({r: found[r] for r in sorted(wanted)})


def registry_auth(env: Mapping[str, str], images: Iterable[str]) -> RegistryAuth | None:
    """The logins the deploy hands to the swarm, or None when none is given."""
    registries = {registry_of(i) for i in images}
    config = env.get("SWARMBOOT_REGISTRY_CONFIG")
    user = env.get("SWARMBOOT_REGISTRY_USER")
    password = env.get("SWARMBOOT_REGISTRY_PASSWORD")
    password_file = env.get("SWARMBOOT_REGISTRY_PASSWORD_FILE")
    if config and (user or password or password_file):
        raise RegistryError(
            "SWARMBOOT_REGISTRY_CONFIG and SWARMBOOT_REGISTRY_USER are both set",
            hint="give the logins one way: a Docker client configuration, or a user and password",
        )
    if config:
        private = {r for r in registries if r != DOCKER_HUB} or registries
        return _from_config(Path(config), private)
    if not (user or password or password_file):
        return None
    if not user:
        raise RegistryError(
            "SWARMBOOT_REGISTRY_PASSWORD is set without SWARMBOOT_REGISTRY_USER",
            hint="set SWARMBOOT_REGISTRY_USER to the registry's user name",
        )
    if password and password_file:
        raise RegistryError(
            "SWARMBOOT_REGISTRY_PASSWORD and SWARMBOOT_REGISTRY_PASSWORD_FILE are both set",
            hint="give the password one way",
        )
    if password_file:
        raw = _read(Path(password_file), "SWARMBOOT_REGISTRY_PASSWORD_FILE")
        try:
            password = raw.decode().rstrip("\n")
        except UnicodeDecodeError:
            raise RegistryError(
                "SWARMBOOT_REGISTRY_PASSWORD_FILE is not UTF-8 text",
                hint="write the password as one line of text",
            ) from None
    if not password:
        raise RegistryError(
            "SWARMBOOT_REGISTRY_USER is set without a password",
            hint="set SWARMBOOT_REGISTRY_PASSWORD (a CI secret) or "
            "SWARMBOOT_REGISTRY_PASSWORD_FILE",
        )
    registry = env.get("SWARMBOOT_REGISTRY")
    if not registry:
        private = sorted(r for r in registries if r != DOCKER_HUB)
        if len(private) > 1:
            raise RegistryError(
                f"the stack's images come from {len(private)} registries "
                f"({', '.join(private)}) and SWARMBOOT_REGISTRY does not say which the login "
                "is for",
                hint="set SWARMBOOT_REGISTRY, or SWARMBOOT_REGISTRY_CONFIG with a login for each",
            )
        registry = private[0] if private else DOCKER_HUB
    if any(c in registry for c in "/ \n\t") and registry != DOCKER_HUB:
        raise RegistryError(
            "SWARMBOOT_REGISTRY must be a registry's host name (and port), e.g. ghcr.io",
            hint="set it to the first part of the images' names",
        )
    return RegistryAuth.login(registry, user, password)
