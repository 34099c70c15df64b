"""SSH keys: host keys swarmboot makes and pins per node, and the identity it logs in with."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swarmboot.errors import SwarmbootError

__all__ = [
    "KEY_HINT",
    "HostKey",
    "Identity",
    "NoIdentity",
    "fingerprint",
    "load_identity",
    "new_host_key",
]


def fingerprint(public_blob: bytes) -> str:
    """OpenSSH's SHA256 fingerprint of a public key blob."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(public_blob).digest()).decode().rstrip("=")


@dataclass(frozen=True)
class HostKey:
    """A node's host key pair; the private half goes to the node in its StackScript data
    (which Linode keeps with the Linode and returns through no API endpoint) and nowhere
    else."""

    private_openssh: bytes = field(repr=False)
    public_line: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(base64.b64decode(self.public_line.split()[1]))

    @property
    def private_b64(self) -> str:
        """The private key as the StackScript's ssh_host_key field takes it."""
        return base64.b64encode(self.private_openssh).decode()


def new_host_key() -> HostKey:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return HostKey(private, public)


@dataclass(frozen=True)
class Identity:
    """The key swarmboot logs in to nodes with (as root)."""

    pkey: object = field(repr=False)  # a paramiko.PKey
    source: str

    @property
    def public_line(self) -> str:
        return f"{self.pkey.get_name()} {self.pkey.get_base64()} swarmboot"  # type: ignore[attr-defined]


class NoIdentity(SwarmbootError):
    """No SSH key was given or found anywhere swarmboot looks."""


_DEFAULT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")
# How to give swarmboot a key, in the order it looks.
KEY_HINT = (
    "pass --ssh-key FILE (a private key), set SWARMBOOT_SSH_KEY, "
    "load a key into ssh-agent, or create ~/.ssh/id_ed25519"
)


def load_identity(path: Path | None, env: dict[str, str] | None = None) -> Identity:
    """The one rule for the key swarmboot installs on the nodes and logs in with: the
    private key at `path` (or SWARMBOOT_SSH_KEY), else the SSH agent's first key, else
    ~/.ssh/id_ed25519, id_ecdsa or id_rsa. Keys with a passphrase need the agent. None
    given or found: `NoIdentity`; one named or found that cannot be used: another error."""
    import paramiko

    env = dict(os.environ) if env is None else env
    chosen = path or (Path(env["SWARMBOOT_SSH_KEY"]) if env.get("SWARMBOOT_SSH_KEY") else None)
    if chosen is not None:
        return Identity(_load(chosen.expanduser()), str(chosen))
    try:
        agent_keys = paramiko.Agent().get_keys()
    except paramiko.SSHException:
        agent_keys = ()
    if agent_keys:
        return Identity(agent_keys[0], "the SSH agent")
    for name in _DEFAULT_KEYS:
        candidate = Path.home() / ".ssh" / name
        if candidate.is_file():
            return Identity(_load(candidate), str(candidate))
    raise NoIdentity("no SSH key to log in to the nodes with", hint=KEY_HINT)


def _load(path: Path) -> object:
    import paramiko

    try:
        return paramiko.PKey.from_path(path)
    except FileNotFoundError:
        raise SwarmbootError(
            f"SSH key {path}: no such file",
            hint="pass --ssh-key (or SWARMBOOT_SSH_KEY) the path of a private key",
        ) from None
    except PermissionError:
        raise SwarmbootError(
            f"SSH key {path}: not readable by this user",
            hint="run as the key's owner, or pass --ssh-key another private key",
        ) from None
    except paramiko.PasswordRequiredException:
        raise SwarmbootError(
            f"SSH key {path} has a passphrase", hint="load it into ssh-agent instead"
        ) from None
    except (paramiko.SSHException, ValueError, OSError) as exc:
        raise SwarmbootError(
            f"SSH key {path}: cannot read it as a private key ({exc})",
            hint="pass --ssh-key an OpenSSH or PEM private key (not the .pub file)",
        ) from None
