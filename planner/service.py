"""The planner itself: keeps the desired fleet, turns changes into plans, and publishes them.

The desired fleet is durable: it lives in S3 beside the plans (services/plan/fleet_store.py) and
`self.fleet` is only this process's copy of the newest revision read. Every change reads the
stored revision, applies the change to it, checks it, and writes the result with a
compare-and-swap; a writer that lost to another planner re-reads and re-applies. A restarted
planner reads the same revision back, so drains and every other change survive it; the fleet
file (or demo fleet) only seeds an empty store.

Everything goes through `Planner` under one lock: a request that is refused (frozen, unsafe,
S3 unreachable, bad input) leaves the fleet, the slow lane and the store as they were. The HTTP
layer (api.py) and the timer (schedule.py) only call in here. A change asked with dry_run goes
through every check and returns the plan diff and the verdict, and writes nothing.

Publishing, in order: the freeze marker is checked (frozen: refuse); the newest valid plan is the
baseline; the candidate is checked for safety against it (unsafe: refuse unless forced); the store
writes it as max(newest, highest version Route 53 has applied) + 1 (If-None-Match, retrying on the
next version when another writer won). After the write the fleet revision is read again: if
another planner changed the fleet meanwhile, the plan is made again from the newer revision, so
the newest plan always carries the newest fleet.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from planner.applied import AppliedVersions
from planner.cells import fleet_outside_cell
from planner.fleet import Endpoint, Fleet, FleetError, LbState, LoadBalancer, validate_fleet
from planner.metrics import PlannerMetrics
from planner.planning import Violation, build_plan, endpoint_plans, fleet_from_plan, safety_violations
from planner.schedule import PlanSchedule, QueuedChange, ScheduleHold, SlowLane, TrafficDrift
from planner.settings import PlannerSettings
from services.logs import get_logger
from services.plan.diff import PlanDiff, plan_diff
from services.plan.fleet_store import FleetConflict, FleetDocumentInvalid, FleetStore, StoredFleet
from services.plan.model import EndpointPlan, Lane, Plan, PlanInvalid
from services.plan.store import FreezeState, PlanNotFound, PlanStore, StoreError, StoreUnavailable

# How far back the planner looks for a valid baseline when the newest plans are damaged.
_BASELINE_LOOKBACK = 10
# Health checks may come many times a second; while S3 is down, retry the bucket at most this often.
_BUCKET_RETRY_S = 2.0
# Rounds of read-apply-write before a fleet change gives up to other writers (each round re-reads).
FLEET_CAS_ATTEMPTS = 20
# Times a publish is redone when the fleet moved while the plan was being written.
_REPUBLISH_ROUNDS = 3


class FleetUnavailable(StoreError):
    """There is no good fleet to change: the stored document is damaged (and none was read before it)."""


class PlannerRefused(Exception):
    """A plan was not published on purpose. cause: frozen | unsafe."""

    def __init__(self, cause: str, message: str, violations: list[Violation] | None = None):
        super().__init__(message)
        self.cause = cause
        self.message = message
        self.violations = violations or []


@dataclass(frozen=True)
class Preview:
    """What publishing a fleet would do now: the plan diff and the safety verdict."""

    baseline: Plan | None
    candidate: Plan
    violations: list[Violation]
    frozen: FreezeState | None

    @property
    def diff(self) -> PlanDiff:
        return plan_diff(self.baseline, self.candidate)

    def verdict(self, force: bool) -> str:
        if self.frozen:
            return "frozen"
        if self.violations:
            return "forced" if force else "unsafe"
        return "safe"


@dataclass(frozen=True)
class ChangeResult:
    change: str
    lane: Lane
    changed: bool
    queued: bool
    plan: Plan | None
    diff: PlanDiff | None = None
    violations: tuple[Violation, ...] = ()
    verdict: str | None = None
    dry_run: bool = False
    fleet_revision: int | None = None


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
        self,
        settings: PlannerSettings,
        store: PlanStore,
        fleet: Fleet,
        metrics: PlannerMetrics | None = None,
        *,
        fleet_store: FleetStore | None = None,
        applied: AppliedVersions | None = None,
        seed_source: str = "the fleet file",
    ):
        """`fleet` seeds an empty fleet store; once the store holds a fleet, the store wins."""
        if fleet.region != settings.region:
            raise ValueError(
                f"the fleet is for region {fleet.region} but the planner writes plans for {settings.region}"
            )
        self.settings = settings
        self.store = store
        self.fleet_store = fleet_store or FleetStore.beside(store)
        self.seed_fleet = fleet
        self.seed_source = seed_source
        # This process's copy of the newest stored revision (None until the store was read once).
        self.fleet: Fleet | None = None
        self.stored_fleet: StoredFleet | None = None
        self.fleet_problem: str | None = None  # why the stored document is unusable, while it is
        self.applied = applied or AppliedVersions(interval_s=settings.applied_check_interval)
        self.store_behind: dict[str, object] | None = None
        self.metrics = metrics or PlannerMetrics()
        self.slow_lane = SlowLane()
        self.drift = TrafficDrift(settings.seed, settings.drift, settings.drift_bound)
        self.schedule: PlanSchedule | None = None
        self.schedule_hold = ScheduleHold()
        self.last_published: Plan | None = None
        self.last_diff: PlanDiff | None = None
        self._damaged_etag: str | None = None
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

    # -- the durable fleet --------------------------------------------------------------------

    def sync_fleet(self) -> StoredFleet | None:
        """Read the stored fleet into self.fleet (seeding an empty store). Caller is inside using_store.

        A damaged document leaves self.fleet at the last good revision (logged once per document,
        counted every read) and returns None; callers that change the fleet refuse then.
        """
        for _ in range(FLEET_CAS_ATTEMPTS):
            try:
                stored = self.fleet_store.read()
            except FleetDocumentInvalid as exc:
                self._fleet_damaged(exc.reason, exc.etag)
                return None
            if stored is None:
                try:
                    stored = self.fleet_store.write(
                        self.seed_fleet.model_dump(mode="json"),
                        change=f"seeded from {self.seed_source}",
                        by=self.settings.planner_id,
                        over=None,
                    )
                except FleetConflict:
                    continue  # another planner seeded it first: read theirs
                self.log.info(
                    "fleet_seeded",
                    source=self.seed_source,
                    key=self.fleet_store.key,
                    fleet_revision=stored.revision,
                    load_balancers=len(self.seed_fleet.load_balancers),
                )
            if self.stored_fleet is not None and stored.etag == self.stored_fleet.etag:
                return stored  # unchanged since the last read
            try:
                fleet = validate_fleet(stored.fleet, f"{self.fleet_store.key} revision {stored.revision}")
                if fleet.region != self.settings.region:
                    raise FleetError([("region", f"is {fleet.region}, this planner plans {self.settings.region}")])
            except FleetError as exc:
                self._fleet_damaged(str(exc), stored.etag)
                return None
            self._adopt(stored, fleet)
            return stored
        raise StoreError(f"gave up reading {self.fleet_store.key}: it kept changing under {FLEET_CAS_ATTEMPTS} reads")

    def _adopt(self, stored: StoredFleet, fleet: Fleet) -> None:
        first = self.stored_fleet is None
        if self.fleet_problem is not None:
            self.log.info("fleet_recovered", fleet_revision=stored.revision, key=self.fleet_store.key)
            self.fleet_problem = None
        if first or stored.by != self.settings.planner_id or stored.revision != self.stored_fleet.revision + 1:
            self.log.info(
                "fleet_loaded" if first else "fleet_synced",
                fleet_revision=stored.revision,
                by=stored.by,
                change=stored.change,
                drained_azs=list(fleet.drained_azs),
                load_balancers=len(fleet.load_balancers),
            )
        self.stored_fleet, self.fleet = stored, fleet
        self.metrics.fleet_revision.set(stored.revision)

    def _fleet_damaged(self, reason: str, etag: str | None) -> None:
        self.metrics.fleet_invalid.inc()
        if self.fleet_problem != reason:
            self.log.warning(
                "fleet_invalid",
                key=self.fleet_store.key,
                error=reason,
                kept_revision=self.stored_fleet.revision if self.stored_fleet else None,
                hint="replace it with `dnsctl fleet load FILE --yes`",
            )
        self.fleet_problem = reason
        self._damaged_etag = etag

    def _fleet_for_change(self) -> tuple[Fleet, StoredFleet]:
        stored = self.sync_fleet()
        if stored is None or self.fleet is None:
            raise FleetUnavailable(
                f"the stored fleet {self.fleet_store.key} is damaged ({self.fleet_problem}); changes are refused "
                "until it is replaced (`dnsctl fleet load FILE --yes`); plans keep using the last good fleet"
            )
        return self.fleet, stored

    def _write_fleet(self, new_fleet: Fleet, description: str, over: StoredFleet | None) -> StoredFleet:
        if self.settings.cell and (outside := fleet_outside_cell(new_fleet, self.settings.cell)):
            raise outside  # a cell's planner never plans names of another cell or of the regional system
        stored = self.fleet_store.write(
            new_fleet.model_dump(mode="json"),
            change=description,
            by=self.settings.planner_id,
            over=over,
            over_etag=None if over else self._damaged_etag,
        )
        self._adopt(stored, new_fleet)
        return stored

    def _lost_race(self, description: str, over: StoredFleet | None) -> None:
        self.metrics.fleet_conflicts.inc()
        self.log.info(
            "fleet_conflict", description=description, over_revision=over.revision if over else None
        )

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

    def _applied_floor(self) -> int:
        """The highest version Route 53 has applied; raises the PlanStoreBehind event when S3 is below it."""
        fleet = self.fleet or self.seed_fleet
        floor = self.applied.current((e.name, e.hosted_zone) for e in fleet.endpoints)
        if floor.error:
            self.log.warning("applied_versions_unreadable", error=floor.error, kept_version=floor.version)
        self.metrics.applied_version.set(floor.version)
        return floor.version

    def _note_store_behind(self, store_version: int | None, applied_version: int) -> None:
        behind = applied_version > (store_version or 0)
        if behind:
            state = {
                "store_version": store_version,
                "applied_version": applied_version,
                "endpoint": self.applied.floor.endpoint,
            }
            if self.store_behind is None:
                self.log.error(
                    "plan_store_behind",
                    alarm="PlanStoreBehind",
                    bucket=self.store.bucket,
                    **state,
                    hint="plans were deleted or the bucket re-created; new plans are numbered above the applied version",
                )
            self.store_behind = state
        self.metrics.store_behind.set(1 if behind else 0)

    def preview(
        self, fleet: Fleet, *, lane: Lane, endpoints: tuple[EndpointPlan, ...] | None = None
    ) -> Preview:
        """Build the plan `fleet` would publish now and check it; writes nothing (caller holds the lock)."""
        baseline = self._baseline()
        endpoints = endpoints if endpoints is not None else endpoint_plans(fleet, self.drift.factors())
        version = max(baseline.version if baseline else 0, self._applied_floor()) + 1
        candidate = Plan.build(region=fleet.region, version=version, endpoints=endpoints, lane=lane)
        violations = safety_violations(baseline, candidate, self.settings.max_capacity_drop)
        # A freeze stops publishing, not queueing: only the fast lane asks.
        return Preview(baseline, candidate, violations, self.freeze_state() if lane == "fast" else None)

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
            self._refuse_frozen(frozen, reason, lane)
        started = time.perf_counter()
        baseline = self._baseline()
        floor = self._applied_floor()
        self._note_store_behind(baseline.version if baseline else None, floor)
        endpoints = endpoints if endpoints is not None else endpoint_plans(fleet, self.drift.factors())

        def build(version: int) -> Plan:
            return Plan.build(
                region=fleet.region, version=version, endpoints=endpoints, reason=reason[:500], lane=lane
            )

        candidate = build(max(baseline.version if baseline else 0, floor) + 1)

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
        plan = self.store.publish(make, above=floor)
        self.metrics.publish_seconds.observe(time.perf_counter() - started)
        self.metrics.plans_published.labels(lane).inc()
        self.metrics.newest_version.set(plan.version)
        if self.store_behind is not None:
            self.log.info("plan_store_caught_up", plan_version=plan.version, **self.store_behind)
            self.store_behind = None
            self.metrics.store_behind.set(0)
        self.last_published = plan
        self.last_diff = plan_diff(baseline, plan)
        self.log.info(
            "plan_published",
            plan_version=plan.version,
            lane=lane,
            reason=plan.reason,
            key=self.store.key_for(plan.version),
            baseline_version=baseline.version if baseline else None,
            fleet_revision=self.stored_fleet.revision if self.stored_fleet else None,
            forced=bool(violations),
            targets=sum(len(e.targets) for e in plan.endpoints),
            changed=self.last_diff.lines()[1:] if not self.last_diff.empty else [],
        )
        return plan

    def _publish_fleet(self, reason: str, *, lane: Lane, force: bool) -> Plan:
        """Publish the newest stored fleet; make it again if the fleet moved while the plan was written."""
        stored = self.sync_fleet()
        if self.fleet is None:
            raise FleetUnavailable(f"no fleet to plan from: {self.fleet_problem}")
        plan = self._publish(self.fleet, reason=reason, lane=lane, force=force)
        for _ in range(_REPUBLISH_ROUNDS):
            after = self.sync_fleet()
            if after is None or stored is None or after.etag == stored.etag:
                break
            self.log.info(
                "fleet_moved_during_publish",
                plan_version=plan.version,
                from_revision=stored.revision,
                to_revision=after.revision,
            )
            stored = after
            plan = self._publish(
                self.fleet, reason=f"{reason} (fleet revision {after.revision})", lane=lane, force=force
            )
        return plan

    def _with_queued(self, reason: str, carried: list[QueuedChange]) -> str:
        if not carried:
            return reason
        return f"{reason} (carrying {self.slow_lane.summary()})"

    def hold_schedule(self, for_s: float, by: str) -> None:
        """Hold the scheduled job for `for_s` seconds (planner/schedule.py's ScheduleHold)."""
        self.schedule_hold.hold(for_s, by)
        self.log.warning("schedule_held", for_s=for_s, by=by)

    def release_schedule(self, by: str) -> bool:
        in_force, was_set = self.schedule_hold.release()
        if was_set:  # one schedule_released per schedule_held, whether it ran out or not
            self.log.info("schedule_released", by=by)
        return in_force

    def scheduled_run(self) -> Plan | None:
        """The timer's job: drift the traffic, publish everything the slow lane queued. Never raises."""
        if self.schedule_hold.remaining_s() is not None:
            return None  # held (schedule_held told when and by whom); the slow lane waits
        if self.schedule_hold.ran_out():
            self.release_schedule("expiry")
        try:
            with self._lock:
                carried = self.slow_lane.pending()
                reason = self._with_queued("scheduled", carried)
                with self.using_store():
                    if self.fleet is None:
                        self.sync_fleet()
                    if self.fleet is None:
                        return None  # logged as fleet_invalid; nothing good to plan from yet
                    # Drift follows the LBs last read; _publish_fleet reads the newest revision.
                    self.drift.advance(b.id for b in self.fleet.load_balancers)
                    plan = self._publish_fleet(reason, lane="slow", force=any(c.forced for c in carried))
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

    def publish_now(self, reason: str, *, force: bool, dry_run: bool = False) -> Plan | Preview:
        """Publish the fleet now (a Preview instead when dry_run: nothing is written)."""
        with self._lock, self.using_store():
            if dry_run:
                fleet, _ = self._fleet_for_change()
                return self.preview(fleet, lane="fast")
            carried = self.slow_lane.pending()
            plan = self._publish_fleet(
                self._with_queued(f"requested: {reason}" if reason else "requested", carried),
                lane="fast",
                force=force,
            )
            self.slow_lane.clear(carried)
            self.metrics.queued_changes.set(len(self.slow_lane.pending()))
            return plan

    def burst_run(self, k: int, n: int) -> Plan:
        """Plan k of n of a chaos burst (planner/burst.py): drift the traffic a step and publish at once.

        A burst plans from the fleet last read (one S3 read less per plan: a burst is about plan
        churn); the next scheduled or requested plan reads the newest revision again.
        """
        with self._lock, self.using_store():
            fleet = self.fleet if self.fleet is not None else self._fleet_for_change()[0]
            self.drift.advance(b.id for b in fleet.load_balancers)
            return self._publish(fleet, reason=f"burst {k}/{n}", lane="fast", force=False)

    def restore(self, version: int, reason: str, *, force: bool, dry_run: bool = False) -> Plan | Preview:
        """Publish plan `version`'s content as a new version and adopt the fleet it describes."""
        with self._lock, self.using_store():
            old = self.store.get(version)
            text = f"restore of plan {version}" + (f": {reason}" if reason else "")
            for _ in range(FLEET_CAS_ATTEMPTS):
                current, stored = self._fleet_for_change()
                fleet = fleet_from_plan(old, current)
                if dry_run:
                    return self.preview(fleet, lane="fast", endpoints=old.endpoints)
                self._refuse_if_unpublishable(self.preview(fleet, lane="fast", endpoints=old.endpoints), text, force)
                try:
                    self._write_fleet(fleet, text, stored)
                    break
                except FleetConflict:
                    self._lost_race(text, stored)
            else:
                raise StoreError(f"gave up restoring plan {version}: the fleet kept changing")
            plan = self._publish(fleet, reason=text, lane="fast", force=force, endpoints=old.endpoints)
            dropped = self.slow_lane.drop_all()
            self.metrics.queued_changes.set(0)
            self.log.info(
                "plan_restored",
                plan_version=plan.version,
                restored_version=version,
                dropped_changes=[c.description for c in dropped],
            )
            return plan

    def _refuse_if_unpublishable(self, preview: Preview, reason: str, force: bool) -> None:
        """Refuse before the fleet is written, so a refused change is not left in the store."""
        if preview.frozen:
            self._refuse_frozen(preview.frozen, reason, "fast")
        if preview.violations and not force:
            self._refuse(
                "unsafe", _unsafe_message(preview.violations), reason=reason, lane="fast",
                violations=preview.violations,
            )

    def _refuse_frozen(self, frozen: FreezeState, reason: str, lane: Lane) -> None:
        self._refuse(
            "frozen",
            f"the planner is frozen (since {frozen.at} by {frozen.by}: {frozen.reason}); "
            "nothing is published until someone thaws it (`dnsctl thaw`)",
            reason=reason,
            lane=lane,
        )

    # -- fleet changes ------------------------------------------------------------------------

    def change_fleet(
        self,
        kind: str,
        description: str,
        apply: Callable[[Fleet], Fleet],
        lane: Lane,
        *,
        force: bool,
        dry_run: bool = False,
    ) -> ChangeResult:
        """Apply one change as a compare-and-swap on the stored fleet.

        The fast lane publishes it now, the slow lane checks it and queues it for the next
        scheduled plan. dry_run stops after the checks and reports what would happen.
        """
        with self._lock, self.using_store():
            for _ in range(FLEET_CAS_ATTEMPTS):
                current, stored = self._fleet_for_change()
                new_fleet = apply(current)
                if new_fleet == current:
                    return ChangeResult(
                        description, lane, changed=False, queued=False, plan=None,
                        dry_run=dry_run, fleet_revision=stored.revision,
                    )
                preview, violations, forced = self._check_change(current, new_fleet, lane)
                verdict = preview.verdict(force) if lane == "fast" else ("unsafe" if violations and not force else
                                                                         "forced" if violations else "safe")
                if dry_run:
                    return ChangeResult(
                        description, lane, changed=True, queued=lane == "slow", plan=None,
                        diff=preview.diff, violations=tuple(violations), verdict=verdict, dry_run=True,
                        fleet_revision=stored.revision,
                    )
                if lane == "fast":
                    self._refuse_if_unpublishable(preview, description, force)
                elif violations and not force:
                    self._refuse("unsafe", _unsafe_message(violations), reason=description, lane="slow",
                                 violations=violations)
                elif violations:
                    self.metrics.forced_plans.inc()
                    self.log.warning("change_forced", description=description,
                                     violations=[v.as_dict() for v in violations])
                try:
                    written = self._write_fleet(new_fleet, description, stored)
                    break
                except FleetConflict:
                    self._lost_race(description, stored)
            else:
                raise StoreError(f"gave up on {description!r}: the fleet kept changing under {FLEET_CAS_ATTEMPTS} tries")
            plan = None
            if lane == "fast":
                carried = self.slow_lane.pending()
                plan = self._publish_fleet(self._with_queued(description, carried), lane="fast", force=force)
                self.slow_lane.clear(carried)
            else:
                self.slow_lane.add(description, forced)
            self.metrics.queued_changes.set(len(self.slow_lane.pending()))
            self.metrics.fleet_changes.labels(kind, lane).inc()
            self.log.info(
                "fleet_changed",
                change=kind,
                description=description,
                lane=lane,
                queued=lane == "slow",
                fleet_revision=written.revision,
                plan_version=plan.version if plan else None,
            )
            return ChangeResult(
                description, lane, changed=True, queued=lane == "slow", plan=plan,
                diff=self.last_diff if plan else preview.diff, violations=tuple(violations),
                verdict=verdict, fleet_revision=written.revision,
            )

    def _check_change(self, current: Fleet, new_fleet: Fleet, lane: Lane) -> tuple[Preview, list[Violation], bool]:
        """(preview of the plan the new fleet makes, violations held against the change, needs force).

        The fast lane holds every violation of the plan against the change. A queued change is
        held only to violations it adds: ones the queue already holds (accepted earlier with
        force) are not held against this change.
        """
        preview = self.preview(new_fleet, lane=lane)
        if lane == "fast":
            return preview, preview.violations, bool(preview.violations)
        before = safety_violations(
            preview.baseline,
            build_plan(current, preview.candidate.version, reason="", lane="slow", drift=self.drift.factors()),
            self.settings.max_capacity_drop,
        )
        known = {(v.endpoint, v.rule) for v in before}
        new = [v for v in preview.violations if (v.endpoint, v.rule) not in known]
        return preview, new, bool(new)

    def add_lb(self, lb: LoadBalancer, *, force: bool, dry_run: bool = False) -> ChangeResult:
        return self.change_fleet(
            "add_lb",
            f"add {lb.id} ({lb.az}, capacity {lb.capacity})",
            lambda f: f.with_load_balancer(lb),
            "slow",
            force=force,
            dry_run=dry_run,
        )

    def update_lb(
        self, lb_id: str, *, capacity: int | None, state: LbState | None, force: bool, dry_run: bool = False
    ) -> ChangeResult:
        current = self.fleet.lb(lb_id) if self.fleet else None
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
            dry_run=dry_run,
        )

    def delete_lb(self, lb_id: str, *, force: bool, dry_run: bool = False) -> ChangeResult:
        return self.change_fleet(
            "delete_lb", f"delete {lb_id}", lambda f: f.without_load_balancer(lb_id), "fast",
            force=force, dry_run=dry_run,
        )

    def drain_az(self, az: str, *, force: bool, dry_run: bool = False) -> ChangeResult:
        return self.change_fleet(
            "drain_az", f"drain {az}", lambda f: f.drain_az(az), "fast", force=force, dry_run=dry_run
        )

    def undrain_az(self, az: str, *, force: bool, dry_run: bool = False) -> ChangeResult:
        return self.change_fleet(
            "undrain_az", f"undrain {az}", lambda f: f.undrain_az(az), "slow", force=force, dry_run=dry_run
        )

    def add_endpoint(
        self, endpoint: Endpoint, lbs: tuple[LoadBalancer, ...], *, force: bool, dry_run: bool = False,
        lane: str = "slow",
    ) -> ChangeResult:
        """A new endpoint (with its first LBs, if given) joins the next scheduled plan (slow lane),
        or is published at once (fast lane: an adopted endpoint's first plan)."""

        def apply(f: Fleet) -> Fleet:
            f = f.with_endpoint(endpoint)
            for lb in lbs:
                f = f.with_load_balancer(lb)
            return f

        return self.change_fleet(
            "add_endpoint",
            f"add endpoint {endpoint.name} ({'/'.join(endpoint.record_types)}, {len(lbs)} LBs)",
            apply,
            lane,
            force=force,
            dry_run=dry_run,
        )

    def remove_endpoint(self, name: str, *, force: bool, dry_run: bool = False) -> ChangeResult:
        """Remove an endpoint and its LBs, published at once (the safety check wants force for it)."""
        return self.change_fleet(
            "remove_endpoint", f"remove endpoint {name}", lambda f: f.without_endpoint(name), "fast",
            force=force, dry_run=dry_run,
        )

    def set_record_types(
        self, name: str, record_types: tuple[str, ...], *, force: bool, dry_run: bool = False
    ) -> ChangeResult:
        """Change what an endpoint answers (A, AAAA or both), published at once."""
        return self.change_fleet(
            "set_record_types",
            f"endpoint {name}: record types {'/'.join(sorted(record_types))}",
            lambda f: f.with_record_types(name, record_types),
            "fast",
            force=force,
            dry_run=dry_run,
        )

    def load_fleet(
        self, fleet: Fleet, *, over_revision: int | None, reason: str, force: bool, dry_run: bool = False
    ) -> ChangeResult:
        """Replace the whole desired fleet (`dnsctl fleet load`), published at once.

        With `over_revision` it is one compare-and-swap over exactly the revision the operator
        saw the diff of: if the fleet changed since, it is refused (FleetConflict), not merged.
        A damaged stored document may be replaced this way (it is the way out of fleet_invalid).
        """
        if fleet.region != self.settings.region:
            raise FleetError([("region", f"is {fleet.region}, this planner plans {self.settings.region}")])
        description = "load fleet" + (f": {reason}" if reason else "")
        with self._lock, self.using_store():
            stored = self.sync_fleet()
            if stored is not None and over_revision is not None and stored.revision != over_revision:
                raise FleetConflict(self.fleet_store.key, over_revision)
            if stored is not None and fleet == self.fleet:
                return ChangeResult(description, "fast", changed=False, queued=False, plan=None,
                                    dry_run=dry_run, fleet_revision=stored.revision)
            preview = self.preview(fleet, lane="fast")
            if dry_run:
                return ChangeResult(
                    description, "fast", changed=True, queued=False, plan=None, diff=preview.diff,
                    violations=tuple(preview.violations), verdict=preview.verdict(force), dry_run=True,
                    fleet_revision=stored.revision if stored else None,
                )
            self._refuse_if_unpublishable(preview, description, force)
            written = self._write_fleet(fleet, description, stored)
            carried = self.slow_lane.pending()
            plan = self._publish_fleet(self._with_queued(description, carried), lane="fast", force=force)
            self.slow_lane.clear(carried)
            self.metrics.queued_changes.set(len(self.slow_lane.pending()))
            self.metrics.fleet_changes.labels("load_fleet", "fast").inc()
            self.log.info(
                "fleet_changed", change="load_fleet", description=description, lane="fast", queued=False,
                fleet_revision=written.revision, plan_version=plan.version,
            )
            return ChangeResult(
                description, "fast", changed=True, queued=False, plan=plan, diff=self.last_diff,
                violations=tuple(preview.violations), verdict=preview.verdict(force),
                fleet_revision=written.revision,
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

    def current_fleet(self) -> tuple[Fleet, StoredFleet | None]:
        """The newest stored fleet (the last good one while the stored document is damaged)."""
        with self._lock, self.using_store():
            stored = self.sync_fleet()
            if self.fleet is None:
                raise FleetUnavailable(f"no good fleet in {self.fleet_store.key}: {self.fleet_problem}")
            return self.fleet, stored or self.stored_fleet

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
        fleet = self.fleet
        next_run = self.next_run()
        held = self.schedule_hold.current()
        last = self.last_published
        return {
            "planner": self.settings.planner_id,
            "region": self.settings.region,
            "cell": self.settings.cell,
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
            "schedule_held_s": held[0] if held else None,
            "schedule_held_by": held[1] if held else None,
            "queued_changes": [c.as_dict() for c in self.slow_lane.pending()],
            "fleet": None
            if fleet is None
            else {
                "revision": self.stored_fleet.revision if self.stored_fleet else None,
                "key": self.fleet_store.key,
                "problem": self.fleet_problem,
                "load_balancers": len(fleet.load_balancers),
                "serving": sum(1 for b in fleet.load_balancers if fleet.serving(b)),
                "drained_azs": list(fleet.drained_azs),
            },
            "store_behind": self.store_behind,
            "applied_version": self.applied.floor.version or None,
        }


def _unsafe_message(violations: list[Violation]) -> str:
    return (
        "refused: the plan is unsafe: "
        + "; ".join(v.message for v in violations)
        + ". Re-run with force=true (CLI: --force) if this is intended."
    )
