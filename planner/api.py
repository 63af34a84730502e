"""The planner's REST API (FastAPI): the one place operators and automation speak to the system.

Routes are thin: each validates its input, calls the Planner and maps the planner's typed errors
to HTTP. Every mutating route requires the bearer token. Errors are JSON {"detail": <message>,
"error": <kind>}; 422 keeps FastAPI's list of field errors in "detail".

    409 frozen / unsafe (with "violations") / exists    503 S3 unreachable (the planner keeps running)
    404 unknown plan, LB or AZ                          502 the store holds a damaged plan (names the key)
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import BaseModel, ConfigDict, Field, model_validator

from planner.burst import burst_router
from planner.fleet import (
    Endpoint,
    Fleet,
    FleetError,
    LbState,
    LoadBalancer,
    NotInFleet,
    demo_fleet,
    generate_fleet,
    load_fleet_file,
    validate_fleet,
)
from planner.schedule import PlanSchedule
from planner.service import ChangeResult, Planner, PlannerRefused, plan_summary
from planner.settings import PlannerSettings
from services.auth import bearer_dependency, load_token
from services.plan.model import PlanInvalid
from services.plan.store import PlanNotFound, PlanStore, StoreError, StoreUnavailable

MAX_PAGE = 200


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoadBalancerPatch(_Body):
    capacity: int | None = Field(None, ge=0, le=10_000_000)
    state: LbState | None = None

    @model_validator(mode="after")
    def _something(self) -> LoadBalancerPatch:
        if self.capacity is None and self.state is None:
            raise ValueError("give capacity, state or both")
        return self


class PublishRequest(_Body):
    reason: str = Field("", max_length=400)


class FreezeRequest(_Body):
    reason: str = Field(min_length=1, max_length=400)
    by: str = Field("api", min_length=1, max_length=100)


class ThawRequest(_Body):
    by: str = Field("api", min_length=1, max_length=100)


class NewEndpoint(_Body):
    """An endpoint and the load balancers behind it, added together (`dnsctl zones adopt` sends one)."""

    endpoint: Endpoint
    load_balancers: list[LoadBalancer] = Field(min_length=1, max_length=1000)


Force = Annotated[bool, Query(description="Publish even if the safety check refuses the plan")]


def fleet_for(settings: PlannerSettings) -> Fleet:
    """The fleet the settings ask for: a file, a generated fleet, or the demo fleet."""
    if settings.fleet_file is not None:
        return load_fleet_file(settings.fleet_file)
    if settings.lbs is not None:
        return generate_fleet(settings.lbs, settings.seed)
    return demo_fleet()


def _error(code: int, kind: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"detail": message, "error": kind, **extra}, status_code=code)


def _fleet_422(exc: FleetError, body_field_of_lb: bool) -> JSONResponse:
    """FleetError -> FastAPI's field-error shape. Paths inside the new LB are reported as body fields."""
    detail = []
    for loc, msg in exc.errors:
        parts = loc.split(".") if loc else []
        if body_field_of_lb and len(parts) >= 3 and parts[0] == "load_balancers":
            parts = parts[2:]
        detail.append({"loc": ["body", *parts], "msg": msg, "type": "value_error"})
    return JSONResponse({"detail": detail, "error": "invalid_fleet"}, status_code=422)


def _change(result: ChangeResult, planner: Planner) -> dict[str, Any]:
    next_run = planner.next_run()
    return {
        "change": result.change,
        "lane": result.lane,
        "changed": result.changed,
        "queued": result.queued,
        "plan": plan_summary(result.plan, planner.store.key_for(result.plan.version))
        if result.plan
        else None,
        "next_run": next_run.isoformat() if next_run else None,
    }


def create_app(
    settings: PlannerSettings,
    *,
    fleet: Fleet | None = None,
    store: PlanStore | None = None,
    schedule: bool = True,
) -> FastAPI:
    planner = Planner(
        settings, store or PlanStore(settings.bucket, settings.region), fleet or fleet_for(settings)
    )
    require_token = bearer_dependency(load_token())
    guarded = [Depends(require_token)]

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        if schedule:
            planner.schedule = PlanSchedule(settings.plan_interval, planner.scheduled_run)
            planner.schedule.start()
        planner.log.info(
            "planner_started",
            bucket=settings.bucket,
            plan_interval_s=settings.plan_interval,
            load_balancers=len(planner.fleet.load_balancers),
            endpoints=len(planner.fleet.endpoints),
        )
        try:
            yield
        finally:
            if planner.schedule:
                planner.schedule.stop()
            planner.log.info("planner_stopped")

    app = FastAPI(
        title="dnsctl planner",
        description="Holds the fleet and publishes versioned plans of the region's desired DNS state to S3.",
        version="1",
        lifespan=lifespan,
    )
    app.state.planner = planner

    @app.middleware("http")
    async def count_responses(request: Request, call_next):
        response = await call_next(request)
        planner.metrics.http_responses.labels(request.method, str(response.status_code)).inc()
        return response

    @app.exception_handler(PlannerRefused)
    async def _refused(_: Request, exc: PlannerRefused):
        return _error(409, exc.cause, exc.message, violations=[v.as_dict() for v in exc.violations])

    @app.exception_handler(StoreUnavailable)
    async def _unavailable(_: Request, exc: StoreUnavailable):
        return _error(503, "store_unavailable", str(exc))

    @app.exception_handler(PlanNotFound)
    async def _not_found(_: Request, exc: PlanNotFound):
        return _error(404, "plan_not_found", str(exc), key=exc.key)

    @app.exception_handler(PlanInvalid)
    async def _invalid(_: Request, exc: PlanInvalid):
        return _error(502, "plan_invalid", str(exc), key=exc.key)

    @app.exception_handler(StoreError)
    async def _store_error(_: Request, exc: StoreError):
        return _error(502, "store_error", str(exc))

    @app.exception_handler(NotInFleet)
    async def _not_in_fleet(_: Request, exc: NotInFleet):
        return _error(404, "not_in_fleet", str(exc))

    # -- health and metrics -------------------------------------------------------------------

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, Any]:
        """Alive (always 200 while serving); `status` is "degraded" with a reason when S3 is unreachable."""
        problem = planner.check_store()
        return {
            "status": "ok" if problem is None else "degraded",
            "planner": settings.planner_id,
            "store": {
                "ok": problem is None,
                "bucket": settings.bucket,
                "endpoint": planner.store.endpoint,
                "detail": problem,
            },
        }

    @app.get("/metrics", tags=["health"])
    def metrics() -> Response:
        # The process-wide registry holds the AWS client metrics (throttles, rate-limit waits).
        body = generate_latest(planner.metrics.registry) + generate_latest(REGISTRY)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    # -- fleet --------------------------------------------------------------------------------

    @app.get("/v1/fleet", tags=["fleet"])
    def get_fleet() -> dict[str, Any]:
        """The fleet as the planner holds it (the same shape a fleet file has)."""
        return planner.fleet.model_dump(mode="json")

    @app.post("/v1/fleet/load-balancers", tags=["fleet"], dependencies=guarded, status_code=201)
    def add_load_balancer(lb: LoadBalancer, force: Force = False) -> Any:
        """Add a load balancer (slow lane: it joins the next scheduled plan)."""
        try:
            return _change(planner.add_lb(lb, force=force), planner)
        except FleetError as exc:
            if any("already exists" in msg for _, msg in exc.errors):
                return _error(409, "exists", str(exc))
            return _fleet_422(exc, body_field_of_lb=True)

    @app.patch("/v1/fleet/load-balancers/{lb_id}", tags=["fleet"], dependencies=guarded)
    def update_load_balancer(lb_id: str, patch: LoadBalancerPatch, force: Force = False) -> Any:
        """Change capacity (slow lane) and/or state; draining or retiring publishes at once (fast lane)."""
        try:
            return _change(
                planner.update_lb(lb_id, capacity=patch.capacity, state=patch.state, force=force), planner
            )
        except FleetError as exc:
            return _fleet_422(exc, body_field_of_lb=True)

    @app.delete("/v1/fleet/load-balancers/{lb_id}", tags=["fleet"], dependencies=guarded)
    def delete_load_balancer(lb_id: str, force: Force = False) -> Any:
        """Remove a load balancer (fast lane)."""
        try:
            return _change(planner.delete_lb(lb_id, force=force), planner)
        except FleetError as exc:
            return _fleet_422(exc, body_field_of_lb=False)

    @app.post("/v1/fleet/endpoints", tags=["fleet"], dependencies=guarded, status_code=201)
    def add_endpoint(body: NewEndpoint, force: Force = False) -> Any:
        """Add an endpoint with its load balancers and publish at once (fast lane): its first plan."""
        name = body.endpoint.name

        def apply(fleet: Fleet) -> Fleet:
            if fleet.endpoint(name) is not None:
                raise FleetError([("endpoint.name", f"endpoint {name} already exists")])
            data = fleet.model_dump(mode="json")
            data["endpoints"].append(body.endpoint.model_dump(mode="json"))
            data["load_balancers"] += [lb.model_dump(mode="json") for lb in body.load_balancers]
            return validate_fleet(data)

        description = f"add endpoint {name} ({len(body.load_balancers)} LBs)"
        try:
            return _change(planner.change_fleet("add_endpoint", description, apply, "fast", force=force), planner)
        except FleetError as exc:
            if any("already exists" in msg for _, msg in exc.errors):
                return _error(409, "exists", str(exc))
            return _fleet_422(exc, body_field_of_lb=False)

    @app.post("/v1/fleet/azs/{az}/drain", tags=["fleet"], dependencies=guarded)
    def drain_az(az: str, force: Force = False) -> Any:
        """Take every LB of the AZ out of service (weight 0) and publish at once (fast lane)."""
        return _change(planner.drain_az(az, force=force), planner)

    @app.post("/v1/fleet/azs/{az}/undrain", tags=["fleet"], dependencies=guarded)
    def undrain_az(az: str, force: Force = False) -> Any:
        """Bring the AZ back (slow lane: the next scheduled plan carries it)."""
        return _change(planner.undrain_az(az, force=force), planner)

    # -- plans --------------------------------------------------------------------------------

    @app.post("/v1/plans", tags=["plans"], dependencies=guarded, status_code=201)
    def publish(body: PublishRequest | None = None, force: Force = False) -> dict[str, Any]:
        """Publish a plan now from the current fleet (it carries any queued slow-lane changes)."""
        plan = planner.publish_now(body.reason if body else "", force=force)
        return plan_summary(plan, planner.store.key_for(plan.version))

    @app.get("/v1/plans", tags=["plans"])
    def list_plans(
        before: Annotated[int | None, Query(ge=1, description="Only versions older than this")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    ) -> dict[str, Any]:
        """History, newest first, one page at a time; pass next_before as `before` for the next page."""
        return planner.history_page(before, limit)

    @app.get("/v1/plans/latest", tags=["plans"])
    def latest_plan() -> Any:
        """The newest plan document."""
        return planner.plan(None).model_dump(mode="json")

    @app.get("/v1/plans/{version}", tags=["plans"])
    def get_plan(version: Annotated[int, Path(ge=1)]) -> Any:
        """One plan document, verified (schema and checksum)."""
        return planner.plan(version).model_dump(mode="json")

    @app.post("/v1/plans/{version}/restore", tags=["plans"], dependencies=guarded, status_code=201)
    def restore(
        version: Annotated[int, Path(ge=1)], body: PublishRequest | None = None, force: Force = False
    ) -> Any:
        """Publish plan `version`'s content as a new version (rollback through the normal path)."""
        try:
            plan = planner.restore(version, body.reason if body else "", force=force)
        except FleetError as exc:
            return _error(409, "not_adoptable", f"plan {version} cannot be adopted as the fleet: {exc}")
        return {**plan_summary(plan, planner.store.key_for(plan.version)), "restored_version": version}

    # -- the kill switch and status -----------------------------------------------------------

    @app.post("/v1/planner/freeze", tags=["planner"], dependencies=guarded)
    def freeze(body: FreezeRequest) -> dict[str, Any]:
        """Stop all publishing (and all enactors) until thawed; an existing freeze is kept."""
        state, newly = planner.freeze(body.reason, body.by)
        return {"frozen": True, "newly_frozen": newly, **state.model_dump()}

    @app.post("/v1/planner/thaw", tags=["planner"], dependencies=guarded)
    def thaw(body: ThawRequest | None = None) -> dict[str, Any]:
        lifted = planner.thaw(body.by if body else "api")
        return {"frozen": False, "lifted": lifted.model_dump() if lifted else None}

    @app.get("/v1/planner/status", tags=["planner"])
    def planner_status() -> dict[str, Any]:
        """Frozen or not, newest version, next scheduled run, queued slow-lane changes, store health."""
        return planner.status()

    app.include_router(burst_router(planner, settings.allow_chaos, guarded))
    return app
