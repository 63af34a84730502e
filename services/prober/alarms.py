"""The alarm book: which alarms are active, ranked so the cause comes first, and their transitions.

On 20 October operators faced hundreds of alarms naming effects. Here every alarm has a rank,
cause before effect:

    0 ProberBlind         the prober cannot probe: Route 53 unreadable, no endpoint, DNS silent
                          (while it holds, no other alarm can be trusted to fire)
    1 RootAliasDangling   the root points at a record that does not exist (the cause)
    2 EnactorStuck        the same flip has failed N times in a row
    3 StalePlanApplied    an endpoint's applied version went down without an operator restore
    4 EndpointEmpty       DNS answers with zero addresses (the effect customers see)
    4 EndpointAnswerError DNS answers REFUSED or SERVFAIL for the endpoint
    5 PlanLagHigh         the applied plan is far behind the newest one
    6 EndpointBlocked     Route 53 refused the newest plan for an endpoint (or it cannot fit the zone)
    7 PlanStoreBehind     the plan store's newest version is below what Route 53 has applied

An active alarm names the higher-ranked active alarm that explains it (`caused_by`), so the
list reads as one story. The book is pure: the caller observes conditions with a timestamp and
gets back transitions (fired, cleared), one per change, never one per observation; the caller
logs them. An alarm not observed in a round keeps its state (a source that cannot be read says
nothing, it does not clear anything).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

ROOT_ALIAS_DANGLING = "RootAliasDangling"
ENACTOR_STUCK = "EnactorStuck"
STALE_PLAN_APPLIED = "StalePlanApplied"
ENDPOINT_EMPTY = "EndpointEmpty"
PLAN_LAG_HIGH = "PlanLagHigh"
ENDPOINT_BLOCKED = "EndpointBlocked"
PLAN_STORE_BEHIND = "PlanStoreBehind"
PROBER_BLIND = "ProberBlind"
ENDPOINT_ANSWER_ERROR = "EndpointAnswerError"
RANK = {
    PROBER_BLIND: 0,
    ROOT_ALIAS_DANGLING: 1,
    ENACTOR_STUCK: 2,
    STALE_PLAN_APPLIED: 3,
    ENDPOINT_EMPTY: 4,
    ENDPOINT_ANSWER_ERROR: 4,
    PLAN_LAG_HIGH: 5,
    ENDPOINT_BLOCKED: 6,
    PLAN_STORE_BEHIND: 7,
}
# Which kind of thing an alarm's subject is.
SUBJECT_KIND = {ENACTOR_STUCK: "enactor", PROBER_BLIND: "prober"}


@dataclass(frozen=True, slots=True)
class Condition:
    """An alarm's condition holding for a subject (an endpoint, or an enactor for EnactorStuck)."""

    detail: str
    endpoints: tuple[str, ...] = ()  # endpoints concerned (for EnactorStuck: the stuck ones)
    facts: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class ActiveAlarm:
    alarm: str
    subject: str
    since: float
    condition: Condition
    caused_by: str | None = None

    @property
    def rank(self) -> int:
        return RANK[self.alarm]

    @property
    def endpoints(self) -> tuple[str, ...]:
        return self.condition.endpoints or ((self.subject,) if SUBJECT_KIND.get(self.alarm) is None else ())

    def to_json(self) -> dict[str, Any]:
        kind = SUBJECT_KIND.get(self.alarm, "endpoint")
        return {
            "alarm": self.alarm,
            "rank": self.rank,
            kind: self.subject,
            "endpoints": list(self.endpoints),
            "since": self.since,
            "detail": self.condition.detail,
            "caused_by": self.caused_by,
            **dict(self.condition.facts),
        }


@dataclass(frozen=True, slots=True)
class Transition:
    kind: str  # "fired" | "cleared"
    alarm: ActiveAlarm
    at: float


@dataclass
class AlarmBook:
    _active: dict[tuple[str, str], ActiveAlarm] = field(default_factory=dict)

    def observe(
        self, alarm: str, conditions: Mapping[str, Condition], now: float, universe: Iterable[str] | None = None
    ) -> list[Transition]:
        """Set `alarm`'s conditions for this round: fire new subjects, clear those no longer true.

        `universe`: the subjects that were evaluated; active subjects outside it are left alone.
        None means every subject was evaluated.
        """
        if alarm not in RANK:
            raise ValueError(f"unknown alarm {alarm!r}")
        scope = None if universe is None else set(universe) | set(conditions)
        out: list[Transition] = []
        for subject, condition in conditions.items():
            key = (alarm, subject)
            current = self._active.get(key)
            if current is None:
                fired = ActiveAlarm(alarm, subject, now, condition)
                self._active[key] = fired
                out.append(Transition("fired", fired, now))
            elif current.condition != condition:
                # Still the same alarm: its detail may change, its start may not, nothing is logged.
                self._active[key] = replace(current, condition=condition)
        for key in [k for k in self._active if k[0] == alarm and k[1] not in conditions]:
            if scope is None or key[1] in scope:
                out.append(Transition("cleared", self._active.pop(key), now))
        return out

    def active(self) -> list[ActiveAlarm]:
        """Active alarms, cause first: by rank, then by when they fired; each names its cause."""
        alarms = sorted(self._active.values(), key=lambda a: (a.rank, a.since, a.subject))
        return [replace(a, caused_by=self._cause_of(a, alarms)) for a in alarms]

    def _cause_of(self, alarm: ActiveAlarm, ranked: list[ActiveAlarm]) -> str | None:
        mine = set(alarm.endpoints)
        for other in ranked:
            if other.rank >= alarm.rank:
                break
            if mine & set(other.endpoints):
                return f"{other.alarm}:{other.subject}"
        return None
