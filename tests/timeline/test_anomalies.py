"""The anomaly rules on synthetic event lists: cause first, effects labelled, the guard recognised."""

from __future__ import annotations

from lab.timeline.anomalies import analyse, deleted_trees, deleted_versions, tree_id
from tests.timeline.events_builder import EP, EP6, Events


def _flip(ev: Events, t: float, who: str, v: int, endpoint: str = EP, **extra) -> Events:
    return ev.add(t, who, "flipped", endpoint=endpoint, plan_version=v, applied_version=v, tree_id=f"t-{who[-1]}{v}", **extra)


def test_stale_flip_over_a_newer_version_is_the_cause():
    ev = Events()
    _flip(ev, 1, "enactor-a", 144)
    _flip(ev, 2, "enactor-a", 145)
    _flip(ev, 3, "enactor-c", 110)
    events = ev.merged()
    result = analyse(events)
    assert [a.kind for a in result.anomalies] == ["stale_flip"]
    cause = result.anomalies[0]
    assert cause.is_cause and events[cause.event_index].process == "enactor-c"
    assert "plan 110 over newer plan 145" in cause.summary and "enactor-a" in cause.summary
    assert result.marks[cause.event_index].role == "cause"


def test_stale_flip_by_reported_applied_version():
    ev = Events().add(1, "enactor-c", "flipped", endpoint=EP, plan_version=110, applied_version=145, tree_id="t-c110")
    result = analyse(ev.merged())
    assert [a.kind for a in result.anomalies] == ["stale_flip"]
    assert "although plan 145 was applied" in result.anomalies[0].summary


def test_same_or_newer_versions_and_operator_rollback_are_not_stale():
    ev = Events()
    _flip(ev, 1, "enactor-a", 145)
    _flip(ev, 2, "enactor-b", 145)  # idempotent work of a second enactor
    _flip(ev, 3, "enactor-b", 146)
    _flip(ev, 4, "enactor-a", 140, rollback=True)  # an explicit operator rollback
    assert analyse(ev.merged()).anomalies == ()


def test_endpoints_are_judged_apart():
    ev = Events()
    _flip(ev, 1, "enactor-a", 145, endpoint=EP)
    _flip(ev, 2, "enactor-c", 110, endpoint=EP6)  # first flip on its own endpoint: not stale
    _flip(ev, 3, "enactor-c", 111, endpoint=EP + ".")  # same endpoint as the first, spelled with the dot
    result = analyse(ev.merged())
    assert [(a.kind, a.endpoint) for a in result.anomalies] == [("stale_flip", EP)]


def test_cleanup_deleting_the_active_tree():
    ev = Events()
    _flip(ev, 1, "enactor-a", 145)
    _flip(ev, 2, "enactor-c", 110)  # root -> t-c110
    ev.add(3, "enactor-a", "cleanup_deleted", endpoint=EP, plan_version=145, trees=["t-a110", "t-c110"], tree_versions=[110, 110])
    result = analyse(ev.merged())
    assert [a.kind for a in result.anomalies] == ["stale_flip", "active_tree_deleted"]
    deleted = result.anomalies[1]
    assert deleted.caused_by == "A1" and not deleted.is_cause
    assert "t-c110" in deleted.summary
    assert result.marks[deleted.event_index].role == "anomaly"


def test_cleanup_of_other_trees_is_fine_and_alone_the_deletion_is_a_cause():
    ev = Events()
    _flip(ev, 1, "enactor-a", 145)
    ev.add(2, "enactor-a", "cleanup_deleted", endpoint=EP, trees=["t-a139", "t-a140"])
    assert analyse(ev.merged()).anomalies == ()

    ev = Events()
    _flip(ev, 1, "enactor-a", 145)
    ev.add(2, "enactor-b", "cleanup_deleted", endpoint=EP, trees=[f"t-a145.{EP}."])  # fully qualified names
    result = analyse(ev.merged())
    assert [(a.kind, a.is_cause) for a in result.anomalies] == [("active_tree_deleted", True)]


def test_cleanup_without_tree_ids_falls_back_to_versions():
    ev = Events()
    ev.add(1, "enactor-a", "flipped", endpoint=EP, plan_version=110)
    ev.add(2, "enactor-b", "cleanup_deleted", endpoint=EP, versions=[109, 110])
    assert [a.kind for a in analyse(ev.merged()).anomalies] == ["active_tree_deleted"]


def test_tree_field_shapes():
    ev = Events().add(1, "enactor-a", "cleanup_deleted", trees=[{"tree": "t-AB.x."}, "t-cd", None, 3], tree_versions=[1, None, 2])
    event = ev.merged()[0]
    assert deleted_trees(event) == {"t-ab", "t-cd"}
    assert deleted_versions(event) == {1, 2}
    assert tree_id("") is None and tree_id(None) is None


def test_dangling_root_alone_is_the_cause_and_alarms_are_its_effects():
    ev = Events()
    ev.add(1, "prober", "alarm_fired", alarm="EndpointEmpty", endpoint=EP)  # before any cause: unexplained
    ev.add(2, "prober", "alarm_fired", alarm="RootAliasDangling", endpoint=EP)
    ev.add(3, "prober", "alarm_fired", alarm="EndpointEmpty", endpoint=EP)
    ev.add(4, "prober", "alarm_fired", alarm="EnactorStuck", enactor="enactor-a", endpoints=[EP])
    ev.add(5, "prober", "alarm_fired", alarm="PlanLagHigh", endpoint=EP6)  # another endpoint, no cause there
    ev.add(6, "prober", "alarm_cleared", alarm="RootAliasDangling", endpoint=EP)
    events = ev.merged()
    result = analyse(events)
    assert [(a.kind, a.is_cause) for a in result.anomalies] == [("root_dangling", True)]
    roles = [(result.marks[i].role, result.marks[i].anomaly) for i in range(len(events))]
    assert roles == [("effect", None), ("cause", "A1"), ("effect", "A1"), ("effect", "A1"), ("effect", None), ("recovered", "A1")]
    assert "cause not in these logs" in result.marks[0].describe()
    assert result.effects_of("A1") == [2, 3]


def test_stale_plan_alarm_stands_in_for_a_missing_enactor_log():
    ev = Events().add(1, "prober", "alarm_fired", alarm="StalePlanApplied", endpoint=EP)
    assert [a.kind for a in analyse(ev.merged()).anomalies] == ["stale_flip"]
    ev = Events()
    _flip(ev, 1, "enactor-a", 145)
    _flip(ev, 2, "enactor-c", 110)
    ev.add(3, "prober", "alarm_fired", alarm="StalePlanApplied", endpoint=EP)
    result = analyse(ev.merged())
    assert len(result.anomalies) == 1 and result.marks[2].role == "effect"


def test_first_failed_flip_then_repeats_are_effects():
    ev = Events()
    for i in range(4):
        ev.add(1 + i, "enactor-a", "flip_failed", endpoint=EP, plan_version=146, cause="other", error_code="InvalidChangeBatch", messages=["alias target t-c110 does not exist"])
    ev.add(9, "enactor-b", "flip_failed", endpoint=EP6, plan_version=146, error="boom")
    events = ev.merged()
    result = analyse(events)
    assert [(a.kind, a.endpoint, a.is_cause) for a in result.anomalies] == [("flip_failed", EP, True), ("flip_failed", EP6, True)]
    assert "InvalidChangeBatch: alias target t-c110 does not exist" in result.anomalies[0].summary
    assert [result.marks[i].role for i in range(1, 4)] == ["effect"] * 3


def test_the_whole_chain_of_the_race():
    ev = Events()
    _flip(ev, 1, "enactor-a", 145)
    _flip(ev, 2, "enactor-c", 110)
    ev.add(3, "enactor-a", "cleanup_deleted", endpoint=EP, trees=["t-c110"])
    ev.add(4, "prober", "probe", endpoint=EP, answers=0)
    ev.add(5, "prober", "alarm_fired", alarm="RootAliasDangling", endpoint=EP)
    ev.add(6, "enactor-a", "flip_failed", endpoint=EP, plan_version=146)
    ev.add(7, "enactor-a", "flip_failed", endpoint=EP, plan_version=146)
    result = analyse(ev.merged())
    assert [a.kind for a in result.anomalies] == ["stale_flip", "active_tree_deleted", "root_dangling", "flip_failed"]
    assert [a.caused_by for a in result.anomalies] == [None, "A1", "A1", "A1"]
    assert [a.id for a in result.causes] == ["A1"]
    assert result.effects_of("A1") == [3, 6]
    assert result.marks[4].describe() == "root left dangling, follows A1"


def test_guard_and_no_false_alarm_in_a_healthy_run():
    ev = Events()
    _flip(ev, 1, "enactor-a", 145)
    ev.add(2, "enactor-c", "refused_stale", endpoint=EP, plan_version=110, applied_version=145)
    ev.add(3, "enactor-a", "cleanup_aborted", endpoint=EP, cause="applied")
    ev.add(4, "enactor-a", "cleanup_aborted", endpoint=EP, cause="lock")
    ev.add(5, "prober", "probe", endpoint=EP, answers=3)
    ev.add(6, "enactor-c", "flip_failed", endpoint=EP, plan_version=111, cause="applied", error_code="InvalidChangeBatch")
    result = analyse(ev.merged())
    assert result.anomalies == ()
    assert {i: m.role for i, m in result.marks.items()} == {1: "guard", 2: "guard", 5: "guard"}


def test_the_first_good_flip_after_the_damage_is_the_recovery():
    ev = Events()
    _flip(ev, 1, "enactor-a", 145)
    _flip(ev, 2, "enactor-c", 110)
    ev.add(3, "enactor-a", "flip_failed", endpoint=EP, plan_version=146)
    _flip(ev, 4, "enactor-b", 147, healed=True)
    _flip(ev, 5, "enactor-b", 148)
    result = analyse(ev.merged())
    assert result.marks[3].role == "recovered" and result.marks[3].anomaly == "A1"
    assert 4 not in result.marks
