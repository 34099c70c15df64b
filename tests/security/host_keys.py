"""Host-key swaps: swarmboot's ParamikoConnector against a local OpenSSH server (Debian's sshd,
as root, on 127.0.0.1 and a free high port, ended by its PID) whose host key is not the one
pinned: another key, no pin, a pin of another key type, the right key's fingerprint in another
form, a server whose key was swapped for one of another type.

Refused properly: `HostKeyMismatch` (a RemoteError naming the fingerprints) before any command
runs: sshd logs no accepted login for it. The pinned key itself is the control: it must connect
(accepted, valid), or the category proves nothing.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from .common import NOT_REFUSED, REFUSED, VALID, Outcome

CATEGORY = "hostkeys"
TITLE = "host-key swaps (ParamikoConnector vs sshd)"
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (sshd runs as root to take the login)"
    if not Path(SSHD).exists():
        return "needs Debian's openssh-server (sshd); `make host-deps` installs it"
    return None


def _private(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )


def _fingerprint(key) -> str:
    from swarmboot.keys import fingerprint

    line = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return fingerprint(base64.b64decode(line.split()[1]))


@dataclass(frozen=True)
class Keys:
    served: object  # the ed25519 host key of the first server
    other: object  # another ed25519 key
    ecdsa: object
    rsa: object
    client: object  # the identity swarmboot logs in with

    @staticmethod
    def make() -> Keys:
        return Keys(
            ed25519.Ed25519PrivateKey.generate(),
            ed25519.Ed25519PrivateKey.generate(),
            ec.generate_private_key(ec.SECP256R1()),
            rsa.generate_private_key(65537, 2048),
            ed25519.Ed25519PrivateKey.generate(),
        )

    def md5(self) -> str:
        line = self.served.public_key().public_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        digest = hashlib.md5(base64.b64decode(line.split()[1])).hexdigest()
        return "MD5:" + ":".join(digest[i : i + 2] for i in range(0, 32, 2))


@dataclass(frozen=True)
class PinCase:
    id: str
    what: str
    pin: Callable[[Keys], str | None]
    server: str = "served"  # which key the server offers: served, or ecdsa (a swapped one)
    connects: bool = False  # the control: the pinned key itself


def _right(k: Keys) -> str:
    return _fingerprint(k.served)


CASES = [
    PinCase("pinned-key", "the pinned key itself (control: must connect)", _right, connects=True),
    PinCase("another-key", "a pin of another ed25519 key", lambda k: _fingerprint(k.other)),
    PinCase("no-pin", "no pin at all (no hk: tag)", lambda k: None),
    PinCase("empty-pin", "an empty pin", lambda k: ""),
    PinCase("ecdsa-pin", "a pin of an ECDSA key", lambda k: _fingerprint(k.ecdsa)),
    PinCase("rsa-pin", "a pin of an RSA key", lambda k: _fingerprint(k.rsa)),
    PinCase(
        "client-key-pin", "a pin of swarmboot's own login key", lambda k: _fingerprint(k.client)
    ),
    PinCase("truncated-pin", "the right fingerprint cut short", lambda k: _right(k)[:-6]),
    PinCase("prefix-pin", "the fingerprint's prefix alone", lambda k: "SHA256:"),
    PinCase("md5-pin", "the right key as an MD5 fingerprint", lambda k: k.md5()),
    PinCase("bare-pin", "the right fingerprint without SHA256:", lambda k: _right(k)[7:]),
    PinCase("lowercase-pin", "the right fingerprint in lower case", lambda k: _right(k).lower()),
    PinCase("newline-pin", "the right fingerprint and a newline", lambda k: _right(k) + "\n"),
    PinCase(
        "swapped-to-ecdsa",
        "the server's key swapped for an ECDSA one, the old ed25519 pin kept",
        _right,
        server="ecdsa",
    ),
]


class Sshd:
    """Debian's sshd on 127.0.0.1 and a free port, offering one host key."""

    def __init__(self, where: Path, host_key, client_public: str) -> None:
        where.mkdir(parents=True)
        (where / "host_key").write_bytes(_private(host_key))
        (where / "host_key").chmod(0o600)
        (where / "authorized_keys").write_text(client_public + "\n")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        config = where / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {where}/host_key\n"
            f"AuthorizedKeysFile {where}/authorized_keys\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            f"StrictModes no\nPidFile {where}/sshd.pid\nLogLevel INFO\n"
        )
        Path("/run/sshd").mkdir(exist_ok=True)
        self.log = where / "sshd.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=log)
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"sshd did not start: {self.log.read_text()}")
            time.sleep(0.05)

    def logins(self) -> int:
        return self.log.read_text(errors="replace").count("Accepted publickey")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _try(connector, sshd: Sshd, case: PinCase, keys: Keys) -> tuple[str, str]:
    from swarmboot.remote import HostKeyMismatch, RemoteError

    before = sshd.logins()
    try:
        remote = connector(sshd.port).connect("node-1", "127.0.0.1", case.pin(keys))
    except HostKeyMismatch as exc:
        logged = sshd.logins() - before
        if case.connects:
            return NOT_REFUSED, f"the control was refused: {exc}"
        if logged:
            return NOT_REFUSED, f"HostKeyMismatch, but sshd accepted {logged} login(s): {exc}"
        return REFUSED, ""
    except RemoteError as exc:
        return NOT_REFUSED, f"{type(exc).__name__} (not a host-key refusal): {exc}"
    try:
        ran = remote.run("echo swept")
    finally:
        remote.close()
    if case.connects and ran == "swept\n":
        return VALID, "the pinned key connects and runs a command (the control)"
    return NOT_REFUSED, f"connected with pin {case.pin(keys)!r} and ran a command: {ran!r}"


def run() -> list[Outcome]:
    import paramiko

    from swarmboot.keys import Identity
    from swarmboot.remote import ParamikoConnector

    keys = Keys.make()
    pkey = paramiko.Ed25519Key.from_private_key(io.StringIO(_private(keys.client).decode()))
    identity = Identity(pkey, "the sweep's key")
    where = Path(tempfile.mkdtemp(prefix="swarmboot-sweep-sshd-"))
    servers = {
        "served": Sshd(where / "ed25519", keys.served, identity.public_line),
        "ecdsa": Sshd(where / "ecdsa", keys.ecdsa, identity.public_line),
    }
    out = []
    try:
        for case in CASES:
            verdict, detail = _try(
                lambda port: ParamikoConnector(identity, port=port, timeout=5),
                servers[case.server],
                case,
                keys,
            )
            out.append(Outcome(CATEGORY, case.id, case.what, verdict, detail))
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(where, ignore_errors=True)
    return out
