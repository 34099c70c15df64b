"""Membership marks: only the SSH identity swarmboot logs in with can make them, the same
identity makes the same ones (from a file or from the agent), and a mark holds only for the
cluster, label and pinned host key it was made for."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import paramiko
import pytest

from swarmboot.errors import SwarmbootError
from swarmboot.keys import NoIdentity, load_identity
from swarmboot.marks import MARK_TAG, MemberMarks, NoMarks, marked_tags, member_marks

FP = "SHA256:" + "A" * 43


def _keygen(tmp_path, kind: str) -> paramiko.PKey:
    path = tmp_path / f"id_{kind}"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)], check=True, timeout=30
    )
    return paramiko.PKey.from_path(path)


def test_a_mark_holds_only_for_its_cluster_label_and_pin():
    marks = MemberMarks(b"k")
    mark = marks.mark("itframe", "itframe-eu-central-worker-1", FP)
    assert mark.startswith(MARK_TAG) and len(mark) == 30  # Linode takes tags up to 50
    tags = ("swarmboot:itframe", mark)
    assert marks.valid("itframe", "itframe-eu-central-worker-1", FP, tags)
    # Copied to another Linode (another label), another pin, another cluster: not valid.
    assert not marks.valid("itframe", "itframe-eu-central-worker-2", FP, tags)
    assert not marks.valid("itframe", "itframe-eu-central-worker-1", "SHA256:" + "B" * 43, tags)
    assert not marks.valid("shop", "itframe-eu-central-worker-1", FP, tags)
    # Made with another key: not valid.
    assert not MemberMarks(b"other").valid("itframe", "itframe-eu-central-worker-1", FP, tags)
    assert marked_tags(("a", MARK_TAG + "old", "b"), mark) == ("a", "b", mark)


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs OpenSSH's ssh-keygen")
@pytest.mark.parametrize("kind", ["ed25519", "rsa", "ecdsa"])
def test_the_same_identity_makes_the_same_marks_and_another_does_not(tmp_path, kind):
    key = _keygen(tmp_path, kind)
    again = paramiko.PKey.from_path(tmp_path / f"id_{kind}")
    assert member_marks(key, "a file").key == member_marks(again, "a file").key
    (tmp_path / "other").mkdir()
    other = _keygen(tmp_path / "other", kind)
    assert member_marks(key, "a file").key != member_marks(other, "a file").key


def _agent_keys(socket_path: str) -> tuple:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SSH_AUTH_SOCK", socket_path)
        return paramiko.Agent().get_keys()


@pytest.mark.skipif(shutil.which("ssh-agent") is None, reason="needs OpenSSH's ssh-agent")
def test_a_key_in_the_agent_makes_the_marks_its_file_makes(tmp_path):
    """CI and operators keep keys in ssh-agent: the marks must not depend on where the key
    is. An ECDSA key in the agent signs differently each time: refused with the fix."""
    keys = {kind: _keygen(tmp_path, kind) for kind in ("ed25519", "rsa", "ecdsa")}
    agent = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(tmp_path / "agent.sock")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        env = {**os.environ, "SSH_AUTH_SOCK": str(tmp_path / "agent.sock")}
        # ssh-agent -D listens before it would fork: wait for its socket, bounded.
        for _ in range(100):
            if (tmp_path / "agent.sock").exists():
                break
            time.sleep(0.05)
        for kind in keys:
            subprocess.run(
                ["ssh-add", "-q", str(tmp_path / f"id_{kind}")], env=env, check=True, timeout=30
            )
        held = {k.get_base64(): k for k in _agent_keys(env["SSH_AUTH_SOCK"])}
        for kind in ("ed25519", "rsa"):
            from_agent = held[keys[kind].get_base64()]
            assert member_marks(from_agent, "the SSH agent") == member_marks(keys[kind], "file")
        with pytest.raises(SwarmbootError) as refused:
            member_marks(held[keys["ecdsa"].get_base64()], "the SSH agent")
        assert str(refused.value) == (
            "SSH key from the SSH agent is ecdsa-sha2-nistp256: its signatures are not "
            "repeatable, so swarmboot cannot derive the key that marks the cluster's Linodes "
            "from it; use an Ed25519 or RSA key (ssh-keygen -t ed25519), or pass --ssh-key "
            "the ECDSA key's file"
        )
    finally:
        agent.terminate()
        agent.wait(timeout=10)


def test_without_an_identity_any_question_about_a_mark_says_how_to_give_one(tmp_path, monkeypatch):
    """`plan` of a cluster not made yet runs without a key: the first Linode of the cluster
    whose mark it would check stops it with the error every command gives."""
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh key
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)  # no agent
    with pytest.raises(NoIdentity) as missing:
        load_identity(None, {})  # no SWARMBOOT_SSH_KEY
    marks = NoMarks(missing=missing.value)
    for ask in (
        lambda: marks.valid("c", "c-eu-central-manager-1", FP, (MARK_TAG + "x",)),
        lambda: marks.mark("c", "c-eu-central-manager-1", FP),
    ):
        with pytest.raises(NoIdentity) as raised:
            ask()
        assert str(raised.value) == (
            "no SSH key to log in to the nodes with; pass --ssh-key FILE (a private key), set "
            "SWARMBOOT_SSH_KEY, load a key into ssh-agent, or create ~/.ssh/id_ed25519"
        )
