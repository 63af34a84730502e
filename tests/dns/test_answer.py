"""Route 53's answering rules, on snapshots built in memory (answer.py is pure)."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.dns.answer import Rcode, choose, leaf_distribution, resolve
from services.dns.snapshot import ServedZone, Snapshot
from services.route53.records import AliasTarget, RecordSet, Zone
from tests.dns.trees import Lb, a_fleet, tree_records

EP = "dynamodb.us-east-1.api.aws."
ZID = "Z0TEST"
SOA = RecordSet(EP, "SOA", ttl=900, values=("ns-2048.awsdns-64.com. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 60",))


class Fixed:
    """A random source that returns the given values in turn."""

    def __init__(self, *values: float):
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0)


def snapshot_with(*records: RecordSet, zone: str = EP) -> Snapshot:
    return Snapshot.of([Zone.of(zone, [SOA, *records], zone_id=ZID)])


def endpoint_with_tree(lbs: list[Lb], types=("A", "AAAA"), fanout: int = 100, leaf_ttl: int = 60):
    leaves, tree, meta = tree_records(EP, ZID, "t-aaaa", 7, lbs, types, fanout, leaf_ttl)
    roots = [RecordSet(EP, t, alias=AliasTarget(f"t-aaaa.{EP}", ZID)) for t in types]
    return snapshot_with(*leaves, *tree, meta, *roots), leaves


def test_alias_follows_tree_to_a_leaf_and_takes_its_ttl() -> None:
    lbs = [Lb("lb-a", 1, ("10.0.0.1", "10.0.0.2"), ("2600::1",))]
    snap, _ = endpoint_with_tree(lbs, leaf_ttl=42)
    ans = resolve(snap, "DynamoDB.us-east-1.api.aws", "A", random.Random(1))
    assert ans.rcode is Rcode.NOERROR and ans.authoritative
    assert sorted(r.value for r in ans.answers) == ["10.0.0.1", "10.0.0.2"]
    assert {(r.name, r.type, r.ttl) for r in ans.answers} == {(EP, "A", 42)}
    assert ans.authority == ()
    aaaa = resolve(snap, EP, "AAAA", random.Random(1))
    assert [r.value for r in aaaa.answers] == ["2600::1"]


def test_a_and_aaaa_kept_apart_ipv4_only_name_gets_nodata_with_soa() -> None:
    snap, _ = endpoint_with_tree([Lb("lb-a", 1, ("10.0.0.1",))], types=("A",))
    ans = resolve(snap, EP, "AAAA", random.Random(0))
    assert ans.rcode is Rcode.NOERROR and ans.answers == ()
    assert [r.type for r in ans.authority] == ["SOA"]


def test_dangling_root_gives_noerror_zero_answers_and_soa_with_negative_ttl() -> None:
    root = RecordSet(EP, "A", alias=AliasTarget(f"t-gone.{EP}", ZID))
    ans = resolve(snapshot_with(root), EP, "A", random.Random(0))
    assert ans.rcode is Rcode.NOERROR and ans.answers == ()
    assert ans.dangling
    (soa,) = ans.authority
    assert soa.type == "SOA" and soa.name == EP
    assert soa.ttl == 60  # min(SOA TTL 900, MINIMUM 60)


def test_tree_member_pointing_at_missing_leaf_is_nodata_when_chosen() -> None:
    tree = [
        RecordSet(f"t-x.{EP}", "A", alias=AliasTarget(f"leaf-ok.{EP}", ZID), set_identifier="ok", weight=1),
        RecordSet(f"t-x.{EP}", "A", alias=AliasTarget(f"leaf-gone.{EP}", ZID), set_identifier="gone", weight=1),
    ]
    leaf = RecordSet(f"leaf-ok.{EP}", "A", ttl=60, values=("10.1.1.1",))
    snap = snapshot_with(RecordSet(EP, "A", alias=AliasTarget(f"t-x.{EP}", ZID)), *tree, leaf)
    # Members are ordered by SetIdentifier: "gone" takes [0, 0.5), "ok" [0.5, 1).
    gone = resolve(snap, EP, "A", Fixed(0.1))
    assert gone.rcode is Rcode.NOERROR and gone.answers == () and gone.dangling
    assert [r.value for r in resolve(snap, EP, "A", Fixed(0.6)).answers] == ["10.1.1.1"]


def test_nxdomain_with_soa_and_empty_nonterminal_is_nodata() -> None:
    snap, _ = endpoint_with_tree(a_fleet(2))
    nx = resolve(snap, f"nope.{EP}", "A", random.Random(0))
    assert nx.rcode is Rcode.NXDOMAIN and nx.answers == () and nx.authority[0].type == "SOA"
    # _meta.t-aaaa.<ep> exists, so t-aaaa.<ep> exists, and "_meta" alone under the tree is fine;
    # a label between the apex and a deeper name is an empty non-terminal.
    deep = snapshot_with(RecordSet(f"a.b.{EP}", "A", ttl=5, values=("10.0.0.9",)))
    ent = resolve(deep, f"b.{EP}", "A", random.Random(0))
    assert ent.rcode is Rcode.NOERROR and ent.answers == () and ent.authority[0].type == "SOA"


def test_refused_outside_served_zones_and_longest_zone_wins() -> None:
    snap = Snapshot.of(
        [
            Zone.of("api.aws.", [RecordSet("x.dynamodb.us-east-1.api.aws.", "A", ttl=5, values=("10.9.9.9",))]),
            Zone.of(EP, [SOA, RecordSet(f"x.{EP}", "A", ttl=5, values=("10.0.0.1",))], zone_id=ZID),
        ]
    )
    assert resolve(snap, "example.com", "A", random.Random(0)).rcode is Rcode.REFUSED
    assert not resolve(snap, "aws.", "A", random.Random(0)).authoritative
    assert [r.value for r in resolve(snap, f"x.{EP}", "A", random.Random(0)).answers] == ["10.0.0.1"]


def test_weight_zero_never_unless_all_zero() -> None:
    members = [
        RecordSet("w.", "A", values=("1.1.1.1",), set_identifier="a", weight=0),
        RecordSet("w.", "A", values=("2.2.2.2",), set_identifier="b", weight=3),
    ]
    rng = random.Random(7)
    assert {choose(members, rng).set_identifier for _ in range(2000)} == {"b"}
    zeros = [RecordSet("w.", "A", values=(str(i),), set_identifier=str(i), weight=0) for i in range(4)]
    seen = Counter(choose(zeros, rng).set_identifier for _ in range(4000))
    assert set(seen) == {"0", "1", "2", "3"}
    assert min(seen.values()) > 800


@settings(max_examples=60, deadline=None)
@given(
    weights=st.lists(st.integers(min_value=0, max_value=255), min_size=1, max_size=40),
    fanout=st.integers(min_value=2, max_value=100),
)
def test_tree_shares_equal_weight_shares_at_any_depth(weights: list[int], fanout: int) -> None:
    """Interior levels keep every load balancer's share: the exact distribution of answers."""
    lbs = a_fleet(len(weights), weights)
    snap, _ = endpoint_with_tree(lbs, types=("A",), fanout=fanout)
    leaves = leaf_distribution(snap, EP, "A")
    total = sum(weights)
    by_lb = Counter()
    for leaf in leaves:
        assert not leaf.missing
        by_lb[leaf.via[-1]] += leaf.probability
    for lb in lbs:
        expected = (lb.weight / total) if total else (1 / len(lbs) if fanout >= len(lbs) else None)
        if expected is None:
            continue  # all zero across levels: uniform per level, not overall
        assert by_lb[lb.lb_id] == pytest.approx(expected, abs=1e-9)
    assert sum(leaf.probability for leaf in leaves) == pytest.approx(1.0)


@settings(max_examples=40, deadline=None)
@given(
    qname=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._*", min_size=1, max_size=60),
    qtype=st.sampled_from(["A", "AAAA", "TXT", "NS", "SOA", "CNAME", "MX", "ANY", "TYPE65280"]),
)
def test_resolve_never_raises_and_negative_answers_carry_soa(qname: str, qtype: str) -> None:
    snap, _ = endpoint_with_tree(a_fleet(3), fanout=2)
    for name in (qname, f"{qname}.{EP}"):
        ans = resolve(snap, name, qtype, random.Random(0))
        if ans.rcode is Rcode.NXDOMAIN or (ans.rcode is Rcode.NOERROR and not ans.answers and ans.authoritative):
            assert ans.authority and ans.authority[0].type == "SOA"


def test_cname_followed_inside_zone_and_wildcard_synthesised() -> None:
    snap = snapshot_with(
        RecordSet(f"www.{EP}", "CNAME", ttl=30, values=(f"host.{EP}",)),
        RecordSet(f"host.{EP}", "A", ttl=20, values=("10.2.2.2",)),
        RecordSet(f"*.wild.{EP}", "A", ttl=10, values=("10.3.3.3",)),
    )
    ans = resolve(snap, f"www.{EP}", "A", random.Random(0))
    assert [(r.type, r.value) for r in ans.answers] == [("CNAME", f"host.{EP}"), ("A", "10.2.2.2")]
    wild = resolve(snap, f"x.y.wild.{EP}", "A", random.Random(0))
    assert [(r.name, r.value) for r in wild.answers] == [(f"x.y.wild.{EP}", "10.3.3.3")]
    # A name that exists (here as an empty non-terminal) is never answered by a wildcard.
    deeper = snapshot_with(
        RecordSet(f"*.w.{EP}", "A", ttl=10, values=("10.3.3.3",)),
        RecordSet(f"a.b.w.{EP}", "A", ttl=10, values=("10.4.4.4",)),
    )
    ent = resolve(deeper, f"b.w.{EP}", "A", random.Random(0))
    assert ent.rcode is Rcode.NOERROR and ent.answers == ()
    assert [r.value for r in resolve(deeper, f"c.w.{EP}", "A", random.Random(0)).answers] == ["10.3.3.3"]


def test_alias_loop_is_servfail_not_a_hang() -> None:
    snap = snapshot_with(
        RecordSet(f"a.{EP}", "A", alias=AliasTarget(f"b.{EP}", ZID)),
        RecordSet(f"b.{EP}", "A", alias=AliasTarget(f"a.{EP}", ZID)),
    )
    assert resolve(snap, f"a.{EP}", "A", random.Random(0)).rcode is Rcode.SERVFAIL


def test_delegation_below_apex_is_a_referral() -> None:
    snap = snapshot_with(
        RecordSet(f"sub.{EP}", "NS", ttl=300, values=("ns1.example.net.",)),
        RecordSet(f"deep.sub.{EP}", "NS", ttl=300, values=("ns2.example.net.",)),
    )
    ans = resolve(snap, f"host.deep.sub.{EP}", "A", random.Random(0))
    assert ans.rcode is Rcode.NOERROR and not ans.authoritative
    assert [(r.name, r.type, r.value) for r in ans.authority] == [(f"sub.{EP}", "NS", "ns1.example.net.")]


def test_invalid_soa_falls_back_to_a_valid_default() -> None:
    bad = RecordSet(EP, "SOA", ttl=900, values=("{'Value': 'garbage'}",))
    zone = ServedZone.build(Zone.of(EP, [bad]))
    assert zone.soa is None and zone.soa_invalid
    assert len(zone.soa_value().split()) == 7
