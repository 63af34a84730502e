"""What `dnsctl status` shows: one row per endpoint and one per enactor, from every source at once.

Per endpoint: the active plan version and tree, the rollback target, the lock holder and expiry
(all from Route 53 alone), the newest published plan (planner), the lag, and how many addresses
the data plane returns right now (a real DNS query). Per enactor: its state and, per endpoint,
its applied version and failed flips. Active alarms come from the prober when it runs. A source
that cannot be read shows as unreachable; it never makes the view fail. The planner's and the
enactors' part alone (HTTP, no Route 53 or DNS) is services/prober/service_status.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

from services.dns.explain import EndpointView, endpoint_views, view_to_json
from services.dns.snapshot import Snapshot, load_snapshot
from services.prober.rules import endpoint_key
from services.prober.service_status import (
    Sources,
    against_planner,
    enactor_row,
    fetch_enactors,
    fetch_planner,
    get,
)
from services.prober.sources import EnactorStatus, PlannerStatus

__all__ = ["Readings", "Sources", "compose", "enactor_row", "fetch_enactors", "fetch_planner", "gather", "read_sources", "route53_views"]


def dns_addresses(server: tuple[str, int], name: str, rtype: str, timeout_s: float) -> int | None:
    """Addresses the data plane returns now; None when it does not answer."""
    query = dns.message.make_query(name, dns.rdatatype.from_text(rtype))
    try:
        reply = dns.query.udp(query, server[0], port=server[1], timeout=timeout_s)
    except (dns.exception.DNSException, OSError):
        return None
    return sum(len(r) for r in reply.answer if r.rdtype == query.question[0].rdtype)


def endpoint_row(view: EndpointView, planner: PlannerStatus, enactors: list[EnactorStatus], addresses: dict[str, int | None],
                 now: float) -> dict[str, Any]:
    ep = endpoint_key(view.endpoint)
    active = view.active_version
    applied = max(
        [v for v in (active, view.applied.version if view.applied else None) if v is not None]
        + [e.applied_version for s in enactors if s.reachable and (e := s.endpoint(ep)) and e.applied_version is not None],
        default=None,
    )
    newest = planner.newest_version if planner.reachable else None
    lock = view.lock
    return {
        "endpoint": ep,
        "active_version": active,
        "tree": view.root[0].tree_id or view.root[0].target if view.root else None,
        "dangling": [a.tree_id or a.target for a in view.dangling],
        "rollback_tree": view.rollback_tree.tree_id if view.rollback_tree else None,
        "rollback_version": view.rollback_tree.plan_version if view.rollback_tree else None,
        "lock_holder": lock.holder if lock else None,
        "lock_expires": lock.expires if lock else None,
        "lock_expired": (lock.expires <= now) if lock else None,
        "applied_version": applied,
        **against_planner(newest, applied),
        "addresses": addresses,
        "route53": view_to_json(view),
    }


@dataclass(frozen=True)
class Readings:
    """What the view reads besides Route 53, at `at`: the planner, the enactors, the prober's alarms
    and, per endpoint and record type, how many addresses the data plane answers with."""

    at: float
    planner: PlannerStatus
    enactors: list[EnactorStatus]
    addresses: dict[str, dict[str, int | None]]
    alarms: Any = None
    prober_error: str | None = None


def read_sources(sources: Sources, views: list[EndpointView]) -> Readings:
    """Every source but Route 53 (the slow part of a view: HTTP and DNS round trips)."""
    at = time.time()
    planner = fetch_planner(sources)
    enactors = fetch_enactors(sources)
    addresses = {
        v.endpoint: {t: dns_addresses(sources.dns, v.endpoint, t, min(sources.dns_timeout_s, sources.timeout_s)) for t in (v.record_types or ("A",))}
        for v in views
    }
    alarms = None
    prober_error = None
    if sources.prober_url:
        body, prober_error = get("prober", sources.prober_url, "/v1/alarms", sources.timeout_s)
        alarms = body.get("alarms") if isinstance(body, dict) else None
    return Readings(at, planner, enactors, addresses, alarms, prober_error)


def compose(sources: Sources, views: list[EndpointView], route53_error: str | None, readings: Readings,
            now: float | None = None) -> dict[str, Any]:
    """The view from Route 53's endpoint views and the other sources' readings (which may be a
    moment older: the web console redraws Route 53's part as soon as it is read)."""
    now = readings.at if now is None else now
    planner, enactors = readings.planner, readings.enactors
    rows = []
    for v in views:
        known = readings.addresses.get(v.endpoint, {})
        addresses = {t: known.get(t) for t in (v.record_types or ("A",))}
        rows.append(endpoint_row(v, planner, enactors, addresses, now))
    return {
        "at": now,
        "route53_error": route53_error,
        "planner": {"url": planner.url, "reachable": planner.reachable, "newest_version": planner.newest_version,
                    "frozen": planner.frozen, "error": planner.error},
        "dns": f"{sources.dns[0]}:{sources.dns[1]}",
        "endpoints": rows,
        "enactors": [enactor_row(s) for s in enactors],
        "alarms": readings.alarms,
        "prober_error": readings.prober_error,
    }


def route53_views(sources: Sources, route53: Any, snapshot: Snapshot | None = None) -> tuple[list[EndpointView], str | None]:
    """The endpoints as Route 53 has them (from `snapshot`, else a read of its own), and the error if it cannot be read."""
    try:
        return endpoint_views(snapshot if snapshot is not None else load_snapshot(route53, only=sources.zones)), None
    except Exception as exc:  # noqa: BLE001 - shown in the view, not raised
        return [], f"{type(exc).__name__}: {exc}"[:300]


def gather(sources: Sources, route53: Any, snapshot: Snapshot | None = None) -> dict[str, Any]:
    """Everything `dnsctl status` shows, as JSON-ready data; from `snapshot` when the caller
    keeps one fresh (the web console), else from a Route 53 read of its own."""
    now = time.time()
    views, route53_error = route53_views(sources, route53, snapshot)
    return compose(sources, views, route53_error, read_sources(sources, views), now)
