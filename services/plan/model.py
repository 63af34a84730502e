"""The plan: the complete desired DNS state of a region, as one immutable, versioned JSON document.

A plan is written by the planner and read by the enactors. Its checksum covers the canonical
JSON (sorted keys, no whitespace) of every field but `sha256` and `signature`, so any process can
verify a plan it fetched and the checksum is reproducible byte for byte. The optional Ed25519
`signature` covers the same bytes (services/plan/signing.py); a plan without one is still a
well-formed plan, and whether a reader accepts it is the plan store's verifier's decision. The models are frozen (and use
tuples) so a plan is hashable: the model checker keeps plans inside hashed states.

The JSON Schema kept beside this module (schema.json) is generated from these models;
`tests/plan/test_schema_file.py` fails when the two drift apart.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv6Address
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SCHEMA_VERSION = 1
RecordType = Literal["A", "AAAA"]
Lane = Literal["fast", "slow"]


class PlanInvalid(Exception):
    """A plan object failed its schema or checksum. `key` names the object it came from."""

    def __init__(self, key: str, reason: str):
        super().__init__(f"plan {key} is invalid: {reason}")
        self.key = key
        self.reason = reason


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Target(_Frozen):
    """One load balancer behind an endpoint, with its share of traffic as a Route 53 weight.

    `capacity` is the LB's capacity when the plan was made (0 when unknown): it lets the
    planner's safety check compare two plans' serving capacity without any other state.
    """

    lb_id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")
    az: str = Field(min_length=1, max_length=32)
    ipv4: tuple[str, ...] = ()
    ipv6: tuple[str, ...] = ()
    weight: int = Field(ge=0, le=255)
    capacity: int = Field(default=0, ge=0)

    @field_validator("ipv4")
    @classmethod
    def _v4(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(str(IPv4Address(a)) for a in v)

    @field_validator("ipv6")
    @classmethod
    def _v6(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(str(IPv6Address(a)) for a in v)


class EndpointPlan(_Frozen):
    """The desired state of one DNS endpoint (one hosted zone, one lock)."""

    name: str = Field(min_length=1, max_length=200)
    hosted_zone: str = Field(min_length=1, max_length=200)
    record_types: tuple[RecordType, ...] = Field(min_length=1)
    targets: tuple[Target, ...]

    @field_validator("name", "hosted_zone")
    @classmethod
    def _dns_name(cls, v: str) -> str:
        return v.lower().rstrip(".")

    @model_validator(mode="after")
    def _addresses_for_types(self) -> EndpointPlan:
        ids = [t.lb_id for t in self.targets]
        if len(ids) != len(set(ids)):
            raise ValueError(f"endpoint {self.name}: duplicate lb_id")
        for t in self.targets:
            if "A" in self.record_types and not t.ipv4:
                raise ValueError(f"endpoint {self.name}: target {t.lb_id} has no IPv4 address for type A")
            if "AAAA" in self.record_types and not t.ipv6:
                raise ValueError(f"endpoint {self.name}: target {t.lb_id} has no IPv6 address for type AAAA")
        return self


class PlanSignature(_Frozen):
    """The planner's Ed25519 signature over the plan's body (services/plan/signing.py)."""

    key_id: str = Field(pattern=r"^[0-9a-f]{16}$", description="First 16 hex digits of SHA-256 of the raw public key")
    ed25519: str = Field(pattern=r"^[A-Za-z0-9+/]{86}==$", description="Base64 of the 64-byte Ed25519 signature")


class Plan(_Frozen):
    schema_version: Literal[1] = SCHEMA_VERSION
    region: str = Field(min_length=1, max_length=32)
    version: int = Field(ge=1)
    created_at: str
    reason: str = Field(default="", max_length=500)
    lane: Lane = "slow"
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    endpoints: tuple[EndpointPlan, ...]
    # The cell whose plan stream holds this plan (services/cells/naming.py); None: the regional system.
    # Covered by the checksum and the signature, so a plan copied into another cell's stream is refused.
    cell: str | None = Field(default=None, pattern=r"^cell-[1-9][0-9]{0,2}$")
    signature: PlanSignature | None = None

    @model_validator(mode="after")
    def _checksum_matches(self) -> Plan:
        expected = checksum(self.body())
        if expected != self.sha256:
            raise ValueError(f"sha256 mismatch: body hashes to {expected}, document says {self.sha256}")
        names = [e.name for e in self.endpoints]
        if len(names) != len(set(names)):
            raise ValueError("duplicate endpoint name")
        return self

    def body(self) -> dict[str, Any]:
        """Everything the checksum (and the signature) covers: the whole document but `sha256` and `signature`.

        A regional plan (no cell) has no `cell` key at all, so its bytes are what they were before cells."""
        return self.model_dump(mode="json", exclude={"sha256", "signature"} | (set() if self.cell else {"cell"}))

    def for_cell(self, cell: str | None) -> Plan:
        """The same plan stamped for `cell`'s stream (a new checksum; any signature is dropped)."""
        if cell == self.cell:
            return self
        body = {**self.body(), "cell": cell} if cell else {k: v for k, v in self.body().items() if k != "cell"}
        return type(self).model_validate({**body, "sha256": checksum(body)})

    def with_signature(self, signature: PlanSignature) -> Plan:
        """The same plan carrying `signature` (the body and so the checksum are unchanged)."""
        return self.model_copy(update={"signature": signature})

    def endpoint(self, name: str) -> EndpointPlan | None:
        name = name.lower().rstrip(".")
        return next((e for e in self.endpoints if e.name == name), None)

    def to_json(self) -> bytes:
        # An unsigned plan is written exactly as before signatures existed, for readers that forbid the field;
        # a regional plan exactly as before cells.
        exclude = ({"signature"} if self.signature is None else set()) | (set() if self.cell else {"cell"})
        return canonical_json(self.model_dump(mode="json", exclude=exclude or None))

    @classmethod
    def build(
        cls,
        *,
        region: str,
        version: int,
        endpoints: list[EndpointPlan] | tuple[EndpointPlan, ...],
        reason: str = "",
        lane: Lane = "slow",
        created_at: str | None = None,
    ) -> Plan:
        """Make a plan and stamp its checksum."""
        body = {
            "schema_version": SCHEMA_VERSION,
            "region": region,
            "version": version,
            "created_at": created_at or datetime.now(UTC).isoformat(timespec="milliseconds"),
            "reason": reason,
            "lane": lane,
            "endpoints": [e.model_dump(mode="json") for e in endpoints],
        }
        return cls.model_validate({**body, "sha256": checksum(body)})

    @classmethod
    def from_json(cls, raw: bytes | str, key: str = "<memory>") -> Plan:
        """Parse and verify a stored plan; any defect raises PlanInvalid naming `key`."""
        return parse_document(cls, raw, key)


def parse_document(model: type[BaseModel], raw: bytes | str, key: str) -> Any:
    """A stored document (a plan, or the cell map) parsed and validated; any defect is PlanInvalid naming `key`."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PlanInvalid(key, f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PlanInvalid(key, "not a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errs = "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors())
        raise PlanInvalid(key, errs) from exc


def canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def checksum(body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(body)).hexdigest()


def json_schema() -> dict[str, Any]:
    return Plan.model_json_schema()
