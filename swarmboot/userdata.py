"""A node's cloud-init user data: its cloud-config, with the node's own part added.

The committed cloud-config (`stackscripts/<script>.cloud-config.yaml`, see `swarmboot.render`)
holds the node script and nothing secret, and ends in its `write_files` list. A node's user
data is that text with, appended, one more `write_files` entry (the node's fields as the
script reads a StackScript's: shell assignments in a root-only file on /run) and `ssh_keys`
(its pinned host key, which cloud-init puts in place before the SSH server first starts).
Linode takes it base64-encoded as `metadata.user_data`, at most 65,535 bytes before encoding.
"""

from __future__ import annotations

import base64
import shlex
from collections.abc import Mapping

from swarmboot import facts
from swarmboot.keys import HostKey

__all__ = ["MAX_USER_DATA_BYTES", "encode", "node_user_data"]

MAX_USER_DATA_BYTES = 65_535


def _env_file(data: Mapping[str, str]) -> str:
    """The node's fields as `set -a; . FILE` reads them back, each exactly."""
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in data.items())


def node_user_data(cloud_config: str, data: Mapping[str, str], host_key: HostKey) -> str:
    """The user data of one node (a secret: it holds the node's private host key)."""
    if not cloud_config.endswith("\n"):
        raise ValueError("the cloud-config must end with a newline")
    env = base64.b64encode(_env_file(data).encode()).decode()
    private = "".join(f"    {line}\n" for line in host_key.private_openssh.decode().splitlines())
    return (
        cloud_config
        + f"  - path: {facts.NODE_ENV_FILE}\n"
        + "    owner: root:root\n"
        + "    permissions: '0600'\n"
        + "    encoding: b64\n"
        + f"    content: {env}\n"
        + "ssh_keys:\n"
        + "  ed25519_private: |\n"
        + private
        + f"  ed25519_public: {host_key.public_line}\n"
    )


def encode(user_data: str) -> str:
    """As Linode takes it: base64 of the UTF-8 text."""
    return base64.b64encode(user_data.encode()).decode()
