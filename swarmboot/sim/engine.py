"""The simulator's core: the account's records, time, events, the machine backend, the state file.

Everything that changes records holds `Simulator.lock`. Transitions that take time (an
instance provisioning, booting, shutting down, being rebuilt) are jobs due at a wall-clock
time; a ticker thread carries them out when due, with the transitions at the bottom of this
module. Calls into the machine backend run in worker threads, one after another per instance,
never under the lock.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from swarmboot.files import FileTooLarge, NotAFile, read_capped
from swarmboot.sim.backend import (
    Machine,
    MachineBackend,
    MachineError,
    RecordsBackend,
    load_backend,
)
from swarmboot.sim.config import SimConfig
from swarmboot.sim.errors import not_found
from swarmboot.sim.faults import Faults
from swarmboot.sim.model import Config, Event, Instance, World, timestamp
from swarmboot.sim.network import AddressBook
from swarmboot.sim.ratelimit import RateLimiter

__all__ = ["MAX_STATE_BYTES", "Simulator", "StateFileError", "begin_boot", "machine_of"]

# The largest state file read (a few KiB per Linode).
MAX_STATE_BYTES = 256 * 1024 * 1024


class StateFileError(Exception):
    """The state file cannot be loaded: the message names it and what is wrong."""


log = logging.getLogger("swarmboot.sim")

# (due epoch, sequence, kind, instance id, generation, event id)
Job = tuple[float, int, str, int, int, int]


class Simulator:
    def __init__(
        self,
        config: SimConfig,
        backend: MachineBackend | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.clock = clock
        self.lock = threading.RLock()
        self.world = World()
        self.addresses = AddressBook(config)
        self.faults = Faults(config.faults, clock())
        self.limiter = RateLimiter(config.rate_limits, clock)
        self.backend = backend if backend is not None else load_backend(config.backend, config)
        # Records only: no address of this simulator's Linodes has a machine behind it, even
        # where another process (a lab) routes the same range into this machine.
        self.has_machines = not isinstance(self.backend, RecordsBackend)
        self._jobs: list[Job] = []
        self._seq = itertools.count()
        self._wake = threading.Condition(self.lock)
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="sim-machine")
        self._machine_ops: dict[int, Future] = {}
        # The backend start of each booting instance, which its boot waits for.
        self.pending_boots: dict[int, Future] = {}
        # The backend stop of each shutting-down instance: it is offline once its machine is.
        self.pending_stops: dict[int, Future] = {}
        self._stopping = False
        self._dirty = False
        self._threads: list[threading.Thread] = []
        self.stats: dict[str, int] = {}
        if config.state_file is not None and config.state_file.exists():
            self._load(config.state_file)

    # --- running ---------------------------------------------------------------------------

    def start(self) -> None:
        for target, name in ((self._tick_loop, "sim-ticker"), (self._save_loop, "sim-saver")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        with self.lock:
            self._stopping = True
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)
        self.save()
        self._pool.shutdown(wait=True, cancel_futures=False)
        self.backend.close()

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.stats[name] = self.stats.get(name, 0) + n

    def reset(self) -> None:
        """Forget every record (the catalogue stays); machines are deleted."""
        with self.lock:
            ids = list(self.world.instances)
            for iid in ids:
                self.machine_call(iid, lambda i=iid: self.backend.delete(i))
            self.world = World()
            self.addresses = AddressBook(self.config)
            self._jobs.clear()
            self.stats.clear()
            self.limiter.reset()
            self._dirty = True

    # --- time ------------------------------------------------------------------------------

    def schedule(self, delay: float, kind: str, inst: Instance, event: Event | None) -> None:
        if event is not None and event.status == "started":
            event.due_at = self.clock() + delay
        job = (
            self.clock() + delay,
            next(self._seq),
            kind,
            inst.id,
            inst.generation,
            event.id if event else 0,
        )
        heapq.heappush(self._jobs, job)
        self._wake.notify_all()

    def tick(self) -> None:
        """Carry out every job that is due."""
        with self.lock:
            now = self.clock()
            while self._jobs and self._jobs[0][0] <= now:
                _, _, kind, iid, generation, event_id = heapq.heappop(self._jobs)
                inst = self.world.instances.get(iid)
                if inst is None or inst.generation != generation:
                    continue
                event = self.world.events.get(event_id)
                _TRANSITIONS[kind](self, inst, event)
                self._dirty = True

    def settle(self) -> None:
        """Carry out every job that is due and wait for the machine calls started so far:
        on a virtual clock, the simulator is then where its clock says."""
        self.tick()
        with self.lock:
            pending = list(self._machine_ops.values())
        for future in pending:
            # A call's failure is its own future's to report.
            with contextlib.suppress(Exception):
                future.result()

    def _tick_loop(self) -> None:
        while True:
            with self.lock:
                if self._stopping:
                    return
                wait = 0.5
                if self._jobs:
                    wait = min(wait, max(0.0, self._jobs[0][0] - self.clock()))
                self._wake.wait(timeout=max(wait, 0.005))
            self.tick()

    # --- machines --------------------------------------------------------------------------

    def machine_call(self, iid: int, op: Callable[[], object]) -> Future:
        """Run a backend call after the instance's earlier ones, in a worker thread."""
        previous = self._machine_ops.get(iid)

        def run() -> None:
            if previous is not None:
                # An earlier call's failure is reported by its own future.
                with contextlib.suppress(Exception):
                    previous.result()
            op()

        future = self._pool.submit(run)
        self._machine_ops[iid] = future
        return future

    # --- records ---------------------------------------------------------------------------

    def now(self) -> str:
        return timestamp(self.clock())

    def instance(self, iid: int) -> Instance:
        inst = self.world.instances.get(iid)
        if inst is None:
            raise not_found()
        return inst

    def event(
        self, action: str, entity: dict[str, Any] | None, status: str, message: str | None = None
    ) -> Event:
        now = self.clock()
        event = Event(
            id=self.world.new_id("event"),
            action=action,
            created=timestamp(now),
            entity=entity,
            status=status,
            username=self.config.username,
            percent_complete=100 if status in ("finished", "notification") else 0,
            duration=0.0,
            message=message,
            started_at=now,
        )
        self.world.events[event.id] = event
        self._dirty = True
        return event

    def finish(
        self, event: Event | None, *, failed: bool = False, message: str | None = None
    ) -> None:
        if event is None:
            return
        event.status = "failed" if failed else "finished"
        event.percent_complete = 100
        event.duration = round(self.clock() - event.started_at, 3)
        if message is not None:
            event.message = message

    @staticmethod
    def linode_entity(inst: Instance) -> dict[str, Any]:
        return {
            "id": inst.id,
            "label": inst.label,
            "type": "linode",
            "url": f"/v4/linode/instances/{inst.id}",
        }

    # --- the state file --------------------------------------------------------------------

    def _load(self, path: os.PathLike[str]) -> None:
        try:
            raw = json.loads(read_capped(Path(path), MAX_STATE_BYTES).decode("utf-8"))
            self.world = World.from_json(raw["world"])
            jobs = [
                (due, next(self._seq), kind, iid, generation, event_id)
                for due, kind, iid, generation, event_id in raw.get("jobs", [])
            ]
        except UnicodeDecodeError as exc:
            raise StateFileError(f"{path}: not UTF-8 text (byte {exc.start})") from None
        except json.JSONDecodeError as exc:
            raise StateFileError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
        except NotAFile as exc:
            raise StateFileError(f"{path}: it is {exc.kind}") from None
        except FileTooLarge:
            raise StateFileError(f"{path}: larger than {MAX_STATE_BYTES >> 20} MiB") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # The parts the records are made of are missing or of the wrong kind.
            what = exc.strerror if isinstance(exc, OSError) and exc.strerror else None
            raise StateFileError(
                f"{path}: " + (what or f"not a simulator state ({type(exc).__name__}: {exc})")
            ) from None
        self.addresses.mark(
            a
            for inst in self.world.instances.values()
            for a in (inst.ipv4_public, inst.ipv4_private, *inst.extra_public)
        )
        self._jobs.extend(jobs)
        heapq.heapify(self._jobs)
        # Machines of running instances come back, as after a host restart.
        for inst in self.world.instances.values():
            if inst.status in ("running", "booting", "rebooting"):
                machine = machine_of(self, inst)
                self.machine_call(inst.id, lambda m=machine: self.backend.start(m))

    def save(self) -> None:
        path = self.config.state_file
        if path is None:
            return
        with self.lock:
            raw = {
                "version": 1,
                "world": self.world.to_json(),
                "jobs": [[due, kind, iid, gen, ev] for due, _, kind, iid, gen, ev in self._jobs],
            }
            self._dirty = False
        directory = os.path.dirname(os.path.abspath(path)) or "."
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".sim-state.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(raw, out)
            os.chmod(tmp, 0o600)  # it holds what instances were created with
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise

    def _save_loop(self) -> None:
        while True:
            with self.lock:
                if self._stopping:
                    return
                self._wake.wait(timeout=0.5)
                dirty = self._dirty
            if dirty:
                try:
                    self.save()
                except OSError as exc:
                    log.error("cannot save the simulator state: %s", exc)

    def mark_dirty(self) -> None:
        self._dirty = True


# --- transitions --------------------------------------------------------------------------
# What the ticker runs when a job is due (`_TRANSITIONS`, by the job's kind), and the start of
# a boot, which the instance calls share with them.


def machine_of(sim: Simulator, inst: Instance) -> Machine:
    """What the backend is given for the instance's machine, from its records."""
    config = next(iter(inst.configs.values()), None)
    return Machine(
        instance_id=inst.id,
        label=inst.label,
        region=inst.region,
        type=inst.type,
        image=inst.image,
        ipv4_public=inst.ipv4_public,
        ipv4_private=inst.ipv4_private,
        ipv6=inst.ipv6.split("/")[0],
        kernel=config.kernel if config else "",
        authorized_keys=tuple(inst.authorized_keys),
        root_pass=inst.root_pass,
        stackscript_id=inst.stackscript_id,
        stackscript=inst.stackscript,
        stackscript_data=dict(inst.stackscript_data),
        user_data=inst.user_data,
        first_boot=inst.first_boot,
    )


def begin_boot(
    sim: Simulator,
    inst: Instance,
    action: str,
    config: Config | None = None,
    event: Event | None = None,
) -> None:
    """The instance starts booting: its machine starts in a worker, the `booted` job is due."""
    inst.status = "booting"
    inst.updated = sim.now()
    if event is None:
        event = sim.event(action, sim.linode_entity(inst), "started")
    machine = machine_of(sim, inst)
    if config is not None:
        machine = Machine(**{**machine.__dict__, "kernel": config.kernel})
    sim.pending_boots[inst.id] = sim.machine_call(inst.id, lambda: sim.backend.start(machine))
    sim.schedule(sim.config.timings.of("boot"), "booted", inst, event)


def _provisioned(sim: Simulator, inst: Instance, event: Event | None) -> None:
    inst.status = "offline"
    inst.updated = sim.now()
    sim.finish(event)


def _provisioned_boot(sim: Simulator, inst: Instance, event: Event | None) -> None:
    sim.finish(event)
    begin_boot(sim, inst, "linode_boot")


def _booted(sim: Simulator, inst: Instance, event: Event | None) -> None:
    start = sim.pending_boots.get(inst.id)
    if start is not None and not start.done():
        sim.schedule(0.05, "booted", inst, event)  # the machine is still coming up
        return
    sim.pending_boots.pop(inst.id, None)
    reason = None
    if sim.faults.boot_fails(inst.label, sim.clock()):
        reason = "Linode failed to boot (injected fault)"
    elif start is not None and start.exception() is not None:
        error = start.exception()
        reason = (
            str(error)
            if isinstance(error, MachineError)
            else f"Linode failed to boot: {type(error).__name__}"
        )
    if reason is not None:
        inst.status = "offline"
        inst.updated = sim.now()
        sim.finish(event, failed=True, message=reason)
        sim.machine_call(inst.id, lambda: sim.backend.stop(inst.id))
        return
    inst.status = "running"
    inst.updated = sim.now()
    if inst.first_boot:
        # The StackScript has run: what it was given is not kept any longer.
        inst.first_boot = False
        inst.root_pass = None
        inst.stackscript_data = {}
        inst.user_data = None
    sim.finish(event)


def _shut_down(sim: Simulator, inst: Instance, event: Event | None) -> None:
    stop = sim.pending_stops.get(inst.id)
    if stop is not None and not stop.done():
        sim.schedule(0.05, "shut_down", inst, event)  # the machine is still going down
        return
    sim.pending_stops.pop(inst.id, None)
    inst.status = "offline"
    inst.updated = sim.now()
    sim.finish(event)


def _rebuilt(sim: Simulator, inst: Instance, event: Event | None) -> None:
    inst.status = "offline"
    inst.updated = sim.now()
    sim.finish(event)


def _rebuilt_boot(sim: Simulator, inst: Instance, event: Event | None) -> None:
    sim.finish(event)
    begin_boot(sim, inst, "linode_boot")


_TRANSITIONS: dict[str, Callable[[Simulator, Instance, Event | None], None]] = {
    "provisioned": _provisioned,
    "provisioned_boot": _provisioned_boot,
    "booted": _booted,
    "shut_down": _shut_down,
    "rebuilt": _rebuilt,
    "rebuilt_boot": _rebuilt_boot,
}
