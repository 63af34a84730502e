"""The scripted replay of 20 October 2025 on a live stack (the same script in both modes).

Theory of operation. The outage needed three things at once: an enactor holding a plan it had
judged fresh long ago, a planner publishing plan after plan meanwhile, and that enactor's flip
landing between another enactor's flip of a much newer plan and that enactor's clean-up (which
deletes trees of plans "significantly older" than the one it just flipped), with nobody flipping
anything newer before the clean-up ran. The script makes each of them happen on purpose with the
chaos controls (enactor/chaos.py, planner/burst.py), then lets the real processes do the rest:

  1. settle      every endpoint serves the newest plan; the prober sees addresses everywhere
  2. fall behind enactor-a and -b are paused for a moment, so enactor-c alone reads the next plan
                 (v_c) and judges it fresh; from then on enactor-c loses every lock attempt
                 (lock_failures) and backs off, keeping v_c in hand
  3. burst       enactor-a and -b run again while the script publishes N plans, one every X ms
                 at most (a slow planner makes the burst longer, never smaller: the burst is its
                 plans, not its seconds); they apply them, clean up old trees, contend for the lock
  4. the window  enactor-b and -c are paused (enactor-c's lock attempts may succeed again once
                 it resumes); every flip of enactor-a and -c is held back a moment
                 (delay_before_flip), and the
                 next plan v_a is published. Pausing an enactor while it holds back a flip stops
                 it right after that flip, before its next request, so the script can order the
                 steps exactly, as on 20 October:
                   enactor-a flips v_a, and stops before its clean-up lists the zone;
                   enactor-c resumes, lists (the lock is free), builds v_c's tree, flips it,
                   and stops before it looks at anything newer;
                   enactor-a resumes: its clean-up lists the zone and deletes old trees
  5. aftermath   chaos cleared everywhere, one more plan published, and the stack is watched

Legacy: enactor-c never checks again that v_c is fresh, flips the root to it, and enactor-a's
clean-up, threshold v_a - keep_plans, deletes v_c's tree under the root: the root dangles, DNS
answers NOERROR with zero addresses, and every later flip fails because it must point the
rollback at the tree the root names, which is gone. Guarded: enactor-c checks v_c after every
listing and refuses it (refused_stale), and a clean-up never deletes the active tree; nothing
dangles. Legacy may also break during the burst on its own, when enactor-a or -b flips a plan
several versions stale (the same mechanism); the script then goes straight to the aftermath.

Every wait is bounded; a wait that times out is a moment of its own and the race goes on, so
the verdict is always built from what happened, never from what the script hoped for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cli.client import ServiceError
from enactor.chaos import MAX_LOCK_FAILURES
from lab.race.control import Answer, Control
from lab.race.watch import Watch
from services.logs import get_logger

A, B, C = "enactor-a", "enactor-b", "enactor-c"
# How long a race holds the planner's scheduled plans at most: longer than any script's waits add up to.
SCHEDULE_HOLD_S = 900.0
# The prober's alarms that say customers lost the name (services/prober/alarms.py).
OUTAGE_ALARMS = ("RootAliasDangling", "EnactorStuck", "EndpointEmpty")


class RaceAborted(RuntimeError):
    """The stack is not in a state a race can start from; the message says what to do."""


@dataclass(frozen=True)
class RaceSettings:
    burst_every_ms: int = 250
    burst_plans: int = 12  # October's churn: enactor-c's plan ends far below the clean-up's threshold
    flip_delay_s: float = 1.5  # act 4: how long enactor-a and -c hold back a flip (chaos delay_before_flip)
    settle_timeout_s: float = 20.0
    aftermath_timeout_s: float = 15.0
    aftermath_hold_s: float = 3.0  # after the aftermath settles, watch this long: does it stay so?


@dataclass(frozen=True, slots=True)
class Moment:
    t: float  # seconds since the race started
    who: str
    text: str


@dataclass
class RaceRun:
    """What the script did and saw; evidence.py and verdict.py read it."""

    version_guard: bool | None
    t0: float
    moments: list[Moment] = field(default_factory=list)
    stale_version: int | None = None  # v_c
    window_version: int | None = None  # v_a
    final_version: int | None = None
    broke_early: bool = False  # legacy broke during the burst, before act 4
    burst_published: int = 0  # plans the burst published (the settings' burst_plans unless the planner refused or hung)
    log_offsets: dict[str, int] = field(default_factory=dict)
    prober_empty_seconds_before: float = 0.0
    prober_empty_probes_before: float = 0.0
    watch: Watch | None = None
    timed_out: list[str] = field(default_factory=list)
    t0_wall: float = field(default_factory=time.time)
    dig_after_damage: list[tuple[str, str, Answer]] = field(default_factory=list)  # (endpoint, type, answer)
    dig_at_end: list[tuple[str, str, Answer]] = field(default_factory=list)
    dangling_at_end: list[str] = field(default_factory=list)


class Race:
    def __init__(self, control: Control, settings: RaceSettings = RaceSettings(), on_moment: Callable[[Moment], None] | None = None):
        self.c = control
        self.s = settings
        self.on_moment = on_moment
        self.log = get_logger(component="race")

    # -- helpers -------------------------------------------------------------------------------

    def _say(self, run: RaceRun, text: str, who: str = "race") -> None:
        moment = Moment(round(time.monotonic() - run.t0, 2), who, text)
        run.moments.append(moment)
        self.log.info("race_moment", who=who, text=text, t=moment.t)
        if self.on_moment:
            self.on_moment(moment)

    def _wait(self, run: RaceRun, what: str, done: Callable[[], bool], timeout_s: float, interval_s: float = 0.1) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if done():
                    return True
            except Exception as exc:  # noqa: BLE001 - a status read failing now is retried until the deadline
                self.log.debug("race_wait_retry", what=what, error=f"{type(exc).__name__}: {exc}"[:200])
            time.sleep(interval_s)
        run.timed_out.append(what)
        self._say(run, f"gave up waiting ({timeout_s:.0f}s) for {what}")
        return False

    def _all_endpoints(self, enactor: str, test: Callable[[dict[str, Any]], bool]) -> bool:
        eps = self.c.endpoint_status(enactor)
        names = [e.name for e in self.c.endpoints()]
        return all(name in eps and test(eps[name]) for name in names)

    def _converged(self, version: int, enactors: tuple[str, ...]) -> bool:
        views = self.c.views()
        if any(v.active_version != version or v.dangling for v in views.values()):
            return False
        return all(
            self._all_endpoints(e, lambda s: (s.get("done_version") or 0) >= version and s.get("task") == "idle") for e in enactors
        )

    def _broken(self, run: RaceRun) -> bool:
        return bool(run.watch and run.watch.dangling())

    def _dig_all(self) -> list[tuple[str, str, Answer]]:
        return [(ep.name, rtype, self.c.dig(ep.name, rtype)) for ep in self.c.endpoints() for rtype in ep.record_types]

    # -- the script ------------------------------------------------------------------------------

    def run(self) -> RaceRun:
        c = self.c
        first = next(iter(c.enactors))
        run = RaceRun(version_guard=c.status(first).get("version_guard"), t0=time.monotonic())
        # The only plans are the script's: an attached stack's planner publishes on its schedule
        # (every 5 s under `dnsctl up`), which overtook every "plan N" the script waits for. The hold
        # ends by itself if this process dies; released here however the script ends.
        c.hold_schedule(SCHEDULE_HOLD_S)
        try:
            self._prepare(run)
            with Watch(c, run.t0) as watch:
                run.watch = watch
                self._fall_behind(run)
                self._burst(run)
                if not self._broken(run):
                    self._window(run)
                else:
                    run.broke_early = True
                    self._say(run, "a root dangles already: a stale plan was flipped in during the burst and its tree cleaned up")
                self._aftermath(run)
        finally:
            try:
                c.release_schedule()
            except ServiceError as exc:  # the hold ends by itself; never hide what the script raised
                self.log.warning("race_schedule_release_failed", error=str(exc)[:200])
        return run

    def _prepare(self, run: RaceRun) -> None:
        c, s = self.c, self.s
        if c.frozen():
            raise RaceAborted("the stack is frozen (`dnsctl thaw` first): a race needs the automation running")
        for name in c.enactors:
            c.clear(name)
        c.stop_burst()
        newest = c.newest_version() or c.publish("race: first plan")
        mode = "guarded" if run.version_guard else "legacy" if run.version_guard is False else "unknown mode"
        self._say(run, f"stack up ({mode}); waiting until every endpoint serves plan {newest}")
        if not self._wait(run, f"every endpoint on plan {newest}", lambda: self._converged(newest, tuple(c.enactors)), s.settle_timeout_s):
            dangling = [name for name, v in c.views().items() if v.dangling]
            if dangling:
                raise RaceAborted(f"{', '.join(dangling)} dangles before the race: repair it first (`dnsctl repair ENDPOINT --newest`)")
        names = {e.name for e in c.endpoints()}
        self._wait(
            run, "the prober to see addresses for every endpoint",
            lambda: {p["endpoint"] for p in c.prober_probes() if p["addresses"] > 0} >= names, s.settle_timeout_s,
        )
        # An alarm raised while the stack came up clears only after several full answers in a row
        # (EndpointEmpty: 5 by default), so one answering probe is not yet a clean start: wait for
        # the alarms to clear too, and refuse only one that stays.
        def outage_alarms() -> list[dict[str, Any]]:
            return [a for a in c.alarms() if a["alarm"] in OUTAGE_ALARMS]

        self._wait(run, "the outage alarms raised during start-up to clear", lambda: not outage_alarms(), s.settle_timeout_s)
        active = outage_alarms()
        if active:
            said = ", ".join(f"{a['alarm']} on {a.get('endpoint') or a.get('enactor') or a.get('subject', '?')}" for a in active)
            raise RaceAborted(f"alarms are active before the race ({said}): repair the stack first")
        run.prober_empty_seconds_before = c.prober_metric("dnsctl_probe_empty_seconds_total")
        run.prober_empty_probes_before = c.prober_metric("dnsctl_probe_empty_total")
        run.log_offsets = {name: path.stat().st_size for name, path in c.stack.logs.items() if path.exists()}

    def _fall_behind(self, run: RaceRun) -> None:
        c, s = self.c, self.s
        c.pause(A)
        c.pause(B)
        c.chaos(C, lock_failures=MAX_LOCK_FAILURES)
        run.stale_version = v = c.publish("race: the plan enactor-c will hold on to (plan 110 of 20 October)")
        self._say(run, f"enactor-a and -b paused; enactor-c loses every lock attempt from now on; plan {v} published")
        seen: set[str] = set()

        def c_holds_and_backs_off() -> bool:
            for name, st in c.endpoint_status(C).items():
                if st.get("plan_in_hand") == v and st.get("state") == "backing_off":
                    seen.add(name)
            return seen >= {e.name for e in c.endpoints()}

        self._wait(run, f"enactor-c to take plan {v} and lose the lock on every endpoint", c_holds_and_backs_off, s.settle_timeout_s, 0.05)
        c.resume(A)
        c.resume(B)
        self._say(run, f"enactor-c holds plan {v}, judged fresh at its first look, and backs off; enactor-a and -b resume")

    def _burst(self, run: RaceRun) -> None:
        """Publish the burst's plans one by one (each through the planner's normal path), however
        long a busy machine makes that take; a refused plan is said and retried, within a bound."""
        c, s = self.c, self.s
        self._say(run, f"planner burst: {s.burst_plans} plans, one every {s.burst_every_ms} ms at most", "planner")
        published: list[int] = []
        refused: list[str] = []
        every_s = s.burst_every_ms / 1000
        # However long it takes, within reason: a publish waits for S3 (and a signature), and a
        # machine at load 50 made that seconds per plan; a planner gone for good ends the wait.
        deadline = time.monotonic() + s.burst_plans * (every_s + s.settle_timeout_s)
        next_at = time.monotonic()
        while len(published) < s.burst_plans and time.monotonic() < deadline:
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at = time.monotonic() + every_s
            try:
                published.append(c.publish(f"race: burst plan {len(published) + 1} of {s.burst_plans}"))
            except ServiceError as exc:
                refused.append(str(exc)[:200])
        run.burst_published = len(published)
        newest = c.newest_version() or 0
        if len(published) < s.burst_plans:
            run.timed_out.append(f"the burst's {s.burst_plans} plans")
        tail = f"; {len(refused)} refused (last: {refused[-1]})" if refused else ""
        self._say(run, f"burst over: {len(published)} of {s.burst_plans} plans published, newest {newest}{tail}", "planner")
        self._wait(
            run, f"enactor-a and -b to apply plan {newest}",
            lambda: self._broken(run) or self._converged(newest, (A, B)), s.settle_timeout_s,
        )

    def _in_flip_delay(self, enactor: str, since: int) -> set[str]:
        """Endpoints where `enactor` logged that it is holding back a flip (chaos delay_before_flip)."""
        return {
            e.get("endpoint") for e in self.c.events(enactor, since)
            if e.get("event") == "fault_injected" and e.get("fault") == "delay_before_flip"
        }

    def _window(self, run: RaceRun) -> None:
        c, s = self.c, self.s
        names = {e.name for e in c.endpoints()}
        c.pause(B)
        c.pause(C)
        # A paused enactor finishes the backoff sleep it is in; wait until none is sleeping.
        self._wait(run, "enactor-c to stop at the pause", lambda: self._all_endpoints(C, lambda e: not e.get("backoff_s")), 15)
        c.chaos(A, delay_before_flip_s=s.flip_delay_s)
        since_a, since_c = c.log_size(A), c.log_size(C)
        run.window_version = v = c.publish("race: the newer plan enactor-a applies and cleans up after (plan 145)")
        self._say(run, f"enactor-b and -c paused; enactor-a holds back each flip {s.flip_delay_s:g} s; plan {v} published")

        # Pausing enactor-a while it holds back its flip stops it right after the flip, before the
        # clean-up lists the zone: the window of 20 October, held open.
        self._wait(run, f"enactor-a to hold back its flip of plan {v}", lambda: self._in_flip_delay(A, since_a) >= names, s.settle_timeout_s, 0.05)
        c.pause(A)
        if self._wait(run, f"enactor-a to flip plan {v}", lambda: self._all_endpoints(A, lambda e: (e.get("last_flip") or {}).get("plan_version") == v),
                      s.flip_delay_s + s.settle_timeout_s, 0.05):
            self._say(run, f"enactor-a flipped plan {v} and stopped before its clean-up lists the zone (paused)", A)

        in_hand = sorted({e.get("plan_in_hand") for e in c.endpoint_status(C).values()} - {None})
        # Only now may enactor-c win the lock: a lock attempt it had in flight when it was paused
        # (a loaded machine makes that likely) is long over, lost, so it holds no lock while
        # enactor-a needs it (at load 30 it won one that way and kept it through the window).
        c.chaos(C, lock_failures=0, delay_before_flip_s=s.flip_delay_s, backoff_multiplier=0.01)
        c.resume(C)
        holding = f"plan {', '.join(map(str, in_hand))} in hand" if in_hand else "no plan in hand"
        self._say(run, f"enactor-c resumes with {holding} (plan {v} is the newest); its lock attempts succeed again", C)

        def c_decided() -> bool:
            # Legacy: it holds back a flip of its stale plan; guarded: it looked and went idle.
            return self._in_flip_delay(C, since_c) >= names or self._all_endpoints(
                C, lambda e: e.get("task") == "idle" and (e.get("done_version") or 0) >= v)

        self._wait(run, "enactor-c to flip its plan or refuse it", c_decided, s.settle_timeout_s, 0.05)
        c.pause(C)  # it finishes the flip it holds back, and stops before it looks at anything newer
        stale = run.stale_version

        def c_done() -> bool:
            return self._all_endpoints(C, lambda e: (e.get("last_flip") or {}).get("plan_version") == stale or e.get("task") == "idle")

        self._wait(run, "enactor-c to finish what it does", c_done, s.flip_delay_s + s.settle_timeout_s, 0.05)
        flipped = [n for n, e in c.endpoint_status(C).items() if (e.get("last_flip") or {}).get("plan_version") == stale]
        if flipped:
            self._say(run, f"enactor-c flipped {len(flipped)} endpoint(s) to its stale plan {stale}, over plan {v} (paused now)", C)
        c.resume(A)
        self._say(run, "enactor-a resumes: its clean-up lists the zone now", A)
        self._wait(run, "enactor-a's clean-up to finish", lambda: self._all_endpoints(A, lambda e: e.get("task") == "idle"), s.settle_timeout_s)

    def _aftermath(self, run: RaceRun) -> None:
        c, s = self.c, self.s
        if run.watch and run.watch.dangling():
            # The DNS server reads Route 53 every 250 ms: dig once it serves what Route 53 holds.
            watch = run.watch
            self._wait(run, "the data plane to serve the damage",
                       lambda: all(watch.snapshot()[n].first_empty is not None for n in watch.dangling()), 5)
        run.dig_after_damage = self._dig_all()
        empty = sorted({name for name, _, a in run.dig_after_damage if a.empty})
        if empty:
            self._say(run, f"dig: {', '.join(empty)} answers NOERROR with zero addresses", "dns")
        for name in c.enactors:
            c.clear(name)
        c.stop_burst()
        run.final_version = v = c.publish("race: the next plan (every flip must now point the rollback at the current tree)")
        self._say(run, f"chaos cleared on every enactor; plan {v} published")

        def settled() -> bool:
            if self._broken(run):
                fired = {a["alarm"] for a in c.alarms()}
                return set(OUTAGE_ALARMS) <= fired
            return self._converged(v, tuple(c.enactors))

        self._wait(run, f"plan {v} everywhere, or the outage's alarms", settled, s.aftermath_timeout_s, 0.2)
        dangling = run.watch.dangling() if run.watch else []
        self._say(run, f"{'still dangling: ' + ', '.join(dangling) if dangling else 'no root dangles'}; watching {s.aftermath_hold_s:g} s more")
        time.sleep(s.aftermath_hold_s)
        run.dig_at_end = self._dig_all()
        run.dangling_at_end = [name for name, v in c.views().items() if v.roots and v.dangling]
