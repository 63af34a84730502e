"""The prober's HTTP API: health, Prometheus metrics, the ranked active alarms and the latest probes.

    GET  /healthz                          200 while serving
    GET  /readyz                           200 while it probes (not ProberBlind), else 503
    GET  /metrics                          Prometheus text
    GET  /v1/alarms                        {"alarms": [...], "cause": first or null, ...}, cause first
    GET  /v1/probes                        the latest DNS answer per endpoint and record type
    GET  /v1/accounts                      every account name's answer, per cell (answering / lost)
    POST /v1/alarms/stale-plan/acknowledge {"endpoint": NAME}   (bearer token) an operator
                                           restore: the lower version becomes the new mark
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from services import web
from services.auth import bearer_dependency, load_token
from services.prober.loop import Prober, ProberSettings
from services.prober.rules import endpoint_key


class Acknowledge(BaseModel):
    endpoint: str = Field(min_length=1, max_length=253)
    by: str = Field(default="", max_length=100)


def create_app(settings: ProberSettings, prober: Prober | None = None) -> FastAPI:
    prober = prober or Prober(settings)
    guarded = [Depends(bearer_dependency(load_token()))]

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        task = asyncio.create_task(prober.run())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app = web.service_app("dnsctl prober", lifespan=lifespan)
    app.state.prober = prober

    def alive() -> dict[str, Any]:
        return {
            "route53_loaded": prober.refresher.current is not None,
            "endpoints": len(prober.views() or []),
            "rounds": prober.ticks,
            "last_probe_at": prober.last_probe_at,
        }

    # The prober needs Route 53 (never S3) and the DNS server: both are in ProberBlind's reasons
    # (Route 53 unread or stale, DNS silent), so it is ready exactly when its last round could probe (the alarm itself waits a few seconds). Its
    # snapshot refresher already reads Route 53; a separate call would spend the account's budget.
    probing = web.Dependency("probing", lambda: prober.rules.cannot_probe if prober.ticks else "no probe round yet")
    web.add_health_routes(app, alive, web.Readiness([probing], interval_s=0.5))

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/alarms")
    def list_alarms() -> dict[str, Any]:
        """Active alarms, cause first (by rank, then by when they fired)."""
        return prober.alarms_json()

    @app.get("/v1/probes")
    def probes() -> dict[str, Any]:
        return prober.probes_json()

    @app.get("/v1/accounts")
    def account_probes() -> dict[str, Any]:
        """Every account name's latest answer (the cell map's), and per cell how many answer or lost DNS."""
        return prober.accounts_json()

    @app.post("/v1/alarms/stale-plan/acknowledge", dependencies=guarded)
    def acknowledge(body: Acknowledge) -> dict[str, Any]:
        endpoint = endpoint_key(body.endpoint)
        known = {endpoint_key(v.endpoint) for v in prober.views() or []}
        if endpoint not in known:
            raise HTTPException(404, f"no endpoint {endpoint} in Route 53 (known: {', '.join(sorted(known)) or 'none'})")
        prober.acknowledge_restore(endpoint, body.by or "api")
        return {"endpoint": endpoint, "acknowledged": True}

    return app
