"""`swarmboot sim` as users run it: its own process, a state file that survives restarts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from linode_api4 import LinodeClient

from swarmboot.sim.admin import SimAdmin

from .conftest import SPEC

EXE = str(Path(sys.executable).parent / "swarmboot")
TOKEN = "process-test-token"


def start(*args: str, env_token: str | None = TOKEN) -> tuple[subprocess.Popen, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SWARMBOOT_SIM_TOKEN", "LINODE_TOKEN", "LINODE_CLI_TOKEN")
    }
    if env_token:
        env["SWARMBOOT_SIM_TOKEN"] = env_token
    proc = subprocess.Popen(
        [EXE, "sim", "--port", "0", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = proc.stdout.readline().strip()
    if not url:
        proc.wait(timeout=10)
        return proc, ""
    deadline = time.monotonic() + 10
    while not SimAdmin(url, TOKEN).healthy():
        assert time.monotonic() < deadline, "the simulator did not come up"
        time.sleep(0.05)
    return proc, url


def stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=15)
    return proc.returncode, err


def test_state_survives_a_restart(tmp_path):
    state = tmp_path / "sim.json"
    checked = ("--validate-spec", str(SPEC))
    proc, url = start("--state", str(state), "--time-scale", "0.001", *checked)
    try:
        client = LinodeClient(TOKEN, base_url=url)
        script = client.linode.stackscript_create("kept", "#!/bin/bash\n", ["linode/debian12"])
        first = client.linode.instance_create(
            "g6-nanode-1",
            "eu-central",
            label="kept-1",
            image="linode/debian12",
            root_pass="correct-Horse-battery-42",
        )
        time.sleep(0.3)
        assert SimAdmin(url, TOKEN).violations() == []
    finally:
        code, err = stop(proc)
    assert code == 0, err
    assert "state saved in" in err
    assert state.stat().st_mode & 0o777 == 0o600  # it holds what instances were made with

    proc, url = start("--state", str(state), "--time-scale", "0.001", *checked)
    try:
        client = LinodeClient(TOKEN, base_url=url)
        (kept,) = client.linode.instances()
        assert (kept.id, kept.label, kept.ipv4, kept.status) == (
            first.id,
            "kept-1",
            first.ipv4,
            "running",
        )
        assert [s.label for s in client.linode.stackscripts(mine_only=True)] == ["kept"]
        assert script.id == client.linode.stackscripts(mine_only=True)[0].id
        second = client.linode.instance_create(
            "g6-nanode-1", "eu-central", label="kept-2", booted=False
        )
        assert second.id == first.id + 1 and second.ipv4 != first.ipv4
        assert SimAdmin(url, TOKEN).violations() == []
    finally:
        assert stop(proc)[0] == 0


def test_without_a_token_it_says_where_to_put_one():
    proc, url = start(env_token=None)
    assert url == ""
    assert proc.returncode == 1
    err = proc.stderr.read()
    assert err == (
        "Error: the simulator needs the token its clients will send; set one of "
        "SWARMBOOT_SIM_TOKEN, LINODE_TOKEN, LINODE_CLI_TOKEN (any value; never on "
        "the command line)\n"
    )


def test_a_busy_port_is_one_clear_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "SWARMBOOT_SIM_TOKEN": TOKEN}
        done = subprocess.run(
            [EXE, "sim", "--port", str(port)], env=env, capture_output=True, text=True, timeout=20
        )
    assert done.returncode == 1
    assert done.stderr.startswith(f"Error: cannot listen on 127.0.0.1:{port}: ")
    assert done.stderr.endswith("; choose another --port\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--public-range", "eu-central"], "write it as REGION=CIDR"),
        (["--public-range", "eu-central=198.51.100.0/33"], "Error: simulator settings: "),
        (["--public-range", "gb-lon=198.51.100.0/26"], "overlaps"),
        (["--backend", "no.such.module:factory"], "Error: backend 'no.such.module:factory'"),
    ],
)
def test_bad_settings_are_refused(args, message):
    env = {**os.environ, "SWARMBOOT_SIM_TOKEN": TOKEN}
    done = subprocess.run(
        [EXE, "sim", "--port", "0", *args], env=env, capture_output=True, text=True, timeout=20
    )
    assert done.returncode in (1, 2)
    assert message in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("option", "content", "says"),
    [
        (
            "--state",
            "{not json",
            "F: not JSON (Expecting property name enclosed in double quotes at line 1); give "
            "--state a file the simulator wrote, or a path that does not exist yet (it starts "
            "empty and writes it)",
        ),
        ("--state", '{"world": 1}', "F: not a simulator state (TypeError: "),
        ("--state", b"\xff", "F: not UTF-8 text (byte 0); give --state a file"),
        (
            "--validate-spec",
            "root:$6$SECRETHASH:19000:0:99999:7:::\n",
            "F: not JSON (Expecting value at line 1); --validate-spec takes Linode's OpenAPI "
            "spec (.json or .json.gz)",
        ),
        ("--validate-spec", "{}", "F: not an OpenAPI spec (no paths); --validate-spec takes"),
        ("--faults", b"\xff", "F: not UTF-8 text (byte 0); --faults takes a JSON object"),
    ],
)
def test_a_file_that_is_not_what_its_option_takes_is_named(tmp_path, option, content, says):
    given = tmp_path / "given.json"
    given.write_bytes(content if isinstance(content, bytes) else content.encode())
    env = {**os.environ, "SWARMBOOT_SIM_TOKEN": TOKEN}
    done = subprocess.run(
        [EXE, "sim", "--port", "0", option, str(given)],
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("Error: " + says.replace("F", str(given), 1)), done.stderr
    assert len(done.stderr.splitlines()) == 1 and "SECRETHASH" not in done.stderr


def test_a_backend_plugs_in_by_name(tmp_path, monkeypatch):
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("SWARMBOOT_TEST_BACKEND_LOG", str(log))
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    proc, url = start("--backend", "tests.sim.plugin_backend:make", "--time-scale", "0.001")
    try:
        client = LinodeClient(TOKEN, base_url=url)
        good = client.linode.instance_create(
            "g6-nanode-1",
            "gb-lon",
            label="good-1",
            image="linode/debian12",
            root_pass="correct-Horse-battery-42",
        )
        client.linode.instance_create(
            "g6-nanode-1",
            "gb-lon",
            label="broken-1",
            image="linode/debian12",
            root_pass="correct-Horse-battery-42",
        )
        deadline = time.monotonic() + 10
        while True:
            events = client.get("/account/events", filters={"action": "linode_boot"})["data"]
            if len([e for e in events if e["status"] in ("finished", "failed")]) == 2:
                break
            assert time.monotonic() < deadline
            time.sleep(0.05)
        by_label = {e["entity"]["label"]: e for e in events}
        assert by_label["good-1"]["status"] == "finished"
        assert by_label["broken-1"]["status"] == "failed"
        assert by_label["broken-1"]["message"] == "the machine's disk is unreadable"
        good.delete()
    finally:
        assert stop(proc)[0] == 0
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls[0] == {
        "call": "init",
        "ranges": {
            "eu-central": "198.51.100.0/26",
            "gb-lon": "198.51.100.64/26",
            "us-east": "198.51.100.128/26",
            "us-ord": "198.51.100.192/26",
        },
    }
    starts = [c for c in calls if c["call"] == "start"]
    assert {c["label"] for c in starts} == {"good-1", "broken-1"}
    assert all(c["first_boot"] and c["kernel"] == "linode/grub2" for c in starts)
    assert {"call": "delete", "id": good.id} in calls
    assert calls[-1] == {"call": "close"}
