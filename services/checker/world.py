"""The world the checker explores: enactor machines, in-memory hosted zones, the planner's plans.

A global state is a small tuple of integers: how many plans the planner has published, how many
lease expiries and injected lock losses have been spent, which endpoints have seen a flip, and
one interned id per hosted zone and per machine (one machine per enactor and endpoint). The
machines are `EndpointState` values of the protocol core, the zones are the Route 53 engine's
`IndexedZone`s; both are interned once, so a global state hashes and compares as plain ints.

A transition is one of:
- the planner publishes the next plan (built by planner/planning.py from a small fleet);
- the clock jumps past every lock lease (bounded: `Bounds.lease_expiries`);
- one machine's outstanding request is carried out and its answer fed to the core's `step`:
  ReadNewestPlan reads the newest published plan, ListRecords lists the zone in Route 53's
  order, SubmitBatch is applied by the engine (accepted or rejected as Route 53 would), Sleep
  ends. A batch that opens a unit may instead lose its lock attempt as if another writer had
  taken the lock (bounded: `Bounds.lock_losses`), the runner's `lose_lock_attempts` fault.

Time. Sleeps are abstract: a sleeping machine may wake at any later step, so backoff lengths and
delays are every possible interleaving rather than numbers. Waking is invisible to everyone else
and commutes with every other step, and an awake machine may still wait any number of steps
before it acts, so a machine is woken in the same transition that put it to sleep: the states
where it sleeps and where it is awake but idle would only double the space. The core runs with
one backoff length (base = cap: its loss counter then has two values instead of eight that the
checker could not tell apart). The clock stands still at 2025-10-20T06:48:00Z except for lease expiries, each
of which moves it one lock TTL on: a lock released by its holder is free at once (its expiry is
"now"), a held one only after an expiry.

Tree ids. The core accepts the caller's fresh tree id; the checker names a tree
"t-<enactor letter>p<plan version>" (one tree per machine and plan; a numbered suffix if that
name is taken), readable in traces and renamed with the enactor under symmetry.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from enactor import layout
from enactor import protocol as default_core
from planner.fleet import Fleet, validate_fleet
from planner.planning import build_plan
from services.plan.model import Plan
from services.route53.engine import IndexedZone, Route53Error, apply_batch
from services.route53.listing import sort_key
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
STARTS = ("clean", "damaged")


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
    start: str = "clean"  # "damaged": the root's tree was deleted under it (October's end state)
    max_depth: int | None = None  # None: until the space is exhausted
    symmetry: bool = True

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.enactors <= MAX_ENACTORS:
            problems.append(f"--enactors must be 1..{MAX_ENACTORS}")
        if self.plans < 1:
            problems.append("--plans must be at least 1")
        if self.start == "damaged" and self.plans < 2:
            problems.append("the damaged start needs --plans >= 2 (a rollback tree and the lost one)")
        if not 1 <= self.endpoints <= 9:
            problems.append("--endpoints must be 1..9")
        if not 1 <= self.lbs <= 50:
            problems.append("--lbs must be 1..50")
        if self.keep_plans < 1:
            problems.append("--keep-plans must be at least 1")
        if self.lease_expiries < 0 or self.lock_losses < 0:
            problems.append("--lease-expiries and --lock-losses must be >= 0")
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
    expiries: int  # lease expiries spent (the clock is T0 + expiries * LOCK_TTL_S)
    losses: int  # injected lock losses spent
    flipped: int  # bit j: a flip was accepted on endpoint j in this run
    zones: tuple[int, ...]  # interned zone per endpoint
    machines: tuple[int, ...]  # interned machine per (enactor, endpoint), enactor-major


# Transition labels: ("publish",), ("expire",), ("step", machine index, "" | "lose_lock").
Label = tuple
PUBLISH: Label = ("publish",)
EXPIRE: Label = ("expire",)
LOSE_LOCK = "lose_lock"


@dataclass(frozen=True, slots=True)
class Move:
    """What one machine step did: the memoised result of carrying out a request and `step`."""

    machine: int  # interned machine state after the step
    zone: int | None  # interned zone after an accepted batch, else None
    request: Any
    observation: Any
    notes: tuple
    outcome: str  # "accepted" | "rejected" | "lost_lock" | "" (not a batch)
    flip: bool  # the request was a flip (or heal) batch
    nap: Any = None  # the Sleep the step ended in (the machine is woken at once, see the module doc)


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


def model_fleet(bounds: Bounds) -> Fleet:
    """The planner's fleet for the model: `lbs` load balancers per endpoint, spread over three AZs."""
    names = endpoint_names(bounds.endpoints)
    lbs = []
    for j, name in enumerate(names):
        for i in range(bounds.lbs):
            lbs.append(
                {
                    "id": f"lb{j}-{i}",
                    "az": AZS[i % len(AZS)],
                    "endpoint": name,
                    "ipv4": [f"192.0.2.{1 + j * 50 + i}"],
                    "capacity": 1000,
                }
            )
    return validate_fleet(
        {
            "region": REGION,
            "azs": list(AZS),
            "drained_azs": [],
            "endpoints": [{"name": n, "record_types": ["A"]} for n in names],
            "load_balancers": lbs,
        },
        "model fleet",
    )


def model_plans(bounds: Bounds) -> tuple[Plan, ...]:
    """Plans 1..plans as the planner builds them; traffic drift moves the weights every version,
    as capacity changes do, so consecutive plans differ."""
    fleet = model_fleet(bounds)
    out = []
    for v in range(1, bounds.plans + 1):
        drift = {lb.id: 0.5 + 0.5 * ((v + i) % 2) for i, lb in enumerate(fleet.load_balancers)}
        out.append(build_plan(fleet, v, reason=f"model plan {v}", lane="slow", drift=drift, created_at=PLAN_CREATED_AT))
    return tuple(out)


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


def forget_dead(st: Any) -> Any:
    """The machine state with the facts it will re-read before using them set to their defaults.

    Waiting for a plan or for a listing, a machine's last-seen lock and applied records and the
    applied version are overwritten by the next listing before anything reads them (only log
    notes show them), and with one backoff length the loss counter changes nothing but notes.
    Machines that differ only there behave alike, so they are one state. The tests check that
    exploring without this gives the same verdicts and reachable zones.
    """
    if st.phase in ("plan", "list") and (st.lock is not None or st.applied is not None or st.applied_version or st.losses):
        return replace(st, lock=None, applied=None, applied_version=0, losses=0)
    return st


class World:
    """Transitions of the global state for one core module and one set of bounds.

    `core` is the protocol module to check (enactor.protocol by default; tests pass mutated
    copies). Everything the core touches goes through `core.<name>`, so a copy's classes are used
    throughout. Results of machine steps, listings, batches and invariants are memoised: the
    core and the engine are pure, so the same inputs give the same outputs.
    """

    def __init__(self, bounds: Bounds, core: types.ModuleType = default_core):
        self.bounds = bounds
        self.core = core
        self.n_enactors = bounds.enactors
        self.n_endpoints = bounds.endpoints
        self.enactor_ids = tuple(enactor_id(i) for i in range(bounds.enactors))
        self.endpoints = tuple(normalise_name(n) for n in endpoint_names(bounds.endpoints))
        self.zone_ids = tuple(f"Z{j + 1:04d}CHECK" for j in range(bounds.endpoints))
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
        self.plans = model_plans(bounds)
        self.machines = Interner()
        self.zones = Interner()
        self._moves: dict[tuple, Move] = {}
        self._listings: dict[int, tuple[RecordSet, ...]] = {}
        self._views: dict[int, layout.EndpointZone] = {}
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

    def _initial(self) -> State:
        zones = []
        published = 0
        for j, ep in enumerate(self.endpoints):
            z = IndexedZone.of(empty_zone(ep, self.zone_ids[j]))
            if self.bounds.start == "damaged":
                for changes in damage_batches(self.core, self.settings[0], ep, self.zone_ids[j], self.plans):
                    z = apply_batch(z, changes)
            zones.append(self.intern_zone(z))
        if self.bounds.start == "damaged":
            published = len(self.plans)
        machines = []
        for _ in range(self.n_enactors):
            for j, ep in enumerate(self.endpoints):
                state, _ = self.core.start(ep, self.zone_ids[j])
                machines.append(self.machines.add(state))
        return State(published, 0, 0, 0, tuple(zones), tuple(machines))

    # -- transitions -----------------------------------------------------------------------

    def now(self, state: State) -> int:
        return T0 + state.expiries * LOCK_TTL_S

    def labels(self, state: State) -> Iterator[Label]:
        """Every transition enabled in `state`, in a fixed order (random walks depend on it)."""
        if state.published < len(self.plans):
            yield PUBLISH
        if state.expiries < self.bounds.lease_expiries and self._lease_held(state):
            yield EXPIRE
        can_lose = state.losses < self.bounds.lock_losses
        for k, mid in enumerate(state.machines):
            yield ("step", k, "")
            if can_lose:
                st = self.machine(mid)
                if st.phase == "batch" and not st.acquired:
                    yield ("step", k, LOSE_LOCK)

    def _lease_held(self, state: State) -> bool:
        now = self.now(state)
        for j, zid in enumerate(state.zones):
            lock = self.view(zid, j).lock_value
            if lock is not None and lock.expires > now:
                return True
        return False

    def apply(self, state: State, label: Label) -> tuple[State, Move | None]:
        """The state after `label`, and the machine step it was (None for planner and clock)."""
        published, expiries, losses, flipped, zones, machines = state
        kind = label[0]
        if kind == "publish":
            return State(published + 1, expiries, losses, flipped, zones, machines), None
        if kind == "expire":
            return State(published, expiries + 1, losses, flipped, zones, machines), None
        k, choice = label[1], label[2]
        move = self.move(state, k, choice)
        machines = machines[:k] + (move.machine,) + machines[k + 1 :]
        if choice == LOSE_LOCK:
            losses += 1
        if move.zone is not None:
            j = k % self.n_endpoints
            zones = zones[:j] + (move.zone,) + zones[j + 1 :]
            if move.flip:
                flipped |= 1 << j
        return State(published, expiries, losses, flipped, zones, machines), move

    def move(self, state: State, k: int, choice: str = "") -> Move:
        mid = state.machines[k]
        st = self.machine(mid)
        j = k % self.n_endpoints
        zid = state.zones[j]
        phase = st.phase
        if phase == "plan":
            key = (mid, "plan", state.published)
        elif phase == "list":
            key = (mid, "list", zid, state.expiries, self.fresh_tree_id(state, k))
        elif phase == "batch":
            key = (mid, "batch", zid, state.expiries, choice)
        else:
            key = (mid, phase.value, state.expiries)
        move = self._moves.get(key)
        if move is None:
            move = self._moves[key] = self._compute_move(state, k, st, choice, key)
        return move

    def fresh_tree_id(self, state: State, k: int) -> str | None:
        """The id for a tree this listing may start: None when the machine keeps its tree in hand."""
        st = self.machine(state.machines[k])
        if st.task != "work" or st.plan is None or (st.tree is not None and st.tree.version == st.plan.version):
            return None
        e, j = divmod(k, self.n_endpoints)
        base = f"t-{chr(ord('a') + e)}p{st.plan.version}"
        names = self.zone(state.zones[j]).names
        held = {
            t.tree_id
            for i in range(self.n_enactors)
            if (t := self.machine(state.machines[i * self.n_endpoints + j]).tree) is not None
        }
        ep = self.endpoints[j]
        n = 0
        while True:
            candidate = base if n == 0 else f"{base}g{n}"
            taken = candidate in held or layout.tree_name(ep, candidate) in names or layout.meta_name(ep, candidate) in names
            if not taken:
                return candidate
            n += 1

    def _compute_move(self, state: State, k: int, st: Any, choice: str, key: tuple) -> Move:
        core = self.core
        e, j = divmod(k, self.n_endpoints)
        now = self.now(state)
        request = core.request_of(st)
        zone_after = None
        outcome = ""
        if st.phase == "plan":
            obs = core.PlanRead(self.plans[state.published - 1] if state.published else None)
        elif st.phase == "list":
            obs = core.RecordsListed(self.listing(state.zones[j]), float(now), key[-1])
        elif st.phase == "batch":
            izone = self.zone(state.zones[j])
            if choice == LOSE_LOCK:
                obs = core.BatchRejected(self._lost_lock_messages(izone, request), "InvalidChangeBatch", float(now))
                outcome = "lost_lock"
            else:
                try:
                    after = apply_batch(izone, request.changes, self.settings[e].limits)
                except Route53Error as exc:
                    messages = tuple(getattr(exc, "messages", None) or (exc.message,))
                    obs = core.BatchRejected(messages, exc.code, float(now))
                    outcome = "rejected"
                else:
                    # No change id: propagation is instant here, so the core skips its INSYNC wait.
                    obs = core.BatchAccepted(float(now))
                    zone_after = self.intern_zone(after)
                    outcome = "accepted"
        elif st.phase == "insync":
            obs = core.Insync(True, float(now))
        else:
            obs = core.Woke(float(now))
        new, after, notes = core.step(self.settings[e], st, obs)
        nap = None
        if isinstance(after, core.Sleep):
            # Waking changes nothing anyone else can see and commutes with every other step, and a
            # woken machine may still wait any number of steps before it acts: so it wakes at once.
            nap = after
            new, _, more = core.step(self.settings[e], new, core.Woke(float(now)))
            notes += more
        return Move(self.machines.add(forget_dead(new)), zone_after, request, obs, notes, outcome, bool(core.is_flip(request)), nap)

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
        raise AssertionError("a batch whose lock preamble matched an outsider's lock was accepted")

    # -- reading states --------------------------------------------------------------------

    def newest(self, state: State) -> int:
        return state.published

    def who(self, k: int) -> tuple[str, str]:
        """(enactor id, endpoint without the final dot) of machine index k."""
        e, j = divmod(k, self.n_endpoints)
        return self.enactor_ids[e], self.endpoints[j].rstrip(".")
