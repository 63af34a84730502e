"""The enactor's protocol: one endpoint's machine, as a pure function from observations to requests.

Rules for this file:
- Every decision of the enactor protocol is made here and nowhere else: whether a plan is worth
  working on, the lock, the tree, the batches and their order, the flip, the clean-up, the guard,
  backoff, what a rejection means. The runner (enactor/runner.py) and the model checker only
  carry out the requests this module returns and feed back what happened.
- No I/O, no clock, no randomness. Time arrives inside observations (`now`, epoch seconds);
  jitter is the caller's (a Sleep says "at most this long, jittered"); fresh tree ids are derived
  from the state, or supplied by the caller with the zone listing.
- The state is a small frozen, hashable value, so the model checker can hash it. It keeps facts
  derived from Route 53 (the lock and applied-version records last seen, the applied version,
  the tree in hand), never a copy of the zone.
- The machine does not know which enactor it is beyond its id in the settings, nor how many
  others exist: it only ever learns about them through the zone.
- `lock_verdict`, `chunk_batches` and `next_batch` are public because the operator's repair
  tool (lab/repair.py) builds its own unit from them: a repair speaks this same lock
  protocol instead of a copy of it.

Theory of operation
===================

One machine per endpoint (one hosted zone, one `_lock.<endpoint>` record). At any moment the
machine has exactly one outstanding request (`request_of(state)`):

    ReadNewestPlan -> PlanRead        ListRecords -> RecordsListed (the whole zone, + its quota)
    ReadRecords -> RecordsRead        (targeted: StartRecordName/StartRecordType/MaxItems pages)
    ReadPlans -> PlansRead            (older plan versions from the plan store: the clean-up's reference count)
    SubmitBatch -> BatchAccepted | BatchRejected     AwaitInsync -> Insync
    Sleep -> Woke                     any request -> RequestFailed (transport) | Frozen (kill switch)

Reads (guarded). The layout (enactor/layout.py) puts, in Route 53's list order, every record a
decision needs first: the root, `_applied`, `_lock`, the rollback, and each tree's top followed
by its metadata (the *heads*); then the interior nodes (`v-`), then the bottom nodes (`w-`).
So a unit starts with one page from the apex (READ "heads", at most 300 record sets):
- a page that is not full is the whole zone: the unit decides as on a listing;
- a full page is read as the heads alone (the trees' completeness from their metadata, see
  layout.read_endpoint(heads_only=True)). Freshness, the lock, the rollback and what the
  clean-up may delete are decided on it. A build then learns which nodes exist from the plans
  behind the trees (READ plans, see the clean-up below) or, when a tree's plan does not give
  its top, by reading on (READ "nodes") through the interior nodes the page ended among; it
  asks the zone's size (GetHostedZone, for the quota), and writes the nodes of its tree that
  no tree, top or interior node read names, with UPSERT;
- a clean-up that has a tree to delete counts references without reading a node: it reads the
  plans behind every tree (READ plans, from the plan store), recomputes each tree's nodes
  (enactor/tree.py) and checks them against the top read: nodes are named by a digest of their
  content, so a matching top vouches for every node below it (`tree_nodes`). The nodes only the
  doomed trees reach are then deleted with the records recomputed;
  A clean-up after a build that found the zone too full for another like it (a sweep) also
  makes room for the next plan (`_room`) on those recomputed nodes and the zone's size
  (GetHostedZone);
- a listing of the whole zone is made only where the damage or the zone's size needs it:
  healing a dangling root, a salvage, a tree that would not fit the quota, a tree whose plan
  is gone or does not match its top, and the unit after a batch Route 53 refused (`full`: a
  build, a flip, or a clean-up planned from recomputed nodes).
The heads page is consistent (one page); later reads may not be, but every batch deletes the
lock exactly as the heads page showed it, and every writer changes the lock, so a batch planned
on reads made while anyone wrote is refused whole. Legacy mode lists the whole zone, as
October's code did. The light check is the heads page too.

The machine has a *task* and a *phase* (what it waits for):

    task IDLE:     PLAN --PlanRead(newer valid plan)--> task WORK, LIST (guarded: READ heads)
                   PLAN --PlanRead(nothing new / invalid)--> SLEEP(poll) --Woke--> PLAN
                   SLEEP(poll) --Woke, guarded, check_interval_s since the last check--> CHECK
                   CHECK --RecordsRead(the heads page)--> PLAN (healthy) | PLAN with done_version 0
                        (zone_damaged: root gone, a type of the tree's metadata unserved, or the
                        tree it names missing or not whole)
    task WORK:     (guarded: READ heads [--> READ plans] [--> READ nodes ..] decides as LIST does, or --> LIST)
                   LIST --freshness check fails--> task IDLE, PLAN        (refused_stale / up_to_date)
                   LIST --lock held by another--> SLEEP(backoff) --Woke--> LIST   (lock_lost)
                   LIST --lock free/ours/expired--> BATCH(build 1) .. BATCH(build n)
                        [--> INSYNC]  --> BATCH(flip)  --accepted--> task CLEANUP, LIST
    task CLEANUP:  (guarded: READ heads --nothing past keeping--> task IDLE, PLAN; else [a sweep:
                    READ the zone's size -->] READ plans --every tree's nodes follow from its plan-->
                    BATCH(cleanup 1) ..; else LIST)
                   LIST --nothing to delete--> task IDLE, PLAN
                   LIST --lock held--> SLEEP(backoff) --Woke--> LIST
                   LIST --> BATCH(cleanup 1) .. BATCH(cleanup m) --accepted--> task IDLE, PLAN
    rejection of any batch ends the unit. CLEANUP gives up (or backs off for the lock). WORK:
      lock contention or a transient refusal (a record not found / already there, an alias
      target missing) -> backoff, then (guarded) PLAN again before LIST: a newer plan replaces
      the one in hand (plan_superseded); build and flip failures count toward stuck.
      A permanent refusal of the plan's content (`refusal_reason`: duplicate address, bad
      label or value, the zone quota, InvalidInput) -> plan_refused_by_route53: that version is
      never retried for this endpoint (`refused_version`), and task CLEANUP in salvage mode
      removes what its build left (trees without metadata, nodes no tree reaches).

A *unit* is the run of batches made under one acquisition of the lock. Every batch starts with
the lock preamble: DELETE the lock record exactly as last seen + CREATE it with this enactor as
holder, `expires` = now + lock_ttl_s and the counter + 1 (CREATE alone when there is no lock).
Route 53 applies a batch all or nothing and a DELETE must match exactly, so a batch fails whole
if anyone wrote the lock since we read it. The last batch of a unit writes the lock back
already expired (expires = now): the release, which keeps the preamble rule for every batch.
The flip and the clean-up are *separate* units (flip, release; list again, acquire, clean up,
release), so another enactor can flip in between: the window of 20 October.

The tree for plan v is built under a fresh top `t-<uuid>` over shared, content-named nodes
(enactor/tree.py): only the nodes missing from the zone are created, so a one-LB change writes
its path to the top; the metadata record comes last and marks the tree complete. Nodes are
written and deleted whole (one batch each, `chunk_batches`), bottom-up when built and parents
first when cleaned up, so a node in the zone always has its whole subtree: what the heads and
the interior nodes name exists. The root never
points at a tree before its last build batch is accepted (and, when the caller reports change
ids, INSYNC). The flip is one batch: preamble + UPSERT root alias per record type + UPSERT
rollback alias per type to the tree that was active (+ the guard's compare-and-swap) + DELETE of
the root and rollback of every type the plan no longer serves (served state is the plan, per type).

The zone quota (RecordsListed.quota, else settings.limits): a unit never starts a tree that
cannot fit. Guarded, the unit first deletes orphans and unkept trees oldest first (never the
active or applied tree or the one in hand; the rollback's tree only when the active one is
whole, repointing the rollback at it first); when even that is not enough, or in legacy mode,
the plan is refused (plan_too_large) and the last good tree keeps serving.

Two modes (settings.version_guard):
- legacy (False), as in October 2025: "is this plan newer than the applied one" is asked once,
  at the first listing after taking the plan, before the lock and any backoff, and never again;
  the rollback is pointed at whatever the root points at, even a tree that no longer exists
  (that flip fails, and is retried forever: the stuck state); clean-up deletes trees older than
  (the plan just flipped - keep_plans) by version alone, the active tree included.
- guarded (True): `_applied.<endpoint>` holds "version=<v> tree=<id>" and every flip and every
  clean-up batch compare-and-swaps it (DELETE exact + CREATE). After every listing the plan in
  hand is checked again and a stale one refused; flips go only to versions above the applied
  one; clean-up never deletes the active tree, the rollback target or the applied tree; a
  dangling root is healed by installing the plan in hand (version >= applied) with the rollback
  at the newest intact other tree, or left out (its types are those the tree's records serve).
  A root that lost a type the plan serves is healed the same way. `done_version` (plans not
  worth reading again) grows with the plans looked at and what the root's tree really serves,
  never with `_applied` alone.

Notes are the structlog events the runner logs (plan_seen, lock_attempt, lock_acquired,
lock_lost, backoff, tree_built, flipped, flip_failed, cleanup_deleted, cleanup_aborted,
lock_released, refused_stale, up_to_date, plan_rejected, plan_superseded, plan_refused_by_route53,
plan_too_large, build_failed, zone_damaged, request_failed, frozen, ...), so the
model checker's traces and the live logs say the same thing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from enactor import layout
from enactor import tree as tree_shape
from services.plan.model import EndpointPlan, Plan
from services.route53.engine import DEFAULT_LIMITS, Limits, same_record_set
from services.route53.records import AliasTarget, Change, RecordSet, normalise_name

Purpose = Literal["build", "flip", "heal", "cleanup"]
TREE_ID_NAMESPACE = uuid.UUID("6f1c1b0e-2f0a-4c55-9a43-5d8e0c7a1e20")
STUCK_AFTER = 3  # consecutive failed flips after which an endpoint reads as stuck
HEADS_PAGE = 300  # Route 53 returns at most 300 record sets per ListResourceRecordSets page
NODES_PAGE = 300


class ProtocolError(Exception):
    """The caller fed an observation that does not answer the outstanding request (a caller bug)."""


# --- settings -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CoreSettings:
    """Everything that shapes the protocol's decisions; one value per enactor process."""

    enactor_id: str
    version_guard: bool = True
    keep_plans: int = 5
    lock_ttl_s: int = 60
    backoff_base_s: float = 0.2
    backoff_cap_s: float = 10.0
    poll_interval_s: float = 1.0
    check_interval_s: float = 5.0  # guarded: the light check of root and trees while idle (0: never)
    record_ttl: int = 60
    limits: Limits = DEFAULT_LIMITS
    shape: tree_shape.Shape = tree_shape.Shape()
    # Guarded: a first read of a unit answered with fewer record sets than this is the whole zone
    # (it starts at the apex); a fuller one is read as the heads only (targeted reads). Route 53's
    # page size; smaller values make small zones take the targeted path (the model checker's
    # tests/enactor/test_targeted_reads.py does).
    heads_page: int = 300

    def __post_init__(self) -> None:
        if not self.enactor_id or any(c.isspace() or c in '="\\' for c in self.enactor_id):
            raise ValueError(f"enactor id {self.enactor_id!r} must be non-empty, without spaces, '=', quotes or backslashes")
        if self.keep_plans < 1:
            raise ValueError("keep_plans must be at least 1 (the active tree's predecessor is the rollback target)")
        if self.lock_ttl_s < 1 or self.backoff_base_s <= 0 or self.backoff_cap_s < self.backoff_base_s:
            raise ValueError("lock_ttl_s >= 1 and 0 < backoff_base_s <= backoff_cap_s are required")
        if self.poll_interval_s <= 0:
            raise ValueError("poll_interval_s > 0 is required")
        if not 1 <= self.heads_page <= HEADS_PAGE:
            raise ValueError(f"heads_page must be 1..{HEADS_PAGE}")

    @property
    def max_losses(self) -> int:
        """Backoff exponent at which the cap is reached; the state never counts further (finite states)."""
        n = 1
        while self.backoff_base_s * 2 ** (n - 1) < self.backoff_cap_s and n < 40:
            n += 1
        return n


# --- requests (machine -> caller) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadNewestPlan:
    """Read the newest plan from the plan store (the caller may serve one read to many machines)."""


@dataclass(frozen=True, slots=True)
class ListRecords:
    """List every record set of the endpoint's hosted zone (all pages, one consistent snapshot)."""


@dataclass(frozen=True, slots=True)
class SubmitBatch:
    """One ChangeResourceRecordSets call. `changes` start with the lock preamble."""

    changes: tuple[Change, ...]
    batch_id: str
    purpose: Purpose
    plan_version: int
    releases_lock: bool  # the last batch of a unit: the lock is written back already expired

    @property
    def comment(self) -> str:
        return f"dnsctl {self.purpose} plan={self.plan_version} batch={self.batch_id}"


@dataclass(frozen=True, slots=True)
class ReadRecords:
    """Targeted reads: one ListResourceRecordSets call per query (StartRecordName, StartRecordType,
    MaxItems); the answer holds every record set those pages returned (others' names included)."""

    queries: tuple[tuple[str, str, int], ...]
    zone_size: bool = False  # also the zone's record-set count (GetHostedZone) and quota (GetHostedZoneLimit)


@dataclass(frozen=True, slots=True)
class AwaitInsync:
    """Wait until these Route 53 change ids are INSYNC (the tree has propagated) before the flip."""

    change_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait at most `max_seconds`; jittered: a uniform random time in [0, max_seconds] (full jitter)."""

    max_seconds: float
    jittered: bool
    reason: str  # "poll", "lock_lost", "flip_failed", "request_failed", "frozen", ...


@dataclass(frozen=True, slots=True)
class ReadPlans:
    """Read these plan versions from the plan store (the plans behind the trees in the zone: the
    clean-up's reference count recomputes their nodes instead of listing the zone)."""

    versions: tuple[int, ...]


Request = ReadNewestPlan | ListRecords | ReadRecords | ReadPlans | SubmitBatch | AwaitInsync | Sleep
READ_NEWEST_PLAN = ReadNewestPlan()
LIST_RECORDS = ListRecords()


# --- observations (caller -> machine) -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class InvalidPlan:
    """The newest plan object failed schema or checksum (services.plan.model.PlanInvalid)."""

    key: str
    reason: str


@dataclass(frozen=True, slots=True)
class PlanRead:
    plan: Plan | None  # None: no plan published yet (or the newest is invalid, see `invalid`)
    invalid: InvalidPlan | None = None


@dataclass(frozen=True, slots=True)
class RecordsListed:
    records: tuple[RecordSet, ...]
    now: float
    fresh_tree_id: str | None = None  # "t-<hex>" to use if this listing starts a new tree
    quota: int | None = None  # the zone's record-set quota (GetHostedZoneLimit MAX_RRSETS_BY_ZONE), if known


@dataclass(frozen=True, slots=True)
class RecordsRead:
    records: tuple[RecordSet, ...]
    now: float
    fresh_tree_id: str | None = None  # "t-<hex>" to use if this read starts a new tree (as RecordsListed's)
    record_count: int | None = None  # zone_size asked: the zone's record sets (None: unknown)
    quota: int | None = None  # zone_size asked: the zone's record-set quota (None: unknown)


@dataclass(frozen=True, slots=True)
class PlansRead:
    """The answer to ReadPlans: per version asked, this endpoint's part of that plan (None: the
    plan is gone from the store, unreadable, or does not name the endpoint)."""

    endpoints: tuple[tuple[int, EndpointPlan | None], ...]
    now: float


@dataclass(frozen=True, slots=True)
class BatchAccepted:
    now: float
    change_id: str = ""  # Route 53's ChangeInfo.Id, for the INSYNC wait before the flip


@dataclass(frozen=True, slots=True)
class BatchRejected:
    messages: tuple[str, ...]
    error_code: str  # InvalidChangeBatch, InvalidInput, ...
    now: float


@dataclass(frozen=True, slots=True)
class Insync:
    ok: bool
    now: float


@dataclass(frozen=True, slots=True)
class Woke:
    now: float


@dataclass(frozen=True, slots=True)
class RequestFailed:
    """The request could not be carried out (S3 or Route 53 unreachable, throttled, timed out).

    After a SubmitBatch the outcome is unknown: the machine lists again before deciding anything.
    """

    error: str
    now: float


@dataclass(frozen=True, slots=True)
class Frozen:
    """The kill switch is on: whatever was asked, nothing may be applied."""

    reason: str
    now: float


Observation = PlanRead | RecordsListed | RecordsRead | PlansRead | BatchAccepted | BatchRejected | Insync | Woke | RequestFailed | Frozen


# --- notes (the events the runner logs) -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Note:
    event: str
    fields: tuple[tuple[str, Any], ...]

    def get(self, key: str, default: Any = None) -> Any:
        return next((v for k, v in self.fields if k == key), default)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.fields)


# --- state ----------------------------------------------------------------------------------


class Phase(StrEnum):
    PLAN = "plan"  # waiting for PlanRead
    LIST = "list"  # waiting for RecordsListed
    BATCH = "batch"  # waiting for BatchAccepted / BatchRejected
    INSYNC = "insync"  # waiting for Insync
    SLEEP = "sleep"  # waiting for Woke
    CHECK = "check"  # waiting for RecordsRead (the light check)
    READ = "read"  # guarded: waiting for RecordsRead (a unit's targeted reads, `EndpointState.read`)
    PLANS = "plans"  # guarded: waiting for PlansRead (the plans behind the trees, `_on_plans_read`)


class Task(StrEnum):
    IDLE = "idle"
    WORK = "work"  # build the plan's tree and flip to it
    CLEANUP = "cleanup"  # delete old trees after a flip


@dataclass(frozen=True, slots=True)
class PlanInHand:
    version: int
    endpoint: EndpointPlan


@dataclass(frozen=True, slots=True)
class TreeInHand:
    tree_id: str
    version: int
    created: int  # epoch seconds, written into the metadata


@dataclass(frozen=True, slots=True)
class Planned:
    """A batch of the current unit before its lock preamble (which needs the time of submission)."""

    purpose: Purpose
    changes: tuple[Change, ...]
    cas: RecordSet | None  # guarded: the applied-version record to CREATE after DELETE of the seen one
    info: tuple[tuple[str, Any], ...] = ()  # fields for the note logged when it is accepted


@dataclass(frozen=True, slots=True)
class EndpointState:
    endpoint: str  # normalised, with the trailing dot
    zone_id: str  # bare hosted zone id ("Z123..."), used in alias targets
    phase: Phase = Phase.PLAN
    task: Task = Task.IDLE
    plan: PlanInHand | None = None
    done_version: int = 0  # newest version this machine applied or found applied
    applied_version: int = 0  # the endpoint's applied version as last seen (0: none)
    checked: bool = False  # legacy: the one freshness check for the plan in hand is done
    tree: TreeInHand | None = None
    lock: RecordSet | None = None  # the lock record as last seen or written
    applied: RecordSet | None = None  # the applied-version record as last seen or written
    unit: tuple[Planned, ...] = ()  # batches of the current unit still to be accepted ([0] in flight)
    inflight: SubmitBatch | None = None
    acquired: bool = False  # a batch of the current unit was accepted: we hold the lock
    unsynced: tuple[str, ...] = ()  # change ids of build batches not yet known INSYNC
    losses: int = 0  # consecutive failures, capped at settings.max_losses (the backoff exponent)
    flip_failures: int = 0  # consecutive failed builds and flips, capped at STUCK_AFTER
    nap: Sleep | None = None
    rejected: str | None = None  # key of the last plan rejected (logged once)
    frozen: bool = False
    refused_version: int = 0  # newest plan version Route 53 refused (or that cannot fit): never retried
    reread: bool = False  # guarded: after this backoff, read the newest plan before listing again
    salvage: bool = False  # this clean-up only removes what a refused build left (half-built trees, orphans)
    last_check: float = 0.0  # when the last light check started (epoch seconds)
    read: str = ""  # in phase READ: "heads" (root, bookkeeping, tops, metadata) or "nodes" (the interior nodes' pages)
    full: bool = False  # guarded: the next unit lists the whole zone (a unit planned on targeted reads failed)
    heads: tuple[RecordSet, ...] = ()  # reading "nodes": the heads read this unit decides on
    known: tuple[str, ...] = ()  # reading "nodes": interior nodes read so far and the nodes they name
    cursor: tuple[str, str] | None = None  # reading "nodes": where the next page starts (name, type; None: no page)
    sized: tuple[int | None, int | None] | None = None  # reading "nodes": (record count, quota) of the zone
    sweep: bool = False  # guarded: this unit's build found the zone too full for another like it: make room after the flip
    plans: tuple[tuple[int, EndpointPlan | None], ...] = ()  # reading "nodes" for a build: the plans behind the trees (a trim's census)
    crowded: bool = False  # guarded: this plan's targeted reads found the zone too full once (the next time, a listing decides)

    @property
    def stuck(self) -> bool:
        return self.flip_failures >= STUCK_AFTER

    @property
    def lock_value(self) -> layout.LockValue | None:
        return layout.LockValue.parse(" ".join(self.lock.values)) if self.lock else None


def start(endpoint: str, zone_id: str) -> tuple[EndpointState, Request]:
    """A fresh machine for `endpoint` (whose hosted zone has id `zone_id`) and its first request."""
    state = EndpointState(endpoint=normalise_name(endpoint), zone_id=zone_id.rsplit("/", 1)[-1])
    return state, request_of(state)


def request_of(state: EndpointState) -> Request:
    """The machine's outstanding request; a pure function of the state."""
    if state.phase is Phase.PLAN:
        return READ_NEWEST_PLAN
    if state.phase is Phase.LIST:
        return LIST_RECORDS
    if state.phase is Phase.BATCH:
        assert state.inflight is not None
        return state.inflight
    if state.phase is Phase.INSYNC:
        return AwaitInsync(state.unsynced)
    if state.phase is Phase.CHECK:
        return _check_request(state)
    if state.phase is Phase.READ:
        return _read_request(state)
    if state.phase is Phase.PLANS:
        return ReadPlans(_tree_versions(layout.read_endpoint(state.endpoint, state.heads, heads_only=True)) or ())
    assert state.nap is not None
    return state.nap


def step(settings: CoreSettings, state: EndpointState, obs: Observation) -> tuple[EndpointState, Request, tuple[Note, ...]]:
    """Feed one observation; get the next state, its outstanding request and the notes to log."""
    notes: list[Note] = []
    if isinstance(obs, Frozen):
        new = _on_frozen(settings, state, obs, notes)
    elif isinstance(obs, RequestFailed):
        new = _on_failed(settings, state, obs, notes)
    else:
        expected = _ANSWERS[state.phase]
        if not isinstance(obs, expected):
            raise ProtocolError(f"{type(obs).__name__} does not answer {type(request_of(state)).__name__}")
        new = _HANDLERS[type(obs)](settings, state, obs, notes)
    return new, request_of(new), tuple(notes)


# --- the plan ---------------------------------------------------------------------------------


def _on_plan(s: CoreSettings, st: EndpointState, obs: PlanRead, notes: list[Note]) -> EndpointState:
    if st.frozen:
        st = replace(st, frozen=False)
        notes.append(_note(st, "unfrozen"))
    if st.task is Task.WORK:
        return _on_reread(s, st, obs, notes)
    if obs.invalid is not None:
        if st.rejected != obs.invalid.key:
            st = replace(st, rejected=obs.invalid.key)
            notes.append(_note(st, "plan_rejected", key=obs.invalid.key, reason=obs.invalid.reason))
        return _poll(s, st)
    plan = obs.plan
    if plan is None or plan.version <= st.done_version or plan.version <= st.refused_version:
        return _poll(s, st)
    ep = plan.endpoint(st.endpoint)
    if ep is None:
        return _poll(s, st)
    if not ep.targets:
        # An endpoint without load balancers would answer nothing: keep what is there.
        key = f"plan {plan.version} endpoint {ep.name}"
        if st.rejected != key:
            st = replace(st, rejected=key)
            notes.append(_note(st, "plan_rejected", key=key, reason="the endpoint has no load balancers"))
        return _poll(s, st)
    st = replace(st, plan=PlanInHand(plan.version, ep), task=Task.WORK, checked=False, unit=(), crowded=False)
    notes.append(_note(st, "plan_seen", done_version=st.done_version))
    return _begin(s, st)


def _on_reread(s: CoreSettings, st: EndpointState, obs: PlanRead, notes: list[Note]) -> EndpointState:
    """Guarded, after a rejection's backoff: a newer valid plan replaces the one in hand."""
    assert st.plan is not None
    st = _begin(s, replace(st, reread=False))
    plan = obs.plan
    if plan is None or plan.version <= st.plan.version or plan.version <= st.refused_version:
        return st
    ep = plan.endpoint(st.endpoint)
    if ep is None or not ep.targets:
        return st
    notes.append(_note(st, "plan_superseded", newer_version=plan.version))
    return replace(st, plan=PlanInHand(plan.version, ep), tree=None, checked=False, unit=(), crowded=False)


# --- reading: the freshness check, the lock, then the unit's batches --------------------------


def _begin(s: CoreSettings, st: EndpointState) -> EndpointState:
    """Start a unit's reads. Guarded: the heads read (one page); legacy lists the whole zone as
    October's code did, and so does a salvage (the reference count) or a unit after a failed one."""
    if s.version_guard and not st.full and not (st.task is Task.CLEANUP and st.salvage):
        return replace(st, phase=Phase.READ, read="heads", heads=(), known=(), cursor=None)
    return replace(st, phase=Phase.LIST, read="", heads=(), known=(), cursor=None)


def _read_request(st: EndpointState) -> ReadRecords:
    if st.read == "nodes":
        return ReadRecords(((*st.cursor, NODES_PAGE),) if st.cursor else (), zone_size=st.sized is None)
    return ReadRecords(((layout.root_name(st.endpoint), "A", HEADS_PAGE),))


def _heads(endpoint: str, records: tuple[RecordSet, ...]) -> tuple[RecordSet, ...] | None:
    """The heads in a page read from the root (everything before the first shared node), or
    None when the page may have been cut short before the heads ended (then a listing decides)."""
    heads = []
    for r in records:
        role = layout.role_of(r.name, endpoint)[0]
        if role == "node" and _first_label(r.name).startswith((layout.INTERIOR_NODE_PREFIX, layout.NODE_PREFIX)):
            return tuple(heads)  # the shared nodes sort after every head
        if role not in ("node", "leaf", "other"):
            heads.append(r)  # (an earlier writer's nodes and leaves sort among the heads: skipped)
    return tuple(heads) if len(records) < HEADS_PAGE else None


def _on_unit_read(s: CoreSettings, st: EndpointState, obs: RecordsRead, notes: list[Note]) -> EndpointState:
    """Guarded: a unit decides on the heads read; a build whose trees have interior nodes reads
    those too (a few pages), and learns which of its nodes exist from them (`_work`)."""
    if st.read == "nodes" and st.task is Task.CLEANUP:
        return replace(st, phase=Phase.PLANS, read="", sized=(obs.record_count, obs.quota))  # (a sweep's zone size)
    if st.read == "nodes":
        interior = _interior(st.endpoint, obs.records)
        known = set(st.known) | set(_named_by(interior))
        sized = st.sized or (obs.record_count, obs.quota)
        st = replace(st, known=tuple(sorted(known)), sized=sized)
        if len(obs.records) >= NODES_PAGE and interior and obs.records[-1] == interior[-1]:
            return replace(st, cursor=(interior[-1].name, interior[-1].type))  # the next page
        heads, plans = st.heads, st.plans
        st = replace(st, read="", heads=(), known=(), cursor=None, sized=None, plans=())
        zone = layout.read_endpoint(st.endpoint, heads, heads_only=True)
        return _work(s, st, zone, heads, obs.now, obs.fresh_tree_id, sized[1] or obs.quota, notes, known=frozenset(known), nodes_read=True,
                     plans=plans,
                     record_count=sized[0])
    if len(obs.records) < s.heads_page:
        # The page starts at the apex and was not cut short: it is the whole zone, a listing.
        zone = layout.read_endpoint(st.endpoint, obs.records)
        st = replace(st, read="", lock=zone.lock, applied=zone.applied, applied_version=_applied_version(s, zone) or 0)
        if st.task is Task.WORK:
            return _work(s, st, zone, obs.records, obs.now, obs.fresh_tree_id, obs.quota, notes, known=None)
        return _cleanup(s, st, zone, obs.now, notes, obs.quota or s.limits.max_record_sets_per_zone)
    heads = _heads(st.endpoint, obs.records)
    if heads is None:
        return replace(st, phase=Phase.LIST, read="")  # more heads than one page: the whole zone decides
    zone = layout.read_endpoint(st.endpoint, heads, heads_only=True)
    st = replace(st, read="", lock=zone.lock, applied=zone.applied, applied_version=_applied_version(s, zone) or 0)
    if st.task is Task.WORK:
        # The interior nodes follow the heads in list order: those on this page are known, and
        # when the page ends among them the build reads on from there.
        interior = _interior(st.endpoint, obs.records)
        more = bool(interior) and obs.records[-1] == interior[-1]
        cursor = (interior[-1].name, interior[-1].type) if more else None
        return _work(s, st, zone, heads, obs.now, obs.fresh_tree_id, None, notes, known=frozenset(_named_by(interior)),
                     nodes_read=False, cursor=cursor)
    # The clean-up: nothing more to read unless a tree is past keeping (or a sweep must make room,
    # `_room`). Then the reference count comes from the plans behind the trees (`_on_plans_read`),
    # or, when a tree is not of the shared-node layout, from a listing of the whole zone.
    plan = _doomed(s, st, zone, notes)
    if plan is None or (not plan[0] and not st.sweep):
        return _finish_cleanup(st)
    if _tree_versions(zone) is None:
        return replace(st, phase=Phase.LIST)
    if lock_verdict(s, zone, obs.now) == "held":
        return _cleanup(s, st, zone, obs.now, notes, doomed=plan)  # (backs off: no plan is read for nothing)
    if st.sweep:
        # Making room counts on the zone's size too: GetHostedZone first (READ "nodes" without a page).
        return replace(st, phase=Phase.READ, read="nodes", heads=heads, cursor=None, sized=None)
    return replace(st, phase=Phase.PLANS, heads=heads)


def _tree_versions(zone: layout.EndpointZone) -> tuple[int, ...] | None:
    """The plan versions behind every tree of `zone` (the heads read), or None when a tree's nodes
    cannot be recomputed from its plan (no metadata yet, or a layout older than the shared nodes)."""
    if any(t.meta is None or t.meta.lb_count is None for t in zone.trees):
        return None
    return tuple(sorted({t.meta.plan_version for t in zone.trees if t.meta is not None}))


# --- the clean-up's reference count, from the plans behind the trees ------------------------------


def _on_plans_read(s: CoreSettings, st: EndpointState, obs: PlansRead, notes: list[Note]) -> EndpointState:
    """Guarded, on the heads: every tree's nodes are recomputed from its plan and checked against
    its top as read (`tree_nodes`). A build then knows which of its nodes exist without reading
    the interior nodes (it still asks the zone's size); a clean-up knows the nodes only doomed
    trees reach, records and all, without reading them. When a tree does not check, a build
    reads the interior nodes and a clean-up lists the zone."""
    zone = layout.read_endpoint(st.endpoint, st.heads, heads_only=True)
    plans = dict(obs.endpoints)
    sized = st.sized
    census = census_from_plans(s, st, zone, plans, (sized[0] if sized else None) or 0, notes)
    if census is None:
        if st.task is Task.WORK:
            return replace(st, phase=Phase.READ)  # (read "nodes" from the cursor, as without plans)
        return replace(st, phase=Phase.LIST, heads=(), sized=None)
    if st.task is Task.WORK:
        # Every node of every tree exists (a node in the zone has its whole subtree); the zone's
        # size is still read (GetHostedZone) before the build is planned, and the plans are kept
        # for a trim (`_work`).
        known = set(st.known).union(census.nodes)
        return replace(st, phase=Phase.READ, known=tuple(sorted(known)), cursor=None, plans=obs.endpoints)
    st = replace(st, heads=(), sized=None)
    quota = None
    if st.sweep:
        if sized is None or sized[0] is None:
            return replace(st, phase=Phase.LIST)  # the zone's size unknown: a listing makes room
        quota = sized[1] or s.limits.max_record_sets_per_zone
    plan = _doomed(s, st, zone, notes, quota, census)
    if plan is None or not plan[0]:
        return _finish_cleanup(st)
    return _cleanup(s, st, zone, obs.now, notes, doomed=(plan[0], census.only({t.tree_id for t in plan[0]})))


def tree_nodes(s: CoreSettings, endpoint: str, zone_id: str, tree: layout.TreeInZone, ep: EndpointPlan | None
               ) -> dict[str, list[RecordSet]] | None:
    """The shared nodes of `tree` (name -> its record sets), recomputed from the plan it was built
    for (enactor/tree.py); None when `ep` is unknown or the top recomputed is not the top read.

    Nodes are named by a digest of their content, and the content of an interior node is its
    children's names: a top whose members match names every node below it, content and all (a
    Merkle tree). So a recomputed top equal to the top read means the recomputed nodes are the
    zone's, and their DELETEs match exactly (a node damaged by hand fails the batch, which then
    ends the clean-up unit and lists the zone, `_on_rejected`)."""
    if ep is None or not ep.targets:
        return None
    top = layout.tree_name(endpoint, tree.tree_id)
    built = tree_shape.build(endpoint, zone_id, ep, top, s.record_ttl, s.shape)
    read = {r.key: r for r in tree.records if r.name == top}
    wanted = {r.key: r for r in built if r.name == top}
    if read.keys() != wanted.keys() or not all(same_record_set(read[k], r) for k, r in wanted.items()):
        return None
    out: dict[str, list[RecordSet]] = {}
    for r in built:
        if r.name != top:
            out.setdefault(r.name, []).append(r)
    return out


def _first_label(name: str) -> str:
    return name.split(".", 1)[0]


def _interior(endpoint: str, records: tuple[RecordSet, ...]) -> list[RecordSet]:
    return [r for r in records if layout.role_of(r.name, endpoint)[0] == "node" and layout.is_interior_node(_first_label(r.name))]


def _named_by(interior: list[RecordSet]) -> tuple[str, ...]:
    """Interior nodes in the zone and the nodes they name (which are in the zone too)."""
    return tuple(sorted({r.name for r in interior} | {r.alias.dns_name for r in interior if r.alias is not None}))


def _on_listed(s: CoreSettings, st: EndpointState, obs: RecordsListed, notes: list[Note]) -> EndpointState:
    zone = layout.read_endpoint(st.endpoint, obs.records)
    st = replace(st, lock=zone.lock, applied=zone.applied, applied_version=_applied_version(s, zone) or 0)
    if st.task is Task.WORK:
        return _work(s, st, zone, obs.records, obs.now, obs.fresh_tree_id, obs.quota, notes, known=None)
    return _cleanup(s, st, zone, obs.now, notes, obs.quota or s.limits.max_record_sets_per_zone)


def _applied_version(s: CoreSettings, zone: layout.EndpointZone) -> int | None:
    # Legacy knows only what the root serves; the guard trusts its own record first.
    return zone.applied_version() if s.version_guard else zone.active_version


def _work(
    s: CoreSettings, st: EndpointState, zone: layout.EndpointZone, records: tuple[RecordSet, ...], now: float,
    fresh_tree_id: str | None, quota: int | None, notes: list[Note], known: frozenset[str] | None, nodes_read: bool = True,
    record_count: int | None = None, cursor: tuple[str, str] | None = None, plans: tuple[tuple[int, EndpointPlan | None], ...] = (),
) -> EndpointState:
    """Decide a WORK unit on `zone`: from a whole listing (`known` None) or, guarded, from the heads
    read (`known`: the interior nodes read and the nodes they name; see `_targeted_build`), with
    `plans`, the plans behind its trees, when they gave every tree's nodes."""
    assert st.plan is not None
    v, applied = st.plan.version, st.applied_version
    heal = False
    if not s.version_guard:
        if not st.checked:
            st = replace(st, checked=True)
            if v <= applied:
                return _drop_plan(s, st, zone, notes)
    else:
        # Heal a root that dangles, or that lost a type the applied plan serves (hand deletion,
        # a wiped zone restored in part): the plan in hand may then be the applied one.
        unserved = applied > 0 and any(rt not in zone.root_targets() for rt in st.plan.endpoint.record_types)
        heal = zone.dangling or unserved
        if not (v >= applied if heal else v > applied):
            return _drop_plan(s, st, zone, notes)
    lock = lock_verdict(s, zone, now)
    if lock == "held":
        held = zone.lock_value
        notes.append(_note(st, "lock_lost", holder=held.holder if held else None, expires=held.expires if held else None))
        return _backoff(s, st, "lock_lost", notes)
    if known is not None and heal:
        return replace(st, phase=Phase.LIST)  # healing damage: the whole zone decides

    tree = st.tree if st.tree is not None and st.tree.version == v else _new_tree(s, st, zone, fresh_tree_id, now)
    index = {r.key: r for r in records}
    wanted = tree_records(s, st.endpoint, st.zone_id, st.plan.endpoint, tree)
    if known is None:
        missing = tuple(_create_or_fix(r, index) for r in wanted if not _present(r, index))
    else:
        if not nodes_read:
            # Before building: the zone's size (the quota), and the interior nodes past the heads
            # page if it ended among them (`st.cursor`), to learn which of the tree's nodes exist.
            # The nodes come from the plans behind the trees when every tree has one (`_on_plans_read`).
            phase = Phase.PLANS if _tree_versions(zone) is not None else Phase.READ
            return replace(st, phase=phase, read="nodes", heads=records, known=tuple(sorted(known)), cursor=cursor, sized=None)
        missing = _targeted_build(st.endpoint, wanted, index, zone, known)
    flip = _flip(s, st, zone, tree, heal)
    unit = chunk_batches(s, st, "build", missing, None, (("tree_id", tree.tree_id),))
    # The zone quota: never start a tree that cannot fit. Guarded, older retained trees (never
    # the active, rollback or applied one) are cleaned first, in this same unit. (A unit planned
    # on targeted reads does not know the zone's size: Route 53's refusal for the quota sends it
    # to a whole listing, which decides here.)
    quota = quota or s.limits.max_record_sets_per_zone
    census = None
    if known is not None:
        # Targeted: every node written may be new (UPSERT). A trim counts on the nodes recomputed
        # from the trees' plans, else the whole zone decides it.
        grows = len(missing) + _heads_growth(s, zone, flip)
        st = replace(st, sweep=record_count is not None and record_count + 2 * len(missing) > quota)
        need = 0
        if record_count is not None and record_count + grows > quota:
            census = census_from_plans(s, st, zone, dict(plans), record_count, notes) if plans else None
            if census is None:
                return _crowded(s, st, notes, record_count, grows, quota)
            need = record_count + grows - quota
    else:
        census = census_of(zone)
        need = zone.record_count + sum(1 for c in missing if c.action == "CREATE") + _heads_growth(s, zone, flip) - quota
    if need > 0:
        # The rollback's tree may go too when the active one is whole: the trim then points the
        # rollback at the active tree first (as the flip will), so it never names a missing tree.
        active = {rt: tid for rt, tid in zone.root_targets().items() if tid and (t := zone.tree(tid)) is not None and t.complete}
        keep = {t for t in zone.root_targets().values() if t} | {tree.tree_id}
        keep |= {tid for rt, tid in zone.rollback_targets().items() if tid and rt not in active}
        # The trees the flip will name (not those of the roots and rollbacks it deletes: a type
        # the plan drops must not pin its old rollback's tree).
        keep |= {layout.tree_id_of(c.record.alias.dns_name, st.endpoint) for c in (flip.changes if flip else ()) if c.record.alias and c.action != "DELETE"}
        if zone.applied_value is not None:
            keep.add(zone.applied_value.tree_id)
        trim = _trim(zone, keep, wanted, need, census) if s.version_guard and census is not None else None
        if trim is not None:
            doomed = {layout.tree_id_of(c.record.name, st.endpoint) for c in trim}
            repoint = tuple(
                Change("UPSERT", RecordSet(layout.rollback_name(st.endpoint), rt, alias=AliasTarget(layout.tree_name(st.endpoint, active[rt]), st.zone_id)))
                for rt, tid in sorted(zone.rollback_targets().items()) if tid in doomed
            )
            trim = repoint + trim
        if trim is None and known is not None:
            return _crowded(s, st, notes, record_count, len(missing), quota)  # (only a whole listing refuses a plan as too large)
        if trim is None:
            return refuse_plan(s, st, "plan_too_large", "zone_quota", notes, records=zone.record_count, quota=quota,
                               creates=need + quota - zone.record_count)
        cas = zone.applied if zone.applied is not None else None
        versions = {t.tree_id: t.version for t in zone.trees}
        unit = tuple(
            replace(p, info=_cleanup_info(p.changes, st.endpoint, versions))
            for p in chunk_batches(s, st, "cleanup", trim, cas, ())
        ) + unit
    if flip is not None:
        unit += (flip,)
    if unit:
        held = zone.lock_value
        notes.append(_note(st, "lock_attempt", holder=held.holder if held else None, verdict=lock, batches=len(unit)))
    st = replace(st, tree=tree, unit=unit, acquired=False)
    return next_batch(s, st, now, notes)


def _heads_growth(s: CoreSettings, zone: layout.EndpointZone, flip: Planned | None) -> int:
    """Record sets the unit adds besides the tree's nodes, at its fullest: the lock when the zone
    has none yet (every batch's preamble), and the flip's new roots and rollbacks and, guarded,
    its `_applied` record, less the roots and rollbacks of the types it drops (Route 53 counts
    the quota at the end of every batch, so the flip's deletes only offset its own creates)."""
    lock = 1 if zone.lock is None else 0
    if flip is None:
        return lock
    have = {(r.name, r.type) for r in (*zone.roots, *zone.rollbacks)}
    adds = sum(1 for c in flip.changes if c.action != "DELETE" and (c.record.name, c.record.type) not in have)
    drops = sum(1 for c in flip.changes if c.action == "DELETE")
    applied = 1 if s.version_guard and zone.applied is None else 0
    return lock + max(0, adds + applied - drops)


def _crowded(s: CoreSettings, st: EndpointState, notes: list[Note], record_count: int | None, creates: int, quota: int) -> EndpointState:
    """Targeted reads found no room for the build. The zone's size is read after the heads, so
    another enactor's build of this same plan may have landed in between (its tree, which shares
    this one's nodes, not among the heads read): read the heads again first; found again, a
    listing of the whole zone decides (a trim, or plan_too_large)."""
    notes.append(_note(st, "zone_crowded", records=record_count, creates=creates, quota=quota, again=st.crowded))
    if not st.crowded:
        return _begin(s, replace(st, crowded=True))
    return replace(st, phase=Phase.LIST, full=True, crowded=False)


def _targeted_build(endpoint: str, wanted: tuple[RecordSet, ...], index: dict, zone: layout.EndpointZone,
                    known: frozenset[str]) -> tuple[Change, ...]:
    """The build's changes without a whole listing: a node exists when a top in the heads or an
    interior node read names it (a node in the zone has its whole subtree, see layout.read_endpoint),
    or when it is an interior node read. Any other node of the tree is written with UPSERT: named
    by its content, the same name always holds the same records, so writing a node that already
    exists (an orphan, or a node of a tree whose interior was not read) changes nothing and
    cannot fail. The top and the metadata are the tree's own (CREATE, or fixed as found)."""
    present = set(known).union(*(t.leaves for t in zone.trees))
    out: list[Change] = []
    for r in wanted:
        if layout.role_of(r.name, endpoint)[0] == "node":
            if r.name not in present:
                out.append(Change("UPSERT", r))
        elif not _present(r, index):
            out.append(_create_or_fix(r, index))
    return tuple(out)


def _trim(zone: layout.EndpointZone, keep: set, wanted: tuple[RecordSet, ...], need: int, census: Census) -> tuple[Change, ...] | None:
    """DELETEs that free at least `need` record sets: orphans, then unkept trees oldest first;
    None when even all of them would not free enough."""
    candidates = sorted((t for t in zone.trees if t.tree_id not in keep), key=lambda t: (t.version is not None, t.version or 0, t.tree_id))
    names = {r.name for r in wanted}
    for k in range(len(candidates) + 1):
        doomed = candidates[:k]
        if census.freed(doomed, names) >= need:
            orphans = census.only({t.tree_id for t in doomed}, names)
            return tuple(Change("DELETE", r) for t in doomed for r in t.records) + tuple(Change("DELETE", r) for r in orphans)
    return None


def _drop_plan(s: CoreSettings, st: EndpointState, zone: layout.EndpointZone, notes: list[Note]) -> EndpointState:
    assert st.plan is not None
    v, applied = st.plan.version, st.applied_version
    notes.append(_note(st, "refused_stale" if v < applied else "up_to_date"))
    # Done: the plan looked at, and what the root really serves (a complete tree's metadata) up to
    # the applied version. Never `_applied` alone: a too high (hand-edited, restored) record must
    # not make this machine skip newer plans for ever.
    served = zone.active_version or 0
    done = max(st.done_version, v, served if served <= applied else applied)
    return replace(st, task=Task.IDLE, phase=Phase.PLAN, plan=None, tree=None, unit=(), checked=False, done_version=done, full=False,
                   crowded=False)


def lock_verdict(s: CoreSettings, zone: layout.EndpointZone, now: float) -> str:
    """free: no lock (CREATE); mine; expired (take over by deleting its exact value); held."""
    if zone.lock is None:
        return "free"
    value = zone.lock_value
    if value is None:
        return "expired"  # unreadable: its exact value can still be deleted, nobody can claim it
    if value.holder == s.enactor_id:
        return "mine"
    return "expired" if value.expires <= now else "held"


def _new_tree(s: CoreSettings, st: EndpointState, zone: layout.EndpointZone, fresh_tree_id: str | None, now: float) -> TreeInHand:
    assert st.plan is not None
    tree_id = fresh_tree_id
    if tree_id is None:
        # Deterministic yet fresh: no two successful acquisitions share a lock counter.
        counter = (zone.lock_value.counter if zone.lock_value else 0) + 1
        seed = f"{st.endpoint}|{st.plan.version}|{s.enactor_id}|{counter}"
        tree_id = layout.TREE_PREFIX + uuid.uuid5(TREE_ID_NAMESPACE, seed).hex
    if not tree_id.startswith(layout.TREE_PREFIX) or len(tree_id) > 63 or not tree_id[len(layout.TREE_PREFIX) :].isalnum():
        raise ProtocolError(f"tree id {tree_id!r} must look like t-<hex>")
    return TreeInHand(tree_id, st.plan.version, int(now))


def _present(record: RecordSet, index: dict) -> bool:
    current = index.get(record.key)
    return current is not None and same_record_set(current, record)


def _create_or_fix(record: RecordSet, index: dict) -> Change:
    return Change("UPSERT" if record.key in index else "CREATE", record)


# --- the tree ---------------------------------------------------------------------------------


def tree_records(s: CoreSettings, endpoint: str, zone_id: str, ep: EndpointPlan, tree: TreeInHand) -> tuple[RecordSet, ...]:
    """Every record of `tree` in build order: shared nodes bottom-up (enactor/tree.py), the fresh
    top, then the metadata record last (its presence marks the tree complete)."""
    types = tuple(sorted(ep.record_types))
    records = tree_shape.build(endpoint, zone_id, ep, layout.tree_name(endpoint, tree.tree_id), s.record_ttl, s.shape)
    created = datetime.fromtimestamp(tree.created, UTC).isoformat(timespec="seconds")
    meta = layout.TreeMeta(tree.version, created, (), 1, types, lb_count=len(ep.targets))
    meta_record = RecordSet(layout.meta_name(endpoint, tree.tree_id), "TXT", ttl=s.record_ttl, values=meta.render_values())
    return (*records, meta_record)


# --- the flip ---------------------------------------------------------------------------------


def _flip(s: CoreSettings, st: EndpointState, zone: layout.EndpointZone, tree: TreeInHand, heal: bool) -> Planned | None:
    """Root (and rollback) to `tree`; None when every root already points at it."""
    assert st.plan is not None
    target = layout.tree_name(st.endpoint, tree.tree_id)
    roots = {r.type: r for r in zone.roots}
    types = tuple(sorted(st.plan.endpoint.record_types))
    # Served state is the plan, per type: a type the plan dropped loses its root and rollback in
    # the flip itself, when the new tree goes live for the others (it then answers no records).
    dropped = tuple(Change("DELETE", r) for r in (*zone.roots, *zone.rollbacks) if r.type not in types)
    if not dropped and all(roots.get(rt) is not None and roots[rt].alias is not None and roots[rt].alias.dns_name == target for rt in types):
        return None
    changes: list[Change] = []
    rollback_to: dict[str, str] = {}
    guarded_rollback = None if not s.version_guard else _guarded_rollback(zone, tree, heal)
    for rt in types:
        changes.append(Change("UPSERT", RecordSet(layout.root_name(st.endpoint), rt, alias=AliasTarget(target, st.zone_id))))
        current = roots.get(rt)
        if not s.version_guard:
            # October's code: the rollback follows the root, whatever the root points at now.
            to = current.alias.dns_name if current is not None and current.alias is not None else None
        else:
            to = guarded_rollback.get(rt) if guarded_rollback else None
        if to is not None and to != target:
            rollback_to[rt] = to
            changes.append(Change("UPSERT", RecordSet(layout.rollback_name(st.endpoint), rt, alias=AliasTarget(to, st.zone_id))))
    changes += dropped
    cas = None
    if s.version_guard:
        value = layout.AppliedValue(tree.version, tree.tree_id)
        cas = RecordSet(layout.applied_name(st.endpoint), "TXT", ttl=s.record_ttl, values=(value.render(),))
    info = (
        ("tree_id", tree.tree_id),
        ("from_tree", zone.root_targets().get(types[0])),
        ("rollback_to", tuple(sorted({layout.tree_id_of(n, st.endpoint) or n for n in rollback_to.values()}))),
        ("healed", heal),
    )
    return Planned("heal" if heal else "flip", tuple(changes), cas, info)


def _guarded_rollback(zone: layout.EndpointZone, tree: TreeInHand, heal: bool) -> dict[str, str]:
    """Per record type, the tree the rollback should name: the active one, or when healing the
    newest complete tree other than the new one (no entry: leave the rollback record as it is)."""
    if not heal:
        out = {}
        for rt, tid in zone.root_targets().items():
            t = zone.tree(tid)
            if t is not None and t.complete and tid != tree.tree_id:
                out[rt] = layout.tree_name(zone.endpoint, tid)
        return out
    intact = [t for t in zone.trees if t.complete and t.tree_id != tree.tree_id and (t.version or 0) <= tree.version]
    if not intact:
        return {}
    best = max(intact, key=lambda t: (t.version or 0, t.tree_id))
    # The types the tree actually serves (its top's records), never a guess.
    types = best.record_types or (best.meta.record_types if best.meta else ())
    return {rt: layout.tree_name(zone.endpoint, best.tree_id) for rt in types}


# --- clean-up ---------------------------------------------------------------------------------


def _cleanup(s: CoreSettings, st: EndpointState, zone: layout.EndpointZone, now: float, notes: list[Note],
             quota: int | None = None, doomed: tuple[list[layout.TreeInZone], list[RecordSet]] | None = None) -> EndpointState:
    """Delete the trees past keeping (and what only they reach) in their own unit; from the whole
    zone (`quota` given), also what makes room for the next plan. `doomed`: what to delete, when
    the reference count was made without a listing (`_on_plans_read`)."""
    plan = doomed if doomed is not None else _doomed(s, st, zone, notes, quota)
    if plan is None or (not plan[0] and not plan[1]):
        return _release_abandoned(s, st, zone, now, notes)
    doomed, leaves = plan
    lock = lock_verdict(s, zone, now)
    if lock == "held":
        held = zone.lock_value
        notes.append(_note(st, "lock_lost", holder=held.holder if held else None, expires=held.expires if held else None))
        return _backoff(s, st, "lock_lost", notes)
    versions = {t.tree_id: t.version for t in doomed}
    changes = tuple(Change("DELETE", r) for t in doomed for r in t.records) + tuple(Change("DELETE", r) for r in leaves)
    cas = zone.applied if s.version_guard and zone.applied is not None else None
    unit = tuple(
        replace(p, info=_cleanup_info(p.changes, st.endpoint, versions))
        for p in chunk_batches(s, st, "cleanup", changes, cas, ())
    )
    held = zone.lock_value
    notes.append(_note(st, "lock_attempt", holder=held.holder if held else None, verdict=lock, batches=len(unit)))
    return next_batch(s, replace(st, unit=unit, acquired=False), now, notes)


def _release_abandoned(s: CoreSettings, st: EndpointState, zone: layout.EndpointZone, now: float, notes: list[Note]) -> EndpointState:
    """Finish a clean-up with nothing to delete. Guarded, after a refusal (`salvage`): a unit
    given up mid-way (its build accepted, then its flip refused: the zone quota) still holds this
    enactor's unexpired lease, which would keep every other enactor waiting for it to run out;
    write the lock back already expired (the release batch, preamble alone) before going on."""
    value = zone.lock_value
    if not (s.version_guard and st.salvage and lock_verdict(s, zone, now) == "mine" and value is not None and value.expires > now):
        return _finish_cleanup(st)
    notes.append(_note(st, "lock_attempt", holder=value.holder, verdict="mine", batches=1))
    return next_batch(s, replace(st, unit=(Planned("cleanup", (), None, ()),), acquired=False), now, notes)


def _doomed(s: CoreSettings, st: EndpointState, zone: layout.EndpointZone, notes: list[Note], quota: int | None = None,
            census: Census | None = None) -> tuple[list[layout.TreeInZone], list[RecordSet]] | None:
    """The trees past keeping and the shared nodes only they reach (parents first); None: skip.
    `quota`: make room for the next plan too (`_room`), counting on `census` (default: the
    whole zone is listed and counted, `census_of`)."""
    referenced = {t for t in (*zone.root_targets().values(), *zone.rollback_targets().values()) if t}
    applied = zone.applied_value
    if st.salvage:
        # After a refusal: only what no plan will ever use, whatever the versions.
        threshold, protected = None, referenced | ({applied.tree_id} if applied else set())
    elif s.version_guard:
        if applied is None:
            notes.append(_note(st, "cleanup_skipped", reason="no applied-version record to compare-and-swap"))
            return None
        threshold = applied.version - s.keep_plans
        protected = referenced | {applied.tree_id}
    else:
        assert st.plan is not None
        # October's record cleaner: older than the plan just applied, by version alone.
        threshold = st.plan.version - s.keep_plans
        protected = set()
    doomed = []
    for t in zone.trees:
        if t.version is not None:
            if threshold is not None and t.version < threshold and t.tree_id not in protected:
                doomed.append(t)
        elif t.tree_id not in referenced and t.tree_id not in protected:
            doomed.append(t)  # no metadata: a build that never finished
    if quota is not None and s.version_guard and not st.salvage:
        doomed = _room(zone, doomed, protected, quota, census or census_of(zone))
    return doomed, _orphans(zone, {t.tree_id for t in doomed}, ())


@dataclass(frozen=True, slots=True)
class Census:
    """What the zone quota's decisions count on: the zone's record sets, the shared nodes each
    tree reaches and every node's record sets. From a whole listing (`census_of`: nodes no tree
    reaches included) or from the nodes recomputed from the trees' plans (`census_from_plans`)."""

    record_count: int
    reach: dict[str, frozenset[str]]  # tree id -> the node names it reaches
    nodes: dict[str, tuple[RecordSet, ...]]  # node name -> its record sets

    def _unused(self, doomed: set[str], wanted: set[str]) -> list[str]:
        used = set(wanted).union(*(n for tid, n in self.reach.items() if tid not in doomed))
        return [name for name in self.nodes if name not in used]

    def only(self, doomed: set[str], wanted: set[str] = frozenset()) -> list[RecordSet]:
        """The nodes no tree but the doomed reaches and the tree being built does not need, parents first."""
        return _parents_first([r for name in self._unused(doomed, wanted) for r in self.nodes[name]])

    def freed(self, doomed: list[layout.TreeInZone], wanted: set[str] = frozenset()) -> int:
        """Record sets deleting `doomed` frees: their own, and every node only they reach."""
        nodes = self._unused({t.tree_id for t in doomed}, wanted)
        return sum(len(t.records) for t in doomed) + sum(len(self.nodes[n]) for n in nodes)


def census_of(zone: layout.EndpointZone) -> Census:
    """The census of a whole listing (its orphans included)."""
    nodes: dict[str, list[RecordSet]] = {}
    for r in zone.leaves:
        nodes.setdefault(r.name, []).append(r)
    return Census(zone.record_count, {t.tree_id: t.leaves for t in zone.trees}, {n: tuple(rs) for n, rs in nodes.items()})


def census_from_plans(s: CoreSettings, st: EndpointState, zone: layout.EndpointZone, plans: dict[int, EndpointPlan | None],
                      record_count: int, notes: list[Note]) -> Census | None:
    """The census of the heads read and the nodes recomputed from every tree's plan (`tree_nodes`);
    None (noted) when a tree's nodes do not follow from its plan. Nodes no tree reaches are not in it."""
    reach: dict[str, frozenset[str]] = {}
    nodes: dict[str, tuple[RecordSet, ...]] = {}
    for t in zone.trees:
        found = tree_nodes(s, st.endpoint, st.zone_id, t, plans.get(t.version) if t.version is not None else None)
        if found is None:
            notes.append(_note(st, "nodes_not_recomputed", tree_id=t.tree_id, tree_version=t.version,
                               reason="its plan is gone or does not give the top read"))
            return None
        reach[t.tree_id] = frozenset(found)
        nodes.update((name, tuple(rs)) for name, rs in found.items())
    return Census(record_count, reach, nodes)


def _room(zone: layout.EndpointZone, doomed: list, protected: set, quota: int, census: Census) -> list:
    """Guarded: make room now for a plan like the last one (the active tree's own records and the
    nodes only it reaches), deleting the oldest trees kept beyond the protected ones, so the next
    build fits without a whole listing of its own (near the quota fewer than keep_plans older
    trees are kept, as the build's own trim would do)."""
    active = zone.active_tree
    if active is None:
        return doomed
    others = set().union(*(n for tid, n in census.reach.items() if tid != active.tree_id))
    margin = len(active.records) + sum(len(census.nodes.get(n, ())) for n in census.reach.get(active.tree_id, ()) if n not in others)
    kept = sorted((t for t in zone.trees if t not in doomed and t.tree_id not in protected and t.version is not None),
                  key=lambda t: (t.version, t.tree_id))
    doomed = list(doomed)
    while kept:
        if census.record_count - census.freed(doomed) + margin <= quota:
            break
        doomed.append(kept.pop(0))
    return doomed


def _orphans(zone: layout.EndpointZone, doomed: set[str], wanted: tuple[RecordSet, ...]) -> list[RecordSet]:
    """Shared records (nodes, leaves) no tree but the doomed reaches and the tree being built does not need."""
    return census_of(zone).only(doomed, {r.name for r in wanted})


def _parents_first(records: list[RecordSet]) -> list[RecordSet]:
    """Nodes to delete, each node's records together and every node before the nodes it names:
    a clean-up cut short between batches never leaves a node whose subtree is not whole (the
    targeted reads rely on it, see layout.read_endpoint)."""
    by_name: dict[str, list[RecordSet]] = {}
    for r in records:
        by_name.setdefault(r.name, []).append(r)
    named = {n: {r.alias.dns_name for r in rs if r.alias is not None and r.alias.dns_name in by_name} for n, rs in by_name.items()}
    parents = {n: 0 for n in by_name}
    for children in named.values():
        for c in children:
            parents[c] += 1
    out: list[RecordSet] = []
    ready = sorted(n for n, k in parents.items() if k == 0)
    while ready:
        n = ready.pop(0)
        out += by_name.pop(n)
        for c in sorted(named[n]):
            parents[c] -= 1
            if parents[c] == 0:
                ready.append(c)
    return out + [r for rs in by_name.values() for r in rs]  # (content names make no cycle)


def _cleanup_info(changes: tuple[Change, ...], endpoint: str, versions: dict[str, int | None]) -> tuple[tuple[str, Any], ...]:
    trees = sorted({tid for c in changes if (tid := layout.role_of(c.record.name, endpoint)[1]) is not None})
    leaves = sorted({c.record.name for c in changes if layout.role_of(c.record.name, endpoint)[0] in ("leaf", "node")})
    return (("trees", tuple(trees)), ("tree_versions", tuple(versions.get(t) for t in trees)), ("leaves", len(leaves)))


def _finish_cleanup(st: EndpointState) -> EndpointState:
    return replace(st, task=Task.IDLE, phase=Phase.PLAN, plan=None, tree=None, unit=(), acquired=False, checked=False, salvage=False,
                   sweep=False, full=False)


# --- batches --------------------------------------------------------------------------------


def chunk_batches(
    s: CoreSettings, st: EndpointState, purpose: Purpose, changes: tuple[Change, ...], cas: RecordSet | None, info
) -> tuple[Planned, ...]:
    """Split changes, in order, into batches that fit Route 53's limits with the preamble added.

    The changes of one name (a node's members, a top) stay in one batch whenever they fit one:
    a node is written, and deleted, whole (the targeted reads rely on it, see layout.read_endpoint)."""
    if not changes:
        return ()
    # Room for the preamble and the compare-and-swap, sized for the largest values they can hold
    # (the lock seen at listing may be anyone's; later batches delete our own).
    lock_worst = _lock_record(s, st, layout.LockValue(s.enactor_id, 10**11, 10**15))
    reserve = [Change("DELETE", st.lock or lock_worst), Change("DELETE", lock_worst), Change("CREATE", lock_worst)]
    if s.version_guard:
        worst = layout.AppliedValue(10**15, layout.TREE_PREFIX + "f" * 61).render()
        applied_worst = RecordSet(layout.applied_name(st.endpoint), "TXT", ttl=s.record_ttl, values=(worst,))
        reserve += [Change("DELETE", st.applied or applied_worst), Change("DELETE", applied_worst), Change("CREATE", cas or applied_worst)]
    base_n, base_c = batch_size(reserve)
    max_n, max_c = s.limits.max_records_per_batch, s.limits.max_value_chars_per_batch
    out: list[Planned] = []
    current: list[Change] = []
    n, c = base_n, base_c
    groups: list[list[Change]] = []
    for change in changes:
        if groups and groups[-1][0].record.name == change.record.name:
            groups[-1].append(change)
        else:
            groups.append([change])
    for group in groups:
        gn, gc = batch_size(group)
        parts = [group] if base_n + gn <= max_n and base_c + gc <= max_c else [[change] for change in group]
        for part in parts:
            dn, dc = batch_size(part)
            if base_n + dn > max_n or base_c + dc > max_c:
                raise ValueError(f"{part[0].record.name} {part[0].record.type} alone exceeds a change batch's limits")
            if current and (n + dn > max_n or c + dc > max_c):
                out.append(Planned(purpose, tuple(current), cas, info))
                current, n, c = [], base_n, base_c
            current += part
            n, c = n + dn, c + dc
    out.append(Planned(purpose, tuple(current), cas, info))
    return tuple(out)


def batch_size(changes) -> tuple[int, int]:
    """(ResourceRecord elements, value characters) as Route 53 counts them: UPSERT twice, an alias
    as one element of its target name's length (the emulator's engine counts the same way)."""
    n = c = 0
    for change in changes:
        r = change.record
        dn, dc = (1, len(r.alias.dns_name)) if r.alias is not None else (len(r.values), sum(len(v) for v in r.values))
        k = 2 if change.action == "UPSERT" else 1
        n, c = n + dn * k, c + dc * k
    return n, c


def _lock_record(s: CoreSettings, st: EndpointState, value: layout.LockValue) -> RecordSet:
    return RecordSet(layout.lock_name(st.endpoint), "TXT", ttl=s.record_ttl, values=(value.render(),))


def next_batch(s: CoreSettings, st: EndpointState, now: float, notes: list[Note]) -> EndpointState:
    """Submit the unit's next batch (after the INSYNC wait for a flip), or finish the unit."""
    if not st.unit:
        return _unit_done(s, st, notes)
    planned = st.unit[0]
    if planned.purpose in ("flip", "heal") and st.unsynced:
        return replace(st, phase=Phase.INSYNC, inflight=None)
    seen = st.lock_value
    counter = (seen.counter if seen else 0) + 1
    last = len(st.unit) == 1
    lock = _lock_record(s, st, layout.LockValue(s.enactor_id, int(now) if last else int(now) + s.lock_ttl_s, counter))
    changes = ((Change("DELETE", st.lock),) if st.lock is not None else ()) + (Change("CREATE", lock),)
    changes += planned.changes
    if planned.cas is not None:
        changes += ((Change("DELETE", st.applied),) if st.applied is not None else ()) + (Change("CREATE", planned.cas),)
    assert st.plan is not None
    batch = SubmitBatch(changes, f"{s.enactor_id}@{counter}", planned.purpose, st.plan.version, last)
    return replace(st, phase=Phase.BATCH, inflight=batch)


def _unit_done(s: CoreSettings, st: EndpointState, notes: list[Note]) -> EndpointState:
    if st.task is Task.WORK:
        # The flip's own unit ends here; the clean-up takes the lock again (the window of October).
        assert st.plan is not None
        st = replace(st, task=Task.CLEANUP, acquired=False, full=False, crowded=False, done_version=max(st.done_version, st.plan.version))
        return _begin(s, st)
    return _finish_cleanup(st)


def _on_accepted(s: CoreSettings, st: EndpointState, obs: BatchAccepted, notes: list[Note]) -> EndpointState:
    batch, planned = st.inflight, st.unit[0]
    assert batch is not None
    lock = next(c.record for c in batch.changes if c.action == "CREATE" and c.record.name == layout.lock_name(st.endpoint))
    applied = next(
        (c.record for c in batch.changes if c.action == "CREATE" and c.record.name == layout.applied_name(st.endpoint)), st.applied
    )
    st = replace(st, lock=lock, applied=applied, losses=0, inflight=None, unit=st.unit[1:])
    value = st.lock_value
    if not st.acquired:
        notes.append(_note(st, "lock_acquired", batch_id=batch.batch_id, holder=s.enactor_id, counter=value.counter if value else None))
        st = replace(st, acquired=True)
    info = dict(planned.info)
    if planned.purpose == "build":
        if obs.change_id:
            st = replace(st, unsynced=(*st.unsynced, obs.change_id))
        if not st.unit or st.unit[0].purpose != "build":
            notes.append(_note(st, "tree_built", batch_id=batch.batch_id, tree_id=info.get("tree_id")))
    elif planned.purpose in ("flip", "heal"):
        assert st.plan is not None
        st = replace(st, flip_failures=0, applied_version=st.plan.version)
        notes.append(_note(st, "flipped", batch_id=batch.batch_id, **info))
    elif planned.changes:
        notes.append(_note(st, "cleanup_deleted", batch_id=batch.batch_id, records=len(planned.changes), **info))
    if batch.releases_lock:
        notes.append(_note(st, "lock_released", batch_id=batch.batch_id, holder=s.enactor_id))
    return next_batch(s, st, obs.now, notes)


def _on_rejected(s: CoreSettings, st: EndpointState, obs: BatchRejected, notes: list[Note]) -> EndpointState:
    batch, planned = st.inflight, st.unit[0]
    assert batch is not None and st.plan is not None
    cause = rejection_cause(st.endpoint, obs.messages)
    refusal = None if cause != "other" else refusal_reason(obs.error_code, obs.messages)
    st = replace(st, inflight=None, unit=(), acquired=False)
    fields = {"batch_id": batch.batch_id, "cause": cause, "error_code": obs.error_code, "messages": obs.messages[:3]}
    if planned.purpose == "cleanup" and st.task is Task.CLEANUP:
        notes.append(_note(st, "cleanup_aborted", **fields))
        if cause == "lock":
            return _backoff(s, st, "lock_lost", notes)
        if s.version_guard and not st.full:
            # Planned without a listing (nodes recomputed from their plans, `tree_nodes`): what
            # Route 53 refused (a node damaged by hand) is seen by a listing of the whole zone, once.
            return _begin(s, replace(st, full=True))
        return _finish_cleanup(st)
    # Guarded: whatever went wrong, look for a newer plan before trying again.
    st = replace(st, reread=s.version_guard)
    if cause == "lock":
        notes.append(_note(st, "lock_lost", **fields))
        return _backoff(s, st, "lock_lost", notes)
    if refusal == "zone_quota" and not st.full and s.version_guard:
        # A unit planned on targeted reads does not know the zone's size: a whole listing decides
        # whether older trees make room or the plan is too large (`_work`).
        refusal = None
    if refusal is not None:
        return refuse_plan(s, st, "plan_refused_by_route53", refusal, notes, **fields)
    # Whatever the targeted reads missed (damage below the tops, the zone's size), the next
    # unit lists the whole zone.
    st = replace(st, full=s.version_guard, flip_failures=min(st.flip_failures + 1, STUCK_AFTER))
    if planned.purpose in ("flip", "heal"):
        notes.append(_note(st, "flip_failed", stuck=st.stuck, **fields))
        return _backoff(s, st, "flip_failed", notes)
    notes.append(_note(st, "build_failed", stuck=st.stuck, **fields))
    return _backoff(s, st, "build_failed", notes)


def rejection_cause(endpoint: str, messages: tuple[str, ...]) -> str:
    """Which record a rejection is about: "lock" (someone else wrote the lock), "applied" (the
    guard's compare-and-swap failed) or "other" (e.g. a rollback to a missing tree)."""
    text = " ".join(messages)
    if f"name='{layout.lock_name(endpoint)}'" in text:
        return "lock"
    if f"name='{layout.applied_name(endpoint)}'" in text:
        return "applied"
    return "other"


# Route 53's words for a batch it refuses for its content, whatever the zone holds: trying the
# same plan again can only fail again. (A missing alias target, a record that already exists or
# is not found are about the zone as it is now: another listing decides.)
_PERMANENT = (
    ("MAX_RRSETS_BY_ZONE", "zone_quota"),
    ("Duplicate Resource Record", "duplicate_address"),
    ("LabelTooLong", "label_too_long"),
    ("DomainNameTooLong", "name_too_long"),
    ("Invalid Resource Record", "invalid_value"),
    ("FATAL problem", "invalid_name"),
    ("Exceeded limit on number of weighted", "weighted_limit"),
    ("limit of", "batch_limit"),
    ("character limit", "batch_limit"),
)


def refusal_reason(error_code: str, messages: tuple[str, ...]) -> str | None:
    """Why Route 53 permanently refuses a batch of this plan's content, or None (try again)."""
    text = " ".join(messages)
    for needle, reason in _PERMANENT:
        if needle in text:
            return reason
    return "invalid_input" if error_code == "InvalidInput" else None


def refuse_plan(s: CoreSettings, st: EndpointState, event: str, reason: str, notes: list[Note], **fields: Any) -> EndpointState:
    """Mark the plan in hand as refused for this endpoint (never retried; the last good tree
    keeps serving), then clean up whatever its build left behind and go on to newer plans."""
    assert st.plan is not None
    st = replace(st, refused_version=max(st.refused_version, st.plan.version), reread=False)
    notes.append(_note(st, event, reason=reason, **fields))
    return replace(st, task=Task.CLEANUP, phase=Phase.LIST, unit=(), acquired=False, salvage=True, tree=None, full=False, crowded=False)


def _on_insync(s: CoreSettings, st: EndpointState, obs: Insync, notes: list[Note]) -> EndpointState:
    if obs.ok:
        return next_batch(s, replace(st, unsynced=()), obs.now, notes)
    notes.append(_note(st, "flip_deferred", reason="tree not INSYNC", changes=len(st.unsynced)))
    return _backoff(s, replace(st, unit=(), acquired=False), "not_insync", notes)


# --- waiting, failures, the kill switch -------------------------------------------------------


def _on_woke(s: CoreSettings, st: EndpointState, obs: Woke, notes: list[Note]) -> EndpointState:
    if st.task is Task.IDLE and st.nap is not None and st.nap.reason == "poll" and s.version_guard and s.check_interval_s > 0:
        if st.last_check == 0:
            st = replace(st, last_check=obs.now)  # the first poll starts the check's clock
        elif obs.now - st.last_check >= s.check_interval_s:
            return replace(st, nap=None, phase=Phase.CHECK, last_check=obs.now)
    st = replace(st, nap=None)
    if st.task is Task.IDLE or (st.task is Task.WORK and st.reread):
        return replace(st, phase=Phase.PLAN)
    return _begin(s, st)


# --- the light check: the heads, read while idle ------------------------------------------------


def _check_request(st: EndpointState) -> ReadRecords:
    """The heads page: the root, the rollback, every tree's top and metadata (one call)."""
    return ReadRecords(((layout.root_name(st.endpoint), "A", HEADS_PAGE),))


def _on_read(s: CoreSettings, st: EndpointState, obs: RecordsRead, notes: list[Note]) -> EndpointState:
    if st.phase is Phase.READ:
        return _on_unit_read(s, st, obs, notes)
    return _on_checked(s, st, obs, notes)


def _on_checked(s: CoreSettings, st: EndpointState, obs: RecordsRead, notes: list[Note]) -> EndpointState:
    """A healthy zone goes on polling; a damaged one (root gone, or naming a tree that is not
    there or not whole) makes the machine take the newest plan again, which rebuilds or heals it."""
    root = layout.root_name(st.endpoint)
    heads = _heads(st.endpoint, obs.records)
    if heads is None:
        return replace(st, phase=Phase.PLAN)  # more heads than a page: the next plan's listing judges
    zone = layout.read_endpoint(st.endpoint, heads, heads_only=True)
    aliases = [r for r in zone.roots if r.alias is not None]
    if not aliases:
        problem = "the root has no alias"
    else:
        missing = [r.alias.dns_name for r in aliases if (t := zone.tree(layout.tree_id_of(r.alias.dns_name, st.endpoint))) is None or not t.complete]
        # Every type the tree's metadata serves must have its root (a hand deletion loses one).
        served = {r.type for r in aliases}
        for tid in {layout.tree_id_of(r.alias.dns_name, st.endpoint) for r in aliases}:
            t = zone.tree(tid)
            if t is not None and t.meta is not None:
                missing += [f"{root} {rt}" for rt in t.meta.record_types if rt not in served]
        if not missing:
            return replace(st, phase=Phase.PLAN)
        problem = f"the root names records that are missing: {', '.join(sorted(set(missing))[:3])}"
    if st.done_version > 0:
        notes.append(_note(st, "zone_damaged", problem=problem, done_version=st.done_version))
    # Forget what was done: the newest plan is read and worked again (its reads decide).
    return replace(st, phase=Phase.PLAN, done_version=0)


def _on_failed(s: CoreSettings, st: EndpointState, obs: RequestFailed, notes: list[Note]) -> EndpointState:
    if st.phase is Phase.SLEEP:
        raise ProtocolError("RequestFailed does not answer Sleep")
    notes.append(_note(st, "request_failed", request=st.phase.value, error=obs.error))
    # After a lost SubmitBatch the outcome is unknown: the unit ends and the next listing decides.
    return _backoff(s, replace(st, inflight=None, unit=(), acquired=False, read="", heads=(), known=(), cursor=None, sized=None, plans=()),
                    "request_failed", notes)


def _on_frozen(s: CoreSettings, st: EndpointState, obs: Frozen, notes: list[Note]) -> EndpointState:
    if not st.frozen:
        notes.append(_note(st, "frozen", reason=obs.reason))
    st = replace(st, frozen=True, task=Task.IDLE, plan=None, tree=None, unit=(), inflight=None, acquired=False, checked=False)
    return replace(st, phase=Phase.SLEEP, nap=Sleep(s.poll_interval_s, False, "frozen"))


def _poll(s: CoreSettings, st: EndpointState) -> EndpointState:
    return replace(st, phase=Phase.SLEEP, nap=Sleep(s.poll_interval_s, False, "poll"))


def _backoff(s: CoreSettings, st: EndpointState, reason: str, notes: list[Note]) -> EndpointState:
    losses = min(st.losses + 1, s.max_losses)
    seconds = min(s.backoff_cap_s, s.backoff_base_s * 2 ** (losses - 1))
    st = replace(st, losses=losses, phase=Phase.SLEEP, nap=Sleep(seconds, True, reason))
    notes.append(_note(st, "backoff", max_seconds=seconds, attempt=losses, reason=reason))
    return st


def _note(st: EndpointState, event: str, **fields: Any) -> Note:
    base = {"endpoint": st.endpoint.rstrip("."), "plan_version": st.plan.version if st.plan else None,
            "applied_version": st.applied_version}
    return Note(event, tuple({**base, **fields}.items()))


_ANSWERS: dict[Phase, type] = {
    Phase.PLAN: PlanRead,
    Phase.LIST: RecordsListed,
    Phase.BATCH: BatchAccepted | BatchRejected,
    Phase.INSYNC: Insync,
    Phase.SLEEP: Woke,
    Phase.CHECK: RecordsRead,
    Phase.READ: RecordsRead,
    Phase.PLANS: PlansRead,
}
_HANDLERS = {
    PlanRead: _on_plan,
    RecordsListed: _on_listed,
    BatchAccepted: _on_accepted,
    BatchRejected: _on_rejected,
    Insync: _on_insync,
    Woke: _on_woke,
    RecordsRead: _on_read,
    PlansRead: _on_plans_read,
}


# --- reading the outcome from a zone (for the runner's status and the model checker) ----------


def is_flip(request: Request) -> bool:
    return isinstance(request, SubmitBatch) and request.purpose in ("flip", "heal")


def is_cleanup(request: Request) -> bool:
    return isinstance(request, SubmitBatch) and request.purpose == "cleanup"
