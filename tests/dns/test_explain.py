"""Explaining an endpoint in human terms from its records alone (explain.py is pure)."""

from __future__ import annotations

import pytest

from enactor import layout
from services.dns.explain import endpoint_view, endpoint_views, is_endpoint_zone, view_to_json
from services.dns.snapshot import Snapshot
from services.route53.records import AliasTarget, RecordSet, Zone
from tests.dns.trees import a_fleet, tree_records

EP = "dynamodb.us-east-1.api.aws."
ZID = "ZEXPLAIN"


def build(trees: dict[str, tuple[int, int]], root: str | None, rollback: str | None = None, paged: bool = False) -> Snapshot:
    records = [RecordSet(EP, "SOA", ttl=900, values=("ns. host. 1 2 3 4 60",))]
    for tree_id, (version, n) in trees.items():
        leaves, tree, meta = tree_records(EP, ZID, tree_id, version, a_fleet(n, salt=version % 200), ("A", "AAAA"), fanout=3)
        records += leaves + tree
        if paged:
            parsed = layout.TreeMeta.parse(meta.values)
            pages = parsed.render_paged(per_page=2, max_chars=4000)
            records += [RecordSet(layout.meta_page_name(EP, tree_id, k), "TXT", ttl=60, values=v) for k, v in enumerate(pages)]
        else:
            records.append(meta)
    for name, target in ((EP, root), (layout.rollback_name(EP), rollback)):
        if target:
            records += [RecordSet(name, t, alias=AliasTarget(f"{target}.{EP}", ZID)) for t in ("A", "AAAA")]
    records.append(RecordSet(layout.lock_name(EP), "TXT", ttl=60, values=(layout.LockValue("enactor-c", 99, 4).render(),)))
    return Snapshot.of([Zone.of(EP, records, zone_id=ZID)])


@pytest.mark.parametrize("paged", [False, True])
def test_root_tree_plan_and_every_lb_with_its_share_through_interior_levels(paged: bool) -> None:
    snap = build({"t-new": (146, 7), "t-old": (145, 2)}, root="t-new", rollback="t-old", paged=paged)
    (view,) = endpoint_views(snap)
    assert view.active.tree_id == "t-new" and view.active_version == 146 and view.active.complete
    weights = {lb.lb_id: lb.weight for lb in a_fleet(7, salt=146)}
    total = sum(weights.values())
    assert {s.lb_id: s.weight for s in view.active.lbs} == weights
    for share in view.active.lbs:
        assert share.share == pytest.approx(weights[share.lb_id] / total)
        assert len(share.addresses) == 2 and not share.missing
    assert view.rollback_tree.tree_id == "t-old" and view.rollback_tree.plan_version == 145
    assert view.lock.holder == "enactor-c" and view.dangling == ()
    doc = view_to_json(view)
    assert doc["active_tree"]["plan_version"] == 146 and len(doc["active_tree"]["load_balancers"]) == 7


def test_dangling_root_names_the_missing_tree_and_keeps_the_rollback() -> None:
    snap = build({"t-old": (110, 2)}, root="t-gone", rollback="t-old")
    view = endpoint_view(snap, snap.zones[EP])
    assert [a.tree_id for a in view.dangling] == ["t-gone", "t-gone"]
    assert view.active.exists is False and view.active_version is None
    assert view_to_json(view)["dangling"] == [f"t-gone.{EP}"] * 2


def test_a_zone_without_root_lock_or_applied_is_not_an_endpoint() -> None:
    plain = Snapshot.of([Zone.of("example.com.", [RecordSet("www.example.com.", "A", ttl=5, values=("1.2.3.4",))])])
    assert not is_endpoint_zone(plain.zones["example.com."]) and endpoint_views(plain) == []
