"""Which event is the anomaly, and which events are only its effects. Pure: events in, marks out.

Theory of operation. On 20 October the operators drowned in effects (empty answers, alarms,
failing flips) while the cause was one quiet event earlier on. These rules walk the merged
timeline once, keeping per endpoint what the logs have shown so far (the newest version flipped
in, the tree the root was last flipped to, whether a flip already failed), and flag four kinds
of anomaly:

  stale_flip           a `flipped` event whose plan_version is lower than a version already
                       flipped in for that endpoint, or lower than the applied_version the
                       enactor itself reports (the prober's StalePlanApplied alarm is the same
                       fact seen from outside, used when the enactor's log is missing);
  active_tree_deleted  a `cleanup_deleted` event that deleted the tree the endpoint's latest
                       `flipped` pointed the root at;
  root_dangling        the prober's RootAliasDangling alarm firing;
  flip_failed          the first `flip_failed` of an endpoint.

The first anomaly of an endpoint is its cause; later anomalies of the same endpoint are marked
as following from it. Events that only show the damage (EndpointEmpty, EnactorStuck and
PlanLagHigh alarms, further failed flips, empty probe answers) are marked as effects of the
endpoint's cause, never as anomalies of their own. `refused_stale`, and a flip or clean-up
rejected by the guard's compare-and-swap (cause "applied"), are the guard doing its job, and
`alarm_cleared` a recovery; they are marked so a reader sees the story end.

Event and field names are the ones the enactor (enactor/runner.py), the prober and the planner
log; they are gathered in the tables below so a rename is a one-line change here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from lab.timeline.events import Event

FLIPPED = "flipped"
CLEANUP_DELETED = "cleanup_deleted"
FLIP_FAILED = "flip_failed"
REFUSED_STALE = "refused_stale"
CLEANUP_ABORTED = "cleanup_aborted"
# A batch rejected because the `_applied` record changed (enactor/protocol.py rejection_cause):
# the guard's compare-and-swap doing its job, not a failure.
GUARD_CAUSE = "applied"
ALARM_FIRED = frozenset({"alarm_fired", "alarm_raised"})
ALARM_CLEARED = frozenset({"alarm_cleared", "alarm_resolved"})

ALARM_DANGLING = "RootAliasDangling"
ALARM_STALE = "StalePlanApplied"
EFFECT_ALARMS = frozenset({"EndpointEmpty", "EnactorStuck", "PlanLagHigh"})

# Where each fact lives in an event's fields (first present wins).
ALARM_NAME_FIELDS = ("alarm", "alarm_name", "name")
FLIP_TREE_FIELDS = ("tree", "tree_id", "new_tree", "to_tree", "target_tree")
DELETED_TREE_FIELDS = ("trees", "deleted", "deleted_trees", "tree_ids", "tree", "tree_id")
DELETED_VERSION_FIELDS = ("tree_versions", "versions", "plan_versions", "deleted_versions")
ANSWER_COUNT_FIELDS = ("answers", "answer_count", "addresses", "address_count")

Kind = Literal["stale_flip", "active_tree_deleted", "root_dangling", "flip_failed"]
Role = Literal["cause", "anomaly", "effect", "guard", "recovered"]

KIND_TITLES: dict[str, str] = {
    "stale_flip": "stale plan flipped over a newer one",
    "active_tree_deleted": "active tree deleted",
    "root_dangling": "root left dangling",
    "flip_failed": "first failed flip",
}


@dataclass(frozen=True, slots=True)
class Anomaly:
    id: str  # "A1", "A2", ... in timeline order
    kind: Kind
    event_index: int
    endpoint: str | None
    summary: str
    caused_by: str | None = None  # the id of the endpoint's cause, when this anomaly follows one

    @property
    def is_cause(self) -> bool:
        return self.caused_by is None

    @property
    def title(self) -> str:
        return KIND_TITLES[self.kind]


@dataclass(frozen=True, slots=True)
class Mark:
    """What the timeline says about one event beyond the event itself."""

    role: Role
    anomaly: str | None = None  # the anomaly this event is (cause/anomaly) or shows (effect)
    note: str = ""  # what the event is: the anomaly's title, or the effect seen
    follows: str | None = None  # for a later anomaly: the cause it follows from

    def describe(self) -> str:
        if self.role == "anomaly":
            return f"{self.note}, follows {self.follows}"
        if self.role == "effect":
            return f"{self.note}: effect of {self.anomaly}" if self.anomaly else f"{self.note}: cause not in these logs"
        return self.note


@dataclass(frozen=True, slots=True)
class Analysis:
    anomalies: tuple[Anomaly, ...]
    marks: dict[int, Mark] = field(default_factory=dict)

    @property
    def causes(self) -> tuple[Anomaly, ...]:
        return tuple(a for a in self.anomalies if a.is_cause)

    def by_id(self, anomaly_id: str) -> Anomaly:
        return next(a for a in self.anomalies if a.id == anomaly_id)

    def effects_of(self, anomaly_id: str) -> list[int]:
        return [i for i, m in sorted(self.marks.items()) if m.role == "effect" and m.anomaly == anomaly_id]

    def recoveries_of(self, anomaly_id: str) -> list[int]:
        return [i for i, m in sorted(self.marks.items()) if m.role == "recovered" and m.anomaly == anomaly_id]


@dataclass
class _EndpointState:
    newest_version: int | None = None
    newest_by: str = ""
    active_tree: str | None = None
    active_version: int | None = None
    cause: str | None = None
    flip_failed: bool = False
    recovered: bool = False


def tree_id(value: Any) -> str | None:
    """'t-abc.dynamodb.example.' or 't-abc' -> 't-abc'."""
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().split(".", 1)[0].lower() or None


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def deleted_trees(event: Event) -> set[str]:
    """Tree ids a clean-up deleted: plain names, or objects with a tree/tree_id key."""
    found: set[str] = set()
    for name in DELETED_TREE_FIELDS:
        for item in _listed(event.fields.get(name)):
            if isinstance(item, dict):
                item = next((item[k] for k in ("tree", "tree_id", "name") if k in item), None)
            tid = tree_id(item)
            if tid:
                found.add(tid)
    return found


def deleted_versions(event: Event) -> set[int]:
    """Plan versions a clean-up deleted: a list of numbers, or objects with a plan_version key."""
    items = [i for name in DELETED_VERSION_FIELDS for i in _listed(event.fields.get(name))]
    items += [
        i.get("plan_version", i.get("version"))
        for name in DELETED_TREE_FIELDS
        for i in _listed(event.fields.get(name))
        if isinstance(i, dict)
    ]
    return {i for i in items if isinstance(i, int) and not isinstance(i, bool)}


def failure_text(event: Event) -> str:
    """Why a batch failed: the error code and Route 53's first message (or a plain error field)."""
    code = event.str_field("error_code", "error", "reason") or ""
    messages = event.fields.get("messages")
    first = messages[0] if isinstance(messages, list) and messages and isinstance(messages[0], str) else ""
    text = f"{code}: {first}" if code and first else code or first
    return text if len(text) <= 200 else text[:199] + "…"


def alarm_name(event: Event) -> str | None:
    return event.str_field(*ALARM_NAME_FIELDS)


def actor(event: Event) -> str:
    return event.str_field("enactor") or event.process


def is_empty_answer(event: Event) -> bool:
    """A probe (or DNS) event that reports zero addresses for an endpoint."""
    if event.endpoint is None or not any(w in event.name for w in ("probe", "answer", "empty", "resolve")):
        return False
    if event.name in ("empty_answer", "probe_empty", "answer_empty"):
        return True
    for name in ANSWER_COUNT_FIELDS:
        value = event.fields.get(name)
        if isinstance(value, list):
            return not value
        if isinstance(value, int) and not isinstance(value, bool):
            return value == 0
    return False


def _is_operator_rollback(event: Event) -> bool:
    # An explicit rollback by an operator may lower the version (system.md, Monotonic).
    return event.fields.get("rollback") is True or bool(event.fields.get("operator"))


def analyse(events: Sequence[Event]) -> Analysis:
    """Mark anomalies, their effects, the guard and recoveries in `events` (in timeline order)."""
    states: dict[str | None, _EndpointState] = {}
    anomalies: list[Anomaly] = []
    marks: dict[int, Mark] = {}

    def state(endpoint: str | None) -> _EndpointState:
        return states.setdefault(endpoint, _EndpointState())

    def flag(event: Event, kind: Kind, summary: str) -> None:
        st = state(event.endpoint)
        anomaly = Anomaly(f"A{len(anomalies) + 1}", kind, event.index, event.endpoint, summary, caused_by=st.cause)
        anomalies.append(anomaly)
        if st.cause is None:
            st.cause = anomaly.id
            marks[event.index] = Mark("cause", anomaly.id, anomaly.title)
        else:
            marks[event.index] = Mark("anomaly", anomaly.id, anomaly.title, follows=st.cause)

    def effect(event: Event, what: str) -> None:
        marks[event.index] = Mark("effect", _cause_for(event, states, anomalies), what)

    for event in events:
        endpoint, who = event.endpoint, actor(event)
        if event.name == FLIPPED and endpoint is not None:
            st = state(endpoint)
            version = event.int_field("plan_version")
            applied = event.int_field("applied_version")
            if version is not None and not _is_operator_rollback(event):
                if st.newest_version is not None and version < st.newest_version:
                    flag(event, "stale_flip", f"{who} flipped {endpoint} to plan {version} over newer plan {st.newest_version} (flipped in by {st.newest_by})")
                elif applied is not None and applied > version:
                    flag(event, "stale_flip", f"{who} flipped {endpoint} to plan {version} although plan {applied} was applied")
            if event.index not in marks and st.cause is not None and not st.recovered:
                # The first good flip after the damage: the endpoint is served from a live tree again.
                st.recovered = True
                marks[event.index] = Mark("recovered", st.cause, f"flipped to plan {version}: the root points at a live tree again")
            if version is not None and (st.newest_version is None or version > st.newest_version):
                st.newest_version, st.newest_by = version, who
            st.active_tree = tree_id(event.str_field(*FLIP_TREE_FIELDS))
            st.active_version = version
        elif event.name == CLEANUP_DELETED and endpoint is not None:
            st = state(endpoint)
            trees, versions = deleted_trees(event), deleted_versions(event)
            hit_tree = st.active_tree is not None and st.active_tree in trees
            # Without tree ids in the log, a deleted version equal to the active one is the same fact.
            hit_version = st.active_tree is None or not trees
            hit_version = hit_version and st.active_version is not None and st.active_version in versions
            if hit_tree or hit_version:
                what = f"tree {st.active_tree}" if st.active_tree else "the tree"
                flag(event, "active_tree_deleted", f"{who}'s clean-up deleted {what} (plan {st.active_version}) that the root of {endpoint} points at")
        elif event.name == FLIP_FAILED and event.fields.get("cause") == GUARD_CAUSE:
            marks[event.index] = Mark("guard", None, "the guard's compare-and-swap refused a flip: the applied version moved")
        elif event.name == FLIP_FAILED:
            st = state(endpoint)
            if not st.flip_failed:
                st.flip_failed = True
                version = event.int_field("plan_version")
                reason = failure_text(event)
                flag(event, "flip_failed", f"{who} failed to flip {endpoint or 'an endpoint'} to plan {version}" + (f": {reason}" if reason else ""))
            else:
                effect(event, "flip failed again")
        elif event.name in ALARM_FIRED:
            name = alarm_name(event)
            if name == ALARM_DANGLING:
                flag(event, "root_dangling", f"RootAliasDangling: the root of {endpoint or 'an endpoint'} points at a tree that does not exist")
            elif name == ALARM_STALE and state(endpoint).cause is None:
                flag(event, "stale_flip", f"StalePlanApplied: the applied plan of {endpoint or 'an endpoint'} went down")
            elif name == ALARM_STALE or name in EFFECT_ALARMS:
                effect(event, f"{name} alarm")
        elif event.name in ALARM_CLEARED:
            marks[event.index] = Mark("recovered", state(endpoint).cause, f"{alarm_name(event) or 'alarm'} cleared")
        elif event.name == REFUSED_STALE:
            marks[event.index] = Mark("guard", None, "the guard refused a stale plan")
        elif event.name == CLEANUP_ABORTED and event.fields.get("cause") == GUARD_CAUSE:
            marks[event.index] = Mark("guard", None, "the guard aborted a clean-up: the active tree changed under it")
        elif is_empty_answer(event):
            effect(event, "empty answer")
    return Analysis(tuple(anomalies), marks)


def _cause_for(event: Event, states: dict[str | None, _EndpointState], anomalies: list[Anomaly]) -> str | None:
    """The cause of the endpoints the event names; for one naming none, the latest cause."""
    if event.endpoints:
        causes = [st.cause for e in event.endpoints if (st := states.get(e)) is not None and st.cause is not None]
        return causes[0] if causes else None
    roots = [a for a in anomalies if a.is_cause]
    return roots[-1].id if roots else None
