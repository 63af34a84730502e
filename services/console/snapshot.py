"""The console's Route 53 reader: a snapshot of every endpoint's zone, within a budget of calls.

Issue 15's bound is on every Route 53 call the console makes, whatever its kind: at most one per
endpoint per second, whatever the number of open pages. The DNS data plane's refresher
(services/dns/snapshot.py) reads every zone every interval *and* lists the hosted zones every
5 s on top, which is more than that; this reader spends one budget on all of it instead:

- Every call (ListHostedZones, ListResourceRecordSets pages, botocore's retries) is counted as
  it is sent, and the next round waits until the calls made so far fit CALLS_PER_ENDPOINT_S x
  endpoints per second (capped by the process's share of the account's rate). Nothing bursts
  beyond one round, so any window of the emulator's (or CloudTrail's) count stays within it.
- A round reads each zone's first page (up to 300 record sets, Route 53's largest page). A zone
  that fits one page (every demo endpoint) is then whole: one call per endpoint per round.
- A bigger zone's first page is the targeted read: Route 53 sorts the apex, `_applied` and
  `_lock` first (names with labels reversed, "_" before letters; enactor/layout.py), and every
  change batch of an enactor or of repair rewrites the lock. While that page is what it was at
  the last whole read, the zone has not changed and the rest is not read again; when it differs
  (or the whole read is FULL_READ_EVERY_S old) the zone is read whole, continuing from that page.
- ListHostedZones runs at start, when a zone read says the zone is gone, and every
  LIST_EVERY_S to notice new endpoints; it is paid for from the same budget.

A zone whose read fails keeps its previous copy (the page says how old the snapshot is); a
zone that no longer exists is dropped. Listeners are called in the reader's thread after every
round, with the new `Snapshot`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from services.dns.snapshot import (
    ROUTE53_SHARE,
    ServedZone,
    Snapshot,
    SnapshotRefresher,
    ZoneListing,
    is_missing_zone,
    list_zones,
    read_served_zone,
    zone_selected,
)
from services.logs import get_logger
from services.route53.records import RecordSet

# The app id the console's boto3 clients put in their User-Agent (boto3's AWS_SDK_UA_APP_ID), so
# Route 53's side can tell its calls apart: CloudTrail's userAgent on AWS, the emulator's
# dnsctl_emulator_route53_requests_total{caller="dnsctl-console"} locally.
APP_ID = "dnsctl-console"
# Below the 1 so that a measured window (which may catch one round more than its share)
# stays at or under one call per endpoint per second; a round then comes every ~1.05 s.
CALLS_PER_ENDPOINT_S = 0.95
LIST_EVERY_S = 10.0
FULL_READ_EVERY_S = 30.0


@dataclass(frozen=True, slots=True)
class _Read:
    """What the last whole read of a zone saw: the zone, its first page's record sets, when."""

    served: ServedZone
    first_page: tuple[RecordSet, ...]
    at: float


class BudgetedRefresher(SnapshotRefresher):
    """Keeps `current` (a services.dns.snapshot.Snapshot) fresh within the console's call budget.

    The data plane's refresher's thread, listeners and zone-error logging; its own rounds and pacing."""

    def __init__(
        self,
        client_factory: Callable[[], Any],
        *,
        only: tuple[str, ...] = (),
        calls_per_endpoint_s: float = CALLS_PER_ENDPOINT_S,
        list_every_s: float = LIST_EVERY_S,
        full_read_every_s: float = FULL_READ_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
        name: str = "console-route53",
    ):
        super().__init__(client_factory, only=only, log_root_changes=False, name=name)
        self.calls_per_endpoint_s = calls_per_endpoint_s
        self.list_every_s = list_every_s
        self.full_read_every_s = full_read_every_s
        self.account_rps = self.rate_budget_rps
        self._clock = clock
        self.calls = 0  # every Route 53 request sent (retries included)
        self._reads: dict[str, _Read] = {}  # zone id -> its last whole read
        self._budget_logged: tuple[int, float] | None = None
        self._log = get_logger(component="console-route53")

    def _count(self, **_: Any) -> None:
        self.calls += 1

    def rate(self) -> float:
        """Calls per second the console may make now: its share per endpoint, within the account's."""
        endpoints = len(self._wanted()) if self._listings is not None else 0
        rate = min(self.calls_per_endpoint_s * max(1, endpoints), ROUTE53_SHARE * self.account_rps)
        if self._budget_logged != (endpoints, rate):
            self._budget_logged = (endpoints, rate)
            self._log.info("console_route53_budget", endpoints=endpoints, calls_per_s=round(rate, 3),
                           per_endpoint=round(rate / max(1, endpoints), 3), account_rps=self.account_rps)
        return rate

    def _wanted(self) -> list[ZoneListing]:
        seen: set[str] = set()
        out = []
        for z in self._listings or ():
            if not z.private and zone_selected(z.name, self.only) and z.name not in seen:
                seen.add(z.name)  # same name twice (Route 53 allows it): the first, as listed
                out.append(z)
        return out

    def refresh_once(self, client: Any) -> Snapshot:
        """One round: list the zones when due, then read every selected zone (see module doc)."""
        now = self._clock()
        if self._listings is None or now - self._listed_at >= self.list_every_s:
            self._listings = list_zones(client)
            self._listed_at = now
        previous = self.current or Snapshot()
        zones: list[ServedZone] = []
        gone = False
        for listing in self._wanted():
            try:
                served = self._read_zone(client, listing)
            except (ClientError, BotoCoreError, RuntimeError) as exc:
                if is_missing_zone(exc):
                    gone = True
                    self._reads.pop(listing.zone_id, None)
                    continue
                self._zone_error(listing.name, exc)
                old = previous.by_id.get(listing.zone_id)
                if old is None:
                    continue
                served = old
            else:
                self._zone_errors_logged.discard(listing.name)
            zones.append(served)
        if gone:
            self._listings = None  # a zone went away: list again next round
        snap = Snapshot.of(zones, loaded_at=time.time(), generation=previous.generation + 1)
        self.current = snap
        for fn in self._listeners:
            fn(snap)
        return snap

    def _read_zone(self, client: Any, listing: ZoneListing) -> ServedZone:
        page = client.list_resource_record_sets(HostedZoneId=listing.zone_id)
        head = tuple(RecordSet.from_boto(r) for r in page.get("ResourceRecordSets", []))
        last = self._reads.get(listing.zone_id)
        now = self._clock()
        if page.get("IsTruncated") and last is not None and last.first_page == head and now - last.at < self.full_read_every_s:
            return last.served  # the lock and the root are as they were: no batch landed since
        served = read_served_zone(client, listing.zone_id, listing.name, first_page=page)
        if last is not None and last.served.zone.records == served.zone.records:
            served = last.served  # unchanged: the same object, so readers can compare by identity
        self._reads[listing.zone_id] = _Read(served, head, now)
        return served

    def _run(self) -> None:
        client = None
        due = self._clock()
        while not self._stop.wait(max(0.0, due - self._clock())):
            started, before = self._clock(), self.calls
            try:
                if client is None:
                    client = self._client_factory()
                    client.meta.events.register("before-send.route-53", self._count)
                self.refresh_once(client)
                self._loaded.set()
                if self._failing:
                    self._failing = False
                    self._log.info("console_route53_recovered")
            except Exception as exc:  # noqa: BLE001 - any failure keeps the last good snapshot
                if not self._failing:
                    self._failing = True
                    self._log.warning("console_route53_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            # The next round starts once this one's calls fit the budget: its first call plus
            # calls / rate (one call at least, so a round that failed before sending does not spin).
            due = started + max(1, self.calls - before) / self.rate()
