"""The console's HTTP face: the page, its live stream, and the token-guarded buttons.

    GET    /                       the page (static/index.html; its JS and CSS ship beside it)
    GET    /healthz, /metrics      health; Prometheus (Route 53 requests, open streams)
    GET    /api/state              the newest view of the stack (what the stream last sent)
    GET    /api/timeline           the live timeline (lab/timeline's JSON)
    GET    /api/stream             server-sent events: state, events, timeline, race
    POST   /api/trace              a `dnsctl check --json` document -> its frames (read-only)
    GET    /api/traces/{name}      the frames of <state dir>/traces/<name>.json, a counterexample a race
                                   wrote beside its stack (the page opens /#trace=<name> with it)
    GET    /api/token              200 with the right bearer token, else 401 (the page checks a pasted token)
  with the bearer token (services/auth.py, exactly as every service checks it):
    POST   /api/race                         run the October replay on this stack
    POST   /api/chaos/{enactor}              chaos toggles (the enactor's ChaosRequest fields)
    POST   /api/chaos/{enactor}/pause|resume
    DELETE /api/chaos[/{enactor}]            clear every toggle (and the planner's burst)
    POST   /api/freeze {reason} | /api/thaw  the kill switch
    POST   /api/azs/{az}/drain|undrain       ?dry_run=true previews when the planner offers it
    POST   /api/repair {endpoint, break_lock, dry_run}
Request bodies are refused past MAX_BODY bytes before they are parsed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from sse_starlette.sse import EventSourceResponse

from services.auth import bearer_dependency, load_token
from services.console.actions import ActionRefused, Actions
from services.console.hub import Hub
from services.console.log_tail import LogTail
from services.console.poller import StatePoller
from services.console.trace_view import TraceInvalid, frames
from services.web import ServerLimits, service_app

STATIC = Path(__file__).parent / "static"
MAX_BODY = 2 * 1024 * 1024  # a counterexample of the default bounds is a few tens of kB
TRACE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")  # a file name under traces/, never a path
PING_S = 15


class Faults(BaseModel):
    lock_failures: int | None = Field(None, ge=0, le=1000)
    delay_before_flip_s: float | None = Field(None, ge=0, le=600)
    route53_latency_ms: int | None = Field(None, ge=0, le=60_000)
    route53_error_rate: float | None = Field(None, ge=0, le=1)


class FreezeBody(BaseModel):
    reason: str = Field(min_length=1, max_length=400)


class RepairBody(BaseModel):
    endpoint: str = Field(min_length=1, max_length=253)
    break_lock: bool = False
    dry_run: bool = True


def create_app(hub: Hub, poller: StatePoller | None, tail: LogTail | None, actions: Actions) -> FastAPI:
    guarded = [Depends(bearer_dependency(load_token()))]

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        hub.bind(asyncio.get_running_loop())
        if poller is not None:
            poller.start()
        if tail is not None:
            tail.start()
        yield
        if poller is not None:
            poller.stop()
        if tail is not None:
            tail.stop()

    # The shared server rules (services/web.py): body limit before parsing and auth, NaN -> 422,
    # offline docs; a counterexample for the trace viewer may be larger than other bodies.
    limits = ServerLimits()
    limits = limits.model_copy(update={"max_body_bytes": max(limits.max_body_bytes, MAX_BODY)})
    app = service_app("dnsctl console", limits=limits, home=None, lifespan=lifespan)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(ActionRefused)
    async def _refused(_: Request, exc: ActionRefused):
        return JSONResponse({"detail": str(exc), "upstream": exc.body}, exc.status)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "pid": os.getpid(), "clients": hub.clients, "state": hub.latest("state") is not None}

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/state")
    def state() -> Any:
        return hub.latest("state")

    @app.get("/api/timeline")
    def timeline() -> Any:
        return hub.latest("timeline")

    @app.get("/api/race")
    def race() -> Any:
        return actions.race.as_json()

    @app.get("/api/stream")
    async def stream(request: Request) -> EventSourceResponse:
        queue = hub.subscribe()

        async def messages():
            try:
                while True:
                    kind, text = await queue.get()
                    yield {"event": kind, "data": text}
            finally:
                hub.unsubscribe(queue)

        return EventSourceResponse(messages(), ping=PING_S)

    @app.post("/api/trace")
    async def trace(request: Request) -> Any:
        try:
            doc = await request.json()
        except ValueError as exc:
            raise HTTPException(400, f"not JSON: {exc}") from exc
        try:
            return await asyncio.to_thread(frames, doc)
        except TraceInvalid as exc:
            raise HTTPException(422, str(exc)) from exc

    @app.get("/api/traces/{name}")
    async def saved_trace(name: str) -> Any:
        if not TRACE_NAME.match(name):
            raise HTTPException(400, "a trace name is lower-case letters, digits and dashes (e.g. october-legacy)")
        path = actions.targets.state_dir / "traces" / f"{name}.json"
        try:
            if path.stat().st_size > MAX_BODY:
                raise HTTPException(413, f"{path.name} is larger than {MAX_BODY} bytes")
            doc = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise HTTPException(404, f"no trace {name!r} in {path.parent}") from exc
        except (OSError, ValueError) as exc:
            raise HTTPException(422, f"{path.name} is not JSON: {exc}") from exc
        try:
            return await asyncio.to_thread(frames, doc)
        except TraceInvalid as exc:
            raise HTTPException(422, str(exc)) from exc

    @app.get("/api/token", dependencies=guarded)
    def token_ok() -> dict[str, Any]:
        return {"ok": True, "dry_run_preview": actions.planner_offers_dry_run()}

    @app.post("/api/race", dependencies=guarded, status_code=202)
    def start_race() -> Any:
        return actions.start_race()

    @app.post("/api/chaos/{enactor}", dependencies=guarded)
    def chaos(enactor: str, faults: Faults) -> Any:
        return actions.chaos(enactor, faults.model_dump(exclude_none=True))

    @app.post("/api/chaos/{enactor}/pause", dependencies=guarded)
    def pause(enactor: str) -> Any:
        return actions.pause(enactor, True)

    @app.post("/api/chaos/{enactor}/resume", dependencies=guarded)
    def resume(enactor: str) -> Any:
        return actions.pause(enactor, False)

    @app.delete("/api/chaos", dependencies=guarded)
    def clear_all() -> Any:
        return actions.chaos_clear(None)

    @app.delete("/api/chaos/{enactor}", dependencies=guarded)
    def clear(enactor: str) -> Any:
        return actions.chaos_clear(enactor)

    @app.post("/api/freeze", dependencies=guarded)
    def freeze(body: FreezeBody) -> Any:
        return actions.freeze(body.reason)

    @app.post("/api/thaw", dependencies=guarded)
    def thaw() -> Any:
        return actions.thaw()

    @app.post("/api/azs/{az}/drain", dependencies=guarded)
    def drain(az: str, dry_run: bool = False, force: bool = False) -> Any:
        return actions.drain(az, False, dry_run=dry_run, force=force)

    @app.post("/api/azs/{az}/undrain", dependencies=guarded)
    def undrain(az: str, dry_run: bool = False, force: bool = False) -> Any:
        return actions.drain(az, True, dry_run=dry_run, force=force)

    @app.post("/api/repair", dependencies=guarded)
    def repair(body: RepairBody) -> Any:
        return actions.repair(body.endpoint, break_lock=body.break_lock, dry_run=body.dry_run)

    return app
