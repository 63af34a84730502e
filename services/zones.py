"""Hosted zones of the endpoints: find a zone's id by name, create the zones that are missing, and
adopt a name whose records another tool manages today (its records -> fleet entries; see below).

Each endpoint lives in its own public hosted zone, named like the endpoint (or a parent of it,
as a fleet may say). The enactor finds the id with ListHostedZonesByName, the one call Route 53
offers for a look-up by name; `dnsctl up` calls `ensure_zones` before any enactor starts. Both
work the same against real Route 53 and the emulator: they only use documented calls.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from services.route53.records import Change, RecordSet, normalise_name


class ZoneNotFound(LookupError):
    def __init__(self, name: str):
        super().__init__(
            f"no public hosted zone named {name} (create it with `dnsctl zones ensure --endpoint NAME` (`dnsctl up` does it for the fleet), "
            "or with `aws route53 create-hosted-zone`)"
        )
        self.name = name


def bare_zone_id(raw: str) -> str:
    """'/hostedzone/Z123' -> 'Z123' (alias targets and most tools want the bare id)."""
    return raw.rsplit("/", 1)[-1]


def find_zone_id(name: str, client=None) -> str | None:
    """The bare id of the public hosted zone named exactly `name`, or None."""
    if client is None:
        from services.aws_clients import route53_client

        client = route53_client()
    wanted = normalise_name(name)
    marker: dict[str, str] = {}
    while True:
        # Zones come sorted by name from DNSName on; zones of the same name (rare) follow each other.
        page = client.list_hosted_zones_by_name(DNSName=wanted, MaxItems="100", **marker)
        for zone in page.get("HostedZones", []):
            zone_name = normalise_name(zone["Name"])
            if zone_name != wanted:
                return None
            if not zone.get("Config", {}).get("PrivateZone", False):
                return bare_zone_id(zone["Id"])
        if not page.get("IsTruncated"):
            return None
        marker = {"HostedZoneId": page["NextHostedZoneId"]}
        wanted = normalise_name(page["NextDNSName"])


def zone_id_for(name: str, client=None) -> str:
    """Like find_zone_id, but a missing zone is a ZoneNotFound that says how to create it."""
    zone_id = find_zone_id(name, client)
    if zone_id is None:
        raise ZoneNotFound(normalise_name(name))
    return zone_id


def ensure_zones(endpoint_names: Iterable[str], client=None, *, real_account: bool = False) -> dict[str, str]:
    """Create a public hosted zone for every name that has none; return {name: zone id} of those created.

    Idempotent: names that already have a zone are left alone. In a real AWS account (no endpoint
    override) it calls nothing unless `real_account` says the user asked for it (`--aws`):
    RealAccountRefused names the zones it could create.
    """
    from services.aws_clients import refuse_real_aws

    if client is None:
        from services.aws_clients import route53_client

        client = route53_client()
    names = list(dict.fromkeys(normalise_name(n) for n in endpoint_names))
    refuse_real_aws(client, f"create hosted zones for {', '.join(names)}", real_account)
    missing = [name for name in names if find_zone_id(name, client) is None]
    created: dict[str, str] = {}
    for name in missing:
        reply = client.create_hosted_zone(
            Name=name,
            CallerReference=f"dnsctl-{uuid.uuid4()}",
            HostedZoneConfig={"Comment": "dnsctl endpoint zone", "PrivateZone": False},
        )
        created[name] = bare_zone_id(reply["HostedZone"]["Id"])
    return created


# --- adopting an endpoint that already serves records ----------------------------------------
#
# `dnsctl zones adopt ENDPOINT` takes over a name that some other tool (or a person) manages
# today: the A/AAAA record sets at the name become the endpoint's first plan, one load balancer
# per weighted member (or one for a plain record set), with the same addresses. The enactor then
# builds the plan's tree beside the old records and flips the root to it in one batch: an UPSERT
# of the plain record into the alias, so every answer before and after the flip holds the same
# addresses and none is empty.
#
# A weighted set cannot be flipped that way: Route 53 refuses a plain alias beside weighted
# members of the same name and type. So a weighted set is first folded, in one atomic batch
# (DELETE every member exactly as read + CREATE one plain record set with the union of their
# addresses), into a plain record set that answers the same addresses; the weights come back with
# the flip (as the LBs' capacities). Between the fold and the flip, resolvers spread traffic
# evenly over the addresses instead of by weight; never is the name without an answer.

ADDRESS_TYPES = ("A", "AAAA")
ADOPTED_CAPACITY = 1000  # a plain record set's one LB: any positive capacity gives it all traffic
# Routing policies dnsctl does not model: an endpoint using one keeps its own tool.
_UNMODELLED = {
    "Region": "latency",
    "GeoLocation": "geolocation",
    "GeoProximityLocation": "geoproximity",
    "Failover": "failover",
    "MultiValueAnswer": "multivalue answer",
    "CidrRoutingConfig": "IP-based",
    "HealthCheckId": "health-checked",
}


class AdoptRefused(ValueError):
    """The endpoint's records cannot be adopted as they are; the message says why and what to do."""


@dataclass(frozen=True)
class Adoption:
    """What `zones adopt` found at an endpoint and the fleet entries it makes of it."""

    endpoint: str  # without the trailing dot, as the fleet spells names
    hosted_zone: str
    zone_id: str
    records: tuple[RecordSet, ...]  # the A/AAAA record sets serving the name now
    record_types: tuple[str, ...]
    load_balancers: tuple[dict, ...]  # planner LoadBalancer bodies (az filled in by the caller)

    @property
    def weighted(self) -> bool:
        return any(r.set_identifier is not None for r in self.records)

    def fleet_entries(self, az: str) -> dict:
        """The body of the planner's POST /v1/fleet/endpoints."""
        return {
            "endpoint": {"name": self.endpoint, "hosted_zone": self.hosted_zone, "record_types": list(self.record_types)},
            "load_balancers": [{**lb, "az": az} for lb in self.load_balancers],
        }

    def fold_changes(self) -> list[Change]:
        """The one batch that turns a weighted set into a plain record set of the same addresses."""
        if not self.weighted:
            return []
        changes = [Change("DELETE", r) for r in self.records]
        for rtype in self.record_types:
            members = [r for r in self.records if r.type == rtype]
            values = tuple(sorted({v for r in members for v in r.values}))
            ttl = min(r.ttl for r in members if r.ttl is not None)
            changes.append(Change("CREATE", RecordSet(self.endpoint, rtype, ttl=ttl, values=values)))
        return changes

    def unfold_changes(self) -> list[Change]:
        """The inverse of fold_changes: puts the weighted set back exactly as it was read."""
        fold = self.fold_changes()
        return [Change("DELETE", c.record) for c in fold if c.action == "CREATE"] + [Change("CREATE", r) for r in self.records]


def _lb_id(prefix: str, label: str, taken: set[str]) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", f"{prefix}-{label}".lower()).strip("-")[:60] or prefix
    candidate, n = slug, 2
    while candidate in taken:
        candidate, n = f"{slug[:57]}-{n}", n + 1
    taken.add(candidate)
    return candidate


def adoption_of(endpoint: str, hosted_zone: str, zone_id: str, raw_records: Iterable[dict], prefix: str = "adopted") -> Adoption:
    """Turn the record sets Route 53 lists at `endpoint` (boto3 dicts) into fleet entries.

    Pure: no I/O. Refuses (AdoptRefused) what dnsctl cannot serve identically: no addresses at
    the name, aliases (an ELB, CloudFront or another dnsctl root), CNAMEs, routing policies other
    than simple and weighted, health checks, and weighted members without an address of every type.
    """
    name = normalise_name(endpoint)
    records: list[RecordSet] = []
    for raw in raw_records:
        record = RecordSet.from_boto(raw)
        if record.name != name:
            continue
        if record.type == "CNAME":
            raise AdoptRefused(f"{name} is a CNAME to {', '.join(record.values)}: adopt the name it points to, or replace the CNAME by A/AAAA records first")
        if record.type not in ADDRESS_TYPES:
            continue
        policy = next((label for key, label in _UNMODELLED.items() if raw.get(key)), None)
        if policy:
            raise AdoptRefused(f"{name} {record.type} uses {policy} routing, which dnsctl does not model: only simple and weighted record sets can be adopted")
        if record.alias is not None:
            raise AdoptRefused(
                f"{name} {record.type} is an alias to {record.alias.dns_name} (already managed by dnsctl, or an AWS resource): "
                "only record sets of addresses can be adopted; list the load balancers' addresses in the fleet instead"
            )
        records.append(record)
    if not records:
        raise AdoptRefused(f"{name} has no A or AAAA records in zone {hosted_zone} ({zone_id}): nothing to adopt; add the endpoint to the fleet instead")
    types = tuple(t for t in ADDRESS_TYPES if any(r.type == t for r in records))
    taken: set[str] = set()
    weighted = [r for r in records if r.set_identifier is not None]
    lbs: list[dict] = []
    if not weighted:
        by_type = {r.type: r.values for r in records}
        label = name.rstrip(".").split(".")[0]
        lbs.append({
            "id": _lb_id(prefix, label, taken), "endpoint": name.rstrip("."), "capacity": ADOPTED_CAPACITY,
            "ipv4": list(by_type.get("A", ())), "ipv6": list(by_type.get("AAAA", ())),
        })
    else:
        members: dict[str, dict[str, RecordSet]] = {}
        for r in weighted:
            members.setdefault(r.set_identifier, {})[r.type] = r
        for sid, by_type in sorted(members.items()):
            missing = [t for t in types if t not in by_type]
            if missing:
                raise AdoptRefused(
                    f"weighted member {sid!r} of {name} has no {'/'.join(missing)} record while others do: dnsctl serves every "
                    "record type from every load balancer; add the missing record or remove the member first"
                )
            weights = {r.weight for r in by_type.values()}
            if len(weights) != 1:
                raise AdoptRefused(f"weighted member {sid!r} of {name} has different weights per record type ({sorted(weights)}): make them equal first")
            lbs.append({
                "id": _lb_id(prefix, sid, taken), "endpoint": name.rstrip("."), "capacity": weights.pop() or 0,
                "ipv4": list(by_type["A"].values) if "A" in by_type else [], "ipv6": list(by_type["AAAA"].values) if "AAAA" in by_type else [],
            })
        if not any(lb["capacity"] for lb in lbs):
            raise AdoptRefused(f"every weighted member of {name} has weight 0 (Route 53 then answers all of them equally): give one a weight first")
    return Adoption(name.rstrip("."), normalise_name(hosted_zone).rstrip("."), zone_id, tuple(sorted(records)), types, tuple(lbs))


def records_at(name: str, zone_id: str, client) -> list[dict]:
    """Every record set named exactly `name` in the zone (boto3 dicts), by a targeted listing."""
    wanted = normalise_name(name)
    kwargs: dict = {"HostedZoneId": zone_id, "StartRecordName": wanted, "MaxItems": "300"}
    out: list[dict] = []
    while True:
        page = client.list_resource_record_sets(**kwargs)
        for raw in page.get("ResourceRecordSets", []):
            if normalise_name(raw["Name"]) != wanted:
                return out
            out.append(raw)
        if not page.get("IsTruncated") or normalise_name(page["NextRecordName"]) != wanted:
            return out
        kwargs.update(StartRecordName=page["NextRecordName"], StartRecordType=page["NextRecordType"])
        if page.get("NextRecordIdentifier"):
            kwargs["StartRecordIdentifier"] = page["NextRecordIdentifier"]
        else:
            kwargs.pop("StartRecordIdentifier", None)


def enclosing_zone(name: str, client) -> tuple[str, str]:
    """(zone name, bare id) of the public hosted zone that holds `name`: the name itself or its nearest parent."""
    labels = normalise_name(name).rstrip(".").split(".")
    for i in range(len(labels) - 1):
        candidate = ".".join(labels[i:])
        zone_id = find_zone_id(candidate, client)
        if zone_id is not None:
            return candidate, zone_id
    raise ZoneNotFound(normalise_name(name))
