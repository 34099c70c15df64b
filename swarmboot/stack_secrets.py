"""`secret set`: a value made a swarm secret under a versioned name.

A swarm secret cannot change: a new value is a new secret. `secret set SPEC NAME` makes
`NAME.v1`, then `NAME.v2`, … (labels: the name, the version and a keyed hash of the value,
so that setting the same value again makes nothing), and `deploy` gives each stack that
uses the external secret `NAME` its newest version: a changed secret rolls the services that
use it at the next deploy, and they still read it as /run/secrets/NAME. The versions before
the one in use and its previous one (a rollback's) are removed once nothing uses them.

The value travels from stdin or a file into the swarm's API through the pinned SSH session:
never on a command line, in output or in logs.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field

from swarmboot.cluster import Context, observe
from swarmboot.deploy import manager_of
from swarmboot.errors import ExitCode, SwarmbootError
from swarmboot.remote import Remote
from swarmboot.stacks import HMAC_LABEL, SECRET_LABEL, VERSION_LABEL, SwarmSecret

__all__ = [
    "MAX_BYTES",
    "CreateSecret",
    "SecretError",
    "check_name",
    "latest_versions",
    "plan_secret",
    "set_secret",
    "value_hmac",
]

# Docker's limit on a secret's size.
MAX_BYTES = 500 * 1024
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,47}")


class SecretError(SwarmbootError):
    exit_code = ExitCode.BAD_SPEC


@dataclass(frozen=True)
class CreateSecret:
    via: str
    logical: str
    version: int
    hmac: str
    value: bytes = field(repr=False, compare=False)
    remove: tuple[str, ...] = ()  # older versions to remove (a service using one keeps it)

    @property
    def name(self) -> str:
        return f"{self.logical}.v{self.version}"

    def describe(self) -> str:
        return f"Make secret {self.name} (the new value of {self.logical})"


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise SecretError(
            f"secret name {name!r} is not valid",
            hint="use letters, digits, '-' and '_' (at most 48), starting with a letter or digit",
        )
    return name


def check_value(value: bytes, source: str) -> bytes:
    if not value:
        raise SecretError(f"{source} gave an empty value", hint="give the secret's value")
    if len(value) > MAX_BYTES:
        raise SecretError(
            f"{source} gave {len(value)} bytes; a swarm secret holds at most {MAX_BYTES}",
            hint="keep the secret smaller, or store a key to the data instead",
        )
    return value


def value_hmac(key: bytes, logical: str, value: bytes) -> str:
    """A keyed hash of the value: the same value gives the same hash for whoever holds the
    key (the SSH identity's), and tells nothing of it to anyone else."""
    return hmac.new(key, logical.encode() + b"\0" + value, hashlib.sha256).hexdigest()[:32]


def plan_secret(
    via: str, logical: str, value: bytes, digest: str, versions: tuple[SwarmSecret, ...]
) -> tuple[CreateSecret, ...]:
    """Nothing when the newest version holds this value; else the next version."""
    if versions and versions[-1].hmac == digest:
        return ()
    version = (versions[-1].version if versions else 0) + 1
    old = tuple(s.name for s in versions[:-1])  # the newest stays (a rollback's)
    return (CreateSecret(via, logical, version, digest, value, old),)


def latest_versions(ctx: Context, manager: Remote, logicals: tuple[str, ...]) -> dict[str, str]:
    """The newest version's name of each of these secrets that `secret set` made."""
    found = {}
    for logical in logicals:
        versions = ctx.swarm.secrets(manager, logical)
        if versions:
            found[logical] = versions[-1].name
    return found


def set_secret(ctx: Context, logical: str, value: bytes) -> list[str]:
    """Make the secret's next version unless its newest holds `value`; what was done."""
    from swarmboot.apply import run_steps

    check_name(logical)
    observed = observe(ctx)
    via = manager_of(ctx, observed)
    inst = observed.instance(via)
    assert inst is not None
    versions = ctx.swarm.secrets(ctx.remote(inst), logical)
    steps = plan_secret(via, logical, value, value_hmac(ctx.marks.key, logical, value), versions)
    return run_steps(ctx, observed, steps)


def secret_labels(step: CreateSecret, cluster: str) -> dict[str, str]:
    return {
        SECRET_LABEL: step.logical,
        VERSION_LABEL: str(step.version),
        HMAC_LABEL: step.hmac,
        "swarmboot.cluster": cluster,
    }
