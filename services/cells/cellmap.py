"""The cell map: the list of cells and which cell each account is in, as one small versioned plan.

It is the only state the cells share ("the only shared fate in this world is that list of cell
names"), so it is a plan stream of its own (`cellmap/plans/<region>/...` in the plan bucket, the
same store, pointer and signatures as plans: services/plan/store.py with `document=CellMap`),
applied by enactors of its own (enactor/cellmap.py) to one hosted zone of per-account names:

    <account-id>.ddb.us-east-1.api.aws   CNAME  cell-2.ddb.us-east-1.api.aws       (moved to cell 2)
    <account-id>.ddb.us-east-1.api.aws   CNAME  dynamodb.us-east-1.api.aws         (not moved yet: legacy)
    _lock.ddb.us-east-1.api.aws          TXT    the same lock as every endpoint's
    _applied.ddb.us-east-1.api.aws       TXT    "version=<map version> tree=cellmap"

Limits, from Route 53's quotas: one record set per account in one zone, so a zone of 10,000
record sets (the default quota) holds at most 10,000 - 4 = 9,996 accounts (SOA, NS, the lock and
the applied record take the rest); a map naming more is refused when it is made (a 422 naming
`accounts`), never at apply time. One change batch holds 1,000 ResourceRecord elements and an
UPSERT counts twice, so an apply of a whole map takes one batch per ~497 changed accounts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from services.cells.naming import (
    ACCOUNT_PATTERN,
    CELL_PATTERN,
    account_name,
    accounts_zone,
    cell_endpoint,
    legacy_endpoint,
)
from services.plan.model import Lane, PlanSignature, canonical_json, checksum, parse_document
from services.route53.engine import DEFAULT_LIMITS

ZONE_QUOTA = DEFAULT_LIMITS.max_record_sets_per_zone
FIXED_RECORDS = 4  # SOA, NS, _lock, _applied
APPLIED_TREE = "cellmap"  # what the applied record names instead of a tree (there is none)
STREAM = "cellmap/"  # the map's namespace in the plan bucket


def max_accounts(zone_record_quota: int = ZONE_QUOTA) -> int:
    """How many accounts one map (one zone) can hold."""
    return zone_record_quota - FIXED_RECORDS


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Assignment(_Frozen):
    """One account and its cell (None: not moved yet, it resolves through the legacy regional name)."""

    account: str = Field(pattern=ACCOUNT_PATTERN, description="12-digit AWS account id")
    cell: str | None = Field(default=None, pattern=CELL_PATTERN)


class CellMapBody(_Frozen):
    """What an operator gives: the cells, the assignments, the CNAME TTL. Validated on its own (the
    planner's 422s name these fields) and as part of every stored map."""

    cells: tuple[str, ...] = Field(default=(), max_length=999)
    zone_record_quota: int = Field(ZONE_QUOTA, ge=FIXED_RECORDS + 1, le=1_000_000,
                                   description="Record sets the accounts' zone may hold (Route 53's default; raised on request)")
    accounts: tuple[Assignment, ...] = ()
    ttl: int = Field(60, ge=1, le=86_400, description="TTL of every account's CNAME: how long a move takes to reach clients")

    @field_validator("cells")
    @classmethod
    def _cells(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [c for c in v if not re.match(CELL_PATTERN, c)]
        if bad:
            raise ValueError(f"not cell names: {', '.join(bad)} (use cell-1 .. cell-999)")
        if len(set(v)) != len(v):
            raise ValueError("cell names must be distinct")
        return v

    @field_validator("accounts")
    @classmethod
    def _accounts(cls, v: tuple[Assignment, ...], info: ValidationInfo) -> tuple[Assignment, ...]:
        quota = info.data.get("zone_record_quota", ZONE_QUOTA)
        if len(v) > max_accounts(quota):
            raise ValueError(
                f"{len(v)} accounts do not fit one hosted zone: a zone of {quota} record sets holds at most "
                f"{max_accounts(quota)} account names ({FIXED_RECORDS} records are the zone's own, the lock's and "
                "the applied record's); raise the zone's quota (zone_record_quota) or split the accounts"
            )
        ids = [a.account for a in v]
        if len(set(ids)) != len(ids):
            raise ValueError("an account appears twice")
        cells = set(info.data.get("cells", ()))
        unknown = sorted({a.cell for a in v if a.cell is not None and a.cell not in cells})
        if unknown:
            raise ValueError(f"accounts are assigned to cells not in the map's list: {', '.join(unknown)}")
        return tuple(sorted(v, key=lambda a: a.account))

    def cell_of(self, account: str) -> str | None:
        return next((a.cell for a in self.accounts if a.account == account), None)

    def has(self, account: str) -> bool:
        return any(a.account == account for a in self.accounts)

    def with_move(self, account: str, cell: str | None) -> CellMapBody:
        """The body with `account` in `cell` (None: back to legacy); a new account is added."""
        accounts = [a for a in self.accounts if a.account != account] + [Assignment(account=account, cell=cell)]
        return validate_body({**self.body_only(), "accounts": [a.model_dump(mode="json") for a in accounts]})

    def body_only(self) -> dict[str, Any]:
        """The operator's part alone (a stored map's version, checksum ... left out)."""
        return self.model_dump(mode="json", include=set(CellMapBody.model_fields))


class CellMap(CellMapBody):
    """One version of the map, as stored: the body plus region, version, checksum and signature.

    It has the plan's shape where the plan store and signing look (region, version, cell, body(),
    for_cell, with_signature, to_json, from_json), so both are reused as they are."""

    schema_version: Literal[1] = 1
    kind: Literal["cellmap"] = "cellmap"
    region: str = Field(min_length=1, max_length=32)
    version: int = Field(ge=1)
    created_at: str
    reason: str = Field(default="", max_length=500)
    lane: Lane = "fast"
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    signature: PlanSignature | None = None

    @model_validator(mode="after")
    def _checksum_matches(self) -> CellMap:
        expected = checksum(self.body())
        if expected != self.sha256:
            raise ValueError(f"sha256 mismatch: body hashes to {expected}, document says {self.sha256}")
        return self

    @property
    def cell(self) -> None:
        return None  # the map belongs to no cell: its stream is its own namespace

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"sha256", "signature"})

    def for_cell(self, cell: str | None) -> CellMap:
        if cell is not None:
            raise ValueError("a cell map is in no cell's stream")
        return self

    def with_signature(self, signature: PlanSignature) -> CellMap:
        return self.model_copy(update={"signature": signature})

    def to_json(self) -> bytes:
        return canonical_json(self.model_dump(mode="json", exclude={"signature"} if self.signature is None else None))

    # -- what the map puts in DNS ---------------------------------------------------------------

    @property
    def zone(self) -> str:
        return accounts_zone(self.region)

    def target(self, a: Assignment) -> str:
        return cell_endpoint(a.cell, self.region) if a.cell else legacy_endpoint(self.region)

    def names(self) -> dict[str, str]:
        """account name -> CNAME target, for every account of the map."""
        return {account_name(a.account, self.region): self.target(a) for a in self.accounts}

    @classmethod
    def build(cls, body: CellMapBody, *, region: str, version: int, reason: str = "", lane: Lane = "fast",
              created_at: str | None = None) -> CellMap:
        data = {**body.model_dump(mode="json"), "schema_version": 1, "kind": "cellmap", "region": region,
                "version": version, "created_at": created_at or datetime.now(UTC).isoformat(timespec="milliseconds"),
                "reason": reason[:500], "lane": lane}
        return cls.model_validate({**data, "sha256": checksum(data)})

    @classmethod
    def from_json(cls, raw: bytes | str, key: str = "<memory>") -> CellMap:
        return parse_document(cls, raw, key)


def validate_body(data: Any) -> CellMapBody:
    return CellMapBody.model_validate(data)


def seed_body(cells: int, accounts: int, ttl: int = 60) -> CellMapBody:
    """The demo's map: `accounts` accounts (ids 100000000001 ...), every (cells + 1)-th one not moved
    yet (legacy), the others spread over cell-1 .. cell-<cells> in turn."""
    names = [f"cell-{k}" for k in range(1, cells + 1)]
    out = []
    for k in range(1, accounts + 1):
        slot = (k - 1) % (cells + 1)
        out.append({"account": f"{100_000_000_000 + k:012d}", "cell": names[slot] if slot < cells else None})
    return validate_body({"cells": names, "accounts": out, "ttl": ttl})


@dataclass(frozen=True)
class Move:
    account: str
    before: str | None  # cell, None: legacy; "absent": not in the map
    after: str | None


@dataclass(frozen=True)
class MapDiff:
    """What a new map changes: accounts moved (or added, removed), cells added or removed."""

    old_version: int | None
    moves: tuple[Move, ...]
    cells_added: tuple[str, ...]
    cells_removed: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.moves or self.cells_added or self.cells_removed)

    def as_dict(self) -> dict[str, Any]:
        return {"old_version": self.old_version, "cells_added": list(self.cells_added), "cells_removed": list(self.cells_removed),
                "moves": [{"account": m.account, "from": m.before, "to": m.after} for m in self.moves]}


ABSENT = "absent"


def map_diff(old: CellMapBody | None, new: CellMapBody, old_version: int | None = None) -> MapDiff:
    before = {a.account: a.cell for a in (old.accounts if old else ())}
    after = {a.account: a.cell for a in new.accounts}
    moves = []
    for account in sorted(set(before) | set(after)):
        b, a = before.get(account, ABSENT), after.get(account, ABSENT)
        if b != a:
            moves.append(Move(account, b, a))
    old_cells = set(old.cells if old else ())
    return MapDiff(old_version, tuple(moves), tuple(sorted(set(new.cells) - old_cells)), tuple(sorted(old_cells - set(new.cells))))
