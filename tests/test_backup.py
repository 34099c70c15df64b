"""`backup` and `restore`: the sealed file, which manager a backup is taken from, and a swarm
made again from a backup after every manager was lost (simulator and fake nodes)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from swarmboot.apply import up
from swarmboot.backup import (
    Backup,
    BackupError,
    backup,
    backup_key,
    open_backup,
    plan_backup,
    plan_restore,
    restore,
    seal,
)
from swarmboot.cluster import observe
from swarmboot.errors import SwarmbootError

from .test_plan import build, load_case_spec
from .test_rebuild import _assert_converged
from .world import creates, make_context

PASS = b"correct horse battery staple"
MANAGERS = [
    "itframe-eu-central-manager-1",
    "itframe-eu-central-manager-2",
    "itframe-gb-lon-manager-1",
]


def test_a_sealed_backup_opens_with_its_passphrase_only():
    made = Backup({"cluster": "c", "taken_from": "m"}, b"\x1f\x8b archive", "SWMKEY-1-x")
    data = seal(made, PASS)
    assert b"archive" not in data and b"SWMKEY" not in data  # nothing readable but how
    assert open_backup(data, PASS, "f") == made
    with pytest.raises(BackupError) as wrong:
        open_backup(data, b"another passphrase", "f")
    assert str(wrong.value) == (
        "f cannot be opened with this passphrase (or it was changed since it was written); "
        "set SWARMBOOT_BACKUP_KEY (or --key-file) to the passphrase it was made with"
    )
    changed = data[:-5] + bytes([data[-5] ^ 1]) + data[-4:]
    with pytest.raises(BackupError, match="changed since it was written"):
        open_backup(changed, PASS, "f")
    with pytest.raises(BackupError, match="is not a swarmboot backup"):
        open_backup(b"PK\x03\x04 a zip", PASS, "f")


def test_the_passphrase_comes_from_the_environment_or_a_file_never_an_argument(tmp_path):
    with pytest.raises(SwarmbootError, match="SWARMBOOT_BACKUP_KEY is not set"):
        backup_key(None, {})
    with pytest.raises(SwarmbootError, match="too short"):
        backup_key(None, {"SWARMBOOT_BACKUP_KEY": "short"})
    assert backup_key(None, {"SWARMBOOT_BACKUP_KEY": PASS.decode()}) == PASS
    path = tmp_path / "key"
    path.write_bytes(PASS + b"\n")
    assert backup_key(path, {}) == PASS


CASES = sorted((Path(__file__).parent / "plan_cases" / "backup").glob("*.json"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_backup_and_restore_plan_case(path):
    """Which manager a backup is taken from (or why none), and what a restore does first."""
    case = json.loads(path.read_text())
    spec = load_case_spec(case)
    observed = build(spec, case["observed"])
    if case.get("restore"):
        found = Backup({"cluster": spec.cluster.name, **case["restore"]}, b"a")

        def plan():
            return plan_restore(spec, observed, found, lambda label: (f"bring {label} up",))

    else:

        def plan():
            return plan_backup(spec, observed, Path("b.sealed"))

    if "error" in case:
        with pytest.raises(SwarmbootError) as info:
            plan()
        assert str(info.value).startswith(case["error"]), str(info.value)
        return
    assert [s if isinstance(s, str) else s.describe() for s in plan()] == case["steps"]


def test_a_backup_then_every_manager_lost_then_a_restore(world, tmp_path):
    server, fleet = world
    up(make_context(server, fleet))
    fleet.secrets = {"db-password"}
    fleet.configs = {"app-settings-1"}
    ctx = make_context(server, fleet)
    before = {e.hostname: e.id for e in observe(ctx).swarm.nodes}
    out = tmp_path / "itframe.backup"
    backup(ctx, observe(ctx), out, PASS)
    # A manager that does not lead: the first of the spec leads.
    assert fleet.engine_stops == ["itframe-eu-central-manager-2"]
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    found = open_backup(out.read_bytes(), PASS, str(out))
    assert found.manifest["taken_from"] == "itframe-eu-central-manager-2"
    assert found.manifest["secrets"] == ["db-password"]
    assert found.manifest["configs"] == ["app-settings-1"]
    assert len(found.manifest["nodes"]) == 9

    for label in MANAGERS:
        fleet.node(label).down = True
    lost = make_context(server, fleet)
    asked = []
    result = restore(lost, found, confirm=lambda: asked.append(1))
    assert asked == [1]
    assert ("restore", "itframe-eu-central-manager-2") in fleet.calls
    said = "\n".join(lost.reporter.lines)
    assert "Mark itframe-eu-central-manager-2 for a rebuild: it is down in the swarm" not in said
    assert "Restore the swarm's raft state on itframe-eu-central-manager-2" in said
    assert "Make a new swarm from itframe-eu-central-manager-2's raft state" in said
    _assert_converged(lost, fleet)
    assert creates(server) == 9  # the managers rebuilt in place
    assert result.steps_run
    # The nodes that answered all along kept their entries: they are members of the restored
    # swarm, not joined to a new one; the managers were rebuilt and joined anew.
    after = {e.hostname: e.id for e in observe(lost).swarm.nodes}
    assert {h for h in after if after[h] == before[h]} == set(before) - set(MANAGERS) | {
        "itframe-eu-central-manager-2"
    }


def test_a_restore_over_a_working_swarm_is_refused(world, tmp_path):
    server, fleet = world
    up(make_context(server, fleet))
    ctx = make_context(server, fleet)
    out = tmp_path / "b"
    backup(ctx, observe(ctx), out, PASS)
    found = open_backup(out.read_bytes(), PASS, "b")
    with pytest.raises(SwarmbootError, match="a restore would replace a working swarm's state"):
        restore(make_context(server, fleet), found, confirm=lambda: None)
    assert ("restore", "itframe-eu-central-manager-2") not in fleet.calls
