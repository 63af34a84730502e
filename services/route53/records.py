"""Route 53 record sets and changes as small immutable values.

This is the one representation of DNS records shared by the emulator's change engine, the
enactor's protocol core, the model checker and the DNS data plane. Values are frozen and
hashable so the model checker can hash whole zones; conversion to and from boto3's
dictionaries lives here too, so no other module spells out Route 53's wire shapes.

Names are kept normalised: lower case, with the trailing dot (Route 53 treats names as
case-insensitive and always answers with the absolute form).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["CREATE", "DELETE", "UPSERT"]
ACTIONS: tuple[str, ...] = ("CREATE", "DELETE", "UPSERT")


def normalise_name(name: str) -> str:
    """Lower-case absolute form of a DNS name ("Foo.Example" -> "foo.example.").

    Route 53 escapes '*' as '\\052' in answers; we keep the literal form internally.
    """
    name = name.strip().replace("\\052", "*").lower()
    return name if name.endswith(".") else name + "."


@dataclass(frozen=True, slots=True, order=True)
class AliasTarget:
    """An alias pointing at another record set of the same type in the same zone."""

    dns_name: str
    hosted_zone_id: str = ""
    evaluate_target_health: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "dns_name", normalise_name(self.dns_name))


@dataclass(frozen=True, slots=True, order=True)
class RecordSet:
    """One resource record set. Identity is (name, type, set_identifier)."""

    name: str
    type: str
    ttl: int | None = None
    values: tuple[str, ...] = ()
    alias: AliasTarget | None = None
    set_identifier: str | None = None
    weight: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", normalise_name(self.name))
        object.__setattr__(self, "type", self.type.upper())
        object.__setattr__(self, "values", tuple(self.values))

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.name, self.type, self.set_identifier)

    @property
    def is_alias(self) -> bool:
        return self.alias is not None

    def to_boto(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Name": self.name, "Type": self.type}
        if self.set_identifier is not None:
            out["SetIdentifier"] = self.set_identifier
        if self.weight is not None:
            out["Weight"] = self.weight
        if self.alias is not None:
            out["AliasTarget"] = {
                "HostedZoneId": self.alias.hosted_zone_id,
                "DNSName": self.alias.dns_name,
                "EvaluateTargetHealth": self.alias.evaluate_target_health,
            }
        else:
            if self.ttl is not None:
                out["TTL"] = self.ttl
            out["ResourceRecords"] = [{"Value": v} for v in self.values]
        return out

    @classmethod
    def from_boto(cls, data: Mapping[str, Any]) -> RecordSet:
        alias = None
        if data.get("AliasTarget"):
            a = data["AliasTarget"]
            alias = AliasTarget(
                dns_name=a["DNSName"],
                hosted_zone_id=a.get("HostedZoneId", ""),
                evaluate_target_health=bool(a.get("EvaluateTargetHealth", False)),
            )
        weight = data.get("Weight")
        ttl = data.get("TTL")
        return cls(
            name=data["Name"],
            type=data["Type"],
            ttl=int(ttl) if ttl is not None else None,
            values=tuple(r["Value"] for r in data.get("ResourceRecords", []) or []),
            alias=alias,
            set_identifier=data.get("SetIdentifier"),
            weight=int(weight) if weight is not None else None,
        )


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of a ChangeResourceRecordSets batch."""

    action: Action
    record: RecordSet

    def to_boto(self) -> dict[str, Any]:
        return {"Action": self.action, "ResourceRecordSet": self.record.to_boto()}

    @classmethod
    def from_boto(cls, data: Mapping[str, Any]) -> Change:
        return cls(action=data["Action"], record=RecordSet.from_boto(data["ResourceRecordSet"]))


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    """A whole batch, applied all or nothing."""

    changes: tuple[Change, ...]
    comment: str = ""

    def to_boto(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Changes": [c.to_boto() for c in self.changes]}
        if self.comment:
            out["Comment"] = self.comment
        return out


@dataclass(frozen=True, slots=True)
class Zone:
    """A hosted zone's record sets: an immutable mapping keyed by record-set identity."""

    name: str
    zone_id: str = ""
    records: Mapping[tuple[str, str, str | None], RecordSet] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", normalise_name(self.name))

    @classmethod
    def of(cls, name: str, records: Iterable[RecordSet], zone_id: str = "") -> Zone:
        return cls(name=name, zone_id=zone_id, records={r.key: r for r in records})

    def get(self, name: str, rtype: str, set_identifier: str | None = None) -> RecordSet | None:
        return self.records.get((normalise_name(name), rtype.upper(), set_identifier))

    def named(self, name: str, rtype: str | None = None) -> list[RecordSet]:
        """Every record set at a name (optionally of one type), weighted members included."""
        n = normalise_name(name)
        return [r for r in self.records.values() if r.name == n and (rtype is None or r.type == rtype.upper())]

    def __iter__(self):
        return iter(self.records.values())

    def __len__(self) -> int:
        return len(self.records)

    def fingerprint(self) -> frozenset[RecordSet]:
        """A hashable value equal for equal contents (the model checker's zone hash)."""
        return frozenset(self.records.values())
