"""The checker on the real core: legacy finds the race of 20 October (a shortest run), the stuck
state breaks Progress, the guarded core heals October's damage; and faults planted in copies of
the guarded core are each caught with a counterexample."""

from __future__ import annotations

import pytest

from enactor import protocol
from lab.checker import trace
from lab.checker.explore import explore, progress_from
from lab.checker.invariants import MONOTONIC, NEVER_DELETE_ACTIVE, NO_EMPTY_ANSWER, PROGRESS
from lab.checker.world import Bounds, World
from tests.checker import mutants

EP = "dynamodb.us-east-1.api.aws"


def _end(world: World, labels):
    state = world.initial
    for label in labels:
        state = world.apply(state, label)[0]
    return state


def test_legacy_finds_the_race_with_a_shortest_trace():
    world = World(Bounds(guard=False))
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
    shorter = explore(World(Bounds(guard=False, max_depth=len(cx.labels) - 1)), check_progress=False)
    assert shorter.counterexample is None and shorter.frontier > 0
    # October's stuck state: no continuation without new plans brings the endpoint back.
    can, _ = progress_from(world, _end(world, cx.labels))
    assert can is False


def test_legacy_from_octobers_end_state_is_stuck():
    world = World(Bounds(guard=False, start="damaged"))
    result = explore(world)
    assert result.exhausted and result.progress_checked
    cx = result.counterexample
    assert cx is not None and cx.kind == "progress" and cx.invariants == (PROGRESS,)
    rep = trace.report(world, cx)
    failed = [s for s in rep.continuation if "flip batch for plan 4" in s.text and "rejected (other)" in s.text]
    assert failed and all("target was not found" in s.text for s in failed)
    assert rep.after_continuation[0]["dns"]["addresses"] == []


def test_guarded_heals_octobers_end_state():
    world = World(Bounds(guard=True, start="damaged"))
    result = explore(world)
    assert result.exhausted and result.progress_checked and result.stuck_states == 0
    assert result.counterexample is None


@pytest.mark.parametrize(
    ("name", "edits", "start", "expected"),
    [
        ("skip_cas", mutants.SKIP_CAS, "clean", {MONOTONIC}),
        ("cleanup_deletes_active", mutants.CLEANUP_DELETES_ACTIVE, "clean", {NEVER_DELETE_ACTIVE, NO_EMPTY_ANSWER}),
        ("no_healing", mutants.NO_HEALING, "damaged", {PROGRESS}),
    ],
)
def test_faults_planted_in_the_guarded_core_are_caught(name, edits, start, expected):
    core = mutants.mutant(name, edits)
    assert core is not protocol and core.step is not protocol.step
    world = World(Bounds(guard=True, start=start), core)
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


def test_a_mutant_must_apply_exactly():
    with pytest.raises(AssertionError, match="occurs 0 times"):
        mutants.mutant("typo", [("heal = zone.dangling_typo", "heal = False")])
