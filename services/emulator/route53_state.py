"""The emulator's Route 53 data: every hosted zone's record sets, its change ids and their status.

moto keeps the hosted zones themselves (name, id, comment, delegation set); this store keeps
what moto gets wrong: the record sets, changed only through services.route53.engine under one
lock per zone, and the changes, each with its own id, PENDING until the propagation delay has
passed and INSYNC after. It knows nothing of HTTP; services.emulator.moto_gaps serves it.
"""

from __future__ import annotations

import secrets
import string
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.route53.engine import DEFAULT_LIMITS, IndexedZone, Limits, Route53Error, apply_batch
from services.route53.listing import MAX_ITEMS, Page, SortedRecords
from services.route53.records import Change, RecordSet, Zone, normalise_name

# Route 53's default delegation set and SOA, as a new public zone gets them.
NAME_SERVERS = (
    "ns-2048.awsdns-64.com.",
    "ns-2049.awsdns-65.net.",
    "ns-2050.awsdns-66.org.",
    "ns-2051.awsdns-67.co.uk.",
)
SOA_TTL = 900
NS_TTL = 172800
_ID_CHARS = string.ascii_uppercase + string.digits
# Change ids kept for GetChange. Older ones are forgotten (NoSuchChange), oldest first, so memory
# stays bounded however long the emulator runs; by then they are long INSYNC.
MAX_CHANGE_IDS = 20_000


class NoSuchHostedZone(Route53Error):
    code = "NoSuchHostedZone"

    def __init__(self, zone_id: str):
        super().__init__(f"No hosted zone found with ID: {zone_id}")


class NoSuchChange(Route53Error):
    code = "NoSuchChange"

    def __init__(self, change_id: str):
        super().__init__("A change with the specified change ID does not exist.")


class HostedZoneNotEmpty(Route53Error):
    code = "HostedZoneNotEmpty"

    def __init__(self) -> None:
        super().__init__(
            "The hosted zone contains resource record sets in addition to the default NS and SOA "
            "resource record sets. Before you can delete the hosted zone, you must delete the "
            "additional resource record sets."
        )


class PriorRequestNotComplete(Route53Error):
    code = "PriorRequestNotComplete"

    def __init__(self) -> None:
        super().__init__("The request was rejected because Route 53 was still processing a prior request.")


def new_change_id() -> str:
    # Route 53 change ids look like C2682N5HXP0BZ4 (a C and upper-case alphanumerics).
    return "C" + "".join(secrets.choice(_ID_CHARS) for _ in range(20))


def default_records(zone_name: str) -> list[RecordSet]:
    """The SOA and NS record sets Route 53 puts into every new public hosted zone."""
    name = normalise_name(zone_name)
    soa = f"{NAME_SERVERS[0]} awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"
    return [
        RecordSet(name=name, type="NS", ttl=NS_TTL, values=NAME_SERVERS),
        RecordSet(name=name, type="SOA", ttl=SOA_TTL, values=(soa,)),
    ]


@dataclass(frozen=True, slots=True)
class ChangeInfo:
    id: str
    submitted_at: float  # epoch seconds, so a restored emulator keeps the same timeline
    comment: str = ""

    @property
    def submitted_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.submitted_at, tz=UTC)


@dataclass
class _HostedZone:
    lock: threading.Lock
    state: IndexedZone
    listing: SortedRecords | None = None  # cache for this state; rebuilt lazily after a change
    last_change: ChangeInfo | None = None


@dataclass
class Settings:
    limits: Limits = DEFAULT_LIMITS
    propagation_delay_s: float = 0.0
    prior_request_check: bool = False


@dataclass
class Route53Store:
    settings: Settings = field(default_factory=Settings)
    clock: Callable[[], float] = time.time
    _zones: dict[str, _HostedZone] = field(default_factory=dict)
    _changes: dict[str, ChangeInfo] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    max_change_ids: int = MAX_CHANGE_IDS
    _pinned_change: tuple[str, float] | None = None  # set by journal replay: the next change's id and time

    # --- zones ---------------------------------------------------------------------------

    def add_zone(
        self, zone_id: str, zone_name: str, records: Iterable[RecordSet] | None = None
    ) -> ChangeInfo:
        """Register a zone moto created (with Route 53's SOA and NS unless records are given)."""
        zone = Zone.of(zone_name, default_records(zone_name) if records is None else records, zone_id=zone_id)
        change = self._new_change("")
        with self._lock:
            self._zones[zone_id] = _HostedZone(
                lock=threading.Lock(), state=IndexedZone.of(zone), last_change=change
            )
        return change

    def remove_zone(self, zone_id: str) -> ChangeInfo:
        hosted = self._get(zone_id)
        with hosted.lock:
            zone = hosted.state.zone
            if any(not (r.name == zone.name and r.type in ("SOA", "NS")) for r in zone):
                raise HostedZoneNotEmpty()
            with self._lock:
                self._zones.pop(zone_id, None)
        return self._new_change("")

    def has_zone(self, zone_id: str) -> bool:
        return zone_id in self._zones

    def zone(self, zone_id: str) -> Zone:
        return self._get(zone_id).state.zone

    def record_count(self, zone_id: str) -> int:
        hosted = self._zones.get(zone_id)
        return len(hosted.state.zone) if hosted else 0

    def _get(self, zone_id: str) -> _HostedZone:
        hosted = self._zones.get(zone_id)
        if hosted is None:
            raise NoSuchHostedZone(zone_id)
        return hosted

    # --- changes -------------------------------------------------------------------------

    def change(self, zone_id: str, changes: Sequence[Change], comment: str = "") -> ChangeInfo:
        """Check and apply one batch atomically (one lock per zone); raises Route53Error."""
        hosted = self._get(zone_id)
        with hosted.lock:
            if self.settings.prior_request_check and hosted.last_change is not None:
                if self.status(hosted.last_change) == "PENDING":
                    raise PriorRequestNotComplete()
            hosted.state = apply_batch(hosted.state, changes, self.settings.limits)
            hosted.listing = None
            change = self._new_change(comment)
            hosted.last_change = change
        return change

    def page(
        self,
        zone_id: str,
        start_name: str | None = None,
        start_type: str | None = None,
        start_identifier: str | None = None,
        max_items: int = MAX_ITEMS,
    ) -> Page:
        hosted = self._get(zone_id)
        with hosted.lock:
            listing = hosted.listing
            if listing is None:
                listing = hosted.listing = SortedRecords(hosted.state.zone)
        return listing.page(start_name, start_type, start_identifier, max_items)

    def pin_next_change(self, change_id: str | None, submitted_at: float = 0.0) -> None:
        """Journal replay: the next change gets this id and time (None: back to fresh ones)."""
        self._pinned_change = (change_id, submitted_at) if change_id else None

    def _new_change(self, comment: str) -> ChangeInfo:
        pinned, self._pinned_change = self._pinned_change, None
        if pinned is not None:
            change = ChangeInfo(id=pinned[0], submitted_at=pinned[1], comment=comment)
        else:
            change = ChangeInfo(id=new_change_id(), submitted_at=self.clock(), comment=comment)
        with self._lock:
            self._changes[change.id] = change
            while len(self._changes) > self.max_change_ids:
                del self._changes[next(iter(self._changes))]  # dicts keep insertion order: the oldest
        return change

    def get_change(self, change_id: str) -> ChangeInfo:
        change = self._changes.get(change_id.rsplit("/", 1)[-1])
        if change is None:
            raise NoSuchChange(change_id)
        return change

    def status(self, change: ChangeInfo) -> str:
        if self.clock() - change.submitted_at < self.settings.propagation_delay_s:
            return "PENDING"
        return "INSYNC"

    # --- whole-store operations ----------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self._zones.clear()
            self._changes.clear()

    def snapshot(self) -> dict[str, Any]:
        """Plain data for the state file: every zone's records and every change id."""
        with self._lock:
            zones = dict(self._zones)
            changes = list(self._changes.values())
        out: dict[str, Any] = {"zones": {}, "changes": [[c.id, c.submitted_at, c.comment] for c in changes]}
        for zone_id, hosted in zones.items():
            with hosted.lock:
                zone = hosted.state.zone
                last = hosted.last_change.id if hosted.last_change else None
            out["zones"][zone_id] = {
                "name": zone.name,
                "records": [r.to_boto() for r in zone],
                "last_change": last,
            }
        return out

    def restore(self, data: dict[str, Any]) -> None:
        changes = {
            cid: ChangeInfo(id=cid, submitted_at=float(at), comment=comment)
            for cid, at, comment in data["changes"]
        }
        zones: dict[str, _HostedZone] = {}
        for zone_id, z in data["zones"].items():
            zone = Zone.of(z["name"], (RecordSet.from_boto(r) for r in z["records"]), zone_id=zone_id)
            last = changes.get(z.get("last_change") or "")
            zones[zone_id] = _HostedZone(lock=threading.Lock(), state=IndexedZone.of(zone), last_change=last)
        with self._lock:
            self._zones = zones
            self._changes = changes
