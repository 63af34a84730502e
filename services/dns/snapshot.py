"""An in-memory snapshot of every hosted zone, refreshed from Route 53's control API.

The DNS server answers from a `Snapshot`, an immutable value; a background thread builds a new
one from ListHostedZones + ListResourceRecordSets (every page) and swaps the reference, so a
query never waits for a refresh and never sees a half-read zone. A refresh that fails keeps the
last good snapshot (the data plane keeps serving, as Route 53's does when its control plane is
sick), logs the failure once and counts it.

Route 53's control API allows five requests per second per account (DNSCTL_ROUTE53_RPS), and
every Route 53 client of a process is paced by services/rate_limit.py. The refresher counts the
requests each refresh makes and waits long enough to stay within that rate by itself: with many
zones the effective interval grows (zones / rate), and it says so once in the log.

Paged reads are not atomic: if a change batch lands between two pages, an alias may appear to
point at a record that the next page no longer has. A zone read over several pages that shows a
missing alias target is therefore read once more before it is believed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from prometheus_client import Counter, Gauge, Histogram

from services.logs import get_logger
from services.rate_limit import RateLimitSettings
from services.route53.records import RecordSet, Zone, normalise_name

DEFAULT_REFRESH_S = 0.25
# New hosted zones are noticed this often; every zone's records are read every refresh. Route 53
# allows 5 control-API requests per second per account, so the listing is not repeated each time.
DEFAULT_LIST_INTERVAL_S = 5.0
# The share of the account's Route 53 request rate (DNSCTL_ROUTE53_RPS) a refresher may use, so
# the client-side limiter never has to hold it back and other work in the process is not starved.
ROUTE53_SHARE = 0.9
# Route 53's SOA minimum when a zone has no SOA record (it always has one on AWS).
DEFAULT_NEGATIVE_TTL = 900

REFRESHES = Counter("dnsctl_snapshot_refreshes_total", "Route 53 snapshot refreshes", ["result"])
ZONE_READ_FAILURES = Counter("dnsctl_snapshot_zone_read_failures_total", "Zones whose read failed (previous copy kept)")
REFRESH_SECONDS = Histogram(
    "dnsctl_snapshot_refresh_seconds",
    "Time to read every served zone from Route 53",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SNAPSHOT_AGE = Gauge("dnsctl_snapshot_age_seconds", "Seconds since the served snapshot was read from Route 53")
INTERVAL = Gauge("dnsctl_snapshot_interval_seconds", "Effective time between Route 53 reads (interval or rate budget)")
BAD_SOA = Counter("dnsctl_snapshot_invalid_soa_total", "Zone reads whose SOA record was not a valid SOA (default used)")
ZONES_SERVED = Gauge("dnsctl_snapshot_zones", "Hosted zones in the served snapshot")


def _ancestors(name: str, apex: str) -> Iterable[str]:
    """Names strictly between `name` and `apex` (exclusive of both), nearest first."""
    labels = name.split(".")[:-1]
    for i in range(1, len(labels)):
        candidate = ".".join(labels[i:]) + "."
        if candidate == apex or not candidate.endswith("." + apex):
            return
        yield candidate


def _valid_soa(record: RecordSet) -> bool:
    """An SOA a negative answer can carry: MNAME RNAME and five numbers."""
    fields = record.values[0].split() if record.values else []
    return len(fields) == 7 and all(f.isdigit() for f in fields[2:])


@dataclass(frozen=True, slots=True)
class ServedZone:
    """One hosted zone indexed for answering: record sets by name and type."""

    zone: Zone
    rrsets: Mapping[str, Mapping[str, tuple[RecordSet, ...]]]
    # Names that own no records but have descendants: they exist (NOERROR, no data).
    nonterminals: frozenset[str]
    # Names below the apex that carry NS records: delegated away.
    delegations: frozenset[str]
    soa: RecordSet | None
    soa_invalid: bool = False  # the zone has an SOA record set that is not a valid SOA

    @property
    def name(self) -> str:
        return self.zone.name

    @property
    def zone_id(self) -> str:
        return self.zone.zone_id

    @classmethod
    def build(cls, zone: Zone) -> ServedZone:
        by_name: dict[str, dict[str, list[RecordSet]]] = {}
        for record in zone:
            if record.name != zone.name and not record.name.endswith("." + zone.name):
                continue  # not in this zone: Route 53 would never have accepted it
            by_name.setdefault(record.name, {}).setdefault(record.type, []).append(record)
        rrsets = {
            name: {rtype: tuple(sorted(members, key=lambda r: r.set_identifier or "")) for rtype, members in types.items()}
            for name, types in by_name.items()
        }
        nonterminals = {anc for name in rrsets for anc in _ancestors(name, zone.name)} - set(rrsets)
        delegations = frozenset(n for n, types in rrsets.items() if n != zone.name and "NS" in types)
        soa_set = rrsets.get(zone.name, {}).get("SOA", ())
        soa = soa_set[0] if soa_set and _valid_soa(soa_set[0]) else None
        return cls(zone, rrsets, frozenset(nonterminals), delegations, soa, soa_invalid=bool(soa_set) and soa is None)

    def negative_ttl(self) -> int:
        """RFC 2308: a negative answer is cached for min(SOA TTL, SOA MINIMUM)."""
        if self.soa is None:
            return DEFAULT_NEGATIVE_TTL
        minimum = int(self.soa.values[0].split()[6])
        return min(self.soa.ttl if self.soa.ttl is not None else minimum, minimum)

    def soa_value(self) -> str:
        """The zone's SOA, or Route 53's default shape when the zone has none that is valid."""
        if self.soa is not None:
            return self.soa.values[0]
        return f"ns-0.invalid. hostmaster.{self.name} 1 7200 900 1209600 {DEFAULT_NEGATIVE_TTL}"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every served zone at one moment, keyed by apex name and by hosted zone id."""

    zones: Mapping[str, ServedZone] = field(default_factory=dict)
    by_id: Mapping[str, ServedZone] = field(default_factory=dict)
    loaded_at: float = 0.0  # time.time() when the read finished
    generation: int = 0

    @classmethod
    def of(cls, zones: Iterable[Zone], loaded_at: float = 0.0, generation: int = 0) -> Snapshot:
        served = [z if isinstance(z, ServedZone) else ServedZone.build(z) for z in zones]
        return cls(
            zones={z.name: z for z in served},
            by_id={_bare_zone_id(z.zone_id): z for z in served if z.zone_id},
            loaded_at=loaded_at,
            generation=generation,
        )

    def zone_for(self, name: str) -> ServedZone | None:
        """The served zone with the longest apex that `name` (normalised) is in, if any."""
        zones = self.zones
        if name in zones:
            return zones[name]
        rest = name
        while True:
            dot = rest.find(".")
            if dot < 0 or dot == len(rest) - 1:
                return zones.get(".")
            rest = rest[dot + 1 :]
            if rest in zones:
                return zones[rest]


def _bare_zone_id(zone_id: str) -> str:
    return zone_id.rsplit("/", 1)[-1]


# ---------------------------------------------------------------------------------------------
# Reading Route 53


@dataclass(frozen=True, slots=True)
class ZoneListing:
    zone_id: str
    name: str
    private: bool


def zone_selected(name: str, only: tuple[str, ...]) -> bool:
    """True when `only` is empty, or the zone is one of `only` or below one of them."""
    if not only:
        return True
    name = normalise_name(name)
    return any(name == z or name.endswith("." + z) for z in (normalise_name(o) for o in only))


def list_zones(client: Any) -> list[ZoneListing]:
    out: list[ZoneListing] = []
    for page in client.get_paginator("list_hosted_zones").paginate():
        for hz in page.get("HostedZones", []):
            out.append(
                ZoneListing(
                    zone_id=_bare_zone_id(hz["Id"]),
                    name=normalise_name(hz["Name"]),
                    private=bool(hz.get("Config", {}).get("PrivateZone", False)),
                )
            )
    return out


def read_zone(
    client: Any, zone_id: str, name: str, page_size: int | None = None, first_page: Mapping[str, Any] | None = None
) -> tuple[Zone, int]:
    """Every record set of one zone, following NextRecordName/Type/Identifier; returns (zone, pages).
    `first_page`: the zone's first page as a caller already read it (it counts as one page)."""
    records: dict[tuple[str, str, str | None], RecordSet] = {}
    kwargs: dict[str, Any] = {"HostedZoneId": zone_id}
    if page_size:
        kwargs["MaxItems"] = str(page_size)
    pages, seen_starts = 0, set()
    while True:
        page = first_page if first_page is not None and pages == 0 else client.list_resource_record_sets(**kwargs)
        pages += 1
        for raw in page.get("ResourceRecordSets", []):
            record = RecordSet.from_boto(raw)
            records[record.key] = record
        if not page.get("IsTruncated"):
            break
        start = (page.get("NextRecordName"), page.get("NextRecordType"), page.get("NextRecordIdentifier"))
        if start in seen_starts:
            # A server that cannot page past a large weighted set would loop forever here.
            raise RuntimeError(f"zone {name} paging does not advance past {start}")
        seen_starts.add(start)
        kwargs["StartRecordName"], kwargs["StartRecordType"] = start[0], start[1]
        if start[2]:
            kwargs["StartRecordIdentifier"] = start[2]
        else:
            kwargs.pop("StartRecordIdentifier", None)
    return Zone.of(name, records.values(), zone_id=zone_id), pages


def has_missing_alias_target(served: ServedZone) -> bool:
    for types in served.rrsets.values():
        for rtype, members in types.items():
            for r in members:
                if r.alias is not None and rtype not in served.rrsets.get(r.alias.dns_name, {}):
                    if r.alias.dns_name == served.name or r.alias.dns_name.endswith("." + served.name):
                        return True
    return False


def read_served_zone(
    client: Any, zone_id: str, name: str, page_size: int | None = None, first_page: Mapping[str, Any] | None = None
) -> ServedZone:
    zone, pages = read_zone(client, zone_id, name, page_size, first_page)
    served = ServedZone.build(zone)
    if pages > 1 and has_missing_alias_target(served):
        served = ServedZone.build(read_zone(client, zone_id, name, page_size)[0])
    return served


def is_missing_zone(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") == "NoSuchHostedZone"


def load_snapshot(
    client: Any,
    *,
    only: tuple[str, ...] = (),
    previous: Snapshot | None = None,
    page_size: int | None = None,
    listings: list[ZoneListing] | None = None,
    on_zone_error: Callable[[str, BaseException], None] | None = None,
) -> Snapshot:
    """Read every selected public hosted zone (from `listings`, or ListHostedZones when None).
    A zone whose read fails keeps its previous copy; a zone that no longer exists is dropped.
    A failing ListHostedZones raises."""
    if listings is None:
        listings = list_zones(client)
    listings = [z for z in listings if not z.private and zone_selected(z.name, only)]
    previous = previous or Snapshot()
    zones: dict[str, ServedZone] = {}
    for listing in listings:
        if listing.name in zones:
            continue  # same name twice (Route 53 allows it): serve the first, as listed
        try:
            served = read_served_zone(client, listing.zone_id, listing.name, page_size)
        except (ClientError, BotoCoreError, RuntimeError) as exc:
            if is_missing_zone(exc):
                continue
            ZONE_READ_FAILURES.inc()
            if on_zone_error is not None:
                on_zone_error(listing.name, exc)
            old = previous.by_id.get(listing.zone_id)
            if old is None:
                continue
            served = old
        old = previous.zones.get(listing.name)
        if old is not None and old.zone_id == served.zone_id and old.zone.records == served.zone.records:
            served = old  # unchanged: keep the same object so readers can compare by identity
        zones[listing.name] = served
    return Snapshot.of(zones.values(), loaded_at=time.time(), generation=previous.generation + 1)


def _apex_of(served: ServedZone) -> dict[str, str]:
    """What the apex's A/AAAA records point at: "type" -> alias target, or the values."""
    out = {}
    for rtype in ("A", "AAAA"):
        for r in served.rrsets.get(served.name, {}).get(rtype, ()):
            out[rtype] = r.alias.dns_name if r.alias else " ".join(r.values)
    return out


class SnapshotRefresher:
    """Keeps `current` fresh from Route 53 in a daemon thread; `current` is None until the first
    successful read. Listeners are called (in the refresher thread) after every swap."""

    def __init__(
        self,
        client_factory: Callable[[], Any],
        *,
        interval_s: float = DEFAULT_REFRESH_S,
        only: tuple[str, ...] = (),
        page_size: int | None = None,
        list_interval_s: float = DEFAULT_LIST_INTERVAL_S,
        log_root_changes: bool = True,
        name: str = "route53-snapshot",
    ):
        self._client_factory = client_factory
        self.interval_s = interval_s
        self.only = only
        self.page_size = page_size
        self.list_interval_s = list_interval_s
        self.log_root_changes = log_root_changes
        self.rate_budget_rps = RateLimitSettings.from_env().rps
        self._requests = 0
        self._avg_requests: float | None = None
        self._slowed = False
        self._listings: list[ZoneListing] | None = None
        self._listed_at = 0.0
        self.current: Snapshot | None = None
        self._listeners: list[Callable[[Snapshot], None]] = []
        self._stop = threading.Event()
        self._loaded = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._failing = False
        self._zone_errors_logged: set[str] = set()
        self._log = get_logger(component="snapshot")

    def add_listener(self, fn: Callable[[Snapshot], None]) -> None:
        self._listeners.append(fn)

    def start(self) -> SnapshotRefresher:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def wait_loaded(self, timeout_s: float) -> bool:
        return self._loaded.wait(timeout_s)

    def refresh_once(self, client: Any) -> Snapshot:
        started = time.monotonic()
        if self._listings is None or started - self._listed_at >= self.list_interval_s:
            self._listings = list_zones(client)
            self._listed_at = started
        snap = load_snapshot(
            client,
            only=self.only,
            previous=self.current,
            page_size=self.page_size,
            listings=self._listings,
            on_zone_error=self._zone_error,
        )
        wanted = {z.name for z in self._listings if not z.private and zone_selected(z.name, self.only)}
        if not wanted <= snap.zones.keys():
            self._listings = None  # a zone went away (or failed): list again next time
        REFRESH_SECONDS.observe(time.monotonic() - started)
        self._log_changes(self.current, snap)
        self.current = snap
        ZONES_SERVED.set(len(snap.zones))
        for fn in self._listeners:
            fn(snap)
        return snap

    def _zone_error(self, zone: str, exc: BaseException) -> None:
        if zone not in self._zone_errors_logged:
            self._zone_errors_logged.add(zone)
            self._log.warning("snapshot_zone_read_failed", zone=zone, error=str(exc)[:300])

    def _log_changes(self, old: Snapshot | None, new: Snapshot) -> None:
        for name, served in new.zones.items():
            if served.soa_invalid and (old is None or old.zones.get(name) is not served):
                BAD_SOA.inc()
                self._log.warning("zone_soa_invalid", zone=name, value=served.zone.get(name, "SOA").values[:1],
                                  using=served.soa_value())
        if old is None:
            self._log.info("snapshot_loaded", zones=len(new.zones), records=sum(len(z.zone) for z in new.zones.values()))
            return
        for name, served in new.zones.items():
            before = old.zones.get(name)
            if before is served:
                continue
            self._zone_errors_logged.discard(name)
            endpoint = name.rstrip(".")
            if before is None:
                self._log.info("snapshot_zone_added", zone=name, endpoint=endpoint, records=len(served.zone),
                               root=_apex_of(served))
            elif self.log_root_changes and _apex_of(before) != _apex_of(served):
                # Every batch rewrites the lock record; only what the apex answers with is news.
                root = _apex_of(served)
                first = next(iter(root.values()), "")
                self._log.info("snapshot_root_changed", zone=name, endpoint=endpoint, root=root, was=_apex_of(before),
                               tree_id=first.split(".", 1)[0] if first.startswith("t-") else None)
        for name in old.zones.keys() - new.zones.keys():
            self._log.info("snapshot_zone_gone", zone=name)

    def _count_request(self, **_: Any) -> None:
        self._requests += 1

    def _pause_after(self, elapsed: float, requests: int) -> float:
        """Seconds to wait before the next refresh: the interval, stretched so that this
        process's reads stay within its share of Route 53's per-account request rate."""
        # A running average: the occasional ListHostedZones should not flip the decision back and forth.
        self._avg_requests = requests if self._avg_requests is None else 0.8 * self._avg_requests + 0.2 * requests
        budget_s = self._avg_requests / (self.rate_budget_rps * ROUTE53_SHARE)
        cycle = max(self.interval_s, budget_s)
        INTERVAL.set(cycle)
        slowed = budget_s > self.interval_s
        if slowed != self._slowed:
            self._slowed = slowed
            self._log.info(
                "snapshot_refresh_slowed" if slowed else "snapshot_refresh_on_time",
                interval_ms=int(self.interval_s * 1000),
                effective_interval_ms=int(cycle * 1000),
                requests_per_refresh=round(self._avg_requests, 2),
                route53_rps=self.rate_budget_rps,
            )
        return max(0.0, cycle - elapsed)

    def _run(self) -> None:
        client = None
        while not self._stop.is_set():
            started = time.monotonic()
            self._requests = 0
            try:
                if client is None:
                    client = self._client_factory()
                    client.meta.events.register("before-send.route-53", self._count_request)
                self.refresh_once(client)
                REFRESHES.labels("ok").inc()
                if self._failing:
                    self._failing = False
                    self._log.info("snapshot_refresh_recovered")
                self._loaded.set()
            except Exception as exc:  # noqa: BLE001 - any failure keeps the last good snapshot
                REFRESHES.labels("failed").inc()
                if not self._failing:
                    self._failing = True
                    self._log.warning("snapshot_refresh_failed", error=str(exc)[:300], kept_generation=self.generation)
            if self.current is not None:
                SNAPSHOT_AGE.set(max(0.0, time.time() - self.current.loaded_at))
            self._stop.wait(self._pause_after(time.monotonic() - started, self._requests))

    @property
    def generation(self) -> int:
        return self.current.generation if self.current is not None else 0
