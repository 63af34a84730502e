"""The soak's wiring: a live stack, the nemesis carrying out its schedule, the operator, the checker.

A private stack is the race lab's (lab/race/stack.py: the `dnsctl up` stack on free ports in a
state dir of its own, here with `dnsctl up`'s settings: a plan every few seconds, signed plans,
the emulator's journal in the state dir), and this process supervises it as `dnsctl up` does
(services/supervisor.py restarts whatever the nemesis killed, with its backoff). Attached, the
stack's own `dnsctl up` does that, and the nemesis finds each service's pid in its stack.json.

Order of a soak: wait until every endpoint is served (the baseline), start the checker, carry out
the fault schedule and the operator's changes for the soak's minutes, heal everything, publish a
plan, wait until every endpoint serves the newest plan (the convergence time), read the final
fleet and plan, judge. Whatever happens, the heal runs: no process is left stopped, no chaos left on.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from cli.client import ServiceError, ServiceUnreachable
from lab.race.control import Control
from lab.race.stack import RaceStack
from lab.soak import checker as chk
from lab.soak.nemesis import ENACTOR_TARGETS, Fault, OperatorChange, Schedule, schedule
from services import stack_file
from services.logs import get_logger

# `dnsctl up`'s plan interval: scheduled plans carry the slow-lane changes (capacities, undrains).
SOAK_PLAN_INTERVAL_S = 5.0
BASELINE_TIMEOUT_S = 180.0
CHANGE_RETRY_S = 30.0  # an operator retries an unanswered or conflicting change this long
KEEPER_INTERVAL_S = 0.5
ATTACHED_UNAVAILABLE = {"route53-throttle": "needs to restart the emulator with other flags, which only a private stack's supervisor can"}


class SoakAborted(RuntimeError):
    """The soak could not start (no baseline) or was interrupted; the message says why."""


@dataclass
class SoakResult:
    schedule: Schedule
    windows: list[chk.FaultWindow]
    outcomes: list[chk.ChangeOutcome]
    tally: chk.Tally
    violation_count: dict[str, int]
    violations: list[chk.Violation]
    lost: list[str]
    convergence: chk.Convergence | None
    since_last_fault_s: float | None  # convergence measured from the last fault's heal
    verdict: chk.Verdict
    duration_s: float
    final_version: int | None = None
    notes: list[str] = field(default_factory=list)

    def injected_by_kind(self) -> dict[str, dict[str, int]]:
        out = {k: {"scheduled": 0, "injected": 0, "skipped": 0} for k in self.schedule.kinds}
        for w in self.windows:
            row = out[w.fault.kind]
            row["scheduled"] += 1
            row["injected" if w.injected else "skipped"] += 1
        for f in self.schedule.faults[len(self.windows):]:
            out[f.kind]["scheduled"] += 1
        return out


def drainable_az(fleet: dict[str, Any]) -> str | None:
    """The AZ an operator may drain: the one with the least capacity (the planner's safety check
    refuses draining a big one without force)."""
    totals: dict[str, int] = dict.fromkeys(fleet.get("azs", []), 0)
    for lb in fleet.get("load_balancers", []):
        totals[lb["az"]] = totals.get(lb["az"], 0) + int(lb["capacity"])
    return min(totals, key=lambda az: (totals[az], az)) if totals else None


class Services:
    """Pids of the stack's services now (a restarted one has a new pid), and its emulator's flags."""

    def __init__(self, stack: RaceStack):
        self.stack = stack
        self._emulator_spec = None

    def pid(self, name: str) -> int | None:
        if self.stack.supervisor is not None:
            for child in self.stack.supervisor.children:
                if child.spec.name == name:
                    return child.process.pid if child.process.poll() is None else None
            return None
        described = stack_file.read(self.stack.state_dir)
        svc = described.services.get(name) if described else None
        return int(svc["pid"]) if svc and svc.get("pid") else None

    def signal(self, name: str, sig: signal.Signals) -> int:
        """Send `sig` to the service's process group (its own session, services/supervisor.py)."""
        pid = self.pid(name)
        if pid is None:
            raise ProcessLookupError(f"{name} is not running")
        os.killpg(pid, sig)
        return pid

    def restart_emulator_with(self, extra_args: tuple[str, ...]) -> None:
        """Stop the emulator cleanly; the supervisor starts it again with `extra_args` added (or,
        with (), as it was)."""
        from services.supervisor import stop_process_group

        sup = self.stack.supervisor
        if sup is None:
            raise ProcessLookupError("only a private stack's emulator can be restarted with other flags")
        child = next(c for c in sup.children if c.spec.name == "emulator")
        if self._emulator_spec is None:
            self._emulator_spec = child.spec
        child.spec = replace(self._emulator_spec, args=self._emulator_spec.args + extra_args)
        stop_process_group(child.process)

    @property
    def emulator_changed(self) -> bool:
        sup = self.stack.supervisor
        return bool(sup and self._emulator_spec and next(c for c in sup.children if c.spec.name == "emulator").spec != self._emulator_spec)


class Nemesis:
    """Carries out faults on the stack and heals them; remembers what it left broken until healed."""

    def __init__(self, control: Control, services: Services, now: Callable[[], float]):
        self.control = control
        self.services = services
        self.now = now
        self.paused: dict[str, int] = {}  # service -> pid stopped with SIGSTOP
        self.chaos_on: set[str] = set()
        self.burst_on = False
        self.log = get_logger(component="soak")

    def strike(self, fault: Fault) -> None:
        k, target = fault.kind, fault.target
        if k in ("enactor-pause", "aws-outage"):
            self.paused[target] = self.services.signal(target, signal.SIGSTOP)
        elif k == "enactor-delay":
            self.control.chaos(target, delay_before_flip_s=fault.param("delay_before_flip_s"),
                               route53_latency_ms=fault.param("route53_latency_ms"))
            self.chaos_on.add(target)
        elif k == "enactor-kill":
            self.services.signal(target, signal.SIGKILL)
        elif k in ("planner-restart", "emulator-restart"):
            self.services.signal(target, signal.SIGKILL if fault.param("signal") == "KILL" else signal.SIGTERM)
        elif k == "route53-errors":
            hit = 0
            for e in ENACTOR_TARGETS:
                try:
                    self.control.chaos(e, route53_error_rate=fault.param("route53_error_rate"))
                    self.chaos_on.add(e)
                    hit += 1
                except ServiceError:
                    continue  # that enactor is starting again: the others still get the fault
            if not hit:
                raise ServiceError("no enactor took the fault")
        elif k == "route53-throttle":
            self.services.restart_emulator_with(
                ("--throttle", "--throttle-rate", str(fault.param("rate")), "--throttle-burst", str(fault.param("burst"))))
        elif k == "plan-burst":
            self.control.burst(int(fault.param("every_ms")), fault.duration_s)
            self.burst_on = True

    def heal(self, fault: Fault) -> None:
        k = fault.kind
        if k in ("enactor-pause", "aws-outage"):
            self._resume(fault.target)
        elif k == "enactor-delay" or k == "route53-errors":
            for e in sorted(self.chaos_on):
                self._clear(e)
        elif k == "route53-throttle":
            self.services.restart_emulator_with(())
        elif k == "plan-burst":
            self._stop_burst()

    def heal_all(self) -> None:
        """Everything back to normal, whatever was left: at the end and on any error."""
        for name in list(self.paused):
            self._resume(name)
        for e in sorted(self.chaos_on):
            self._clear(e)
        if self.burst_on:
            self._stop_burst()
        if self.services.emulator_changed:
            self.services.restart_emulator_with(())

    def _resume(self, name: str) -> None:
        pid = self.paused.pop(name, None)
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass  # it died while stopped; the supervisor starts it again

    def _clear(self, enactor: str) -> None:
        try:
            self.control.clear(enactor)
        except ServiceError as exc:
            # A restarted enactor starts without chaos; one that cannot be reached is logged.
            self.log.warning("soak_heal_failed", enactor=enactor, error=str(exc)[:200])
        self.chaos_on.discard(enactor)

    def _stop_burst(self) -> None:
        try:
            self.control.stop_burst()
        except ServiceError as exc:
            self.log.warning("soak_heal_failed", target="planner", error=str(exc)[:200])  # a restarted planner has no burst
        self.burst_on = False


class Operator:
    """Makes the schedule's operator changes over the planner's REST API, retrying what gets no
    answer (the changes set a state, so a retry is safe) and remembering each outcome."""

    def __init__(self, control: Control, now: Callable[[], float]):
        self.planner = control.planner
        self.now = now
        self.outcomes: list[chk.ChangeOutcome] = []
        self.log = get_logger(component="soak")

    def _send(self, c: OperatorChange) -> Any:
        if c.action == "capacity":
            return self.planner.patch(f"/v1/fleet/load-balancers/{c.lb_id}", {"capacity": c.capacity})
        return self.planner.post(f"/v1/fleet/azs/{c.az}/{c.action}")

    def make(self, c: OperatorChange, stop: threading.Event) -> chk.ChangeOutcome:
        """acknowledged (2xx); refused (4xx other than a conflict: not made); unanswered (a timeout
        or a 5xx at some attempt and no 2xx after: it may have been made, as a fast-lane change
        whose fleet write succeeded and whose publish failed is); not_made (the planner was never
        reached within CHANGE_RETRY_S)."""
        deadline = time.monotonic() + CHANGE_RETRY_S
        unanswered, detail = False, ""
        while True:
            try:
                self._send(c)
                outcome = chk.ChangeOutcome(c, "acknowledged", round(self.now(), 2))
                break
            except ServiceUnreachable as exc:
                detail = str(exc)  # never reached the planner: nothing was changed
            except ServiceError as exc:
                body = exc.body if isinstance(exc.body, dict) else {}
                if exc.status == 409 and body.get("error") == "conflict":
                    detail = str(exc)  # a concurrent change won the compare-and-swap: try again
                elif exc.status is None or exc.status >= 500:
                    unanswered, detail = True, str(exc)  # sent, and no clear answer: it may have been made
                else:
                    outcome = chk.ChangeOutcome(c, "refused", round(self.now(), 2), str(exc)[:300])
                    break
            if time.monotonic() > deadline or stop.is_set():
                outcome = chk.ChangeOutcome(c, "unanswered" if unanswered else "not_made", round(self.now(), 2),
                                            f"no acknowledgement in {CHANGE_RETRY_S:.0f}s: {detail[:250]}")
                break
            time.sleep(1.0)
        self.outcomes.append(outcome)
        self.log.info("soak_change", change=c.describe(), status=outcome.status, t=outcome.t, detail=outcome.detail or None)
        return outcome


def wait_served(control: Control, route53_control: Control, timeout_s: float) -> int:
    """The baseline: every endpoint served (on Route 53 and over DNS) by a plan."""
    conv = chk.converge(control, route53_control, at_least=1, timeout_s=timeout_s)
    if not conv.converged:
        raise SoakAborted(f"the stack did not serve its first plan within {timeout_s:.0f}s (served: {conv.last_seen})")
    return int(conv.version or 0)


def _sleep_until(t0: float, at_s: float, stop: threading.Event) -> bool:
    """Sleep until t0 + at_s; False when told to stop first."""
    return not stop.wait(max(0.0, t0 + at_s - time.monotonic()))


def run_soak(
    stack: RaceStack,
    *,
    seed: int,
    minutes: float,
    kinds: tuple[str, ...],
    converge_timeout_s: float = 180.0,
    on_event: Callable[[str], None] = lambda text: None,
    stop: threading.Event | None = None,
) -> SoakResult:
    from services.aws_clients import route53_client

    stop = stop or threading.Event()
    log = get_logger(component="soak")
    control = Control(stack, timeout_s=15.0)  # an operator's patience on a loaded machine
    # Short timeouts and one attempt: a paused emulator must not stall the Route 53 sampler.
    r53 = Control(stack, route53=route53_client(max_attempts=1, timeout_s=2.0), timeout_s=5.0)
    notes = []
    if not stack.private:
        for kind, why in ATTACHED_UNAVAILABLE.items():
            if kind in kinds:
                kinds = tuple(k for k in kinds if k != kind)
                notes.append(f"{kind} left out: it {why}")
    keeper_stop = threading.Event()
    operator_done = threading.Event()  # set when the nemesis stops: no operator change is made after it
    keeper = None
    if stack.supervisor is not None:
        sup = stack.supervisor

        def keep() -> None:  # what `dnsctl up`'s loop does: start again what died
            while not keeper_stop.wait(KEEPER_INTERVAL_S):
                for child in sup.restart_crashed():
                    on_event(f"supervisor restarted {child.spec.name} (restart {child.restarts})")

        keeper = threading.Thread(target=keep, name="soak-supervisor", daemon=True)
        keeper.start()
    nemesis = Nemesis(control, Services(stack), now=lambda: time.monotonic() - t0)
    t0 = time.monotonic()
    windows: list[chk.FaultWindow] = []
    checker: chk.Checker | None = None
    try:
        baseline = wait_served(control, r53, BASELINE_TIMEOUT_S)
        initial_fleet = _patiently(lambda: control.planner.get("/v1/fleet"))
        lbs = tuple((lb["id"], int(lb["capacity"])) for lb in initial_fleet.get("load_balancers", []))
        plan = schedule(seed, minutes * 60.0, kinds, lbs, drainable_az(initial_fleet))
        log.info("soak_started", seed=seed, minutes=minutes, kinds=list(kinds), faults=len(plan.faults),
                 changes=len(plan.changes), baseline_version=baseline)
        on_event(f"baseline: plan {baseline} served; {len(plan.faults)} faults and {len(plan.changes)} operator changes over {minutes:g} min")
        t0 = time.monotonic()
        checker = chk.Checker(control, r53, t0).start()
        operator = Operator(control, now=lambda: time.monotonic() - t0)

        def operate() -> None:
            for c in plan.changes:
                if not _sleep_until(t0, c.at_s, operator_done) or stop.is_set():
                    return
                o = operator.make(c, operator_done)
                on_event(f"{o.t:7.1f}s operator {c.describe()}: {o.status}")

        operator_thread = threading.Thread(target=operate, name="soak-operator", daemon=True)
        operator_thread.start()
        for fault in plan.faults:
            if not _sleep_until(t0, fault.at_s, stop):
                break
            started = round(time.monotonic() - t0, 2)
            try:
                nemesis.strike(fault)
                injected, note = True, ""
            except (ServiceError, ProcessLookupError, StopIteration) as exc:
                injected, note = False, f"{type(exc).__name__}: {exc}"[:200]
            log.warning("soak_fault_injected" if injected else "soak_fault_skipped", kind=fault.kind, target=fault.target,
                        t=started, duration_s=fault.duration_s, params=dict(fault.params), note=note or None)
            on_event(f"{started:7.1f}s {'fault' if injected else 'skipped'} {fault.describe()}" + (f": {note}" if note else ""))
            _sleep_until(t0, fault.ends_s, stop)
            if injected:
                try:
                    nemesis.heal(fault)
                except (ServiceError, ProcessLookupError, StopIteration) as exc:
                    log.warning("soak_heal_failed", kind=fault.kind, error=str(exc)[:200])
            healed = round(time.monotonic() - t0, 2)
            windows.append(chk.FaultWindow(fault, started, healed, injected, note))
            if injected:
                log.info("soak_fault_healed", kind=fault.kind, target=fault.target, t=healed)
            if stop.is_set():
                break
        if not stop.is_set():
            _sleep_until(t0, minutes * 60.0, stop)
        operator_done.set()  # an operator behind its schedule (the planner was down) makes no more changes
        operator_thread.join(CHANGE_RETRY_S + 10)
        nemesis.heal_all()
        stopped_at = time.monotonic()
        on_event(f"{stopped_at - t0:7.1f}s nemesis stopped; waiting for convergence (up to {converge_timeout_s:.0f}s)")
        if stop.is_set():
            raise SoakAborted("interrupted")
        target = _publish_after_heal(control, converge_timeout_s)
        if target is None:
            conv = chk.Convergence(False, round(time.monotonic() - stopped_at, 2), None)
        else:
            conv = chk.converge(control, r53, at_least=target, timeout_s=max(1.0, converge_timeout_s - (time.monotonic() - stopped_at)))
        conv.seconds = round(time.monotonic() - stopped_at, 2) if conv.converged else conv.seconds
        last_heal = max((t0 + w.healed for w in windows if w.injected), default=None)
        since_last = round(time.monotonic() - last_heal, 2) if conv.converged and last_heal else None
        checker.stop()
        try:
            final_fleet = _patiently(lambda: control.planner.get("/v1/fleet"))
            final_plan = _patiently(lambda: control.planner.get("/v1/plans/latest"))
            lost = chk.lost_changes(operator.outcomes, initial_fleet, final_fleet, final_plan)
        except ServiceError as exc:
            # A stack that cannot show its final fleet or plan did not survive: a failed verdict, not "could not run".
            final_plan = {}
            lost = [f"the final fleet or plan cannot be read, so no change can be shown to be kept: {exc}"[:400]]
        verdict = chk.judge(checker.tally, checker.violation_count, checker.violations, windows, lost, conv)
        log.warning("soak_verdict", passed=verdict.passed, seed=seed, minutes=minutes,
                    properties={k: ok for k, (ok, _) in verdict.properties.items()}, by_kind=verdict.by_kind,
                    converge_s=conv.seconds, lost=len(lost), empty=checker.tally.empty)
        return SoakResult(plan, windows, list(operator.outcomes), checker.tally, dict(checker.violation_count),
                          list(checker.violations), lost, conv, since_last, verdict, round(time.monotonic() - t0, 1),
                          final_version=final_plan.get("version"), notes=notes)
    finally:
        operator_done.set()
        nemesis.heal_all()
        if checker is not None:
            checker.stop()
        keeper_stop.set()
        if keeper is not None:
            keeper.join(5)


def _patiently(read: Callable[[], Any], timeout_s: float = 120.0) -> Any:
    """A read the verdict needs, retried while the planner is slow or starting again (a loaded
    machine makes single reads time out; the verdict must not be lost to one)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return read()
        except ServiceError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2.0)


def _publish_after_heal(control: Control, timeout_s: float) -> int | None:
    """Publish a plan once the planner answers again: it carries every queued change, and the
    stack must converge to it (or to anything newer). Retried only when the planner was not
    reached or answered 5xx; a timeout may have published, so the newest version is read instead."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            return control.publish("soak: the nemesis stopped")
        except ServiceError as exc:
            if exc.status is None and not isinstance(exc, ServiceUnreachable):
                try:
                    return control.newest_version()
                except ServiceError:
                    pass
            time.sleep(1.0)
    return None
