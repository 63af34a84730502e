"""The verdict's rules, on evidence written by hand (pure: no processes)."""

from __future__ import annotations

from lab.race.control import Answer
from lab.race.evidence import Evidence
from lab.race.verdict import judge

EP = "dynamodb.us-east-1.amazonaws.com"


def evidence(**over) -> Evidence:
    base = dict(
        version_guard=False,
        dig_after_damage=[(EP, "A", Answer("NOERROR", 0, via="dig"))],
        dig_at_end=[(EP, "A", Answer("NOERROR", 0, via="dig"))],
        dangling_at_end=[EP],
        dangling_seen=[EP],
        alarms_fired=[{"alarm": "RootAliasDangling", "endpoint": EP}, {"alarm": "EnactorStuck", "enactor": "enactor-b"}],
        alarms_active=[],
        refused_stale=0,
        stale_flips=[],
        prober_empty_seconds=4.2, prober_empty_probes=7,
        witness_answers=100,
        witness_empty=30,
        final_version=16,
        final_versions={EP: None},
        flip_failures=12,
    )
    return Evidence(**{**base, **over})


def test_legacy_passes_only_with_every_sign_of_the_outage():
    v = judge(evidence())
    assert v.mode == "legacy" and v.broken and v.passed
    assert v.headline.startswith("BROKEN")
    for missing in (
        {"alarms_fired": [{"alarm": "RootAliasDangling", "endpoint": EP}]},  # no EnactorStuck
        {"alarms_fired": [{"alarm": "EnactorStuck", "enactor": "enactor-b"}]},  # no RootAliasDangling
        {"dangling_at_end": []},  # healed by itself: it did not stay broken
        {"dig_at_end": [(EP, "A", Answer("NOERROR", 2, via="dig"))]},
    ):
        assert not judge(evidence(**missing)).passed, missing
    clean = judge(evidence(dig_after_damage=[(EP, "A", Answer("NOERROR", 2))], dig_at_end=[(EP, "A", Answer("NOERROR", 2))],
                           dangling_seen=[], dangling_at_end=[], alarms_fired=[], prober_empty_seconds=0, prober_empty_probes=0, witness_empty=0))
    assert not clean.broken and not clean.passed


def test_a_timeout_or_servfail_is_not_an_empty_answer():
    assert not Answer(None, 0).empty and not Answer("SERVFAIL", 0).empty
    assert Answer("NOERROR", 0).empty and Answer("NXDOMAIN", 0).empty and not Answer("NOERROR", 1).empty


def test_guarded_passes_only_if_nothing_ever_answered_empty():
    ok = dict(
        version_guard=True, dig_after_damage=[(EP, "A", Answer("NOERROR", 2))], dig_at_end=[(EP, "A", Answer("NOERROR", 2))],
        dangling_at_end=[], dangling_seen=[], alarms_fired=[], refused_stale=3, prober_empty_seconds=0.0, prober_empty_probes=0,
        witness_empty=0, final_versions={EP: 16},
    )
    v = judge(evidence(**ok))
    assert v.mode == "guarded" and not v.broken and v.passed and v.headline.startswith("HELD")
    for bad in (
        {"refused_stale": 0},
        {"prober_empty_seconds": 0.2},  # one empty probe is one too many
        {"alarms_fired": [{"alarm": "EndpointEmpty", "endpoint": EP}]},
        {"witness_empty": 1},
        {"final_versions": {EP: 15}},
        {"final_versions": {EP: None}},
    ):
        assert not judge(evidence(**{**ok, **bad})).passed, bad
    # An attached stack's planner publishes on its schedule too: a newer plan than the race's last is served.
    assert judge(evidence(**{**ok, "final_versions": {EP: 19}})).passed
    assert judge(evidence(**{**ok, "prober_empty_seconds": 0.2})).broken
