"""The alarm book and the rules, on observations made by hand (both are pure)."""

from __future__ import annotations

import random

from services.dns.explain import endpoint_views
from services.dns.snapshot import Snapshot
from services.prober import alarms
from services.prober.alarms import AlarmBook, Condition
from services.prober.rules import ProbeResult, Rules, RuleSettings
from services.prober.sources import parse_enactor_status, parse_planner_status
from services.route53.records import AliasTarget, RecordSet, Zone
from tests.dns.trees import a_fleet, tree_records

EP = "dynamodb.us-east-1.api.aws"
ZID = "Z1"


def zone_with(active: str | None, trees: dict[str, int], applied: str | None = None) -> Snapshot:
    records = [RecordSet(EP, "SOA", ttl=900, values=("ns. host. 1 2 3 4 60",))]
    for tree_id, version in trees.items():
        leaves, tree, meta = tree_records(EP, ZID, tree_id, version, a_fleet(2), ("A",))
        records += leaves + tree + [meta]
    if active:
        records.append(RecordSet(EP, "A", alias=AliasTarget(f"{active}.{EP}", ZID)))
    if applied:
        records.append(RecordSet(f"_applied.{EP}", "TXT", ttl=60, values=(f'"{applied}"',)))
    return Snapshot.of([Zone.of(EP, records, zone_id=ZID)])


def test_book_fires_once_clears_once_and_keeps_unobserved_subjects() -> None:
    book = AlarmBook()
    c = Condition("x")
    fired = [t for now in range(5) for t in book.observe(alarms.ENDPOINT_EMPTY, {"a": c}, now)]
    assert [t.kind for t in fired] == ["fired"]
    # A changed detail is the same alarm: no transition.
    assert book.observe(alarms.ENDPOINT_EMPTY, {"a": Condition("y")}, 5) == []
    # Not in the evaluated universe: kept.
    assert book.observe(alarms.ENDPOINT_EMPTY, {}, 6, universe={"b"}) == []
    cleared = book.observe(alarms.ENDPOINT_EMPTY, {}, 7)
    assert [(t.kind, t.alarm.subject, t.alarm.since) for t in cleared] == [("cleared", "a", 0)]
    assert book.observe(alarms.ENDPOINT_EMPTY, {}, 8) == []


def test_active_alarms_are_ranked_cause_first_and_effects_name_their_cause() -> None:
    book = AlarmBook()
    book.observe(alarms.PLAN_LAG_HIGH, {EP: Condition("lag")}, 1)
    book.observe(alarms.ENDPOINT_EMPTY, {EP: Condition("empty")}, 2)
    book.observe(alarms.ENACTOR_STUCK, {"enactor-b": Condition("stuck", endpoints=(EP,))}, 3)
    book.observe(alarms.ROOT_ALIAS_DANGLING, {EP: Condition("dangling")}, 4)
    book.observe(alarms.ENDPOINT_EMPTY, {"other.example": Condition("empty")}, 5, universe={"other.example"})
    ranked = book.active()
    assert [a.alarm for a in ranked] == [
        "RootAliasDangling", "EnactorStuck", "EndpointEmpty", "EndpointEmpty", "PlanLagHigh",
    ]
    assert ranked[0].caused_by is None
    assert ranked[1].caused_by == f"RootAliasDangling:{EP}"
    assert ranked[2].caused_by == f"RootAliasDangling:{EP}" and ranked[3].caused_by is None
    assert ranked[4].caused_by == f"RootAliasDangling:{EP}"
    assert ranked[1].to_json()["enactor"] == "enactor-b"


def test_dangling_names_the_missing_tree() -> None:
    rules = Rules()
    views = endpoint_views(zone_with("t-gone", {"t-live": 3}))
    (cond,) = rules.dangling(views).values()
    assert "t-gone" in cond.detail and dict(cond.facts)["missing_tree"] == "t-gone"
    assert rules.dangling(endpoint_views(zone_with("t-live", {"t-live": 3}))) == {}


def test_stale_plan_fires_when_the_version_goes_down_unless_restored_or_acknowledged() -> None:
    rules = Rules()
    trees = {"t-old": 110, "t-new": 145}
    assert rules.stale(endpoint_views(zone_with("t-new", trees))) == {}
    stale = rules.stale(endpoint_views(zone_with("t-old", trees)))
    assert "145 to 110" in stale[EP].detail
    assert rules.stale(endpoint_views(zone_with("t-new", trees))) == {}  # back up: clears
    restored = zone_with("t-old", trees, applied="version=110 tree=t-old restore=ops@host")
    assert rules.stale(endpoint_views(restored)) == {}
    rules2 = Rules()
    rules2.stale(endpoint_views(zone_with("t-new", trees)))
    assert rules2.stale(endpoint_views(zone_with("t-old", trees)))
    rules2.acknowledge_restore(EP)
    assert rules2.stale(endpoint_views(zone_with("t-old", trees))) == {}


def test_endpoint_empty_is_debounced_and_ignores_timeouts() -> None:
    rules = Rules(RuleSettings(empty_after=2, clear_after=3))
    types = {EP: ("A",)}

    def probe(addresses: int, rcode: str | None = "NOERROR") -> dict:
        return rules.empty([ProbeResult(EP, "A", rcode, addresses, 0.001)], types)[0]

    assert probe(0) == {}
    assert probe(0, rcode=None) == {}  # a timeout neither breaks nor extends the run
    assert EP in probe(0)
    assert EP in probe(2) and EP in probe(2)
    assert probe(2) == {}


def test_enactor_stuck_from_status_shapes() -> None:
    rules = Rules(RuleSettings(stuck_after=3))
    as_dict = parse_enactor_status(
        {"enactor": "enactor-b", "state": "backing_off",
         "endpoints": {EP: {"applied_version": 110, "consecutive_flip_failures": 4, "plan_version": 146,
                            "lock": {"holder": "enactor-b", "expires": 5}, "last_error": "InvalidChangeBatch"}}},
        "http://b",
    )
    as_list = parse_enactor_status({"id": "enactor-c", "state": "stuck", "endpoints": [{"name": EP}]}, "http://c")
    healthy = parse_enactor_status({"enactor": "enactor-a", "state": "idle", "endpoints": {EP: {"flip_failures": 1}}}, "http://a")
    garbage = parse_enactor_status(["not", "an", "object"], "http://d")
    conds, seen = rules.stuck([as_dict, as_list, healthy, garbage])
    assert set(conds) == {"enactor-b", "enactor-c"} and seen == {"enactor-a", "enactor-b", "enactor-c"}
    assert "146" in conds["enactor-b"].detail and "4 times" in conds["enactor-b"].detail
    assert conds["enactor-b"].endpoints == (EP,)
    assert as_dict.endpoints[0].lock_holder == "enactor-b" and as_dict.endpoints[0].lock_expires == 5


def test_plan_lag_by_versions_or_by_time_and_not_without_the_planner() -> None:
    rules = Rules(RuleSettings(lag_versions=5, lag_seconds=30))
    views = endpoint_views(zone_with("t-a", {"t-a": 100}))
    assert rules.lag(None, views, [], 0) is None
    assert rules.lag(parse_planner_status("nope", "u"), views, [], 0) is None
    conds, seen = rules.lag(parse_planner_status({"newest_version": 101}, "u"), views, [], 0)
    assert conds == {} and seen == {EP}
    assert rules.lag(parse_planner_status({"newest_version": 101}, "u"), views, [], 31)[0]  # behind for 31 s
    assert rules.lag(parse_planner_status({"newest_version": 100}, "u"), views, [], 32)[0] == {}
    conds, _ = rules.lag(parse_planner_status({"newest_version": 105}, "u"), views, [], 33)
    assert "5 behind" in conds[EP].detail
    # An enactor that reports a newer applied version than Route 53 shows counts.
    enactor = parse_enactor_status({"enactor": "a", "endpoints": {EP: {"applied_version": 104}}}, "http://a")
    assert rules.lag(parse_planner_status({"newest_version": 105}, "u"), views, [enactor], 34)[0] == {}


def test_plan_store_behind_names_both_versions_after_two_rounds_and_clears() -> None:
    rules = Rules()
    views = endpoint_views(zone_with("t-a", {"t-a": 250}, applied="version=250 tree=t-a"))
    assert rules.store_behind(None, views, []) is None
    assert rules.store_behind(parse_planner_status("nope", "u"), views, []) is None
    behind = parse_planner_status({"newest_version": 5}, "u")
    conds, seen = rules.store_behind(behind, views, [])
    assert conds == {} and seen == {EP}, "one round may be a plan applied between the two reads"
    conds, _ = rules.store_behind(behind, views, [])
    assert dict(conds[EP].facts) == {"store_version": 5, "applied_version": 250}
    assert "5" in conds[EP].detail and "250" in conds[EP].detail
    assert rules.store_behind(parse_planner_status({"newest_version": 251}, "u"), views, [])[0] == {}
    # No plan at all in the store while Route 53 serves one is behind too.
    empty = parse_planner_status({"newest_version": None}, "u")
    rules.store_behind(empty, views, [])
    assert rules.store_behind(empty, views, [])[0][EP]
    # A planner that cannot read its store (S3 down) has no newest version: not judged, so the
    # alarm keeps its state instead of firing on every outage (found by the soak).
    outage = parse_planner_status({"newest_version": None, "store": {"ok": False, "detail": "S3 down"}}, "u")
    fresh = Rules()
    assert fresh.store_behind(outage, views, []) is None and fresh.store_behind(outage, views, []) is None


def test_book_random_walk_logs_exactly_one_transition_per_change() -> None:
    rng = random.Random(5)
    book = AlarmBook()
    state = False
    changes = 0
    transitions = 0
    for now in range(2000):
        want = rng.random() < (0.9 if state else 0.1)
        changes += want != state
        state = want
        transitions += len(book.observe(alarms.ENDPOINT_EMPTY, {EP: Condition("e")} if want else {}, now))
    assert transitions == changes


def test_refused_and_servfail_fire_endpoint_answer_error_and_good_answers_clear_it() -> None:
    rules = Rules(RuleSettings(empty_after=2, clear_after=3))
    refused = [ProbeResult(EP, "A", "REFUSED", 0, 0.001)]
    good = [ProbeResult(EP, "A", "NOERROR", 2, 0.001)]
    assert rules.answer_errors(refused)[0] == {}
    conditions, evaluated = rules.answer_errors(refused)
    assert list(conditions) == [EP] and "A REFUSED" in conditions[EP].detail and evaluated == {EP}
    assert EP in rules.answer_errors([ProbeResult(EP, "A", "SERVFAIL", 0, 0.001)])[0]
    # Timeouts say nothing either way (that is ProberBlind's business).
    assert EP in rules.answer_errors([ProbeResult(EP, "A", None, 0, 0.5)])[0]
    for _ in range(2):
        assert EP in rules.answer_errors(good)[0]
    assert rules.answer_errors(good)[0] == {}


def test_prober_blind_fires_after_its_grace_for_each_reason_and_clears_when_probing() -> None:
    rules = Rules(RuleSettings(blind_after_s=5, route53_stale_s=15))
    ok = [ProbeResult(EP, "A", "NOERROR", 2, 0.001)]

    def blind(now, **kw):
        args = {"snapshot_age_s": 1.0, "endpoints": 1, "probes": ok, "dns": "127.0.0.1:53", **kw}
        return rules.blind(now, **args)

    assert blind(0.0, snapshot_age_s=None) == {}  # grace
    assert "not been read" in blind(6.0, snapshot_age_s=None)["prober"].detail
    assert blind(7.0) == {}  # probing again: clears, and the grace starts over
    assert blind(8.0, endpoints=0, probes=[]) == {}
    assert "no endpoint to probe" in blind(14.0, endpoints=0, probes=[])["prober"].detail
    assert blind(15.0) == {}
    silent = [ProbeResult(EP, "A", None, 0, 0.5)]
    blind(16.0, probes=silent)
    assert "answered none of 1 probes" in blind(22.0, probes=silent)["prober"].detail
    blind(23.0)
    blind(24.0, snapshot_age_s=30.0)
    assert "could not be read for 30s" in blind(30.0, snapshot_age_s=30.0)["prober"].detail


def test_prober_blind_ranks_first() -> None:
    book = AlarmBook()
    book.observe(alarms.ENDPOINT_EMPTY, {EP: Condition("empty")}, 1.0)
    book.observe(alarms.PROBER_BLIND, {"prober": Condition("cannot probe")}, 2.0)
    assert [a.alarm for a in book.active()] == ["ProberBlind", "EndpointEmpty"]
    assert book.active()[0].to_json()["prober"] == "prober"
