"""SSH to the nodes (paramiko), with host keys verified against the pinned fingerprint.

Nothing is ever accepted on first sight: a node's host key must have the fingerprint pinned in
its Linode's tags, or the connection is refused with both fingerprints named.
"""

from __future__ import annotations

import base64
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from swarmboot.errors import SwarmbootError
from swarmboot.keys import Identity, fingerprint

__all__ = [
    "Connector",
    "HostKeyMismatch",
    "NoConnector",
    "ParamikoConnector",
    "ParamikoRemote",
    "Remote",
    "RemoteError",
    "Unreachable",
    "shutdown_write",
]


# How sshd refuses a session beyond its MaxSessions (SSH_OPEN_CONNECT_FAILED).
_OPEN_CONNECT_FAILED = 2


def shutdown_write(channel) -> None:
    """Send a channel's EOF so that it can never follow the channel's CLOSE.

    paramiko's `Channel.shutdown_write` builds the EOF under the channel's lock and sends it
    after letting go of the lock. If the node closes the channel in that moment (a command
    that just exited), paramiko's transport thread answers the node's CLOSE first, the EOF
    goes out after it, and OpenSSH ends the whole connection ("ieof packet referred to
    nonexistent channel"), every other channel of the session with it (paramiko issues 1115
    and 1705, open). Here the EOF is built and sent under the lock: the CLOSE waits for it.
    """
    import paramiko

    if not isinstance(channel, paramiko.Channel):
        channel.shutdown_write()  # a test double
        return
    with channel.lock:
        if channel.closed or channel.eof_sent or channel.transport is None:
            return
        message = channel._send_eof()
        if message is not None:
            channel.transport._send_user_message(message)


class RemoteError(SwarmbootError):
    """A command on a node failed; the message has the command and the tail of its output."""


class Unreachable(RemoteError):
    """The node does not answer SSH (yet)."""


class HostKeyMismatch(RemoteError):
    """The node's host key is not the pinned one."""


class Remote(Protocol):
    label: str

    def run(self, command: str, *, stdin: bytes | None = None, timeout: float = 120.0) -> str: ...
    def read_file(self, path: str) -> str | None: ...
    def put_file(self, path: str, content: str, mode: int = 0o644) -> None: ...
    def exec_channel(self, command: str): ...
    def host_key(self) -> str: ...
    def close(self) -> None: ...


class Connector(Protocol):
    def connect(self, label: str, address: str, pinned: str | None) -> Remote: ...


@dataclass(frozen=True)
class _Pinned:
    label: str
    expected: str | None

    def check(self, key) -> None:
        seen = fingerprint(key.asbytes())
        if self.expected is None:
            raise HostKeyMismatch(
                f"{self.label}: no host key is pinned for it (its Linode has no hk: tag), so "
                f"its key {seen} cannot be verified",
                hint="rebuild the node with swarmboot so that it gets a pinned key",
            )
        if seen != self.expected:
            raise HostKeyMismatch(
                f"{self.label}: the SSH host key is {seen}, but {self.expected} is pinned: "
                "refusing to connect",
                hint="if the node was rebuilt outside swarmboot, rebuild it with swarmboot; "
                "otherwise someone may be in the middle",
            )


class ParamikoRemote:
    def __init__(self, label: str, client) -> None:
        self.label = label
        self._client = client
        self._lock = threading.Lock()

    def run(self, command: str, *, stdin: bytes | None = None, timeout: float = 120.0) -> str:
        """Run a command; its output (stdout and stderr together) if it exits with 0."""
        import paramiko

        try:
            channel = self._session()
            channel.settimeout(timeout)
            channel.set_combine_stderr(True)
            channel.exec_command(command)
            if stdin is not None:
                channel.sendall(stdin)
            shutdown_write(channel)
            out = b""
            while chunk := channel.recv(65536):
                out += chunk
            status = channel.recv_exit_status()
        except (paramiko.SSHException, OSError) as exc:
            raise Unreachable(
                f"{self.label}: SSH failed while running {command.split()[0]}: "
                f"{exc or type(exc).__name__}"
            ) from None
        text = out.decode(errors="replace")
        if status != 0:
            tail = text.strip().splitlines()[-5:]
            raise RemoteError(
                f"{self.label}: `{command}` exited with {status}: " + " | ".join(tail)
            )
        return text

    def read_file(self, path: str) -> str | None:
        quoted = shlex.quote(path)
        out = self.run(f"if [ -e {quoted} ]; then echo yes; cat {quoted}; else echo no; fi")
        present, _, content = out.partition("\n")
        return content if present == "yes" else None

    def put_file(self, path: str, content: str, mode: int = 0o644) -> None:
        quoted = shlex.quote(path)
        encoded = base64.b64encode(content.encode()).decode()
        self.run(
            f'tmp=$(mktemp {quoted}.XXXXXX) && base64 -d > "$tmp" && '
            f'chmod {mode:o} "$tmp" && mv -f "$tmp" {quoted}',
            stdin=encoded.encode(),
        )

    def exec_channel(self, command: str):
        channel = self._session()
        channel.exec_command(command)
        return channel

    def _session(self, wait: float = 10.0):
        """A new session channel. sshd allows ten at a time per connection (MaxSessions) and
        frees one only when its command has exited, a moment after the channel closed: a
        refused open is retried for a while before it counts as a failure."""
        import paramiko

        deadline = time.monotonic() + wait
        delay = 0.05
        while True:
            transport = self._client.get_transport()
            if transport is None or not transport.is_active():
                raise paramiko.SSHException(f"SSH session not active ({_ended(transport)})")
            try:
                return transport.open_session(timeout=30)
            except paramiko.ChannelException as exc:
                if exc.code != _OPEN_CONNECT_FAILED or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def host_key(self) -> str:
        """The node's host key ("ssh-ed25519 AAAA…"), as verified when the session opened."""
        key = self._client.get_transport().get_remote_server_key()
        return f"{key.get_name()} {key.get_base64()}"

    def close(self) -> None:
        self._client.close()


def _ended(transport) -> str:
    """How an SSH connection ended, as paramiko's transport saw it."""
    cause = getattr(transport, "saved_exception", None)
    if isinstance(cause, EOFError):
        return "the node closed the connection"
    if cause is not None:
        return f"the connection failed: {cause!r}"
    return "it was closed on this side"


class NoConnector:
    """For commands that never contact a node (`down`): any attempt is a bug, said so."""

    def connect(self, label: str, address: str, pinned: str | None) -> Remote:
        raise RemoteError(f"{label}: this command does not contact nodes")


class ParamikoConnector:
    """Opens SSH sessions as root with the identity, verifying pinned host keys."""

    def __init__(
        self,
        identity: Identity,
        *,
        port: int = 22,
        timeout: float = 10.0,
        guard: Callable[[str, str], None] | None = None,
    ) -> None:
        self.identity = identity
        self.port = port
        self.timeout = timeout
        # Called with (label, address) before any packet is sent; raises to refuse.
        self.guard = guard

    def connect(self, label: str, address: str, pinned: str | None) -> ParamikoRemote:
        import paramiko

        if self.guard is not None:
            self.guard(label, address)

        pin = _Pinned(label, pinned)

        class Policy(paramiko.MissingHostKeyPolicy):
            def missing_host_key(self, client, hostname, key) -> None:
                pin.check(key)

        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(Policy())
        try:
            client.connect(
                address,
                port=self.port,
                username="root",
                pkey=self.identity.pkey,
                timeout=self.timeout,
                banner_timeout=self.timeout,
                auth_timeout=self.timeout,
                allow_agent=False,
                look_for_keys=False,
            )
        except HostKeyMismatch:
            client.close()
            raise
        except paramiko.AuthenticationException:
            client.close()
            raise RemoteError(
                f"{label}: root login with {self.identity.source} was refused",
                hint="the node must have been created with that key",
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            client.close()
            raise Unreachable(
                f"{label}: no SSH at {address}: {exc or type(exc).__name__}"
            ) from None
        return ParamikoRemote(label, client)
