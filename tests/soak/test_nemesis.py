"""The soak's schedule is a pure function of its seed: same seed, same faults; kinds switch off cleanly."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lab.soak import nemesis
from lab.soak.nemesis import DURATION_S, FAULT_KINDS, GAP_S, START_S, UnknownFaultKind, parse_kinds, schedule

LBS = (("lb-a", 1000), ("lb-b", 4000), ("lb-c", 250))
seeds = st.integers(min_value=0, max_value=2**31)
kind_sets = st.sets(st.sampled_from(FAULT_KINDS), min_size=1).map(lambda s: tuple(k for k in FAULT_KINDS if k in s))
durations = st.floats(min_value=0, max_value=3600)


@given(seeds, durations, kind_sets)
def test_the_same_seed_gives_the_same_schedule(seed, duration, kinds):
    assert schedule(seed, duration, kinds, LBS, "az4") == schedule(seed, duration, kinds, LBS, "az4")


@given(seeds, durations, kind_sets)
def test_faults_come_one_after_another_within_the_soak(seed, duration, kinds):
    faults = schedule(seed, duration, kinds).faults
    t = START_S
    for f in faults:
        assert f.kind in kinds
        assert f.at_s >= t + GAP_S[0] - 0.01  # after the previous fault's heal and a gap
        lo, hi = DURATION_S[f.kind]
        assert lo - 0.01 <= f.duration_s <= hi + 0.01
        assert f.ends_s <= duration
        if f.kind.startswith("enactor-"):
            assert f.target in nemesis.ENACTOR_TARGETS
        t = f.ends_s


@settings(max_examples=50)
@given(seeds, kind_sets)
def test_a_soak_long_enough_for_one_round_sees_every_enabled_kind(seed, kinds):
    slot = GAP_S[1] + max(DURATION_S[k][1] for k in kinds)
    faults = schedule(seed, START_S + slot * len(kinds), kinds).faults
    assert {f.kind for f in faults} == set(kinds)


@given(seeds, st.floats(min_value=60, max_value=3600), kind_sets)
def test_switching_kinds_off_never_changes_the_operators_changes(seed, duration, kinds):
    assert schedule(seed, duration, kinds, LBS, "az4").changes == schedule(seed, duration, FAULT_KINDS, LBS, "az4").changes


@given(seeds, durations)
def test_operator_changes_drain_and_undrain_in_turn_and_stay_near_the_starting_capacity(seed, duration):
    changes = schedule(seed, duration, FAULT_KINDS, LBS, "az4").changes
    start = dict(LBS)
    drains = [c.action for c in changes if c.action != "capacity"]
    assert drains == ["drain", "undrain"] * (len(drains) // 2) + (["drain"] if len(drains) % 2 else [])
    assert [c.at_s for c in changes] == sorted(c.at_s for c in changes)
    for c in changes:
        assert c.at_s <= duration
        if c.action == "capacity":
            lo, hi = nemesis.CAPACITY_FACTOR
            assert start[c.lb_id] * lo - 1 <= c.capacity <= start[c.lb_id] * hi + 1


def test_different_seeds_give_different_schedules():
    assert schedule(1, 1800).faults != schedule(2, 1800).faults


def test_kinds_are_parsed_in_one_order_and_unknown_ones_refused():
    assert parse_kinds(None) == FAULT_KINDS == parse_kinds("all")
    assert parse_kinds("plan-burst,enactor-kill") == ("enactor-kill", "plan-burst")
    with pytest.raises(UnknownFaultKind, match="enactor-explode"):
        parse_kinds("enactor-kill,enactor-explode")
