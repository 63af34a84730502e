"""An endpoint never wedges: refusals, superseded plans, the zone quota, served state per type.

Driven in memory against the real change engine (tests/enactor/world.py); the same cases run
against the emulator process in tests/enactor/test_wedge_processes.py.
"""

from __future__ import annotations

from dataclasses import replace

from enactor import layout
from enactor import protocol as p
from services.plan.model import EndpointPlan, Target
from services.route53.engine import Limits, apply_batch
from services.route53.records import Change, RecordSet
from tests.enactor.world import World, answers, endpoint_plan, events, make_plan

EP = "dynamodb.us-east-1.api.aws."


def world(*enactors: str, limits: Limits | None = None, **kw) -> World:
    w = World((EP,)) if limits is None else World((EP,), limits=limits)
    for e in enactors:
        w.add_enactor(p.CoreSettings(e, **({"limits": limits} if limits else {}), **kw))
    return w


def with_target(ep: EndpointPlan, target: Target) -> EndpointPlan:
    return replace(ep, targets=(*ep.targets, target)) if hasattr(ep, "__dataclass_fields__") else ep.model_copy(update={"targets": (*ep.targets, target)})


def settle(w: World, who: str = "enactor-a") -> None:
    w.run_idle(who, EP, limit=2000)


def test_a_plan_route53_refuses_is_marked_refused_cleaned_up_and_a_newer_plan_is_served():
    w = world("enactor-a")
    w.publish(make_plan(1, [endpoint_plan(EP, 150)]))
    settle(w)
    bad = Target(lb_id="lb-dup", az="use1-az1", ipv4=("192.0.2.7", "192.0.2.7"), weight=10)
    w.publish(make_plan(2, [with_target(endpoint_plan(EP, 150), bad)]))
    settle(w)
    m = w.machines[("enactor-a", EP)]
    refused = [n for n in m.notes if n.event == "plan_refused_by_route53"]
    assert len(refused) == 1 and refused[0].get("reason") == "duplicate_address" and refused[0].get("plan_version") == 2
    view = w.view(EP)
    assert view.active_version == 1 and not view.dangling
    assert all(t.complete for t in view.trees), "the half-built tree was cleaned up"
    assert {r.name for r in view.leaves} == set().union(*(t.leaves for t in view.trees))
    # Plan 2 is never retried; plan 3 (the bad LB removed) is served.
    for _ in range(5):
        w.step("enactor-a", EP)
    assert events(m).count("plan_refused_by_route53") == 1
    w.publish(make_plan(3, [endpoint_plan(EP, 150, weight=lambda i: 20)]))
    settle(w)
    assert w.view(EP).active_version == 3 and len(answers(w, EP)) == 150


def test_a_long_lb_id_no_longer_makes_a_label_route53_refuses():
    w = world("enactor-a")
    long_id = "lb-" + "x" * 61
    w.publish(make_plan(1, [with_target(endpoint_plan(EP, 3), Target(lb_id=long_id, az="use1-az1", ipv4=("192.0.2.9",), weight=5))]))
    settle(w)
    view = w.view(EP)
    assert view.active_version == 1 and long_id in {m.lb_id for m in view.active_tree.meta.members}


def test_a_superseded_plan_is_abandoned_after_a_rejection():
    w = world("enactor-a", "enactor-b")
    w.publish(make_plan(1, [endpoint_plan(EP, 2)]))
    for who in ("enactor-a", "enactor-b"):
        w.run_until(who, EP, lambda m: isinstance(m.request, p.SubmitBatch))
    w.step("enactor-a", EP)  # a takes the lock
    assert [n.event for n in w.step("enactor-b", EP)] == ["lock_lost", "backoff"]
    w.publish(make_plan(2, [endpoint_plan(EP, 2, weight=lambda i: 50)]))
    w.step("enactor-b", EP)  # wakes
    notes = w.step("enactor-b", EP)  # reads the newest plan before listing again
    assert "plan_superseded" in [n.event for n in notes]
    assert w.machines[("enactor-b", EP)].state.plan.version == 2


def test_dropping_a_type_removes_its_root_and_rollback_so_it_answers_nothing():
    w = world("enactor-a")
    w.publish(make_plan(1, [endpoint_plan(EP, 4, types=("A", "AAAA"))]))
    settle(w)
    w.publish(make_plan(2, [endpoint_plan(EP, 4, types=("A", "AAAA"), weight=lambda i: 30)]))
    settle(w)
    assert {r.type for r in w.view(EP).rollbacks} == {"A", "AAAA"}
    w.publish(make_plan(3, [endpoint_plan(EP, 4, types=("A",))]))
    settle(w)
    view = w.view(EP)
    assert [r.type for r in view.roots] == ["A"] and [r.type for r in view.rollbacks] == ["A"]
    assert answers(w, EP, "AAAA") == set() and len(answers(w, EP, "A")) == 4
    assert view.active_version == 3


def test_heal_takes_rollback_types_from_the_trees_records():
    w = world("enactor-a")
    w.publish(make_plan(1, [endpoint_plan(EP, 3, types=("A",))]))
    settle(w)
    w.publish(make_plan(2, [endpoint_plan(EP, 3, types=("A",), weight=lambda i: 40)]))
    settle(w)
    view = w.view(EP)
    active = view.active_tree
    # The metadata loses its `types=` (an older writer) and the active tree's top is deleted: the root dangles.
    meta = next(r for r in active.records if r.name == layout.meta_name(EP, active.tree_id))
    stripped = RecordSet(meta.name, "TXT", ttl=meta.ttl, values=tuple(v for v in meta.values if "types=" not in v))
    older = next(t for t in view.trees if t.tree_id != active.tree_id)
    older_meta = next(r for r in older.records if r.name == layout.meta_name(EP, older.tree_id))
    older_stripped = RecordSet(older_meta.name, "TXT", ttl=older_meta.ttl, values=tuple(v for v in older_meta.values if "types=" not in v))
    top = [r for r in active.records if r.name == layout.tree_name(EP, active.tree_id)]
    w.zones[EP] = apply_batch(w.zones[EP], [Change("DELETE", older_meta), Change("CREATE", older_stripped),
                                            Change("DELETE", meta), Change("CREATE", stripped), *(Change("DELETE", r) for r in top)])
    assert w.view(EP).dangling
    w.publish(make_plan(3, [endpoint_plan(EP, 3, types=("A",), weight=lambda i: 60)]))
    settle(w)
    view = w.view(EP)
    assert not view.dangling and view.active_version == 3 and [r.type for r in view.rollbacks] == ["A"]
    assert "flip_failed" not in events(w.machines[("enactor-a", EP)])


def test_done_version_is_not_latched_by_a_too_high_applied_record():
    w = world("enactor-a")
    w.publish(make_plan(1, [endpoint_plan(EP, 2)]))
    settle(w)
    applied = w.view(EP).applied
    high = RecordSet(applied.name, "TXT", ttl=applied.ttl, values=(layout.AppliedValue(99, "t-gone").render(),))
    w.zones[EP] = apply_batch(w.zones[EP], [Change("DELETE", applied), Change("CREATE", high)])
    w.publish(make_plan(2, [endpoint_plan(EP, 2, weight=lambda i: 70)]))
    settle(w)
    assert "refused_stale" in events(w.machines[("enactor-a", EP)])
    # The operator puts `_applied` back; the next plan is applied without a restart.
    w.zones[EP] = apply_batch(w.zones[EP], [Change("DELETE", high), Change("CREATE", applied)])
    w.publish(make_plan(3, [endpoint_plan(EP, 2, weight=lambda i: 80)]))
    settle(w)
    assert w.view(EP).active_version == 3


def test_the_zone_quota_trims_older_trees_first_and_refuses_what_cannot_fit():
    limits = Limits(max_record_sets_per_zone=600)
    w = world("enactor-a", limits=limits, keep_plans=5)
    for v in range(1, 9):
        # Each plan changes 10 LBs' weights: about 60 new records per plan, so 6 retained trees cannot fit.
        w.publish(make_plan(v, [endpoint_plan(EP, 400, weight=lambda i, v=v: 100 + v if v * 10 <= i < v * 10 + 10 else 10 + i % 7)]))
        settle(w)
        view = w.view(EP)
        assert view.active_version == v and view.record_count <= 600
        assert view.tree(view.rollback_targets().get("A")) is not None or v == 1
    m = w.machines[("enactor-a", EP)]
    assert "plan_too_large" not in events(m)
    assert len(w.view(EP).trees) < 6, "trees were trimmed below keep_plans to fit the quota"
    # 700 LBs cannot fit 600 records at all: refused, the last good tree keeps serving.
    w.publish(make_plan(9, [endpoint_plan(EP, 700)]))
    settle(w)
    assert events(m).count("plan_too_large") == 1 and w.view(EP).active_version == 8
    assert all(ok for _, _, ok in w.submitted), "nothing was sent that Route 53 refused"


def test_the_quota_check_counts_the_flips_new_rollbacks_not_only_the_tree():
    """The rollback records the first flip over a live tree creates count against the quota too:
    a zone with room for plan 2's tree but not for its rollbacks refuses plan 2 itself
    (plan_too_large) instead of building it and having Route 53 refuse the flip (found by
    `dnsctl check --zone-quota`; the mutant quota_counts_tree_only plants it back)."""
    plans = [make_plan(1, [endpoint_plan(EP, 20)]), make_plan(2, [endpoint_plan(EP, 20, weight=lambda i: 30 + i)])]
    free = world("enactor-a")
    counts = []
    for plan in plans:
        free.publish(plan)
        settle(free)
        counts.append(free.view(EP).record_count)
    assert free.view(EP).active_version == 2 and free.view(EP).rollbacks
    quota = counts[1] - 1  # plan 2's tree fits, its flip's rollback does not
    w = world("enactor-a", limits=Limits(max_record_sets_per_zone=quota))
    for plan in plans:
        w.publish(plan)
        settle(w)
    m = w.machines[("enactor-a", EP)]
    assert events(m).count("plan_too_large") == 1 and w.view(EP).active_version == 1 and not w.view(EP).dangling
    assert all(ok for _, _, ok in w.submitted), "nothing was sent that Route 53 refused"
    assert w.view(EP).record_count <= quota


def idle_for(w: World, seconds: float, who: str = "enactor-a") -> None:
    """Let the machine poll for `seconds` of clock (one poll interval per step while idle)."""
    end = w.now + seconds
    for _ in range(2000):
        if w.now >= end and isinstance(w.machines[(who, EP)].request, p.Sleep):
            return
        req = w.machines[(who, EP)].request
        if isinstance(req, p.Sleep):
            w.now += req.max_seconds
        w.step(who, EP)


def test_the_light_check_rebuilds_a_wiped_zone_and_heals_a_root_deleted_by_hand_with_the_planner_quiet():
    w = world("enactor-a")
    w.publish(make_plan(1, [endpoint_plan(EP, 120, types=("A", "AAAA"))]))
    settle(w)
    idle_for(w, 3)
    m = w.machines[("enactor-a", EP)]
    listings = sum(1 for e in events(m) if e == "plan_seen")
    # Healthy: the check reads root and trees with targeted reads, and lists nothing.
    idle_for(w, 20)
    assert sum(1 for e in events(m) if e == "plan_seen") == listings and "zone_damaged" not in events(m)
    # The emulator is wiped (SOA and NS only): rebuilt from the newest plan, no new plan needed.
    apex = [r for r in w.zones[EP].zone if r.name == EP and r.type in ("SOA", "NS")]
    w.zones[EP] = apply_batch(w.zones[EP], [Change("DELETE", r) for r in w.zones[EP].zone if r not in apex])
    assert answers(w, EP, "A") == set()
    idle_for(w, 12)
    assert "zone_damaged" in events(m)
    assert w.view(EP).active_version == 1 and len(answers(w, EP, "A")) == 120 and len(answers(w, EP, "AAAA")) == 120
    # Someone deletes the root's AAAA record by hand: healed within seconds.
    aaaa = next(r for r in w.view(EP).roots if r.type == "AAAA")
    w.zones[EP] = apply_batch(w.zones[EP], [Change("DELETE", aaaa)])
    idle_for(w, 12)
    assert len(answers(w, EP, "AAAA")) == 120 and not w.view(EP).dangling
    # The active tree's top is deleted (a dangling root): healed, still with the planner quiet.
    active = w.view(EP).active_tree
    w.zones[EP] = apply_batch(w.zones[EP], [Change("DELETE", r) for r in active.records if r.name == layout.tree_name(EP, active.tree_id)])
    assert w.view(EP).dangling
    idle_for(w, 12)
    view = w.view(EP)
    assert not view.dangling and view.active_version == 1 and len(answers(w, EP, "A")) == 120
