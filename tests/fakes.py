"""Test doubles for the SSH and Docker seams, driven by the simulator's machine backend.

`FakeFleet` is a machine backend: when the simulator boots a Linode, a `FakeNode` comes up at
its address with the host key from its StackScript data (or cloud-init user data) and a status
report (done, or what a
test asks for). `FakeConnector` and `FakeSwarm` let swarmboot reach those nodes: SSH checks
the pinned fingerprint against the node's real key, Docker keeps a swarm model. The cloud side
is always the real simulator.
"""

from __future__ import annotations

import base64
import json
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import yaml
from cryptography.hazmat.primitives import serialization

from swarmboot import facts
from swarmboot.keys import fingerprint
from swarmboot.raft import RaftStatus
from swarmboot.remote import HostKeyMismatch, RemoteError, Unreachable
from swarmboot.sim.backend import Machine, MachineError
from swarmboot.state import SwarmCA, SwarmNode, SwarmState
from swarmboot.swarm import Inventory, LocalSwarm, ServiceTask, SwarmError
from swarmboot.upgrade import FACTS_COMMAND, FLAG_COMMAND, REBOOT_FLAG, upgrade_command

from .fake_stacks import FakeStacks


def fields_of(machine: Machine) -> dict[str, str]:
    """The node's fields as its script gets them: the StackScript's data, or the shell
    assignments its cloud-init user data writes for the script to read."""
    if machine.user_data is None:
        return dict(machine.stackscript_data)
    config = yaml.safe_load(base64.b64decode(machine.user_data))
    env = next(f for f in config["write_files"] if f["path"] == facts.NODE_ENV_FILE)
    words = shlex.split(base64.b64decode(env["content"]).decode())
    return dict(word.split("=", 1) for word in words)


def _fingerprint_of_private(b64: str) -> str:
    key = serialization.load_ssh_private_key(base64.b64decode(b64), password=None)
    blob = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .split()[1]
    )
    return fingerprint(base64.b64decode(blob))


@dataclass
class FakeNode:
    machine: Machine
    host_key: str | None  # fingerprint
    files: dict[str, str] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    # swarm side
    node_id: str = ""
    swarm: str = "inactive"
    manager: bool = False
    advertise: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    down: bool = False
    availability: str = "active"
    left: bool = False  # it left the swarm: its entry shows Down
    ready_at: float = 0.0  # time.monotonic() from which its StackScript has reported
    # Raft: a manager a forced new cluster left out (its entry keeps the role without a
    # manager status; by its own view it is still a manager, of a swarm without a leader),
    # how far its log goes, and whether it is locked (autolock, after a restart).
    forced_out: bool = False
    raft_index: int = 0
    locked: bool = False
    # Its swarm certificate: the generation of the CA that issued it (and whose root it
    # trusts), and when it expires (epoch seconds).
    ca_generation: int = 0
    cert_not_after: float = 0.0
    # Packages, as `upgrade` sees them: the kernel it runs and those installed, and the
    # upgrades carried out on it (the command each time).
    kernel: str = "6.1.0-56-amd64"
    kernels: list[str] = field(default_factory=lambda: ["6.1.0-56-amd64"])
    upgrades: list[str] = field(default_factory=list)
    boots: int = 1


class FakeFleet:
    """The machine backend: nodes that come up as Linodes boot. `behaviour[label]` can say
    "failed" (the StackScript fails), "no-esp", "stuck" (no status ever), "wrong-key".
    `script_seconds`: how long after its machine starts a first boot's StackScript reports."""

    def __init__(self, script_seconds: float = 0.0) -> None:
        self.script_seconds = script_seconds
        self.lock = threading.RLock()
        self.nodes: dict[str, FakeNode] = {}  # by public address
        self.behaviour: dict[str, str] = {}
        self.swarm_nodes: dict[str, FakeNode] = {}  # by node id
        self.networks: dict[str, bool] = {}
        self.heartbeat: int | None = None  # the swarm's dispatcher heartbeat, in seconds
        # Services' tasks by service name, and the swarm's config names (a test sets them).
        self.tasks: dict[str, tuple[ServiceTask, ...]] = {}
        self.configs: set[str] = set()
        # As Docker's drain, not instant: a drained node's tasks have moved after this many
        # looks (`drained`); `drain_looks` counts them per node id.
        self.drain_polls = 2
        self.drain_looks: dict[str, int] = {}
        # As Docker's join, which can go on in the background or end in error: the next
        # joins of a node (by label) end as listed, "pending" (the daemon still joins when
        # the driver gives up waiting) or "error" (the join failed in the background and
        # the node stays in state error until it leaves), then as usual.
        self.join_outcomes: dict[str, list[str]] = {}
        self.tokens = ("SWMTKN-worker-secret", "SWMTKN-manager-secret")
        self.rotations = 0  # join token rotations so far
        self.unlock_key = "SWMKEY-1-unlock-secret"
        self.joined = 0  # joins so far, for their node ids
        # As a new leader: right after a forced new cluster, the other entries are `unknown`
        # for this many reads of the swarm, until it has heard from each (ready, or down).
        self.settle_reads = 2
        self.unheard_reads = 0
        # Nodes slow to reconnect to a new leader (their agent backs off): down to it for
        # this many more reads of the swarm once it has heard from the others.
        self.reconnect_reads: dict[str, int] = {}
        # The swarm's secrets by name, its autolock, and the archives of raft state taken
        # from its managers (each a copy of the swarm as it was), by the bytes handed out.
        self.secrets: set[str] = set()
        self.autolock = False
        self.archives: dict[bytes, tuple[str, dict[str, FakeNode], dict[str, bool]]] = {}
        self.engine_stops: list[str] = []
        self.calls: list[tuple[str, str]] = []
        # The swarm's CA: its generation (a rotation makes the next), ForceRotate, whether
        # a rotation is in progress, and for how many more reads of the swarm the nodes
        # that answer wait for their new certificates (then they all have them; one that
        # is down never does, and the rotation stays in progress).
        self.ca_generation = 1
        self.force_rotate = 0
        self.rotating = False
        self.rotation_polls = 2
        self.rotation_reads = 0
        self.node_cert_expiry = 90 * 86400
        self._ca_keys: dict[int, object] = {}
        self._certs: dict[tuple[int, float, str], str] = {}
        # What a package upgrade brings: a newer kernel (installed beside the running one,
        # and /run/reboot-required), or nothing new; the nodes whose upgrade fails (apt-get
        # exits with an error), and those that come back from a reboot on the old kernel.
        self.new_kernel: str | None = None
        self.upgrade_fails: set[str] = set()
        self.old_kernel_after_reboot: set[str] = set()
        # Replicated services whose every task runs on a node (by label): `upgrade` rolls
        # them off before it drains the node.
        self.sole: dict[str, tuple[str, ...]] = {}

    def __call__(self, config) -> FakeFleet:
        return self

    # --- MachineBackend ---
    def start(self, machine: Machine) -> None:
        with self.lock:
            self.calls.append(("start", machine.label))
            behaviour = self.behaviour.get(machine.label, "ok")
            if behaviour == "no-machine":
                raise MachineError("the machine would not start")
            existing = self.nodes.get(machine.ipv4_public)
            if existing is not None and not machine.first_boot:
                existing.machine = machine
                existing.down = False
                existing.boots += 1
                # A boot: /run is a fresh tmpfs, and GRUB boots the newest kernel.
                for path in [p for p in existing.files if p.startswith("/run/")]:
                    del existing.files[path]
                if machine.label not in self.old_kernel_after_reboot:
                    existing.kernel = sorted(existing.kernels)[-1]
                if existing.manager and existing.swarm == "active":
                    # A manager back from a reboot: raft may have a new leader, which knows
                    # the other nodes only once each has reached it.
                    self.unheard_reads = self.settle_reads
                return
            key_b64 = fields_of(machine).get("ssh_host_key")
            host_key = _fingerprint_of_private(key_b64) if key_b64 else None
            if behaviour == "wrong-key":
                host_key = "SHA256:someone-elses-key"
            node = FakeNode(machine, host_key, ready_at=time.monotonic() + self.script_seconds)
            if behaviour != "stuck":
                node.files[facts.STATUS_PATH] = json.dumps(self._status(machine, behaviour))
            self.nodes[machine.ipv4_public] = node

    @staticmethod
    def _status(machine: Machine, behaviour: str) -> dict:
        failed = behaviour == "failed"
        return {
            "schema": 1,
            "phase": "failed" if failed else "done",
            "script": "debian12-swarm-node.sh",
            "script_sha256": "x",
            "hostname": machine.label,
            "cluster": "c",
            "role": fields_of(machine).get("swarm_role", "worker"),
            "zone": machine.region,
            "kernel_release": "6.1.0-56-amd64",
            "distro_kernel": True,
            "newest_kernel": "6.1.0-56-amd64",
            "reboot_required": False,
            "vxlan_ok": not failed,
            "esp_ok": behaviour != "no-esp",
            "docker_ok": True,
            "docker_version": "20.10.24+dfsg1",
            "firewall_ok": True,
            "changes": [],
            "started_at": "2026-01-01T00:00:00",
            "finished_at": "2026-01-01T00:01:00",
            "error": "vxlan probe failed on kernel 6.1.0-56-amd64" if failed else None,
        }

    def issue(self, node: FakeNode) -> None:
        """A certificate for a node from the CA as it is now."""
        node.ca_generation = self.ca_generation
        node.cert_not_after = time.time() + self.node_cert_expiry

    def certificate(self, node: FakeNode) -> str | None:
        """The node's certificate as a PEM file, signed by its CA's generation's key, as
        swarm-node.crt holds it; None for a node that never was in a swarm."""
        from datetime import UTC, datetime, timedelta

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        if not node.ca_generation:
            return None
        key = (node.ca_generation, node.cert_not_after, node.machine.label)
        with self.lock:
            if key in self._certs:
                return self._certs[key]
            ca_key = self._ca_keys.setdefault(
                node.ca_generation, ec.generate_private_key(ec.SECP256R1())
            )
            not_after = datetime.fromtimestamp(node.cert_not_after, UTC)
            cert = (
                x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node.node_id)]))
                .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "swarm-ca")]))
                .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(not_after - timedelta(days=365))
                .not_valid_after(not_after)
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                    critical=False,
                )
                .sign(ca_key, hashes.SHA256())
            )
            self._certs[key] = cert.public_bytes(serialization.Encoding.PEM).decode()
            return self._certs[key]

    def stop(self, instance_id: int) -> None:
        with self.lock:
            for node in self.nodes.values():
                if node.machine.instance_id == instance_id:
                    node.down = True

    def rebuild(self, machine: Machine) -> None:
        self.delete(machine.instance_id)

    def delete(self, instance_id: int) -> None:
        with self.lock:
            for address, node in list(self.nodes.items()):
                if node.machine.instance_id == instance_id:
                    node.down = True
                    del self.nodes[address]

    def close(self) -> None:
        pass

    def node(self, label: str) -> FakeNode:
        # Under the lock: the simulator's backend adds machines from its own threads, and a
        # dict that grows while it is iterated raises.
        with self.lock:
            return next(n for n in self.nodes.values() if n.machine.label == label)


class FakeRemote:
    def __init__(self, fleet: FakeFleet, node: FakeNode) -> None:
        self.fleet = fleet
        self.node = node
        self.label = node.machine.label

    def _alive(self) -> None:
        if self.node.down or self.fleet.nodes.get(self.node.machine.ipv4_public) is not self.node:
            raise Unreachable(f"{self.label}: the connection dropped")

    def run(self, command: str, *, stdin: bytes | None = None, timeout: float = 120.0) -> str:
        self._alive()
        self.node.commands.append(command)
        if command == "nft -f /etc/nftables.conf":
            return ""
        if command in (upgrade_command("packages"), upgrade_command("docker")):
            return self._upgrade(command)
        if command == FACTS_COMMAND:
            node = self.node
            return (
                f"kernel={node.kernel}\nnewest={sorted(node.kernels)[-1]}\ndistro=yes\n"
                f"reboot_required={'yes' if '/run/reboot-required' in node.files else 'no'}\n"
                f"vxlan=yes\ndocker=20.10.24+dfsg1\n"
            )
        if command == FLAG_COMMAND:
            self.node.files[REBOOT_FLAG] = ""
            return ""
        raise RemoteError(f"{self.label}: the fake node does not know `{command}`")

    def _upgrade(self, command: str) -> str:
        """As apt-get: the node's packages upgraded (a newer kernel when the fleet has one,
        with /run/reboot-required), or an error when the test says so."""
        fleet, node = self.fleet, self.node
        with fleet.lock:
            if self.label in fleet.upgrade_fails:
                raise RemoteError(
                    f"{self.label}: `{command}` exited with 100: E: Sub-process /usr/bin/dpkg "
                    "returned an error code (1)"
                )
            node.upgrades.append("packages" if " dist-upgrade" in command else "docker")
            fleet.calls.append(("upgrade", self.label))
            if fleet.new_kernel and " dist-upgrade" in command:
                if fleet.new_kernel not in node.kernels:
                    node.kernels.append(fleet.new_kernel)
                node.files["/run/reboot-required"] = "*** System restart required ***\n"
        return "Reading package lists...\n"

    def read_file(self, path: str) -> str | None:
        self._alive()
        if path == facts.STATUS_PATH and time.monotonic() < self.node.ready_at:
            return None
        if path == facts.NODE_CERT_PATH:
            return self.fleet.certificate(self.node)
        return self.node.files.get(path)

    def put_file(self, path: str, content: str, mode: int = 0o644) -> None:
        self._alive()
        self.node.files[path] = content

    def exec_channel(self, command: str):
        raise RemoteError("no channels on a fake node")

    def host_key(self) -> str:
        raise RemoteError("a fake node has a fingerprint, not a key")

    def close(self) -> None:
        pass


class FakeConnector:
    def __init__(self, fleet: FakeFleet) -> None:
        self.fleet = fleet
        self.connections = 0

    def connect(self, label: str, address: str, pinned: str | None) -> FakeRemote:
        with self.fleet.lock:
            node = self.fleet.nodes.get(address)
            self.connections += 1
        if node is None or node.down:
            raise Unreachable(f"{label}: no SSH at {address}")
        if pinned is None or node.host_key != pinned:
            raise HostKeyMismatch(
                f"{label}: the SSH host key is {node.host_key}, but "
                f"{pinned} is pinned: refusing to connect"
            )
        return FakeRemote(self.fleet, node)


class FakeSwarm(FakeStacks):
    """Docker Swarm as a model: init, join with the right token, promote, labels, networks."""

    def __init__(self, fleet: FakeFleet) -> None:
        self.fleet = fleet
        self.joins: list[str] = []

    def _n(self, remote: FakeRemote) -> FakeNode:
        remote._alive()
        return remote.node

    def local(self, remote: FakeRemote) -> LocalSwarm:
        node = self._n(remote)
        return LocalSwarm(node.node_id, "locked" if node.locked else node.swarm, node.manager)

    def _leader(self, node: FakeNode) -> bool:
        """As raft: a manager reads the swarm only while a majority of its raft answers."""
        if node.forced_out or node.locked:
            return False
        members = [n for n in self.fleet.swarm_nodes.values() if n.manager and not n.forced_out]
        reachable = [n for n in members if not n.down and not n.left]
        return len(reachable) >= len(members) // 2 + 1

    def state(self, manager: FakeRemote, label: str) -> SwarmState:
        node = self._n(manager)
        if not node.manager:
            raise SwarmError(f"{manager.label}: not a manager")
        with self.fleet.lock:
            if not self._leader(node):
                raise SwarmError(
                    f"{manager.label}: reading the swarm: The swarm does not have a leader. "
                    "It's possible that too few managers are online."
                )
            unheard = self.fleet.unheard_reads > 0
            self.fleet.unheard_reads = max(0, self.fleet.unheard_reads - 1)
            self._rotation_goes_on()

            slow = {} if unheard else self.fleet.reconnect_reads
            for name in list(slow):
                slow[name] -= 1
                if slow[name] < 0:
                    del slow[name]

            def state_of(n: FakeNode) -> str:
                if unheard and n is not node:
                    return "unknown"
                if n.machine.label in slow:
                    return "down"
                # One a forced new cluster left out sends no heartbeat to its leader.
                return "down" if n.down or n.left or n.forced_out else "ready"

            nodes = tuple(
                SwarmNode(
                    n.node_id,
                    n.machine.label,
                    "manager" if n.manager else "worker",
                    state_of(n),
                    n.availability,
                    n.advertise,
                    tuple(sorted(n.labels.items())),
                    reachability=(
                        ("unreachable" if n.down or n.left else "reachable")
                        if n.manager and not n.forced_out
                        else ""
                    ),
                    issuer=f"ca-{n.ca_generation}",
                    trust_root=f"root-{n.ca_generation}",
                )
                for n in self.fleet.swarm_nodes.values()
            )
            members = [n for n in self.fleet.swarm_nodes.values() if n.manager and not n.forced_out]
            leader = next((n.node_id for n in members if not n.down and not n.left), None)
            nodes = tuple(replace(e, leader=e.id == leader) for e in nodes)
            fleet = self.fleet
            ca = SwarmCA(
                f"ca-{fleet.ca_generation}",
                f"root-{fleet.ca_generation}",
                fleet.rotating,
                fleet.force_rotate,
                fleet.node_cert_expiry,
            )
            return SwarmState(
                label, nodes, tuple(sorted(fleet.networks.items())), fleet.heartbeat, ca
            )

    def _rotation_goes_on(self) -> None:
        """A read of the swarm while its CA rotates: after `rotation_polls` of them, every
        node that answers has its new certificate; the rotation is over once all have."""
        fleet = self.fleet
        if not fleet.rotating:
            return
        fleet.rotation_reads -= 1
        if fleet.rotation_reads > 0:
            return
        for n in fleet.swarm_nodes.values():
            if not (n.down or n.left) and n.ca_generation != fleet.ca_generation:
                fleet.issue(n)
        fleet.rotating = any(
            n.ca_generation != fleet.ca_generation for n in fleet.swarm_nodes.values()
        )

    def _register(self, node: FakeNode) -> None:
        """A node's earlier entries stay behind as Down copies, as Docker keeps them."""
        for node_id, entry in list(self.fleet.swarm_nodes.items()):
            if entry is node:
                self.fleet.swarm_nodes[node_id] = replace(node, down=True, labels=dict(node.labels))
        node.left = False
        self.fleet.swarm_nodes[node.node_id] = node

    def init(self, remote: FakeRemote, advertise: str, heartbeat: int) -> None:
        node = self._n(remote)
        with self.fleet.lock:
            self.fleet.swarm_nodes.clear()  # a new swarm: nobody else is in it
            self.fleet.heartbeat = heartbeat
            node.node_id, node.swarm, node.manager, node.advertise = (
                f"node-{node.machine.label}",
                "active",
                True,
                advertise,
            )
            self.fleet.issue(node)
            self._register(node)

    def join_tokens(self, manager: FakeRemote) -> tuple[str, str]:
        self._n(manager)
        return self.fleet.tokens

    def join(self, remote: FakeRemote, manager_address: str, token: str, advertise: str) -> None:
        """As the driver's join: one still pending from before is waited for (and ends
        joined); one in error is refused, as Docker refuses it, until the node leaves."""
        node = self._n(remote)
        if node.swarm in ("active", "error"):
            raise SwarmError(
                f'{remote.label}: This node is already part of a swarm. Use "docker swarm '
                'leave" to leave this swarm and join another one.'
            )
        if token not in self.fleet.tokens:
            raise SwarmError(f"{remote.label}: invalid join token")
        managers = [n for n in self.fleet.swarm_nodes.values() if n.manager]
        if manager_address not in {m.advertise for m in managers}:
            raise SwarmError(f"{remote.label}: no manager at {manager_address}")
        with self.fleet.lock:
            outcomes = self.fleet.join_outcomes.get(node.machine.label, [])
            outcome = outcomes.pop(0) if outcomes and node.swarm != "pending" else "joined"
            self.fleet.calls.append(("join", node.machine.label))
            if outcome == "pending":
                node.swarm = "pending"
                raise SwarmError(
                    f"{remote.label}: still joining the swarm after 120 s",
                    hint="the managers may be overloaded; `swarmboot up` looks again",
                )
            if outcome == "error":
                node.swarm = "error"
                raise SwarmError(f"{remote.label}: its join ended error, not active")
            # A new id for every join, as Docker gives (unique across the fleet's drivers).
            self.fleet.joined += 1
            node.node_id = f"node-{node.machine.label}-{self.fleet.joined}"
            node.forced_out = False
            node.swarm, node.manager, node.advertise = (
                "active",
                token == self.fleet.tokens[1],
                advertise,
            )
            self.fleet.issue(node)
            self._register(node)
            self.joins.append(node.machine.label)

    def promote(self, manager: FakeRemote, node_id: str) -> bool:
        self._n(manager)
        was = self.fleet.swarm_nodes[node_id].manager
        self.fleet.swarm_nodes[node_id].manager = True
        return not was

    def demote(self, manager: FakeRemote, node_id: str) -> bool:
        self._n(manager)
        if self.fleet.swarm_nodes[node_id].forced_out:
            raise SwarmError(
                f"{manager.label}: demoting a node: rpc error: code = NotFound desc = can't "
                "find manager in raft memberlist"
            )
        was = self.fleet.swarm_nodes[node_id].manager
        if sum(n.manager for n in self.fleet.swarm_nodes.values()) == 1:
            raise SwarmError(f"{manager.label}: cannot demote the last manager of the swarm")
        self.fleet.swarm_nodes[node_id].manager = False
        self.fleet.calls.append(("demote", self.fleet.swarm_nodes[node_id].machine.label))
        return was

    def drain(self, manager: FakeRemote, node_id: str) -> bool:
        self._n(manager)
        was = self.fleet.swarm_nodes[node_id].availability
        self.fleet.swarm_nodes[node_id].availability = "drain"
        self.fleet.calls.append(("drain", self.fleet.swarm_nodes[node_id].machine.label))
        return was != "drain"

    def activate(self, manager: FakeRemote, node_id: str) -> bool:
        self._n(manager)
        was = self.fleet.swarm_nodes[node_id].availability
        self.fleet.swarm_nodes[node_id].availability = "active"
        self.fleet.calls.append(("activate", self.fleet.swarm_nodes[node_id].machine.label))
        return was != "active"

    def pause(self, manager: FakeRemote, node_id: str) -> bool:
        self._n(manager)
        was = self.fleet.swarm_nodes[node_id].availability
        self.fleet.swarm_nodes[node_id].availability = "pause"
        self.fleet.calls.append(("pause", self.fleet.swarm_nodes[node_id].machine.label))
        return was != "pause"

    def sole_services(self, manager: FakeRemote, node_id: str) -> tuple[str, ...]:
        """The services a test says run only on the node (`fleet.sole`, by label), until
        they are rolled."""
        self._n(manager)
        with self.fleet.lock:
            return self.fleet.sole.get(self.fleet.swarm_nodes[node_id].machine.label, ())

    def roll(self, manager: FakeRemote, service: str) -> None:
        self._n(manager)
        with self.fleet.lock:
            self.fleet.calls.append(("roll", service))
            for label, services in list(self.fleet.sole.items()):
                self.fleet.sole[label] = tuple(s for s in services if s != service)

    def moved(self, manager: FakeRemote, node_id: str, services: tuple[str, ...]) -> bool:
        self._n(manager)
        return True

    def drained(self, manager: FakeRemote, node_id: str) -> bool:
        self._n(manager)
        with self.fleet.lock:
            looks = self.fleet.drain_looks.get(node_id, 0) + 1
            self.fleet.drain_looks[node_id] = looks
            return looks >= self.fleet.drain_polls

    def set_labels(self, manager: FakeRemote, node_id: str, labels: dict[str, str]) -> bool:
        self._n(manager)
        held = self.fleet.swarm_nodes[node_id].labels
        before = dict(held)
        held.update(labels)
        return held != before

    def remove(self, manager: FakeRemote, node_id: str) -> bool:
        self._n(manager)
        with self.fleet.lock:
            node = self.fleet.swarm_nodes.get(node_id)
            if node is not None and node.manager and not node.forced_out:
                self.demote(manager, node_id)
            self.fleet.swarm_nodes.pop(node_id, None)
            if node is not None:
                self.fleet.calls.append(("remove", node.machine.label))
            return node is not None

    def ensure_network(
        self, manager: FakeRemote, name: str, encrypted: bool, subnet: str | None = None
    ) -> bool:
        self._n(manager)
        made = name not in self.fleet.networks
        self.fleet.networks.setdefault(name, encrypted)
        return made

    def set_heartbeat(self, manager: FakeRemote, seconds: int) -> bool:
        self._manager(manager)
        with self.fleet.lock:
            changed = self.fleet.heartbeat != seconds
            self.fleet.heartbeat = seconds
        return changed

    def rotate_join_tokens(self, manager: FakeRemote) -> None:
        self._manager(manager)
        with self.fleet.lock:
            self.fleet.rotations += 1
            n = self.fleet.rotations
            self.fleet.tokens = (f"SWMTKN-worker-secret-{n}", f"SWMTKN-manager-secret-{n}")
            self.fleet.calls.append(("rotate-join-tokens", manager.label))

    def rotate_ca(self, manager: FakeRemote, force_rotate: int) -> bool:
        """As Docker: ForceRotate raised starts a rotation (a new CA); the same value again
        changes nothing."""
        self._manager(manager)
        with self.fleet.lock:
            fleet = self.fleet
            if fleet.force_rotate >= force_rotate:
                return False
            fleet.force_rotate = force_rotate
            fleet.ca_generation += 1
            fleet.rotating = True
            fleet.rotation_reads = fleet.rotation_polls
            fleet.calls.append(("rotate-ca", manager.label))
            return True

    def _manager(self, manager: FakeRemote) -> None:
        if not self._n(manager).manager:
            raise SwarmError(f"{manager.label}: not a manager")

    def service_tasks(self, manager: FakeRemote, service: str) -> tuple[ServiceTask, ...]:
        self._manager(manager)
        with self.fleet.lock:
            return self.fleet.tasks.get(service, ())

    def remove_configs(self, manager: FakeRemote, prefix: str, keep: set[str]) -> list[str]:
        """As Docker: a config a task still mounts stays."""
        self._manager(manager)
        with self.fleet.lock:
            used = {
                c for tasks in self.fleet.tasks.values() for task in tasks for c in task.configs
            }
            gone = sorted(
                name
                for name in self.fleet.configs
                if name.startswith(prefix) and name not in keep and name not in used
            )
            self.fleet.configs.difference_update(gone)
        return gone + self.remove_stack_configs(prefix, keep)

    def leave(self, remote: FakeRemote) -> None:
        node = self._n(remote)
        with self.fleet.lock:
            node.swarm = "inactive"
            node.manager = False
            node.forced_out = node.locked = False
            node.left = True  # its entry stays, Down, until a manager removes it
            self.fleet.calls.append(("leave", node.machine.label))

    def raft_status(self, remote: FakeRemote) -> RaftStatus | None:
        node = self._n(remote)
        if not node.manager:
            return None
        return RaftStatus(node.raft_index, node.raft_index, 1)

    def force_new_cluster(self, remote: FakeRemote, advertise: str) -> None:
        """As `docker swarm init --force-new-cluster`: the node is the whole of raft; the
        other managers' entries stay, without a manager status."""
        node = self._n(remote)
        if not node.manager or node.swarm not in ("active", "pending") or node.locked:
            raise SwarmError(f"{remote.label}: not a manager of a swarm it can force")
        with self.fleet.lock:
            for other in self.fleet.swarm_nodes.values():
                if other is not node and other.manager:
                    other.forced_out = True
            node.forced_out = False
            node.swarm = "active"
            node.advertise = advertise
            self.fleet.unheard_reads = self.fleet.settle_reads
            self.fleet.calls.append(("force-new-cluster", node.machine.label))

    def inventory(self, manager: FakeRemote) -> Inventory:
        self._manager(manager)
        with self.fleet.lock:
            return Inventory(
                cluster_id="fakeswarm",
                services=tuple(sorted((name, "replicated 2") for name in self.fleet.tasks)),
                configs=tuple(sorted(self.fleet.configs)),
                secrets=tuple(sorted(self.fleet.secrets)),
                networks=tuple(sorted(self.fleet.networks)),
                nodes=tuple(
                    sorted(
                        (
                            n.machine.label,
                            "manager" if n.manager else "worker",
                            tuple(sorted(n.labels.items())),
                        )
                        for n in self.fleet.swarm_nodes.values()
                    )
                ),
                autolock=self.fleet.autolock,
                unlock_key=self.fleet.unlock_key if self.fleet.autolock else None,
            )

    def archive_swarm(self, remote: FakeRemote) -> bytes:
        """As the engine stopped, the folder copied, the engine started: a copy of the
        swarm as this manager holds it."""
        node = self._n(remote)
        if not node.manager or node.swarm != "active":
            raise SwarmError(f"{remote.label}: holds no manager's raft state")
        with self.fleet.lock:
            token = f"fake-raft-archive-{len(self.fleet.archives) + 1}".encode()
            entries = {
                i: replace(n, labels=dict(n.labels)) for i, n in self.fleet.swarm_nodes.items()
            }
            self.fleet.archives[token] = (node.node_id, entries, dict(self.fleet.networks))
            self.fleet.engine_stops.append(node.machine.label)
        return token

    def restore_swarm(self, remote: FakeRemote, archive: bytes) -> None:
        """The archive's raft state on this node: it becomes the archived manager (its id),
        the nodes that still answer in that swarm are its members again, the rest are
        entries of nodes that do not answer; locked if the swarm has autolock."""
        node = self._n(remote)
        if node.swarm != "inactive":
            raise SwarmError(f"{remote.label}: in a swarm already")
        source, entries, networks = self.fleet.archives[archive]
        with self.fleet.lock:
            live = {n.node_id: n for n in self.fleet.nodes.values() if n.swarm == "active"}
            self.fleet.swarm_nodes.clear()
            for node_id, entry in entries.items():
                if node_id == source:
                    # Without a quorum (its old managers are gone) it stays pending.
                    node.node_id, node.swarm, node.manager = source, "pending", True
                    node.labels, node.advertise = dict(entry.labels), entry.advertise
                    node.forced_out, node.locked = False, self.fleet.autolock
                    self.fleet.swarm_nodes[node_id] = node
                elif node_id in live and not live[node_id].down:
                    self.fleet.swarm_nodes[node_id] = live[node_id]
                else:
                    self.fleet.swarm_nodes[node_id] = replace(entry, down=True)
            self.fleet.networks = dict(networks)
            self.fleet.calls.append(("restore", node.machine.label))

    def unlock(self, remote: FakeRemote, key: str) -> None:
        node = self._n(remote)
        if key != self.fleet.unlock_key:
            raise SwarmError(f"{remote.label}: docker swarm unlock: invalid key")
        node.locked = False

    def close(self) -> None:
        pass


class FakeClock:
    """Virtual time for a `Context`: `sleep` moves it on at once (and lets other threads
    run), so a wait of minutes takes milliseconds. `slept` records each sleep.

    A simulator can run on the same time (`wall` is its clock): each sleep then lets it
    settle, so what the simulator does (a Linode provisioning, booting) is done by the
    virtual time it takes, however slow the machine the test runs on."""

    EPOCH = 1_800_000_000.0  # the wall time virtual time starts at

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self.on_sleep: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self.now

    def wall(self) -> float:
        return self.EPOCH + self.monotonic()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += max(0.0, seconds)
            self.slept.append(seconds)
        for settle in self.on_sleep:
            settle()
        time.sleep(0.001)
