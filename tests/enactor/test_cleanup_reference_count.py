"""The guarded clean-up's reference count without a listing: the nodes of every tree are
recomputed from the plan it was built for and checked against its top as read (the tops name
their nodes by content digest), so the clean-up deletes exactly what only the doomed trees
reach, reading nothing but the heads page. Driven through the real change engine (in memory,
tests/enactor/world.py); the process test is in test_enactor_processes.py."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enactor import layout
from enactor import protocol as p
from enactor import tree as tree_shape
from services.route53.engine import DEFAULT_LIMITS, apply_batch
from services.route53.records import Change, RecordSet
from tests.enactor.world import World, endpoint_plan, make_plan

EP = "svc.example.com."
SHAPE = tree_shape.Shape(node_members=4, top_members=4)  # a few levels of shared nodes for a few dozen LBs


def _settings(keep: int) -> p.CoreSettings:
    # A small heads page: zones past the first plan take the targeted path (as 300 LBs do by default).
    return p.CoreSettings("enactor-a", keep_plans=keep, shape=SHAPE, heads_page=8)


def _run(world: World, m, limit: int = 400) -> list[p.Request]:
    """Step the machine until it polls; the requests it made, in order."""
    asked = []
    for _ in range(limit):
        asked.append(m.request)
        world.step("enactor-a", EP)
        if isinstance(m.request, p.Sleep) and m.request.reason == "poll":
            return asked
    raise AssertionError(f"not idle after {limit} steps: {m.state.phase} {m.request}")


def _garbage_free(view: layout.EndpointZone) -> bool:
    """Every node in the zone is reached by a tree, and every tree is whole."""
    reached = set().union(*(t.leaves for t in view.trees))
    return all(t.complete for t in view.trees) and {r.name for r in view.leaves} == reached


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(12, 60),
    keep=st.integers(1, 2),
    dual=st.booleans(),
    changes=st.lists(st.lists(st.integers(0, 59), min_size=1, max_size=4), min_size=3, max_size=6),
)
def test_targeted_cleanup_deletes_exactly_what_only_doomed_trees_reach(n, keep, dual, changes):
    world = World((EP,))
    world.add_enactor(_settings(keep))
    m = world.machines[("enactor-a", EP)]
    types = ("A", "AAAA") if dual else ("A",)
    weights = {i: 10 + i % 7 for i in range(n)}
    for version, changed in enumerate([[], *changes], start=1):
        for i in changed:
            weights[i % n] = 1 + (weights[i % n] * 13 + version) % 255
        world.publish(make_plan(version, [endpoint_plan(EP, n, types=types, weight=lambda i, w=dict(weights): w[i])]))
        asked = _run(world, m)
        view = world.view(EP)
        assert view.active_version == version and not view.dangling
        assert {t.version for t in view.trees} == set(range(max(1, version - keep), version + 1))
        assert _garbage_free(view), "a node no tree reaches was left, or a kept tree lost a node"
        if version > 1:
            assert not any(isinstance(r, p.ListRecords) for r in asked), "the clean-up listed the whole zone"
        if version > keep + 1:
            assert any(isinstance(r, p.ReadPlans) for r in asked)


def _two_plans_past_keeping(world: World, m, task: p.Task = p.Task.CLEANUP) -> None:
    for version in (1, 2, 3):
        world.publish(make_plan(version, [endpoint_plan(EP, 30, weight=lambda i, v=version: 1 + (i + v) % 9)]))
        if version < 3:
            _run(world, m)
    # Plan 3: run until the build (or the clean-up) asks for the plans behind the trees.
    for _ in range(400):
        if isinstance(m.request, p.ReadPlans) and m.state.task is task:
            return
        world.step("enactor-a", EP)
    raise AssertionError(f"the {task} never asked for the trees' plans")


def test_a_build_whose_trees_plans_are_gone_reads_the_interior_nodes():
    world = World((EP,))
    world.add_enactor(_settings(2))
    m = world.machines[("enactor-a", EP)]
    _two_plans_past_keeping(world, m, p.Task.WORK)
    notes = world.step("enactor-a", EP, p.PlansRead(tuple((v, None) for v in m.request.versions), world.now))
    assert "nodes_not_recomputed" in [n.event for n in notes]
    assert isinstance(m.request, p.ReadRecords) and m.state.read == "nodes"
    _run(world, m)
    view = world.view(EP)
    assert view.active_version == 3 and {t.version for t in view.trees} == {1, 2, 3} and _garbage_free(view)


def test_a_tree_whose_plan_is_gone_is_counted_from_a_listing():
    world = World((EP,))
    world.add_enactor(_settings(1))
    m = world.machines[("enactor-a", EP)]
    _two_plans_past_keeping(world, m)
    notes = world.step("enactor-a", EP, p.PlansRead(tuple((v, None) for v in m.request.versions), world.now))
    assert "nodes_not_recomputed" in [n.event for n in notes]
    assert isinstance(m.request, p.ListRecords)
    _run(world, m)
    view = world.view(EP)
    assert {t.version for t in view.trees} == {2, 3} and _garbage_free(view)


def test_a_node_damaged_by_hand_fails_the_batch_and_a_listing_cleans_up():
    world = World((EP,))
    world.add_enactor(_settings(1))
    m = world.machines[("enactor-a", EP)]
    _two_plans_past_keeping(world, m)
    # By hand, behind the enactor's back (the lock untouched): a node only plan 1's tree reaches
    # gets another TTL, so the DELETE recomputed from plan 1 no longer matches it.
    view = world.view(EP)
    only = view.tree(next(t.tree_id for t in view.trees if t.version == 1)).leaves - set().union(
        *(t.leaves for t in view.trees if t.version != 1))
    victim = next(r for r in view.leaves if r.name in only and r.alias is None)  # a bottom node's LB
    changed = RecordSet(victim.name, victim.type, victim.ttl + 1, victim.values, victim.alias, victim.set_identifier, victim.weight)
    world.zones[EP] = apply_batch(world.zones[EP], (Change("DELETE", victim), Change("CREATE", changed)), world.limits)
    _run(world, m)
    events = [n.event for n in m.notes]
    assert events.count("cleanup_aborted") == 1 and events[-1] != "cleanup_aborted"
    assert "cleanup_deleted" in events[events.index("cleanup_aborted"):]
    view = world.view(EP)
    assert {t.version for t in view.trees} == {2, 3} and _garbage_free(view)


def test_tree_nodes_refuses_a_plan_that_is_not_the_trees():
    world = World((EP,))
    settings_ = _settings(1)
    world.add_enactor(settings_)
    m = world.machines[("enactor-a", EP)]
    plan = endpoint_plan(EP, 20)
    world.publish(make_plan(1, [plan]))
    _run(world, m)
    tree = world.view(EP).trees[0]
    zone_id = world.zones[EP].zone.zone_id
    nodes = p.tree_nodes(settings_, EP, zone_id, tree, plan)
    assert nodes is not None and set(nodes) == tree.leaves | set(nodes)  # every node, interior and bottom
    assert {r.name for r in world.view(EP).leaves} == set(nodes)
    first = plan.targets[0].model_copy(update={"weight": plan.targets[0].weight + 1})
    other = plan.model_copy(update={"targets": (first, *plan.targets[1:])})
    assert p.tree_nodes(settings_, EP, zone_id, tree, other) is None
    assert p.tree_nodes(replace(settings_, record_ttl=30), EP, zone_id, tree, plan) is None
    assert p.tree_nodes(settings_, EP, zone_id, tree, None) is None


def test_near_the_quota_room_is_made_from_the_recomputed_nodes_without_a_listing():
    """A dual-stack zone whose quota holds the active tree and about one more plan's nodes (as
    4,000 dual-stack LBs under 10,000 record sets): the sweep after each flip and the build's
    trim count on the nodes recomputed from the trees' plans and GetHostedZone, so every plan is
    served, the zone stays under its quota and nothing lists the whole zone."""
    weights = {i: 10 + i % 7 for i in range(40)}

    def plan(version: int):
        for i in ((version * 7) % 40, (version * 13) % 40, (version * 29) % 40):
            weights[i] = 1 + (weights[i] * 13 + version) % 255
        return make_plan(version, [endpoint_plan(EP, 40, types=("A", "AAAA"), weight=lambda i, w=dict(weights): w[i])])

    first = World((EP,))
    first.add_enactor(_settings(5))
    first.publish(plan(1))
    _run(first, first.machines[("enactor-a", EP)])
    limits = replace(DEFAULT_LIMITS, max_record_sets_per_zone=len(list(first.zones[EP].zone)) + 90)
    world = World((EP,), limits=limits)
    world.add_enactor(replace(_settings(5), limits=limits))
    m = world.machines[("enactor-a", EP)]
    weights.update({i: 10 + i % 7 for i in range(40)})
    kept = []
    for version in range(1, 9):
        world.publish(plan(version))
        asked = _run(world, m)
        view = world.view(EP)
        assert view.active_version == version and not view.dangling
        assert len(list(world.zones[EP].zone)) <= limits.max_record_sets_per_zone and _garbage_free(view)
        assert version == 1 or not any(isinstance(r, p.ListRecords) for r in asked)
        kept.append(len(view.trees))
    assert max(kept) < 6, kept  # the quota, not keep_plans, bounded what is kept
    assert not any(n.event in ("plan_too_large", "nodes_not_recomputed") for n in m.notes)
