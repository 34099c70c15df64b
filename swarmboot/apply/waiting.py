"""Booting the Linodes and waiting until each node is ready: the runner of `Boot` and
`WaitReady`, of `NotReady` (a node left out, and why), of `AwaitNodes` (a new leader
hearing from every node) and of `AwaitCARotation` (every node given the new CA's
certificate)."""

from __future__ import annotations

from dataclasses import replace

from tenacity import RetryError, Retrying, retry_if_result

from swarmboot import facts
from swarmboot.apply.cloud_steps import busy
from swarmboot.apply.run import NotReadyError, Replan, Run
from swarmboot.clock import stop_after
from swarmboot.cloud import CloudError
from swarmboot.errors import SwarmbootError
from swarmboot.membership import cluster_linodes, listing
from swarmboot.nodestatus import StatusError, parse_status
from swarmboot.plan import Boot, NotReady, WaitReady
from swarmboot.readiness import UNHEARD, judge
from swarmboot.recover import AwaitNodes
from swarmboot.remote import HostKeyMismatch, RemoteError
from swarmboot.rotate import AwaitCARotation, ca_behind
from swarmboot.routes import NotRoutable
from swarmboot.state import Instance

__all__ = ["LIST_EVERY", "await_ca_rotation", "await_nodes", "bring_up", "not_ready"]

# While nodes that have not answered SSH yet are waited for, the Linodes are listed on every
# LIST_EVERY-th poll (to notice one gone or shut down); once every node waited for has
# answered, on every SCRIPT_LIST_EVERY-th poll, and at the next poll after one stops
# answering.
LIST_EVERY = 4
SCRIPT_LIST_EVERY = 24
# A transition's end is looked for this part of the poll interval after its event's progress
# says it is due, and never later than this many poll intervals.
SOONEST, LATEST = 0.1, 6.0
GONE = "its Linode is gone"
# Events that change no Linode's status (a config profile or a tag saved).
_QUIET = frozenset({"linode_config_update", "linode_update"})
# Transitions that leave a Linode offline, to be booted.
_MADE = frozenset({"linode_create", "linode_rebuild"})


# The status a Linode is left in when a transition this run asked for ends as asked (Linodes
# are made and rebuilt unbooted); a boot that failed leaves it offline.
_ENDS = {
    ("linode_create", "finished"): "offline",
    ("linode_rebuild", "finished"): "offline",
    ("linode_boot", "finished"): "running",
    ("linode_boot", "failed"): "offline",
}


class _Looks:
    """When a poll must list the Linodes, and when the next poll is due.

    The cloud is only asked about nodes in a transition it alone can tell the end of
    (provisioning, booting, rebuilding): one request to the account's events since the
    run's mark answers for all of them. It is not asked about a transition asked for less
    than a poll interval ago (it has nothing to tell yet), nor about one whose event's
    progress (`percent_complete` of the time since the request) says it is not due yet;
    a Linode made or rebuilt whose provisioning is due is booted without asking, once its
    progress tells the end closely (a whole percent read early leaves seconds open: it is
    read again when the end may first have come): the boot's answer tells whether it has
    ended (a busy Linode is asked about a moment later). A transition that ended as asked
    gives its Linode's new status (`ended`); anything else (an event this run did not
    cause: a shutdown, a deletion, a reboot) lists the Linodes. A node whose transition
    this run did not start (it was found so) is listed for at every poll."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.since = run.event_mark
        self.failed: dict[int, str] = {}  # linode id -> why its last boot failed
        # (linode id, action) -> the earliest and the latest it can end, by its progress
        self.ends: dict[tuple[int, str], tuple[float, float]] = {}
        self.ended: dict[int, str] = {}  # linode id -> its status, from its event
        # linode id -> the transition taken to have ended before its event said so
        self.presumed: dict[int, str] = {}
        self.polls_since_list = LIST_EVERY
        self.answered: set[str] = set()  # nodes that have answered SSH in this wait
        self.broke = False  # a node that had answered SSH stopped answering
        self.next_at: float | None = None  # when the next poll is due (None: an interval on)

    def must_list(
        self, in_transition: list[Instance], waited: list[Instance], to_boot: set[str]
    ) -> bool:
        """Whether the Linodes must be listed; otherwise what their events told is in
        `ended` (a Linode to boot whose provisioning is due is taken to have ended: its boot
        will tell) and the next poll's moment in `next_at`."""
        ctx = self.run.ctx
        self.next_at = None
        self.ended = {}
        if self.broke:
            return True
        if not in_transition:
            every = SCRIPT_LIST_EVERY if self.answered >= {i.label for i in waited} else LIST_EVERY
            return self.polls_since_list >= every
        started = self.run.transitions
        if not self.run.events_known or any(i.id not in started for i in in_transition):
            return True
        now = ctx.clock.monotonic()
        asking = any(self._ask(i, now, to_boot) for i in in_transition)
        if asking and not self._read_events({i.id for i in waited}):
            return True
        # When to look next: when an end to act on may have come (to read its progress
        # again while it is too coarse to act on) or is due, when the ends only to notice
        # are, and a poll interval after a transition whose progress is not known yet was
        # asked for (or after this read found none).
        acting: list[float] = []
        noticing: list[float] = []
        for inst in in_transition:
            action, sent = started[inst.id]
            if inst.id in self.ended:
                continue
            end = self.ends.get((inst.id, action))
            if end is None:
                acting.append(
                    sent + self.interval if now - sent < self.interval else now + self.interval
                )
            elif not (action in _MADE and inst.label in to_boot):
                noticing.append(end[1] + self.slack)
            elif not self._precise(end):
                acting.append(end[0])
            elif end[1] + self.slack <= now:
                self.ended[inst.id] = "offline"  # due: its boot tells whether it has ended
                self.presumed[inst.id] = action
            else:
                acting.append(end[1] + self.slack)
        if noticing:
            # Ends that only need noticing (a boot's: what follows is the node's own doing)
            # are looked for together, once those due within a poll interval of the soonest
            # are all due.
            acting.append(max(e for e in noticing if e <= min(noticing) + self.interval))
        self.next_at = min(acting) if acting else None
        return False

    @property
    def interval(self) -> float:
        return self.run.ctx.settings.poll_interval

    @property
    def slack(self) -> float:
        """How long after its estimated end a transition is looked for: an end takes a
        moment to show."""
        return SOONEST * self.interval

    def _precise(self, end: tuple[float, float]) -> bool:
        """Whether an end is known closely enough to act on when it is due."""
        return end[1] - end[0] <= self.slack

    def _ask(self, inst: Instance, now: float, to_boot: set[str]) -> bool:
        """Whether the events must be read for a transition this run asked for: its
        progress is not known yet, or too coarse now that its end may have come, or the end
        of one only to notice is due. (One to act on whose end is known closely is not
        asked about: its boot tells.)"""
        action, sent = self.run.transitions[inst.id]
        if now - sent < self.interval:
            return False  # just asked: it has nothing to tell yet
        end = self.ends.get((inst.id, action))
        if end is None:
            return True
        if not (action in _MADE and inst.label in to_boot):
            return end[1] + self.slack <= now
        return not self._precise(end) and end[0] <= now

    def _read_events(self, ids: set[int]) -> bool:
        """Read the events since the last read: False if one was not this run's doing."""
        run, ctx = self.run, self.run.ctx
        before = ctx.clock.monotonic()
        events = run.call(
            "events", lambda: ctx.cloud.linode_events(self.since, created_from=run.events_from)
        )
        # The progress as of somewhere between the request and its answer.
        now = (before + ctx.clock.monotonic()) / 2
        ours = [e for e in events if e.linode_id in ids and e.action not in _QUIET]
        still = [e.id for e in ours if e.status == "started"]
        if events:
            self.since = min(still) - 1 if still else events[-1].id
        # A Linode gone, shut down or rebooted would show here: as good as a list of them.
        self.polls_since_list = 0
        for event in ours:
            asked, sent = run.transitions.get(event.linode_id, ("", 0.0))
            if event.action != asked:
                if event.status == "finished" and self.presumed.get(event.linode_id) == (
                    event.action
                ):
                    continue  # the end of one taken to have ended: its boot went through
                return False  # not this run's doing: look at the Linodes
            if event.status == "started":
                if event.percent:
                    # A whole percent: the end lies between these two.
                    elapsed = now - sent
                    self.ends[(event.linode_id, asked)] = (
                        sent + elapsed * 100 / (event.percent + 1),
                        sent + elapsed * 100 / event.percent,
                    )
                continue
            status = _ENDS.get((event.action, event.status))
            if status is None:
                return False  # a create or rebuild that failed: look at the Linodes
            if event.status == "failed":
                self.failed[event.linode_id] = event.message or "the boot failed"
            self.ended[event.linode_id] = status
        return True

    def unsure(self, linode_id: int, action: str) -> None:
        """A transition taken to have ended had not (its Linode answered busy): its events
        are read at the next poll, a moment from now."""
        self.ends.pop((linode_id, action), None)
        self.presumed.pop(linode_id, None)
        soon = self.run.ctx.clock.monotonic() + self.slack
        self.next_at = soon if self.next_at is None else min(self.next_at, soon)

    def listed(self) -> None:
        self.polls_since_list = 1
        self.broke = False

    def not_listed(self) -> None:
        self.polls_since_list += 1

    def next_poll(self) -> float:
        if self.next_at is None:
            return self.interval
        wait = self.next_at - self.run.ctx.clock.monotonic()
        return min(max(0.0, wait), LATEST * self.interval)


def bring_up(run: Run, boots: list[Boot], wait: WaitReady | None) -> None:
    """Boot each Linode once it is offline (a new one provisions first) and wait until each
    node runs, answers SSH with its pinned host key and reports its StackScript done.

    One list of the cluster's Linodes serves every node of a poll, and it is made only when
    something may have changed (see `_Looks`): while Linodes provision and boot, one request
    for the account's events, made only when a transition may have ended, says whether any
    did and when the next is due (a Linode whose provisioning is due is booted at once, and
    the boot's answer says whether it had ended); while only StackScripts are left, polls
    read the nodes over SSH and list the Linodes seldom (to notice one gone or shut down),
    at once when a node stops answering. So no step is noticed much later than a poll
    interval, and the minutes of a boot cost few requests."""
    ctx = run.ctx
    to_boot = {s.label for s in boots}
    to_wait = set(wait.labels) if wait else set()
    why: dict[str, str] = {label: "waiting" for label in to_boot | to_wait}
    looks = _Looks(run)

    def poll() -> bool:
        waited = [run.instances[label] for label in to_boot | to_wait if label in run.instances]
        in_transition = [i for i in waited if i.label in to_boot or i.status != "running"]
        fresh = len(waited) < len(to_boot | to_wait) or looks.must_list(
            in_transition, waited, to_boot
        )
        if fresh:
            looks.listed()
            found = ctx.cloud.instances(*listing(ctx.spec))
            listed = {i.label: i for i in cluster_linodes(ctx.spec, found, ctx.marks)}
        else:
            # Nothing listed: the Linodes as last seen, with the ends their events told.
            looks.not_listed()
            listed = {
                label: replace(inst, status=looks.ended.get(inst.id, inst.status))
                for label in to_boot | to_wait
                if why.get(label) != GONE and (inst := run.instances[label])
            }
        probes = []
        for label in sorted(to_boot | to_wait):
            inst = listed.get(label)
            if inst is None:
                if fresh:
                    why[label] = GONE  # until a list finds it again
                continue
            known = run.instances.get(label)
            run.instances[label] = replace(inst, config=known.config if known else None)
            if label in to_boot:
                if inst.status in ("running", "booting"):
                    to_boot.discard(label)
                elif inst.status == "offline":
                    config = run.instances[label].config
                    sent = ctx.clock.monotonic()
                    try:
                        run.call(
                            "boot",
                            lambda i=inst, c=config: ctx.cloud.boot(i.id, c[0] if c else None),
                        )
                    except CloudError as exc:
                        if not (busy(exc) or exc.status == 404):
                            raise
                        # Still provisioning (its progress misled), or gone: the events, or
                        # a list, tell at the next poll.
                        if known is not None:
                            run.instances[label] = known
                        looks.unsure(inst.id, run.transitions.get(inst.id, ("", 0.0))[0])
                        looks.broke = looks.broke or exc.status == 404
                        continue
                    run.asked(inst.id, "linode_boot", (sent + ctx.clock.monotonic()) / 2)
                    run.instances[label] = replace(run.instances[label], status="booting")
                    looks.failed.pop(inst.id, None)
                    looks.ends.pop((inst.id, "linode_boot"), None)
                    to_boot.discard(label)
                    run.report(f"Boot {label}")
                    run.changed("linode_booted", label, inst.id)
                why[label] = f"Linode status {inst.status}"
                continue
            if inst.status == "offline":
                # It was booted (or running) before: a failed boot says why; otherwise it was
                # shut down and is booted again.
                failure = looks.failed.get(inst.id) or run.call(
                    "events", lambda i=inst: ctx.cloud.boot_failure(i.id)
                )
                if failure is not None:
                    to_wait.discard(label)
                    run.not_ready[label] = f"its boot failed: {failure}"
                    ctx.reporter.failed(f"{label}: its boot failed: {failure}")
                    continue
                to_boot.add(label)
            if inst.status != "running":
                why[label] = f"Linode status {inst.status}"
                continue
            probes.append(inst)
        for inst, (kind, detail) in zip(
            probes, ctx.parallel(lambda i: _probe(run, i), probes), strict=True
        ):
            if kind == "ready":
                to_wait.discard(inst.label)
                run.report(f"{inst.label} is ready ({detail})")
            elif kind == "failed":
                to_wait.discard(inst.label)
                run.not_ready[inst.label] = detail
                ctx.reporter.failed(f"{inst.label}: {detail}")
            else:
                why[inst.label] = detail
            if kind != "no-ssh":
                looks.answered.add(inst.label)
            elif inst.label in looks.answered:
                looks.broke = True  # it answered before: is its Linode still there?
        return bool(to_boot or to_wait)

    retrying = Retrying(
        stop=stop_after(ctx.clock, ctx.settings.ready_timeout),
        wait=lambda state: looks.next_poll(),
        sleep=ctx.clock.sleep,
        retry=retry_if_result(bool),
    )
    try:
        retrying(poll)
    except RetryError:
        left = sorted(to_boot | to_wait)
        stuck = ", ".join(f"{label} ({why.get(label, 'waiting')})" for label in left)
        provisioning = all(why.get(label, "").endswith("provisioning") for label in left)
        raise NotReadyError(
            f"{'did not finish provisioning' if provisioning else 'not ready'} after "
            f"{ctx.settings.ready_timeout:.0f} s: {stuck}",
            hint="rerun `swarmboot up` to go on waiting, or `swarmboot status` to look; a "
            "Linode stuck in provisioning can be deleted and `up` makes it again",
        ) from None


def _probe(run: Run, inst: Instance) -> tuple[str, str]:
    """("ready", summary), ("failed", reason), ("waiting", why) or ("no-ssh", why) for a
    running node."""
    ctx = run.ctx
    try:
        remote = ctx.remote(inst)
        text = remote.read_file(facts.STATUS_PATH)
    except NotRoutable as exc:
        return "failed", exc.message.removeprefix(f"{inst.label}: ")
    except HostKeyMismatch as exc:
        # Right after the first boot the image's own key may still answer, until the
        # StackScript has put the pinned one in place: wait, never accept it.
        ctx.forget(inst.label)
        return "waiting", exc.message
    except RemoteError as exc:
        ctx.forget(inst.label)
        return "no-ssh", f"no SSH yet ({exc.message.split(': ', 1)[-1]})"
    if text is None:
        return "waiting", "the StackScript has not started"
    try:
        report = parse_status(text, source=f"{inst.label}:{facts.STATUS_PATH}")
    except StatusError as exc:
        return "waiting", exc.message
    return judge(ctx.spec, report)


def not_ready(run: Run, step: NotReady) -> None:
    run.not_ready[step.label] = step.reason
    run.ctx.reporter.failed(step.describe())


def await_nodes(run: Run, step: AwaitNodes) -> None:
    """Poll the swarm through the leader until none of the step's nodes is `unknown` to it
    (`until="heard"`), or every one is ready (`until="ready"`), up to settings.heard_timeout.
    Not heard from in time: the round ends and the next plans again. Not ready in time: a
    node that answers and will not reconnect is named, with the fix."""
    ctx = run.ctx
    manager = ctx.remote(run.instance(step.via))

    def left() -> set[str]:
        swarm = ctx.swarm.state(manager, step.via)
        ready = {e.hostname for e in swarm.nodes if e.state == "ready"}
        if step.until == "ready":
            return set(step.labels) - ready
        return {
            e.hostname
            for e in swarm.nodes
            if e.hostname in step.labels and e.state == UNHEARD and e.hostname not in ready
        }

    try:
        Retrying(
            stop=stop_after(ctx.clock, ctx.settings.heard_timeout),
            wait=lambda state: min(ctx.settings.poll_interval, 2.0),
            sleep=ctx.clock.sleep,
            retry=retry_if_result(bool),
        )(left)
    except RetryError as exc:
        names = ", ".join(sorted(exc.last_attempt.result()))
        if step.until == "ready":
            raise SwarmbootError(
                f"{names} answer but have not reconnected to the swarm after "
                f"{ctx.settings.heard_timeout:.0f} s",
                hint="`swarmboot node rebuild SPEC LABEL` replaces such a node; `swarmboot "
                "recover` again waits once more",
            ) from None
        raise Replan(
            f"the leader had not heard from {names} after {ctx.settings.heard_timeout:.0f} s"
        ) from None
    run.report(step.describe())


def await_ca_rotation(run: Run, step: AwaitCARotation) -> None:
    """Poll the swarm through `via` until its CA rotation is over and no node's TLS
    information differs from the swarm's (the new issuer, the new root), as `docker swarm
    ca --rotate` waits; up to settings.rotate_timeout. Not done in time: the nodes still
    waited for are named; the rotation goes on without swarmboot, and `rotate --ca` again
    waits for it."""
    ctx = run.ctx
    manager = ctx.remote(run.instance(step.via))

    def left() -> tuple[bool, list[str]]:
        swarm = ctx.swarm.state(manager, step.via)
        assert swarm.ca is not None
        return swarm.ca.rotating, ca_behind(swarm)

    try:
        Retrying(
            stop=stop_after(ctx.clock, ctx.settings.rotate_timeout),
            wait=lambda state: min(ctx.settings.poll_interval, 2.0),
            sleep=ctx.clock.sleep,
            retry=retry_if_result(lambda found: found[0] or bool(found[1])),
        )(left)
    except RetryError as exc:
        _, behind = exc.last_attempt.result()
        waiting = (
            f"{', '.join(behind)} still {'has' if len(behind) == 1 else 'have'} a certificate "
            "or root from the old CA"
            if behind
            else "the swarm still says the rotation is in progress"
        )
        raise SwarmbootError(
            f"the swarm's CA rotation was not over after {ctx.settings.rotate_timeout:.0f} s: "
            f"{waiting}",
            hint="the rotation goes on in the swarm; `swarmboot rotate SPEC --ca` again waits "
            "for it, and `swarmboot status` shows each node (one that is down must be "
            "repaired)",
        ) from None
    run.report(step.describe())
