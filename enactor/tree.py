"""The shape of a plan's tree: content-named, shared nodes below a fresh top, and their weights.

Pure: a plan's endpoint in, record sets out. The protocol core (enactor/protocol.py) decides
when to build and what to flip; this module only says what a tree for a set of load balancers
looks like, so a one-LB change rewrites only the path from that LB to the top.

Shape (enactor/layout.py names the records):

    t-<uuid>.<endpoint>.   weighted ALIAS per record type, one member per child node   (fresh per plan)
    v-<digest>.<endpoint>. interior node: weighted ALIAS per type, one member per child node
    w-<digest>.<endpoint>. bottom node: weighted A/AAAA *value* sets, one per LB:
                           SetIdentifier "<lb id>@<az>", Weight = the LB's weight, the LB's addresses

- A node's name is a digest of its content (every member's identifier, weight, target or
  addresses, for every record type), so an unchanged node has the same name in every tree and
  is written once; a tree costs about N record sets per type, not 2N.
- Grouping is content-defined (as in a prolly tree): once a group holds half of `node_members`,
  it ends after an item whose key hashes to 0 modulo the other half, so adding, removing or
  reweighting one LB changes only its own group (and at most its neighbour), not the groups after
  it. Keys are LB ids at the bottom and a subtree's first LB id above, so the boundaries do not
  move when weights change. Groups hold at least 2 items (each level at least halves the count),
  about `node_members` on average, and at most Route 53's 100 weighted sets per name.
- Levels are added until at most `top_members` nodes are left; they become the top's members.

Weights. The bottom level carries the plan's LB weights (0-255) exactly. Above it, a member's
weight stands for its subtree's total weight. When every total fits 255 the totals are used as
they are (exact). Otherwise `apportion` gives integer weights summing to S = floor(255 * sum / max)
(>= 255) by largest remainder, so each share w/S is within 1/S of the ideal; a subtree with
positive weight whose quota rounds to 0 gets weight 1 (never starved), which moves every other
share of that set by at most c/S for c such raised members. So at one level a member's share
error is below (1 + c)/S <= (1 + c)/255, and an LB's share error over its path is at most the sum
of that bound over the scaled levels above it (tests/enactor/test_tree.py checks both bounds).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

from enactor import layout
from services.plan.model import EndpointPlan
from services.route53.records import AliasTarget, RecordSet

MIN_GROUP = 2


@dataclass(frozen=True, slots=True)
class Shape:
    """How big nodes are: mean members per node (content-defined), and the most the top may hold."""

    node_members: int = 10
    top_members: int = 16
    max_members: int = 100  # Route 53's weighted sets per name and type
    bottom_members: int | None = None  # mean LBs per bottom node (None: node_members)

    def __post_init__(self) -> None:
        sizes = (self.node_members, self.top_members, self.bottom_members or self.node_members)
        if not all(2 <= k <= self.max_members for k in sizes):
            raise ValueError("node_members, top_members and bottom_members must be between 2 and the weighted-set limit")

    def mean(self, level: int) -> int:
        return self.bottom_members or self.node_members if level == 0 else self.node_members


@dataclass(frozen=True, slots=True)
class _Item:
    key: str  # the first LB id below it: stable while weights change
    total: int  # the sum of LB weights below it
    name: str  # the node's name (for an LB: unused)


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def groups(keys: list[str], level: int, shape: Shape) -> list[tuple[int, int]]:
    """Content-defined group boundaries over `keys` (sorted): (start, end) index pairs."""
    out: list[tuple[int, int]] = []
    start = 0
    mean = shape.mean(level)
    least = max(MIN_GROUP, mean // 2)
    odds = mean - least + 1  # mean size: least + odds - 1 = the level's mean
    for i, key in enumerate(keys):
        size = i + 1 - start
        boundary = size >= least and _hash(f"{level}|{key}") % odds == 0
        if boundary or size >= shape.max_members:
            out.append((start, i + 1))
            start = i + 1
    if start < len(keys):
        if out and len(keys) - start < least and out[-1][1] - out[-1][0] + len(keys) - start <= shape.max_members:
            out[-1] = (out[-1][0], len(keys))  # a lone last item joins its left neighbour
        else:
            out.append((start, len(keys)))
    return out


def apportion(totals: list[int]) -> list[int]:
    """Integer weights 0-255 for sibling subtrees with these total weights (see module doc)."""
    top = max(totals, default=0)
    if top <= 255:
        return list(totals)
    whole = sum(totals)
    seats = (255 * whole) // top
    quotas = [t * seats / whole for t in totals]
    weights = [int(q) for q in quotas]
    left = seats - sum(weights)
    by_remainder = sorted(range(len(totals)), key=lambda i: (-(quotas[i] - weights[i]), i))
    for i in by_remainder[:left]:
        weights[i] += 1
    return [max(1, w) if t > 0 else 0 for w, t in zip(weights, totals, strict=True)]


def set_identifier(lb_id: str, az: str) -> str:
    return f"{lb_id}@{az}"


def _digest(records: list[RecordSet]) -> str:
    parts = sorted(
        f"{r.type}|{r.set_identifier}|{r.weight}|{r.alias.dns_name if r.alias else ','.join(sorted(r.values))}|{r.ttl}"
        for r in records
    )
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]


def _named(endpoint: str, records: list[RecordSet], interior: bool) -> tuple[str, list[RecordSet]]:
    """Give a node's records (built under a placeholder name) their content name."""
    name = layout.node_name(endpoint, _digest(records), interior)
    return name, [RecordSet(name, r.type, r.ttl, r.values, r.alias, r.set_identifier, r.weight) for r in records]


@functools.lru_cache(maxsize=16)
def build(endpoint: str, zone_id: str, ep: EndpointPlan, top: str, ttl: int, shape: Shape) -> tuple[RecordSet, ...]:
    """Every record set of the tree whose top is `top`, bottom-up (a node before any alias to it).

    Duplicates are removed: a node reached twice (identical groups) is written once.
    Memoised: the same trees are asked for again and again (the plan in hand by every unit that
    plans its build, every tree in the zone by the reference counts, protocol.tree_nodes), and
    the answer is a pure function of the arguments (all immutable).
    """
    types = tuple(sorted(ep.record_types))
    lbs = sorted(ep.targets, key=lambda t: t.lb_id)
    out: list[RecordSet] = []
    seen: set[str] = set()
    items: list[_Item] = []
    placeholder = layout.node_name(endpoint, "0")
    for start, end in groups([t.lb_id for t in lbs], 0, shape):
        members = lbs[start:end]
        records = [
            RecordSet(placeholder, rt, ttl=ttl, values=tuple(sorted(t.ipv4 if rt == "A" else t.ipv6)),
                      set_identifier=set_identifier(t.lb_id, t.az), weight=t.weight)
            for rt in types for t in members
        ]
        name, records = _named(endpoint, records, interior=False)
        if name not in seen:
            seen.add(name)
            out += records
        items.append(_Item(members[0].lb_id, sum(t.weight for t in members), name))
    level = 1
    while len(items) > shape.top_members:
        parents: list[_Item] = []
        for start, end in groups([i.key for i in items], level, shape):
            name, records = _named(endpoint, _aliases(placeholder, items[start:end], types, zone_id), interior=True)
            if name not in seen:
                seen.add(name)
                out += records
            parents.append(_Item(items[start].key, sum(i.total for i in items[start:end]), name))
        items = parents
        level += 1
    out += _aliases(top, items, types, zone_id)
    return tuple(out)


def _aliases(name: str, items: list[_Item], types: tuple[str, ...], zone_id: str) -> list[RecordSet]:
    weights = apportion([i.total for i in items])
    return [
        RecordSet(name, rt, alias=AliasTarget(i.name, zone_id), set_identifier=i.name.split(".", 1)[0], weight=w)
        for rt in types for i, w in zip(items, weights, strict=True)
    ]
