"""The planner itself: holds the fleet, turns changes into plans, and publishes them through the store.

Everything that changes the planner's state goes through `Planner` under one lock, so a fleet
change and the plan that carries it are one step: a request that is refused (frozen, unsafe,
S3 unreachable, bad input) leaves the fleet, the slow lane and the store as they were. The HTTP
layer (api.py) and the timer (schedule.py) only call in here.

Publishing, in order: the freeze marker is checked (frozen: refuse); the newest valid plan is the
baseline; the candidate is checked for safety against it (unsafe: refuse unless forced); the store
writes it as newest + 1 (If-None-Match, retrying on the next version when another writer won).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from planner.fleet import Fleet, LbState, LoadBalancer
from planner.metrics import PlannerMetrics
from planner.planning import Violation, build_plan, endpoint_plans, fleet_from_plan, safety_violations
from planner.schedule import PlanSchedule, QueuedChange, SlowLane, TrafficDrift
from planner.settings import PlannerSettings
from services.logs import get_logger
from services.plan.model import EndpointPlan, Lane, Plan, PlanInvalid
from services.plan.store import FreezeState, PlanNotFound, PlanStore, StoreError, StoreUnavailable

# How far back the planner looks for a valid baseline when the newest plans are damaged.
_BASELINE_LOOKBACK = 10
# Health checks may come many times a second; while S3 is down, retry the bucket at most this often.
_BUCKET_RETRY_S = 2.0


class PlannerRefused(Exception):
    """A plan was not published on purpose. cause: frozen | unsafe."""

    def __init__(self, cause: str, message: str, violations: list[Violation] | None = None):
        super().__init__(message)
        self.cause = cause
        self.message = message
        self.violations = violations or []


@dataclass(frozen=True)
class ChangeResult:
    change: str
    lane: Lane
    changed: bool
    queued: bool
    plan: Plan | None


def plan_summary(plan: Plan, key: str) -> dict[str, object]:
    return {
        "version": plan.version,
        "key": key,
        "created_at": plan.created_at,
        "reason": plan.reason,
        "lane": plan.lane,
        "sha256": plan.sha256,
        "endpoints": len(plan.endpoints),
        "targets": sum(len(e.targets) for e in plan.endpoints),
    }


class Planner:
    def __init__(
        self, settings: PlannerSettings, store: PlanStore, fleet: Fleet, metrics: PlannerMetrics | None = None
    ):
        if fleet.region != settings.region:
            raise ValueError(
                f"the fleet is for region {fleet.region} but the planner writes plans for {settings.region}"
            )
        self.settings = settings
        self.store = store
        self.fleet = fleet
        self.metrics = metrics or PlannerMetrics()
        self.slow_lane = SlowLane()
        self.drift = TrafficDrift(settings.seed, settings.drift, settings.drift_bound)
        self.schedule: PlanSchedule | None = None
        self.last_published: Plan | None = None
        self.store_error: str | None = None
        self.log = get_logger(planner=settings.planner_id, region=settings.region)
        self._lock = threading.RLock()
        self._bucket_ready = False
        self._bucket_failed_at = -_BUCKET_RETRY_S

    # -- the store, with health bookkeeping ---------------------------------------------------

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        try:
            self.store.ensure_bucket()
        except StoreError:
            self._bucket_failed_at = time.monotonic()
            raise
        self._bucket_ready = True
        self.log.info("bucket_ready", bucket=self.store.bucket, endpoint=self.store.endpoint)

    @contextmanager
    def using_store(self) -> Iterator[None]:
        """Run store calls; remember whether S3 answered, logging only when that changes."""
        try:
            self._ensure_bucket()
            yield
        except StoreUnavailable as exc:
            self._bucket_ready = False  # S3 may come back empty (or the bucket may be gone): check again
            self.metrics.store_errors.labels("unavailable").inc()
            if self.store_error is None:
                self.log.warning(
                    "store_unavailable",
                    bucket=self.store.bucket,
                    endpoint=self.store.endpoint,
                    error=str(exc),
                )
            self.store_error = str(exc)
            raise
        except PlanNotFound:
            raise  # a question about a version that does not exist, not a store failure
        except StoreError:
            self.metrics.store_errors.labels("error").inc()
            raise
        else:
            if self.store_error is not None:
                self.log.info("store_recovered", bucket=self.store.bucket, endpoint=self.store.endpoint)
            self.store_error = None

    def check_store(self) -> str | None:
        """For /healthz: None when the store works, else why not. Retries the bucket lazily."""
        if not self._bucket_ready and time.monotonic() - self._bucket_failed_at >= _BUCKET_RETRY_S:
            try:
                with self.using_store():
                    pass
            except StoreError:
                pass
        if not self._bucket_ready and self.store_error is None:
            return "the plan store has not been reached yet"
        return self.store_error

    def _baseline(self) -> Plan | None:
        """The newest valid plan: what a new plan is checked against. Damaged plans are skipped."""
        version = self.store.newest_version()
        for _ in range(_BASELINE_LOOKBACK):
            if version is None or version < 1:
                return None
            try:
                return self.store.get(version)
            except PlanInvalid as exc:
                self.metrics.store_errors.labels("invalid").inc()
                self.log.warning("plan_invalid", key=exc.key, error=exc.reason)
            except PlanNotFound:
                pass
            version -= 1
        return None

    # -- publishing ---------------------------------------------------------------------------

    def _refuse(
        self, cause: str, message: str, *, reason: str, lane: Lane, violations: list[Violation] | None = None
    ):
        self.metrics.plan_refusals.labels(cause).inc()
        self.log.warning(
            "plan_refused",
            cause=cause,
            message=message,
            reason=reason,
            lane=lane,
            violations=[v.as_dict() for v in violations or []],
        )
        raise PlannerRefused(cause, message, violations)

    def freeze_state(self) -> FreezeState | None:
        frozen = self.store.freeze_state()
        self.metrics.frozen.set(1 if frozen else 0)
        return frozen

    def _publish(
        self,
        fleet: Fleet,
        *,
        reason: str,
        lane: Lane,
        force: bool,
        endpoints: tuple[EndpointPlan, ...] | None = None,
    ) -> Plan:
        """Check and write one plan (caller holds the lock, inside using_store)."""
        frozen = self.freeze_state()
        if frozen:
            self._refuse(
                "frozen",
                f"the planner is frozen (since {frozen.at} by {frozen.by}: {frozen.reason}); "
                "nothing is published until someone thaws it (`dnsctl thaw`)",
                reason=reason,
                lane=lane,
            )
        started = time.perf_counter()
        baseline = self._baseline()
        endpoints = endpoints if endpoints is not None else endpoint_plans(fleet, self.drift.factors())

        def build(version: int) -> Plan:
            return Plan.build(
                region=fleet.region, version=version, endpoints=endpoints, reason=reason[:500], lane=lane
            )

        candidate = build((baseline.version if baseline else 0) + 1)

        def make(version: int) -> Plan:
            # Usually the store asks for exactly the version checked; building 1,000 LBs twice is not free.
            return candidate if version == candidate.version else build(version)

        violations = safety_violations(baseline, candidate, self.settings.max_capacity_drop)
        if violations and not force:
            self._refuse(
                "unsafe", _unsafe_message(violations), reason=reason, lane=lane, violations=violations
            )
        if violations:
            self.metrics.forced_plans.inc()
            self.log.warning(
                "plan_forced", reason=reason, lane=lane, violations=[v.as_dict() for v in violations]
            )
        plan = self.store.publish(make)
        self.metrics.publish_seconds.observe(time.perf_counter() - started)
        self.metrics.plans_published.labels(lane).inc()
        self.metrics.newest_version.set(plan.version)
        self.last_published = plan
        self.log.info(
            "plan_published",
            plan_version=plan.version,
            lane=lane,
            reason=plan.reason,
            key=self.store.key_for(plan.version),
            baseline_version=baseline.version if baseline else None,
            forced=bool(violations),
            targets=sum(len(e.targets) for e in plan.endpoints),
        )
        return plan

    def _with_queued(self, reason: str, carried: list[QueuedChange]) -> str:
        if not carried:
            return reason
        return f"{reason} (carrying {self.slow_lane.summary()})"

    def scheduled_run(self) -> Plan | None:
        """The timer's job: drift the traffic, publish everything the slow lane queued. Never raises."""
        try:
            with self._lock:
                self.drift.advance(b.id for b in self.fleet.load_balancers)
                carried = self.slow_lane.pending()
                reason = self._with_queued("scheduled", carried)
                with self.using_store():
                    plan = self._publish(
                        self.fleet, reason=reason, lane="slow", force=any(c.forced for c in carried)
                    )
                self.slow_lane.clear(carried)
                self.metrics.queued_changes.set(len(self.slow_lane.pending()))
                return plan
        except PlannerRefused:
            return None  # logged and counted by _refuse
        except StoreUnavailable:
            return None  # logged once as store_unavailable when S3 went away, counted every time
        except StoreError as exc:
            self.log.warning("scheduled_plan_failed", error=str(exc))
            return None
        except Exception as exc:  # the timer must survive anything one run throws
            self.log.exception("scheduled_plan_crashed", error=repr(exc))
            return None

    def publish_now(self, reason: str, *, force: bool) -> Plan:
        with self._lock, self.using_store():
            carried = self.slow_lane.pending()
            plan = self._publish(
                self.fleet,
                reason=self._with_queued(f"requested: {reason}" if reason else "requested", carried),
                lane="fast",
                force=force,
            )
            self.slow_lane.clear(carried)
            self.metrics.queued_changes.set(len(self.slow_lane.pending()))
            return plan

    def burst_run(self, k: int, n: int) -> Plan:
        """Plan k of n of a chaos burst (planner/burst.py): drift the traffic a step and publish at once."""
        with self._lock, self.using_store():
            self.drift.advance(b.id for b in self.fleet.load_balancers)
            return self._publish(self.fleet, reason=f"burst {k}/{n}", lane="fast", force=False)

    def restore(self, version: int, reason: str, *, force: bool) -> Plan:
        """Publish plan `version`'s content as a new version and adopt the fleet it describes."""
        with self._lock, self.using_store():
            old = self.store.get(version)
            fleet = fleet_from_plan(old, self.fleet)
            text = f"restore of plan {version}" + (f": {reason}" if reason else "")
            plan = self._publish(fleet, reason=text, lane="fast", force=force, endpoints=old.endpoints)
            self.fleet = fleet
            dropped = self.slow_lane.drop_all()
            self.metrics.queued_changes.set(0)
            self.log.info(
                "plan_restored",
                plan_version=plan.version,
                restored_version=version,
                dropped_changes=[c.description for c in dropped],
            )
            return plan

    # -- fleet changes ------------------------------------------------------------------------

    def change_fleet(
        self, kind: str, description: str, apply: Callable[[Fleet], Fleet], lane: Lane, *, force: bool
    ) -> ChangeResult:
        """Apply one change: the fast lane publishes it now, the slow lane checks it and queues it."""
        with self._lock:
            new_fleet = apply(self.fleet)
            if new_fleet == self.fleet:
                return ChangeResult(description, lane, changed=False, queued=False, plan=None)
            plan, forced = None, False
            with self.using_store():
                if lane == "fast":
                    carried = self.slow_lane.pending()
                    plan = self._publish(
                        new_fleet, reason=self._with_queued(description, carried), lane="fast", force=force
                    )
                    self.slow_lane.clear(carried)
                else:
                    forced = self._check_slow_change(new_fleet, description, force=force)
            self.fleet = new_fleet
            if lane == "slow":
                self.slow_lane.add(description, forced)
            self.metrics.queued_changes.set(len(self.slow_lane.pending()))
            self.metrics.fleet_changes.labels(kind, lane).inc()
            self.log.info(
                "fleet_changed",
                change=kind,
                description=description,
                lane=lane,
                queued=lane == "slow",
                plan_version=plan.version if plan else None,
            )
            return ChangeResult(description, lane, changed=True, queued=lane == "slow", plan=plan)

    def _check_slow_change(self, new_fleet: Fleet, description: str, *, force: bool) -> bool:
        """Refuse a queued change that makes the next plan unsafe. Returns whether it needed force.

        Violations the queue already holds (accepted earlier with force) are not held against
        this change; only new ones are.
        """
        baseline = self._baseline()
        version = (baseline.version if baseline else 0) + 1
        drift = self.drift.factors()
        before = safety_violations(
            baseline,
            build_plan(self.fleet, version, reason="", lane="slow", drift=drift),
            self.settings.max_capacity_drop,
        )
        after = safety_violations(
            baseline,
            build_plan(new_fleet, version, reason="", lane="slow", drift=drift),
            self.settings.max_capacity_drop,
        )
        known = {(v.endpoint, v.rule) for v in before}
        new = [v for v in after if (v.endpoint, v.rule) not in known]
        if new and not force:
            self._refuse("unsafe", _unsafe_message(new), reason=description, lane="slow", violations=new)
        if new:
            self.metrics.forced_plans.inc()
            self.log.warning("change_forced", description=description, violations=[v.as_dict() for v in new])
        return bool(new)

    def add_lb(self, lb: LoadBalancer, *, force: bool) -> ChangeResult:
        return self.change_fleet(
            "add_lb",
            f"add {lb.id} ({lb.az}, capacity {lb.capacity})",
            lambda f: f.with_load_balancer(lb),
            "slow",
            force=force,
        )

    def update_lb(
        self, lb_id: str, *, capacity: int | None, state: LbState | None, force: bool
    ) -> ChangeResult:
        current = self.fleet.lb(lb_id)
        parts = []
        if capacity is not None:
            parts.append(f"capacity {current.capacity if current else '?'} -> {capacity}")
        if state is not None:
            parts.append(f"state {current.state if current else '?'} -> {state}")
        # Taking an LB out of service is urgent; everything else can wait for the next plan.
        lane: Lane = (
            "fast"
            if state in ("draining", "retired") and (current is None or current.state != state)
            else "slow"
        )
        return self.change_fleet(
            "update_lb",
            f"{lb_id}: " + ", ".join(parts),
            lambda f: f.with_lb_update(lb_id, capacity=capacity, state=state),
            lane,
            force=force,
        )

    def delete_lb(self, lb_id: str, *, force: bool) -> ChangeResult:
        return self.change_fleet(
            "delete_lb", f"delete {lb_id}", lambda f: f.without_load_balancer(lb_id), "fast", force=force
        )

    def drain_az(self, az: str, *, force: bool) -> ChangeResult:
        return self.change_fleet("drain_az", f"drain {az}", lambda f: f.drain_az(az), "fast", force=force)

    def undrain_az(self, az: str, *, force: bool) -> ChangeResult:
        return self.change_fleet(
            "undrain_az", f"undrain {az}", lambda f: f.undrain_az(az), "slow", force=force
        )

    # -- the kill switch ----------------------------------------------------------------------

    def freeze(self, reason: str, by: str) -> tuple[FreezeState, bool]:
        """Set the freeze marker. Returns (state, newly frozen); an existing freeze is kept as is."""
        with self._lock, self.using_store():
            existing = self.freeze_state()
            if existing:
                return existing, False
            state = self.store.freeze(reason, by)
            self.metrics.frozen.set(1)
            self.log.warning("planner_frozen", reason=reason, by=by, at=state.at)
            return state, True

    def thaw(self, by: str) -> FreezeState | None:
        """Clear the freeze marker; returns the freeze that was lifted (None if there was none)."""
        with self._lock, self.using_store():
            existing = self.freeze_state()
            if existing is None:
                return None
            self.store.thaw(by)
            self.metrics.frozen.set(0)
            self.log.info(
                "planner_thawed",
                by=by,
                frozen_since=existing.at,
                frozen_by=existing.by,
                reason=existing.reason,
            )
            return existing

    # -- reading ------------------------------------------------------------------------------

    def plan(self, version: int | None) -> Plan:
        """Plan `version`, or the newest one when None."""
        with self.using_store():
            if version is None:
                version = self.store.newest_version()
                if version is None:
                    raise PlanNotFound(f"{self.store.prefix}* (no plan has been published yet)")
            return self.store.get(version)

    def history_page(self, before: int | None, limit: int) -> dict[str, object]:
        """One page of history, newest first; damaged plans are listed with why, not skipped."""
        with self.using_store():
            newest = self.store.newest_version()
            versions = self.store.history(
                before=before if before is not None else (newest or 0) + 1, limit=limit
            )
            items: list[dict[str, object]] = []
            for v in versions:
                key = self.store.key_for(v)
                try:
                    items.append(plan_summary(self.store.get(v), key))
                except PlanInvalid as exc:
                    self.metrics.store_errors.labels("invalid").inc()
                    items.append({"version": v, "key": key, "invalid": exc.reason})
                except PlanNotFound:
                    continue
        return {
            "newest_version": newest,
            "plans": items,
            "next_before": versions[-1] if versions and versions[-1] > 1 else None,
        }

    def next_run(self) -> datetime | None:
        return self.schedule.next_run() if self.schedule else None

    def status(self) -> dict[str, object]:
        frozen: FreezeState | None = None
        newest: int | None = None
        store_ok = True
        try:
            with self.using_store():
                frozen = self.freeze_state()
                newest = self.store.newest_version()
        except StoreError:
            store_ok = False
        next_run = self.next_run()
        last = self.last_published
        return {
            "planner": self.settings.planner_id,
            "region": self.settings.region,
            "bucket": self.store.bucket,
            "store": {"ok": store_ok, "endpoint": self.store.endpoint, "detail": self.store_error},
            "frozen": (frozen is not None) if store_ok else None,
            "freeze": frozen.model_dump() if frozen else None,
            "newest_version": newest,
            "last_published": None
            if last is None
            else {
                "version": last.version,
                "created_at": last.created_at,
                "lane": last.lane,
                "reason": last.reason,
            },
            "next_run": next_run.isoformat() if next_run else None,
            "plan_interval_s": self.settings.plan_interval,
            "queued_changes": [c.as_dict() for c in self.slow_lane.pending()],
            "fleet": {
                "load_balancers": len(self.fleet.load_balancers),
                "serving": sum(1 for b in self.fleet.load_balancers if self.fleet.serving(b)),
                "drained_azs": list(self.fleet.drained_azs),
            },
        }


def _unsafe_message(violations: list[Violation]) -> str:
    return (
        "refused: the plan is unsafe: "
        + "; ".join(v.message for v in violations)
        + ". Re-run with force=true (CLI: --force) if this is intended."
    )
