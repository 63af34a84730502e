"""The checker's world model: plans from the planner, symmetry, lease ageing, and the exactness of
the reductions (waking at once, forgetting dead facts, rejecting doomed batches at once)."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enactor import layout
from enactor import protocol as p
from lab.checker.explore import explore, random_walks
from lab.checker.symmetry import Symmetry
from lab.checker.world import T0, Bounds, BoundsError, World, age_lease, rewrite_strings
from services.plan.model import Plan

SMALL = dict(enactors=2, plans=3, keep_plans=1, lost_replies=0)


def test_plans_are_the_planners_and_differ_from_version_to_version():
    world = World(Bounds(plans=4, endpoints=2, lbs=3))
    assert [plan.version for plan in world.plans] == [1, 2, 3, 4]
    for plan in world.plans:
        assert Plan.from_json(plan.to_json()) == plan  # a valid, checksummed plan
        assert [e.name + "." for e in plan.endpoints] == sorted(world.endpoints)
    weights = [tuple(t.weight for e in plan.endpoints for t in e.targets) for plan in world.plans]
    assert all(a != b for a, b in itertools.pairwise(weights))


def test_bounds_are_checked_with_a_clear_message():
    with pytest.raises(BoundsError, match="--enactors must be"):
        Bounds(enactors=0)
    with pytest.raises(BoundsError, match="--start must be one of clean, damaged"):
        Bounds(start="october")
    with pytest.raises(BoundsError, match="damaged start needs --plans >= 2"):
        Bounds(start="damaged", plans=1)


def test_the_damaged_start_is_octobers_end_state():
    world = World(Bounds(start="damaged"))
    state = world.initial
    view = world.view(state.zones[0], 0)
    assert view.dangling and view.active_version is None
    assert view.applied_value.version == 4 == state.published
    rollback = view.tree(view.rollback_targets()["A"])
    assert rollback is not None and rollback.complete and rollback.version == 3


def _walk_states(world: World, seed: int, steps: int):
    rng = random.Random(seed)
    state = world.initial
    out = [state]
    for _ in range(steps):
        labels = list(world.labels(state))
        state = world.apply(state, labels[rng.randrange(len(labels))])[0]
        out.append(state)
    return out


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), steps=st.integers(0, 60), guard=st.booleans())
def test_every_renaming_of_a_state_has_the_same_canonical_form(seed, steps, guard):
    world = World(Bounds(guard=guard))
    sym = Symmetry(world)
    state = _walk_states(world, seed, steps)[-1]
    canonical = sym.canonical(state)
    for i in range(len(sym.perms)):
        renamed = sym.rename(state, i)
        assert sym.canonical(renamed) == canonical
        # A renaming moves names, never facts: the zones read the same through the layout.
        for j, (a, b) in enumerate(zip(state.zones, renamed.zones, strict=True)):
            va, vb = world.view(a, j), world.view(b, j)
            assert (va.active_version, va.dangling, sorted(t.version or 0 for t in va.trees)) == (
                vb.active_version, vb.dangling, sorted(t.version or 0 for t in vb.trees))


def test_rewrite_strings_keeps_enums_and_unchanged_objects():
    state, _ = p.start("dynamodb.us-east-1.api.aws", "Z1")
    assert rewrite_strings(state, lambda s: s) is state
    renamed = rewrite_strings(state, lambda s: s.upper() if s.startswith("dynamodb") else s)
    assert renamed.phase is p.Phase.PLAN and renamed.endpoint == "DYNAMODB.US-EAST-1.API.AWS."


def test_ageing_a_lease_expires_held_locks_and_only_touches_expiries():
    held = layout.LockValue("enactor-a", T0 + 60, 7).render()
    released = layout.LockValue("enactor-b", T0, 8).render()
    aged = layout.LockValue.parse(age_lease(held))
    assert aged == layout.LockValue("enactor-a", T0, 7) and aged.expires <= T0
    assert age_lease(released) == released  # already expired: never before the model's clock
    meta = layout.AppliedValue(3, "t-ap3").render()
    assert age_lease(meta) == meta


def _zone_facts(world: World, states) -> set:
    """What the zones say, independent of names: per endpoint (root plan, dangling, trees' plans)."""
    out = set()
    for state in states:
        facts = []
        for j, zid in enumerate(state.zones):
            view = world.view(zid, j)
            facts.append((view.active_version, view.dangling, tuple(sorted((t.version or 0, t.complete) for t in view.trees)),
                          view.applied_version()))
        out.add(tuple(facts))
    return out


@pytest.mark.parametrize("guard", [True, False])
def test_the_reductions_change_no_verdict_and_no_reachable_zone(guard):
    runs = {}
    extra: dict = {}
    for reduce, symmetry, por, subsume in (
        (True, True, True, True), (False, True, True, True), (True, False, True, True), (True, True, False, True), (True, True, True, False),
    ):
        world = World(Bounds(guard=guard, symmetry=symmetry, por=por, subsume=subsume, **SMALL, **extra), reduce=reduce)
        result = explore(world, stop_at_first=False, keep_states=True)
        assert result.exhausted
        runs[(reduce, symmetry, por, subsume)] = (
            result,
            sorted({v.invariant for c in result.counterexamples for v in c.violations}),
            _zone_facts(world, result.explored),
        )
    (full, verdict, zones), *others = runs.values()
    for other, verdict_o, zones_o in others:
        assert verdict == verdict_o
        assert zones == zones_o
        assert full.states < other.states
    if not guard:
        assert "NoEmptyAnswer" in verdict and "Progress" in verdict
    else:
        # Nothing but (while the core still has it) the served-type defect: see test_explore.py.
        assert set(verdict) <= {"ServedIsApplied"}


def test_served_is_applied_judges_what_dns_answers_per_record_type():
    """A root left on plan 2's tree for AAAA after plan 3 (A only) was applied: the data plane
    still answers AAAA, so ServedIsApplied fails for AAAA only; with plan 2 applied it holds."""
    from lab.checker.invariants import Invariants
    from services.route53.engine import apply_batch
    from services.route53.records import AliasTarget, Change, RecordSet

    world = World(Bounds(**SMALL))
    ep, zid = world.endpoints[0], world.zone_ids[0]
    tree = p.TreeInHand("t-ap2", 2, T0)
    records = p.tree_records(world.settings[0], ep, zid, world.plans[1].endpoint(ep), tree)
    roots = [RecordSet(layout.root_name(ep), rt, alias=AliasTarget(layout.tree_name(ep, "t-ap2"), zid)) for rt in ("A", "AAAA")]
    zone = apply_batch(world.zone(world.initial.zones[0]), [Change("CREATE", r) for r in (*records, *roots)])
    state = world.initial._replace(zones=(world.intern_zone(zone),))
    inv = Invariants(world)
    assert inv.of_state(state._replace(applied=(2,))) == ()
    found = inv.of_state(state._replace(applied=(3,)))
    assert [v.invariant for v in found] == ["ServedIsApplied"]
    assert "AAAA still serves" in found[0].message and "plan 3 has no AAAA" in found[0].message
    assert inv.served(state.zones[0], 0, "AAAA").addresses == {"2001:db8:1::1", "2001:db8::2"}


def test_a_lost_reply_applies_the_batch_and_the_enactor_hears_nothing():
    from lab.checker.world import LOST_REPLY

    world = World(Bounds(**{**SMALL, "lost_replies": 1}))
    state = world.initial
    for label in [("publish",), ("step", 0, ""), ("step", 0, "")]:
        state = world.apply(state, label)[0]
    assert ("step", 0, LOST_REPLY) in list(world.labels(state))
    after, move, _ = world.apply(state, ("step", 0, LOST_REPLY))
    assert move.outcome == "lost_reply_accepted" and after.zones != state.zones and after.lost == 1
    assert type(move.observation).__name__ == "RequestFailed"
    assert ("step", 0, LOST_REPLY) not in list(world.labels(after))


def test_random_walks_are_deterministic_for_a_seed():
    a = random_walks(World(Bounds(guard=False)), 40, seed=5)
    b = random_walks(World(Bounds(guard=False)), 40, seed=5)
    assert a.counterexample is not None, "40 random walks should meet the race at the default bounds"
    assert (a.walks, a.states, a.transitions, a.counterexample.labels) == (b.walks, b.states, b.transitions, b.counterexample.labels)
    c = random_walks(World(Bounds(guard=False)), 40, seed=6)
    assert (c.walks, c.transitions) != (a.walks, a.transitions) or c.counterexample.labels != a.counterexample.labels


def test_the_freeze_switch_answers_frozen_and_nothing_is_carried_out():
    from lab.checker import trace
    from lab.checker.world import FREEZE

    world = World(Bounds(**{**SMALL, "freezes": 1}))
    state = world.initial
    for label in [("publish",), ("step", 0, ""), ("step", 0, "")]:
        state = world.apply(state, label)[0]
    assert world.machine(state.machines[0]).phase == "batch"  # the first build batch is about to go
    assert ("step", 0, FREEZE) in list(world.labels(state))
    after, move, _ = world.apply(state, ("step", 0, FREEZE))
    assert move.outcome == "frozen" and type(move.observation).__name__ == "Frozen"
    assert after.zones == state.zones and after.frozen == 1  # nothing applied
    frozen = world.machine(after.machines[0])
    assert frozen.frozen and frozen.task == "idle" and frozen.inflight is None and not frozen.acquired
    assert ("step", 0, FREEZE) not in list(world.labels(after))  # the bound is spent
    assert "the freeze switch is on" in trace.describe(world, state, ("step", 0, FREEZE), 4).text
    # Without the bound the choice never appears.
    plain = World(Bounds(**SMALL))
    there = plain.initial
    for label in [("publish",), ("step", 0, ""), ("step", 0, "")]:
        there = plain.apply(there, label)[0]
    assert all(x[2:] != (FREEZE,) for x in plain.labels(there))


def test_the_guarded_core_rides_out_a_freeze():
    # One enactor, two plans: a freeze answered to any plan read or batch leaves every invariant
    # and Progress intact (the core drops its unit, waits, and picks the plan up again).
    result = explore(World(Bounds(enactors=1, plans=2, keep_plans=1, lost_replies=0, freezes=1)))
    assert result.exhausted and result.progress_checked and result.stuck_states == 0
    assert result.counterexample is None


def test_a_plan_object_that_fails_the_schema_changes_nothing_and_the_next_plan_is_taken():
    from lab.checker.world import INVALID_PLAN_KEY, PUBLISH_INVALID

    bounds = Bounds(enactors=1, plans=2, keep_plans=1, lost_replies=0, invalid_plans=1)
    world = World(bounds)
    state = world.apply(world.initial, ("publish",))[0]
    assert PUBLISH_INVALID in list(world.labels(state))
    state = world.apply(state, PUBLISH_INVALID)[0]
    assert state.invalid == 1 and PUBLISH_INVALID not in list(world.labels(state))
    after, move, _ = world.apply(state, ("step", 0, ""))
    assert move.observation.plan is None and move.observation.invalid.key == INVALID_PLAN_KEY
    assert "plan_rejected" in [n.event for n in move.notes] and after.zones == state.zones
    assert world.apply(after, ("publish",))[0].invalid == 2  # the next valid plan supersedes it
    # Exhaustively: nothing breaks, and the fleet still reaches the newest plan.
    result = explore(world)
    assert result.exhausted and result.progress_checked and result.stuck_states == 0
    assert result.counterexample is None
    assert BoundsError is not None
    with pytest.raises(BoundsError, match="--invalid-plans"):
        Bounds(invalid_plans=2)


@pytest.mark.parametrize("core_name", [None, "tree_without_metadata"])
def test_two_endpoints_checked_one_at_a_time_agree_with_the_whole_world(core_name):
    # One enactor keeps the product of two endpoints small enough to exhaust here.
    from lab.checker.mutants import by_name, core_module

    core = p if core_name is None else core_module(by_name(core_name))
    tiny = dict(enactors=1, plans=2, keep_plans=1, lbs=1, endpoints=2)
    whole = World(Bounds(decompose=False, **tiny), core)
    product = explore(whole, stop_at_first=False, keep_states=True)
    split = explore(World(Bounds(**tiny), core), stop_at_first=False)
    assert product.exhausted and split.exhausted and len(split.components) == 2
    assert split.states < product.states
    assert split.progress_checked
    verdict = {v.invariant for c in product.counterexamples for v in c.violations}
    assert verdict == {v.invariant for c in split.counterexamples for v in c.violations}
    assert bool(verdict) == (core_name is not None)
    # Every product state, seen from one endpoint, is a state its component reaches.
    for j in range(2):
        part = World(Bounds(**tiny), core, endpoint=j)
        reached = {facts[0] for facts in _zone_facts(part, explore(part, stop_at_first=False, keep_states=True).explored)}
        assert {facts[j] for facts in _zone_facts(whole, product.explored)} <= reached
    # A component's counterexample is shown as a run of the whole world that breaks the same invariant.
    for cx in split.counterexamples:
        if cx.kind == "safety":
            from lab.checker.explore import safety_violations
            from lab.checker.invariants import Invariants

            assert set(cx.invariants) <= {v.invariant for v in safety_violations(whole, Invariants(whole), cx.labels)}


def test_insync_waits_put_a_step_between_build_and_flip_and_a_pending_change_defers_the_flip():
    from lab.checker.world import PENDING, PUBLISH

    world = World(Bounds(enactors=1, plans=1, keep_plans=1, lost_replies=0, lock_losses=0, insync_waits=1))
    state = world.initial
    for label in (PUBLISH, ("step", 0, ""), ("step", 0, ""), ("step", 0, "")):  # publish, read, list, build
        state = world.apply(state, label)[0]
    waiting = world.machine(state.machines[0])
    assert waiting.phase == "insync" and waiting.unsynced == ("/change/enactor-a@1",)
    assert ("step", 0, PENDING) in world.labels(state)
    deferred, move, _ = world.apply(state, ("step", 0, PENDING))
    assert isinstance(move.observation, p.Insync) and not move.observation.ok
    assert any(n.event == "flip_deferred" for n in move.notes)
    assert deferred.pending == 1 and ("step", 0, PENDING) not in world.labels(deferred)
    assert world.view(deferred.zones[0], 0).active_version is None  # nothing flipped while PENDING
    synced = world.machine(world.apply(state, ("step", 0, ""))[0].machines[0])
    assert synced.phase == "batch" and synced.inflight.purpose == "flip"
    # The guarded core holds every invariant with the waits (and a PENDING one) interleaved.
    result = explore(World(Bounds(guard=True, insync_waits=1, **SMALL)), stop_at_first=False)
    assert result.exhausted and result.progress_checked and not result.counterexamples


def test_a_plan_route53_refuses_is_dropped_never_served_and_the_next_plan_goes_on():
    from lab.checker.world import POISON_PLAN

    world = World(Bounds(guard=True, refused_plans=1, **SMALL))
    assert len(world.plans[POISON_PLAN - 1].endpoints[0].targets[0].ipv4) == 2  # the same address twice
    result = explore(world, stop_at_first=False, keep_states=True)
    assert result.exhausted and result.progress_checked and not result.counterexamples
    refusals = {n.get("reason") for m in world._moves.values() for n in m.notes if n.event == "plan_refused_by_route53"}
    assert refusals == {"duplicate_address"}
    assert all(world.view(s.zones[0], 0).active_version != POISON_PLAN for s in result.explored)
    # Plan 3 still takes effect after the refused plan 2: some explored state serves it.
    assert any(world.view(s.zones[0], 0).active_version == 3 for s in result.explored)


def _quota_world(quota: int, core=p) -> World:
    return World(Bounds(guard=True, zone_quota=quota, **SMALL), core)


@pytest.mark.parametrize("quota", [16, 20, 24])
def test_under_a_zone_quota_the_guarded_core_trims_or_refuses_and_every_plan_that_fits_is_served(quota):
    world = _quota_world(quota)
    result = explore(world, stop_at_first=False, keep_states=True)
    assert result.exhausted and result.progress_checked and not result.counterexamples
    # Route 53 enforces the quota: no explored zone is over it, and every plan that always fits
    # (World.fits) is served in some explored state.
    assert all(len(world.zone(s.zones[0]).zone.records) <= quota for s in result.explored)
    served = {world.view(s.zones[0], 0).active_version for s in result.explored}
    fitting = {v for v in range(1, len(world.plans) + 1) if world.fits(v, 0)}
    assert fitting <= served
    events = {n.event for m in world._moves.values() for n in m.notes}
    if fitting != set(range(1, len(world.plans) + 1)):
        assert "plan_too_large" in events  # a plan that cannot fit is refused; what DNS serves stays whole


def test_a_zone_quota_below_the_start_is_refused_with_a_clear_message():
    with pytest.raises(BoundsError, match="--zone-quota must be at least 2"):
        Bounds(zone_quota=1)
    with pytest.raises(BoundsError, match="below the .* record sets the damaged start already has"):
        World(Bounds(start="damaged", plans=2, zone_quota=10))
    with pytest.raises(BoundsError, match="--start legacy needs --endpoints 1"):
        Bounds(start="legacy", endpoints=2)


@pytest.mark.parametrize(("mutant", "quota"), [("quota_counts_tree_only", 24), ("refusal_keeps_lease", 20), ("trim_keeps_dropped_rollback", 24)])
def test_the_zone_quota_mutants_break_progress(mutant, quota):
    """Three defects the quota variant found in the core, planted back: each leaves a plan that
    fits unserved (Progress), where the real core (test above) serves it."""
    from lab.checker.mutants import by_name, core_module

    result = explore(_quota_world(quota, core_module(by_name(mutant))), stop_at_first=False)
    assert result.exhausted and {cx.kind for cx in result.counterexamples} == {"progress"}


def test_a_listing_move_is_the_enactors_own_even_when_two_enactors_are_in_the_same_state():
    """Two enactors in equal machine states list the same zone: the unit each starts carries its
    own id as the lock's holder (a clean-up starts no tree named for it). With the moves shared
    between them, enactor-b submitted enactor-a's release and LockExclusion fired (symmetry off)."""
    world = World(Bounds(guard=True, zone_quota=10, symmetry=False, enactors=2, plans=4, keep_plans=2, lost_replies=0, lock_losses=0))
    result = explore(world, stop_at_first=False, check_progress=False)
    assert result.exhausted and not result.counterexamples
    holders = {
        (m.request.batch_id.split("@")[0], c.record.values[0])
        for m in world._moves.values() if m.request is not None and type(m.request).__name__ == "SubmitBatch"
        for c in m.request.changes if c.action == "CREATE" and c.record.name.startswith("_lock.")
    }
    assert holders and all(f"holder={who} " in value for who, value in holders)


def test_the_guard_deployed_on_any_zone_legacy_mode_reaches_keeps_every_invariant_and_progress():
    """--start legacy: every (zone, plans published) the legacy core reaches without faults is a
    start for the guarded enactors; from each, the guarded core keeps every invariant once it has
    flipped, never deletes the active tree, and brings the endpoint to the newest plan."""
    world = World(Bounds(guard=True, start="legacy", **SMALL))
    starts = world.legacy_starts
    assert len(starts) > 100 and any(world.view(s.zones[0], 0).dangling for s in starts)  # October's state among them
    assert {s.published for s in starts} == {0, 1, 2, 3}
    result = explore(world, stop_at_first=False)
    assert result.exhausted and result.progress_checked and not result.counterexamples
    # A planted fault the damage exposes is caught from these starts (the clean-up deletes the rollback's tree).
    from lab.checker.mutants import by_name, core_module

    bad = explore(World(Bounds(guard=True, start="legacy", **SMALL), core_module(by_name("cleanup_deletes_rollback"))))
    assert bad.counterexample is not None and "RollbackIntact" in bad.counterexample.invariants
    assert bad.counterexample.labels[0][0] == "start"


def test_a_request_can_fail_in_transport_in_every_phase_but_a_sleep_and_the_guarded_core_rides_it_out():
    world = World(Bounds(guard=True, failed_requests=1, insync_waits=1, **SMALL))
    result = explore(world, stop_at_first=False, keep_states=True)
    assert result.exhausted and result.progress_checked and not result.counterexamples
    failed = {type(m.request).__name__ for m in world._moves.values() if m.outcome == "failed"}
    assert {"ReadNewestPlan", "ReadRecords", "SubmitBatch", "AwaitInsync"} <= failed, failed


def test_the_release_after_a_refusal_is_told_as_a_release_not_as_a_clean_up():
    from lab.checker import trace

    world = _quota_world(20)
    result = explore(world, stop_at_first=False, keep_states=True, check_progress=False)
    texts = {
        trace.describe(world, s, label, 1).text
        for s in result.explored for label in world.labels(s)
        if label[0] == "step" and not label[2] and world.machine(s.machines[label[1]]).salvage
    }
    assert any("its own lease is still held: it releases it" in t for t in texts)
    assert any("release of its lease on dynamodb.us-east-1.api.aws is accepted" in t for t in texts)
    assert not any("deletes unused leaves" in t and "release" in t for t in texts)
