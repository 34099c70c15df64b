"""Membership marks: a tag only swarmboot, with the operator's SSH identity, can make.

The cluster's tag and a node label are anyone's on the account to give a Linode, and so is a
host-key pin (`hk:`) of the giver's own key. What makes a Linode a member is a mark made when
swarmboot created (or rebuilt) it: `sbm:` and 26 base32 characters, an HMAC-SHA256 over the
cluster, the label and the pinned host key's fingerprint, with a key derived from the SSH
identity swarmboot logs in with (a signature over a fixed text: repeatable for Ed25519 and
RSA keys, in a file or in the agent; an ECDSA key is read from its file). Whoever lacks that
identity cannot make a mark, and a mark copied from one Linode is only valid under the same
label and pin, which Linode keeps unique while the original exists and whose host key only
the original holds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field

from swarmboot.errors import SwarmbootError

__all__ = ["MARK_TAG", "MemberMarks", "NoMarks", "marked_tags", "member_marks"]

MARK_TAG = "sbm:"
# What the identity signs to give the key: fixed, so that the same identity gives the same key,
# and of no use as anything else signed (it is not an SSH authentication request).
_CHALLENGE = b"swarmboot membership mark key, version 1\n"


@dataclass(frozen=True)
class MemberMarks:
    key: bytes = field(repr=False)

    def mark(self, cluster: str, label: str, fingerprint: str | None) -> str:
        """The mark of a Linode of `cluster` under `label` with the pinned host key
        `fingerprint` (`SHA256:…`; None for a Linode without a pin)."""
        text = f"swarmboot mark v1\n{cluster}\n{label}\n{fingerprint or ''}".encode()
        digest = hmac.new(self.key, text, hashlib.sha256).digest()[:16]
        return MARK_TAG + base64.b32encode(digest).decode().rstrip("=").lower()

    def valid(self, cluster: str, label: str, fingerprint: str | None, tags: Iterable[str]) -> bool:
        wanted = self.mark(cluster, label, fingerprint)
        return any(hmac.compare_digest(t, wanted) for t in tags if t.startswith(MARK_TAG))


@dataclass(frozen=True)
class NoMarks(MemberMarks):
    """The marks when no SSH identity was found (`plan` of a cluster not made yet): any
    question about a Linode's mark needs the identity, and raises `missing`, the error that
    says how to give one. A listing with none of the cluster's Linodes asks none."""

    key: bytes = field(default=b"", repr=False)
    missing: SwarmbootError = field(
        default_factory=lambda: SwarmbootError("no SSH identity"), repr=False
    )

    def mark(self, cluster: str, label: str, fingerprint: str | None) -> str:
        raise self.missing

    def valid(self, cluster: str, label: str, fingerprint: str | None, tags: Iterable[str]) -> bool:
        raise self.missing


def marked_tags(tags: Iterable[str], mark: str) -> tuple[str, ...]:
    """`tags` with `mark` instead of any mark they held."""
    return (*(t for t in tags if not t.startswith(MARK_TAG)), mark)


def member_marks(pkey: object, source: str) -> MemberMarks:
    """The marks of the identity `pkey` (a paramiko key, from a file or the agent)."""
    import paramiko

    name = pkey.get_name()  # type: ignore[attr-defined]
    if name == "ssh-ed25519" or name.startswith("ssh-rsa") or name.startswith("rsa-sha2"):
        algorithm = "rsa-sha2-256" if "rsa" in name else None
        try:
            signed = pkey.sign_ssh_data(_CHALLENGE, algorithm)  # type: ignore[attr-defined]
        except paramiko.SSHException as exc:
            raise SwarmbootError(
                f"SSH key from {source} would not sign ({exc}), so swarmboot cannot tell its "
                "Linodes from others'",
                hint="unlock the key in ssh-agent, or pass --ssh-key its file",
            ) from None
        # The signature blob, the same from a file's key and the agent's: its algorithm, then
        # the signature itself.
        blob = paramiko.Message(signed if isinstance(signed, bytes) else signed.asbytes())
        algorithm, signature = blob.get_string(), blob.get_binary()
        return MemberMarks(
            hmac.new(_CHALLENGE, algorithm + b"\0" + signature, hashlib.sha256).digest()
        )
    if isinstance(pkey, paramiko.ECDSAKey):
        numbers = pkey.signing_key.private_numbers()  # type: ignore[attr-defined]
        secret = numbers.private_value.to_bytes(66, "big")
        return MemberMarks(hmac.new(_CHALLENGE, b"ecdsa\0" + secret, hashlib.sha256).digest())
    raise SwarmbootError(
        f"SSH key from {source} is {name}: its signatures are not repeatable, so swarmboot "
        "cannot derive the key that marks the cluster's Linodes from it",
        hint="use an Ed25519 or RSA key (ssh-keygen -t ed25519), or pass --ssh-key the "
        "ECDSA key's file",
    )
