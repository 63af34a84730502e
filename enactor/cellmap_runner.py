"""The cell map's enactor process: reads the newest cell map and applies it to the accounts' zone.

The I/O around enactor/cellmap.py's pure decisions, with the endpoint enactors' own parts: the
plan store (services/plan/store.py, with the cell map as its document and `cellmap/` as its
namespace, signatures checked the same way), the kill switch (`cellmap/control/<region>/freeze.json`),
the zone listing and batch submission of enactor/runner.py's Route53Zone, and the settings of
enactor/settings.py. It never dies on bad input: an invalid map is logged (`cellmap_rejected`) and
DNS stays as it is; a failed batch or call backs off (jittered, doubling) and decides again from a
fresh listing.

    GET /healthz, /readyz, /status, /metrics   as the endpoint enactors' (enactor/api.py)
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, generate_latest

from enactor import cellmap as machine
from enactor.faults import Faults
from enactor.metrics import EnactorMetrics
from enactor.runner import Route53Zone
from enactor.settings import EnactorSettings
from services import web
from services.cells.cellmap import STREAM, CellMap
from services.cells.naming import accounts_zone
from services.logs import get_logger
from services.plan.model import PlanInvalid
from services.plan.store import PlanStore, StoreError
from services.zones import find_zone_id

APPLIED = Gauge("dnsctl_cellmap_applied_version", "Cell map version applied to the accounts' zone (as last listed)")
ACCOUNT_CHANGES = Counter("dnsctl_cellmap_account_changes_total", "Account CNAMEs written or deleted in accepted units")


def cellmap_store(bucket: str, region: str, **kwargs: Any) -> PlanStore:
    """The cell map's stream in the plan bucket (the planner side uses the same)."""
    return PlanStore(bucket, region, document=CellMap, namespace=STREAM, **kwargs)


class CellMapRunner:
    def __init__(self, settings: EnactorSettings, *, route53=None, store: PlanStore | None = None):
        if route53 is None:
            from services.aws_clients import route53_client

            route53 = route53_client()
        self.settings = settings
        self.core = settings.core()
        self.route53 = route53
        self.store = store or cellmap_store(settings.bucket, settings.region, verifier=settings.plan_verifier())
        self.zone_name = accounts_zone(settings.region)
        self.metrics = EnactorMetrics()
        self.stop_event = threading.Event()
        self.log = get_logger(enactor=settings.enactor_id)
        self.state = "starting"
        self.applied_version: int | None = None
        self.newest_version: int | None = None
        self.last_error: str | None = None
        self.rejected: int | None = None  # the version last refused as invalid (logged once)
        self.stale: int | None = None  # the newest version found below the applied one (logged once)
        self._failures = 0
        self._zone: Route53Zone | None = None
        self._thread = threading.Thread(target=self._run, name="cellmap-enactor", daemon=True)

    def start(self) -> None:
        self.log.info("cellmap_enactor_started", zone=self.zone_name, bucket=self.settings.bucket,
                      plan_key=self.store.verifier.key_id if self.store.verifier else "unverified")
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self.stop_event.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self.log.info("cellmap_enactor_stopped")

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                pause = self.round()
            except Exception as exc:  # noqa: BLE001 - the loop outlives anything one round meets
                self.log.exception("cellmap_round_failed", error=f"{type(exc).__name__}: {exc}"[:300])
                pause = self._backoff(f"{type(exc).__name__}: {exc}")
            self.stop_event.wait(pause)

    def _backoff(self, error: str) -> float:
        self._failures += 1
        self.last_error = error[:500]
        cap = min(self.settings.backoff_cap_s, self.settings.backoff_base_s * 2 ** self._failures)
        return random.uniform(cap / 2, cap)

    def round(self) -> float:
        """One decision and what it asks; returns how long to wait before the next."""
        poll = self.settings.poll_interval
        try:
            if (frozen := self.store.freeze_state()) is not None:
                if self.state != "frozen":
                    self.log.warning("frozen", reason=frozen.reason, by=frozen.by)
                self.state = "frozen"
                return poll
            version = self.store.newest_version()
            self.newest_version = version
            if version is None:
                self.state = "idle"
                return poll
            try:
                cellmap = self.store.get(version)
            except PlanInvalid as exc:
                if self.rejected != version:
                    self.rejected = version
                    self.log.warning("cellmap_rejected", version=version, key=exc.key, reason=exc.reason[:300])
                self.state = "idle"
                return poll  # keep DNS as it is; a newer valid map moves on
        except StoreError as exc:
            self.log.warning("request_failed", request="read_cellmap", error=str(exc)[:300])
            return self._backoff(str(exc))
        try:
            zone = self._route53_zone()
            if zone is None:
                return poll
            records = zone.snapshot()
            unit = machine.decide(self.core, zone.zone_id, records, cellmap, time.time())
            if unit.kind == "idle":
                if unit.applied is not None and unit.applied > version and self.stale != version:
                    self.stale = version  # said once: the stream is behind what the zone has applied
                    self.log.warning("cellmap_stale", version=version, applied=unit.applied,
                                     hint="the map stream is behind the zone; the planner numbers above the applied version")
                self.applied_version = unit.applied
                APPLIED.set(unit.applied or 0)
                self._settle()
                return poll
            if unit.kind == "wait":
                self.state = "backing_off"
                self.log.info("lock_held", version=version, detail=unit.reason)
                return self._backoff(unit.reason)
            started = time.perf_counter()
            self.state = "working"
            for batch in unit.batches:
                zone.submit(batch)
            ACCOUNT_CHANGES.inc(unit.changes)
            self.applied_version = version
            APPLIED.set(version)
            self.log.info("cellmap_applied", version=version, accounts=len(cellmap.accounts), changes=unit.changes,
                          batches=len(unit.batches), seconds=round(time.perf_counter() - started, 3))
            self._settle()
            return 0.0  # list again at once: confirms, or finds the next map
        except ClientError as exc:
            err = exc.response.get("Error", {})
            self.log.warning("cellmap_batch_rejected", version=version, code=err.get("Code"), error=str(err.get("Message"))[:300])
            return self._backoff(f"{err.get('Code')}: {err.get('Message')}")
        except (BotoCoreError, machine.core.ProtocolError, OSError) as exc:
            self.log.warning("request_failed", request="route53", error=f"{type(exc).__name__}: {exc}"[:300])
            return self._backoff(str(exc))

    def _settle(self) -> None:
        self.state, self._failures, self.last_error = "idle", 0, None

    def _route53_zone(self) -> Route53Zone | None:
        if self._zone is None:
            zone_id = find_zone_id(self.zone_name, self.route53)
            if zone_id is None:
                if self.state != "zone_missing":
                    self.log.warning("zone_missing", endpoint=self.zone_name,
                                     hint="create it with `dnsctl zones ensure --endpoint` (`dnsctl up --accounts` does)")
                self.state = "zone_missing"
                return None
            self._zone = Route53Zone(self.route53, zone_id, self.zone_name + ".", self.metrics, Faults())
        return self._zone

    def status(self) -> dict[str, Any]:
        return {
            "enactor": self.settings.enactor_id,
            "az": self.settings.az,
            "kind": "cellmap",
            "state": self.state,
            "frozen": self.state == "frozen",
            "newest_version": self.newest_version,
            "endpoints": {self.zone_name: {"applied_version": self.applied_version, "state": self.state,
                                           "last_error": self.last_error}},
        }


def create_app(runner: CellMapRunner) -> FastAPI:
    app = web.service_app(f"dnsctl cell map enactor {runner.settings.enactor_id}",
                          lifespan=web.running_lifespan(runner.start, runner.stop))
    web.add_health_routes(app, lambda: {"ok": True, "enactor": runner.settings.enactor_id},
                          web.Readiness([web.s3_bucket(runner.settings.bucket), web.route53()]))

    @app.get("/status")
    def status() -> dict[str, Any]:
        return runner.status()

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(runner.metrics.registry) + generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return app
