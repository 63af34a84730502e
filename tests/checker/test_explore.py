"""The checker on the real core: legacy finds the race of 20 October (a shortest run), the stuck
state breaks Progress, the guarded core heals October's damage; faults planted in copies of the
guarded core are each caught with a counterexample; misbehaving code is a counterexample, never
a crash.

ServedIsApplied is not reported in the runs that look for other findings: today's core keeps
serving a record type a plan drops (a real defect the checker finds, being fixed in the core),
and these tests must hold whether or not it is still there."""

from __future__ import annotations

import pytest

from enactor import protocol
from lab.checker import trace
from lab.checker import world as world_module
from lab.checker.ablation import ablate
from lab.checker.explore import explore, progress_from
from lab.checker.invariants import (
    CORE_RAISED,
    ENGINE_RAISED,
    LOCK_EXCLUSION,
    MONOTONIC,
    NEVER_DELETE_ACTIVE,
    NO_EMPTY_ANSWER,
    NO_HALF_TREE,
    PROGRESS,
    ROLLBACK_INTACT,
    SERVED_IS_APPLIED,
)  # fmt: skip
from lab.checker.mutants import (
    MUTANTS,
    Mutant,
    MutantStale,
    by_name,
    core_module,
    mutant_module,
    mutated_source,
)
from lab.checker.world import Bounds, World
from services.route53.engine import apply_batch

EP = "dynamodb.us-east-1.api.aws"
KNOWN = (SERVED_IS_APPLIED,)
SMALL = dict(enactors=2, plans=3, keep_plans=1, lost_replies=0)


def _end(world: World, labels):
    state = world.initial
    for label in labels:
        state = world.apply(state, label)[0]
    return state


def test_legacy_finds_the_race_with_a_shortest_trace():
    world = World(Bounds(guard=False, lost_replies=0), ignore=KNOWN)
    result = explore(world)
    cx = result.counterexample
    assert cx is not None and cx.kind == "safety"
    assert {NO_EMPTY_ANSWER, NEVER_DELETE_ACTIVE} <= set(cx.invariants)
    rep = trace.report(world, cx)
    text = "\n".join(rep.lines())
    # The stale flip of October and the clean-up that deletes the tree it installed.
    assert f"flips the root of {EP} to plan 1" in text and "while plan 4 is active" in text
    assert "the tree the root serves" in text
    assert rep.final[0]["dns"] == {"rcode": "NOERROR", "addresses": [], "dangling": True}
    # Breadth-first: nothing breaks in fewer steps.
    shorter = explore(World(Bounds(guard=False, lost_replies=0, max_depth=len(cx.labels) - 1), ignore=KNOWN), check_progress=False)
    assert shorter.counterexample is None and shorter.frontier > 0
    # October's stuck state: no continuation without new plans brings the endpoint back.
    can, _ = progress_from(world, _end(world, cx.labels))
    assert can is False


def test_legacy_from_octobers_end_state_is_stuck():
    world = World(Bounds(guard=False, start="damaged", lost_replies=0), ignore=KNOWN)
    result = explore(world)
    assert result.exhausted and result.progress_checked
    cx = result.counterexample
    assert cx is not None and cx.kind == "progress" and cx.invariants == (PROGRESS,)
    rep = trace.report(world, cx)
    failed = [s for s in rep.continuation if "flip batch for plan 4" in s.text and "rejected (other)" in s.text]
    assert failed and all("target was not found" in s.text for s in failed)
    assert rep.after_continuation[0]["dns"]["addresses"] == []


def test_guarded_heals_octobers_end_state():
    world = World(Bounds(guard=True, start="damaged", lost_replies=0), ignore=KNOWN)
    result = explore(world)
    assert result.exhausted and result.progress_checked and result.stuck_states == 0
    assert result.counterexample is None


@pytest.mark.parametrize(
    ("name", "start", "expected"),
    [
        ("flip_skips_freshness", "clean", {MONOTONIC}),
        ("cleanup_deletes_active", "clean", {NEVER_DELETE_ACTIVE, NO_EMPTY_ANSWER}),
        ("cleanup_deletes_rollback", "clean", {ROLLBACK_INTACT}),
        ("lock_taken_before_expiry", "clean", {LOCK_EXCLUSION}),
        ("tree_without_metadata", "clean", {NO_HALF_TREE}),
        ("no_heal", "damaged", {PROGRESS}),
    ],
)
def test_faults_planted_in_the_guarded_core_are_caught(name, start, expected):
    core = core_module(by_name(name))
    assert core is not protocol and core.step is not protocol.step
    world = World(Bounds(guard=True, start=start, **SMALL), core, ignore=KNOWN)
    result = explore(world)
    cx = result.counterexample
    assert cx is not None, f"the checker missed the planted fault {name}"
    assert expected <= set(cx.invariants)
    # The counterexample is a real run of the mutant: replaying its steps breaks the invariant again.
    rep = trace.report(world, cx)
    assert len(rep.steps) == len(cx.labels)
    assert all(v.message for v in cx.violations)
    if PROGRESS in expected:
        assert rep.continuation, "a Progress counterexample shows the fleet going in circles"


def test_a_core_that_raises_is_a_counterexample_with_its_trace():
    world = World(Bounds(guard=True, **SMALL), core_module(by_name("lock_preamble_skipped")), ignore=KNOWN)
    cx = explore(world).counterexample
    assert cx is not None and cx.invariants == (CORE_RAISED,)
    assert "raised StopIteration" in cx.violations[0].message
    assert trace.report(world, cx).steps[-1].outcome == "raised"


def test_an_engine_that_raises_is_a_counterexample(monkeypatch):
    def flaky(zone, changes, limits=None):
        if any(c.record.type == "AAAA" for c in changes):
            raise AssertionError("engine bug")
        return apply_batch(zone, changes, limits) if limits else apply_batch(zone, changes)

    monkeypatch.setattr(world_module, "apply_batch", flaky)
    world = World(Bounds(guard=True, **SMALL), ignore=KNOWN)
    cx = explore(world).counterexample
    assert cx is not None and cx.invariants == (ENGINE_RAISED,)
    assert "AssertionError: engine bug" in cx.violations[0].message


def test_the_doomed_batch_reduction_stays_sound_on_an_engine_that_ignores_delete_values(monkeypatch):
    # With reductions on and off, the faulty engine is caught (it used to crash the checker).
    engine = mutant_module(by_name("engine_delete_ignores_values"))
    monkeypatch.setattr(world_module, "apply_batch", engine.apply_batch)
    monkeypatch.setattr(world_module, "Route53Error", engine.Route53Error)  # the copy's own error classes
    for reduce in (True, False):
        cx = explore(World(Bounds(guard=True, **SMALL), reduce=reduce, ignore=KNOWN)).counterexample
        assert cx is not None and LOCK_EXCLUSION in cx.invariants


def test_every_mutant_applies_to_todays_code_and_a_stale_one_fails_loudly():
    names = [m.name for m in MUTANTS]
    assert len(names) == len(set(names)) and len(names) >= 15
    for m in MUTANTS:
        assert mutated_source(m, open(m.file).read()) != open(m.file).read()
    stale = Mutant("typo", "enactor/protocol.py", (("heal = zone.dangling_typo", "heal = False"),), "nothing")
    with pytest.raises(MutantStale, match="mutant typo no longer applies"):
        mutated_source(stale, open(stale.file).read())


def test_ablation_names_the_invariant_each_part_carries():
    lines: list[str] = []
    rows = ablate(Bounds(**SMALL), KNOWN, lines.append, parts={"freshness_checked_once_guarded", "flip_without_applied_cas"})
    verdicts = {r.mutant: r for r in rows}
    assert MONOTONIC in verdicts["freshness_checked_once_guarded"].verdict and verdicts["freshness_checked_once_guarded"].steps
    assert verdicts["flip_without_applied_cas"].verdict == "redundant within these bounds"
    assert "| part of the guard switched off | fails | shortest trace |" in lines
