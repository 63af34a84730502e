"""An endpoint's DNS state in human terms, from Route 53 alone.

root alias -> tree (UUID) -> plan version -> load balancers and weights, plus the rollback
target, the lock and the applied-version record. The UUIDs slowed AWS's operators down on
20 October; every tree carries a metadata record, and enactor/layout.py sorts a zone's records
into those roles (read_endpoint); this module adds what DNS makes of them: whether each alias
target answers, and every load balancer's share found by walking the weighted sets. Used by `dnsctl resolve`, `dnsctl status`
and the prober's RootAliasDangling and StalePlanApplied alarms. Pure over a snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from enactor import layout
from services.dns.answer import WeightedLeaf, leaf_distribution
from services.dns.snapshot import ServedZone, Snapshot
from services.route53.records import RecordSet, normalise_name

ADDRESS_TYPES = ("A", "AAAA")


@dataclass(frozen=True, slots=True)
class AliasView:
    """Where an alias (root or rollback) points, for one record type."""

    record_type: str
    target: str | None  # None when the record is not an alias
    tree_id: str | None
    exists: bool  # the target has records of this type
    values: tuple[str, ...] = ()  # a non-alias record's values (e.g. a hand-made repair)


@dataclass(frozen=True, slots=True)
class LbShare:
    lb_id: str
    az: str
    weight: int | None  # from the tree's metadata
    share: float  # probability of being answered, from walking the tree's records
    leaf: str
    addresses: tuple[str, ...]
    missing: bool = False


@dataclass(frozen=True, slots=True)
class TreeView:
    tree_id: str
    name: str
    exists: bool
    meta: layout.TreeMeta | None
    lbs: tuple[LbShare, ...] = ()
    complete: bool = False  # layout.py's judgement: every metadata page and every member's leaf present

    @property
    def plan_version(self) -> int | None:
        return self.meta.plan_version if self.meta else None


@dataclass(frozen=True, slots=True)
class EndpointView:
    endpoint: str
    zone_id: str
    root: tuple[AliasView, ...]
    rollback: tuple[AliasView, ...]
    lock: layout.LockValue | None
    applied: layout.AppliedValue | None
    active: TreeView | None  # the tree the root's first alias points at
    rollback_tree: TreeView | None
    applied_fields: frozenset[str] = frozenset()  # every field name in the `_applied` record

    @property
    def record_types(self) -> tuple[str, ...]:
        return tuple(a.record_type for a in self.root)

    @property
    def dangling(self) -> tuple[AliasView, ...]:
        """Root aliases whose target does not exist (the cause of 20 October)."""
        return tuple(a for a in self.root if a.target is not None and not a.exists)

    @property
    def active_version(self) -> int | None:
        return self.active.plan_version if self.active and self.active.exists else None


def _alias_view(zone: ServedZone, endpoint: str, record: RecordSet) -> AliasView:
    if record.alias is None:
        return AliasView(record.type, None, None, True, record.values)
    target = record.alias.dns_name
    # Exists as DNS sees it: the target has records of this type (what the answer depends on).
    return AliasView(record.type, target, layout.tree_id_of(target, endpoint), record.type in zone.rrsets.get(target, {}))


def tree_view(snapshot: Snapshot, zone: ServedZone, layout_zone: layout.EndpointZone, alias: AliasView) -> TreeView | None:
    if alias.target is None:
        return None
    tree_id = alias.tree_id or alias.target
    in_zone = layout_zone.tree(alias.tree_id)
    meta = in_zone.meta if in_zone else None
    complete = bool(in_zone and in_zone.complete)
    if not alias.exists:
        return TreeView(tree_id, alias.target, False, meta, complete=complete)
    by_leaf = {normalise_name(m.leaf): m for m in meta.members} if meta else {}
    by_lb = {m.lb_id: m for m in meta.members} if meta else {}
    lbs = [_lb_share(leaf, by_leaf, by_lb) for leaf in leaf_distribution(snapshot, alias.target, alias.record_type)]
    merged: dict[str, LbShare] = {}
    for lb in lbs:
        prior = merged.get(lb.lb_id)
        merged[lb.lb_id] = lb if prior is None else LbShare(
            lb.lb_id, lb.az, lb.weight, prior.share + lb.share, prior.leaf, prior.addresses, prior.missing or lb.missing
        )
    return TreeView(tree_id, alias.target, True, meta, tuple(sorted(merged.values(), key=lambda s: s.lb_id)), complete)


def _lb_share(leaf: WeightedLeaf, by_leaf: dict[str, layout.MetaMember], by_lb: dict[str, layout.MetaMember]) -> LbShare:
    # The bottom-level SetIdentifier names the load balancer: "<lb id>@<az>" in a shared bottom
    # node (many LBs under one name), the bare id above an older layout's leaf.
    lb_id, az = layout.split_set_identifier(leaf.via[-1]) if leaf.via else (leaf.name, "")
    member = by_lb.get(lb_id) if not leaf.missing and leaf.name.startswith(layout.NODE_PREFIX) else by_leaf.get(leaf.name)
    if member is not None:
        return LbShare(member.lb_id, member.az, member.weight, leaf.probability, leaf.name, leaf.values, leaf.missing)
    return LbShare(lb_id, az, None, leaf.probability, leaf.name, leaf.values, leaf.missing)


def is_endpoint_zone(zone: ServedZone) -> bool:
    """A zone the enactors manage: its apex is an alias, or it holds a lock or applied record."""
    apex = zone.rrsets.get(zone.name, {})
    if any(r.alias is not None for t in ADDRESS_TYPES for r in apex.get(t, ())):
        return True
    return layout.lock_name(zone.name) in zone.rrsets or layout.applied_name(zone.name) in zone.rrsets


def endpoint_view(snapshot: Snapshot, zone: ServedZone, record_type: str | None = None) -> EndpointView:
    """The endpoint's state; its trees are walked for `record_type` (default: the root's first)."""
    endpoint = zone.name
    lz = layout.read_endpoint(endpoint, zone.zone)
    root = tuple(_alias_view(zone, endpoint, r) for r in lz.roots)
    rollback = tuple(_alias_view(zone, endpoint, r) for r in lz.rollbacks)
    if record_type is not None:
        # The walked type first; the views of the other types stay listed after it.
        root = tuple(sorted(root, key=lambda a: a.record_type != record_type))
        rollback = tuple(sorted(rollback, key=lambda a: a.record_type != record_type))
    return EndpointView(
        endpoint=endpoint,
        zone_id=zone.zone_id,
        root=root,
        rollback=rollback,
        lock=lz.lock_value,
        applied=lz.applied_value,
        active=tree_view(snapshot, zone, lz, root[0]) if root else None,
        rollback_tree=tree_view(snapshot, zone, lz, rollback[0]) if rollback else None,
        applied_fields=frozenset(layout.parse_fields(layout.unquote_txt(" ".join(lz.applied.values)))) if lz.applied else frozenset(),
    )


def endpoint_views(snapshot: Snapshot) -> list[EndpointView]:
    return [endpoint_view(snapshot, z) for _, z in sorted(snapshot.zones.items()) if is_endpoint_zone(z)]


def describe_alias(alias: AliasView) -> str:
    if alias.target is None:
        return f"{alias.record_type} not an alias: {' '.join(alias.values)}"
    where = alias.tree_id or alias.target
    return f"{alias.record_type} -> {where}" + ("" if alias.exists else " (MISSING: the root dangles)")


def view_to_json(view: EndpointView) -> dict[str, Any]:
    def alias(a: AliasView) -> dict[str, Any]:
        return {"type": a.record_type, "target": a.target, "tree_id": a.tree_id, "exists": a.exists, "values": list(a.values)}

    def tree(t: TreeView | None) -> dict[str, Any] | None:
        if t is None:
            return None
        return {
            "tree_id": t.tree_id,
            "name": t.name,
            "exists": t.exists,
            "complete": t.complete,
            "plan_version": t.plan_version,
            "created_at": t.meta.created_at if t.meta else None,
            "load_balancers": [
                {"lb_id": s.lb_id, "az": s.az, "weight": s.weight, "share": round(s.share, 6), "leaf": s.leaf,
                 "addresses": list(s.addresses), "missing": s.missing}
                for s in t.lbs
            ],
        }

    return {
        "endpoint": view.endpoint.rstrip("."),
        "zone_id": view.zone_id,
        "root": [alias(a) for a in view.root],
        "dangling": [a.target for a in view.dangling],
        "active_tree": tree(view.active),
        "rollback": [alias(a) for a in view.rollback],
        "rollback_tree": tree(view.rollback_tree),
        "lock": {"holder": view.lock.holder, "expires": view.lock.expires, "counter": view.lock.counter} if view.lock else None,
        "applied": {"version": view.applied.version, "tree_id": view.applied.tree_id} if view.applied else None,
    }
