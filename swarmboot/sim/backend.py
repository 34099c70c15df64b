"""The machine behind a simulated Linode: where instances run, if anywhere.

The simulator calls a `MachineBackend` as an instance's life goes on: `start` when it boots
(with everything a real Linode would get: addresses, keys, the StackScript and its data),
`stop` when it shuts down, `rebuild` when its disk is replaced, `delete` when it goes. The
default `RecordsBackend` only keeps records; a backend with real machines is named on the
command line (`swarmboot sim --backend package.module:factory`) and needs no change here.
Backends are called outside the simulator's lock, from worker threads, and may block.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "Machine",
    "MachineBackend",
    "MachineError",
    "RecordsBackend",
    "load_backend",
]


class MachineError(Exception):
    """The machine could not be started; the boot fails with this reason."""


@dataclass(frozen=True)
class Machine:
    """What a Linode's machine is made from, as of this boot."""

    instance_id: int
    label: str
    region: str
    type: str
    image: str | None
    ipv4_public: str
    ipv4_private: str | None
    ipv6: str
    kernel: str
    authorized_keys: tuple[str, ...] = ()
    # The root password is a secret: kept out of repr() so it never reaches a log.
    root_pass: str | None = field(default=None, repr=False)
    stackscript_id: int | None = None
    stackscript: str | None = field(default=None, repr=False)
    stackscript_data: dict[str, str] = field(default_factory=dict, repr=False)
    user_data: str | None = field(default=None, repr=False)
    # True on the first boot after the disk was deployed (create or rebuild): when Linode runs
    # the StackScript.
    first_boot: bool = False


class MachineBackend(Protocol):
    def start(self, machine: Machine) -> None:
        """Bring the machine up; raise `MachineError` if it cannot boot."""

    def stop(self, instance_id: int) -> None:
        """Stop the machine, keeping its disk."""

    def rebuild(self, machine: Machine) -> None:
        """Wipe the machine's disk for a new image (it is stopped and will be started)."""

    def delete(self, instance_id: int) -> None:
        """Stop the machine and remove everything of it."""

    def close(self) -> None:
        """Stop every machine; the simulator is going away."""


class RecordsBackend:
    """No machines: remembers what it was asked to do (for tests and the demo)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[tuple[str, int]] = []
        self.running: dict[int, Machine] = {}

    def start(self, machine: Machine) -> None:
        with self._lock:
            self.calls.append(("start", machine.instance_id))
            self.running[machine.instance_id] = machine

    def stop(self, instance_id: int) -> None:
        with self._lock:
            self.calls.append(("stop", instance_id))
            self.running.pop(instance_id, None)

    def rebuild(self, machine: Machine) -> None:
        with self._lock:
            self.calls.append(("rebuild", machine.instance_id))
            self.running.pop(machine.instance_id, None)

    def delete(self, instance_id: int) -> None:
        with self._lock:
            self.calls.append(("delete", instance_id))
            self.running.pop(instance_id, None)

    def close(self) -> None:
        with self._lock:
            self.running.clear()


def load_backend(name: str, config: Any) -> MachineBackend:
    """`records`, or `package.module:factory` for a backend of another package; the factory
    is called with the simulator's settings (a `SimConfig`: ranges, timings, ...)."""
    if name == "records":
        return RecordsBackend()
    module_name, _, attribute = name.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"backend {name!r}: write it as package.module:factory")
    try:
        factory: Callable[[Any], MachineBackend] = getattr(
            importlib.import_module(module_name), attribute
        )
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"backend {name!r}: {exc}") from None
    return factory(config)
