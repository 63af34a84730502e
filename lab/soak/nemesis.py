"""The soak's nemesis schedule: which fault strikes when, and which operator change is made when,
as a pure function of the seed (no clock, no I/O), so a failing soak replays from its seed.

Theory of operation. A soak of D seconds is a sequence of fault slots, one after another (Jepsen's
nemesis strikes, heals, waits): each slot is a gap, the fault, and its heal. The kind of each
slot is drawn in rounds: every round is a fresh shuffle of the enabled kinds, so a soak that is
long enough for one round sees every kind at least once, and switching a kind off (`--faults`)
only removes its slots. The target, length and strength of each fault are drawn from the same
stream. Beside the faults runs an operator, on a stream of its own (so the faults chosen never
change the operator's changes): now and then it drains or brings back an AZ, or changes the
capacity (the weight) of one load balancer. Every change must be in the final fleet and the final
plan (lab/soak/checker.py); lab/soak/run.py carries both schedules out on a live stack.

Fault kinds and what they do to the stack:

    enactor-pause     SIGSTOP one enactor's process group, SIGCONT at the heal
    enactor-delay     one enactor's chaos route: delay before each flip, latency on every Route 53 call
    enactor-kill      kill -9 one enactor (the supervisor starts it again, with its backoff)
    planner-restart   kill -9 or SIGTERM the planner (started again; its fleet is durable in S3)
    emulator-restart  kill -9 the emulator (started again; its journal keeps every acknowledged change)
    aws-outage        SIGSTOP the emulator: S3 and Route 53 both unreachable until the heal
    route53-errors    every enactor's chaos route: a share of its Route 53 calls fail
    route53-throttle  the emulator restarted with Route 53 throttling on (a low rate per account),
                      and restarted without it at the heal
    plan-burst        the planner's chaos burst: a plan every few hundred ms
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

ENACTOR_TARGETS = ("enactor-a", "enactor-b", "enactor-c")
FAULT_KINDS = (
    "enactor-pause",
    "enactor-delay",
    "enactor-kill",
    "planner-restart",
    "emulator-restart",
    "aws-outage",
    "route53-errors",
    "route53-throttle",
    "plan-burst",
)
# How long each kind lasts (seconds, uniform between the bounds). For the instant kinds (kill,
# restart) it is the time left for the supervisor to bring the service back before the next slot.
DURATION_S: dict[str, tuple[float, float]] = {
    "enactor-pause": (2.0, 10.0),
    "enactor-delay": (3.0, 12.0),
    "enactor-kill": (6.0, 12.0),
    "planner-restart": (6.0, 12.0),
    "emulator-restart": (6.0, 12.0),
    "aws-outage": (3.0, 15.0),
    "route53-errors": (4.0, 15.0),
    "route53-throttle": (10.0, 25.0),
    "plan-burst": (3.0, 15.0),
}
GAP_S = (2.0, 8.0)  # quiet time before each fault
START_S = 5.0  # the first fault comes after this much quiet: the checker has a baseline
OPERATOR_GAP_S = (5.0, 20.0)
CAPACITY_FACTOR = (0.8, 1.25)  # of the LB's starting capacity: small enough for the safety check
DRAIN_SHARE = 0.4  # of operator changes: drain or bring back the AZ; the rest change a capacity


class UnknownFaultKind(ValueError):
    """A --faults list named a kind the nemesis does not have."""


@dataclass(frozen=True, slots=True)
class Fault:
    at_s: float  # from the start of the nemesis
    kind: str
    target: str  # the service it strikes ("enactors": all three)
    duration_s: float
    params: tuple[tuple[str, float | int | str], ...] = ()

    @property
    def ends_s(self) -> float:
        return self.at_s + self.duration_s

    def param(self, name: str) -> float | int | str:
        return dict(self.params)[name]

    def describe(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.params)
        return f"{self.kind} {self.target} for {self.duration_s:.1f}s" + (f" ({extra})" if extra else "")


@dataclass(frozen=True, slots=True)
class OperatorChange:
    at_s: float
    action: Literal["drain", "undrain", "capacity"]
    az: str | None = None
    lb_id: str | None = None
    capacity: int | None = None

    @property
    def key(self) -> str:
        """What the change sets: the AZ's drain state or one LB's capacity (the last change to a key wins)."""
        return f"az:{self.az}" if self.action in ("drain", "undrain") else f"lb:{self.lb_id}"

    def describe(self) -> str:
        if self.action == "capacity":
            return f"capacity {self.lb_id} -> {self.capacity}"
        return f"{self.action} {self.az}"


@dataclass(frozen=True, slots=True)
class Schedule:
    seed: int
    duration_s: float
    kinds: tuple[str, ...]
    faults: tuple[Fault, ...]
    changes: tuple[OperatorChange, ...]

    def by_kind(self) -> dict[str, int]:
        counts = dict.fromkeys(self.kinds, 0)
        for f in self.faults:
            counts[f.kind] += 1
        return counts


def parse_kinds(text: str | None) -> tuple[str, ...]:
    """`--faults a,b,...` -> the kinds in FAULT_KINDS order; None or "all" -> every kind."""
    if text is None or text.strip() in ("", "all"):
        return FAULT_KINDS
    asked = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in asked if k not in FAULT_KINDS]
    if unknown:
        raise UnknownFaultKind(f"unknown fault kind {', '.join(unknown)}; the kinds are {', '.join(FAULT_KINDS)}")
    return tuple(k for k in FAULT_KINDS if k in asked)


def _fault(rng: random.Random, kind: str, at_s: float) -> Fault:
    duration = round(rng.uniform(*DURATION_S[kind]), 2)
    if kind == "enactor-pause" or kind == "enactor-kill":
        return Fault(at_s, kind, rng.choice(ENACTOR_TARGETS), duration)
    if kind == "enactor-delay":
        params = (("delay_before_flip_s", round(rng.uniform(0.5, 3.0), 2)), ("route53_latency_ms", rng.randint(100, 800)))
        return Fault(at_s, kind, rng.choice(ENACTOR_TARGETS), duration, params)
    if kind == "planner-restart":
        return Fault(at_s, kind, "planner", duration, (("signal", rng.choice(("KILL", "TERM"))),))
    if kind == "emulator-restart":
        return Fault(at_s, kind, "emulator", duration, (("signal", "KILL"),))
    if kind == "aws-outage":
        return Fault(at_s, kind, "emulator", duration)
    if kind == "route53-errors":
        return Fault(at_s, kind, "enactors", duration, (("route53_error_rate", round(rng.uniform(0.2, 0.7), 2)),))
    if kind == "route53-throttle":
        return Fault(at_s, kind, "emulator", duration, (("rate", rng.choice((2, 3, 5))), ("burst", 5)))
    if kind == "plan-burst":
        return Fault(at_s, kind, "planner", duration, (("every_ms", rng.choice((200, 250, 300, 500))),))
    raise UnknownFaultKind(kind)


def fault_schedule(seed: int, duration_s: float, kinds: tuple[str, ...] = FAULT_KINDS) -> tuple[Fault, ...]:
    """Faults one after another from START_S; each ends (is healed) by `duration_s`."""
    rng = random.Random(f"dnsctl-soak:{seed}:faults")
    faults: list[Fault] = []
    if not kinds:
        return ()
    t = START_S
    round_: list[str] = []
    while True:
        if not round_:
            round_ = list(kinds)
            rng.shuffle(round_)
        kind = round_.pop(0)
        at = round(t + rng.uniform(*GAP_S), 2)
        fault = _fault(rng, kind, at)
        if fault.ends_s > duration_s:
            return tuple(faults)
        faults.append(fault)
        t = fault.ends_s


def operator_schedule(
    seed: int, duration_s: float, lbs: tuple[tuple[str, int], ...], drain_az: str | None
) -> tuple[OperatorChange, ...]:
    """Operator changes during the soak: `lbs` are (id, starting capacity), `drain_az` the AZ the
    operator may take out (one whose drain passes the safety check; None: no drains). The AZ is
    back in service at the end, as an operator leaves it, only if the last change says so."""
    rng = random.Random(f"dnsctl-soak:{seed}:operator")
    changes: list[OperatorChange] = []
    drained = False
    t = START_S
    ordered = tuple(sorted(lbs))
    while True:
        t = round(t + rng.uniform(*OPERATOR_GAP_S), 2)
        if t > duration_s:
            return tuple(changes)
        if drain_az is not None and (not ordered or rng.random() < DRAIN_SHARE):
            changes.append(OperatorChange(t, "undrain" if drained else "drain", az=drain_az))
            drained = not drained
        elif ordered:
            lb_id, start = rng.choice(ordered)
            capacity = max(1, round(start * rng.uniform(*CAPACITY_FACTOR)))
            changes.append(OperatorChange(t, "capacity", lb_id=lb_id, capacity=capacity))


def schedule(
    seed: int,
    duration_s: float,
    kinds: tuple[str, ...] = FAULT_KINDS,
    lbs: tuple[tuple[str, int], ...] = (),
    drain_az: str | None = None,
) -> Schedule:
    return Schedule(seed, duration_s, kinds, fault_schedule(seed, duration_s, kinds), operator_schedule(seed, duration_s, lbs, drain_az))
