"""The world the checker explores: enactor machines, in-memory hosted zones, the planner's plans.

A global state is a small tuple of integers: how many plans the planner has published, how many
lease expiries and injected lock losses have been spent, which endpoints have seen a flip, and
one interned id per hosted zone and per machine (one machine per enactor and endpoint). The
machines are `EndpointState` values of the protocol core, the zones are the Route 53 engine's
`IndexedZone`s; both are interned once, so a global state hashes and compares as plain ints.

A transition is one of:
- the planner publishes the next plan (built by planner/planning.py from a small fleet);
- a lease expiry (bounded: `Bounds.lease_expiries`), see Time below;
- one machine's outstanding request is carried out and its answer fed to the core's `step`:
  ReadNewestPlan reads the newest published plan, ListRecords lists the zone in Route 53's
  order, SubmitBatch is applied by the engine (accepted or rejected as Route 53 would). A batch
  that opens a unit may instead lose its lock attempt, as if another writer had just taken the
  lock (bounded: `Bounds.lock_losses`; the runner's `lose_lock_attempts` fault).

Time. The clock stands still at 2025-10-20T06:48:00Z. Only differences of time steer the core
(a lock is expired when its expiry is not after now; a new lease runs until now + TTL), so "the
clock moves one lock TTL on" is modelled as "every lease, in Route 53 and in every machine's
memory, ages by one TTL": a held lease expires, a released one already has (a released lock's
expiry is "now"). Tree metadata keeps its creation time: content only, it steers nothing.

Three exact reductions keep the space small (World(reduce=False) turns them off; the tests show
they change no verdict and no reachable zone):
- Sleeps are abstract: a sleeping machine may wake at any later step, so backoff lengths and
  delays are every interleaving rather than numbers. Waking is invisible to others and commutes
  with every step, and an awake machine may still wait any number of steps before it acts, so
  a machine wakes in the same transition that put it to sleep. The core runs with one backoff
  length (base = cap): its loss counter then changes nothing but log notes.
- A machine waiting for a plan or a listing forgets what the next listing overwrites before
  anything reads it (`forget_dead`).
- A batch whose lock preamble no longer matches the zone is rejected in the transition that
  changed the lock (`World._doomed`): it could only ever be rejected.
A step of a counterexample is therefore one request of one enactor, its sleep included, plus
the rejections of batches it doomed.

Tree ids. The core accepts the caller's fresh tree id; the checker names a tree
"t-<enactor letter>p<plan version>" (one tree per machine and plan; a numbered suffix if that
name is taken), readable in traces and renamed with the enactor under symmetry (symmetry.py).
"""

from __future__ import annotations

import dataclasses
import re
import types
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from enactor import layout
from enactor import protocol as default_core
from planner.fleet import Fleet, validate_fleet
from planner.planning import build_plan
from services.plan.model import Plan, checksum
from services.route53.engine import IndexedZone, Route53Error, apply_batch, same_record_set
from services.route53.listing import SortedRecords, sort_key
from services.route53.records import AliasTarget, Change, RecordSet, Zone, normalise_name

T0 = 1_760_942_880  # 2025-10-20T06:48:00Z, the clock of the model
PLAN_CREATED_AT = "2025-10-20T06:48:00+00:00"
LOCK_TTL_S = 60
REGION = "us-east-1"
ENDPOINT_NAMES = (
    "dynamodb.us-east-1.api.aws",
    "dynamodb.us-east-1.amazonaws.com",
    "dynamodb-fips.us-east-1.amazonaws.com",
)
AZS = ("use1-az1", "use1-az2", "use1-az4")
MAX_ENACTORS = 26  # one letter each
PREVIOUS_FLEET = "previous-fleet"  # lock holder and tree tag of the damaged start's history
STARTS = ("clean", "damaged", "legacy")
START = "start"  # ("start", i): the legacy start's first step, the zone as legacy run i left it (World.legacy_starts)
MIN_ZONE_QUOTA = 2  # SOA and NS: a new hosted zone's record sets


class BoundsError(ValueError):
    """Bounds the checker cannot run with (the message says which and why)."""


@dataclass(frozen=True, slots=True)
class Bounds:
    """What is explored. The defaults are the small fleet whose whole space the guarded core
    exhausts in well under a minute and which still contains the race of 20 October."""

    guard: bool = True
    enactors: int = 3
    plans: int = 4
    endpoints: int = 1
    lbs: int = 2  # load balancers per endpoint
    keep_plans: int = 2  # the core's clean-up keeps trees of the last keep_plans plans
    lease_expiries: int = 1  # times the clock may jump past every lock lease
    lock_losses: int = 1  # lock attempts that may be lost to an outside writer
    lost_replies: int = 1  # batches Route 53 applies but whose reply never reaches the enactor
    failed_requests: int = 0  # requests that fail before Route 53 (or S3) carries them out
    freezes: int = 0  # plan reads or batches answered by the freeze switch (Frozen): nothing is carried out
    invalid_plans: int = 0  # 1: the planner may once publish an object that fails the schema (a valid plan follows)
    # 0: propagation is instant (no change id; the core does not wait). N >= 1: every build batch
    # returns a change id and the flip waits for INSYNC, a step of its own (others act meanwhile),
    # and up to N of those waits end with the change still PENDING (the runner's wait gives up).
    insync_waits: int = 0
    # 1: plan 2 carries a poison load balancer, one that lists the same IPv4 address twice (the
    # plan schema allows it, the planner's fleet check would not): Route 53 refuses every build of
    # plan 2 for its content (Duplicate Resource Record: plan_refused_by_route53, never retried).
    refused_plans: int = 0
    # N: the hosted zone's record-set quota (Route 53's MAX_RRSETS_BY_ZONE, default 10,000), as
    # GetHostedZoneLimit reports it to the core and as the engine enforces it. A small N makes the
    # core trim retained trees to make room (guarded) or refuse a plan whose tree cannot fit
    # (plan_too_large, never retried), and Route 53 refuse a build the core planned on targeted
    # reads without knowing the zone's size (MAX_RRSETS_BY_ZONE). None: the default quota.
    zone_quota: int | None = None
    start: str = "clean"  # "damaged": the root's tree was deleted under it (October's end state)
    max_depth: int | None = None  # None: until the space is exhausted
    symmetry: bool = True
    por: bool = True  # partial-order reduction (explore.py): a plan read with every plan out goes first, alone
    subsume: bool = True  # skip a state that differs from a visited one only by more budget spent (explore.py)
    decompose: bool = True  # 2+ endpoints: check each endpoint's component alone (explore.py, Decomposition)

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.enactors <= MAX_ENACTORS:
            problems.append(f"--enactors must be 1..{MAX_ENACTORS}")
        if self.plans < 1:
            problems.append("--plans must be at least 1")
        if self.start == "legacy" and self.endpoints != 1:
            problems.append("--start legacy needs --endpoints 1 (its starts are the zones one endpoint's legacy runs reach)")
        if self.start == "damaged" and self.plans < 2:
            problems.append("the damaged start needs --plans >= 2 (a rollback tree and the lost one)")
        if not 1 <= self.endpoints <= 9:
            problems.append("--endpoints must be 1..9")
        if not 1 <= self.lbs <= 50:
            problems.append("--lbs must be 1..50")
        if self.keep_plans < 1:
            problems.append("--keep-plans must be at least 1")
        if not 0 <= self.invalid_plans <= 1:
            problems.append("--invalid-plans must be 0 or 1")
        if not 0 <= self.refused_plans <= 1:
            problems.append("--refused-plans must be 0 or 1")
        if self.refused_plans and self.plans < 2:
            problems.append("--refused-plans needs --plans >= 2 (plan 2 is the one Route 53 refuses)")
        if self.zone_quota is not None and self.zone_quota < MIN_ZONE_QUOTA:
            problems.append(f"--zone-quota must be at least {MIN_ZONE_QUOTA} (a hosted zone starts with its SOA and NS record sets)")
        if self.invalid_plans and self.plans < 2:
            problems.append("--invalid-plans needs --plans >= 2 (the invalid object comes between two valid plans)")
        if min(self.lease_expiries, self.lock_losses, self.lost_replies, self.failed_requests, self.freezes, self.insync_waits) < 0:
            problems.append("--lease-expiries, --lock-losses, --lost-replies, --failed-requests, --freezes and --insync-waits must be >= 0")
        if self.start not in STARTS:
            problems.append(f"--start must be one of {', '.join(STARTS)}")
        if self.max_depth is not None and self.max_depth < 1:
            problems.append("--max-depth must be at least 1")
        if problems:
            raise BoundsError("; ".join(problems))

    @property
    def mode(self) -> str:
        return "guarded" if self.guard else "legacy"


class State(NamedTuple):
    """One global state; every field is an int or a tuple of interned ids, so it hashes fast."""

    published: int  # plans 1..published are in the store
    expiries: int  # lease expiries spent
    losses: int  # injected lock losses spent
    applied: tuple[int, ...]  # per endpoint: plan of the last flip Route 53 accepted in this run (0: none)
    lost: int  # lost replies spent
    failed: int  # failed requests spent
    zones: tuple[int, ...]  # interned zone per endpoint
    machines: tuple[int, ...]  # interned machine per (enactor, endpoint), enactor-major
    frozen: int = 0  # freeze-switch answers spent
    invalid: int = 0  # the object that fails the schema: 0 not published, 1 the newest in the store, 2 superseded
    pending: int = 0  # INSYNC waits that ended with the change still PENDING
    pre: int = 0  # 1: the legacy start before its first step, which picks the zone legacy mode left (START)


# Transition labels: ("publish",), ("expire",), ("step", machine index, "" | "lose_lock" | "lost_reply" | "fail" | "freeze" | "pending").
Label = tuple
PUBLISH: Label = ("publish",)
PUBLISH_INVALID: Label = ("publish", "invalid")  # the planner's store gets an object that fails the schema
INVALID_PLAN_KEY = "plans/invalid.json"
EXPIRE: Label = ("expire",)
LOSE_LOCK = "lose_lock"
LOST_REPLY = "lost_reply"  # Route 53 applies the batch (or rejects it); the reply is lost: RequestFailed
FAIL = "fail"  # the request fails before anything is carried out: RequestFailed
FREEZE = "freeze"  # the freeze switch is on when the plan is read or the batch is about to go: Frozen
PENDING = "pending"  # the INSYNC wait ends with the tree's change still PENDING: Insync(ok=False)
CHOICES = ("", LOSE_LOCK, LOST_REPLY, FAIL, FREEZE, PENDING)


@dataclass(frozen=True, slots=True)
class Move:
    """What one machine step did: the memoised result of carrying out a request and `step`."""

    machine: int  # interned machine state after the step
    zone: int | None  # interned zone after an accepted batch, else None
    request: Any
    observation: Any
    notes: tuple
    outcome: str  # "accepted" | "rejected" | "lost_lock" | "lost_reply" | "failed" | "raised" | "" (not a batch)
    flip: bool  # the request was a flip (or heal) batch
    error: tuple[str, str] | None = None  # (CoreRaised | EngineRaised | LockExclusion, what happened)


@dataclass
class Interner:
    """Values <-> small ints; `key` decides equality (the value itself unless given)."""

    values: list = field(default_factory=list)
    index: dict = field(default_factory=dict)

    def add(self, value: Any, key: Any = None) -> int:
        key = value if key is None else key
        i = self.index.get(key)
        if i is None:
            i = len(self.values)
            self.index[key] = i
            self.values.append(value)
        return i


def enactor_id(i: int) -> str:
    return f"enactor-{chr(ord('a') + i)}"


def endpoint_names(n: int) -> tuple[str, ...]:
    extra = tuple(f"dynamodb-cell{i}.us-east-1.api.aws" for i in range(1, n - len(ENDPOINT_NAMES) + 1))
    return (ENDPOINT_NAMES + extra)[:n]


def model_fleet(bounds: Bounds, version: int = 1) -> Fleet:
    """The planner's fleet for plan `version`: `lbs` load balancers per endpoint over three AZs,
    serving A and AAAA, changed from version to version as a real fleet changes (PLAN_CHANGES)."""
    names = endpoint_names(bounds.endpoints)
    lbs = []
    for j, name in enumerate(names):
        ids = list(range(bounds.lbs))
        if version >= 4:
            ids.append(bounds.lbs)  # a load balancer is added
        if version >= 5 and bounds.lbs >= 2:
            ids.remove(1)  # and one is retired
        for i in ids:
            moved = version >= 2 and i == 0  # re-addressed (a replaced load balancer)
            lbs.append(
                {
                    "id": f"lb{j}-{i}",
                    "az": AZS[i % len(AZS)],
                    "endpoint": name,
                    "ipv4": [f"198.51.100.{1 + j * 50}" if moved else f"192.0.2.{1 + j * 50 + i}"],
                    "ipv6": [f"2001:db8:1:{j}::1" if moved else f"2001:db8:0:{j}::{i + 1:x}"],
                    "capacity": 1000,
                }
            )
    types = ["A"] if version == 3 else ["A", "AAAA"]  # plan 3 drops AAAA, plan 4 brings it back
    return validate_fleet(
        {
            "region": REGION,
            "azs": list(AZS),
            "drained_azs": [],
            "endpoints": [{"name": n, "record_types": types} for n in names],
            "load_balancers": lbs,
        },
        "model fleet",
    )


# What each plan changes (documented here because traces refer to it).
PLAN_CHANGES = {
    1: "A and AAAA over the first load balancers",
    2: "lb*-0 re-addressed (with --refused-plans 1, its IPv4 address listed twice: Route 53 refuses the plan)",
    3: "AAAA dropped",
    4: "AAAA back, a load balancer added",
    5: "lb*-1 retired",
}


def model_plans(bounds: Bounds) -> tuple[Plan, ...]:
    """Plans 1..plans as the planner builds them from `model_fleet(bounds, v)`; traffic drift
    moves the weights every version as well, so consecutive plans always differ."""
    out = []
    for v in range(1, bounds.plans + 1):
        fleet = model_fleet(bounds, v)
        drift = {lb.id: 0.5 + 0.5 * ((v + i) % 2) for i, lb in enumerate(fleet.load_balancers)}
        plan = build_plan(fleet, v, reason=f"model plan {v}", lane="slow", drift=drift, created_at=PLAN_CREATED_AT)
        out.append(poisoned(plan) if bounds.refused_plans and v == POISON_PLAN else plan)
    return tuple(out)


POISON_PLAN = 2  # --refused-plans 1: the plan Route 53 refuses


def poisoned(plan: Plan) -> Plan:
    """`plan` with its first load balancer's IPv4 address listed twice: valid in the plan schema,
    but the tree's record set for that load balancer has a duplicate value, which Route 53 refuses
    ("Duplicate Resource Record"), so every batch that builds the plan's tree is rejected."""
    body = plan.body()
    for ep in body["endpoints"]:
        lb = ep["targets"][0]
        lb["ipv4"] = [lb["ipv4"][0], lb["ipv4"][0]]
    return Plan.model_validate({**body, "sha256": checksum(body)})


def empty_zone(name: str, zone_id: str) -> Zone:
    """A new hosted zone as Route 53 creates it: SOA and NS at the apex."""
    soa = RecordSet(name, "SOA", ttl=900, values=("ns-1.awsdns-1.com. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400",))
    ns = RecordSet(name, "NS", ttl=172800, values=("ns-1.awsdns-1.com.",))
    return Zone.of(name, [soa, ns], zone_id=zone_id)


def damage_batches(core, settings, endpoint: str, zone_id: str, plans: tuple[Plan, ...]) -> list[tuple[Change, ...]]:
    """The batches that leave a zone as 20 October left it: trees of the last two plans built by
    a previous fleet, the root on the newest one, the rollback on the one before, the applied
    record naming the newest; then the newest tree deleted under the root. Route 53 accepts no
    alias to a missing target, so the damage takes two batches, as it did on the day."""
    ep = normalise_name(endpoint)
    older, newest = plans[-2], plans[-1]
    trees = []
    for plan in (older, newest):
        tree = core.TreeInHand(f"t-0p{plan.version}", plan.version, T0)
        trees.append((tree, core.tree_records(settings, ep, zone_id, plan.endpoint(ep), tree)))
    build: dict[tuple, RecordSet] = {}
    for _, records in trees:
        for r in records:
            build.setdefault(r.key, r)
    root_tree, rollback_tree = trees[1][0], trees[0][0]
    build_changes = [Change("CREATE", r) for r in build.values()]
    for rtype in sorted(newest.endpoint(ep).record_types):
        build_changes.append(Change("CREATE", RecordSet(layout.root_name(ep), rtype, alias=AliasTarget(layout.tree_name(ep, root_tree.tree_id), zone_id))))
        if rtype not in older.endpoint(ep).record_types:
            continue  # the older plan had no such records: no rollback for this type
        build_changes.append(
            Change("CREATE", RecordSet(layout.rollback_name(ep), rtype, alias=AliasTarget(layout.tree_name(ep, rollback_tree.tree_id), zone_id)))
        )
    applied = layout.AppliedValue(newest.version, root_tree.tree_id)
    lock = layout.LockValue(PREVIOUS_FLEET, T0, 7)
    build_changes.append(Change("CREATE", RecordSet(layout.applied_name(ep), "TXT", ttl=settings.record_ttl, values=(applied.render(),))))
    build_changes.append(Change("CREATE", RecordSet(layout.lock_name(ep), "TXT", ttl=settings.record_ttl, values=(lock.render(),))))
    leaves = {r.key for r in trees[1][1] if layout.role_of(r.name, ep)[0] == "leaf"}
    delete = tuple(Change("DELETE", r) for r in trees[1][1] if r.key not in leaves)
    return [tuple(build_changes), delete]


_FIELDS: dict[type, tuple[str, ...] | None] = {}


def _fields_of(t: type) -> tuple[str, ...] | None:
    names = _FIELDS.get(t, ())
    if names == ():
        names = tuple(f.name for f in dataclasses.fields(t)) if dataclasses.is_dataclass(t) else None
        _FIELDS[t] = names
    return names


def rewrite_strings(obj: Any, fn: Callable[[str], str]) -> Any:
    """`obj` (a frozen value of the core or the engine) with every string inside rewritten by `fn`.

    Walks dataclasses and tuples generically, so a field the core adds later is covered too;
    returns the same object when nothing changed (cheap identity checks, shared memory).
    """
    t = type(obj)
    if t is str:
        return fn(obj)
    if t is tuple:
        items = tuple(rewrite_strings(x, fn) for x in obj)
        return obj if all(a is b for a, b in zip(items, obj, strict=True)) else items
    names = _fields_of(t)
    if not names:
        return obj  # numbers, enums, pydantic plans (no enactor or time inside), None
    values = [getattr(obj, n) for n in names]
    new = [rewrite_strings(v, fn) for v in values]
    if all(a is b for a, b in zip(new, values, strict=True)):
        return obj
    return t(**dict(zip(names, new, strict=True)))


_EXPIRES = re.compile(r"(?<![a-z])expires=(\d+)")


def age_lease(text: str) -> str:
    """A lock value one lease older: its expiry one TTL earlier, but never before the model's
    clock (an expired lease is expired; the counter keeps every lock value distinct)."""
    if "expires=" not in text:
        return text
    return _EXPIRES.sub(lambda m: f"expires={max(int(m.group(1)) - LOCK_TTL_S, T0)}", text)


def forget_dead(st: Any) -> Any:
    """The machine state with the facts it will re-read before using them set to their defaults.

    Waiting for a plan or for a listing, a machine's last-seen lock and applied records and the
    applied version are overwritten by the next listing before anything reads them (only log
    notes show them), and with one backoff length the loss counter changes nothing but notes.
    Machines that differ only there behave alike, so they are one state. The same for the light
    check's clock: a machine that never polled (last_check 0) starts it at its first poll, at the
    model's standing clock T0, and one that has polled compares T0 - T0 with the check interval:
    both go on as before and end with last_check T0 (so the light check never runs in this model).
    The tests check that exploring without this gives the same verdicts and reachable zones.
    """
    if st.last_check == 0:
        st = replace(st, last_check=float(T0))
    if (st.phase in ("plan", "list", "check") or (st.phase == "read" and st.read == "heads")) and (st.lock is not None or st.applied is not None or st.applied_version or st.losses):
        return replace(st, lock=None, applied=None, applied_version=0, losses=0)
    return st


class World:
    """Transitions of the global state for one core module and one set of bounds.

    `core` is the protocol module to check (enactor.protocol by default; tests pass mutated
    copies). Everything the core touches goes through `core.<name>`, so a copy's classes are used
    throughout. Results of machine steps, listings, batches and invariants are memoised: the
    core and the engine are pure, so the same inputs give the same outputs.
    """

    def __init__(self, bounds: Bounds, core: types.ModuleType = default_core, reduce: bool = True, ignore=(),
                 namespace: tuple[tuple[str, ...], tuple[str, ...], tuple[Plan, ...]] | None = None, endpoint: int | None = None):
        self.bounds = bounds
        # endpoint=j: endpoint j of the bounds alone, with its name, zone id and plans as in the whole
        # world, and a lease expiry allowed whether or not its own lock is held (another endpoint's
        # may be): one component of the per-endpoint decomposition (explore.py, Decomposition).
        if endpoint is not None and not 0 <= endpoint < bounds.endpoints:
            raise BoundsError(f"endpoint {endpoint} is not one of the bounds' {bounds.endpoints} endpoints")
        self.component = endpoint
        self.core = core
        self.ignore = frozenset(ignore)  # invariants not reported (see invariants.py)
        # reduce=False turns off the three exact reductions (waking at once, forgetting dead facts,
        # rejecting doomed batches at once): slower, for the tests that show they change nothing.
        self.reduce = reduce
        self.n_enactors = bounds.enactors
        self.enactor_ids = tuple(enactor_id(i) for i in range(bounds.enactors))
        # namespace: (endpoint names, hosted zone ids, plans) instead of the regional model's (lab/checker/cells.py's cells).
        names, zone_ids, plans = namespace or (endpoint_names(bounds.endpoints), tuple(f"Z{j + 1:04d}CHECK" for j in range(bounds.endpoints)), None)
        self.endpoints = tuple(normalise_name(n) for n in names)
        self.zone_ids = zone_ids
        if endpoint is not None:
            self.endpoints, self.zone_ids = self.endpoints[endpoint : endpoint + 1], self.zone_ids[endpoint : endpoint + 1]
        self.n_endpoints = len(self.endpoints)
        self.settings = tuple(
            core.CoreSettings(
                eid,
                version_guard=bounds.guard,
                keep_plans=bounds.keep_plans,
                lock_ttl_s=LOCK_TTL_S,
                backoff_base_s=1.0,
                backoff_cap_s=1.0,
            )
            for eid in self.enactor_ids
        )
        self.plans = plans or model_plans(bounds)
        # --zone-quota: what GetHostedZoneLimit tells the core (None: the core uses its settings'
        # default, as the runner does when the limit cannot be read) and what the engine enforces.
        self.quota = bounds.zone_quota
        self.limits = tuple(
            replace(st.limits, max_record_sets_per_zone=bounds.zone_quota) if bounds.zone_quota is not None else st.limits
            for st in self.settings
        )
        self.machines = Interner()
        self.zones = Interner()
        self._moves: dict[tuple, Move] = {}
        self._listings: dict[int, tuple[RecordSet, ...]] = {}
        self._views: dict[int, layout.EndpointZone] = {}
        self._names: dict[tuple, tuple[str, str, str]] = {}
        self._aged_zones: dict[int, int] = {}
        self._held: dict[int, bool] = {}
        self._fresh_version: dict[int, int | None] = {}  # machine -> plan of the tree it may start
        self._lock_keys = tuple((layout.lock_name(ep), "TXT", None) for ep in self.endpoints)
        # One tuple per label, shared by every state that stores it (breadth-first keeps millions).
        self._step_labels = tuple(tuple(("step", k, c) for c in CHOICES) for k in range(bounds.enactors * self.n_endpoints))
        self._aged_machines: dict[int, int] = {}
        self._others_may_lease = endpoint is not None and bounds.endpoints > 1
        self._machine_labels: dict[tuple, tuple[Label, ...]] = {}
        self._aged_records: dict[int, RecordSet] = {}
        self._reads: dict[tuple, tuple[tuple[RecordSet, ...], int | None]] = {}
        self._acquired: dict[int, bool] = {}
        self._doom: dict[tuple[int, int], Move | None] = {}  # (zone, machine) -> its batch's rejection, if doomed
        self._tree_of: dict[int, str | None] = {}  # machine -> the id of the tree in its hand
        self._fits: dict[tuple[int, int], bool] = {}
        self.legacy_starts: tuple[State, ...] = ()
        self._start_labels: tuple[Label, ...] = ()
        self.initial = self._initial()

    # -- interning -------------------------------------------------------------------------

    def intern_zone(self, zone: IndexedZone) -> int:
        return self.zones.add(zone, zone.zone.fingerprint())

    def zone(self, zid: int) -> IndexedZone:
        return self.zones.values[zid]

    def machine(self, mid: int) -> Any:
        return self.machines.values[mid]

    def view(self, zid: int, j: int) -> layout.EndpointZone:
        """The zone read through enactor/layout.py (memoised)."""
        v = self._views.get(zid)
        if v is None:
            v = self._views[zid] = layout.read_endpoint(self.endpoints[j], self.zone(zid).zone)
        return v

    def listing(self, zid: int) -> tuple[RecordSet, ...]:
        """The zone as ListResourceRecordSets returns it: Route 53's order."""
        out = self._listings.get(zid)
        if out is None:
            out = self._listings[zid] = tuple(sorted(self.zone(zid).zone, key=sort_key))
        return out

    def read_records(self, zid: int, queries: tuple, zone_size: bool) -> tuple[tuple[RecordSet, ...], int | None]:
        """Targeted reads of zone `zid` in Route 53's order, and (`zone_size`) its record count
        (GetHostedZone's ResourceRecordSetCount); memoised per zone and queries."""
        key = (zid, queries, zone_size)
        out = self._reads.get(key)
        if out is None:
            listing = SortedRecords(self.zone(zid).zone)
            records = tuple(r for name, rtype, most in queries for r in listing.page(name, rtype, max_items=most).records)
            out = self._reads[key] = (records, len(listing) if zone_size else None)
        return out

    def acquired(self, mid: int) -> bool:
        """Machine `mid` holds its endpoint's lock mid-unit (memoised: invariants ask it of every state)."""
        out = self._acquired.get(mid)
        if out is None:
            out = self._acquired[mid] = bool(self.machine(mid).acquired)
        return out

    def _initial(self) -> State:
        zones = []
        published = 0
        for j, ep in enumerate(self.endpoints):
            z = IndexedZone.of(empty_zone(ep, self.zone_ids[j]))
            if self.bounds.start == "damaged":
                for changes in damage_batches(self.core, self.settings[0], ep, self.zone_ids[j], self.plans):
                    z = apply_batch(z, changes)
            if self.quota is not None and len(z.zone.records) > self.quota:
                raise BoundsError(f"--zone-quota {self.quota} is below the {len(z.zone.records)} record sets the {self.bounds.start} start already has")
            zones.append(self.intern_zone(z))
        if self.bounds.start == "damaged":
            published = len(self.plans)
        machines = []
        for _ in range(self.n_enactors):
            for j, ep in enumerate(self.endpoints):
                state, _ = self.core.start(ep, self.zone_ids[j])
                machines.append(self.machines.add(forget_dead(state) if self.reduce else state))
        initial = State(published, 0, 0, (0,) * self.n_endpoints, 0, 0, tuple(zones), tuple(machines))
        if self.bounds.start != "legacy":
            return initial
        self.legacy_starts = self._legacy_starts(initial)
        self._start_labels = tuple((START, i) for i in range(len(self.legacy_starts)))
        return initial._replace(pre=1)

    def _legacy_starts(self, initial: State) -> tuple[State, ...]:
        """--start legacy: the guard deployed on a zone in any state legacy mode can reach. Every
        (zone, plans published) the legacy core reaches at these bounds without faults (October's
        race needs none), explored with the real legacy core (enactor.protocol with the guard
        off); each becomes a start with the guarded enactors fresh (the same ids: a restart with
        the guard on, so a lock the legacy enactor-a left is enactor-a's) and no flip yet in this run.
        (The first quota check and every invariant hold as for any start; see invariants.py for
        the state invariants, judged once the guarded core has flipped, since the damage is legacy's.)"""
        from lab.checker.explore import explore  # (explore imports this module)

        legacy = replace(self.bounds, guard=False, start="clean", lease_expiries=0, lock_losses=0, lost_replies=0, failed_requests=0,
                         freezes=0, invalid_plans=0, insync_waits=0, max_depth=None)
        result = explore(World(legacy, self.core), stop_at_first=False, check_progress=False, keep_states=True)
        if not result.exhausted:
            raise BoundsError("--start legacy: the legacy runs at these bounds could not be explored to the end")
        seen: dict[tuple, State] = {}
        for s in result.explored:
            zone = self.intern_zone(IndexedZone.of(result.world.zone(s.zones[0]).zone))
            seen.setdefault((s.published, zone), initial._replace(published=s.published, zones=(zone,)))
        return tuple(seen.values())

    # -- transitions -----------------------------------------------------------------------

    def now(self, state: State) -> int:
        """The model's clock in `state`: it stands still (see Time in the module doc)."""
        return T0

    def labels(self, state: State) -> list[Label]:
        """Every transition enabled in `state`, in a fixed order (random walks depend on it)."""
        if state.pre:
            return list(self._start_labels)
        out: list[Label] = []
        if state.published < len(self.plans):
            out.append(PUBLISH)
            # Between two valid plans only: the planner then publishes a valid one again, so
            # Progress (the planner quiet after its last plan) still asks for the newest plan.
            if self.bounds.invalid_plans and state.invalid == 0 and state.published >= 1:
                out.append(PUBLISH_INVALID)
        if state.expiries < self.bounds.lease_expiries and (self._others_may_lease or self._lease_held(state)):
            out.append(EXPIRE)
        b = self.bounds
        faults = (state.losses < b.lock_losses, state.lost < b.lost_replies, state.failed < b.failed_requests, state.frozen < b.freezes,
                  state.pending < b.insync_waits)
        memo = self._machine_labels
        for k, mid in enumerate(state.machines):
            key = (k, mid, faults)
            mine = memo.get(key)
            if mine is None:
                mine = memo[key] = self._labels_of(k, mid, *faults)
            out += mine
        return out

    def _labels_of(self, k: int, mid: int, can_lose: bool, can_drop: bool, can_fail: bool, can_freeze: bool, can_pend: bool) -> tuple[Label, ...]:
        """Machine k's transitions (in machine state `mid`, with these fault budgets left)."""
        step, lose, drop, fail, freeze, pend = self._step_labels[k]
        out = [step]
        st = self.machine(mid)
        phase = st.phase
        if phase == "batch":
            if can_lose and not st.acquired:
                out.append(lose)
            if can_drop:
                out.append(drop)
        if can_fail and phase in ("plan", "list", "batch", "read", "plans", "check", "insync"):
            # Any request but a sleep can fail in transport (the core's contract: RequestFailed answers them all).
            out.append(fail)
        if can_freeze and phase in ("plan", "batch"):
            # The runner asks the switch when it reads the plan and before every batch.
            out.append(freeze)
        if can_pend and phase == "insync":
            out.append(pend)
        return tuple(out)

    def local_machine(self, state: State, k: int) -> bool:
        """Machine k's next steps read and write only its own state and commute with every other
        transition: a plan read once the planner has published its last plan (nothing can change
        what it reads, it writes no zone, and it leaves no batch pending for `_doomed`)."""
        return state.published == len(self.plans) and self.machine(state.machines[k]).phase == "plan"

    def refused_everywhere(self, state: State, j: int) -> bool:
        """Every enactor of endpoint j has refused the newest published plan for good (the core's
        `refused_version`) and may have: with --zone-quota the plan does not always fit (`fits`)."""
        v = state.published
        if self.quota is None or self.fits(v, j):
            return False
        return all(self.machine(m).refused_version >= v for m in state.machines[j :: self.n_endpoints])

    def fits(self, version: int, j: int) -> bool:
        """Plan `version`'s tree fits endpoint j's zone quota beside any earlier plan's tree: SOA
        and NS, the lock, `_applied`, a root and a rollback per record type, its own tree and the
        largest tree of an earlier plan (the one serving), shared nodes counted twice. A plan that
        fits so must be applied (Progress); one that does not may be refused (plan_too_large)."""
        key = (version, j)
        out = self._fits.get(key)
        if out is None:
            ep = self.endpoints[j]
            def size(v: int) -> int:
                tree = self.core.TreeInHand(f"t-fit{v}", v, T0)
                return len(self.core.tree_records(self.settings[0], ep, self.zone_ids[j], self.plans[v - 1].endpoint(ep), tree))
            types = len(self.plans[version - 1].endpoint(ep).record_types)
            earlier = max((size(v) for v in range(1, version)), default=0)
            out = self._fits[key] = self.quota is None or MIN_ZONE_QUOTA + 2 + 2 * types + size(version) + earlier <= self.quota
        return out

    def _lease_held(self, state: State) -> bool:
        for j, zid in enumerate(state.zones):
            held = self._held.get(zid)
            if held is None:
                lock = self.view(zid, j).lock_value
                held = self._held[zid] = lock is not None and lock.expires > T0
            if held:
                return True
        return False

    def apply(self, state: State, label: Label) -> tuple[State, Move | None, tuple[tuple[int, Move], ...]]:
        """The state after `label`, the machine step it was (None for the planner and the clock),
        and the batches that step doomed, rejected at once: (machine index, move) each."""
        kind = label[0]
        if label == PUBLISH_INVALID:
            return state._replace(invalid=1), None, ()
        if kind == "publish":
            return state._replace(published=state.published + 1, invalid=2 if state.invalid else 0), None, ()
        if kind == START:
            return self.legacy_starts[label[1]], None, ()
        if kind == "expire":
            zones = tuple(self._aged(self._aged_zones, z, self._age_zone) for z in state.zones)
            machines = tuple(self._aged(self._aged_machines, m, self._age_machine) for m in state.machines)
            return state._replace(expiries=state.expiries + 1, zones=zones, machines=machines), None, ()
        published, expiries, losses, applied, lost, failed, zones, machines, frozen, invalid, pending, _ = state
        k, choice = label[1], label[2]
        move = self.move(state, k, choice)
        machines = machines[:k] + (move.machine,) + machines[k + 1 :]
        if choice == LOSE_LOCK:
            losses += 1
        elif choice == LOST_REPLY:
            lost += 1
        elif choice == FAIL:
            failed += 1
        elif choice == FREEZE:
            frozen += 1
        elif choice == PENDING:
            pending += 1
        knocked: tuple[tuple[int, Move], ...] = ()
        if move.zone is not None:
            j = k % self.n_endpoints
            zones = zones[:j] + (move.zone,) + zones[j + 1 :]
            if move.flip:
                applied = applied[:j] + (move.request.plan_version,) + applied[j + 1 :]
            new = State(published, expiries, losses, applied, lost, failed, zones, machines, frozen, invalid, pending)
            knocked = self._doomed(new, j, k) if self.reduce else ()
            if knocked:
                ms = list(machines)
                for k2, m2 in knocked:
                    ms[k2] = m2.machine
                machines = tuple(ms)
        return State(published, expiries, losses, applied, lost, failed, zones, machines, frozen, invalid, pending), move, knocked

    def _doomed(self, state: State, j: int, writer: int) -> tuple[tuple[int, Move], ...]:
        """Batches of other machines on endpoint j that the zone's new lock has doomed, rejected.

        A batch whose lock preamble no longer matches the zone can only be rejected, whenever it is
        submitted (lock values never repeat), and its rejection changes no zone and reads nothing
        else: so it happens at once, in the same transition as the write that doomed it.
        The reduction checks its own assumption: a batch the engine would not reject right now
        (a faulty engine, a core whose lock values repeat) is left pending, explored as usual.
        """
        out = []
        zid = state.zones[j]
        memo = self._doom
        for e in range(self.n_enactors):
            k2 = e * self.n_endpoints + j
            if k2 == writer:
                continue
            # The verdict depends on the zone and the machine alone (a batch's move is keyed by them).
            key = (zid, state.machines[k2])
            move = memo.get(key, False)
            if move is False:
                move = memo[key] = self._doomed_move(state, k2)
            if move is not None:
                out.append((k2, move))
        return tuple(out)

    def _doomed_move(self, state: State, k2: int) -> Move | None:
        """Machine k2's batch rejected, if its lock preamble no longer matches the zone; else None."""
        st = self.machine(state.machines[k2])
        if st.phase != "batch":
            return None
        current = self.zone(state.zones[k2 % self.n_endpoints]).zone.records.get(self._lock_keys[k2 % self.n_endpoints])
        first = st.inflight.changes[0]
        if first.action == "DELETE":
            doomed = current is None or not same_record_set(current, first.record)
        else:
            doomed = current is not None
        if not doomed:
            return None
        move = self.move(state, k2)
        return move if move.outcome == "rejected" and move.error is None else None

    @staticmethod
    def _aged(memo: dict[int, int], i: int, compute: Callable[[int], int]) -> int:
        out = memo.get(i)
        if out is None:
            out = memo[i] = compute(i)
        return out

    def _age_zone(self, zid: int) -> int:
        izone = self.zone(zid)
        memo = self._aged_records
        records = []
        for r in izone.zone:
            out = memo.get(id(r))
            if out is None:
                out = memo[id(r)] = rewrite_strings(r, age_lease)  # zones stay interned: ids are never reused
            records.append(out)
        if all(a is b for a, b in zip(records, izone.zone, strict=True)):
            return zid
        return self.intern_zone(IndexedZone.of(Zone.of(izone.zone.name, records, zone_id=izone.zone.zone_id)))

    def _age_machine(self, mid: int) -> int:
        st = self.machine(mid)
        aged = rewrite_strings(st, age_lease)
        return mid if aged is st else self.machines.add(aged)

    def move(self, state: State, k: int, choice: str = "") -> Move:
        mid = state.machines[k]
        st = self.machine(mid)
        j = k % self.n_endpoints
        zid = state.zones[j]
        phase = st.phase
        if choice in (FAIL, FREEZE):
            key = (mid, choice)
        elif phase == "plan":
            key = (mid, "plan", state.published, state.invalid == 1)
        elif phase == "list":
            # The unit a listing starts is this enactor's: its batches carry its id as the lock's
            # holder even when no fresh tree (named for it) is started, e.g. a clean-up.
            key = (mid, "list", zid, k // self.n_endpoints, self.fresh_tree_id(state, k))
        elif phase == "batch":
            key = (mid, "batch", zid, choice)
        elif phase == "check":
            key = (mid, "check", zid)
        elif phase == "read":  # a unit's targeted reads: the zone decides; the batch they may start is this enactor's
            key = (mid, "read", zid, k // self.n_endpoints, self.fresh_tree_id(state, k))
        elif phase == "insync":
            key = (mid, "insync", choice)
        else:
            key = (mid, phase.value)
        move = self._moves.get(key)
        if move is None:
            move = self._moves[key] = self._compute_move(state, k, st, choice, key)
        return move

    def fresh_tree_id(self, state: State, k: int) -> str | None:
        """The id for a tree this listing may start: None when the machine keeps its tree in hand."""
        mid = state.machines[k]
        version = self._fresh_version.get(mid, -1)
        if version == -1:
            st = self.machine(mid)
            keeps = st.task != "work" or st.plan is None or (st.tree is not None and st.tree.version == st.plan.version)
            version = self._fresh_version[mid] = None if keeps else st.plan.version
        if version is None:
            return None
        e, j = divmod(k, self.n_endpoints)
        names = self.zone(state.zones[j]).names
        trees = self._tree_of
        held = set()
        for mid in state.machines[j :: self.n_endpoints]:
            tree = trees.get(mid, False)
            if tree is False:
                t = self.machine(mid).tree
                tree = trees[mid] = t.tree_id if t is not None else None
            held.add(tree)
        n = 0
        while True:
            candidate, top, meta = self._tree_names(e, j, version, n)
            if candidate not in held and top not in names and meta not in names:
                return candidate
            n += 1

    def _tree_names(self, e: int, j: int, version: int, n: int) -> tuple[str, str, str]:
        key = (e, j, version, n)
        out = self._names.get(key)
        if out is None:
            tree_id = f"t-{chr(ord('a') + e)}p{version}" + (f"g{n}" if n else "")
            ep = self.endpoints[j]
            out = self._names[key] = (tree_id, layout.tree_name(ep, tree_id), layout.meta_name(ep, tree_id))
        return out

    def _compute_move(self, state: State, k: int, st: Any, choice: str, key: tuple) -> Move:
        """Carry out machine k's request (`answer`), feed the answer to the core's `step`.

        Never raises on misbehaving code: an exception in the core (`step`, `request_of`) or in the
        engine becomes a move with `error` set (CoreRaised / EngineRaised), which the invariants
        report as a counterexample; the machine is left as it was.
        """
        core = self.core
        e = k // self.n_endpoints
        now = float(self.now(state))
        try:
            request = core.request_of(st)
        except Exception as exc:  # noqa: BLE001 - a fault in the code under check is a finding
            return Move(key[0], None, None, None, (), "raised", False, ("CoreRaised", f"request_of raised {_exc_text(exc)}"))
        answer = Answer(None, None, "", None)
        if choice == FAIL:
            answer = Answer(core.RequestFailed("injected: connection reset before the request was carried out", now), None, "failed", None)
        elif choice == FREEZE:
            answer = Answer(core.Frozen("injected: the freeze switch is on", now), None, "frozen", None)
        else:
            answer = ANSWERS[type(request).__name__](self, state, k, request, choice, key)
        if answer.error is not None and answer.observation is None:
            return Move(key[0], None, request, None, (), "raised", False, answer.error)
        try:
            new, after, notes = core.step(self.settings[e], st, answer.observation)
            if isinstance(after, core.Sleep) and self.reduce:
                # Waking changes nothing anyone else can see and commutes with every other step, and a
                # woken machine may still wait any number of steps before it acts: so it wakes at once.
                new, _, more = core.step(self.settings[e], new, core.Woke(now))
                notes += more
        except Exception as exc:  # noqa: BLE001 - a fault in the code under check is a finding
            error = ("CoreRaised", f"step({type(answer.observation).__name__}) raised {_exc_text(exc)}")
            return Move(key[0], None, request, answer.observation, (), "raised", False, answer.error or error)
        new = forget_dead(new) if self.reduce else new
        flip = bool(core.is_flip(request))
        return Move(self.machines.add(new), answer.zone, request, answer.observation, notes, answer.outcome, flip, answer.error)

    def _lost_lock_messages(self, izone: IndexedZone, batch: Any) -> tuple[str, ...]:
        """Route 53's answer to `batch` had another writer just taken the lock: the engine applies
        the batch to the zone with the lock rewritten by that writer, and must reject it."""
        ep = izone.zone.name
        outsider = RecordSet(layout.lock_name(ep), "TXT", ttl=60, values=(layout.LockValue("outsider", 2**40, 2**40).render(),))
        changes = [Change("UPSERT", outsider)]
        try:
            taken = apply_batch(izone, changes)
            apply_batch(taken, batch.changes)
        except Route53Error as exc:
            return tuple(getattr(exc, "messages", None) or (exc.message,))
        return ()  # accepted: the engine broke the lock's exclusion (the caller reports it)

    # -- reading states --------------------------------------------------------------------

    def who(self, k: int) -> tuple[str, str]:
        """(enactor id, endpoint without the final dot) of machine index k."""
        e, j = divmod(k, self.n_endpoints)
        return self.enactor_ids[e], self.endpoints[j].rstrip(".")


# --- answering the core's requests ----------------------------------------------------------
# One function per request kind, looked up by the request's class name: the one place that
# knows what each request means in the model. A new request kind of the core gets a function
# here and an entry in ANSWERS; nothing else in the checker reads requests.


class Answer(NamedTuple):
    observation: Any  # what the core is fed (None: nothing, because `error`)
    zone: int | None  # the zone after an accepted batch
    outcome: str
    error: tuple[str, str] | None  # EngineRaised / LockExclusion found while answering


def _exc_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def answer_read_newest_plan(world: World, state: State, k: int, request: Any, choice: str, key: tuple) -> Answer:
    if state.invalid == 1:
        # As the runner reports a newest object that fails the schema: no plan, and why.
        invalid = world.core.InvalidPlan(INVALID_PLAN_KEY, "injected: the newest plan object fails the schema")
        return Answer(world.core.PlanRead(None, invalid), None, "", None)
    plan = world.plans[state.published - 1] if state.published else None
    return Answer(world.core.PlanRead(plan), None, "", None)


def answer_list_records(world: World, state: State, k: int, request: Any, choice: str, key: tuple) -> Answer:
    j = k % world.n_endpoints
    return Answer(world.core.RecordsListed(world.listing(state.zones[j]), float(world.now(state)), key[-1], world.quota), None, "", None)


def answer_submit_batch(world: World, state: State, k: int, request: Any, choice: str, key: tuple) -> Answer:
    """Route 53's answer to a change batch: the engine applies it or rejects it. LOSE_LOCK: an
    outside writer took the lock just before. LOST_REPLY: applied (or not), the reply is lost."""
    core, now = world.core, float(world.now(state))
    e, j = divmod(k, world.n_endpoints)
    izone = world.zone(state.zones[j])
    if choice == LOSE_LOCK:
        try:
            messages = world._lost_lock_messages(izone, request)
        except Exception as exc:  # noqa: BLE001
            return Answer(None, None, "raised", ("EngineRaised", f"apply_batch raised {_exc_text(exc)}"))
        if not messages:
            error = ("LockExclusion", f"Route 53 accepted {request.batch_id}'s batch although an outside writer had just taken the lock")
            return Answer(core.BatchRejected(("lock taken by an outside writer",), "InvalidChangeBatch", now), None, "lost_lock", error)
        return Answer(core.BatchRejected(messages, "InvalidChangeBatch", now), None, "lost_lock", None)
    try:
        after = apply_batch(izone, request.changes, world.limits[e])
    except Route53Error as exc:
        messages = tuple(getattr(exc, "messages", None) or (exc.message,))
        obs = core.BatchRejected(messages, exc.code, now)
        zone, outcome = None, "rejected"
    except Exception as exc:  # noqa: BLE001 - the engine under check misbehaved
        return Answer(None, None, "raised", ("EngineRaised", f"apply_batch raised {_exc_text(exc)}"))
    else:
        # Without --insync-waits, no change id: propagation is instant, the core skips its INSYNC
        # wait. With it, a build batch's change id (named after the batch) is waited for.
        change_id = f"/change/{request.batch_id}" if world.bounds.insync_waits and request.purpose == "build" else ""
        obs, zone, outcome = core.BatchAccepted(now, change_id), world.intern_zone(after), "accepted"
    if choice == LOST_REPLY:
        obs = core.RequestFailed("injected: the reply was lost (the batch may have been applied)", now)
        outcome = f"lost_reply_{outcome}"
    return Answer(obs, zone, outcome, None)


def answer_read_records(world: World, state: State, k: int, request: Any, choice: str, key: tuple) -> Answer:
    """The light check's targeted reads (StartRecordName/StartRecordType/MaxItems), answered from
    the zone in Route 53's order."""
    j = k % world.n_endpoints
    sized = bool(getattr(request, "zone_size", False))
    records, size = world.read_records(state.zones[j], request.queries, sized)
    fresh = key[-1] if key[1] == "read" else None  # a unit's reads may start a tree (as a listing may)
    # With the zone's size the runner also reads its quota (GetHostedZoneLimit), as a listing does.
    return Answer(world.core.RecordsRead(records, float(world.now(state)), fresh, size, world.quota if sized else None), None, "", None)


def answer_read_plans(world: World, state: State, k: int, request: Any, choice: str, key: tuple) -> Answer:
    """The plans behind the trees (the clean-up's reference count): every plan of the world is
    in the store from its publication on, and a tree exists only for a published plan."""
    ep = world.endpoints[k % world.n_endpoints]
    by_version = {plan.version: plan for plan in world.plans}
    endpoints = tuple((v, by_version[v].endpoint(ep) if v in by_version else None) for v in request.versions)
    return Answer(world.core.PlansRead(endpoints, float(world.now(state))), None, "", None)


def answer_await_insync(world: World, state: State, k: int, request: Any, choice: str, key: tuple) -> Answer:
    """GetChange until INSYNC; PENDING: the runner's wait gave up with the change still PENDING."""
    return Answer(world.core.Insync(choice != PENDING, float(world.now(state))), None, "pending" if choice == PENDING else "", None)


def answer_sleep(world: World, state: State, k: int, request: Any, choice: str, key: tuple) -> Answer:
    return Answer(world.core.Woke(float(world.now(state))), None, "", None)


ANSWERS: dict[str, Callable[..., Answer]] = {
    "ReadNewestPlan": answer_read_newest_plan,
    "ListRecords": answer_list_records,
    "ReadRecords": answer_read_records,
    "ReadPlans": answer_read_plans,
    "SubmitBatch": answer_submit_batch,
    "AwaitInsync": answer_await_insync,
    "Sleep": answer_sleep,
}
