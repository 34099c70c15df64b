"""Docker Engine and Swarm calls (the docker SDK), carried over swarmboot's own SSH sessions.

The docker SDK reaches each node through a private Unix socket that swarmboot serves locally:
every connection to it becomes an SSH channel running `docker system dial-stdio` on the node,
over the session whose host key was verified against the pinned fingerprint. Join tokens are
secrets: they never appear in messages or logs.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import logging
import os
import shlex
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from tenacity import (
    Retrying,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_delay,
    wait_fixed,
)

from swarmboot.errors import SwarmbootError
from swarmboot.raft import RaftStatus, raft_status
from swarmboot.remote import Remote, RemoteError, shutdown_write
from swarmboot.stacks import RegistryAuth, StackCalls, StackService, SwarmSecret
from swarmboot.state import LocalSwarm, SwarmCA, SwarmNode, SwarmState

__all__ = ["DockerSwarm", "Inventory", "LocalSwarm", "ServiceTask", "SwarmDriver", "SwarmError"]


class SwarmError(SwarmbootError):
    """A Docker or Swarm call failed."""


@dataclass(frozen=True)
class ServiceTask:
    """One task of a service, as a manager sees it."""

    hostname: str  # the node it is on ("" before it is placed)
    state: str  # "running", "rejected", "shutdown", ...
    desired: str  # "running" for the service's current tasks
    error: str
    configs: tuple[str, ...]  # the names of the swarm configs it mounts

    @property
    def current(self) -> bool:
        """One of the service's tasks now, not one it has replaced ("ready": restarting)."""
        return self.desired in ("running", "ready")


@dataclass(frozen=True)
class Inventory:
    """What a swarm's raft state holds, by name (a backup's manifest), and its unlock key
    when autolock is on (a secret: never shown)."""

    cluster_id: str
    services: tuple[tuple[str, str], ...]  # (name, "replicated 2" or "global")
    configs: tuple[str, ...]
    secrets: tuple[str, ...]
    networks: tuple[str, ...]  # the swarm's overlay networks but ingress
    nodes: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...]  # (hostname, role, labels)
    autolock: bool
    unlock_key: str | None = field(default=None, repr=False)


class SwarmDriver(Protocol):
    def local(self, remote: Remote) -> LocalSwarm: ...
    def state(self, manager: Remote, label: str) -> SwarmState: ...
    def init(self, remote: Remote, advertise: str, heartbeat: int) -> None: ...
    def join_tokens(self, manager: Remote) -> tuple[str, str]: ...
    def join(self, remote: Remote, manager_address: str, token: str, advertise: str) -> None: ...
    # Those that change a node's entry or a network say whether they changed anything
    # (False: it was so already).
    def promote(self, manager: Remote, node_id: str) -> bool: ...
    def demote(self, manager: Remote, node_id: str) -> bool: ...
    def drain(self, manager: Remote, node_id: str) -> bool: ...
    def drained(self, manager: Remote, node_id: str) -> bool: ...
    def activate(self, manager: Remote, node_id: str) -> bool: ...
    def pause(self, manager: Remote, node_id: str) -> bool: ...
    def sole_services(self, manager: Remote, node_id: str) -> tuple[str, ...]: ...
    def roll(self, manager: Remote, service: str) -> None: ...
    def moved(self, manager: Remote, node_id: str, services: tuple[str, ...]) -> bool: ...
    def set_labels(self, manager: Remote, node_id: str, labels: dict[str, str]) -> bool: ...
    def remove(self, manager: Remote, node_id: str) -> bool: ...
    def ensure_network(
        self, manager: Remote, name: str, encrypted: bool, subnet: str | None = None
    ) -> bool: ...
    def set_heartbeat(self, manager: Remote, seconds: int) -> bool: ...
    def rotate_join_tokens(self, manager: Remote) -> None: ...
    def rotate_ca(self, manager: Remote, force_rotate: int) -> bool: ...
    def leave(self, remote: Remote) -> None: ...
    def raft_status(self, remote: Remote) -> RaftStatus | None: ...
    def force_new_cluster(self, remote: Remote, advertise: str) -> None: ...
    def unlock(self, remote: Remote, key: str) -> None: ...
    def inventory(self, manager: Remote) -> Inventory: ...
    def archive_swarm(self, remote: Remote) -> bytes: ...
    def restore_swarm(self, remote: Remote, archive: bytes) -> None: ...
    def service_tasks(self, manager: Remote, service: str) -> tuple[ServiceTask, ...]: ...
    def remove_configs(self, manager: Remote, prefix: str, keep: set[str]) -> list[str]: ...
    def stack_services(self, manager: Remote, stack: str) -> tuple[StackService, ...]: ...
    def deploy_stack(
        self,
        manager: Remote,
        stack: str,
        text: str,
        *,
        prune: bool = False,
        auth: RegistryAuth | None = None,
        resolve: str = "always",
    ) -> None: ...
    def rollback_service(self, manager: Remote, name: str) -> None: ...
    def ensure_config(self, manager: Remote, name: str, content: bytes, labels: dict) -> bool: ...
    def config_names(self, manager: Remote, prefix: str) -> frozenset[str]: ...
    def secrets(self, manager: Remote, logical: str) -> tuple[SwarmSecret, ...]: ...
    def create_secret(self, manager: Remote, name: str, value: bytes, labels: dict) -> None: ...
    def remove_secrets(self, manager: Remote, names: list[str]) -> list[str]: ...
    def close(self) -> None: ...


log = logging.getLogger("swarmboot.swarm")
_NS = 1_000_000_000  # Docker gives durations in nanoseconds


def _digest(*parts: str) -> str:
    """A short digest of a TLSInfo's fields, to compare a node's with the swarm's."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _tls(info: dict | None) -> tuple[str, str]:
    """(issuer, trust root) digests of a TLSInfo (the swarm's, or a node's description's)."""
    info = info or {}
    issuer = _digest(info.get("CertIssuerSubject") or "", info.get("CertIssuerPublicKey") or "")
    return issuer, _digest(info.get("TrustRoot") or "")


def _ca(attrs: dict) -> SwarmCA:
    """The swarm's CA, from `GET /swarm`."""
    config = (attrs.get("Spec") or {}).get("CAConfig") or {}
    issuer, root = _tls(attrs.get("TLSInfo"))
    return SwarmCA(
        issuer=issuer,
        trust_root=root,
        rotating=bool(attrs.get("RootRotationInProgress")),
        force_rotate=int(config.get("ForceRotate") or 0),
        node_cert_expiry=round((config.get("NodeCertExpiry") or 90 * 86400 * _NS) / _NS),
    )


def _timestamp(text: str | None) -> float | None:
    """Epoch seconds of a time as Docker writes it (RFC 3339, to the nanosecond); None for
    none, or Go's zero time."""
    if not text or text.startswith("0001-"):
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _heartbeat(attrs: dict) -> int | None:
    """The dispatcher's heartbeat in whole seconds, from `GET /swarm` (None: not given)."""
    period = ((attrs.get("Spec") or {}).get("Dispatcher") or {}).get("HeartbeatPeriod")
    return round(period / _NS) if period else None


# Reads a manager's raft log for `raft_status`: the snapshots' names on one line, the newest
# WAL segment's name on the next (empty: no log), then that segment, gzipped and in base64
# (64 MB preallocated, mostly zeros: a few hundred kB on the wire).
_RAFT_READ = (
    "cd /var/lib/docker/swarm/raft 2>/dev/null || { printf '\\n\\n'; exit 0; }; "
    "ls snap-v3-encrypted 2>/dev/null | tr '\\n' ' '; echo; "
    "w=$(ls wal-v3-encrypted 2>/dev/null | grep '[.]wal$' | sort | tail -n 1); echo \"$w\"; "
    '[ -z "$w" ] || gzip -1 -c "wal-v3-encrypted/$w" | base64 -w0'
)
# Where a node keeps what a backup or a restore makes (root's only), and the scripts that
# stop the engine, archive or replace /var/lib/docker/swarm, and start the engine again:
# started detached, they finish (and start the engine) whatever becomes of swarmboot. On
# Debian, docker.socket would start the engine again at the first call: it stops too.
_WORK = "/var/lib/swarmboot/swarm-backup"
_STOP_ENGINE = (
    "trap 'systemctl start docker.socket >/dev/null 2>&1; systemctl start docker; "
    "echo $rc > status' EXIT; rc=1; systemctl stop docker.socket >/dev/null 2>&1; "
    "systemctl stop docker || exit; "
)
_ARCHIVE = (
    _STOP_ENGINE + "umask 077; rm -f swarm.tar.gz swarm.tar.gz.part; "
    "tar -C /var/lib/docker -czf swarm.tar.gz.part swarm && mv swarm.tar.gz.part swarm.tar.gz "
    "&& rc=0"
)
_RESTORE = (
    _STOP_ENGINE + "rm -rf restoring && mkdir -m 700 restoring && "
    "tar -C restoring -xzf restore.tar.gz && [ -d restoring/swarm ] && "
    "rm -rf /var/lib/docker/swarm && mv restoring/swarm /var/lib/docker/swarm && "
    "rm -rf restoring restore.tar.gz && rc=0"
)
# What the daemon answers when a join outlasts its own timeout and goes on in the background.
_JOIN_GOES_ON = "will continue in the background"


# Task states of a task that holds (or is about to hold) a container on its node.
_ACTIVE = ("assigned", "accepted", "preparing", "ready", "starting", "running")


class _StillPending(Exception):
    pass


def _broken(exc: Exception) -> bool:
    """A call whose connection to the node's Docker broke (not an answer of the daemon)."""
    text = str(exc)
    return any(
        sign in text
        for sign in (
            "Connection aborted",
            "Connection broken",
            "Connection reset",
            "RemoteDisconnected",
            "no SSH channel",
        )
    )


def _raft_busy(exc: BaseException) -> bool:
    """The managers cannot take the change yet: a member not yet demoted, or no leader."""
    import docker.errors

    return isinstance(exc, docker.errors.APIError) and (
        "demoted" in str(exc) or exc.status_code == 503
    )


# How long a broken connection waits for the node's side to say how dial-stdio ended.
_STATUS_WAIT = 2.0


def _pump(src: Any, dst: Any, at_end: Callable[[], None] | None = None) -> None:
    """Copy `src` to `dst` until `src` ends, then call `at_end` and shut `dst`'s write side."""
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        if at_end is not None:
            at_end()
        with contextlib.suppress(OSError, EOFError):
            if isinstance(dst, socket.socket):
                dst.shutdown(socket.SHUT_WR)
            else:
                shutdown_write(dst)  # never after the node's CLOSE: see remote.shutdown_write


class _Tunnel:
    """A local Unix socket whose connections reach the node's Docker over SSH."""

    def __init__(self, remote: Remote) -> None:
        self.remote = remote
        self.dir = tempfile.mkdtemp(prefix="swarmboot-docker-")
        os.chmod(self.dir, 0o700)
        self.path = os.path.join(self.dir, "docker.sock")
        # Why the last connection broke: no SSH channel, or dial-stdio ended on its own.
        self.failure: str | None = None
        self._assessed = threading.Event()
        self._assessed.set()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.path)
        self._server.listen(16)
        self._thread = threading.Thread(
            target=self._serve, daemon=True, name=f"docker-tunnel-{remote.label}"
        )
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._carry, args=(conn,), daemon=True).start()

    def _carry(self, conn: socket.socket) -> None:
        self._assessed.clear()
        try:
            channel = self.remote.exec_channel("docker system dial-stdio")
        except Exception as exc:  # the session is gone: the SDK sees the connection close
            log.warning("%s: no channel for Docker: %r", self.remote.label, exc)
            self.failure = f"no SSH channel for Docker: {exc or type(exc).__name__}"
            self._assessed.set()
            conn.close()
            return
        self.failure = None
        closing = threading.Event()
        back = threading.Thread(target=self._back, args=(channel, conn, closing), daemon=True)
        back.start()
        _pump(conn, channel)
        # The SDK closed its end: the exchange is over. Close the channel now, or it stays
        # open (and holds one of sshd's ten sessions) until the daemon times the idle HTTP
        # connection out. The SSH session may be closing at the same time (the run ends).
        closing.set()
        with contextlib.suppress(Exception):
            channel.close()
        back.join(timeout=5)
        conn.close()

    def _back(self, channel: Any, conn: socket.socket, closing: threading.Event) -> None:
        """Carry the daemon's side back to the SDK; when it ends without the SDK having closed
        first, say how the node's `docker system dial-stdio` ended (its exit status and the
        end of what it wrote on stderr: a crash's own words)."""
        first: list[bool] = []
        # Whether the node's side ended before the SDK closed: noted before the SDK can learn
        # of the end (and close in turn).
        _pump(channel, conn, at_end=lambda: first.append(not closing.is_set()))
        try:
            if not first[0] or not channel.status_event.wait(_STATUS_WAIT):
                return
            status = channel.exit_status
            stderr = b""
            with contextlib.suppress(Exception):
                while channel.recv_stderr_ready():
                    stderr += channel.recv_stderr(65536)
            if status != 0:
                # -1: no exit status came (sshd sends none for a process a signal ended).
                how = "with no exit status" if status == -1 else f"with exit status {status}"
                said = " / ".join(
                    line.strip()
                    for line in stderr.decode(errors="replace").splitlines()[:3]
                    if line.strip()
                )
                self.failure = f"docker system dial-stdio on the node ended {how}" + (
                    f": {said}" if said else ""
                )
        finally:
            self._assessed.set()

    def why(self) -> str | None:
        """Why the last connection broke, when the tunnel could tell (waiting a moment for the
        node's side to report)."""
        self._assessed.wait(_STATUS_WAIT)
        return self.failure

    def close(self) -> None:
        self._server.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class DockerSwarm(StackCalls):
    def __init__(self, timeout: float = 120.0) -> None:
        self.timeout = timeout
        self._clients: dict[int, tuple[_Tunnel, Any]] = {}
        self._lock = threading.Lock()
        # One Docker call at a time per node: each connection is an SSH channel, and sshd
        # allows ten sessions per connection (MaxSessions).
        self._node_locks: dict[int, threading.Lock] = {}

    def _node_lock(self, remote: Remote) -> threading.Lock:
        with self._lock:
            return self._node_locks.setdefault(id(remote), threading.Lock())

    def _client(self, remote: Remote) -> Any:
        import docker

        with self._lock:
            found = self._clients.get(id(remote))
        if found is None:
            tunnel = _Tunnel(remote)
            try:
                client = docker.DockerClient(
                    base_url=f"unix://{tunnel.path}", timeout=self.timeout, max_pool_size=2
                )
            except BaseException as exc:
                # The client asks the daemon's version at once: its connection may break too.
                exc.swarmboot_why = tunnel.why()  # type: ignore[attr-defined]
                tunnel.close()
                raise
            # One request per connection: the daemon then closes each connection after its
            # answer, which ends the node's `docker system dial-stdio` and frees its SSH
            # session. A kept-alive connection would hold both until swarmboot exits, and
            # sshd allows ten sessions per connection.
            client.api.headers["Connection"] = "close"
            with self._lock:
                found = self._clients[id(remote)] = (tunnel, client)
        return found[1]

    def _drop(self, remote: Remote) -> None:
        with self._lock:
            found = self._clients.pop(id(remote), None)
        if found is not None:
            tunnel, client = found
            with contextlib.suppress(Exception):
                client.close()
            tunnel.close()

    def _call(
        self, remote: Remote, what: str, fn, secrets: Collection[str] = (), retry: bool = True
    ):
        """Run `fn` with the node's docker client. A connection that broke (a pooled one the
        daemon dropped) is retried once on a fresh tunnel when the call is safe to repeat."""
        import docker.errors
        import requests

        for attempt in (1, 2):
            why = ""
            try:
                with self._node_lock(remote):
                    return fn(self._client(remote))
            except (requests.ConnectionError, docker.errors.DockerException) as exc:
                if isinstance(exc, requests.ConnectionError) or _broken(exc):
                    with self._lock:
                        found = self._clients.get(id(remote))
                    failure = getattr(exc, "swarmboot_why", None) or (
                        found[0].why() if found is not None else None
                    )
                    if failure:
                        why = f" ({failure})"
                    self._drop(remote)
                    if retry and attempt == 1:
                        continue
                error: Exception = exc
            except (requests.RequestException, OSError) as exc:
                error = exc
            text = str(error) + why
            for secret in secrets:
                text = text.replace(secret, "<redacted>")
            raise SwarmError(f"{remote.label}: {what}: {text}") from None
        raise AssertionError("unreachable")

    def local(self, remote: Remote) -> LocalSwarm:
        info = self._call(remote, "docker info", lambda c: c.info())["Swarm"]
        return LocalSwarm(
            info.get("NodeID") or "",
            info.get("LocalNodeState") or "inactive",
            bool(info.get("ControlAvailable")),
        )

    def state(self, manager: Remote, label: str) -> SwarmState:
        def read(client: Any) -> SwarmState:
            nodes = []
            for node in client.nodes.list():
                a = node.attrs
                issuer, root = _tls((a.get("Description") or {}).get("TLSInfo"))
                nodes.append(
                    SwarmNode(
                        id=a["ID"],
                        hostname=a["Description"]["Hostname"],
                        role=a["Spec"].get("Role", "worker"),
                        state=a["Status"]["State"],
                        availability=a["Spec"].get("Availability", "active"),
                        address=a["Status"].get("Addr", ""),
                        labels=tuple(sorted((a["Spec"].get("Labels") or {}).items())),
                        leader=bool(a.get("ManagerStatus", {}).get("Leader")),
                        reachability=(a.get("ManagerStatus") or {}).get("Reachability", ""),
                        issuer=issuer,
                        trust_root=root,
                        updated_at=_timestamp(a.get("UpdatedAt")),
                    )
                )
            networks = tuple(
                sorted(
                    (n.name, "encrypted" in (n.attrs.get("Options") or {}))
                    for n in client.networks.list(filters={"driver": "overlay"})
                    if n.name != "ingress"
                )
            )
            client.swarm.reload()
            attrs = client.swarm.attrs
            return SwarmState(label, tuple(nodes), networks, _heartbeat(attrs), _ca(attrs))

        return self._call(manager, "reading the swarm", read)

    def init(self, remote: Remote, advertise: str, heartbeat: int) -> None:
        """Make the node a new swarm's first manager. A connection that breaks may have
        carried the init out or never sent it: the node is looked at before deciding, and
        an init that never happened is sent once more."""

        def send() -> None:
            self._call(
                remote,
                "docker swarm init",
                lambda c: c.swarm.init(
                    advertise_addr=advertise,
                    listen_addr="0.0.0.0:2377",
                    dispatcher_heartbeat_period=heartbeat * _NS,
                ),
                retry=False,
            )

        try:
            send()
        except SwarmError as exc:
            try:
                local = self.local(remote)
            except SwarmError:
                raise exc from None
            if local.state == "active" and local.manager:
                log.info("%s: the swarm was made though the answer was lost", remote.label)
                return
            if local.state != "inactive" or not _broken(exc):
                raise
            log.info("%s: docker swarm init again after: %s", remote.label, exc)
            send()

    def join_tokens(self, manager: Remote) -> tuple[str, str]:
        def tokens(client: Any) -> tuple[str, str]:
            client.swarm.reload()
            found = client.swarm.attrs["JoinTokens"]
            return found["Worker"], found["Manager"]

        return self._call(manager, "reading the join tokens", tokens)

    def join(self, remote: Remote, manager_address: str, token: str, advertise: str) -> None:
        """Join the node; a join the daemon carries on in the background (a busy manager)
        is waited for, not repeated."""
        state = self.local(remote).state
        if state == "pending":
            self._wait_joined(remote)
            return
        if state == "error":
            # A join that failed in the background leaves the node in error: it must leave
            # before it can join again.
            self.leave(remote)

        def send() -> None:
            self._call(
                remote,
                "docker swarm join",
                lambda c: c.swarm.join(
                    remote_addrs=[f"{manager_address}:2377"],
                    join_token=token,
                    advertise_addr=advertise,
                    listen_addr="0.0.0.0:2377",
                ),
                secrets=(token,),
                retry=False,  # a join is not repeated blindly: the node is looked at first
            )

        for attempt in (1, 2):
            try:
                send()
                return
            except SwarmError as exc:
                # The daemon may carry the join on after its answer timed out (its own
                # timeout, said in a 503, or ours while a busy manager was slow), or the
                # connection broke before the join reached it: look before deciding.
                if _JOIN_GOES_ON not in str(exc):
                    try:
                        state = self.local(remote).state
                    except SwarmError:
                        raise exc from None
                    if state == "inactive" and attempt == 1 and _broken(exc):
                        log.info("%s: docker swarm join again after: %s", remote.label, exc)
                        continue
                    if state not in ("pending", "active"):
                        raise
                log.info("%s: the join goes on in the background; waiting for it", remote.label)
                self._wait_joined(remote)
                return

    def _wait_joined(self, remote: Remote) -> None:
        def check() -> None:
            state = self.local(remote).state
            if state == "pending":
                raise _StillPending(state)
            if state != "active":
                raise SwarmError(
                    f"{remote.label}: its join ended {state}, not active",
                    hint="see `docker info` on the node; `swarmboot up` tries it again",
                )

        try:
            self._poll(check)
        except _StillPending:
            raise SwarmError(
                f"{remote.label}: still joining the swarm after {self.timeout:.0f} s",
                hint="the managers may be overloaded; `swarmboot up` looks again",
            ) from None

    def _poll(self, check: Callable[[], Any], *, seconds: float | None = None) -> Any:
        """`check` every second until it stops raising `_StillPending` (its result), for up
        to `seconds` (the driver's timeout); the last `_StillPending` is raised after."""
        return Retrying(
            retry=retry_if_exception_type(_StillPending),
            wait=wait_fixed(1.0),
            stop=stop_after_delay(self.timeout if seconds is None else seconds),
            reraise=True,
        )(check)

    def _update(self, manager: Remote, node_id: str, what: str, change) -> bool:
        """Change a node's spec; whether it differs from what it was."""

        def update(client: Any) -> bool:
            node = client.nodes.get(node_id)
            before = dict(node.attrs["Spec"])
            spec = dict(before)
            change(spec)
            node.update(spec)
            return spec != before

        return self._call(manager, what, update)

    def promote(self, manager: Remote, node_id: str) -> bool:
        return self._update(
            manager, node_id, "promoting a node", lambda spec: spec.__setitem__("Role", "manager")
        )

    def demote(self, manager: Remote, node_id: str) -> bool:
        return self._update(
            manager, node_id, "demoting a node", lambda spec: spec.__setitem__("Role", "worker")
        )

    def drain(self, manager: Remote, node_id: str) -> bool:
        return self._update(
            manager,
            node_id,
            "draining a node",
            lambda spec: spec.__setitem__("Availability", "drain"),
        )

    def activate(self, manager: Remote, node_id: str) -> bool:
        return self._update(
            manager,
            node_id,
            "reactivating a node",
            lambda spec: spec.__setitem__("Availability", "active"),
        )

    def pause(self, manager: Remote, node_id: str) -> bool:
        return self._update(
            manager,
            node_id,
            "pausing a node",
            lambda spec: spec.__setitem__("Availability", "pause"),
        )

    def sole_services(self, manager: Remote, node_id: str) -> tuple[str, ...]:
        """The replicated services whose every running task is on the node: a drain would
        stop them all at once."""

        def read(client: Any) -> tuple[str, ...]:
            here = client.api.tasks(filters={"node": node_id, "desired-state": "running"})
            out = []
            for service_id in {t["ServiceID"] for t in here if t["Status"]["State"] in _ACTIVE}:
                service = client.api.inspect_service(service_id)
                if "Replicated" not in (service["Spec"].get("Mode") or {}):
                    continue  # global: one task per eligible node, nothing to move
                running = client.api.tasks(
                    filters={"service": service_id, "desired-state": "running"}
                )
                if not any(
                    t.get("NodeID") != node_id and t["Status"]["State"] == "running"
                    for t in running
                ):
                    out.append(service["Spec"]["Name"])
            return tuple(sorted(out))

        return self._call(manager, "looking at a node's services", read)

    def roll(self, manager: Remote, service: str) -> None:
        """Replace the service's tasks as its update_config says (one at a time, start-first
        where it says so): `docker service update --force`."""
        self._call(
            manager,
            f"rolling {service}",
            lambda client: client.services.get(service).force_update(),
        )

    def moved(self, manager: Remote, node_id: str, services: tuple[str, ...]) -> bool:
        """None of the services has a task on the node any more, and each runs its replicas
        elsewhere."""

        def check(client: Any) -> bool:
            for name in services:
                service = client.api.inspect_service(name)
                tasks = client.api.tasks(
                    filters={"service": service["ID"], "desired-state": "running"}
                )
                if any(
                    t.get("NodeID") == node_id and t["Status"]["State"] in _ACTIVE for t in tasks
                ):
                    return False
                replicas = ((service["Spec"].get("Mode") or {}).get("Replicated") or {}).get(
                    "Replicas", 0
                )
                if sum(t["Status"]["State"] == "running" for t in tasks) < replicas:
                    return False
            return True

        return self._call(manager, "looking at the services moving off a node", check)

    def drained(self, manager: Remote, node_id: str) -> bool:
        """No task runs on the node any more, and every replicated service that had one
        there runs its replicas elsewhere: its tasks have moved."""

        def check(client: Any) -> bool:
            here = client.api.tasks(filters={"node": node_id})
            if any(t["Status"]["State"] in _ACTIVE for t in here):
                return False
            for service_id in {t["ServiceID"] for t in here}:
                service = client.api.inspect_service(service_id)
                replicas = ((service["Spec"].get("Mode") or {}).get("Replicated") or {}).get(
                    "Replicas"
                )
                if replicas is None:
                    continue  # global: one task per eligible node, nothing to move
                running = client.api.tasks(
                    filters={"service": service_id, "desired-state": "running"}
                )
                if sum(t["Status"]["State"] == "running" for t in running) < replicas:
                    return False
            return True

        return self._call(manager, "looking at a drained node's tasks", check)

    def set_labels(self, manager: Remote, node_id: str, labels: dict[str, str]) -> bool:
        return self._update(
            manager,
            node_id,
            "labelling a node",
            lambda spec: spec.__setitem__("Labels", {**(spec.get("Labels") or {}), **labels}),
        )

    def remove(self, manager: Remote, node_id: str) -> bool:
        """Remove a node's entry; a manager is demoted first (raft will not lose a member
        otherwise). An entry that is gone already is fine (False)."""
        import docker.errors

        def once(client: Any) -> bool:
            try:
                node = client.nodes.get(node_id)
                # A manager entry without a manager status is not in raft (left behind by
                # a forced new cluster): Docker refuses to demote it ("can't find manager
                # in raft memberlist") and removes it as it is.
                if node.attrs["Spec"].get("Role") == "manager" and node.attrs.get("ManagerStatus"):
                    node.update(dict(node.attrs["Spec"], Role="worker"))
                client.api.remove_node(node_id, force=True)
            except docker.errors.NotFound:
                return False
            return True

        def remove(client: Any) -> bool:
            # Raft lets a demoted member go a moment later: until then the removal is refused
            # ("must be demoted to worker before removal"); while the managers elect a new
            # leader (the demoted one may have led) the daemon answers 503. Each try starts
            # again from what the swarm has, so trying again is safe.
            return Retrying(
                retry=retry_if_exception(_raft_busy),
                wait=wait_fixed(1.0),
                stop=stop_after_delay(60),
                reraise=True,
            )(once, client)

        return self._call(manager, "removing a node", remove)

    def set_heartbeat(self, manager: Remote, seconds: int) -> bool:
        """Set the swarm's dispatcher heartbeat. The whole spec as the swarm has it goes back
        with that one field changed (a partial spec would reset the others: autolock, the
        certificates' expiry); the swarm's version makes a concurrent change fail, not
        vanish, and the next call reads it again."""

        def update(client: Any) -> bool:
            client.swarm.reload()
            attrs = client.swarm.attrs
            if _heartbeat(attrs) == seconds:
                return False
            spec = dict(attrs["Spec"])
            spec["Dispatcher"] = dict(spec.get("Dispatcher") or {}, HeartbeatPeriod=seconds * _NS)
            client.api.update_swarm(version=attrs["Version"]["Index"], swarm_spec=spec)
            return True

        return self._call(manager, "setting the swarm's heartbeat", update)

    def rotate_join_tokens(self, manager: Remote) -> None:
        """New join tokens, worker's and manager's (`docker swarm join-token --rotate`): the
        old ones join no node any more. The swarm's spec goes back as it is, with its
        version. The tokens are secrets: neither old nor new ones leave this call, and an
        error's text is cleared of those it read."""
        seen: list[str] = []

        def rotate(client: Any) -> None:
            client.swarm.reload()
            attrs = client.swarm.attrs
            seen.extend(t for t in (attrs.get("JoinTokens") or {}).values() if t)
            client.api.update_swarm(
                version=attrs["Version"]["Index"],
                swarm_spec=attrs["Spec"],
                rotate_worker_token=True,
                rotate_manager_token=True,
            )

        self._call(manager, "rotating the join tokens", rotate, secrets=seen)

    def rotate_ca(self, manager: Remote, force_rotate: int) -> bool:
        """Start a rotation of the swarm's CA as `docker swarm ca --rotate` does: the spec's
        CAConfig.ForceRotate raised, here to `force_rotate` (the value after the one read
        when it was planned), so that a call repeated after a broken connection does not
        start a second rotation (False: it is that already)."""

        def rotate(client: Any) -> bool:
            client.swarm.reload()
            attrs = client.swarm.attrs
            spec = dict(attrs["Spec"])
            config = dict(spec.get("CAConfig") or {})
            if int(config.get("ForceRotate") or 0) >= force_rotate:
                return False
            spec["CAConfig"] = dict(config, ForceRotate=force_rotate)
            client.api.update_swarm(version=attrs["Version"]["Index"], swarm_spec=spec)
            return True

        return self._call(manager, "rotating the swarm's CA", rotate)

    def ensure_network(
        self, manager: Remote, name: str, encrypted: bool, subnet: str | None = None
    ) -> bool:
        """Create the overlay network unless it is there (False)."""
        import docker.types

        def ensure(client: Any) -> bool:
            if client.networks.list(names=[name], filters={"driver": "overlay"}):
                return False
            ipam = None
            if subnet:
                ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)])
            client.networks.create(
                name,
                driver="overlay",
                attachable=True,
                scope="swarm",
                options={"encrypted": ""} if encrypted else None,
                ipam=ipam,
            )
            return True

        return self._call(manager, f"creating the overlay network {name}", ensure)

    def leave(self, remote: Remote) -> None:
        self._call(remote, "docker swarm leave", lambda c: c.swarm.leave(force=True))

    def raft_status(self, remote: Remote) -> RaftStatus | None:
        """How far the node's raft log goes, from its newest WAL segment and its snapshots
        (see swarmboot.raft); None for a node that holds no raft log (not a manager)."""
        out = remote.run(_RAFT_READ, timeout=300)
        lines = out.split("\n", 2)
        if len(lines) < 3 or not lines[1]:
            return None
        data = base64.b64decode(lines[2].strip() or b"")
        try:
            wal = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise RemoteError(f"{remote.label}: its raft log could not be read: {exc}") from None
        return raft_status(lines[0].split(), lines[1], wal)

    def force_new_cluster(self, remote: Remote, advertise: str) -> None:
        """`docker swarm init --force-new-cluster` on a manager that has lost its quorum: it
        becomes the only member of raft, with the swarm's state as its log has it (services,
        configs, secrets, networks, nodes). A connection that broke is looked at first: a
        node that leads already has been forced."""
        try:
            self._call(
                remote,
                "docker swarm init --force-new-cluster",
                # The low-level call: the SDK's Swarm.init reads the swarm back at once,
                # before raft has elected the node ("does not have a leader"); the wait
                # below does that.
                lambda c: c.api.init_swarm(
                    advertise_addr=advertise, listen_addr="0.0.0.0:2377", force_new_cluster=True
                ),
                retry=False,
            )
        except SwarmError as exc:
            if not _broken(exc):
                raise
            log.info("%s: looking at the node after: %s", remote.label, exc)
        # Until it leads: raft elects it at once, but the answer may come before.
        Retrying(
            retry=retry_if_exception_type(SwarmError),
            wait=wait_fixed(1.0),
            stop=stop_after_delay(self.timeout),
            reraise=True,
        )(self.state, remote, remote.label)

    def unlock(self, remote: Remote, key: str) -> None:
        """Unlock a manager of a swarm with autolock on; the key is a secret."""
        self._call(remote, "docker swarm unlock", lambda c: c.swarm.unlock(key), secrets=(key,))

    def inventory(self, manager: Remote) -> Inventory:
        def read(client: Any) -> Inventory:
            client.swarm.reload()
            attrs = client.swarm.attrs
            autolock = bool(
                ((attrs.get("Spec") or {}).get("EncryptionConfig") or {}).get("AutoLockManagers")
            )
            services = []
            for service in client.services.list():
                mode = service.attrs["Spec"].get("Mode") or {}
                replicas = (mode.get("Replicated") or {}).get("Replicas")
                kind = "global" if replicas is None else f"replicated {replicas}"
                services.append((service.name, kind))
            return Inventory(
                cluster_id=attrs.get("ID", ""),
                services=tuple(sorted(services)),
                configs=tuple(sorted(c.name for c in client.configs.list())),
                secrets=tuple(sorted(x.name for x in client.secrets.list())),
                networks=tuple(
                    sorted(
                        n.name
                        for n in client.networks.list(filters={"driver": "overlay"})
                        if n.name != "ingress"
                    )
                ),
                nodes=tuple(
                    sorted(
                        (
                            n.attrs["Description"]["Hostname"],
                            n.attrs["Spec"].get("Role", "worker"),
                            tuple(sorted((n.attrs["Spec"].get("Labels") or {}).items())),
                        )
                        for n in client.nodes.list()
                    )
                ),
                autolock=autolock,
                unlock_key=(client.api.get_unlock_key().get("UnlockKey") or None)
                if autolock
                else None,
            )

        return self._call(manager, "reading what the swarm holds", read)

    def archive_swarm(self, remote: Remote) -> bytes:
        """A consistent copy of the node's /var/lib/docker/swarm, as Docker documents it: the
        engine stopped, the folder archived, the engine started again. It runs detached on
        the node, so the engine is started again whatever becomes of this process."""
        return self._detached(remote, _ARCHIVE, "archiving /var/lib/docker/swarm", fetch=True)

    def restore_swarm(self, remote: Remote, archive: bytes) -> None:
        """Put a backup's /var/lib/docker/swarm in place on a node in no swarm: the engine
        stopped, the folder replaced, the engine started (the node then holds the old
        swarm's state without its quorum: a new cluster is forced on it next)."""
        encoded = base64.b64encode(archive)
        remote.run(
            f"mkdir -p {_WORK} && umask 077 && base64 -d > {_WORK}/restore.tar.gz",
            stdin=encoded,
            timeout=600,
        )
        self._detached(remote, _RESTORE, "restoring /var/lib/docker/swarm", fetch=False)

        # Until the engine answers with the restored state: the node of the backup, in a
        # swarm without a leader yet (pending, or active), or locked (autolock).
        def restored() -> None:
            try:
                local = self.local(remote)
            except SwarmError as exc:
                raise _StillPending(str(exc)) from None
            if local.state not in ("active", "pending", "locked"):
                raise _StillPending(local.state)

        try:
            self._poll(restored)
        except _StillPending as exc:
            raise SwarmError(
                f"{remote.label}: its engine did not come back in the swarm after the restore "
                f"({exc})",
                hint="see `docker info` and /var/log on the node; `swarmboot restore` again",
            ) from None

    def _detached(self, remote: Remote, script: str, what: str, *, fetch: bool) -> bytes:
        """Run `script` on the node detached from this session, wait for its status file,
        and (with `fetch`) read back the archive it made."""
        remote.run(
            f"mkdir -p {_WORK} && cd {_WORK} && rm -f status && "
            f"setsid bash -c {shlex.quote(script)} </dev/null >{_WORK}/log 2>&1 &",
            timeout=60,
        )

        def status() -> str:
            found = remote.run(f"cat {_WORK}/status 2>/dev/null || true", timeout=60).strip()
            if not found:
                raise _StillPending(what)
            return found

        try:
            code = self._poll(status, seconds=self.timeout * 5)
        except _StillPending:
            raise SwarmError(f"{remote.label}: {what} did not end in time") from None
        if code != "0":
            log_tail = remote.run(f"tail -n 5 {_WORK}/log || true", timeout=60)
            raise SwarmError(
                f"{remote.label}: {what} failed (exit {code}): {log_tail.strip()}",
                hint=f"see {_WORK}/log on the node",
            )
        if not fetch:
            return b""
        encoded = remote.run(
            f"base64 -w0 {_WORK}/swarm.tar.gz && rm -f {_WORK}/swarm.tar.gz", timeout=600
        )
        return base64.b64decode(encoded.strip())

    def service_tasks(self, manager: Remote, service: str) -> tuple[ServiceTask, ...]:
        import docker.errors

        def read(client: Any) -> tuple[ServiceTask, ...]:
            try:
                tasks = client.api.tasks(filters={"service": service})
            except docker.errors.NotFound:
                return ()
            names = {n.id: n.attrs["Description"]["Hostname"] for n in client.nodes.list()}
            return tuple(
                ServiceTask(
                    hostname=names.get(t.get("NodeID", ""), ""),
                    state=t["Status"]["State"],
                    desired=t.get("DesiredState", ""),
                    error=t["Status"].get("Err", ""),
                    configs=tuple(
                        c["ConfigName"]
                        for c in (t["Spec"].get("ContainerSpec") or {}).get("Configs") or ()
                    ),
                )
                for t in tasks
                if t.get("ServiceID")
            )

        return self._call(manager, f"reading the tasks of {service}", read)

    def remove_configs(self, manager: Remote, prefix: str, keep: set[str]) -> list[str]:
        """Remove the swarm configs named `prefix…` but not in `keep`; one a service still
        uses (an old task not yet gone) stays, for the next run."""
        import docker.errors

        def remove(client: Any) -> list[str]:
            removed = []
            for config in client.configs.list(filters={"name": prefix}):
                name = config.name
                if not name.startswith(prefix) or name in keep:
                    continue
                try:
                    config.remove()
                except docker.errors.APIError:
                    continue
                removed.append(name)
            return sorted(removed)

        return self._call(manager, "removing old configs", remove)

    def close(self) -> None:
        with self._lock:
            for tunnel, client in self._clients.values():
                with contextlib.suppress(Exception):
                    client.close()
                tunnel.close()
            self._clients.clear()
