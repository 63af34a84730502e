"""The cell map's planner: keeps the list of cells and account -> cell, and publishes it as its own plan stream.

It writes nothing but the cell map (services/cells/cellmap.py) and reads nothing but S3, so it
shares no fate with the regional planner or any cell's. Every change is a new version on the
fast lane (a move is urgent by nature and the map is tiny); a change asked with dry_run answers
with the map diff and writes nothing. Bodies are validated by the map's own model, so a map over
Route 53's limits (or naming a cell not in its list) is refused with a 422 that names the field.

    GET  /v1/cellmap                  the newest map (404 before the first)
    GET  /v1/cellmap/status           newest version, accounts per cell, the limits
    PUT  /v1/cellmap                  (token) replace the whole map: cells, accounts, ttl
    POST /v1/cellmap/moves            (token) {"account", "cell" (null: back to legacy)} one account
    POST /v1/cellmap/freeze, /thaw    (token) the map's own kill switch
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from enactor.cellmap_runner import cellmap_store
from planner.applied import AppliedVersions
from planner.settings import PlannerSettings
from services import web
from services.auth import bearer_dependency, load_token
from services.cells.cellmap import FIXED_RECORDS, CellMap, CellMapBody, map_diff, max_accounts, seed_body
from services.cells.naming import ACCOUNT_PATTERN, CELL_PATTERN, accounts_zone
from services.logs import get_logger
from services.plan.store import PlanStore, StoreError, StoreUnavailable

DryRun = Annotated[bool, Query(description="Answer with the map diff only; publish nothing")]


class MapRequest(CellMapBody):
    reason: str = Field("", max_length=500)


class MoveRequest(BaseModel):
    account: str = Field(pattern=ACCOUNT_PATTERN)
    cell: str | None = Field(None, pattern=CELL_PATTERN, description="null: back to the legacy regional name")
    reason: str = Field("", max_length=500)


class FreezeRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=500)
    by: str = Field("api", max_length=100)


class Frozen(Exception):
    pass


class CellMapPlanner:
    def __init__(self, settings: PlannerSettings, store: PlanStore, applied: AppliedVersions | None = None):
        self.settings = settings
        self.store = store
        # As the regional planner does: number above what Route 53 has applied, so a stream that
        # fell behind the accounts' zone (a new bucket) never publishes maps its enactors must refuse.
        self.applied = applied or AppliedVersions(interval_s=0)
        self.zone = accounts_zone(settings.region)
        self.log = get_logger(planner=settings.planner_id)
        self._lock = threading.Lock()

    def newest(self) -> CellMap | None:
        return self.store.newest()

    def change(self, apply: Callable[[CellMapBody | None], CellMapBody], reason: str, *, dry_run: bool) -> dict[str, Any]:
        """Apply `apply` to the newest map and publish the result (unless dry_run or unchanged)."""
        with self._lock:
            base = self.newest()
            body = apply(base)
            diff = map_diff(base, body, base.version if base else None)
            answer = {"dry_run": dry_run, "changed": diff.changed, "diff": diff.as_dict(),
                      "version": (base.version + 1) if base else 1}
            if dry_run or not diff.changed:
                return {**answer, "published": False}
            if (frozen := self.store.freeze_state()) is not None:
                raise Frozen(f"the cell map is frozen ({frozen.reason}, by {frozen.by}): nothing is published")

            def make(version: int) -> CellMap:
                # After losing a version to another writer, re-apply the change to the map that won.
                newest = self.store.newest_version()
                over = base if base is None or newest == base.version else self.store.get(newest)
                return CellMap.build(apply(over), region=self.settings.region, version=version, reason=reason, lane="fast")

            floor = self.applied.current([(self.zone, self.zone)]).version
            published = self.store.publish(make, above=floor)
            self.log.info("cellmap_published", version=published.version, lane="fast", reason=reason[:200],
                          accounts=len(published.accounts), cells=len(published.cells), moves=len(diff.moves))
            return {**answer, "version": published.version, "published": True}

    def status(self) -> dict[str, Any]:
        newest = self.newest()
        per_cell = Counter(a.cell or "legacy" for a in newest.accounts) if newest else Counter()
        return {
            "planner": self.settings.planner_id,
            "region": self.settings.region,
            "newest_version": newest.version if newest else None,
            "cells": list(newest.cells) if newest else [],
            "accounts": len(newest.accounts) if newest else 0,
            "accounts_per_cell": dict(sorted(per_cell.items())),
            "limits": {"zone_record_quota": newest.zone_record_quota if newest else None,
                       "max_accounts": max_accounts(newest.zone_record_quota) if newest else max_accounts(),
                       "fixed_records": FIXED_RECORDS},
            "frozen": self.store.freeze_state() is not None,
        }


def _field_422(exc: ValidationError | ValueError, field: str) -> JSONResponse:
    """A refused change as FastAPI's field errors, blamed on the request's `field`."""
    msgs = [e["msg"].removeprefix("Value error, ") for e in exc.errors()] if isinstance(exc, ValidationError) else [str(exc)]
    detail = [{"loc": ["body", field], "msg": m, "type": "value_error"} for m in msgs]
    return JSONResponse({"detail": detail, "error": "invalid_cellmap"}, status_code=422)


def create_app(settings: PlannerSettings, *, seed_cells: int = 0, seed_accounts: int = 0, ttl: int = 60) -> FastAPI:
    seed = seed_body(seed_cells, seed_accounts, ttl) if seed_accounts else None  # a bad seed stops the start, not a request
    store = cellmap_store(settings.bucket, settings.region, signer=settings.plan_signer())
    planner = CellMapPlanner(settings, store)
    guarded = [Depends(bearer_dependency(load_token()))]

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        try:
            store.ensure_bucket()
            if seed is not None and store.newest_version() is None:
                planner.change(lambda _base: seed, f"seed: {seed_accounts} accounts over {seed_cells} cells", dry_run=False)
        except StoreError as exc:
            planner.log.warning("store_unavailable", error=str(exc)[:300])
        planner.log.info("cellmap_planner_started", bucket=settings.bucket, seed_accounts=seed_accounts, seed_cells=seed_cells,
                         plan_key=store.signer.key_id if store.signer else "unsigned")
        yield

    app = web.service_app("dnsctl cell map planner", description="Publishes the cell map: cells and account -> cell.",
                          lifespan=lifespan)
    app.state.planner = planner

    @app.exception_handler(StoreUnavailable)
    async def _unavailable(_, exc: StoreUnavailable):
        return JSONResponse({"detail": str(exc), "error": "store_unavailable"}, status_code=503)

    @app.exception_handler(StoreError)
    async def _store_error(_, exc: StoreError):
        return JSONResponse({"detail": str(exc), "error": "store_error"}, status_code=502)

    @app.exception_handler(Frozen)
    async def _frozen(_, exc: Frozen):
        return JSONResponse({"detail": str(exc), "error": "frozen"}, status_code=409)

    web.add_health_routes(app, lambda: {"planner": settings.planner_id}, web.Readiness([web.s3_bucket(settings.bucket)]))

    @app.get("/v1/cellmap", tags=["cellmap"])
    def get_map() -> Any:
        newest = planner.newest()
        if newest is None:
            return JSONResponse({"detail": "no cell map published yet", "error": "not_found"}, status_code=404)
        return newest.model_dump(mode="json")

    @app.get("/v1/cellmap/status", tags=["cellmap"])
    def status() -> dict[str, Any]:
        return planner.status()

    @app.put("/v1/cellmap", tags=["cellmap"], dependencies=guarded)
    def put_map(body: MapRequest, dry_run: DryRun = False) -> Any:
        """Replace the whole map (fast lane); a map over the zone's limits is a 422 naming `accounts`."""
        new = CellMapBody.model_validate(body.body_only())
        return planner.change(lambda _base: new, body.reason or "load cell map", dry_run=dry_run)

    @app.post("/v1/cellmap/moves", tags=["cellmap"], dependencies=guarded)
    def move(body: MoveRequest, dry_run: DryRun = False) -> Any:
        """Move one account to a cell (or back to legacy with cell null), fast lane; the diff first with dry_run."""
        def apply(base: CellMapBody | None) -> CellMapBody:
            return (base or CellMapBody()).with_move(body.account, body.cell)

        try:
            apply(planner.newest())  # refuse a bad move (a cell not in the list) before anything
        except (ValidationError, ValueError) as exc:
            return _field_422(exc, "cell")
        return planner.change(apply, body.reason or f"move {body.account} to {body.cell or 'legacy'}", dry_run=dry_run)

    @app.post("/v1/cellmap/freeze", tags=["cellmap"], dependencies=guarded)
    def freeze(body: FreezeRequest) -> dict[str, Any]:
        state = store.freeze(body.reason, body.by)
        planner.log.warning("frozen", reason=body.reason, by=body.by)
        return {"frozen": True, **state.model_dump()}

    @app.post("/v1/cellmap/thaw", tags=["cellmap"], dependencies=guarded)
    def thaw() -> dict[str, Any]:
        store.thaw("api")
        planner.log.info("thawed")
        return {"frozen": False}

    return app
