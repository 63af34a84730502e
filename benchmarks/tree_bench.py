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

    def apply(self, plan: Plan) -> dict[str, int]:
        """Run the machine until it polls again; count what it wrote by purpose."""
        written = {"build": 0, "flip": 0, "heal": 0, "cleanup": 0}
        if isinstance(self.request, p.Sleep):
            self.now += self.request.max_seconds
            self.state, self.request, _ = p.step(self.settings, self.state, p.Woke(self.now))
        for _ in range(10_000):
            req = self.request
            if isinstance(req, p.ReadNewestPlan):
                obs: p.Observation = p.PlanRead(plan)
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lbs", default="1000,8000")
    ap.add_argument("--plans", type=int, default=10)
    ap.add_argument("--changed", type=int, default=10)
    ap.add_argument("--keep", type=int, default=5)
    ap.add_argument("--quota", type=int, default=10_000)
    ap.add_argument("--dual-stack", action="store_true")
    args = ap.parse_args()
    types = ("A", "AAAA") if args.dual_stack else ("A",)
    cols = ["lbs", "types", "first_plan_writes", "one_lb_change_writes", "one_lb_mean/max", "tree_records_per_plan",
            "zone_records_after", "zone_peak", "served_version", "trees_kept", "refusals"]
    print(f"plans={args.plans} changed_per_plan={args.changed} keep_plans={args.keep} quota={args.quota}")
    print(" ".join(f"{c:>20}" for c in cols))
    for n in (int(x) for x in args.lbs.split(",")):
        row = run(n, types, args.plans, args.changed, args.keep, args.quota)
        print(" ".join(f"{row[c]!s:>20}" for c in cols), flush=True)


if __name__ == "__main__":
    main()
