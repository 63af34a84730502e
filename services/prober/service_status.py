"""The planner's and the enactors' status as `dnsctl status` reads it: HTTP only.

Where the view reads from (Sources), the planner's and every enactor's GET status through the
CLI's service client, and an enactor's row of the view. Nothing here touches Route 53 or DNS, so
a caller that has the Route 53 part already (the console's view, the cells' extra planners and
enactors) reads the services without importing botocore or dnspython (services/prober/overview.py
adds those parts).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from cli.client import ServiceError, service_client
from services.prober.sources import EnactorStatus, PlannerStatus, parse_enactor_status, parse_planner_status


@dataclass(frozen=True)
class Sources:
    planner_url: str
    enactor_urls: tuple[tuple[str, str], ...]  # (service name, url)
    dns: tuple[str, int]
    prober_url: str | None
    zones: tuple[str, ...] = ()
    timeout_s: float = 2.0
    dns_timeout_s: float = 0.5  # per DNS query; a slower answer shows as "no answer"


def get(service: str, url: str, path: str, timeout_s: float) -> tuple[Any, str | None]:
    """The service's JSON body, or None and the error in words."""
    try:
        return service_client(service, url, timeout_s).get(path), None
    except ServiceError as exc:
        return None, str(exc)


def fetch_planner(sources: Sources) -> PlannerStatus:
    body, error = get("planner", sources.planner_url, "/v1/planner/status", sources.timeout_s)
    return parse_planner_status(body, sources.planner_url) if error is None else PlannerStatus(sources.planner_url, False, error=error)


def fetch_enactors(sources: Sources) -> list[EnactorStatus]:
    out = []
    for name, url in sources.enactor_urls:
        body, error = get(name, url, "/status", sources.timeout_s)
        status = parse_enactor_status(body, url) if error is None else EnactorStatus(url, False, name, error=error)
        out.append(replace(status, enactor=name) if status.enactor == url else status)
    return out


def against_planner(newest: int | None, applied: int | None) -> dict[str, Any]:
    """An endpoint row's standing against its own system's planner (`newest`: None when it was not
    read). The lag is never negative: a plan applied past the planner's newest means the planner's
    answer is older than Route 53's (read a moment earlier) or from another stack; "ahead" says by
    how much."""
    known = newest is not None and applied is not None
    return {"newest_version": newest, "lag": max(0, newest - applied) if known else None,
            "ahead_of_planner": max(0, applied - newest) if known else 0}


def enactor_row(status: EnactorStatus) -> dict[str, Any]:
    return {
        "enactor": status.enactor,
        "url": status.url,
        "reachable": status.reachable,
        "state": status.state,
        "mode": status.mode,
        "error": status.error,
        "endpoints": [
            {"endpoint": e.endpoint, "applied_version": e.applied_version, "state": e.state,
             "flip_failures": e.flip_failures, "plan_version": e.plan_version, "lock_holder": e.lock_holder,
             "lock_expires": e.lock_expires, "last_error": e.last_error}
            for e in status.endpoints
        ],
    }
