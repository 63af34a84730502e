"""The enactor's I/O loop: carry out the protocol core's requests with boto3 and feed back what happened.

One worker thread per endpoint of the newest plan runs one machine of enactor/protocol.py: it
asks `request_of(state)`, performs it (S3 through the plan store, Route 53 through boto3), turns
the outcome into an observation and calls `step`. Every protocol decision is the core's; this
module only decides *how* to do what the core asks: reading the plan store once for all
endpoints, listing a zone as one consistent snapshot, jittering sleeps, waiting for INSYNC,
honouring the freeze marker before every batch, and the fault injection points (enactor/faults.py).

It never dies on bad input or failing services: S3 and Route 53 errors become RequestFailed
(the core backs off), an invalid plan becomes PlanRead(invalid=...) (the core keeps DNS as it
is), and an unexpected exception restarts that endpoint's machine from a fresh state after a
pause, logged as `machine_restarted`.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from enactor import layout
from enactor import protocol as p
from enactor.faults import Faults
from enactor.metrics import EnactorMetrics
from enactor.propagation import wait_insync
from enactor.settings import EnactorSettings
from services.cells.naming import owner_cell
from services.dns.snapshot import read_zone
from services.logs import get_logger
from services.plan.model import Plan, PlanInvalid
from services.plan.store import PlanNotFound, PlanStore, StoreError
from services.route53.records import RecordSet, normalise_name
from services.zones import find_zone_id

LIST_PAGE = 300
LIST_ATTEMPTS = 3
MESSAGE_CHARS = 500
QUOTA_MAX_AGE_S = 300.0  # the zone quota changes only when an operator raises it
PLAN_CACHE = 32  # plan versions kept for the clean-up's reference count (keep_plans + 1 are asked)
_UNREAD = object()


class InconsistentListing(Exception):
    """The zone changed while it was being listed page by page (the lock moved)."""


# --- the plan store, read once for every endpoint -------------------------------------------


@dataclass
class _Read:
    at: float
    observation: p.PlanRead | p.Frozen | p.RequestFailed
    newest_version: int | None


class PlanSource:
    """The newest plan and the freeze marker, read at most once per `max_age_s` for all machines."""

    def __init__(self, store: PlanStore, max_age_s: float, clock: Callable[[], float] = time.time):
        self.store = store
        self.max_age_s = max_age_s
        self.clock = clock
        self._lock = threading.Lock()
        self._last: _Read | None = None
        self._plan: Plan | None = None
        self._frozen_at: tuple[float, str | None] | None = None
        self._versions: dict[int, Plan | None] = {}  # older plans read for the clean-up (endpoint_plans)

    def read(self) -> p.PlanRead | p.Frozen | p.RequestFailed:
        with self._lock:
            now = self.clock()
            if self._last is not None and now - self._last.at < self.max_age_s:
                return self._last.observation
            observation, newest = self._fetch(now)
            self._last = _Read(now, observation, newest)
            self._frozen_at = (now, observation.reason if isinstance(observation, p.Frozen) else None)
            return observation

    def _fetch(self, now: float) -> tuple[p.PlanRead | p.Frozen | p.RequestFailed, int | None]:
        try:
            freeze = self.store.freeze_state()
            if freeze is not None:
                return p.Frozen(f"{freeze.reason} (by {freeze.by} at {freeze.at})", now), self.newest_version
            version = self.store.newest_version()
            if version is None:
                return p.PlanRead(None), None
            if self._plan is None or self._plan.version != version:
                try:
                    self._plan = self.store.get(version)
                except PlanInvalid as exc:
                    return p.PlanRead(None, p.InvalidPlan(exc.key, exc.reason)), version
            return p.PlanRead(self._plan), version
        except StoreError as exc:
            return p.RequestFailed(f"plan store: {exc}", now), self.newest_version

    def frozen(self) -> str | None:
        """The freeze reason if frozen (checked at most once per max_age_s): asked before every batch."""
        with self._lock:
            now = self.clock()
            if self._frozen_at is not None and now - self._frozen_at[0] < self.max_age_s:
                return self._frozen_at[1]
        try:
            freeze = self.store.freeze_state()
        except StoreError as exc:
            # Cannot tell: applying nothing is the safe side of an unreadable kill switch.
            reason = f"freeze marker unreadable: {exc}"
        else:
            reason = None if freeze is None else f"{freeze.reason} (by {freeze.by} at {freeze.at})"
        with self._lock:
            self._frozen_at = (self.clock(), reason)
        return reason

    @property
    def newest_version(self) -> int | None:
        last = self._last
        return last.newest_version if last else None

    def endpoint_plans(self, endpoint: str, versions: tuple[int, ...], now: float) -> p.PlansRead | p.RequestFailed:
        """`endpoint`'s part of each plan version (the clean-up's reference count recomputes the
        trees' nodes from them). Plans never change once written, so each is read once and kept
        (the newest PLAN_CACHE versions); one that is gone or fails its checks answers None."""
        out = []
        for version in versions:
            with self._lock:
                plan = self._versions.get(version, _UNREAD)
            if plan is _UNREAD:
                try:
                    plan = self.store.get(version)
                except (PlanNotFound, PlanInvalid):
                    plan = None
                except StoreError as exc:
                    return p.RequestFailed(f"plan store: {exc}", now)
                with self._lock:
                    self._versions[version] = plan
                    for old in sorted(self._versions)[:-PLAN_CACHE]:
                        del self._versions[old]
            out.append((version, plan.endpoint(endpoint) if plan is not None else None))
        return p.PlansRead(tuple(out), now)


# --- Route 53 -----------------------------------------------------------------------------


class Route53Zone:
    """Listing and changing one hosted zone, counting every call."""

    def __init__(self, client, zone_id: str, endpoint: str, metrics: EnactorMetrics, faults: Faults):
        self.client = client
        self.zone_id = zone_id
        self.endpoint = endpoint
        self.metrics = metrics
        self.faults = faults
        self._quota: tuple[float, int | None] | None = None

    def quota(self) -> int | None:
        """The zone's record-set quota (GetHostedZoneLimit MAX_RRSETS_BY_ZONE), read at most every
        QUOTA_MAX_AGE_S; None when it cannot be read (the core then assumes Route 53's default)."""
        now = time.monotonic()
        if self._quota is not None and now - self._quota[0] < QUOTA_MAX_AGE_S:
            return self._quota[1]
        try:
            reply = self._call("get_hosted_zone_limit", Type="MAX_RRSETS_BY_ZONE", HostedZoneId=self.zone_id)
            value: int | None = int(reply["Limit"]["Value"])
        except (ClientError, BotoCoreError, InjectedRoute53Error, KeyError, ValueError) as exc:
            get_logger().warning("zone_quota_unknown", endpoint=self.endpoint.rstrip("."), error=_describe(exc))
            value = None
        self._quota = (now, value)
        return value

    def record_count(self) -> int | None:
        """The zone's record sets (GetHostedZone ResourceRecordSetCount), or None when unreadable."""
        try:
            return int(self._call("get_hosted_zone", Id=self.zone_id)["HostedZone"]["ResourceRecordSetCount"])
        except (ClientError, BotoCoreError, InjectedRoute53Error, KeyError, ValueError) as exc:
            get_logger().warning("zone_size_unknown", endpoint=self.endpoint.rstrip("."), error=_describe(exc))
            return None

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        latency, fail = self.faults.route53_fault()
        if latency > 0:
            time.sleep(latency)
        if fail:
            get_logger().warning("fault_injected", fault="route53_error", operation=operation, endpoint=self.endpoint.rstrip("."))
            raise InjectedRoute53Error(operation)
        self.metrics.route53_calls.labels(operation).inc()
        return getattr(self.client, operation)(**kwargs)

    def snapshot(self) -> tuple[RecordSet, ...]:
        """Every record set of the zone, as of one moment.

        One page is one read. Several pages are accepted only if the lock record read again after
        the listing is the one its first page holds (the lock sorts among the first records of
        the zone, enactor/layout.py): every writer changes the lock (its counter never repeats),
        so nobody wrote in between.
        """
        for _ in range(LIST_ATTEMPTS):
            records, pages = self._list_all()
            if pages == 1:
                return records
            inside = next((r for r in records if r.name == layout.lock_name(self.endpoint) and r.type == "TXT"), None)
            if inside == self._lock_record():
                return records
        raise InconsistentListing(f"{self.endpoint} changed during {LIST_ATTEMPTS} listings in a row")

    def read(self, queries: tuple[tuple[str, str, int], ...]) -> tuple[RecordSet, ...]:
        """Targeted reads: one ListResourceRecordSets page per (StartRecordName, StartRecordType, MaxItems)."""
        out: list[RecordSet] = []
        for name, rtype, max_items in queries:
            page = self._call("list_resource_record_sets", HostedZoneId=self.zone_id, StartRecordName=name,
                              StartRecordType=rtype, MaxItems=str(max_items))
            out += [RecordSet.from_boto(r) for r in page.get("ResourceRecordSets", [])]
        return tuple(out)

    def get_change(self, Id: str) -> dict[str, Any]:  # noqa: N803 - boto3's parameter name
        """GetChange, counted (enactor/propagation.py polls it through this object)."""
        return self._call("get_change", Id=Id)

    def _list_all(self) -> tuple[tuple[RecordSet, ...], int]:
        zone, pages = read_zone(self, self.zone_id, self.endpoint, LIST_PAGE)
        return tuple(zone), pages

    def list_resource_record_sets(self, **kwargs: Any) -> dict[str, Any]:
        """ListResourceRecordSets, counted (read_zone pages through this object)."""
        return self._call("list_resource_record_sets", **kwargs)

    def _lock_record(self) -> RecordSet | None:
        name = layout.lock_name(self.endpoint)
        page = self._call("list_resource_record_sets", HostedZoneId=self.zone_id, StartRecordName=name, StartRecordType="TXT", MaxItems="1")
        found = [RecordSet.from_boto(r) for r in page.get("ResourceRecordSets", [])]
        return found[0] if found and found[0].name == name and found[0].type == "TXT" else None

    def submit(self, batch: p.SubmitBatch) -> str:
        """Apply the batch; returns Route 53's change id. ClientError/BotoCoreError propagate."""
        reply = self._call(
            "change_resource_record_sets",
            HostedZoneId=self.zone_id,
            ChangeBatch={"Comment": batch.comment, "Changes": [c.to_boto() for c in batch.changes]},
        )
        return reply["ChangeInfo"]["Id"]


class InjectedRoute53Error(Exception):
    def __init__(self, operation: str):
        super().__init__(f"injected fault: {operation} failed")


REJECTION_CODES = ("InvalidChangeBatch", "InvalidInput")


def rejection_messages(exc: ClientError) -> tuple[str, ...]:
    """Route 53 joins an InvalidChangeBatch's messages as "[m1, m2]"; the core reads them whole."""
    message = str(exc.response.get("Error", {}).get("Message", "")) or str(exc)
    return (message[: MESSAGE_CHARS * 4],)


# --- one endpoint ---------------------------------------------------------------------------


@dataclass
class EndpointStatus:
    """What /status shows for one endpoint, kept up to date by its worker."""

    endpoint: str
    zone_id: str
    state: p.EndpointState
    consecutive_flip_failures: int = 0
    last_error: str | None = None
    backoff_s: float = 0.0
    last_flip: dict[str, Any] | None = None
    blocked: dict[str, Any] | None = None  # the newest plan Route 53 refused (or that cannot fit), until a newer flips
    updated: float = field(default_factory=time.time)


class EndpointWorker:
    def __init__(self, runner: Runner, endpoint: str, zone_id: str):
        self.runner = runner
        self.endpoint = normalise_name(endpoint)
        self.zone = Route53Zone(runner.route53, zone_id, self.endpoint, runner.metrics, runner.faults)
        self.log = get_logger(enactor=runner.settings.enactor_id, endpoint=self.endpoint.rstrip("."))
        self.label = self.endpoint.rstrip(".")
        state, _ = p.start(self.endpoint, zone_id)
        self.status = EndpointStatus(self.endpoint, zone_id, state)
        self._status_lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"enactor-{self.label}", daemon=True)

    def _run(self) -> None:
        core, stop = self.runner.core, self.runner.stop_event
        state, request = p.start(self.endpoint, self.zone.zone_id)
        while not stop.is_set():
            try:
                self.runner.faults.wait_while_paused(stop)
                if stop.is_set():
                    return
                obs = self._perform(state, request)
                if stop.is_set():
                    return
                state, request, notes = p.step(core, state, obs)
                self._record(state, request, obs, notes)
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any bug; it logs and restarts
                self.log.exception("machine_restarted", error=f"{type(exc).__name__}: {exc}")
                self._set(last_error=f"internal error: {type(exc).__name__}: {exc}")
                stop.wait(core.poll_interval_s)
                state, request = p.start(self.endpoint, self.zone.zone_id)

    # -- performing one request --------------------------------------------------------------

    def _perform(self, state: p.EndpointState, request: p.Request) -> p.Observation:
        runner = self.runner
        if isinstance(request, p.Sleep):
            return self._sleep(request)
        if isinstance(request, p.ReadNewestPlan):
            return runner.plans.read()
        if isinstance(request, p.ReadPlans):
            return runner.plans.endpoint_plans(self.endpoint, request.versions, time.time())
        try:
            if isinstance(request, p.AwaitInsync):
                result = wait_insync(
                    self.zone, request.change_ids, runner.settings.propagation_timeout_s, runner.settings.propagation_poll_s,
                    enactor=runner.settings.enactor_id, endpoint=self.label,
                )
                return p.Insync(result.insync, time.time())
            if isinstance(request, p.ReadRecords):
                records = self.zone.read(request.queries)
                count = self.zone.record_count() if request.zone_size else None
                quota = self.zone.quota()  # (read at most every QUOTA_MAX_AGE_S)
                return p.RecordsRead(records, time.time(), fresh_tree_id="t-" + uuid.uuid4().hex, record_count=count, quota=quota)
            if isinstance(request, p.ListRecords):
                records = self.zone.snapshot()
                return p.RecordsListed(records, time.time(), fresh_tree_id="t-" + uuid.uuid4().hex, quota=self.zone.quota())
            assert isinstance(request, p.SubmitBatch)
            frozen = runner.plans.frozen()
            if frozen is not None:
                return p.Frozen(frozen, time.time())
            injected = runner.faults.lost_lock_attempt(state, request, time.time())
            if injected is not None:
                self.log.warning("fault_injected", fault="lose_lock_attempt", batch_id=request.batch_id)
                return injected
            delay = runner.faults.flip_delay(request)
            if delay > 0:
                self.log.warning("fault_injected", fault="delay_before_flip", seconds=delay, batch_id=request.batch_id)
                runner.stop_event.wait(delay)
            return self._submit(request)
        except (ClientError, BotoCoreError, InconsistentListing, InjectedRoute53Error) as exc:
            return p.RequestFailed(_describe(exc), time.time())

    def _submit(self, batch: p.SubmitBatch) -> p.Observation:
        m = self.runner.metrics
        try:
            change_id = self.zone.submit(batch)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in REJECTION_CODES:
                m.batches.labels(self.label, batch.purpose, "rejected").inc()
                return p.BatchRejected(rejection_messages(exc), code, time.time())
            m.batches.labels(self.label, batch.purpose, "failed").inc()
            raise
        except (BotoCoreError, InjectedRoute53Error):
            m.batches.labels(self.label, batch.purpose, "failed").inc()
            raise
        m.batches.labels(self.label, batch.purpose, "accepted").inc()
        m.records_written.labels(self.label).inc(len(batch.changes))
        return p.BatchAccepted(time.time(), change_id)

    def _sleep(self, request: p.Sleep) -> p.Woke:
        seconds = random.uniform(0, request.max_seconds) if request.jittered else request.max_seconds
        seconds *= self.runner.faults.backoff_scale(request)
        if request.reason != "poll":
            self.runner.metrics.backoff_seconds.labels(self.label).inc(seconds)
            self._set(backoff_s=round(seconds, 3))
        self.runner.stop_event.wait(seconds)
        self._set(backoff_s=0.0)
        return p.Woke(time.time())

    # -- logging, metrics and status ---------------------------------------------------------

    def _record(self, state: p.EndpointState, request: p.Request, obs: p.Observation, notes: tuple[p.Note, ...]) -> None:
        m, label = self.runner.metrics, self.label
        updates: dict[str, Any] = {"state": state}
        if self.status.last_error is not None and self._succeeded(state, notes):
            updates["last_error"] = None  # the endpoint works again; an error set below in this step still wins
        for note in notes:
            fields = {k: _loggable(v) for k, v in note.fields if k != "endpoint"}
            level = "warning" if note.event in _WARNINGS else "info"
            getattr(self.log, level)(note.event, **fields)
            event = note.event
            if event == "lock_attempt":
                m.lock_attempts.labels(label).inc()
            elif event == "lock_acquired":
                m.lock_wins.labels(label).inc()
            elif event == "lock_lost":
                if note.get("cause") is None:
                    m.lock_attempts.labels(label).inc()  # lost at listing: no batch was tried
                m.lock_losses.labels(label).inc()
            elif event == "refused_stale":
                m.stale_refused.labels(label).inc()
            elif event == "plan_rejected":
                m.plans_rejected.labels(label).inc()
                updates["last_error"] = f"plan rejected: {note.get('key')}: {note.get('reason')}"
            elif event in ("plan_refused_by_route53", "plan_too_large"):
                m.plans_refused.labels(label, str(note.get("reason"))).inc()
                updates["blocked"] = {"event": event, "plan_version": note.get("plan_version"), "reason": note.get("reason"),
                                      "messages": _loggable(note.get("messages") or ())}
                updates["last_error"] = f"{event}: plan {note.get('plan_version')}: {note.get('reason')}"[:MESSAGE_CHARS]
            elif event == "flipped":
                m.flips.labels(label).inc()
                updates["consecutive_flip_failures"] = 0
                updates["blocked"] = None
                updates["last_flip"] = {k: _loggable(v) for k, v in note.fields if k != "endpoint"}
            elif event == "flip_failed":
                m.flip_failures.labels(label).inc()
                updates["consecutive_flip_failures"] = self.status.consecutive_flip_failures + 1
                updates["last_error"] = f"flip failed: {' '.join(note.get('messages') or ())}"[:MESSAGE_CHARS]
            elif event == "cleanup_deleted":
                m.cleanup_records.labels(label).inc(note.get("records") or 0)
            elif event in ("request_failed", "build_failed", "cleanup_aborted"):
                if event == "build_failed":  # build failures count toward stuck, as flip failures do
                    updates["consecutive_flip_failures"] = self.status.consecutive_flip_failures + 1
                if event == "request_failed":
                    m.request_failures.labels(label, str(note.get("request"))).inc()
                detail = note.get("error") or " ".join(note.get("messages") or ())
                updates["last_error"] = f"{event}: {detail}"[:MESSAGE_CHARS]
        blocked = updates.get("blocked", self.status.blocked)
        if blocked and max(state.applied_version, state.done_version) > (blocked.get("plan_version") or 0):
            updates["blocked"] = None  # a newer plan is applied (by anyone): the endpoint moved on
        self._set(**updates)
        m.applied_version.labels(label).set(state.applied_version)
        newest = self.runner.plans.newest_version
        if newest is not None:
            m.plan_lag.labels(label).set(max(0, newest - state.applied_version))
        m.stuck.labels(label).set(1 if self.status.consecutive_flip_failures >= p.STUCK_AFTER else 0)

    def _succeeded(self, state: p.EndpointState, notes: tuple[p.Note, ...]) -> bool:
        """This step shows the endpoint working: a unit of work succeeded, or it is idle on the newest plan."""
        if any(n.event in _SUCCESSES for n in notes):
            return True
        newest = self.runner.plans.newest_version
        idle = _endpoint_state(state, self.status.consecutive_flip_failures) == "idle"
        return idle and newest is not None and state.applied_version >= newest

    def _set(self, **fields: Any) -> None:
        with self._status_lock:
            for k, v in fields.items():
                setattr(self.status, k, v)
            self.status.updated = time.time()

    def describe(self) -> dict[str, Any]:
        with self._status_lock:
            s = self.status
            st = s.state
            lock = st.lock_value
            return {
                "zone_id": s.zone_id,
                "applied_version": st.applied_version,
                "plan_in_hand": st.plan.version if st.plan else None,
                "done_version": st.done_version,
                "lock_holder": lock.holder if lock else None,
                "lock_expires": lock.expires if lock else None,
                "backoff_s": s.backoff_s,
                "consecutive_flip_failures": s.consecutive_flip_failures,
                "last_error": s.last_error,
                "last_flip": s.last_flip,
                "blocked": s.blocked,
                "refused_version": st.refused_version,
                "state": _endpoint_state(st, s.consecutive_flip_failures),
                "task": st.task.value,
                "phase": st.phase.value,
            }


# Events that show the endpoint's work succeeding again: they clear a stale last_error.
_SUCCESSES = {"flipped", "tree_built", "cleanup_deleted", "cleanup_skipped", "lock_released"}
_WARNINGS = {"lock_lost", "flip_failed", "build_failed", "cleanup_aborted", "refused_stale", "plan_rejected", "request_failed", "frozen",
             "flip_deferred", "plan_refused_by_route53", "plan_too_large", "plan_superseded"}


def _endpoint_state(st: p.EndpointState, flip_failures: int) -> str:
    if st.frozen:
        return "frozen"
    if flip_failures >= p.STUCK_AFTER:
        return "stuck"
    if st.phase is p.Phase.SLEEP and st.nap is not None and st.nap.reason not in ("poll", "frozen"):
        return "backing_off"
    return "idle" if st.task is p.Task.IDLE else "working"


def _loggable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_loggable(v)[:MESSAGE_CHARS] if isinstance(v, str) else v for v in value]
    return value


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'ClientError')}: {err.get('Message', '')}"[:MESSAGE_CHARS]
    return f"{type(exc).__name__}: {exc}"[:MESSAGE_CHARS]


# --- the process ------------------------------------------------------------------------------


class Runner:
    """All endpoints' workers, the shared plan source, and the thread that adds workers as endpoints appear."""

    def __init__(
        self,
        settings: EnactorSettings,
        *,
        store: PlanStore | None = None,
        route53=None,
        faults: Faults | None = None,
        metrics: EnactorMetrics | None = None,
    ):
        if route53 is None:
            from services.aws_clients import route53_client

            route53 = route53_client()
        self.settings = settings
        self.core = settings.core()
        self.route53 = route53
        self.store = store or PlanStore(settings.bucket, settings.region, verifier=settings.plan_verifier(), cell=settings.cell)
        self.plans = PlanSource(self.store, max_age_s=max(0.05, settings.poll_interval / 2))
        self.faults = faults or Faults()
        self.metrics = metrics or EnactorMetrics()
        self.stop_event = threading.Event()
        self.workers: dict[str, EndpointWorker] = {}
        self._missing_zones: set[str] = set()
        self._foreign: set[str] = set()  # endpoints of the plan outside this enactor's cell (refused)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._supervise, name="enactor-supervisor", daemon=True)
        self.log = get_logger(enactor=settings.enactor_id)

    def start(self) -> None:
        self.log.info(
            "enactor_started", az=self.settings.az, cell=self.settings.cell, version_guard=self.settings.version_guard,
            bucket=self.settings.bucket, region=self.settings.region, poll_interval=self.settings.poll_interval,
            keep_plans=self.settings.keep_plans, lock_ttl_s=self.settings.lock_ttl_s, allow_chaos=self.settings.allow_chaos,
            plan_key=self.store.verifier.key_id if self.store.verifier else "unverified",
        )
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self.stop_event.set()
        for t in [self._thread, *(w.thread for w in list(self.workers.values()))]:
            if t.is_alive():
                t.join(timeout_s)
        self.log.info("enactor_stopped")

    def _supervise(self) -> None:
        while not self.stop_event.is_set():
            try:
                obs = self.plans.read()
                self.metrics.frozen.set(1 if isinstance(obs, p.Frozen) else 0)
                if isinstance(obs, p.PlanRead) and obs.plan is not None:
                    for ep in obs.plan.endpoints:
                        if self._own(ep.name, ep.hosted_zone, obs.plan.version):
                            self._ensure_worker(ep.name, ep.hosted_zone)
            except Exception as exc:  # noqa: BLE001 - keep supervising whatever happens
                self.log.exception("supervisor_error", error=f"{type(exc).__name__}: {exc}")
            self.stop_event.wait(self.settings.poll_interval)

    def _own(self, endpoint: str, hosted_zone: str, version: int) -> bool:
        """Whether the endpoint is this enactor's to manage: in its cell's namespace (or, for a regional
        enactor, in no cell's). Anything else is another cell's zone and lock: it is never touched."""
        region, cell = self.settings.region, self.settings.cell
        if owner_cell(endpoint, region) == cell and owner_cell(hosted_zone, region) == cell:
            return True
        if endpoint not in self._foreign:
            self._foreign.add(endpoint)
            self.log.warning("endpoint_outside_cell", endpoint=endpoint, hosted_zone=hosted_zone, version=version,
                             cell=cell, owner=owner_cell(endpoint, region) or owner_cell(hosted_zone, region))
            self.metrics.outside_cell.labels(endpoint).inc()
        return False

    def _ensure_worker(self, endpoint: str, hosted_zone: str) -> None:
        key = normalise_name(endpoint)
        if key in self.workers:
            return
        try:
            self.metrics.route53_calls.labels("list_hosted_zones_by_name").inc()
            zone_id = find_zone_id(hosted_zone, self.route53)
        except (ClientError, BotoCoreError) as exc:
            self.log.warning("zone_lookup_failed", endpoint=endpoint, hosted_zone=hosted_zone, error=_describe(exc))
            return
        if zone_id is None:
            if key not in self._missing_zones:
                self._missing_zones.add(key)
                self.log.warning("zone_missing", endpoint=endpoint, hosted_zone=hosted_zone,
                                 hint="create it with `dnsctl up` (services.zones.ensure_zones)")
            return
        self._missing_zones.discard(key)
        worker = EndpointWorker(self, endpoint, zone_id)
        with self._lock:
            self.workers[key] = worker
        self.log.info("endpoint_started", endpoint=endpoint, zone_id=zone_id)
        worker.thread.start()

    def status(self) -> dict[str, Any]:
        with self._lock:
            workers = dict(self.workers)
        endpoints = {w.label: w.describe() for _, w in sorted(workers.items())}
        last = self.plans._last
        frozen = last is not None and isinstance(last.observation, p.Frozen)
        states = {e["state"] for e in endpoints.values()}
        overall = next((s for s in ("frozen", "stuck", "backing_off", "working") if s in states), "idle")
        if frozen:
            overall = "frozen"
        return {
            "enactor": self.settings.enactor_id,
            "az": self.settings.az,
            "version_guard": self.settings.version_guard,
            "frozen": frozen,
            "frozen_reason": last.observation.reason if frozen else None,
            "state": overall,
            "newest_version": self.plans.newest_version,
            "missing_zones": sorted(z.rstrip(".") for z in self._missing_zones),
            "cell": self.settings.cell,
            "refused_endpoints": sorted(self._foreign),
            "endpoints": endpoints,
        }
