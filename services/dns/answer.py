"""Route 53's answer to one DNS question, computed from a snapshot of hosted zones.

Pure: no sockets, no clock; the one random draw per weighted set comes from an injected source,
so tests can pin it and the server can use a fast PRNG. The wire format lives in server.py.

How Route 53's authoritative servers answer, and so how this module does:

- The question goes to the served zone with the longest apex containing the name; a name in no
  served zone is REFUSED (an authoritative server is not a resolver).
- A name below a delegation (NS records below the apex) gets a referral: no answer, NS records in
  authority, not authoritative.
- At a name with records of the asked type: a simple record set answers as it is; a weighted set
  (several record sets told apart by SetIdentifier) answers with ONE member chosen at random in
  proportion to its weight, afresh on every query. Weight 0 is never chosen unless every member
  has weight 0, then all are equally likely.
- An alias answers with the target's records of the same type, under the queried name and with
  the target's TTL. Targets are followed through aliases and weighted sets (trees with interior
  levels are weighted sets of aliases to weighted sets) inside the served zones.
- An alias whose target does not exist answers NOERROR with no records and the zone's SOA in
  authority: what dig showed on 20 October. So does a name that exists with other types only
  (A and AAAA are kept apart), and a name that owns nothing but has descendants.
- A CNAME at the name (for any other asked type) is answered, with the target's records when the
  target is in the same hosted zone (followed there); a target in another hosted zone (a child
  zone of its own included, as a cell's name under the accounts' zone is) gets the CNAME alone,
  for the resolver to chase.
- A name that does not exist (and matches no wildcard) gets NXDOMAIN with the SOA.
- The SOA in a negative answer carries the negative-caching TTL: min(SOA TTL, SOA MINIMUM).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from services.dns.snapshot import ServedZone, Snapshot
from services.route53.records import RecordSet, normalise_name

# Enough for tree -> interior levels -> leaf, with room; a longer chain is a loop.
MAX_CHAIN = 16


class Rcode(IntEnum):
    NOERROR = 0
    FORMERR = 1
    SERVFAIL = 2
    NXDOMAIN = 3
    NOTIMP = 4
    REFUSED = 5


class RandomSource(Protocol):
    def random(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Rr:
    """One resource record in presentation form."""

    name: str
    type: str
    ttl: int
    value: str


@dataclass(frozen=True, slots=True)
class Step:
    """One hop taken while answering, for explanations and tests.

    kind: "alias" (name -> target), "weighted" (name -> chosen member), "cname", "records",
    "missing" (alias target absent), "wildcard", "loop".
    """

    kind: str
    name: str
    target: str = ""
    set_identifier: str | None = None
    weight: int | None = None
    total_weight: int | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    rcode: Rcode
    answers: tuple[Rr, ...] = ()
    authority: tuple[Rr, ...] = ()
    authoritative: bool = True
    zone: str | None = None
    path: tuple[Step, ...] = ()

    @property
    def dangling(self) -> bool:
        """True when an alias on the way pointed at a record that does not exist."""
        return any(s.kind == "missing" for s in self.path)


def choose(members: Sequence[RecordSet], rng: RandomSource) -> RecordSet:
    """One member of a record set group, as Route 53 picks it: by weight, 0 never unless all 0."""
    if len(members) == 1:
        return members[0]
    weights = [m.weight or 0 for m in members]
    total = sum(weights)
    if total <= 0:
        return members[min(int(rng.random() * len(members)), len(members) - 1)]
    x = rng.random() * total
    for member, w in zip(members, weights, strict=True):
        if x < w:
            return member
        x -= w
    # Float rounding at the top end: the last member with weight.
    return next(m for m, w in zip(reversed(members), reversed(weights), strict=True) if w > 0)


def _soa(zone: ServedZone) -> Rr:
    return Rr(zone.name, "SOA", zone.negative_ttl(), zone.soa_value())


def _in_zone(name: str, zone: ServedZone) -> bool:
    return name == zone.name or name.endswith("." + zone.name)


def _delegation(zone: ServedZone, name: str) -> str | None:
    if not zone.delegations:
        return None
    labels = name[: -len(zone.name)].split(".")[:-1] if name != zone.name else []
    # The cut nearest the apex wins: everything below it belongs to the delegated zone.
    for i in reversed(range(len(labels))):
        candidate = ".".join(labels[i:]) + "." + zone.name
        if candidate in zone.delegations:
            return candidate
    return None


def _wildcard(zone: ServedZone, name: str) -> str | None:
    """RFC 4592: the wildcard at the closest encloser of a name that does not exist."""
    rest = name
    while rest != zone.name:
        rest = rest.split(".", 1)[1]
        if rest in zone.rrsets or rest in zone.nonterminals or rest == zone.name:
            star = "*." + rest
            return star if star in zone.rrsets else None
    return None


def _target_zone(snapshot: Snapshot, zone: ServedZone, target: RecordSet) -> ServedZone | None:
    alias = target.alias
    assert alias is not None
    if _in_zone(alias.dns_name, zone):
        return zone
    if alias.hosted_zone_id:
        other = snapshot.by_id.get(alias.hosted_zone_id.rsplit("/", 1)[-1])
        if other is not None and _in_zone(alias.dns_name, other):
            return other
    return snapshot.zone_for(alias.dns_name)


def _records_of(
    snapshot: Snapshot, zone: ServedZone, name: str, rtype: str, rng: RandomSource, path: list[Step], depth: int
) -> tuple[RecordSet, ServedZone] | None:
    """The non-alias record set that answers (name, rtype), following weighted sets and aliases.
    None when the chain ends at nothing (dangling alias, or no such type)."""
    for _ in range(depth, MAX_CHAIN):
        members = zone.rrsets.get(name, {}).get(rtype)
        if not members:
            return None
        chosen = choose(members, rng)
        if len(members) > 1 or chosen.set_identifier is not None:
            path.append(
                Step("weighted", name, chosen.alias.dns_name if chosen.alias else name, chosen.set_identifier,
                     chosen.weight, sum(m.weight or 0 for m in members))
            )
        if chosen.alias is None:
            return chosen, zone
        target = chosen.alias.dns_name
        next_zone = _target_zone(snapshot, zone, chosen)
        if next_zone is None or rtype not in next_zone.rrsets.get(target, {}):
            path.append(Step("missing", name, target))
            return None
        path.append(Step("alias", name, target))
        zone, name = next_zone, target
    path.append(Step("loop", name))
    raise _Loop(name)


class _Loop(Exception):
    pass


def resolve(snapshot: Snapshot, qname: str, qtype: str, rng: RandomSource) -> Answer:
    """Route 53's answer to (qname, qtype, IN). qname in any case, with or without the final dot."""
    name = normalise_name(qname)
    qtype = qtype.upper()
    zone = snapshot.zone_for(name)
    if zone is None:
        return Answer(Rcode.REFUSED, authoritative=False)
    if qtype == "ANY":
        return _resolve_any(snapshot, zone, name, rng)
    answers: list[Rr] = []
    path: list[Step] = []
    try:
        for _ in range(MAX_CHAIN):
            cut = _delegation(zone, name)
            if cut is not None:
                ns = zone.rrsets[cut]["NS"][0]
                authority = tuple(Rr(cut, "NS", ns.ttl or 0, v) for v in ns.values)
                return Answer(Rcode.NOERROR, tuple(answers), authority, authoritative=False, zone=zone.name, path=tuple(path))
            types = zone.rrsets.get(name)
            if types is None:
                star = None if name in zone.nonterminals else _wildcard(zone, name)
                if star is not None:
                    path.append(Step("wildcard", name, star))
                    types = zone.rrsets[star]
                    lookup = star
                elif name in zone.nonterminals:
                    return _nodata(zone, answers, path)  # exists, owns nothing: no wildcard either
                else:
                    return Answer(Rcode.NXDOMAIN, tuple(answers), (_soa(zone),), zone=zone.name, path=tuple(path))
            else:
                lookup = name
            if qtype in types:
                found = _records_of(snapshot, zone, lookup, qtype, rng, path, 0)
                if found is None:
                    return _nodata(zone, answers, path)
                record, _ = found
                ttl = record.ttl if record.ttl is not None else 0
                answers.extend(Rr(name, qtype, ttl, v) for v in record.values)
                path.append(Step("records", record.name))
                return Answer(Rcode.NOERROR, tuple(answers), zone=zone.name, path=tuple(path))
            if "CNAME" in types and qtype != "CNAME":
                found = _records_of(snapshot, zone, lookup, "CNAME", rng, path, 0)
                if found is None or not found[0].values:
                    return _nodata(zone, answers, path)
                cname = found[0]
                target = normalise_name(cname.values[0])
                answers.append(Rr(name, "CNAME", cname.ttl or 0, target))
                path.append(Step("cname", name, target))
                if not _in_zone(target, zone) or snapshot.zone_for(target) is not zone:
                    # Out of this hosted zone: the resolver chases it; we hand back what we have.
                    return Answer(Rcode.NOERROR, tuple(answers), zone=zone.name, path=tuple(path))
                name = target
                continue
            return _nodata(zone, answers, path)
    except _Loop:
        pass
    return Answer(Rcode.SERVFAIL, authoritative=False, zone=zone.name, path=tuple(path))


def _nodata(zone: ServedZone, answers: list[Rr], path: list[Step]) -> Answer:
    return Answer(Rcode.NOERROR, tuple(answers), (_soa(zone),), zone=zone.name, path=tuple(path))


def _resolve_any(snapshot: Snapshot, zone: ServedZone, name: str, rng: RandomSource) -> Answer:
    types = zone.rrsets.get(name)
    if types is None:
        if name in zone.nonterminals:
            return _nodata(zone, [], [])
        return Answer(Rcode.NXDOMAIN, (), (_soa(zone),), zone=zone.name)
    answers: list[Rr] = []
    path: list[Step] = []
    for rtype in sorted(types):
        part = resolve(snapshot, name, rtype, rng)
        answers.extend(r for r in part.answers if r.type == rtype)
        path.extend(part.path)
    if not answers:
        return _nodata(zone, [], path)
    return Answer(Rcode.NOERROR, tuple(answers), zone=zone.name, path=tuple(path))


@dataclass(frozen=True, slots=True)
class WeightedLeaf:
    """A record set an alias/weighted tree can end at, and the probability of ending there."""

    name: str
    probability: float
    via: tuple[str, ...]  # set identifiers chosen on the way, top first
    values: tuple[str, ...]
    missing: bool = False


def leaf_distribution(snapshot: Snapshot, qname: str, qtype: str) -> list[WeightedLeaf]:
    """Every record set a query for (qname, qtype) can end at, with its exact probability.

    The same rules as `resolve`, enumerated instead of sampled: what an explanation shows and
    what the weighted-share tests compare measured shares with. Dangling branches are listed
    with missing=True (they answer with nothing).
    """
    name = normalise_name(qname)
    zone = snapshot.zone_for(name)
    if zone is None:
        return []
    out: list[WeightedLeaf] = []

    def walk(zone: ServedZone, name: str, p: float, via: tuple[str, ...], depth: int) -> None:
        if depth >= MAX_CHAIN:
            return
        members = zone.rrsets.get(name, {}).get(qtype.upper())
        if not members:
            out.append(WeightedLeaf(name, p, via, (), missing=True))
            return
        weights = [m.weight or 0 for m in members]
        total = sum(weights)
        for m, w in zip(members, weights, strict=True):
            share = (w / total) if total > 0 else 1 / len(members)
            if share == 0:
                continue
            step = via + ((m.set_identifier,) if m.set_identifier is not None else ())
            if m.alias is None:
                out.append(WeightedLeaf(m.name, p * share, step, m.values))
                continue
            target_zone = _target_zone(snapshot, zone, m)
            if target_zone is None:
                out.append(WeightedLeaf(m.alias.dns_name, p * share, step, (), missing=True))
            else:
                walk(target_zone, m.alias.dns_name, p * share, step, depth + 1)

    walk(zone, name, 1.0, (), 0)
    return out
