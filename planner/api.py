"""The planner's REST API (FastAPI): the one place operators and automation speak to the system.

Routes are thin: each validates its input, calls the Planner and maps the planner's typed errors
to HTTP. Every mutating route requires the bearer token. Errors are JSON {"detail": <message>,
"error": <kind>}; 422 keeps FastAPI's list of field errors in "detail".

    409 frozen / unsafe (with "violations") / exists    503 S3 unreachable (the planner keeps running)
    409 conflict: the fleet changed since the revision given (`fleet load`)
    404 unknown plan, LB, AZ or endpoint                502 the store holds a damaged plan or fleet (names the key)

Every route that changes the fleet or publishes takes `dry_run`: it runs every check and answers
with the plan diff and the safety verdict ("diff", "violations", "verdict"), and writes nothing.
Answers to real changes carry the same "diff" (what the published plan changed).
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import BaseModel, ConfigDict, Field, model_validator

from planner.burst import burst_router
from planner.cells import DEFAULT_CELL_LBS, cell_fleet, fleet_outside_cell
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
from planner.service import ChangeResult, FleetUnavailable, Planner, PlannerRefused, Preview, plan_summary
from planner.settings import PlannerSettings
from services import web
from services.auth import bearer_dependency, load_token
from services.plan.fleet_store import FleetConflict
from services.plan.model import PlanInvalid, RecordType
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


class EndpointCreate(_Body):
    endpoint: Endpoint
    load_balancers: list[LoadBalancer] = Field(default_factory=list, max_length=1000)


class EndpointPatch(_Body):
    record_types: list[RecordType] = Field(min_length=1, max_length=2)


class FleetLoad(_Body):
    fleet: dict[str, Any]
    expected_revision: int | None = Field(
        None, ge=1, description="Apply only over this revision (the one the diff was shown for)"
    )
    reason: str = Field("", max_length=400)


Force = Annotated[bool, Query(description="Publish even if the safety check refuses the plan")]
DryRun = Annotated[
    bool, Query(description="Check and preview only: answer with the plan diff and the verdict, write nothing")
]


def fleet_for(settings: PlannerSettings) -> Fleet:
    """The fleet the settings ask for: a file, a generated fleet, or the demo fleet (seeds an empty store)."""
    if settings.cell:
        fleet = load_fleet_file(settings.fleet_file) if settings.fleet_file else cell_fleet(settings.cell, settings.lbs or DEFAULT_CELL_LBS)
        if outside := fleet_outside_cell(fleet, settings.cell):
            raise outside
        return fleet
    if settings.fleet_file is not None:
        return load_fleet_file(settings.fleet_file)
    if settings.lbs is not None:
        return generate_fleet(settings.lbs, settings.seed)
    return demo_fleet()


def seed_source(settings: PlannerSettings) -> str:
    if settings.cell and settings.fleet_file is None:
        return f"the fleet of {settings.cell} ({settings.lbs or DEFAULT_CELL_LBS} LBs)"
    if settings.fleet_file is not None:
        return f"fleet file {settings.fleet_file}"
    if settings.lbs is not None:
        return f"generated fleet of {settings.lbs} (seed {settings.seed})"
    return "the demo fleet"


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
        "dry_run": result.dry_run,
        "plan": plan_summary(result.plan, planner.store.key_for(result.plan.version))
        if result.plan
        else None,
        "next_run": next_run.isoformat() if next_run else None,
        "fleet_revision": result.fleet_revision,
        "verdict": result.verdict,
        "violations": [v.as_dict() for v in result.violations],
        "diff": result.diff.as_dict() if result.diff else None,
    }


def _preview(preview: Preview, force: bool) -> dict[str, Any]:
    return {
        "dry_run": True,
        "version": preview.candidate.version,
        "verdict": preview.verdict(force),
        "violations": [v.as_dict() for v in preview.violations],
        "frozen": preview.frozen.model_dump() if preview.frozen else None,
        "diff": preview.diff.as_dict(),
    }


def _published(plan, planner: Planner) -> dict[str, Any]:
    diff = planner.last_diff if planner.last_diff and planner.last_diff.new_version == plan.version else None
    return {**plan_summary(plan, planner.store.key_for(plan.version)), "diff": diff.as_dict() if diff else None}


def create_app(
    settings: PlannerSettings,
    *,
    fleet: Fleet | None = None,
    store: PlanStore | None = None,
    schedule: bool = True,
) -> FastAPI:
    seed = fleet or fleet_for(settings)  # first: a bad fleet file is reported before any AWS setting is needed
    planner = Planner(
        settings,
        store or PlanStore(settings.bucket, settings.region, signer=settings.plan_signer(), cell=settings.cell),
        seed,
        seed_source="the given fleet" if fleet else seed_source(settings),
    )
    require_token = bearer_dependency(load_token())
    guarded = [Depends(require_token)]

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        try:
            planner.current_fleet()  # resume from the stored fleet (or seed it) before the first plan
        except StoreError:
            pass  # logged; the first scheduled run or request tries again
        if schedule:
            planner.schedule = PlanSchedule(settings.plan_interval, planner.scheduled_run)
            planner.schedule.start()
        fleet_now = planner.fleet or planner.seed_fleet
        planner.log.info(
            "planner_started",
            bucket=settings.bucket,
            cell=settings.cell,
            plan_interval_s=settings.plan_interval,
            fleet_revision=planner.stored_fleet.revision if planner.stored_fleet else None,
            drift=settings.drift,
            load_balancers=len(fleet_now.load_balancers),
            endpoints=len(fleet_now.endpoints),
            plan_key=planner.store.signer.key_id if planner.store.signer else "unsigned",
        )
        try:
            yield
        finally:
            if planner.schedule:
                planner.schedule.stop()
            planner.log.info("planner_stopped")

    app = web.service_app(
        "dnsctl planner",
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

    @app.exception_handler(FleetConflict)
    async def _conflict(_: Request, exc: FleetConflict):
        return _error(409, "conflict", str(exc), key=exc.key, expected_revision=exc.expected)

    @app.exception_handler(FleetUnavailable)
    async def _fleet_unavailable(_: Request, exc: FleetUnavailable):
        return _error(502, "fleet_invalid", str(exc))

    @app.exception_handler(StoreError)
    async def _store_error(_: Request, exc: StoreError):
        return _error(502, "store_error", str(exc))

    @app.exception_handler(NotInFleet)
    async def _not_in_fleet(_: Request, exc: NotInFleet):
        return _error(404, "not_in_fleet", str(exc))

    # -- health and metrics -------------------------------------------------------------------

    def alive() -> dict[str, Any]:
        problem = planner.check_store()
        return {
            "planner": settings.planner_id,
            "store": {"ok": problem is None, "bucket": settings.bucket, "endpoint": planner.store.endpoint,
                      "detail": problem},
        }

    # Ready when the plan store works (check_store creates the bucket lazily) and Route 53 answers.
    readiness = web.Readiness([web.Dependency("s3", planner.check_store), web.route53()])
    web.add_health_routes(app, alive, readiness)

    @app.get("/metrics", tags=["health"])
    def metrics() -> Response:
        # The process-wide registry holds the AWS client metrics (throttles, rate-limit waits).
        body = generate_latest(planner.metrics.registry) + generate_latest(REGISTRY)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    # -- fleet --------------------------------------------------------------------------------

    @app.get("/v1/fleet", tags=["fleet"])
    def get_fleet(response: Response) -> dict[str, Any]:
        """The desired fleet as stored (the same shape a fleet file has); its revision in X-Fleet-Revision."""
        fleet, stored = planner.current_fleet()
        if stored is not None:
            response.headers["X-Fleet-Revision"] = str(stored.revision)
        return fleet.model_dump(mode="json")

    @app.put("/v1/fleet", tags=["fleet"], dependencies=guarded)
    def load_fleet(body: FleetLoad, force: Force = False, dry_run: DryRun = False) -> Any:
        """Replace the whole desired fleet as one compare-and-swap (over `expected_revision`), publishing at once."""
        try:
            fleet = validate_fleet(body.fleet, "fleet")
            return _change(
                planner.load_fleet(
                    fleet, over_revision=body.expected_revision, reason=body.reason, force=force, dry_run=dry_run
                ),
                planner,
            )
        except FleetError as exc:
            detail = [{"loc": ["body", "fleet", *(loc.split(".") if loc else [])], "msg": msg,
                       "type": "value_error"} for loc, msg in exc.errors]
            return JSONResponse({"detail": detail, "error": "invalid_fleet"}, status_code=422)

    @app.post("/v1/fleet/endpoints", tags=["fleet"], dependencies=guarded, status_code=201)
    def add_endpoint(
        body: EndpointCreate, force: Force = False, dry_run: DryRun = False,
        publish: Annotated[bool, Query(description="Publish at once (fast lane), as `dnsctl zones adopt` does")] = False,
    ) -> Any:
        """Add an endpoint, optionally with its first LBs (slow lane: it joins the next scheduled plan;
        `publish=true`: its first plan at once)."""
        try:
            return _change(
                planner.add_endpoint(body.endpoint, tuple(body.load_balancers), force=force, dry_run=dry_run,
                                     lane="fast" if publish else "slow"),
                planner,
            )
        except FleetError as exc:
            if any("already exists" in msg for _, msg in exc.errors):
                return _error(409, "exists", str(exc))
            return _fleet_422(exc, body_field_of_lb=False)

    @app.patch("/v1/fleet/endpoints/{name}", tags=["fleet"], dependencies=guarded)
    def update_endpoint(name: str, patch: EndpointPatch, force: Force = False, dry_run: DryRun = False) -> Any:
        """Change the record types an endpoint serves (fast lane: publishes at once)."""
        try:
            return _change(
                planner.set_record_types(name, tuple(patch.record_types), force=force, dry_run=dry_run), planner
            )
        except FleetError as exc:
            return _fleet_422(exc, body_field_of_lb=False)

    @app.delete("/v1/fleet/endpoints/{name}", tags=["fleet"], dependencies=guarded)
    def delete_endpoint(name: str, force: Force = False, dry_run: DryRun = False) -> Any:
        """Remove an endpoint and its LBs (fast lane; the safety check asks for force)."""
        try:
            return _change(planner.remove_endpoint(name, force=force, dry_run=dry_run), planner)
        except FleetError as exc:
            return _fleet_422(exc, body_field_of_lb=False)

    @app.post("/v1/fleet/load-balancers", tags=["fleet"], dependencies=guarded, status_code=201)
    def add_load_balancer(lb: LoadBalancer, force: Force = False, dry_run: DryRun = False) -> Any:
        """Add a load balancer (slow lane: it joins the next scheduled plan)."""
        try:
            return _change(planner.add_lb(lb, force=force, dry_run=dry_run), planner)
        except FleetError as exc:
            if any("already exists" in msg for _, msg in exc.errors):
                return _error(409, "exists", str(exc))
            return _fleet_422(exc, body_field_of_lb=True)

    @app.patch("/v1/fleet/load-balancers/{lb_id}", tags=["fleet"], dependencies=guarded)
    def update_load_balancer(
        lb_id: str, patch: LoadBalancerPatch, force: Force = False, dry_run: DryRun = False
    ) -> Any:
        """Change capacity (slow lane) and/or state; draining or retiring publishes at once (fast lane)."""
        try:
            return _change(
                planner.update_lb(lb_id, capacity=patch.capacity, state=patch.state, force=force, dry_run=dry_run),
                planner,
            )
        except FleetError as exc:
            return _fleet_422(exc, body_field_of_lb=True)

    @app.delete("/v1/fleet/load-balancers/{lb_id}", tags=["fleet"], dependencies=guarded)
    def delete_load_balancer(lb_id: str, force: Force = False, dry_run: DryRun = False) -> Any:
        """Remove a load balancer (fast lane)."""
        try:
            return _change(planner.delete_lb(lb_id, force=force, dry_run=dry_run), planner)
        except FleetError as exc:
            return _fleet_422(exc, body_field_of_lb=False)

    @app.post("/v1/fleet/azs/{az}/drain", tags=["fleet"], dependencies=guarded)
    def drain_az(az: str, force: Force = False, dry_run: DryRun = False) -> Any:
        """Take every LB of the AZ out of service (weight 0) and publish at once (fast lane)."""
        return _change(planner.drain_az(az, force=force, dry_run=dry_run), planner)

    @app.post("/v1/fleet/azs/{az}/undrain", tags=["fleet"], dependencies=guarded)
    def undrain_az(az: str, force: Force = False, dry_run: DryRun = False) -> Any:
        """Bring the AZ back (slow lane: the next scheduled plan carries it)."""
        return _change(planner.undrain_az(az, force=force, dry_run=dry_run), planner)

    # -- plans --------------------------------------------------------------------------------

    @app.post("/v1/plans", tags=["plans"], dependencies=guarded, status_code=201)
    def publish(
        body: PublishRequest | None = None, force: Force = False, dry_run: DryRun = False
    ) -> dict[str, Any]:
        """Publish a plan now from the current fleet (it carries any queued slow-lane changes)."""
        result = planner.publish_now(body.reason if body else "", force=force, dry_run=dry_run)
        return _preview(result, force) if isinstance(result, Preview) else _published(result, planner)

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
        version: Annotated[int, Path(ge=1)],
        body: PublishRequest | None = None,
        force: Force = False,
        dry_run: DryRun = False,
    ) -> Any:
        """Publish plan `version`'s content as a new version (rollback through the normal path)."""
        try:
            result = planner.restore(version, body.reason if body else "", force=force, dry_run=dry_run)
        except FleetError as exc:
            return _error(409, "not_adoptable", f"plan {version} cannot be adopted as the fleet: {exc}")
        if isinstance(result, Preview):
            return {**_preview(result, force), "restored_version": version}
        return {**_published(result, planner), "restored_version": version}

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
