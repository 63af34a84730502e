"""The guarded core's targeted reads under the model checker: with `heads_page` small, every unit
of the small bounds past the first plan decides on the heads page alone (root, bookkeeping, tops
and metadata), asks the zone's size before building and cleans up from the plans behind the trees (ReadPlans),
and every invariant and Progress still hold in every reachable state. (At the default
`heads_page` these zones fit one page and are read whole, as tests/checker explores them.)"""

from __future__ import annotations

from dataclasses import replace

from enactor import protocol
from lab.checker.explore import explore
from lab.checker.world import Bounds, World

SMALL = dict(enactors=2, plans=3, keep_plans=1, lost_replies=0)


def targeted_world(**bounds) -> World:
    world = World(Bounds(guard=True, **{**SMALL, **bounds}))
    world.settings = tuple(replace(s, heads_page=4) for s in world.settings)
    return world


def test_the_targeted_path_holds_every_invariant_at_the_small_bounds():
    world = targeted_world()
    result = explore(world)
    assert result.exhausted and result.counterexample is None, result.counterexample
    assert result.progress_checked and result.stuck_states == 0
    # The targeted path was taken: builds asked the zone's size, flips were planned on heads alone.
    requests = [m.request for m in world._moves.values()]
    assert any(isinstance(r, protocol.ReadRecords) and r.zone_size for r in requests)
    assert any(protocol.is_flip(m.request) and m.request.plan_version > 1 for m in world._moves.values())
    assert any(isinstance(r, protocol.ReadPlans) for r in requests)  # the clean-up's reference count without a listing
    print(f"targeted reads: {result.states:,} guarded states at the small bounds")


def test_the_targeted_path_heals_octobers_damage():
    result = explore(targeted_world(start="damaged"))
    assert result.exhausted and result.counterexample is None, result.counterexample
