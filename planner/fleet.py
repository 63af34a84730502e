"""The fleet: the region's DNS endpoints and the load balancers behind them, as the planner sees it.

A fleet is one immutable value. The planner never edits it in place: every operator request
makes a new fleet (`with_load_balancer`, `with_capacity`, `drain_az`, ...), which is validated as
a whole, so a bad request leaves the old fleet untouched.

Where a fleet comes from:
- the demo fleet (planner/fleets/demo.toml), modelled on the talk: us-east-1, three AZs, the
  DynamoDB endpoints (IPv4, dual-stack, FIPS) and fifteen load balancers of mixed sizes;
- a fleet file (TOML or YAML) of the same shape;
- `generate_fleet(n, seed)`, which builds larger fleets (up to 16,000 LBs) for benchmarks and
  `dnsctl up --lbs N`, over the demo's endpoints or only some of them.

What Route 53 would refuse is refused here, before any plan carries it (`_route53_errors`): a
repeated address, an LB id that is not a DNS label or whose leaf or node label in the tree would
exceed 63 characters, an LB with more addresses than one change batch holds, an endpoint whose
tree cannot fit its zone's record quota at all. The tree is the enactor core's own
(enactor.protocol.tree_records): the planner never names or counts records by a formula of its
own, so it checks whatever layout the enactors build. A plan Route 53 refuses would otherwise
reach every enactor and be refused there, endpoint by endpoint.
"""

from __future__ import annotations

import ipaddress
import random
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from enactor import layout
from enactor import protocol as core
from services.plan.model import EndpointPlan, RecordType
from services.route53.engine import DEFAULT_LIMITS
from services.route53.records import Change
from services.stack import ENACTORS

LbState = Literal["active", "draining", "retired"]
MAX_GENERATED_LBS = 16_000
DNS_LABEL_MAX = 63
DNS_NAME_MAX = 255
DEMO_FLEET_PATH = Path(__file__).with_name("fleets") / "demo.toml"
DEMO_REGION = "us-east-1"
DEMO_AZS = tuple(az for _, az, _ in ENACTORS)


class FleetError(ValueError):
    """A fleet (or a change to one) is inconsistent. `errors` are (field path, message) pairs."""

    def __init__(self, errors: list[tuple[str, str]], source: str = "fleet"):
        self.errors = errors
        self.source = source
        super().__init__(
            f"{source} is invalid: " + "; ".join(f"{loc or '<root>'}: {msg}" for loc, msg in errors)
        )


class NotInFleet(LookupError):
    """A request names a load balancer or AZ the fleet does not have."""


class _Inconsistent(ValueError):
    """Raised inside the model validator; carries field paths out through pydantic's error ctx."""

    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = errors
        super().__init__("; ".join(f"{loc}: {msg}" for loc, msg in errors))


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Endpoint(_Frozen):
    """One DNS name customers use; it lives in its own hosted zone (by default, the name itself)."""

    name: str = Field(min_length=1, max_length=200)
    hosted_zone: str = ""
    record_types: tuple[RecordType, ...] = Field(min_length=1)
    zone_record_quota: int = Field(
        DEFAULT_LIMITS.max_record_sets_per_zone,
        ge=1,
        description="Record sets the hosted zone may hold (Route 53's default quota; raised on request)",
    )

    @field_validator("name", "hosted_zone")
    @classmethod
    def _dns_name(cls, v: str) -> str:
        return v.lower().rstrip(".")

    @field_validator("record_types")
    @classmethod
    def _distinct(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v):
            raise ValueError("record types must be distinct")
        return tuple(sorted(v))

    @model_validator(mode="after")
    def _zone(self) -> Endpoint:
        if not self.hosted_zone:
            object.__setattr__(self, "hosted_zone", self.name)
        elif self.name != self.hosted_zone and not self.name.endswith("." + self.hosted_zone):
            raise ValueError(f"endpoint {self.name} is not inside its hosted zone {self.hosted_zone}")
        return self


class LoadBalancer(_Frozen):
    """A load balancer serving one endpoint from one AZ. Capacity is in arbitrary units (think rps)."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")
    az: str = Field(min_length=1, max_length=32)
    endpoint: str = Field(min_length=1, max_length=200)
    ipv4: tuple[str, ...] = ()
    ipv6: tuple[str, ...] = ()
    capacity: int = Field(ge=0, le=10_000_000)
    state: LbState = "active"

    @field_validator("endpoint")
    @classmethod
    def _dns_name(cls, v: str) -> str:
        return v.lower().rstrip(".")

    @field_validator("ipv4")
    @classmethod
    def _v4(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(str(ipaddress.IPv4Address(a)) for a in v)

    @field_validator("ipv6")
    @classmethod
    def _v6(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(str(ipaddress.IPv6Address(a)) for a in v)


class Fleet(_Frozen):
    region: str = Field(min_length=1, max_length=32)
    azs: tuple[str, ...] = Field(min_length=1)
    drained_azs: tuple[str, ...] = ()
    endpoints: tuple[Endpoint, ...] = Field(min_length=1)
    load_balancers: tuple[LoadBalancer, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Fleet:
        errors = _consistency_errors(self) or _route53_errors(self)
        if errors:
            raise _Inconsistent(errors)
        return self

    # -- lookups ---------------------------------------------------------------------------

    def lb(self, lb_id: str) -> LoadBalancer | None:
        return next((b for b in self.load_balancers if b.id == lb_id), None)

    def endpoint(self, name: str) -> Endpoint | None:
        name = name.lower().rstrip(".")
        return next((e for e in self.endpoints if e.name == name), None)

    def lbs_of(self, endpoint: str) -> tuple[LoadBalancer, ...]:
        return tuple(b for b in self.load_balancers if b.endpoint == endpoint)

    def serving(self, lb: LoadBalancer) -> bool:
        """Whether the LB should take traffic: active, with capacity, in an AZ that is not drained."""
        return lb.state == "active" and lb.capacity > 0 and lb.az not in self.drained_azs

    # -- changes (each returns a new, validated fleet) --------------------------------------

    def with_load_balancer(self, lb: LoadBalancer) -> Fleet:
        if self.lb(lb.id) is not None:
            raise FleetError([("id", f"load balancer {lb.id} already exists")])
        return self._replace(load_balancers=(*self.load_balancers, lb))

    def without_load_balancer(self, lb_id: str) -> Fleet:
        self._require_lb(lb_id)
        return self._replace(load_balancers=tuple(b for b in self.load_balancers if b.id != lb_id))

    def with_lb_update(
        self, lb_id: str, *, capacity: int | None = None, state: LbState | None = None
    ) -> Fleet:
        lb = self._require_lb(lb_id)
        changes: dict[str, Any] = {}
        if capacity is not None:
            changes["capacity"] = capacity
        if state is not None:
            changes["state"] = state
        updated = {**lb.model_dump(mode="json"), **changes}
        return self._replace(load_balancers=[updated if b.id == lb_id else b for b in self.load_balancers])

    def drain_az(self, az: str) -> Fleet:
        self._require_az(az)
        return self._replace(drained_azs=tuple(sorted({*self.drained_azs, az})))

    def undrain_az(self, az: str) -> Fleet:
        self._require_az(az)
        return self._replace(drained_azs=tuple(a for a in self.drained_azs if a != az))

    # -- endpoints as desired state (each returns a new, validated fleet) -------------------

    def with_endpoint(self, endpoint: Endpoint) -> Fleet:
        if self.endpoint(endpoint.name) is not None:
            raise FleetError([("name", f"endpoint {endpoint.name} already exists")])
        return self._replace(endpoints=(*self.endpoints, endpoint))

    def without_endpoint(self, name: str) -> Fleet:
        """Remove the endpoint and the load balancers that serve it (their plan entries go too)."""
        ep = self._require_endpoint(name)
        return self._replace(
            endpoints=tuple(e for e in self.endpoints if e.name != ep.name),
            load_balancers=tuple(b for b in self.load_balancers if b.endpoint != ep.name),
        )

    def with_record_types(self, name: str, record_types: tuple[str, ...]) -> Fleet:
        ep = self._require_endpoint(name)
        updated = {**ep.model_dump(mode="json"), "record_types": list(record_types)}
        return self._replace(endpoints=[updated if e.name == ep.name else e for e in self.endpoints])

    def _require_endpoint(self, name: str) -> Endpoint:
        ep = self.endpoint(name)
        if ep is None:
            raise NotInFleet(f"no endpoint {name!r} in the fleet (endpoints: {', '.join(e.name for e in self.endpoints)})")
        return ep

    def _replace(self, **fields: Any) -> Fleet:
        return validate_fleet({**self.model_dump(mode="json"), **_dump(fields)})

    def _require_lb(self, lb_id: str) -> LoadBalancer:
        lb = self.lb(lb_id)
        if lb is None:
            raise NotInFleet(f"no load balancer {lb_id!r} in the fleet")
        return lb

    def _require_az(self, az: str) -> None:
        if az not in self.azs:
            raise NotInFleet(f"no AZ {az!r} in the fleet (AZs: {', '.join(self.azs)})")


def _dump(fields: dict[str, Any]) -> dict[str, Any]:
    """Plain data for re-validation: models inside the given sequences become dicts."""
    return {
        k: [x.model_dump(mode="json") if isinstance(x, BaseModel) else x for x in v]
        for k, v in fields.items()
    }


def _consistency_errors(fleet: Fleet) -> list[tuple[str, str]]:
    """Cross-field rules pydantic cannot express per field; each error names where it is."""
    errors: list[tuple[str, str]] = []
    if len(set(fleet.azs)) != len(fleet.azs):
        errors.append(("azs", "AZs must be distinct"))
    for az in fleet.drained_azs:
        if az not in fleet.azs:
            errors.append(("drained_azs", f"{az} is not one of the fleet's AZs"))
    names = [e.name for e in fleet.endpoints]
    if len(set(names)) != len(names):
        errors.append(("endpoints", "endpoint names must be distinct"))
    endpoints = {e.name: e for e in fleet.endpoints}
    seen_ids: set[str] = set()
    for i, lb in enumerate(fleet.load_balancers):
        where = f"load_balancers.{i}"
        if lb.id in seen_ids:
            errors.append((f"{where}.id", f"duplicate load balancer id {lb.id}"))
        seen_ids.add(lb.id)
        if lb.az not in fleet.azs:
            errors.append((f"{where}.az", f"{lb.id}: AZ {lb.az} is not one of {', '.join(fleet.azs)}"))
        ep = endpoints.get(lb.endpoint)
        if ep is None:
            errors.append((f"{where}.endpoint", f"{lb.id}: unknown endpoint {lb.endpoint}"))
            continue
        if "A" in ep.record_types and not lb.ipv4:
            errors.append(
                (f"{where}.ipv4", f"{lb.id}: endpoint {ep.name} serves A records, so it needs IPv4 addresses")
            )
        if "AAAA" in ep.record_types and not lb.ipv6:
            errors.append(
                (
                    f"{where}.ipv6",
                    f"{lb.id}: endpoint {ep.name} serves AAAA records, so it needs IPv6 addresses",
                )
            )
    return errors


# --- what Route 53 would refuse ----------------------------------------------------------------

# Any tree id the enactor may choose has this shape and length (runner: "t-" + uuid4().hex).
_SAMPLE_TREE = core.TreeInHand(layout.TREE_PREFIX + "0" * 32, version=1, created=0)
_CHECKER = core.CoreSettings(enactor_id="planner")


def _route53_errors(fleet: Fleet) -> list[tuple[str, str]]:
    """Every LB (and endpoint) of the fleet Route 53 would refuse, with the field to blame."""
    from planner.planning import endpoint_plans  # planning builds on this module

    errors: list[tuple[str, str]] = []
    index = {b.id: i for i, b in enumerate(fleet.load_balancers)}
    for i, lb in enumerate(fleet.load_balancers):
        errors += _lb_errors(f"load_balancers.{i}", lb)
    if errors:
        return errors
    zones: dict[str, list[tuple[int, int]]] = {}
    for ep_plan in endpoint_plans(fleet):
        k, ep = next((k, e) for k, e in enumerate(fleet.endpoints) if e.name == ep_plan.name)
        records = tree_of(ep_plan)
        errors += _name_errors(fleet, index, k, ep_plan, records)
        errors += _batch_errors(index, k, ep_plan, records)
        zones.setdefault(ep.hosted_zone, []).append((k, len(records)))
    for zone, members in zones.items():
        errors += _quota_errors(fleet, zone, members)
    return errors


def tree_of(ep: EndpointPlan) -> tuple:
    """The record sets of one tree of `ep`, as the enactor core builds it (its own function)."""
    return core.tree_records(_CHECKER, ep.name, "Z0PLANNERCHECK", ep, _SAMPLE_TREE)


def _lb_errors(where: str, lb: LoadBalancer) -> list[tuple[str, str]]:
    errors = []
    if len(lb.id) > DNS_LABEL_MAX or lb.id.endswith("-"):
        errors.append(
            (f"{where}.id", f"{lb.id}: an LB id must be a DNS label (at most {DNS_LABEL_MAX} characters of "
             "a-z, 0-9 and '-', not ending in '-'): Route 53 names its records after it")
        )
    for fld in ("ipv4", "ipv6"):
        addresses = getattr(lb, fld)
        repeated = sorted({a for a in addresses if addresses.count(a) > 1})
        if repeated:
            errors.append(
                (f"{where}.{fld}", f"{lb.id}: address {', '.join(repeated)} is repeated; Route 53 refuses a record "
                 "set with a duplicate value")
            )
    return errors


def _blame(fleet: Fleet, index: dict[str, int], ep_plan: EndpointPlan, text: str) -> int | None:
    """The LB (index in the fleet) whose id a refused record name carries, longest id first."""
    ids = sorted((t.lb_id for t in ep_plan.targets if t.lb_id in text), key=len, reverse=True)
    return index[ids[0]] if ids else None


def _name_errors(fleet: Fleet, index, k: int, ep_plan: EndpointPlan, records) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    blamed: set[int | None] = set()
    for record in records:
        name = record.name.rstrip(".")
        bad = [label for label in name.split(".") if not 0 < len(label) <= DNS_LABEL_MAX]
        if not bad and len(name) + 1 <= DNS_NAME_MAX:
            continue
        who = _blame(fleet, index, ep_plan, bad[0] if bad else name)
        if who in blamed:
            continue
        blamed.add(who)
        what = (f"label {bad[0]!r} has {len(bad[0])} characters (Route 53 allows {DNS_LABEL_MAX})" if bad
                else f"name {name!r} has {len(name) + 1} characters (Route 53 allows {DNS_NAME_MAX})")
        if who is None:
            errors.append((f"endpoints.{k}.name", f"endpoint {ep_plan.name}: its tree's {what}"))
        else:
            lb = fleet.load_balancers[who]
            errors.append((f"load_balancers.{who}.id", f"{lb.id}: the id makes its tree record's {what}; use a shorter id"))
    return errors


def _batch_errors(index, k: int, ep_plan: EndpointPlan, records) -> list[tuple[str, str]]:
    """Records that cannot fit one change batch beside the lock preamble (the core's own batching)."""
    state, _ = core.start(ep_plan.name, "Z0PLANNERCHECK")
    try:
        core.chunk_batches(_CHECKER, state, "build", tuple(Change("CREATE", r) for r in records), None, ())
        return []
    except ValueError:
        pass
    errors: list[tuple[str, str]] = []
    for record in records:
        try:
            core.chunk_batches(_CHECKER, state, "build", (Change("CREATE", record),), None, ())
        except ValueError:
            member = layout.split_set_identifier(record.set_identifier)[0] if record.set_identifier else None
            owner = next((t for t in ep_plan.targets if t.lb_id in record.name or t.lb_id == member), None)
            if owner is None:
                errors.append((f"endpoints.{k}", f"endpoint {ep_plan.name}: its tree record {record.name} {record.type} "
                               "does not fit one Route 53 change batch"))
                continue
            fld = "ipv6" if record.type == "AAAA" else "ipv4"
            count = len(owner.ipv6 if fld == "ipv6" else owner.ipv4)
            errors.append((f"load_balancers.{index[owner.lb_id]}.{fld}",
                           f"{owner.lb_id}: {count} addresses do not fit one Route 53 change batch "
                           f"({_CHECKER.limits.max_records_per_batch} records, "
                           f"{_CHECKER.limits.max_value_chars_per_batch} characters, with the lock preamble)"))
    return errors


def _quota_errors(fleet: Fleet, zone: str, members: list[tuple[int, int]]) -> list[tuple[str, str]]:
    """A zone whose endpoints' trees alone (plus their fixed records) exceed its quota can never be served."""
    endpoints = [fleet.endpoints[k] for k, _ in members]
    quota = min(e.zone_record_quota for e in endpoints)
    # Besides the trees: per endpoint and type a root and a rollback; per endpoint the lock and the
    # applied record (layout.py); the zone's own SOA and NS.
    fixed = 2 + sum(2 * len(e.record_types) + 2 for e in endpoints)
    needed = sum(n for _, n in members) + fixed
    if needed <= quota:
        return []
    return [
        (f"endpoints.{k}.zone_record_quota",
         f"endpoint {fleet.endpoints[k].name}: one tree of its {len(fleet.lbs_of(fleet.endpoints[k].name))} LBs is "
         f"{n} record sets; with the zone's other records zone {zone} needs {needed}, more than its quota of "
         f"{quota}: Route 53 would refuse it however old trees are cleaned up (remove LBs or raise the quota)")
        for k, n in members
    ]


def validate_fleet(data: Any, source: str = "fleet") -> Fleet:
    """Build a fleet from plain data; any defect raises FleetError with field paths."""
    try:
        return Fleet.model_validate(data)
    except ValidationError as exc:
        errors: list[tuple[str, str]] = []
        for e in exc.errors():
            cause = (e.get("ctx") or {}).get("error")
            if isinstance(cause, _Inconsistent):
                errors += cause.errors
            else:
                errors.append((".".join(map(str, e["loc"])), e["msg"].removeprefix("Value error, ")))
        raise FleetError(errors, source) from exc


def load_fleet_file(path: Path | str) -> Fleet:
    """Read a fleet from a .toml, .yaml or .yml file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise FleetError([("", f"cannot read it: {exc.strerror or exc}")], str(path)) from exc
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            raise FleetError([("", "unknown format: use a .toml, .yaml or .yml file")], str(path))
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise FleetError([("", f"not valid {path.suffix[1:].upper()}: {exc}")], str(path)) from exc
    if not isinstance(data, dict):
        raise FleetError(
            [("", "the file must hold a mapping (region, azs, endpoints, load_balancers)")], str(path)
        )
    return validate_fleet(data, str(path))


def demo_fleet() -> Fleet:
    return load_fleet_file(DEMO_FLEET_PATH)


# The generator reuses the demo's region, AZs and endpoints; only the load balancers multiply.
_ENDPOINT_SHARE = (0.5, 0.35, 0.15)
_AZ_SHARE = (0.4, 0.4, 0.2)
_SIZES = (500, 1000, 2000, 4000, 8000)


def generate_fleet(
    n: int, seed: int = 0, endpoints: tuple[str, ...] | None = None, zone_record_quota: int | None = None
) -> Fleet:
    """A fleet of `n` load balancers (3..16,000) spread over the demo's endpoints and AZs.

    `endpoints` keeps only those demo endpoints (in the demo's shares, renormalised); for example
    one A-only or one dual-stack endpoint for the scale benchmark; `zone_record_quota` sets their
    zones' quota (an account with a raised quota). The same arguments always give
    the same fleet. Every endpoint has at least one LB in every AZ once n allows it, so draining
    one AZ never empties an endpoint. The fleet is validated like any other: an endpoint whose
    tree cannot fit its zone is refused.
    """
    source = f"generated fleet of {n}"
    if not 3 <= n <= MAX_GENERATED_LBS:
        raise FleetError([("lbs", f"must be between 3 and {MAX_GENERATED_LBS}, got {n}")], source)
    base = demo_fleet()
    chosen = [
        (e, share) for e, share in zip(base.endpoints, _ENDPOINT_SHARE, strict=True)
        if endpoints is None or e.name in endpoints
    ]
    unknown = set(endpoints or ()) - {e.name for e, _ in chosen}
    if unknown or not chosen:
        names = ", ".join(e.name for e in base.endpoints)
        raise FleetError([("endpoints", f"not demo endpoints: {', '.join(sorted(unknown)) or '(none given)'}; use {names}")], source)
    total = sum(share for _, share in chosen)
    rng = random.Random(seed)
    counts = _apportion(n, tuple(share / total for _, share in chosen))
    lbs: list[dict[str, Any]] = []
    for (endpoint, _), count in zip(chosen, counts, strict=True):
        e_idx = base.endpoints.index(endpoint)
        per_az = _apportion(count, _AZ_SHARE)
        for az, az_count in zip(base.azs, per_az, strict=True):
            for k in range(az_count):
                g = len(lbs)
                lb: dict[str, Any] = {
                    "id": f"gen-{e_idx}-{az}-{k:03d}",
                    "az": az,
                    "endpoint": endpoint.name,
                    # Two addresses per LB from 10.64.0.0/16 and 2001:db8:0:a::/64, unique per LB.
                    "ipv4": [str(ipaddress.IPv4Address(0x0A400000 + g * 2 + j)) for j in (0, 1)],
                    "capacity": rng.choice(_SIZES),
                }
                if "AAAA" in endpoint.record_types:
                    lb["ipv6"] = [
                        str(ipaddress.IPv6Address((0x20010DB8 << 96) + (0xA << 64) + g * 2 + j))
                        for j in (0, 1)
                    ]
                lbs.append(lb)
    data = {
        **base.model_dump(mode="json"),
        "endpoints": [
            {**e.model_dump(mode="json"), **({"zone_record_quota": zone_record_quota} if zone_record_quota else {})}
            for e, _ in chosen
        ],
        "load_balancers": lbs,
    }
    return validate_fleet(data, source)


def _apportion(total: int, shares: tuple[float, ...]) -> list[int]:
    """Split `total` by `shares`, every part at least 1 when total allows, summing exactly to total."""
    parts = [max(1 if total >= len(shares) else 0, int(total * s)) for s in shares]
    i = 0
    while sum(parts) < total:
        parts[i % len(parts)] += 1
        i += 1
    while sum(parts) > total:
        j = max(range(len(parts)), key=lambda x: parts[x])
        parts[j] -= 1
    return parts
