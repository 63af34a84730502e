"""The enactor's HTTP API (FastAPI): health, status and metrics of one enactor process.

    GET /healthz   200 while the process runs (its workers never die; see enactor/runner.py)
    GET /readyz    200 when the plan bucket and Route 53 answer, else 503 naming what fails
    GET /status    JSON: enactor, az, version_guard, frozen, state, and per endpoint the applied
                   version, plan in hand, lock holder and expiry, backoff, consecutive flip
                   failures, last error and state (idle, working, backing_off, stuck, frozen)
    GET /metrics   Prometheus text: this runner's registry plus the process-wide one (AWS
                   throttles, Route 53 pacing, propagation waits)

    /v1/chaos      the race lab's fault injection (enactor/chaos.py): bearer token required,
                   refused (403) unless the enactor runs with --allow-chaos
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from enactor.chaos import chaos_router
from enactor.runner import Runner
from services import web


def create_app(runner: Runner) -> FastAPI:
    app = web.service_app(f"dnsctl enactor {runner.settings.enactor_id}", lifespan=web.running_lifespan(runner.start, runner.stop))
    app.state.runner = runner

    web.add_health_routes(
        app,
        lambda: {"ok": True, "enactor": runner.settings.enactor_id, "az": runner.settings.az},
        web.Readiness([web.s3_bucket(runner.settings.bucket), web.route53()]),
    )

    @app.get("/status")
    def status() -> dict[str, Any]:
        return runner.status()

    @app.get("/metrics")
    def metrics() -> Response:
        body = generate_latest(runner.metrics.registry) + generate_latest(REGISTRY)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    app.include_router(chaos_router(runner.faults, allow_chaos=runner.settings.allow_chaos, enactor_id=runner.settings.enactor_id))
    return app
