"""An in-memory world for driving the protocol core in tests: zones under the real change engine,
a list of published plans and a clock. Scripts step chosen machines one request at a time, so a
test can write down an exact interleaving (the model checker explores all of them; this is for
hand-written schedules and hypothesis-chosen ones)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from enactor import layout
from enactor import protocol as p
from services.plan.model import EndpointPlan, Plan, Target
from services.route53.engine import DEFAULT_LIMITS, IndexedZone, Limits, Route53Error, apply_batch
from services.route53.listing import SortedRecords
from services.route53.records import RecordSet, Zone


def endpoint_plan(name: str, n_lbs: int, *, types=("A",), weight=lambda i: 10 + i % 7) -> EndpointPlan:
    targets = []
    for i in range(n_lbs):
        targets.append(
            Target(
                lb_id=f"lb-{i:04d}",
                az=f"use1-az{1 + i % 3}",
                ipv4=(f"10.{i // 250}.{i % 250}.1",) if "A" in types else (),
                ipv6=(f"2001:db8::{i:x}",) if "AAAA" in types else (),
                weight=weight(i),
            )
        )
    return EndpointPlan(name=name, hosted_zone=name, record_types=tuple(types), targets=tuple(targets))


def make_plan(version: int, endpoints: list[EndpointPlan]) -> Plan:
    return Plan.build(region="us-east-1", version=version, endpoints=endpoints, created_at="2025-10-20T06:48:00+00:00")


def empty_zone(name: str, zone_id: str) -> IndexedZone:
    soa = RecordSet(name, "SOA", ttl=900, values=("ns-1.awsdns-1.com. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400",))
    ns = RecordSet(name, "NS", ttl=172800, values=("ns-1.awsdns-1.com.",))
    return IndexedZone.of(Zone.of(name, [soa, ns], zone_id=zone_id))


@dataclass
class Machine:
    settings: p.CoreSettings
    state: p.EndpointState
    request: p.Request
    notes: list[p.Note] = field(default_factory=list)


@dataclass
class World:
    endpoints: tuple[str, ...]
    now: float = 1_760_942_880.0  # 2025-10-20T06:48:00Z
    plans: list[Plan | p.InvalidPlan] = field(default_factory=list)
    zones: dict[str, IndexedZone] = field(default_factory=dict)
    machines: dict[tuple[str, str], Machine] = field(default_factory=dict)
    submitted: list[tuple[str, p.SubmitBatch, bool]] = field(default_factory=list)
    frozen: str | None = None
    change_seq: int = 0
    limits: Limits = DEFAULT_LIMITS  # Route 53's quotas as the engine enforces them

    def __post_init__(self) -> None:
        for i, ep in enumerate(self.endpoints):
            self.zones.setdefault(ep, empty_zone(ep, f"Z{i + 1:04d}"))

    def add_enactor(self, settings: p.CoreSettings) -> None:
        for ep in self.endpoints:
            state, request = p.start(ep, self.zones[ep].zone.zone_id)
            self.machines[(settings.enactor_id, ep)] = Machine(settings, state, request)

    def publish(self, plan: Plan | p.InvalidPlan) -> None:
        self.plans.append(plan)

    def view(self, ep: str) -> layout.EndpointZone:
        return layout.read_endpoint(ep, self.zones[ep].zone)

    def observe(self, enactor: str, ep: str) -> p.Observation:
        """Carry out the machine's outstanding request against the world."""
        m = self.machines[(enactor, ep)]
        req = m.request
        if self.frozen is not None:
            return p.Frozen(self.frozen, self.now)
        if isinstance(req, p.ReadNewestPlan):
            newest = self.plans[-1] if self.plans else None
            if isinstance(newest, p.InvalidPlan):
                return p.PlanRead(None, newest)
            return p.PlanRead(newest)
        if isinstance(req, p.ReadPlans):
            by_version = {plan.version: plan for plan in self.plans if isinstance(plan, Plan)}
            return p.PlansRead(tuple((v, by_version[v].endpoint(ep) if v in by_version else None) for v in req.versions), self.now)
        if isinstance(req, p.ListRecords):
            return p.RecordsListed(tuple(self.zones[ep].zone), self.now)
        if isinstance(req, p.ReadRecords):
            listing = SortedRecords(self.zones[ep].zone)
            records = tuple(r for q in req.queries for r in listing.page(q[0], q[1], max_items=q[2]).records)
            return p.RecordsRead(records, self.now, record_count=len(listing) if req.zone_size else None)
        if isinstance(req, p.SubmitBatch):
            try:
                self.zones[ep] = apply_batch(self.zones[ep], req.changes, self.limits)
            except Route53Error as exc:
                self.submitted.append((enactor, req, False))
                return p.BatchRejected(tuple(getattr(exc, "messages", [exc.message])), exc.code, self.now)
            self.submitted.append((enactor, req, True))
            self.change_seq += 1
            return p.BatchAccepted(self.now, f"C{self.change_seq}")
        if isinstance(req, p.AwaitInsync):
            return p.Insync(True, self.now)
        return p.Woke(self.now)

    def step(self, enactor: str, ep: str, obs: p.Observation | None = None) -> tuple[p.Note, ...]:
        m = self.machines[(enactor, ep)]
        obs = obs if obs is not None else self.observe(enactor, ep)
        m.state, m.request, notes = p.step(m.settings, m.state, obs)
        m.notes.extend(notes)
        return notes

    def run_until(self, enactor: str, ep: str, done: Callable[[Machine], bool], limit: int = 500) -> Machine:
        m = self.machines[(enactor, ep)]
        for _ in range(limit):
            if done(m):
                return m
            self.step(enactor, ep)
        raise AssertionError(f"{enactor}/{ep} did not reach the condition in {limit} steps; at {m.state.phase} {m.request}")

    def run_idle(self, enactor: str, ep: str, limit: int = 500) -> Machine:
        """Step until the machine polls (nothing more to do for the newest plan)."""
        self.step(enactor, ep)
        return self.run_until(enactor, ep, lambda m: isinstance(m.request, p.Sleep) and m.request.reason == "poll", limit)


def events(m: Machine) -> list[str]:
    return [n.event for n in m.notes]


def answers(world: World, ep: str, rtype: str = "A") -> set[str]:
    """Every address a resolver could get for the endpoint (all weighted branches), following aliases."""
    records = world.zones[ep].zone.records
    by_name: dict[tuple[str, str], list[RecordSet]] = {}
    for (name, t, _), r in records.items():
        by_name.setdefault((name, t), []).append(r)
    out: set[str] = set()
    todo, seen = [layout.root_name(ep)], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for r in by_name.get((name, rtype), []):
            if r.alias is not None:
                todo.append(r.alias.dns_name)
            else:
                out.update(r.values)
    return out


def polling(m: Machine) -> bool:
    return isinstance(m.request, p.Sleep) and m.request.reason == "poll"
