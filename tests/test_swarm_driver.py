"""DockerSwarm's own logic around the daemon's answers (the lab tests drive a real daemon)."""

from __future__ import annotations

import pytest

from swarmboot.swarm import DockerSwarm, LocalSwarm, SwarmError


class _Node:
    label = "node-1"


def _driver(states: list[str], join_error: str | None) -> tuple[DockerSwarm, list[str]]:
    driver = DockerSwarm(timeout=5.0)
    calls: list[str] = []

    def local(remote):
        state = states.pop(0) if len(states) > 1 else states[0]
        return LocalSwarm("id-1", state, False)

    def call(remote, what, fn, secrets=(), retry=True):
        calls.append(what)
        if join_error:
            raise SwarmError(f"{remote.label}: {what}: {join_error}")

    driver.local = local  # type: ignore[method-assign]
    driver._call = call  # type: ignore[method-assign]
    return driver, calls


BACKGROUND = (
    '503 Server Error: Service Unavailable ("Timeout was reached before node joined. The '
    'attempt to join the swarm will continue in the background. Use the "docker info" '
    'command to see the current swarm status of your node.")'
)


def test_a_join_that_goes_on_in_the_background_is_waited_for(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda s: None)
    driver, calls = _driver(["inactive", "pending", "pending", "active"], BACKGROUND)
    driver.join(_Node(), "198.51.100.2", "SWMTKN-1-secret", "198.51.100.9")
    assert calls == ["docker swarm join"]  # sent once, then only looked at


def test_a_pending_node_is_not_joined_again():
    driver, calls = _driver(["pending", "active"], None)
    driver.join(_Node(), "198.51.100.2", "SWMTKN-1-secret", "198.51.100.9")
    assert calls == []


def test_a_background_join_that_ends_in_error_says_so(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda s: None)
    driver, _ = _driver(["inactive", "pending", "error"], BACKGROUND)
    with pytest.raises(SwarmError, match="node-1: its join ended error, not active"):
        driver.join(_Node(), "198.51.100.2", "SWMTKN-1-secret", "198.51.100.9")


def test_other_join_errors_are_not_waited_for():
    driver, calls = _driver(["inactive"], "invalid join token")
    with pytest.raises(SwarmError, match="invalid join token"):
        driver.join(_Node(), "198.51.100.2", "SWMTKN-1-secret", "198.51.100.9")
    assert calls == ["docker swarm join"]


def test_a_join_whose_answer_timed_out_is_looked_at_before_it_counts_as_failed(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda s: None)
    timed_out = "UnixHTTPConnectionPool(host='localhost', port=None): Read timed out."
    driver, calls = _driver(["inactive", "pending", "active"], timed_out)
    driver.join(_Node(), "198.51.100.2", "SWMTKN-1-secret", "198.51.100.9")
    assert calls == ["docker swarm join"]


RESET = "('Connection aborted.', ConnectionResetError(104, 'Connection reset by peer'))"


def _init_driver(answers: list[str | None], states: list[tuple[str, bool]]):
    """A driver whose calls (init, join) fail with `answers` in turn (None: it works) and
    whose node reports `states` (state, manager) in turn."""
    driver = DockerSwarm(timeout=5.0)
    calls: list[str] = []

    def local(remote):
        state, manager = states.pop(0) if len(states) > 1 else states[0]
        return LocalSwarm("id-1", state, manager)

    def call(remote, what, fn, secrets=(), retry=True):
        calls.append(what)
        error = answers.pop(0)
        if error:
            raise SwarmError(f"{remote.label}: {what}: {error}")

    driver.local = local  # type: ignore[method-assign]
    driver._call = call  # type: ignore[method-assign]
    return driver, calls


def test_an_init_whose_connection_broke_before_it_was_carried_out_is_sent_again():
    driver, calls = _init_driver([RESET, None], [("inactive", False)])
    driver.init(_Node(), "198.51.100.2", 20)
    assert calls == ["docker swarm init", "docker swarm init"]


def test_an_init_carried_out_whose_answer_was_lost_is_not_sent_again():
    driver, calls = _init_driver([RESET], [("active", True)])
    driver.init(_Node(), "198.51.100.2", 20)
    assert calls == ["docker swarm init"]


def test_an_init_on_a_node_in_another_state_is_not_repeated():
    driver, calls = _init_driver([RESET], [("pending", False)])
    with pytest.raises(SwarmError, match="Connection reset"):
        driver.init(_Node(), "198.51.100.2", 20)
    assert calls == ["docker swarm init"]


def _join_driver(answers: list[str | None], states: list[str]):
    """The same, for joins: the node is never a manager."""
    return _init_driver(answers, [(state, False) for state in states])


def test_a_join_whose_connection_broke_before_it_reached_the_daemon_is_sent_again():
    # inactive before the join, and still inactive after it broke: it never arrived
    driver, calls = _join_driver([RESET, None], ["inactive", "inactive"])
    driver.join(_Node(), "198.51.100.2", "SWMTKN-1-secret", "198.51.100.9")
    assert calls == ["docker swarm join", "docker swarm join"]


def test_a_join_that_broke_twice_is_said_with_its_cause():
    driver, calls = _join_driver([RESET, RESET], ["inactive"])
    with pytest.raises(SwarmError, match="Connection reset"):
        driver.join(_Node(), "198.51.100.2", "SWMTKN-1-secret", "198.51.100.9")
    assert calls == ["docker swarm join", "docker swarm join"]


def test_a_join_whose_connection_broke_after_it_arrived_is_waited_for(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda s: None)
    driver, calls = _join_driver([RESET], ["inactive", "pending", "active"])
    driver.join(_Node(), "198.51.100.2", "SWMTKN-1-secret", "198.51.100.9")
    assert calls == ["docker swarm join"]


def test_an_init_the_daemon_refuses_is_not_sent_again():
    refused = "must specify a listening address"
    driver, calls = _init_driver([refused], [("inactive", False)])
    with pytest.raises(SwarmError, match="must specify a listening address"):
        driver.init(_Node(), "198.51.100.2", 20)
    assert calls == ["docker swarm init"]


def test_a_broken_connection_names_why_the_tunnel_had_no_ssh_channel():
    import requests

    class Tunnel:
        def why(self):
            return "no SSH channel for Docker: ChannelException(2, 'Connect failed')"

        def close(self):
            pass

    class Client:
        def close(self):
            pass

    driver = DockerSwarm(timeout=5.0)
    node = _Node()
    driver._clients[id(node)] = (Tunnel(), Client())

    def broken(client):
        raise requests.ConnectionError(RESET)

    with pytest.raises(SwarmError) as caught:
        driver._call(node, "docker swarm init", broken, retry=False)
    assert str(caught.value).endswith(
        "(no SSH channel for Docker: ChannelException(2, 'Connect failed'))"
    )
    assert driver._clients == {}  # dropped: the next call gets a fresh tunnel


class _DialStdio:
    """A node's `docker system dial-stdio` over an SSH channel, as paramiko presents it: it
    answers part of a request, then dies as a process a signal ended does (its stderr written,
    no exit status from sshd, so paramiko's -1 once the channel closes)."""

    def __init__(self, stderr: bytes, status: int = -1) -> None:
        import threading

        self.status_event = threading.Event()
        self.exit_status = -1
        self._stderr = stderr
        self._status = status
        self._out = [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"]
        self.got = b""

    def sendall(self, data: bytes) -> None:
        self.got += data

    def recv(self, size: int) -> bytes:
        if self._out:
            return self._out.pop(0)
        self.exit_status = self._status
        self.status_event.set()
        return b""

    def recv_stderr_ready(self) -> bool:
        return bool(self._stderr)

    def recv_stderr(self, size: int) -> bytes:
        out, self._stderr = self._stderr, b""
        return out

    def shutdown_write(self) -> None:
        pass

    def close(self) -> None:
        self.status_event.set()


CRASH = (
    b"fatal error: unexpected signal during runtime execution\n"
    b"[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x55d1]\n\n"
    b"goroutine 1 [running]:\n"
)


@pytest.mark.parametrize(
    "status, said",
    [
        (
            -1,
            "docker system dial-stdio on the node ended with no exit status: fatal error: "
            "unexpected signal during runtime execution / [signal SIGSEGV: segmentation "
            "violation code=0x1 addr=0x0 pc=0x55d1]",
        ),
        (2, "docker system dial-stdio on the node ended with exit status 2: fatal error: "),
    ],
)
def test_a_connection_that_dial_stdio_dropped_names_how_it_ended(status, said):
    import docker

    class Remote:
        label = "node-1"

        def exec_channel(self, command):
            assert command == "docker system dial-stdio"
            return _DialStdio(CRASH, status)

    driver = DockerSwarm(timeout=5.0)
    node = Remote()

    def info(client):
        return client.info()

    try:
        with pytest.raises(SwarmError) as caught:
            driver._call(node, "docker info", info, retry=False)
    finally:
        driver._drop(node)
    assert said in str(caught.value)
    assert str(caught.value).startswith("node-1: docker info: ")
    assert docker  # the SDK itself read the broken answer


class _Answer:
    def __init__(self, status: int) -> None:
        self.status_code = status
        self.reason = "Service Unavailable"
        self.url = "http+docker://localhost/v1.41/nodes/n1"


def _refused(status: int, explanation: str) -> Exception:
    import docker.errors

    return docker.errors.APIError("refused", _Answer(status), explanation=explanation)


def _remover(role: str, refusals: list[Exception]) -> tuple[DockerSwarm, list[str]]:
    """A driver over a client whose node `n1` has `role` and whose removals are refused with
    `refusals` in turn, then done."""
    from types import SimpleNamespace

    done: list[str] = []
    # A manager in raft has a manager status; one a forced new cluster left behind has none.
    status = {"ManagerStatus": {"Reachability": "reachable"}} if role == "manager" else {}
    node = SimpleNamespace(attrs={"Spec": {"Role": role.removeprefix("forced-out ")}, **status})

    def update(spec: dict) -> None:
        done.append(f"demote to {spec['Role']}")
        node.attrs = {"Spec": spec}

    def remove_node(node_id: str, force: bool) -> None:
        if refusals:
            raise refusals.pop(0)
        done.append(f"remove {node_id}")

    node.update = update
    client = SimpleNamespace(
        api=SimpleNamespace(remove_node=remove_node),
        nodes=SimpleNamespace(get=lambda node_id: node),
    )
    driver = DockerSwarm(timeout=5.0)
    driver._call = lambda remote, what, fn, secrets=(), retry=True: fn(client)  # type: ignore[method-assign]
    return driver, done


def test_removing_a_manager_waits_out_a_leader_election(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda s: None)
    driver, done = _remover(
        "manager",
        [
            _refused(503, "rpc error: the swarm does not have a leader"),
            _refused(400, "node n1 must be demoted to worker before removal"),
        ],
    )
    driver.remove(_Node(), "n1")
    assert done == ["demote to worker", "remove n1"]


def test_a_manager_a_forced_new_cluster_left_behind_is_removed_without_a_demotion():
    """Docker refuses to demote it ("can't find manager in raft memberlist")."""
    driver, done = _remover("forced-out manager", [])
    driver.remove(_Node(), "n1")
    assert done == ["remove n1"]


def test_a_removal_the_daemon_refuses_for_good_is_said():
    import docker.errors

    driver, done = _remover("worker", [_refused(400, "node n1 is not down and can't be removed")])
    with pytest.raises(docker.errors.APIError, match="can't be removed"):
        driver.remove(_Node(), "n1")
    assert done == []


class _SwarmModel:
    """`client.swarm` as the docker SDK has it: attrs from `GET /swarm`, read by reload."""

    def __init__(self, attrs: dict) -> None:
        self.attrs = attrs

    def reload(self) -> None:
        pass


class _Api:
    def __init__(self, model: _SwarmModel) -> None:
        self.model = model
        self.updates: list[tuple[int, dict]] = []

    def update_swarm(self, version: int, swarm_spec: dict) -> None:
        self.updates.append((version, swarm_spec))
        self.model.attrs = {"Version": {"Index": version + 1}, "Spec": swarm_spec}


class _Client:
    def __init__(self, attrs: dict) -> None:
        self.swarm = _SwarmModel(attrs)
        self.api = _Api(self.swarm)


def test_the_heartbeat_is_set_in_the_whole_spec_and_nothing_else_changes():
    """Docker's swarm update takes the whole spec: one built from the heartbeat alone
    would turn autolock off and reset the certificates' expiry."""
    spec = {
        "Name": "default",
        "Orchestration": {"TaskHistoryRetentionLimit": 5},
        "Raft": {"SnapshotInterval": 10000, "ElectionTick": 10, "HeartbeatTick": 1},
        "Dispatcher": {"HeartbeatPeriod": 5_000_000_000},
        "CAConfig": {"NodeCertExpiry": 7_776_000_000_000_000},
        "EncryptionConfig": {"AutoLockManagers": True},
    }
    client = _Client({"ID": "c1", "Version": {"Index": 41}, "Spec": spec})
    driver = DockerSwarm(timeout=5.0)
    driver._call = lambda remote, what, fn, secrets=(), retry=True: fn(client)  # type: ignore[method-assign]
    assert driver.set_heartbeat(_Node(), 20) is True
    ((version, sent),) = client.api.updates
    assert version == 41
    assert sent == {**spec, "Dispatcher": {"HeartbeatPeriod": 20_000_000_000}}
    assert driver.set_heartbeat(_Node(), 20) is False  # so already: nothing sent
    assert len(client.api.updates) == 1


class _RotatingApi:
    """`client.api` of a swarm that takes updates as Docker does: the version must be the
    current one; a token rotation makes new tokens."""

    def __init__(self, model: _SwarmModel, refuse: str | None = None) -> None:
        self.model = model
        self.refuse = refuse
        self.updates: list[tuple[int, dict, dict]] = []

    def update_swarm(self, version: int, swarm_spec: dict, **flags: bool) -> bool:
        import docker.errors

        if self.refuse:
            raise docker.errors.APIError("refused", _Answer(500), explanation=self.refuse)
        assert version == self.model.attrs["Version"]["Index"], "update out of sequence"
        self.updates.append((version, swarm_spec, flags))
        tokens = self.model.attrs["JoinTokens"]
        if flags.get("rotate_worker_token"):
            tokens = {**tokens, "Worker": tokens["Worker"] + "-new"}
        if flags.get("rotate_manager_token"):
            tokens = {**tokens, "Manager": tokens["Manager"] + "-new"}
        self.model.attrs = {
            **self.model.attrs,
            "Version": {"Index": version + 1},
            "Spec": swarm_spec,
            "JoinTokens": tokens,
        }
        return True


SWARM_SPEC = {
    "Name": "default",
    "Dispatcher": {"HeartbeatPeriod": 20_000_000_000},
    "CAConfig": {"NodeCertExpiry": 7_776_000_000_000_000, "ForceRotate": 2},
    "EncryptionConfig": {"AutoLockManagers": False},
}
TOKENS = {"Worker": "SWMTKN-1-digest-workersecret", "Manager": "SWMTKN-1-digest-managersecret"}


def _rotating_driver(refuse: str | None = None) -> tuple[DockerSwarm, _RotatingApi]:
    from types import SimpleNamespace

    model = _SwarmModel({"Version": {"Index": 7}, "Spec": SWARM_SPEC, "JoinTokens": TOKENS})
    api = _RotatingApi(model, refuse)
    client = SimpleNamespace(swarm=model, api=api)
    driver = DockerSwarm(timeout=5.0)
    real_call = DockerSwarm._call

    def call(remote, what, fn, secrets=(), retry=True):
        # The driver's own error handling, around the fake client.
        driver._client = lambda r: client  # type: ignore[method-assign]
        return real_call(driver, remote, what, fn, secrets, retry)

    driver._call = call  # type: ignore[method-assign]
    return driver, api


def test_join_tokens_are_rotated_with_the_whole_spec_at_its_version():
    driver, api = _rotating_driver()
    driver.rotate_join_tokens(_Node())
    ((version, sent, flags),) = api.updates
    assert version == 7 and sent == SWARM_SPEC
    assert flags == {"rotate_worker_token": True, "rotate_manager_token": True}
    assert api.model.attrs["JoinTokens"]["Worker"] != TOKENS["Worker"]


def test_a_refused_token_rotation_never_says_a_token():
    said = f"cannot update: worker token {TOKENS['Worker']} and {TOKENS['Manager']} kept"
    driver, _ = _rotating_driver(refuse=said)
    with pytest.raises(SwarmError) as refused:
        driver.rotate_join_tokens(_Node())
    text = str(refused.value)
    assert text.startswith("node-1: rotating the join tokens: ")
    assert "<redacted>" in text
    assert "secret" not in text


def test_the_ca_is_rotated_by_raising_force_rotate_once():
    """As `docker swarm ca --rotate`: the whole spec back with CAConfig.ForceRotate raised;
    the same target again (a call repeated after a broken connection) sends nothing."""
    driver, api = _rotating_driver()
    assert driver.rotate_ca(_Node(), 3) is True
    ((version, sent, flags),) = api.updates
    assert version == 7 and flags == {}
    assert sent == {**SWARM_SPEC, "CAConfig": {**SWARM_SPEC["CAConfig"], "ForceRotate": 3}}
    assert driver.rotate_ca(_Node(), 3) is False
    assert len(api.updates) == 1


def test_the_swarm_state_carries_its_ca_and_each_nodes_tls_information():
    from types import SimpleNamespace

    old = {"TrustRoot": "OLD ROOT", "CertIssuerSubject": "c3Vi", "CertIssuerPublicKey": "b2xk"}
    new = {"TrustRoot": "NEW ROOT", "CertIssuerSubject": "c3Vi", "CertIssuerPublicKey": "bmV3"}

    def node(name: str, tls: dict, updated: str) -> SimpleNamespace:
        return SimpleNamespace(
            attrs={
                "ID": name,
                "UpdatedAt": updated,
                "Description": {"Hostname": name, "TLSInfo": tls},
                "Spec": {"Role": "worker", "Availability": "active"},
                "Status": {"State": "ready", "Addr": "10.0.0.1"},
            }
        )

    model = _SwarmModel(
        {
            "Version": {"Index": 9},
            "Spec": SWARM_SPEC,
            "TLSInfo": new,
            "RootRotationInProgress": True,
        }
    )
    client = SimpleNamespace(
        swarm=model,
        nodes=SimpleNamespace(
            list=lambda: [
                node("a", new, "2026-12-07T16:35:22.123456789Z"),
                node("b", old, "0001-01-01T00:00:00Z"),
            ]
        ),
        networks=SimpleNamespace(list=lambda filters: []),
    )
    driver = DockerSwarm(timeout=5.0)
    driver._call = lambda remote, what, fn, secrets=(), retry=True: fn(client)  # type: ignore[method-assign]
    state = driver.state(_Node(), "node-1")
    ca = state.ca
    assert ca.rotating and ca.force_rotate == 2 and ca.node_cert_expiry == 90 * 86400
    a, b = state.nodes
    assert (a.issuer, a.trust_root) == (ca.issuer, ca.trust_root)
    assert b.issuer != ca.issuer and b.trust_root != ca.trust_root
    assert a.updated_at == pytest.approx(1796661322.123456)
