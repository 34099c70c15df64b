"""ParamikoConnector against a real OpenSSH server on 127.0.0.1 (as root; sshd from Debian)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swarmboot.keys import Identity, load_identity, new_host_key
from swarmboot.remote import HostKeyMismatch, ParamikoConnector, RemoteError, Unreachable
from swarmboot.routes import NotRoutable, require_local_route

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sshd(tmp_path):
    if os.geteuid() != 0 or not Path(SSHD).exists():
        if os.environ.get("SWARMBOOT_REQUIRE_DEBIAN_TESTS") == "1":
            pytest.fail("needs root and Debian's openssh-server (make host-deps)")
        pytest.skip("needs root and Debian's openssh-server")
    host = new_host_key()
    (tmp_path / "host_key").write_bytes(host.private_openssh)
    (tmp_path / "host_key").chmod(0o600)
    client = Ed25519PrivateKey.generate()
    key_file = tmp_path / "client"
    key_file.write_bytes(
        client.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    identity = load_identity(key_file)
    (tmp_path / "authorized_keys").write_text(identity.public_line + "\n")
    port = _free_port()
    config = tmp_path / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp_path}/host_key\n"
        f"AuthorizedKeysFile {tmp_path}/authorized_keys\nPermitRootLogin prohibit-password\n"
        f"PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        f"StrictModes no\nPidFile {tmp_path}/sshd.pid\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert time.monotonic() < deadline, "sshd did not start"
        time.sleep(0.05)
    yield port, host, identity
    proc.terminate()
    proc.wait(timeout=10)


def test_commands_files_and_the_pinned_key(sshd, tmp_path):
    port, host, identity = sshd
    remote = ParamikoConnector(identity, port=port).connect("node-1", "127.0.0.1", host.fingerprint)
    try:
        assert remote.run("echo hello; echo err >&2") == "hello\nerr\n"
        target = str(tmp_path / "dir with space" / "members.nft")
        Path(target).parent.mkdir()
        remote.put_file(target, "add element …\nline 2\n", mode=0o600)
        assert Path(target).read_text() == "add element …\nline 2\n"
        assert oct(Path(target).stat().st_mode & 0o777) == "0o600"
        assert remote.read_file(target) == "add element …\nline 2\n"
        assert remote.read_file(str(tmp_path / "missing")) is None
        assert remote.run("cat", stdin=b"piped") == "piped"
        # The verified key, as known_hosts takes it: exactly the pinned pair's public half.
        assert remote.host_key() == " ".join(host.public_line.split()[:2])
        with pytest.raises(RemoteError) as info:
            remote.run("echo first; echo last >&2; exit 3")
        assert (
            str(info.value) == "node-1: `echo first; echo last >&2; exit 3` exited with 3: "
            "first | last"
        )
    finally:
        remote.close()


def test_another_host_key_is_refused_naming_both(sshd):
    port, host, identity = sshd
    other = new_host_key()
    with pytest.raises(HostKeyMismatch) as info:
        ParamikoConnector(identity, port=port).connect("node-1", "127.0.0.1", other.fingerprint)
    assert str(info.value).startswith(
        f"node-1: the SSH host key is {host.fingerprint}, but "
        f"{other.fingerprint} is pinned: refusing to connect"
    )
    with pytest.raises(HostKeyMismatch, match="no host key is pinned for it"):
        ParamikoConnector(identity, port=port).connect("node-1", "127.0.0.1", None)


def test_a_key_the_node_does_not_know_is_refused(sshd):
    port, host, _ = sshd
    stranger = Identity(_ed25519(), "a stranger")
    with pytest.raises(RemoteError, match="root login with a stranger was refused"):
        ParamikoConnector(stranger, port=port).connect("node-1", "127.0.0.1", host.fingerprint)


def _ed25519() -> paramiko.PKey:
    import io

    key = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    return paramiko.Ed25519Key.from_private_key(io.StringIO(key.decode()))


def test_nobody_listening_is_unreachable():
    identity = Identity(_ed25519(), "test")
    with pytest.raises(Unreachable, match=r"node-9: no SSH at 127\.0\.0\.1"):
        ParamikoConnector(identity, port=_free_port(), timeout=2).connect(
            "node-9", "127.0.0.1", "SHA256:x"
        )


def test_the_guard_refuses_before_any_packet():
    identity = Identity(_ed25519(), "test")
    # TEST-NET-3 is routed out through the default route on this machine (if at all).
    connector = ParamikoConnector(identity, guard=require_local_route)
    with pytest.raises(NotRoutable, match=r"203\.0\.113\.77 is not on this machine"):
        connector.connect("far", "203.0.113.77", "SHA256:x")
    require_local_route("here", "127.0.0.1")  # loopback is always fine


def test_an_eof_that_races_the_nodes_close_does_not_end_the_session(sshd, monkeypatch):
    """paramiko builds a channel's EOF under the channel's lock but sends it after letting go
    of it. When the node's CLOSE is answered in between, our EOF follows our CLOSE and sshd
    drops the whole connection ("ieof packet referred to nonexistent channel"; paramiko
    issues 1115 and 1705), and every other channel with it. Here the window is held open: the
    EOF of this thread is sent half a second late, while a command that exits at once closes
    its channel."""
    import threading

    from paramiko.common import cMSG_CHANNEL_EOF

    port, host, identity = sshd
    remote = ParamikoConnector(identity, port=port).connect("node-1", "127.0.0.1", host.fingerprint)
    send = paramiko.Transport._send_user_message

    def late_eof(transport, message):
        if (
            message.asbytes()[:1] == cMSG_CHANNEL_EOF
            and threading.current_thread() is not transport
        ):
            time.sleep(0.5)
        return send(transport, message)

    monkeypatch.setattr(paramiko.Transport, "_send_user_message", late_eof)
    try:
        for _ in range(3):
            assert remote.run("true") == ""
        assert remote.run("cat", stdin=b"in") == "in"
    finally:
        remote.close()
