"""Endpoint zones built by hand in Route 53, following enactor/layout.py, for the data-plane tests.

The DNS tests do not wait for the enactor: they create a zone, leaves, a weighted tree (with
interior levels when the fan-out is small), its metadata record and the root alias themselves,
then flip the root, delete a tree to make the root dangle, and repair it, with plain boto3 calls.
The benchmark uses the same builder.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import Any

from enactor import layout
from services.route53.records import AliasTarget, Change, ChangeBatch, RecordSet


@dataclass(frozen=True)
class Lb:
    lb_id: str
    weight: int
    ipv4: tuple[str, ...] = ()
    ipv6: tuple[str, ...] = ()
    az: str = "use1-az1"


class HandZone:
    """One endpoint's hosted zone, changed through ChangeResourceRecordSets like the enactor does."""

    def __init__(self, client: Any, endpoint: str):
        self.client = client
        self.endpoint = layout.root_name(endpoint)
        created = client.create_hosted_zone(Name=self.endpoint, CallerReference=uuid.uuid4().hex)
        self.zone_id = created["HostedZone"]["Id"].rsplit("/", 1)[-1]
        self.trees: dict[str, list[RecordSet]] = {}
        self.tree_versions: dict[str, int] = {}
        self.active: str | None = None

    def apply(self, *changes: Change) -> None:
        self.client.change_resource_record_sets(HostedZoneId=self.zone_id, ChangeBatch=ChangeBatch(tuple(changes)).to_boto())

    def _alias(self, name: str, rtype: str, target: str, set_id: str | None = None, weight: int | None = None) -> RecordSet:
        return RecordSet(name, rtype, alias=AliasTarget(target, self.zone_id), set_identifier=set_id, weight=weight)

    def set_soa_minimum(self, minimum: int, ttl: int) -> None:
        """Make the negative-caching TTL short enough for a test: min(SOA TTL, MINIMUM)."""
        soa = next(
            r for r in self.client.list_resource_record_sets(HostedZoneId=self.zone_id)["ResourceRecordSets"]
            if r["Type"] == "SOA"
        )
        fields = soa["ResourceRecords"][0]["Value"].split()
        fields[6] = str(minimum)
        self.apply(Change("UPSERT", RecordSet(self.endpoint, "SOA", ttl=ttl, values=(" ".join(fields),))))

    def build_tree(self, version: int, lbs: list[Lb], types: tuple[str, ...] = ("A", "AAAA"), fanout: int = 100,
                   leaf_ttl: int = layout.LEAF_TTL) -> str:
        """Leaves, then the weighted tree (interior levels above `fanout` members), then its metadata."""
        tree_id = f"{layout.TREE_PREFIX}{uuid.uuid4().hex}"
        leaves, tree, meta = tree_records(self.endpoint, self.zone_id, tree_id, version, lbs, types, fanout, leaf_ttl)
        self.apply(*(Change("UPSERT", r) for r in leaves))
        # Interior levels first (they are listed bottom up), so every alias's target exists.
        for k in range(0, len(tree), 100):
            self.apply(*(Change("CREATE", r) for r in tree[k : k + 100]))
        self.apply(Change("CREATE", meta))
        self.trees[tree_id] = tree + [meta]
        self.tree_versions[tree_id] = version
        return tree_id

    def flip(self, tree_id: str, types: tuple[str, ...] = ("A", "AAAA")) -> None:
        """Point the root at a tree and the rollback record at the tree that was active."""
        changes = [Change("UPSERT", self._alias(self.endpoint, t, layout.tree_name(self.endpoint, tree_id))) for t in types]
        if self.active is not None and self.active in self.trees:
            target = layout.tree_name(self.endpoint, self.active)
            changes += [Change("UPSERT", self._alias(layout.rollback_name(self.endpoint), t, target)) for t in types]
        self.apply(*changes)
        self.active = tree_id

    def delete_tree(self, tree_id: str) -> None:
        """The clean-up's deletion, top first so no alias is left without its target in between."""
        records = self.trees.pop(tree_id)
        self.apply(*(Change("DELETE", r) for r in reversed(records)))

    def write_lock(self, holder: str, expires: int, counter: int = 1) -> None:
        value = layout.LockValue(holder, expires, counter).render()
        self.apply(Change("UPSERT", RecordSet(layout.lock_name(self.endpoint), "TXT", ttl=layout.TXT_TTL, values=(value,))))


def tree_records(
    endpoint: str,
    zone_id: str,
    tree_id: str,
    version: int,
    lbs: list[Lb],
    types: tuple[str, ...] = ("A", "AAAA"),
    fanout: int = 100,
    leaf_ttl: int = layout.LEAF_TTL,
) -> tuple[list[RecordSet], list[RecordSet], RecordSet]:
    """(leaf records, tree records bottom level first, metadata record) of one tree, as layout.py says."""
    endpoint = layout.root_name(endpoint)
    top = layout.tree_name(endpoint, tree_id)

    def alias(name: str, rtype: str, target: str, set_id: str, weight: int) -> RecordSet:
        return RecordSet(name, rtype, alias=AliasTarget(target, zone_id), set_identifier=set_id, weight=weight)

    leaves: dict[str, str] = {}
    leaf_records: list[RecordSet] = []
    for lb in lbs:
        leaf = layout.leaf_name(endpoint, lb.lb_id, lb.ipv4 + lb.ipv6)
        leaves[lb.lb_id] = leaf
        for rtype, values in (("A", lb.ipv4), ("AAAA", lb.ipv6)):
            if rtype in types and values:
                leaf_records.append(RecordSet(leaf, rtype, ttl=leaf_ttl, values=values))
    tree: list[RecordSet] = []
    for rtype in types:
        # Bottom up: groups of at most `fanout` members, each group an interior weighted set.
        level = [(lb.lb_id, lb.weight, leaves[lb.lb_id]) for lb in lbs]
        depth = 0
        while len(level) > fanout:
            next_level = []
            for k in range(0, len(level), fanout):
                group = level[k : k + fanout]
                name = f"{layout.INTERIOR_PREFIX}{tree_id[2:]}-{depth}-{k // fanout}.{endpoint}"
                tree += [alias(name, rtype, target, set_id, w) for set_id, w, target in group]
                next_level.append((f"i{depth}-{k // fanout}", sum(w for _, w, _ in group), name))
            level = next_level
            depth += 1
        tree += [alias(top, rtype, target, set_id, w) for set_id, w, target in level]
    meta = layout.TreeMeta(
        plan_version=version,
        created_at="2025-10-20T06:48:00Z",
        members=tuple(layout.MetaMember(lb.lb_id, lb.az, lb.weight, leaves[lb.lb_id]) for lb in lbs),
    )
    meta_record = RecordSet(layout.meta_name(endpoint, tree_id), "TXT", ttl=layout.TXT_TTL, values=meta.render_values())
    return leaf_records, tree, meta_record


def a_fleet(n: int, weights: list[int] | None = None, salt: int = 0) -> list[Lb]:
    """n load balancers with distinct IPv4/IPv6 addresses (two each) and the given weights."""
    weights = weights or [1 + i for i in range(n)]
    return [
        Lb(
            lb_id=f"lb-{i}",
            weight=weights[i],
            ipv4=(f"10.{salt}.{i}.1", f"10.{salt}.{i}.2"),
            # Canonical text, as DNS tools print addresses.
            ipv6=(str(IPv6Address(f"2600:1f18:{salt:x}:{i:x}::1")), str(IPv6Address(f"2600:1f18:{salt:x}:{i:x}::2"))),
            az=f"use1-az{1 + i % 3}",
        )
        for i in range(n)
    ]
