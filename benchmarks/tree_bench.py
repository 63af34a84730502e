"""Tree figures, counted (not timed): records a plan writes, and what the zone holds over plans.

Drives the real protocol core (enactor/protocol.py) with one guarded enactor against Route 53's
change engine in memory (services/route53/engine.py, default quotas), so every count is what the
enactor would send to Route 53; deterministic (fixed fleet, fixed seed), no clock, no network.

For each fleet size (A-only unless --dual-stack):
- records written for the full first plan, and for a plan that changes one LB's weight
  (tree record changes: CREATE/UPSERT/DELETE of tree records, lock and `_applied` preamble not
  counted), measured by the run for the middle LB and computed for 10 LBs spread over the fleet
  (mean/max);
- tree records per plan (the tree's own records and every node it reaches);
- zone records after `--plans` plans that each change `--changed` LBs' weights, and the peak,
  with keep_plans `--keep` (what Route 53's 10,000-record quota is compared with).

    .venv/bin/python benchmarks/tree_bench.py [--lbs 1000,8000] [--plans 10] [--changed 10] [--keep 5] [--dual-stack]

--drift: what a plan that changes every LB's weight costs (the demo's traffic drift), measured
by the same run: records written, and the zone after it.

--layouts: can any immutable, content-named layout keep `--keep` plans at 8,000 LBs under the
quota when each plan changes `--changed` LBs? First the arithmetic (printed): an LB's addresses
are one record set per type in any layout, so a tree costs at least N + N/k0 + N/(k0 k1) + ...
record sets for fan-outs k0 (bottom), k1, ...; a plan changing C LBs path-copies about
C (k0 + k1 + ...) + the top; a build runs while keep+1 trees are retained, so the zone peaks
near base + (keep+1) x per-plan. Then the real tree builder (enactor/tree.py) for several shapes:
base, per-plan copies, the peak of keep+2 trees, a one-LB change, and the worst share error.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from enactor import layout  # noqa: E402
from enactor import protocol as p  # noqa: E402
from services.plan.model import EndpointPlan, Plan, Target  # noqa: E402
from services.route53.engine import IndexedZone, Limits, Route53Error, apply_batch  # noqa: E402
from services.route53.listing import SortedRecords  # noqa: E402
from services.route53.records import RecordSet, Zone  # noqa: E402

EP = "bench.example.com."
ZONE_ID = "ZBENCH"
BOOKKEEPING = (layout.lock_name(EP), layout.applied_name(EP))


def fleet(n: int, types: tuple[str, ...], weights: dict[int, int]) -> EndpointPlan:
    targets = [
        Target(
            lb_id=f"lb-{i:05d}", az=f"use1-az{1 + i % 3}",
            ipv4=(f"10.{i // 62500}.{i // 250 % 250}.{i % 250 + 1}",) if "A" in types else (),
            ipv6=(f"2001:db8::{i:x}",) if "AAAA" in types else (),
            weight=weights.get(i, 10 + i % 7),
        )
        for i in range(n)
    ]
    return EndpointPlan(name=EP, hosted_zone=EP, record_types=types, targets=tuple(targets))


class Bench:
    def __init__(self, keep: int, quota: int):
        soa = RecordSet(EP, "SOA", ttl=900, values=("ns-1.awsdns-1.com. hostmaster.example.com. 1 7200 900 1209600 86400",))
        ns = RecordSet(EP, "NS", ttl=172800, values=("ns-1.awsdns-1.com.",))
        self.limits = Limits(max_record_sets_per_zone=quota)
        self.zone = IndexedZone.of(Zone.of(EP, [soa, ns], zone_id=ZONE_ID))
        self.settings = p.CoreSettings("bench", keep_plans=keep, limits=self.limits)
        self.state, self.request = p.start(EP, ZONE_ID)
        self.now = 1_760_942_880.0
        self.peak = len(self.zone.zone.records)
        self.refused: list[str] = []
        self.plans: dict[int, Plan] = {}  # every plan applied, by version (the plan store, for ReadPlans)

    def apply(self, plan: Plan) -> dict[str, int]:
        """Run the machine until it polls again; count what it wrote by purpose."""
        written = {"build": 0, "flip": 0, "heal": 0, "cleanup": 0}
        self.plans[plan.version] = plan
        if isinstance(self.request, p.Sleep):
            self.now += self.request.max_seconds
            self.state, self.request, _ = p.step(self.settings, self.state, p.Woke(self.now))
        for _ in range(10_000):
            req = self.request
            if isinstance(req, p.ReadNewestPlan):
                obs: p.Observation = p.PlanRead(plan)
            elif isinstance(req, p.ReadPlans):
                # The plans behind the trees: every plan this run applied (the clean-up's reference count).
                obs = p.PlansRead(tuple((v, self.plans[v].endpoint(self.state.endpoint) if v in self.plans else None)
                                        for v in req.versions), self.now)
            elif isinstance(req, p.ListRecords):
                obs = p.RecordsListed(tuple(self.zone.zone), self.now, quota=self.limits.max_record_sets_per_zone)
            elif isinstance(req, p.ReadRecords):
                listing = SortedRecords(self.zone.zone)
                records = tuple(r for q in req.queries for r in listing.page(q[0], q[1], max_items=q[2]).records)
                obs = p.RecordsRead(records, self.now, record_count=len(listing) if req.zone_size else None,
                                    quota=self.limits.max_record_sets_per_zone)
            elif isinstance(req, p.SubmitBatch):
                try:
                    self.zone = apply_batch(self.zone, req.changes, self.limits)
                except Route53Error as exc:
                    obs = p.BatchRejected(tuple(getattr(exc, "messages", [exc.message])), exc.code, self.now)
                else:
                    written[req.purpose] += sum(1 for c in req.changes if c.record.name not in BOOKKEEPING)
                    self.peak = max(self.peak, len(self.zone.zone.records))
                    obs = p.BatchAccepted(self.now)
            elif isinstance(req, p.AwaitInsync):
                obs = p.Insync(True, self.now)
            else:
                assert isinstance(req, p.Sleep)
                if req.reason == "poll" and self.state.task is p.Task.IDLE:
                    return written
                self.now += req.max_seconds
                obs = p.Woke(self.now)
            self.state, self.request, notes = p.step(self.settings, self.state, obs)
            self.refused += [n.event for n in notes if n.event in ("plan_too_large", "plan_refused_by_route53")]
            self.now += 0.01
        raise RuntimeError("the machine did not settle")

    def tree_records(self) -> int:
        view = layout.read_endpoint(EP, self.zone.zone)
        active = view.active_tree
        assert active is not None
        reached = {r for r in view.leaves if r.name in active.leaves}
        return len(active.records) + len(reached)


def one_lb_spread(n: int, types: tuple[str, ...], samples: int = 10) -> tuple[float, int]:
    """Mean and max records a one-LB weight change writes, over `samples` LBs spread over the fleet:
    the tree's records not already in the zone, plus the flip's root and rollback UPSERT per type."""
    s = p.CoreSettings("bench")

    def records(weights: dict[int, int], tree_id: str) -> set:
        built = p.tree_records(s, EP, ZONE_ID, fleet(n, types, weights), p.TreeInHand(tree_id, 1, 0))
        return {(r.name, r.type, r.set_identifier, r.weight, r.alias, r.values) for r in built}

    base = records({}, "t-0")
    costs = [len(records({i: 250}, "t-1") - base) + 2 * len(types) for i in range(n // (2 * samples), n, n // samples)]
    return sum(costs) / len(costs), max(costs)


def run(n: int, types: tuple[str, ...], plans: int, changed: int, keep: int, quota: int) -> dict[str, object]:
    rng = random.Random(f"{n}-{types}")
    bench = Bench(keep, quota)
    weights: dict[int, int] = {}
    first = bench.apply(Plan.build(region="us-east-1", version=1, endpoints=[fleet(n, types, weights)], created_at="2025-10-20T06:48:00+00:00"))
    per_plan = bench.tree_records()
    weights[n // 2] = 200
    one = bench.apply(Plan.build(region="us-east-1", version=2, endpoints=[fleet(n, types, weights)], created_at="2025-10-20T06:49:00+00:00"))
    for v in range(3, plans + 1):
        for i in rng.sample(range(n), changed):
            weights[i] = rng.randint(1, 255)
        bench.apply(Plan.build(region="us-east-1", version=v, endpoints=[fleet(n, types, weights)], created_at="2025-10-20T06:50:00+00:00"))
    view = layout.read_endpoint(EP, bench.zone.zone)
    mean, worst = one_lb_spread(n, types)
    return {
        "one_lb_mean/max": f"{mean:.0f}/{worst}",
        "lbs": n, "types": ",".join(types), "first_plan_writes": first["build"] + first["flip"],
        "one_lb_change_writes": one["build"] + one["flip"], "tree_records_per_plan": per_plan,
        "zone_records_after": len(bench.zone.zone.records), "zone_peak": bench.peak,
        "served_version": view.active_version, "trees_kept": len(view.trees), "refusals": len(bench.refused),
    }


def shares(records: list[RecordSet], top: str) -> dict[str, float]:
    """Each LB's share of traffic (record type A) through the weighted sets from `top` down."""
    by_name: dict[str, list[RecordSet]] = {}
    for r in records:
        if r.type == "A":
            by_name.setdefault(r.name, []).append(r)
    out: dict[str, float] = {}
    todo = [(top, 1.0)]
    while todo:
        name, share = todo.pop()
        members = by_name[name]
        total = sum(m.weight or 0 for m in members)
        for m in members:
            part = share * (m.weight or 0) / total if total else 0.0
            if m.alias is None:
                out[m.set_identifier] = out.get(m.set_identifier, 0.0) + part
            else:
                todo.append((m.alias.dns_name, part))
    return out


def layout_row(n: int, types: tuple[str, ...], shape, changed: int, keep: int, seed: int = 7) -> dict[str, object]:
    """One shape, with the real tree builder: base tree, path copies per plan, peak of keep+2 trees."""
    from enactor import tree as tree_shape

    s = p.CoreSettings("bench", shape=shape)
    rng = random.Random(seed)

    def built(weights: dict[int, int], v: int) -> list[RecordSet]:
        return list(p.tree_records(s, EP, ZONE_ID, fleet(n, types, weights), p.TreeInHand(f"t-{v:032x}", v, 0)))

    def keys(records: list[RecordSet]) -> set:
        return {(r.name, r.type, r.set_identifier) for r in records}

    weights: dict[int, int] = {}
    first = built(weights, 1)
    one = keys(built({n // 2: 200}, 2)) - keys(first)
    trees = [keys(first)]
    for v in range(2, keep + 4):
        for i in rng.sample(range(n), changed):
            weights[i] = rng.randint(1, 255)
        trees.append(keys(built(weights, v)))
    per_plan = [len(t - trees[i]) for i, t in enumerate(trees[1:])]
    bookkeeping = 4 + 2 * len(types)  # SOA, NS, _lock, _applied, root and rollback per type
    peak = max(len(set().union(*trees[i : i + keep + 2])) for i in range(len(trees) - keep - 1)) + (keep + 2) + bookkeeping
    records = built(weights, 99)
    whole = sum(t.weight for t in fleet(n, types, weights).targets)
    got = shares(records, layout.tree_name(EP, f"t-{99:032x}"))
    error = max(abs(got.get(tree_shape.set_identifier(t.lb_id, t.az), 0.0) - t.weight / whole) for t in fleet(n, types, weights).targets)
    return {"bottom": shape.mean(0), "interior": shape.node_members, "top": shape.top_members, "base": len(first),
            "per_plan": round(sum(per_plan) / len(per_plan)), f"peak_keep{keep}": peak,
            "one_lb_change": len(one) + 2 * len(types), "max_share_error": f"{error:.2e}"}


def layouts(n: int, types: tuple[str, ...], changed: int, keep: int, quota: int) -> None:
    from enactor import tree as tree_shape

    t = len(types)
    print(f"arithmetic, {n} LBs x {t} type(s), {changed} LBs changed per plan, keep_plans {keep} (keep+2 trees at a build):")
    print(f"  the LBs' own record sets: {n * t} in any layout; with bottom fan-out k0 and C = {changed} x {keep + 1} changed LBs")
    print("  retained beyond the base, the zone is at least N + N/k0 + C k0 (+ the levels above, + tops and metadata);")
    best = min(range(2, 101), key=lambda k: n * t / k + changed * (keep + 1) * k * t)
    floor = n * t + n * t / best + changed * (keep + 1) * best * t
    print(f"  minimised over k0: k0 = {best}, at least {floor:,.0f} record sets before any interior level, top or metadata "
          f"(quota {quota:,}: {'fits' if floor < quota else 'cannot fit'} with {quota - floor:,.0f} to spare for the rest)")
    cols = ["bottom", "interior", "top", "base", "per_plan", f"peak_keep{keep}", "one_lb_change", "max_share_error"]
    print("measured with the tree builder:")
    print(" ".join(f"{c:>16}" for c in cols))
    for bottom, interior, top in ((10, 10, 16), (13, 10, 16), (16, 10, 16), (13, 6, 16), (13, 16, 16), (20, 10, 16), (13, 10, 40)):
        row = layout_row(n, types, tree_shape.Shape(node_members=interior, top_members=top, bottom_members=bottom), changed, keep)
        print(" ".join(f"{row[c]!s:>16}" for c in cols), flush=True)


def drift(n: int, types: tuple[str, ...], keep: int, quota: int) -> dict[str, object]:
    """A plan that changes every LB's weight after a first plan (the demo's drift): what it writes."""
    bench = Bench(keep, quota)
    bench.apply(Plan.build(region="us-east-1", version=1, endpoints=[fleet(n, types, {})], created_at="2025-10-20T06:48:00+00:00"))
    every = {i: 10 + (i + 3) % 11 for i in range(n)}
    written = bench.apply(Plan.build(region="us-east-1", version=2, endpoints=[fleet(n, types, every)], created_at="2025-10-20T06:49:00+00:00"))
    return {"lbs": n, "types": ",".join(types), "every_weight_changed_writes": written["build"] + written["flip"],
            "zone_records_after": len(bench.zone.zone.records), "zone_peak": bench.peak, "refusals": len(bench.refused)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lbs", default="1000,8000")
    ap.add_argument("--plans", type=int, default=10)
    ap.add_argument("--changed", type=int, default=10)
    ap.add_argument("--keep", type=int, default=5)
    ap.add_argument("--quota", type=int, default=10_000)
    ap.add_argument("--dual-stack", action="store_true")
    ap.add_argument("--drift", action="store_true", help="the cost of a plan that changes every weight")
    ap.add_argument("--layouts", action="store_true", help="the layout arithmetic and shapes (see the module doc)")
    args = ap.parse_args()
    types = ("A", "AAAA") if args.dual_stack else ("A",)
    if args.layouts:
        for n in (int(x) for x in args.lbs.split(",")):
            layouts(n, types, args.changed, args.keep, args.quota)
        return
    if args.drift:
        for n in (int(x) for x in args.lbs.split(",")):
            print(drift(n, types, args.keep, args.quota), flush=True)
        return
    cols = ["lbs", "types", "first_plan_writes", "one_lb_change_writes", "one_lb_mean/max", "tree_records_per_plan",
            "zone_records_after", "zone_peak", "served_version", "trees_kept", "refusals"]
    print(f"plans={args.plans} changed_per_plan={args.changed} keep_plans={args.keep} quota={args.quota}")
    print(" ".join(f"{c:>20}" for c in cols))
    for n in (int(x) for x in args.lbs.split(",")):
        row = run(n, types, args.plans, args.changed, args.keep, args.quota)
        print(" ".join(f"{row[c]!s:>20}" for c in cols), flush=True)


if __name__ == "__main__":
    main()
