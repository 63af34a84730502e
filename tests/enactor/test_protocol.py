"""Unit tests of the protocol core, driven against the real Route 53 change engine."""

from __future__ import annotations

import ipaddress

import pytest

from enactor import layout
from enactor import protocol as p
from services.route53.engine import apply_batch
from services.route53.records import Change, RecordSet
from tests.enactor.world import World, answers, endpoint_plan, events, make_plan, polling

EP = "dynamodb.us-east-1.api.aws."


def world(*enactors: str, guard: bool = True, **kw) -> World:
    w = World((EP,))
    for e in enactors:
        w.add_enactor(p.CoreSettings(e, version_guard=guard, **kw))
    return w


def batches(w: World, who: str | None = None, accepted: bool | None = None) -> list[p.SubmitBatch]:
    return [b for e, b, ok in w.submitted if (who is None or e == who) and (accepted is None or ok == accepted)]


def test_first_plan_builds_a_complete_tree_then_flips_in_a_separate_batch():
    w = world("enactor-a")
    w.publish(make_plan(1, [endpoint_plan(EP, 4, types=("A", "AAAA"))]))
    w.run_idle("enactor-a", EP)
    done = batches(w, accepted=True)
    assert [b.purpose for b in done] == ["build", "flip"]
    build, flip = done
    assert build.changes[0].action == "CREATE" and build.changes[0].record.name == layout.lock_name(EP)
    assert not build.releases_lock and flip.releases_lock
    assert not any(c.record.name == EP for c in build.changes), "the root never rides with the tree"
    view = w.view(EP)
    assert view.active_version == 1 and not view.dangling
    assert view.applied_value.version == 1 and view.applied_value.tree_id == view.root_targets()["A"]
    assert view.root_targets()["A"] == view.root_targets()["AAAA"]
    assert view.lock_value.holder == "enactor-a" and view.lock_value.expires == int(w.now)  # released
    assert answers(w, EP, "A") == {f"10.0.{i}.1" for i in range(4)}
    assert answers(w, EP, "AAAA") == {str(ipaddress.IPv6Address(f"2001:db8::{i:x}")) for i in range(4)}
    meta = view.active_tree.meta
    assert meta.plan_version == 1 and meta.record_types == ("A", "AAAA") and len(meta.members) == 4


def test_flip_and_cleanup_are_separate_acquisitions_and_another_enactor_can_flip_between():
    w = world("enactor-a", "enactor-b", keep_plans=1)
    for v in (1, 2):
        w.publish(make_plan(v, [endpoint_plan(EP, 2, weight=lambda i, v=v: v + i)]))
        w.run_idle("enactor-a", EP)
    w.publish(make_plan(3, [endpoint_plan(EP, 2, weight=lambda i: 9 + i)]))
    a = w.run_until("enactor-a", EP, lambda m: m.state.task is p.Task.CLEANUP)
    # enactor-a flipped 3 and released the lock; enactor-b takes the lock in the window.
    w.publish(make_plan(4, [endpoint_plan(EP, 2, weight=lambda i: 20 + i)]))
    w.run_until("enactor-b", EP, lambda m: m.state.task is p.Task.CLEANUP)
    assert w.view(EP).active_version == 4
    w.run_idle("enactor-a", EP)
    # enactor-a's clean-up took the lock afresh (takeover of enactor-b's released lock).
    cleanup = [b for b in batches(w, "enactor-a", True) if b.purpose == "cleanup"]
    assert cleanup and layout.LockValue.parse(cleanup[-1].changes[0].record.values[0]).holder == "enactor-b"
    assert "cleanup_deleted" in events(a)
    assert not w.view(EP).dangling


def test_lock_held_by_another_means_backoff_with_growing_capped_jitter_and_no_batch():
    w = world("enactor-a", backoff_base_s=0.5, backoff_cap_s=3.0)
    other = layout.LockValue("enactor-z", int(w.now) + 1000, 7).render()
    w.zones[EP] = apply_batch(w.zones[EP], [Change("CREATE", RecordSet(layout.lock_name(EP), "TXT", ttl=60, values=(other,)))])
    w.publish(make_plan(1, [endpoint_plan(EP, 2)]))
    w.step("enactor-a", EP)
    sleeps = []
    for _ in range(6):
        w.step("enactor-a", EP)  # lists: held
        m = w.machines[("enactor-a", EP)]
        assert isinstance(m.request, p.Sleep) and m.request.jittered and m.request.reason == "lock_lost"
        sleeps.append(m.request.max_seconds)
        w.step("enactor-a", EP)  # wakes
    assert sleeps == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert not w.submitted
    assert events(m).count("lock_lost") == 6


def test_expired_lock_is_taken_over_by_deleting_its_exact_value():
    w = world("enactor-a")
    stale = RecordSet(layout.lock_name(EP), "TXT", ttl=60, values=(layout.LockValue("enactor-z", int(w.now) - 1, 41).render(),))
    w.zones[EP] = apply_batch(w.zones[EP], [Change("CREATE", stale)])
    w.publish(make_plan(1, [endpoint_plan(EP, 2)]))
    w.run_idle("enactor-a", EP)
    first = batches(w)[0]
    assert first.changes[0] == Change("DELETE", stale)
    assert layout.LockValue.parse(first.changes[1].record.values[0]).counter == 42
    assert [n.get("verdict") for n in w.machines[("enactor-a", EP)].notes if n.event == "lock_attempt"][0] == "expired"


def test_two_enactors_creating_the_missing_lock_one_wins_one_backs_off():
    w = world("enactor-a", "enactor-b")
    w.publish(make_plan(1, [endpoint_plan(EP, 2)]))
    for who in ("enactor-a", "enactor-b"):
        w.run_until(who, EP, lambda m: isinstance(m.request, p.SubmitBatch))
    w.step("enactor-a", EP)
    notes = w.step("enactor-b", EP)
    assert [n.event for n in notes] == ["lock_lost", "backoff"] and notes[0].get("cause") == "lock"
    assert "already exists" in notes[0].get("messages")[0]


def test_a_big_fleet_gets_shared_interior_nodes_and_batches_within_limits():
    w = world("enactor-a")
    w.publish(make_plan(1, [endpoint_plan(EP, 1000, types=("A", "AAAA"))]))
    w.run_idle("enactor-a", EP)
    built = [b for b in batches(w, accepted=True) if b.purpose == "build"]
    assert len(built) >= 2
    for b in built:
        n, c = p.batch_size(b.changes)
        assert n <= 1000 and c <= 32000
    view = w.view(EP)
    tree = view.active_tree
    metas = [r for r in tree.records if layout.role_of(r.name, EP)[0] == "meta"]
    assert tree.complete and len(metas) == 1 and len(tree.meta.members) == 1000
    # Interior nodes (aliases to nodes) below the top, bottom nodes holding the addresses.
    assert any(r.alias is not None for r in view.leaves) and any(r.alias is None for r in view.leaves)
    assert sum(1 for r in view.leaves if r.alias is None) == 2000  # one set per LB and type, no leaf copies
    assert len(answers(w, EP, "A")) == 1000


def test_chunking_packs_batches_to_the_limit_and_never_over_it():
    # 2,300 orphan leaves, deleted by a guarded clean-up: full batches of about 1,000 elements,
    # each with the preamble and the compare-and-swap inside the limit.
    w = world("enactor-a", keep_plans=1)
    w.publish(make_plan(1, [endpoint_plan(EP, 1)]))
    w.run_idle("enactor-a", EP)
    orphans = [RecordSet(f"leaf-x{i}-0.{EP}", "A", ttl=60, values=("192.0.2.1",)) for i in range(2300)]
    for i in range(0, len(orphans), 500):
        w.zones[EP] = apply_batch(w.zones[EP], [Change("CREATE", r) for r in orphans[i : i + 500]])
    w.publish(make_plan(2, [endpoint_plan(EP, 1, weight=lambda i: 99)]))
    w.run_idle("enactor-a", EP)
    cleanup = [b for b in batches(w) if b.purpose == "cleanup"]
    assert all(ok for _, b, ok in w.submitted if b.purpose == "cleanup")
    sizes = [p.batch_size(b.changes)[0] for b in cleanup]
    assert len(cleanup) == 3 and max(sizes) <= 1000 and min(sizes[:-1]) >= 995
    view = w.view(EP)
    assert {r.name for r in view.leaves} == set().union(*(t.leaves for t in view.trees))  # no orphan left


def test_an_invalid_plan_is_rejected_once_and_changes_nothing():
    w = world("enactor-a")
    w.publish(make_plan(1, [endpoint_plan(EP, 2)]))
    w.run_idle("enactor-a", EP)
    before = w.zones[EP].zone.fingerprint()
    w.publish(p.InvalidPlan("plans/us-east-1/0000000002.json", "sha256 mismatch"))
    m = w.machines[("enactor-a", EP)]
    for _ in range(6):
        w.step("enactor-a", EP)
    assert events(m).count("plan_rejected") == 1
    assert w.zones[EP].zone.fingerprint() == before
    w.publish(make_plan(3, [endpoint_plan(EP, 3)]))
    w.run_idle("enactor-a", EP)
    assert w.view(EP).active_version == 3


def test_an_endpoint_without_load_balancers_is_rejected():
    w = world("enactor-a")
    w.publish(make_plan(1, [endpoint_plan(EP, 2)]))
    w.run_idle("enactor-a", EP)
    w.publish(make_plan(2, [endpoint_plan(EP, 0)]))
    m = w.machines[("enactor-a", EP)]
    w.step("enactor-a", EP)
    w.step("enactor-a", EP)
    assert events(m)[-1] == "plan_rejected" and polling(m)
    assert w.view(EP).active_version == 1


def test_frozen_mid_unit_applies_nothing_more_and_resumes_after():
    w = world("enactor-a")
    w.publish(make_plan(1, [endpoint_plan(EP, 300)]))
    w.run_until("enactor-a", EP, lambda m: isinstance(m.request, p.SubmitBatch))
    w.step("enactor-a", EP)
    w.frozen = "operator: investigating"
    count = len(w.submitted)
    for _ in range(5):
        w.step("enactor-a", EP)
    m = w.machines[("enactor-a", EP)]
    assert len(w.submitted) == count and events(m).count("frozen") == 1
    assert not w.view(EP).roots  # the half-built tree is behind nothing
    w.frozen = None
    w.run_idle("enactor-a", EP)
    assert "unfrozen" in events(m) and w.view(EP).active_version == 1


def test_a_lost_submit_lists_again_before_deciding():
    w = world("enactor-a")
    w.publish(make_plan(1, [endpoint_plan(EP, 2)]))
    m = w.run_until("enactor-a", EP, lambda m: isinstance(m.request, p.SubmitBatch) and m.request.purpose == "flip")
    # The flip is applied but its answer is lost on the way back.
    w.observe("enactor-a", EP)
    w.step("enactor-a", EP, p.RequestFailed("read timeout", w.now))
    assert isinstance(m.request, p.Sleep) and m.request.reason == "request_failed"
    w.run_idle("enactor-a", EP)
    assert "up_to_date" in events(m) and w.view(EP).active_version == 1
    assert [b.purpose for b in batches(w)] == ["build", "flip"]


def test_the_flip_waits_for_the_tree_to_be_insync():
    w = world("enactor-a")
    w.publish(make_plan(1, [endpoint_plan(EP, 2)]))
    m = w.run_until("enactor-a", EP, lambda m: isinstance(m.request, p.AwaitInsync))
    assert m.request.change_ids == ("C1",)
    w.step("enactor-a", EP, p.Insync(False, w.now))
    assert events(m)[-2:] == ["flip_deferred", "backoff"] and not w.view(EP).roots
    w.run_until("enactor-a", EP, lambda m: isinstance(m.request, p.AwaitInsync))
    assert m.request.change_ids == ("C1",)  # the tree's batches are still owed their INSYNC
    w.run_idle("enactor-a", EP)
    assert w.view(EP).active_version == 1


def test_guarded_cleanup_keeps_active_rollback_and_recent_trees():
    w = world("enactor-a", keep_plans=2)
    for v in range(1, 8):
        w.publish(make_plan(v, [endpoint_plan(EP, 2, weight=lambda i, v=v: v * 3 + i)]))
        w.run_idle("enactor-a", EP)
    view = w.view(EP)
    assert sorted(t.version for t in view.trees) == [5, 6, 7]
    assert view.tree(view.rollback_targets()["A"]).version == 6
    # Every leaf left is used by a remaining tree.
    used = set().union(*(t.leaves for t in view.trees))
    assert {r.name for r in view.leaves} == used


def test_legacy_checks_freshness_once_guarded_after_every_listing():
    for guard in (False, True):
        w = world("enactor-a", "enactor-c", guard=guard)
        w.publish(make_plan(1, [endpoint_plan(EP, 2)]))
        w.run_until("enactor-a", EP, lambda m: isinstance(m.request, p.SubmitBatch))
        w.step("enactor-a", EP)
        w.run_until("enactor-c", EP, lambda m: isinstance(m.request, p.Sleep))  # lost the lock
        w.run_idle("enactor-a", EP)
        w.publish(make_plan(2, [endpoint_plan(EP, 2, weight=lambda i: 50)]))
        w.run_idle("enactor-a", EP)
        w.now += 5
        c = w.run_idle("enactor-c", EP)
        flipped = [n.get("plan_version") for n in c.notes if n.event == "flipped"]
        if guard:
            assert flipped == [] and "refused_stale" in events(c)
            assert w.view(EP).active_version == 2
        else:
            # The stale plan 1 went in over 2 (its check was made before the backoff); the next
            # poll brings 2 back.
            assert flipped == [1, 2]
            assert [n.get("from_tree") for n in c.notes if n.event == "flipped"][0] is not None


def test_wrong_observation_is_a_caller_bug():
    s = p.CoreSettings("enactor-a")
    state, req = p.start(EP, "/hostedzone/Z1")
    assert state.zone_id == "Z1" and isinstance(req, p.ReadNewestPlan)
    with pytest.raises(p.ProtocolError):
        p.step(s, state, p.Woke(0.0))


@pytest.mark.parametrize("bad", [dict(enactor_id="a b"), dict(enactor_id=""), dict(enactor_id="x", keep_plans=0),
                                 dict(enactor_id="x", backoff_base_s=2, backoff_cap_s=1)])
def test_settings_refuse_nonsense(bad):
    with pytest.raises(ValueError):
        p.CoreSettings(**bad)


def test_meta_pages_read_back_as_one_record():
    members = tuple(layout.MetaMember(f"lb-{i}", "use1-az1", i % 256, f"leaf-lb-{i}-abc.{EP}") for i in range(250))
    meta = layout.TreeMeta(7, "2025-10-20T06:48:00+00:00", members, 1, ("A",))
    pages = meta.render_paged(100, 8000)
    assert len(pages) == 3
    back = layout.TreeMeta.parse(tuple(v for page in pages for v in page))
    assert back.pages == 3 and back.members == tuple(sorted(members, key=lambda m: m.lb_id)) and back.plan_version == 7
    long_text = "x" * 600
    assert layout.unquote_txt(layout.quote_txt(long_text)) == long_text
