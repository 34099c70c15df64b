"""`secret set`'s decisions: the next version, or nothing when the newest holds the value;
names and values checked before anything is sent."""

from __future__ import annotations

import pytest

from swarmboot.errors import ExitCode
from swarmboot.stack_secrets import (
    MAX_BYTES,
    CreateSecret,
    SecretError,
    check_name,
    check_value,
    plan_secret,
    value_hmac,
)
from swarmboot.stacks import SwarmSecret

KEY = b"k" * 32
VIA = "itframe-eu-central-manager-1"


def _versions(*values: bytes) -> tuple[SwarmSecret, ...]:
    return tuple(
        SwarmSecret(f"db.v{n}", "db", n, value_hmac(KEY, "db", v))
        for n, v in enumerate(values, start=1)
    )


def test_a_first_value_is_version_1():
    (step,) = plan_secret(VIA, "db", b"one", value_hmac(KEY, "db", b"one"), ())
    assert (step.name, step.remove) == ("db.v1", ())
    assert step.describe() == "Make secret db.v1 (the new value of db)"
    assert "one" not in repr(step)


def test_the_same_value_again_plans_nothing():
    assert (
        plan_secret(VIA, "db", b"two", value_hmac(KEY, "db", b"two"), _versions(b"one", b"two"))
        == ()
    )


def test_a_new_value_is_the_next_version_and_older_ones_but_the_newest_go():
    steps = plan_secret(VIA, "db", b"three", value_hmac(KEY, "db", b"three"), _versions(b"1", b"2"))
    assert steps == (CreateSecret(VIA, "db", 3, value_hmac(KEY, "db", b"three"), b"", ("db.v1",)),)


def test_the_keyed_hash_depends_on_the_key_name_and_value():
    base = value_hmac(KEY, "db", b"v")
    assert base != value_hmac(b"x" * 32, "db", b"v")
    assert base != value_hmac(KEY, "db2", b"v") != value_hmac(KEY, "db", b"w")
    assert len(base) == 32 and set(base) <= set("0123456789abcdef")


@pytest.mark.parametrize("name", ["", "-x", "a b", "a/b", "x" * 49, "db.v1", "ü"])
def test_bad_names_are_refused(name):
    with pytest.raises(SecretError) as refused:
        check_name(name)
    assert refused.value.exit_code == ExitCode.BAD_SPEC


@pytest.mark.parametrize("value", [b"", b"x" * (MAX_BYTES + 1)])
def test_empty_and_oversized_values_are_refused(value):
    with pytest.raises(SecretError) as refused:
        check_value(value, "stdin")
    assert str(refused.value).startswith("stdin gave")
