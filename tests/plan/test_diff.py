"""The plan diff (services/plan/diff.py): pure, so tested with hypothesis over generated plans."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.plan.diff import plan_diff
from services.plan.model import EndpointPlan, Plan, Target

ENDPOINTS = ("a.example.com", "b.example.com", "c.example.com")
LB_IDS = tuple(f"lb-{k}" for k in range(6))


@st.composite
def targets(draw, lb_id: str) -> Target:
    k = draw(st.integers(0, 3))
    return Target(
        lb_id=lb_id,
        az=draw(st.sampled_from(("az1", "az2"))),
        ipv4=(f"10.0.{k}.1",),
        ipv6=(f"2001:db8::{k + 1}",),
        weight=draw(st.integers(0, 255)),
        capacity=draw(st.integers(0, 5000)),
    )


@st.composite
def endpoint_plans(draw, name: str) -> EndpointPlan:
    ids = draw(st.lists(st.sampled_from(LB_IDS), unique=True, max_size=len(LB_IDS)))
    types = draw(st.sampled_from((("A",), ("AAAA",), ("A", "AAAA"))))
    return EndpointPlan(
        name=name, hosted_zone=name, record_types=types, targets=tuple(draw(targets(i)) for i in sorted(ids))
    )


@st.composite
def plans(draw, version: int) -> Plan:
    names = draw(st.lists(st.sampled_from(ENDPOINTS), unique=True, min_size=1))
    return Plan.build(
        region="us-east-1", version=version, endpoints=[draw(endpoint_plans(n)) for n in sorted(names)]
    )


def _targets(plan: Plan | None, endpoint: str) -> dict[str, Target]:
    ep = plan.endpoint(endpoint) if plan else None
    return {t.lb_id: t for t in ep.targets} if ep else {}


@given(old=plans(1), new=plans(2))
def test_the_diff_names_exactly_what_changed_per_endpoint(old: Plan, new: Plan) -> None:
    diff = plan_diff(old, new)
    by_name = {e.name: e for e in diff.endpoints}
    for name in ENDPOINTS:
        before, after = _targets(old, name), _targets(new, name)
        in_old, in_new = old.endpoint(name) is not None, new.endpoint(name) is not None
        e = by_name.get(name)
        if not in_old and not in_new:
            assert e is None
            continue
        if in_old != in_new:
            assert e is not None and e.status == ("added" if in_new else "removed")
            assert set(e.added or e.removed) == set(after or before)
            continue
        reweighted = {i for i in before.keys() & after.keys() if before[i].weight != after[i].weight}
        moved = {
            i for i in before.keys() & after.keys()
            if (before[i].ipv4, before[i].ipv6) != (after[i].ipv4, after[i].ipv6)
        }
        types_changed = old.endpoint(name).record_types != new.endpoint(name).record_types
        changed = bool(after.keys() - before.keys() or before.keys() - after.keys() or reweighted or moved
                       or types_changed)
        assert (e is not None) == changed, "an endpoint is listed exactly when something about it changed"
        if e is None:
            continue
        assert set(e.added) == after.keys() - before.keys()
        assert set(e.removed) == before.keys() - after.keys()
        assert {r.lb_id for r in e.reweighted} == reweighted
        assert all((r.old, r.new) == (before[r.lb_id].weight, after[r.lb_id].weight) for r in e.reweighted)
        assert {r.lb_id for r in e.readdressed} == moved
        assert (e.record_types is not None) == types_changed


@given(plan=plans(3))
def test_a_plan_against_itself_is_empty_and_against_nothing_is_all_added(plan: Plan) -> None:
    same = plan_diff(plan, plan)
    assert same.empty and same.lines() == ["plan 3 -> 3: no change to DNS"]
    fresh = plan_diff(None, plan)
    assert fresh.old_version is None and all(e.status == "added" for e in fresh.endpoints)
    assert {e.name for e in fresh.endpoints} == {e.name for e in plan.endpoints}


@given(old=plans(1), new=plans(2))
def test_the_words_mention_every_changed_lb(old: Plan, new: Plan) -> None:
    diff = plan_diff(old, new)
    text = "\n".join(diff.lines())
    for e in diff.endpoints:
        assert e.name in text
        for lb in (*e.added, *e.removed, *(r.lb_id for r in e.reweighted)):
            assert lb in text
    assert diff.as_dict()["empty"] == diff.empty
