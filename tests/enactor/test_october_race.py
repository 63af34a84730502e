"""The race of 20 October 2025, as one hand-written schedule of three enactors on one endpoint.

The schedule is the talk's: all three start on plan 110; enactor-c loses the lock to enactor-a
again and again and backs off; enactor-a applies plans up to 145 and, between its flip of 145
and its clean-up, enactor-c wakes up and installs its stale plan 110; enactor-a's clean-up then
deletes trees older than 140. Legacy mode ends with a dangling root (zero answers) and every
later flip failing; the same schedule with the guard on keeps the endpoint answering.
"""

from __future__ import annotations

from enactor import protocol as p
from tests.enactor.world import World, answers, endpoint_plan, events, make_plan, polling

EP = "dynamodb.us-east-1.amazonaws.com."
A, B, C = "enactor-a", "enactor-b", "enactor-c"


def plan(version: int):
    # Weights change with the version, as they do when capacity moves: every plan is a new tree.
    return make_plan(version, [endpoint_plan(EP, 3, weight=lambda i: 10 + (i + version) % 5)])


def in_cleanup(m) -> bool:
    return m.state.task is p.Task.CLEANUP and m.state.phase in (p.Phase.LIST, p.Phase.READ)


def october(guard: bool) -> World:
    w = World((EP,))
    for who in (A, B, C):
        w.add_enactor(p.CoreSettings(who, version_guard=guard, keep_plans=5, lock_ttl_s=30))
    w.publish(plan(109))
    w.run_idle(A, EP)

    # All on plan 110: enactor-a takes the lock first; enactor-c loses and backs off.
    w.publish(plan(110))
    w.run_until(A, EP, lambda m: isinstance(m.request, p.SubmitBatch))
    w.step(A, EP)  # accepted: enactor-a holds the lock
    w.run_until(C, EP, lambda m: isinstance(m.request, p.Sleep))
    assert events(w.machines[(C, EP)])[-2:] == ["lock_lost", "backoff"]
    w.run_idle(A, EP)

    # More plans; enactor-c keeps waking up while enactor-a holds the lock (the unusual delays).
    for version in range(111, 146):
        w.now += 2
        w.publish(plan(version))
        w.run_until(A, EP, lambda m: isinstance(m.request, p.SubmitBatch))
        w.step(A, EP)
        if version % 7 == 0:
            w.step(C, EP)  # Woke
            w.step(C, EP)  # lists: the lock is enactor-a's (legacy), or the plan is stale (guard)
        if version < 145:
            w.run_idle(A, EP)
        else:
            w.run_until(A, EP, in_cleanup)  # flipped 145, released the lock, about to list again

    # The window: enactor-c wakes and works on its plan 110 before enactor-a cleans up.
    w.now += 1
    c = w.machines[(C, EP)]
    if isinstance(c.request, p.Sleep):
        w.step(C, EP)
    w.run_until(C, EP, lambda m: in_cleanup(m) or polling(m) or m.state.plan is None)
    # enactor-a's clean-up of trees older than 145 - 5.
    w.run_idle(A, EP)

    # Plan 146 arrives; enactor-b (fresh) and enactor-a try to install it.
    w.now += 2
    w.publish(plan(146))
    for _ in range(6):
        w.step(B, EP)
    for _ in range(60):
        w.now += 1
        for who in (B, A):
            w.step(who, EP)
    return w


def test_legacy_reproduces_the_outage():
    w = october(guard=False)
    a, b, c = (w.machines[(x, EP)] for x in (A, B, C))
    # enactor-c lost the lock several times in a row, then installed its stale plan.
    assert events(c).count("lock_lost") >= 4
    backoffs = [n.get("max_seconds") for n in c.notes if n.event == "backoff"]
    assert backoffs == sorted(backoffs) and backoffs[-1] > backoffs[0]
    flips_c = [n for n in c.notes if n.event == "flipped"]
    assert [n.get("plan_version") for n in flips_c] == [110]
    # enactor-a's clean-up deleted the tree of plan 110 while the root pointed at it.
    deleted = [v for n in a.notes if n.event == "cleanup_deleted" for v in n.get("tree_versions")]
    assert 110 in deleted
    view = w.view(EP)
    assert view.dangling
    assert answers(w, EP) == set()  # NOERROR, zero addresses
    # The inconsistent state: every later flip points the rollback at the missing tree and fails.
    failed = [n for m in (a, b) for n in m.notes if n.event == "flip_failed"]
    assert len(failed) >= 5
    assert all(n.get("cause") == "other" and "target was not found" in " ".join(n.get("messages")) for n in failed)
    assert not [n for m in (a, b) for n in m.notes if n.event == "flipped" and n.get("plan_version") == 146]
    assert b.state.stuck or a.state.stuck


def test_guard_holds_on_the_same_schedule():
    w = october(guard=True)
    a, b, c = (w.machines[(x, EP)] for x in (A, B, C))
    # enactor-c found its plan stale after its backoff and refused it.
    assert "refused_stale" in events(c)
    assert not [n for n in c.notes if n.event == "flipped" and n.get("plan_version") == 110]
    view = w.view(EP)
    assert not view.dangling
    assert view.active_version == 146
    assert view.applied_value.version == 146
    assert answers(w, EP)
    assert not [n for m in (a, b, c) for n in m.notes if n.event == "flip_failed"]
    # The tree the rollback names survived the clean-ups.
    rollback = view.rollback_targets()["A"]
    assert view.tree(rollback) is not None and view.tree(rollback).complete


def test_legacy_damage_is_healed_by_a_guarded_enactor():
    w = october(guard=False)
    assert w.view(EP).dangling
    w.add_enactor(p.CoreSettings("enactor-d", version_guard=True))
    d = w.machines[("enactor-d", EP)]
    # The stuck enactors stopped renewing their lock; enactor-d takes it over once expired, then heals.
    for _ in range(200):
        w.now += 1
        w.step("enactor-d", EP)
        if "flipped" in events(d):
            break
    heal = [n for n in d.notes if n.event == "flipped"]
    assert heal and heal[0].get("healed") is True and heal[0].get("plan_version") == 146
    view = w.view(EP)
    assert not view.dangling and view.active_version == 146 and answers(w, EP)
    # The rollback went to an intact older tree (or was left out), never to the missing one.
    assert all(view.tree(t) is not None for t in heal[0].get("rollback_to"))
