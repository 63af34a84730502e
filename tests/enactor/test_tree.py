"""The shared, path-copied tree (enactor/tree.py): shape, sharing, and the worst-case share error."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from enactor import layout, tree
from enactor import protocol as p
from services.dns.answer import leaf_distribution
from services.dns.snapshot import Snapshot
from services.route53.records import RecordSet, Zone
from tests.enactor.world import endpoint_plan

EP = "svc.example.com."
ZID = "Z1"
S = p.CoreSettings("e1")


def records_of(ep_plan, tree_id="t-aaaa", version=1):
    return p.tree_records(S, EP, ZID, ep_plan, p.TreeInHand(tree_id, version, 1_760_942_880))


@given(st.lists(st.integers(0, 30000), min_size=1, max_size=100))
def test_apportion_keeps_each_share_within_one_plus_raised_over_the_sum(totals):
    weights = tree.apportion(totals)
    assert all(0 <= w <= 255 for w in weights)
    assert all((w == 0) == (t == 0) for w, t in zip(weights, totals, strict=True))
    whole, seats = sum(totals), sum(weights)
    if whole == 0:
        return
    if max(totals) <= 255:
        assert weights == totals  # exact
        return
    raised = sum(1 for w, t in zip(weights, totals, strict=True) if w == 1 and t > 0)
    for w, t in zip(weights, totals, strict=True):
        assert abs(w / seats - t / whole) <= (1 + raised) / seats + 1e-12


def _snapshot(records) -> Snapshot:
    soa = RecordSet(EP, "SOA", ttl=900, values=("ns. h. 1 7200 900 1209600 86400",))
    return Snapshot.of([Zone.of(EP, [soa, *records], zone_id=ZID)])


def _path_bound(records, lb_key: str) -> float:
    """Sum over the scaled weighted sets on the LB's path of (1 + members raised to 1) / sum of weights."""
    by_name: dict[str, list] = {}
    for r in records:
        if r.type == "A":
            by_name.setdefault(r.name, []).append(r)
    parent = {m.alias.dns_name: name for name, ms in by_name.items() for m in ms if m.alias}
    node = next(n for n, ms in by_name.items() for m in ms if m.alias is None and m.set_identifier == lb_key)
    bound = 0.0
    while node in parent:
        siblings = by_name[parent[node]]
        if max(m.weight for m in siblings) == 255 and sum(m.weight for m in siblings) > 255:
            bound += (1 + sum(1 for m in siblings if m.weight == 1)) / sum(m.weight for m in siblings)
        node = parent[node]
    return bound


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 1500), st.lists(st.integers(0, 255), min_size=1, max_size=50), st.integers(2, 20))
def test_each_lb_share_along_its_path_is_within_the_stated_worst_case(n, weights, node_members):
    ep = endpoint_plan(EP, n, weight=lambda i: weights[i % len(weights)])
    s = replace(S, shape=tree.Shape(node_members=node_members, top_members=max(2, node_members)))
    records = p.tree_records(s, EP, ZID, ep, p.TreeInHand("t-aaaa", 1, 0))
    whole = sum(t.weight for t in ep.targets)
    if whole == 0:
        return
    got = {leaf.via[-1]: leaf.probability for leaf in leaf_distribution(_snapshot(records), layout.tree_name(EP, "t-aaaa"), "A")}
    for t in ep.targets:
        key = tree.set_identifier(t.lb_id, t.az)
        ideal = t.weight / whole
        assert abs(got.get(key, 0.0) - ideal) <= _path_bound(records, key) + 1e-9, (t.lb_id, got.get(key), ideal)


def test_a_one_lb_weight_change_writes_only_its_path():
    before = records_of(endpoint_plan(EP, 1000))
    after = records_of(endpoint_plan(EP, 1000, weight=lambda i: 99 if i == 500 else 10 + i % 7), "t-bbbb", 2)
    old = {(r.name, r.type, r.set_identifier, r.weight, r.alias, r.values) for r in before}
    new = [r for r in after if (r.name, r.type, r.set_identifier, r.weight, r.alias, r.values) not in old]
    assert len(new) <= 50, len(new)
    # An LB added in the middle changes only its neighbourhood, not every group after it.
    added = records_of(endpoint_plan(EP, 1001), "t-cccc", 3)
    assert len([r for r in added if (r.name, r.type, r.set_identifier, r.weight, r.alias, r.values) not in old]) <= 80


def test_tree_reads_back_whole_with_members_az_weight_and_addresses():
    ep = endpoint_plan(EP, 250, types=("A", "AAAA"))
    view = layout.read_endpoint(EP, records_of(ep))
    (t,) = view.trees
    assert t.complete and t.meta.lb_count == 250 and t.record_types == ("A", "AAAA")
    by_id = {m.lb_id: m for m in t.meta.members}
    for target in ep.targets:
        m = by_id[target.lb_id]
        assert (m.az, m.weight, m.ipv4, m.ipv6) == (target.az, target.weight, target.ipv4, target.ipv6)
    # Dropping one shared node makes the tree incomplete.
    node = next(r for r in view.leaves if r.alias is None)
    broken = layout.read_endpoint(EP, [r for r in records_of(ep) if r.name != node.name])
    assert not broken.trees[0].complete


def test_a_memoised_read_of_a_tuple_is_the_read_of_the_same_records_in_any_form():
    # read_endpoint memoises small tuples by value: the view must be what an unmemoised read of
    # the same records gives, whole zone or heads only, and a change to the records must show.
    ep = endpoint_plan(EP, 6, types=("A", "AAAA"))
    records = records_of(ep)
    assert len(records) <= layout.READ_MEMO_MAX_RECORDS
    for heads_only in (False, True):
        fresh = layout.read_endpoint(EP, list(records), heads_only=heads_only)  # a list: never memoised
        assert layout.read_endpoint(EP, tuple(records), heads_only=heads_only) == fresh
        assert layout.read_endpoint(EP, tuple(list(records)), heads_only=heads_only) == fresh  # an equal, distinct tuple
    meta = next(r for r in records if layout.role_of(r.name, EP)[0] == "meta")
    without_meta = tuple(r for r in records if r is not meta)
    assert layout.read_endpoint(EP, tuple(records)).trees[0].complete
    assert not layout.read_endpoint(EP, without_meta).trees[0].complete


def test_every_node_fits_route53s_weighted_limit_and_names_are_labels():
    for r in records_of(endpoint_plan(EP, 3000)):
        assert all(len(label) <= 63 for label in r.name.rstrip(".").split("."))
    counts: dict[tuple[str, str], int] = {}
    for r in records_of(endpoint_plan(EP, 3000)):
        if r.set_identifier is not None:
            counts[(r.name, r.type)] = counts.get((r.name, r.type), 0) + 1
    assert max(counts.values()) <= 100
