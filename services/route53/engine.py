"""Route 53's change-batch semantics as a pure function: (record sets, change batch) -> new record sets.

This module is the one statement of how ChangeResourceRecordSets behaves. The emulator serves
it over HTTP and the model checker runs it in memory, so both hold the enactor to the same
promises AWS makes:

- A batch is validated change by change against the zone *as it evolves* through the batch
  (a DELETE then a CREATE of the same record set is fine; two DELETEs of it are not), and then
  applied all or nothing: any failure raises and the caller's zone is untouched.
- Record-set identity is (name, type, SetIdentifier). CREATE needs the identity to be free,
  UPSERT replaces exactly that one record set, DELETE needs an exact match of everything
  (TTL, values in any order, alias target, weight).
- Weighted sets, alias targets, CNAME exclusivity, value syntax, zone membership and the
  request and zone limits are checked as Route 53 checks them.

Errors copy Route 53's error codes and message wording: `InvalidInput` for a request that is
malformed on its own (raised at the first such change, as Route 53 rejects the schema before
looking at the zone), `InvalidChangeBatch` with the list of every semantic problem found.

Theory of operation. `apply_batch` takes an `IndexedZone` (a Zone plus an index
name -> type -> set identifiers) so that every rule is a few dictionary look-ups: the cost of a
batch is O(changes) plus two C-level dict copies (the copy-on-write of the zone and its index),
independent of how the zone was built. `apply_changes` is the same for a bare Zone; it builds
the index first, which is O(zone) and meant for the model checker's small zones.

Choices where AWS documents nothing precise:
- Batch size: every ResourceRecord element of every change counts (DELETEs too), UPSERT twice;
  an alias record counts as one element and its target DNS name as its characters.
- The record-set quota (default 10,000, configurable) counts every record set of the zone,
  SOA and NS included, and is checked on the zone as it stands at the end of the batch.
- An alias whose HostedZoneId names another zone (an ELB, CloudFront, another hosted zone)
  cannot be checked here and is accepted; an alias into this zone (or with no zone id, or a
  zone without id) must target an existing record set of the same type, any SetIdentifier.
- Deleting a record set an alias still points at is allowed: the alias dangles, as on AWS.
- Wording: the messages for stale/missing DELETEs, existing CREATEs, CNAME conflicts, weighted
  mixing and limits, alias targets, out-of-zone names, value syntax (FATAL problem: ...) and the
  batch limits are copied from Route 53's answers; the apex SOA/NS messages and the label
  length problems (LabelTooLong, DomainNameTooLong) follow the same pattern but could not be
  checked against a real answer.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from services.route53.records import ACTIONS, Change, RecordSet, Zone

# --- errors -------------------------------------------------------------------------------


class Route53Error(Exception):
    """An error Route 53 answers with HTTP 400; `code` is its error code on the wire."""

    code = "InvalidInput"

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidInput(Route53Error):
    """The request is malformed on its own (schema, ranges, missing fields); nothing changed."""

    code = "InvalidInput"

    def __init__(self, message: str):
        super().__init__(message)


class InvalidChangeBatch(Route53Error):
    """The batch conflicts with the zone or breaks a limit; nothing changed.

    `messages` holds one message per problem, worded as Route 53 words them; on the wire
    Route 53 joins them as "[m1, m2]".
    """

    code = "InvalidChangeBatch"

    def __init__(self, messages: Sequence[str]):
        self.messages: list[str] = list(messages)
        super().__init__("[" + ", ".join(self.messages) + "]")


# --- limits -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limits:
    """Route 53's quotas that bound a batch and a zone (defaults are AWS's)."""

    max_records_per_batch: int = 1000  # ResourceRecord elements, UPSERT counted twice
    max_value_chars_per_batch: int = 32000  # characters of all Values, UPSERT counted twice
    max_record_sets_per_zone: int = 10000
    max_weighted_per_name_type: int = 100
    max_txt_string_chars: int = 255


DEFAULT_LIMITS = Limits()

# The RRType enumeration of the 2013-04-01 API, in the order Route 53 prints it.
RECORD_TYPES: tuple[str, ...] = (
    "SOA", "A", "TXT", "NS", "CNAME", "MX", "NAPTR", "PTR", "SRV", "SPF", "AAAA", "CAA", "DS",
    "TLSA", "SSHFP", "SVCB", "HTTPS",
)  # fmt: skip
_RECORD_TYPE_SET = frozenset(RECORD_TYPES)
MAX_TTL = 2147483647
MAX_WEIGHT = 255
MAX_SET_IDENTIFIER = 128

# --- the indexed zone ---------------------------------------------------------------------

Key = tuple[str, str, "str | None"]
_EMPTY: Mapping[str, frozenset] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class IndexedZone:
    """A Zone and its index name -> type -> SetIdentifiers, kept in step by `apply_batch`."""

    zone: Zone
    names: Mapping[str, Mapping[str, frozenset[str | None]]]

    @classmethod
    def of(cls, zone: Zone) -> IndexedZone:
        names: dict[str, dict[str, set[str | None]]] = {}
        for name, rtype, sid in zone.records:
            names.setdefault(name, {}).setdefault(rtype, set()).add(sid)
        frozen = {n: {t: frozenset(s) for t, s in types.items()} for n, types in names.items()}
        return cls(zone=zone, names=frozen)

    def types_at(self, name: str) -> Mapping[str, frozenset[str | None]]:
        return self.names.get(name, _EMPTY)


class _Draft:
    """The zone as it evolves through one batch: copy-on-write over the base IndexedZone."""

    __slots__ = ("records", "names", "_owned")

    def __init__(self, base: IndexedZone):
        self.records: dict[Key, RecordSet] = dict(base.zone.records)
        self.names: dict[str, Mapping[str, frozenset[str | None]]] = dict(base.names)
        self._owned: set[str] = set()

    def types_at(self, name: str) -> Mapping[str, frozenset[str | None]]:
        return self.names.get(name, _EMPTY)

    def _inner(self, name: str) -> dict[str, frozenset[str | None]]:
        inner = self.names.get(name)
        if name not in self._owned:
            inner = dict(inner) if inner else {}
            self.names[name] = inner
            self._owned.add(name)
        return inner  # type: ignore[return-value]

    def put(self, record: RecordSet) -> None:
        inner = self._inner(record.name)
        inner[record.type] = inner.get(record.type, frozenset()) | {record.set_identifier}
        self.records[record.key] = record

    def remove(self, key: Key) -> None:
        name, rtype, sid = key
        del self.records[key]
        inner = self._inner(name)
        left = inner[rtype] - {sid}
        if left:
            inner[rtype] = left
        else:
            del inner[rtype]
            if not inner:
                del self.names[name]
                self._owned.discard(name)


# --- public API ---------------------------------------------------------------------------


def apply_changes(zone: Zone, changes: Sequence[Change], limits: Limits = DEFAULT_LIMITS) -> Zone:
    """The zone after the batch, or InvalidInput / InvalidChangeBatch with nothing applied."""
    return apply_batch(IndexedZone.of(zone), changes, limits).zone


def apply_batch(
    state: IndexedZone, changes: Sequence[Change], limits: Limits = DEFAULT_LIMITS
) -> IndexedZone:
    """`apply_changes` for an IndexedZone: O(changes) rule checks, no scan of the zone."""
    if not changes:
        raise InvalidInput(
            "1 validation error detected: Value '[]' at 'changeBatch.changes' failed to satisfy "
            "constraint: Member must have length greater than or equal to 1"
        )
    for position, change in enumerate(changes, start=1):
        _check_shape(change, position)
    _check_batch_size(changes, limits)

    zone = state.zone
    draft = _Draft(state)
    messages: list[str] = []
    touched_apex = False
    for change in changes:
        record = change.record
        if record.name == zone.name and record.type in ("SOA", "NS"):
            touched_apex = True
        problem = _check_name(record, zone)
        if problem is None:
            if change.action == "DELETE":
                problem = _delete(draft, record)
            else:
                problem = _check_values(record, limits) or _create_or_upsert(
                    draft, change.action, record, zone, limits
                )
        if problem is not None:
            messages.append(problem)
    if touched_apex:
        messages.extend(_check_apex(state, draft, zone))
    grew = len(draft.records) > len(zone.records)
    if not messages and grew and len(draft.records) > limits.max_record_sets_per_zone:
        messages.append(f"Exceeded limit MAX_RRSETS_BY_ZONE for zone: {zone.zone_id or zone.name}")
    if messages:
        raise InvalidChangeBatch(messages)
    new_zone = Zone(name=zone.name, zone_id=zone.zone_id, records=draft.records)
    return IndexedZone(zone=new_zone, names=draft.names)


def describe(record: RecordSet) -> str:
    """Route 53's way of naming a record set in messages: [name='…', type='…'(, set-identifier='…')]."""
    if record.set_identifier is None:
        return f"[name='{record.name}', type='{record.type}']"
    return f"[name='{record.name}', type='{record.type}', set-identifier='{record.set_identifier}']"


def same_record_set(current: RecordSet, given: RecordSet) -> bool:
    """True when a DELETE of `given` matches `current` exactly (values in any order)."""
    if current.key != given.key or current.ttl != given.ttl or current.weight != given.weight:
        return False
    if (current.alias is None) != (given.alias is None):
        return False
    if current.alias is not None and given.alias is not None:
        a, b = current.alias, given.alias
        return (
            a.dns_name == b.dns_name
            and _zone_id(a.hosted_zone_id) == _zone_id(b.hosted_zone_id)
            and a.evaluate_target_health == b.evaluate_target_health
        )
    return sorted(current.values) == sorted(given.values)


# --- request-level checks (InvalidInput, first failure wins) ------------------------------


def _where(change: Change) -> str:
    r = change.record
    sid = r.set_identifier if r.set_identifier is not None else "null"
    return f"Change with [Action={change.action}, Name={r.name}, Type={r.type}, SetIdentifier={sid}]"


def _check_shape(change: Change, position: int) -> None:
    record = change.record
    field = f"changeBatch.changes.{position}.member"
    if change.action not in ACTIONS:
        raise InvalidInput(
            f"Invalid XML ; cvc-enumeration-valid: Value '{change.action}' is not facet-valid with "
            "respect to enumeration '[CREATE, DELETE, UPSERT]'. It must be a value from the enumeration."
        )
    if record.type not in _RECORD_TYPE_SET:
        raise InvalidInput(
            f"Invalid XML ; cvc-enumeration-valid: Value '{record.type}' is not facet-valid with "
            f"respect to enumeration '[{', '.join(RECORD_TYPES)}]'. It must be a value from the enumeration."
        )
    if not record.name or record.name == ".":
        raise InvalidInput(
            f"1 validation error detected: Value '' at '{field}.resourceRecordSet.name' failed to "
            "satisfy constraint: Member must have length greater than or equal to 1"
        )
    has_alias = record.alias is not None
    has_records = record.ttl is not None or bool(record.values)
    if has_alias and has_records:
        raise InvalidInput(
            "Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords], "
            f"or TrafficPolicyInstanceId], but found more than one in {_where(change)}"
        )
    if not has_alias and (record.ttl is None or not record.values):
        raise InvalidInput(
            "Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords], "
            f"or TrafficPolicyInstanceId], but found none in {_where(change)}"
        )
    if record.ttl is not None and not 0 <= record.ttl <= MAX_TTL:
        bound = "greater than or equal to 0" if record.ttl < 0 else f"less than or equal to {MAX_TTL}"
        raise InvalidInput(
            f"1 validation error detected: Value '{record.ttl}' at '{field}.resourceRecordSet.tTL' "
            f"failed to satisfy constraint: Member must have value {bound}"
        )
    if record.weight is not None and not 0 <= record.weight <= MAX_WEIGHT:
        bound = "greater than or equal to 0" if record.weight < 0 else f"less than or equal to {MAX_WEIGHT}"
        raise InvalidInput(
            f"1 validation error detected: Value '{record.weight}' at '{field}.resourceRecordSet.weight' "
            f"failed to satisfy constraint: Member must have value {bound}"
        )
    if record.set_identifier is not None:
        if not 1 <= len(record.set_identifier) <= MAX_SET_IDENTIFIER:
            raise InvalidInput(
                f"1 validation error detected: Value '{record.set_identifier}' at "
                f"'{field}.resourceRecordSet.setIdentifier' failed to satisfy constraint: Member must "
                f"have length less than or equal to {MAX_SET_IDENTIFIER}"
            )
        if record.weight is None:
            raise InvalidInput(
                "Invalid request: Expected exactly one of [Weight, Region, Failover, GeoLocation, "
                "MultiValueAnswer, GeoProximityLocation, or CidrRoutingConfig], but found none in "
                f"{_where(change)}"
            )
    elif record.weight is not None:
        raise InvalidInput(f"Invalid request: Missing field 'SetIdentifier' in {_where(change)}")


def _check_batch_size(changes: Sequence[Change], limits: Limits) -> None:
    elements = 0
    chars = 0
    for change in changes:
        record = change.record
        if record.alias is not None:
            n, c = 1, len(record.alias.dns_name)
        else:
            n, c = len(record.values), sum(len(v) for v in record.values)
        factor = 2 if change.action == "UPSERT" else 1
        elements += n * factor
        chars += c * factor
    if elements > limits.max_records_per_batch:
        raise InvalidChangeBatch([f"Number of records limit of {limits.max_records_per_batch} exceeded."])
    if chars > limits.max_value_chars_per_batch:
        raise InvalidChangeBatch([f"RDATA character limit of {limits.max_value_chars_per_batch} exceeded."])


# --- per-change rules (InvalidChangeBatch messages, collected) -----------------------------


def _within(name: str, zone_name: str) -> bool:
    return name == zone_name or name.endswith("." + zone_name)


def _zone_id(raw: str) -> str:
    return raw.rsplit("/", 1)[-1] if raw else ""


def _check_name(record: RecordSet, zone: Zone) -> str | None:
    name = record.name
    for char in name:
        if ord(char) <= 32 or 127 <= ord(char) <= 255:
            return f"FATAL problem: UnsupportedCharacter (Value contains unsupported characters) encountered with '{char}'"
    labels = name[:-1].split(".")
    for label in labels:
        if not label:
            return f"FATAL problem: DomainLabelEmpty (Domain label is empty) encountered with '{name}'"
        if len(label) > 63:
            return f"FATAL problem: LabelTooLong (Domain label is too long) encountered with '{label}'"
    if len(name) > 255:
        return f"FATAL problem: DomainNameTooLong (Domain name is too long) encountered with '{name}'"
    if not _within(name, zone.name):
        return f"RRSet with DNS name {name} is not permitted in zone {zone.name}"
    return None


_TXT_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _txt_strings(value: str) -> list[str] | None:
    """The character-strings of a TXT value, or None when it is not a run of quoted strings."""
    out: list[str] = []
    pos = 0
    stripped = value.strip()
    while pos < len(stripped):
        m = _TXT_STRING.match(stripped, pos)
        if m is None:
            return None
        out.append(m.group(1))
        pos = m.end()
        while pos < len(stripped) and stripped[pos] in " \t":
            pos += 1
    return out or None


def _unescaped_length(s: str) -> int:
    # \DDD (decimal) and \X each stand for one octet in DNS master-file syntax.
    return len(re.sub(r"\\(\d{3}|.)", "x", s))


def _check_values(record: RecordSet, limits: Limits) -> str | None:
    if record.alias is not None:
        return None
    seen: set[str] = set()
    for value in record.values:
        if value in seen:
            return f"Duplicate Resource Record: '{value}'"
        seen.add(value)
        problem = _check_value(record.type, value, limits)
        if problem is not None:
            return f"Invalid Resource Record: 'FATAL problem: {problem} encountered with '{value}''"
    return None


def _check_value(rtype: str, value: str, limits: Limits) -> str | None:
    if rtype == "A":
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            return "ARRDATAIllegalIPv4Address (Value is not a valid IPv4 address)"
    elif rtype == "AAAA":
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            return "AAAARRDATAIllegalIPv6Address (Value is not a valid IPv6 address)"
    elif rtype in ("TXT", "SPF"):
        strings = _txt_strings(value)
        if strings is None:
            return "InvalidCharacterString (Value should be enclosed in quotation marks)"
        if any(_unescaped_length(s) > limits.max_txt_string_chars for s in strings):
            return "TXTRDATATooLong (Value is too long)"
    return None


def _delete(draft: _Draft, record: RecordSet) -> str | None:
    current = draft.records.get(record.key)
    if current is None:
        return f"Tried to delete resource record set {describe(record)} but it was not found"
    if not same_record_set(current, record):
        return f"Tried to delete resource record set {describe(record)} but the values provided do not match the current values"
    draft.remove(record.key)
    return None


def _create_or_upsert(
    draft: _Draft, action: str, record: RecordSet, zone: Zone, limits: Limits
) -> str | None:
    name, rtype, sid = record.key
    if action == "CREATE" and record.key in draft.records:
        return f"Tried to create resource record set {describe(record)} but it already exists"
    if rtype == "CNAME" and name == zone.name:
        return f"RRSet of type CNAME with DNS name {name} is not permitted at apex in zone {zone.name}"

    types = draft.types_at(name)
    if rtype == "CNAME":
        if any(t != "CNAME" for t in types):
            return (
                f"RRSet of type CNAME with DNS name {name} is not permitted as it conflicts with other "
                f"records with the same DNS name in zone {zone.name}"
            )
    elif "CNAME" in types:
        return (
            f"RRSet of type {rtype} with DNS name {name} is not permitted because a conflicting RRSet "
            f"of type  CNAME with the same DNS name already exists in zone {zone.name}"
        )

    siblings = types.get(rtype, frozenset())
    if sid is None:
        if any(s is not None for s in siblings):
            return f"RRSet with DNS name {name}, type {rtype} cannot be created as other RRSets exist with the same name and type."
    else:
        if None in siblings:
            return (
                f"RRSet with DNS name {name}, type {rtype}, SetIdentifier {sid} cannot be created as a "
                "non-weighted set exists with the same name and type."
            )
        if sid not in siblings and len(siblings) >= limits.max_weighted_per_name_type:
            return f"Exceeded limit on number of weighted RRSets for {name}, type {rtype} in this zone."

    if record.alias is not None:
        problem = _check_alias_target(draft, record, zone)
        if problem is not None:
            return problem

    draft.put(record)
    return None


def _check_alias_target(draft: _Draft, record: RecordSet, zone: Zone) -> str | None:
    alias = record.alias
    assert alias is not None
    target_zone = _zone_id(alias.hosted_zone_id)
    if target_zone and zone.zone_id and target_zone != _zone_id(zone.zone_id):
        return None  # another zone or an AWS resource: nothing here to check against
    where = zone.zone_id and _zone_id(zone.zone_id) or zone.name
    if not _within(alias.dns_name, zone.name):
        return (
            f"Tried to create an alias that targets {alias.dns_name}, type {record.type} in zone {where}, "
            "but the alias target name does not lie within the target zone"
        )
    if not draft.types_at(alias.dns_name).get(record.type):
        return (
            f"Tried to create an alias that targets {alias.dns_name}, type {record.type} in zone {where}, "
            "but that target was not found"
        )
    return None


def _check_apex(before: IndexedZone, draft: _Draft, zone: Zone) -> list[str]:
    """The batch may replace the apex SOA/NS but not leave the zone without them."""
    out: list[str] = []
    had = before.types_at(zone.name)
    has = draft.types_at(zone.name)
    if "SOA" in had and "SOA" not in has:
        out.append("A HostedZone must contain exactly one SOA record.")
    if "NS" in had and "NS" not in has:
        out.append("A HostedZone must contain at least one NS record for the zone itself.")
    return out
