"""Fleet -> plan and the safety check: unit tests and hypothesis properties."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from planner.fleet import Fleet, demo_fleet, generate_fleet, validate_fleet
from planner.planning import (
    WEIGHT_MAX,
    build_plan,
    endpoint_plans,
    endpoint_weights,
    fleet_from_plan,
    safety_violations,
    serving_capacity,
)
from services.plan.model import Plan

DEMO = demo_fleet()


@st.composite
def fleets(draw) -> Fleet:
    """The demo fleet's shape with arbitrary capacities, LB states and drained AZs."""
    data = DEMO.model_dump(mode="json")
    for lb in data["load_balancers"]:
        lb["capacity"] = draw(st.integers(0, 100_000))
        lb["state"] = draw(st.sampled_from(["active", "active", "active", "draining", "retired"]))
    data["drained_azs"] = draw(st.lists(st.sampled_from(list(DEMO.azs)), unique=True, max_size=2))
    return validate_fleet(data)


drifts = st.dictionaries(
    st.sampled_from([b.id for b in DEMO.load_balancers]), st.floats(0.9, 1.1), max_size=16
)


@settings(max_examples=200, deadline=None)
@given(fleet=fleets(), drift=drifts)
def test_weights_follow_serving_state_and_stay_in_range(fleet, drift):
    for ep in fleet.endpoints:
        weights = endpoint_weights(fleet, ep.name, drift)
        lbs = {b.id: b for b in fleet.lbs_of(ep.name)}
        assert set(weights) == {i for i, b in lbs.items() if b.state != "retired"}
        for lb_id, w in weights.items():
            assert 0 <= w <= WEIGHT_MAX
            assert (w > 0) == fleet.serving(lbs[lb_id])
        if any(w > 0 for w in weights.values()):
            assert max(weights.values()) == WEIGHT_MAX


@settings(max_examples=200, deadline=None)
@given(fleet=fleets())
def test_without_drift_weights_are_monotone_in_capacity(fleet):
    for ep in fleet.endpoints:
        weights = endpoint_weights(fleet, ep.name)
        serving = sorted((b.capacity, weights[b.id]) for b in fleet.lbs_of(ep.name) if fleet.serving(b))
        for (_, w1), (_, w2) in zip(serving, serving[1:], strict=False):
            assert w1 <= w2


def test_weights_are_proportional_to_capacity():
    data = DEMO.model_dump(mode="json")
    fleet = validate_fleet(data)
    weights = endpoint_weights(fleet, "dynamodb.us-east-1.amazonaws.com")
    assert weights["ddb-az1-a"] == 255  # 8000, the biggest
    assert weights["ddb-az1-b"] == round(255 * 4000 / 8000)
    assert weights["ddb-az1-c"] == round(255 * 2000 / 8000)


@settings(max_examples=100, deadline=None)
@given(fleet=fleets(), version=st.integers(1, 10**9))
def test_built_plans_are_valid_and_round_trip(fleet, version):
    plan = build_plan(fleet, version, reason="r", lane="slow")
    assert Plan.from_json(plan.to_json()) == plan
    for ep in plan.endpoints:
        assert all(fleet.lb(t.lb_id).state != "retired" for t in ep.targets)


@settings(max_examples=100, deadline=None)
@given(fleet=fleets())
def test_a_restored_plan_gives_back_the_same_targets(fleet):
    plan = build_plan(fleet, 3, reason="", lane="slow")
    adopted = fleet_from_plan(plan, DEMO)
    assert endpoint_plans(adopted) == plan.endpoints


def test_demo_and_generated_fleets_produce_safe_valid_plans():
    for fleet in (DEMO, generate_fleet(1000, seed=1)):
        plan = build_plan(fleet, 1, reason="first", lane="slow")
        assert Plan.from_json(plan.to_json()) == plan
        assert safety_violations(None, plan) == []
        assert sum(len(e.targets) for e in plan.endpoints) == len(fleet.load_balancers)


def plan_of(fleet: Fleet, version: int = 2) -> Plan:
    return build_plan(fleet, version, reason="", lane="slow")


def test_no_address_of_weight_above_zero_is_refused():
    every_az_drained = DEMO.drain_az("use1-az1").drain_az("use1-az2").drain_az("use1-az4")
    rules = {(v.endpoint, v.rule) for v in safety_violations(None, plan_of(every_az_drained))}
    assert rules == {(e.name, "no_address") for e in DEMO.endpoints}


def test_capacity_drop_over_the_limit_is_refused_and_under_it_passes():
    before = plan_of(DEMO, 1)
    small_az = plan_of(DEMO.drain_az("use1-az4"))  # at most 20 % of any endpoint
    assert safety_violations(before, small_az) == []
    big_az = plan_of(DEMO.drain_az("use1-az1"))  # about 40 %
    violations = safety_violations(before, big_az)
    assert {v.rule for v in violations} == {"capacity_drop"}
    assert {v.endpoint for v in violations} == {e.name for e in DEMO.endpoints}
    assert "more than max_capacity_drop 30%" in violations[0].message
    assert safety_violations(before, big_az, max_capacity_drop=0.5) == []


@settings(max_examples=200, deadline=None)
@given(old=fleets(), new=fleets(), limit=st.floats(0.05, 1.0))
def test_capacity_rule_matches_its_definition(old, new, limit):
    before, after = plan_of(old, 1), plan_of(new)
    flagged = {v.endpoint for v in safety_violations(before, after, limit) if v.rule == "capacity_drop"}
    for ep in before.endpoints:
        b, a = serving_capacity(ep), serving_capacity(after.endpoint(ep.name))
        assert (ep.name in flagged) == (b > 0 and (b - a) / b > limit)


def test_an_endpoint_disappearing_is_refused():
    data = DEMO.model_dump(mode="json")
    data["endpoints"] = data["endpoints"][:2]
    kept = {e["name"] for e in data["endpoints"]}
    data["load_balancers"] = [lb for lb in data["load_balancers"] if lb["endpoint"] in kept]
    violations = safety_violations(plan_of(DEMO, 1), plan_of(validate_fleet(data)))
    assert [v.rule for v in violations] == ["endpoint_removed"]


def test_a_baseline_without_capacity_figures_skips_the_capacity_rule():
    old = plan_of(DEMO, 1)
    no_figures = Plan.build(
        region=old.region,
        version=1,
        endpoints=[
            e.model_copy(update={"targets": tuple(t.model_copy(update={"capacity": 0}) for t in e.targets)})
            for e in old.endpoints
        ],
    )
    assert safety_violations(no_figures, plan_of(DEMO.drain_az("use1-az1"))) == []
