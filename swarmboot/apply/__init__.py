"""Carrying out a plan: `up` converges the world to the spec, from any partial state.

`up` observes, plans and runs the cloud steps (StackScript, Cloud Firewalls, Linodes, kernels,
boots), waits for the nodes, then observes and plans again, now with every node's addresses
and status report, and runs the swarm steps. Re-running it after a crash at any point finishes
the job; a converged cluster makes no change at all.

The engine is here; the runners live by the world they act on: `cloud_steps`, `swarm_steps`
and `waiting` (booting and readiness). A runner carries its step out and decides nothing;
it records what it changed (`changes`), which `up --json` reports.
"""

from swarmboot.apply.changes import Change, changes_data, changes_line
from swarmboot.apply.engine import UpResult, run_steps, up
from swarmboot.apply.run import NotReadyError, Replan

__all__ = [
    "Change",
    "NotReadyError",
    "Replan",
    "UpResult",
    "changes_data",
    "changes_line",
    "run_steps",
    "up",
]
