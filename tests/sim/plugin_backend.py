"""A machine backend from outside the simulator, loaded by name (see test_process.py)."""

from __future__ import annotations

import json
import os

from swarmboot.sim.backend import Machine, MachineError


class FileBackend:
    """Writes each call to the file named by SWARMBOOT_TEST_BACKEND_LOG; refuses to start
    machines whose label starts with "broken"."""

    def __init__(self, config) -> None:
        self.path = os.environ["SWARMBOOT_TEST_BACKEND_LOG"]
        self._write("init", {"ranges": dict(config.public_ranges)})

    def _write(self, call: str, data: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"call": call, **data}) + "\n")

    def start(self, machine: Machine) -> None:
        self._write(
            "start",
            {
                "id": machine.instance_id,
                "label": machine.label,
                "ip": machine.ipv4_public,
                "kernel": machine.kernel,
                "first_boot": machine.first_boot,
                "script": bool(machine.stackscript),
            },
        )
        if machine.label.startswith("broken"):
            raise MachineError("the machine's disk is unreadable")

    def stop(self, instance_id: int) -> None:
        self._write("stop", {"id": instance_id})

    def rebuild(self, machine: Machine) -> None:
        self._write("rebuild", {"id": machine.instance_id})

    def delete(self, instance_id: int) -> None:
        self._write("delete", {"id": instance_id})

    def close(self) -> None:
        self._write("close", {})


def make(config) -> FileBackend:
    return FileBackend(config)
