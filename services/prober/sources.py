"""What the prober and `dnsctl status` read from the planner and the enactors, parsed defensively.

The planner's GET /v1/planner/status gives `newest_version` (and `frozen`). The enactors' GET
/status is read field by field, and every field is optional, so a newer or older enactor never
breaks the prober; what is consumed:

    enactor | id | enactor_id                     the enactor's name (else its URL)
    state                                         idle | working | backing_off | stuck | frozen
    mode | version_guard                          shown as is
    endpoints: {name: {...}} or [{"endpoint"|"name": ..., ...}], each with
        applied_version                           int
        state                                     as above, per endpoint
        consecutive_flip_failures | flip_failures | consecutive_failures   int
        lock: {holder, expires} | lock_holder, lock_expires
        plan_version | working_version            the plan in hand (shown)
        last_error | error                        shown

A source that cannot be reached is reported as such (reachable=False), never as "all is well".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

ENACTOR_STATES = ("idle", "working", "backing_off", "stuck", "frozen")


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _first_int(d: dict[str, Any], *keys: str) -> int | None:
    for k in keys:
        v = _int(d.get(k))
        if v is not None:
            return v
    return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class EnactorEndpoint:
    endpoint: str
    applied_version: int | None = None
    state: str | None = None
    flip_failures: int = 0
    lock_holder: str | None = None
    lock_expires: int | None = None
    plan_version: int | None = None
    last_error: str | None = None
    blocked: dict[str, Any] | None = None  # the enactor's "blocked": the plan Route 53 refused, and why


@dataclass(frozen=True, slots=True)
class EnactorStatus:
    url: str
    reachable: bool
    enactor: str = ""
    state: str | None = None
    mode: str | None = None
    endpoints: tuple[EnactorEndpoint, ...] = ()
    error: str | None = None

    def endpoint(self, name: str) -> EnactorEndpoint | None:
        name = name.rstrip(".").lower()
        return next((e for e in self.endpoints if e.endpoint == name), None)


@dataclass(frozen=True, slots=True)
class PlannerStatus:
    url: str
    reachable: bool
    newest_version: int | None = None
    frozen: bool | None = None
    error: str | None = None
    cell: str | None = None  # the cell whose plans it writes (None: the regional system)
    region: str | None = None
    store_ok: bool | None = None  # the planner could read its plan store (None: it did not say)


def _parse_endpoint(name: str, e: dict[str, Any]) -> EnactorEndpoint:
    lock = e.get("lock") if isinstance(e.get("lock"), dict) else {}
    return EnactorEndpoint(
        endpoint=name.rstrip(".").lower(),
        applied_version=_first_int(e, "applied_version", "applied"),
        state=_text(e.get("state")),
        flip_failures=_first_int(e, "consecutive_flip_failures", "flip_failures", "consecutive_failures") or 0,
        lock_holder=_text(lock.get("holder", e.get("lock_holder"))),
        lock_expires=_int(lock.get("expires", e.get("lock_expires"))),
        plan_version=_first_int(e, "plan_version", "working_version", "plan_in_hand"),
        last_error=_text(e.get("last_error", e.get("error"))),
        blocked=e.get("blocked") if isinstance(e.get("blocked"), dict) else None,
    )


def parse_enactor_status(body: Any, url: str) -> EnactorStatus:
    if not isinstance(body, dict):
        return EnactorStatus(url, False, url, error="status is not a JSON object")
    raw = body.get("endpoints", ())
    endpoints: list[EnactorEndpoint] = []
    if isinstance(raw, dict):
        endpoints = [_parse_endpoint(str(k), v) for k, v in raw.items() if isinstance(v, dict)]
    elif isinstance(raw, list):
        for e in raw:
            if isinstance(e, dict) and (e.get("endpoint") or e.get("name")):
                endpoints.append(_parse_endpoint(str(e.get("endpoint") or e.get("name")), e))
    mode = body.get("mode")
    if mode is None and isinstance(body.get("version_guard"), bool):
        mode = "guarded" if body["version_guard"] else "legacy"
    return EnactorStatus(
        url=url,
        reachable=True,
        enactor=str(body.get("enactor") or body.get("id") or body.get("enactor_id") or url),
        state=_text(body.get("state")),
        mode=_text(mode),
        endpoints=tuple(sorted(endpoints, key=lambda e: e.endpoint)),
    )


def parse_planner_status(body: Any, url: str) -> PlannerStatus:
    if not isinstance(body, dict):
        return PlannerStatus(url, False, error="status is not a JSON object")
    frozen = body.get("frozen")
    store = body.get("store") if isinstance(body.get("store"), dict) else {}
    return PlannerStatus(
        url, True, newest_version=_first_int(body, "newest_version", "latest_version"),
        frozen=frozen if isinstance(frozen, bool) else None,
        cell=_text(body.get("cell")), region=_text(body.get("region")),
        store_ok=store.get("ok") if isinstance(store.get("ok"), bool) else None,
    )


async def fetch_enactor(client: httpx.AsyncClient, url: str) -> EnactorStatus:
    try:
        response = await client.get(url.rstrip("/") + "/status")
        response.raise_for_status()
        return parse_enactor_status(response.json(), url)
    except (httpx.HTTPError, ValueError) as exc:
        return EnactorStatus(url, False, url, error=f"{type(exc).__name__}: {exc}"[:200])


async def fetch_planner(client: httpx.AsyncClient, url: str) -> PlannerStatus:
    try:
        response = await client.get(url.rstrip("/") + "/v1/planner/status")
        response.raise_for_status()
        return parse_planner_status(response.json(), url)
    except (httpx.HTTPError, ValueError) as exc:
        return PlannerStatus(url, False, error=f"{type(exc).__name__}: {exc}"[:200])
