"""Properties of the protocol core for any sequence of observations.

The machine under test is fed whatever hypothesis chooses among the observations that answer its
outstanding request: faithful results from a real change engine, but also failures, rejections,
the kill switch, invalid plans, and a zone that other writers (and garbage) change between any
two steps. Whatever happens:
- every batch starts with the lock preamble on the lock record as last seen;
- no batch exceeds Route 53's limits (counted here and by the engine);
- with the guard on, no flip goes to a version at or below the applied version it listed, and no
  clean-up deletes a record of the active, rollback or applied tree.
A second property runs three guarded machines and a publishing planner in any interleaving and
checks the system invariants on the zone after every step.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enactor import layout
from enactor import protocol as p
from services.route53.engine import DEFAULT_LIMITS, InvalidChangeBatch, Route53Error, apply_batch
from services.route53.records import AliasTarget, Change, RecordSet
from tests.enactor.world import World, answers, endpoint_plan, make_plan

EP = "svc.example.com."


def _plans(sizes: list[int]) -> list:
    return [make_plan(v, [endpoint_plan(EP, n, types=("A", "AAAA") if v % 2 else ("A",), weight=lambda i, v=v: (i * v) % 256)])
            for v, n in enumerate(sizes, start=1)]


def _garbage(data, w: World) -> None:
    """Another writer (or damage) changes the zone between two steps of the machine under test."""
    zone = w.zones[EP]
    records = [r for r in zone.zone if r.type not in ("SOA", "NS")]
    kind = data.draw(st.sampled_from(["lock", "lock_garbage", "applied", "delete", "root", "nothing"]))
    changes: list[Change] = []
    lock = zone.zone.get(layout.lock_name(EP), "TXT")
    applied = zone.zone.get(layout.applied_name(EP), "TXT")
    if kind in ("lock", "lock_garbage"):
        if kind == "lock":
            holder = data.draw(st.sampled_from(["enactor-x", "enactor-y", "enactor-a"]))
            expires = int(w.now) + data.draw(st.integers(-100, 100))
            value = layout.LockValue(holder, expires, data.draw(st.integers(0, 10**6))).render()
        else:
            value = '"' + data.draw(st.text("abc= 0123", max_size=30)) + '"'
        changes = ([Change("DELETE", lock)] if lock else []) + [Change("CREATE", RecordSet(layout.lock_name(EP), "TXT", ttl=60, values=(value,)))]
    elif kind == "applied":
        value = layout.AppliedValue(data.draw(st.integers(0, 12)), data.draw(st.sampled_from(["t-0", "t-abc"]))).render()
        changes = ([Change("DELETE", applied)] if applied else []) + [Change("CREATE", RecordSet(layout.applied_name(EP), "TXT", ttl=60, values=(value,)))]
    elif kind == "delete" and records:
        changes = [Change("DELETE", data.draw(st.sampled_from(records)))]
    elif kind == "root":
        trees = [t.tree_id for t in layout.read_endpoint(EP, zone.zone).trees]
        if trees:
            target = layout.tree_name(EP, data.draw(st.sampled_from(trees)))
            changes = [Change("UPSERT", RecordSet(EP, "A", alias=AliasTarget(target, zone.zone.zone_id)))]
    if changes:
        try:
            w.zones[EP] = apply_batch(zone, changes)
        except Route53Error:
            pass


def _check_batch(s: p.CoreSettings, before: p.EndpointState, batch: p.SubmitBatch, listed: layout.EndpointZone | None) -> None:
    lock_name = layout.lock_name(EP)
    ch = batch.changes
    if before.lock is not None:
        assert ch[0] == Change("DELETE", before.lock)
        first = ch[1]
    else:
        first = ch[0]
    assert first.action == "CREATE" and first.record.name == lock_name
    value = layout.LockValue.parse(first.record.values[0])
    assert value is not None and value.holder == s.enactor_id
    assert sum(1 for c in ch if c.record.name == lock_name) == (2 if before.lock is not None else 1)
    n, chars = p.batch_size(ch)
    assert n <= DEFAULT_LIMITS.max_records_per_batch and chars <= DEFAULT_LIMITS.max_value_chars_per_batch
    try:  # the engine counts independently: a size problem shows before any zone rule
        apply_batch(World((EP,)).zones[EP], ch)
    except InvalidChangeBatch as exc:
        assert not any("limit" in m for m in exc.messages), exc.messages
    except Route53Error:
        pass
    if s.version_guard and listed is not None:
        applied_seen = listed.applied_version() or 0
        if batch.purpose in ("flip", "heal"):
            # A heal (version >= applied) only for a root that dangles or lost a type the plan serves.
            served = {c.record.type for c in ch if c.action == "UPSERT" and c.record.name == layout.root_name(EP)}
            unserved = applied_seen > 0 and any(rt not in listed.root_targets() for rt in served)
            assert batch.plan_version > applied_seen or (
                batch.purpose == "heal" and batch.plan_version >= applied_seen and (listed.dangling or unserved))
            created = [c for c in ch if c.action == "CREATE" and c.record.name == layout.applied_name(EP)]
            assert len(created) == 1 and layout.AppliedValue.parse(created[0].record.values[0]).version == batch.plan_version
        if batch.purpose == "cleanup":
            keep = {t for t in (*listed.root_targets().values(), *listed.rollback_targets().values()) if t}
            if listed.applied_value:
                keep.add(listed.applied_value.tree_id)
            for c in ch:
                if c.action == "DELETE":
                    assert layout.role_of(c.record.name, EP)[1] not in keep


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), guard=st.booleans(), sizes=st.lists(st.sampled_from([1, 2, 5, 120, 260]), min_size=1, max_size=4))
def test_any_observation_sequence(data, guard, sizes):
    s = p.CoreSettings("enactor-a", version_guard=guard, keep_plans=1, lock_ttl_s=30)
    w = World((EP,))
    plans = _plans(sizes)
    w.add_enactor(s)
    m = w.machines[("enactor-a", EP)]
    listed: layout.EndpointZone | None = None
    for _ in range(data.draw(st.integers(10, 80))):
        if data.draw(st.integers(0, 3)) == 0:
            _garbage(data, w)
        w.now += data.draw(st.sampled_from([0, 1, 5, 40]))
        req = m.request
        twist = data.draw(st.integers(0, 9))
        if twist == 0:
            obs = p.Frozen("test", w.now) if data.draw(st.booleans()) else None
            if obs is None and not isinstance(req, p.Sleep):
                obs = p.RequestFailed("boom", w.now)
        else:
            obs = None
        if obs is None and isinstance(req, p.ReadNewestPlan):
            choice = data.draw(st.integers(0, len(plans) + 1))
            if choice == 0:
                obs = p.PlanRead(None)
            elif choice == len(plans) + 1:
                obs = p.PlanRead(None, p.InvalidPlan("plans/x.json", "sha256 mismatch"))
            else:
                obs = p.PlanRead(plans[choice - 1])
        elif obs is None and isinstance(req, p.SubmitBatch):
            _check_batch(s, m.state, req, listed)
            if twist == 1:
                obs = p.BatchRejected(("Rate exceeded",), "Throttling", w.now)
        elif obs is None and isinstance(req, p.AwaitInsync):
            obs = p.Insync(twist != 2, w.now)
        if obs is None:
            obs = w.observe("enactor-a", EP)
        if isinstance(obs, p.RecordsListed):
            listed = layout.read_endpoint(EP, obs.records)
        elif isinstance(obs, p.RecordsRead) and m.state.phase is p.Phase.READ and m.state.read == "heads":
            # A unit's first read: the whole zone when it fits one page, else the heads it decides on.
            listed = layout.read_endpoint(EP, obs.records, heads_only=len(obs.records) >= p.HEADS_PAGE)
        w.step("enactor-a", EP, obs)
        assert hash(m.state) is not None
        assert p.request_of(m.state) == m.request


def _invariants(w: World, seen: dict) -> None:
    view = w.view(EP)
    if view.roots:
        assert not view.dangling, "a root points at a missing or incomplete tree"
        assert answers(w, EP), "the endpoint answers nothing"
    applied = view.applied_value.version if view.applied_value else 0
    assert applied >= seen.get("applied", 0), "the applied version went down"
    seen["applied"] = applied
    active = view.active_version or 0
    assert active == applied, "the root serves another version than the applied record says"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_guarded_system_invariants_in_any_interleaving(data):
    s = [p.CoreSettings(f"enactor-{x}", version_guard=True, keep_plans=1, lock_ttl_s=20) for x in "abc"]
    w = World((EP,))
    for x in s:
        w.add_enactor(x)
    plans = _plans([2, 3, 1, 4, 2, 3, 2, 1])
    published = 0
    seen: dict = {}
    for _ in range(data.draw(st.integers(20, 200))):
        action = data.draw(st.integers(0, 6))
        if action == 0 and published < len(plans):
            w.publish(plans[published])
            published += 1
        elif action == 1:
            w.now += data.draw(st.sampled_from([1, 10, 30]))
        else:
            who = data.draw(st.sampled_from(s)).enactor_id
            w.step(who, EP)
        _invariants(w, seen)
    # Progress: once the planner stops and time passes, the newest plan is applied.
    for _ in range(400):
        w.now += 1
        for x in s:
            w.step(x.enactor_id, EP)
        _invariants(w, seen)
    if published:
        assert w.view(EP).applied_value.version == published
