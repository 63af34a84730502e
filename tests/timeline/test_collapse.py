"""Folding noise: runs and cycles per lane and endpoint, never an anomaly, never across one."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lab.timeline.anomalies import analyse
from lab.timeline.collapse import CollapsedRow, EventRow, collapse
from tests.timeline.events_builder import EP, EP6, Events


def _rows(ev: Events, **kw):
    events = ev.merged()
    return events, collapse(events, analyse(events).marks, **kw)


def test_forty_lock_events_become_one_row_amid_other_lanes():
    ev = Events()
    for i in range(20):
        ev.add(i, "enactor-c", "lock_lost", endpoint=EP, plan_version=110, holder="enactor-a", expires=100 + i)
        ev.add(i + 0.1, "enactor-c", "backoff", endpoint=EP, plan_version=110, max_seconds=0.1 * i, attempt=i + 1, reason="lock_lost")
        ev.add(i + 0.5, "planner", "plan_published", plan_version=111 + i, lane="slow", key=f"plans/{111 + i}.json")
    ev.add(30, "enactor-c", "lock_acquired", endpoint=EP, plan_version=110)
    events, rows = _rows(ev)
    folded = [r for r in rows if isinstance(r, CollapsedRow)]
    assert [(r.lane, r.count, r.name) for r in folded] == [("enactor-c", 40, "lock contention"), ("planner", 20, "plan_published")]
    contention = folded[0]
    assert contention.counts == {"lock_lost": 20, "backoff": 20}
    assert contention.first.ts < contention.last.ts
    assert contention.describe().startswith("×40 lock contention (lock_lost ×20, backoff ×20) plan 110 between 06:48:00.000 and 06:48:19.100")
    assert folded[1].versions == list(range(111, 131))
    assert isinstance(rows[-1], EventRow) and rows[-1].event.name == "lock_acquired"
    assert rows[0] is contention  # the folded row takes the place of its first event


def test_a_different_event_about_the_same_endpoint_breaks_a_run_another_endpoint_does_not():
    ev = Events()
    for i in range(3):
        ev.add(i, "prober", "probe", endpoint=EP, answers=3, latency_ms=i)
        ev.add(i + 0.5, "prober", "probe", endpoint=EP6, answers=2)
    for i in range(3):
        ev.add(10 + i, "prober", "probe", endpoint=EP, answers=0)
    ev.add(20, "prober", "probe", endpoint=EP, answers=3)
    ev.add(21, "prober", "probe", endpoint=EP, answers=3)
    _, rows = _rows(ev)
    shape = [(r.count, r.label) if isinstance(r, CollapsedRow) else r.event.fields["answers"] for r in rows]
    assert shape == [(3, "probe answers=3"), (3, "probe answers=2"), (3, "probe answers=0"), 3, 3]
    # empty answers with no cause in the logs are still marked as effects, of nothing known
    assert rows[2].mark is not None and rows[2].mark.role == "effect" and rows[2].mark.anomaly is None


def test_cycles_fold_with_their_varying_versions():
    ev = Events()
    t = 0.0
    for v in range(111, 121):
        for name in ("plan_seen", "lock_attempt", "lock_acquired", "tree_built", "flipped", "lock_released"):
            ev.add(t, "enactor-a", name, endpoint=EP, plan_version=v, applied_version=v, tree_id=f"t-{v}", batch_id=f"b{t}")
            t += 0.01
    ev.add(t, "enactor-a", "plan_seen", endpoint=EP, plan_version=121)  # a started but unfinished cycle
    _, rows = _rows(ev)
    assert len(rows) == 1
    (row,) = rows
    assert (row.period, row.count, len(row.events)) == (6, 10, 61)
    assert row.cycle == "plan_seen → lock_attempt → lock_acquired → tree_built → flipped → lock_released"
    assert row.versions == list(range(111, 122))
    assert row.describe().startswith("×10 cycles of plan_seen → lock_attempt")


def test_two_repetitions_are_not_noise_and_all_disables_folding():
    ev = Events()
    ev.add(0, "enactor-c", "lock_lost", endpoint=EP).add(1, "enactor-c", "backoff", endpoint=EP)
    _, rows = _rows(ev)
    assert all(isinstance(r, EventRow) for r in rows)
    ev.add(2, "enactor-c", "lock_lost", endpoint=EP)
    _, rows = _rows(ev, min_repeats=10**9)
    assert len(rows) == 3


def test_anomalies_never_fold_and_split_runs():
    ev = Events()
    for i in range(4):
        ev.add(i, "enactor-a", "flip_failed", endpoint=EP, plan_version=146)
    for i in range(3):
        ev.add(10 + i, "planner", "plan_published", plan_version=150 + i, lane="slow")
    ev.add(13.5, "enactor-b", "flipped", endpoint=EP, plan_version=150, tree_id="t-b150")
    ev.add(13.6, "enactor-c", "flipped", endpoint=EP, plan_version=120, tree_id="t-c120")  # stale: a new chapter
    for i in range(3):
        ev.add(14 + i, "planner", "plan_published", plan_version=153 + i, lane="slow")
    events, rows = _rows(ev)
    first = rows[0]
    assert isinstance(first, EventRow) and first.mark.role == "cause"  # the first failed flip stays alone
    assert isinstance(rows[1], CollapsedRow) and rows[1].count == 3 and rows[1].mark.role == "effect"
    planner_rows = [r for r in rows if r.lane == "planner"]
    assert [(r.count, r.versions) for r in planner_rows] == [(3, [150, 151, 152]), (3, [153, 154, 155])]


_NAMES = ("lock_lost", "backoff", "probe", "flipped", "plan_seen", "flip_failed", "alarm_fired")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(("enactor-a", "enactor-c", "prober")),
            st.sampled_from(_NAMES),
            st.sampled_from((EP, EP6)),
            st.integers(100, 104),
            st.sampled_from((0, 3, None)),
        ),
        max_size=80,
    )
)
def test_every_event_is_shown_exactly_once_in_order(items):
    ev = Events()
    for t, (process, name, endpoint, version, answers) in enumerate(items):
        fields = {"endpoint": endpoint, "plan_version": version}
        if answers is not None:
            fields["answers"] = answers
        if name == "alarm_fired":
            fields["alarm"] = "RootAliasDangling" if version == 100 else "EndpointEmpty"
        ev.add(t * 0.1, process, name, **fields)
    events = ev.merged()
    marks = analyse(events).marks
    rows = collapse(events, marks)
    shown = [e.index for r in rows for e in r.events]
    assert sorted(shown) == list(range(len(events)))
    assert [r.first.index for r in rows] == sorted(r.first.index for r in rows)
    for row in rows:
        if isinstance(row, CollapsedRow):
            assert row.count >= 3 and len({(e.lane, e.endpoint) for e in row.events}) == 1
            assert not any(marks.get(e.index) and marks[e.index].role in ("cause", "anomaly") for e in row.events)


def test_irregular_routine_work_is_one_row_but_unknown_events_and_warnings_stay():
    names = ["plan_seen", "up_to_date", "plan_seen", "lock_attempt", "lock_acquired", "tree_built", "flipped", "lock_released", "plan_seen", "up_to_date"]
    ev = Events()
    for i, name in enumerate(names):
        ev.add(i, "enactor-b", name, endpoint=EP, plan_version=100 + i // 3)
    ev.add(20, "enactor-b", "fault_injected", endpoint=EP, fault="lose_lock_attempt")  # chaos: never routine
    for i, name in enumerate(["plan_seen", "lock_attempt", "lock_acquired"]):  # too short to fold
        ev.add(21 + i, "enactor-b", name, endpoint=EP, plan_version=110)
    ev.add(30, "enactor-b", "lock_lost", level="warning", endpoint=EP, plan_version=110)
    _, rows = _rows(ev)
    routine = rows[0]
    assert isinstance(routine, CollapsedRow) and routine.routine and len(routine.events) == 10
    assert routine.name == "routine events" and routine.versions == [100, 101, 102, 103]
    assert routine.tally().startswith("plan_seen ×3, up_to_date ×2")
    assert [r.event.name for r in rows[1:]] == ["fault_injected", "plan_seen", "lock_attempt", "lock_acquired", "lock_lost"]


def test_dns_and_emulator_events_fold_per_zone():
    ev = Events()
    for i in range(9):
        zone = ("a.example.", "b.example.", "c.example.")[i * 7 % 3]
        ev.add(i, "dns", "snapshot_zone_changed", zone=zone, records=10 + i, generation=i)
    _, rows = _rows(ev)
    assert sorted((r.count, r.first.subject) for r in rows) == [(3, "a.example"), (3, "b.example"), (3, "c.example")]
