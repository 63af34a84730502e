"""Enactor figures: time from a plan's publication to every endpoint flipped, and the Route 53 cost
of a plan, with three enactor processes against an emulator process.

For the demo fleet and a generated fleet of 300 load balancers (each in an emulator of its own):
three guarded enactors (`dnsctl enactor`, default settings: plans polled every second, Route 53
paced at 5 calls/s per process as AWS allows per account) apply a series of plans written to
the store. For every plan the script measures, by polling Route 53 itself, the time from the
plan's put until every endpoint's root serves it, then waits until all enactors are idle again
(clean-up done) and reads their /metrics to count Route 53 calls, batches and records written
for that plan, summed over the three enactors.

    .venv/bin/python benchmarks/enactor_bench.py [--plans 6] [--lbs 300]

Figures depend on the machine; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

import boto3  # noqa: E402
import httpx  # noqa: E402

from enactor import layout  # noqa: E402
from enactor.faults import Faults  # noqa: E402
from enactor.metrics import EnactorMetrics  # noqa: E402
from enactor.runner import InconsistentListing, Route53Zone  # noqa: E402
from planner.fleet import Fleet, demo_fleet, generate_fleet  # noqa: E402
from planner.planning import build_plan  # noqa: E402
from services.plan.store import PlanStore  # noqa: E402
from services.stack import ENACTORS  # noqa: E402
from services.zones import ensure_zones, find_zone_id  # noqa: E402
from tests.processes import ManagedProcess, free_port  # noqa: E402


def scrape(url: str) -> Counter:
    out: Counter = Counter()
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("dnsctl_enactor_") and "_created" not in line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] += float(value)
    return out


def total(counter: Counter, prefix: str) -> float:
    return sum(v for k, v in counter.items() if k.startswith(prefix))


class Bench:
    def __init__(self, fleet: Fleet, label: str, tmp: Path):
        self.fleet, self.label, self.tmp = fleet, label, tmp
        port = free_port()
        self.emulator = ManagedProcess(f"emulator-{label}", ["emulator", "--port", str(port)], None, tmp)
        self.url = f"http://127.0.0.1:{port}"
        self.emulator.wait_http(self.url + "/moto-api/", timeout_s=60)
        self.route53 = boto3.client("route53", endpoint_url=self.url, region_name="us-east-1")
        names = [e.name for e in fleet.endpoints]
        ensure_zones(names, self.route53)
        self.readers = {
            layout.root_name(n): Route53Zone(self.route53, find_zone_id(n, self.route53), layout.root_name(n), EnactorMetrics(), Faults())
            for n in names
        }
        self.bucket = f"bench-{uuid.uuid4().hex[:8]}"
        self.store = PlanStore(self.bucket, fleet.region, s3=boto3.client("s3", endpoint_url=self.url, region_name="us-east-1"))
        self.store.ensure_bucket()
        env = {"AWS_ENDPOINT_URL": self.url, "DNSCTL_BUCKET": self.bucket, "DNSCTL_REGION": fleet.region}
        self.enactors = []
        for name, az, _ in ENACTORS:
            eport = free_port()
            proc = ManagedProcess(f"{name}-{label}", ["enactor", "--id", name, "--az", az, "--port", str(eport)], env, tmp)
            self.enactors.append((proc, f"http://127.0.0.1:{eport}"))
        for proc, url in self.enactors:
            proc.wait_http(url + "/healthz", timeout_s=30)

    def serving(self) -> dict[str, int | None]:
        out = {}
        for ep, reader in self.readers.items():
            try:
                view = layout.read_endpoint(ep, reader.snapshot())
            except InconsistentListing:
                out[ep] = None
                continue
            out[ep] = None if view.dangling else view.active_version
        return out

    def idle(self, version: int) -> bool:
        for _, url in self.enactors:
            st = httpx.get(url + "/status", timeout=10).json()
            if len(st["endpoints"]) != len(self.readers):
                return False
            for e in st["endpoints"].values():
                if e["done_version"] < version or e["state"] != "idle":
                    return False
        return True

    def run(self, plans: int) -> dict:
        times, calls, records, batches, by_op = [], [], [], [], Counter()
        for version in range(1, plans + 1):
            plan = build_plan(self.fleet, version, reason="bench", lane="slow")
            before = sum((scrape(url) for _, url in self.enactors), Counter())
            self.store.put(plan)
            published = time.monotonic()
            while any(v != version for v in self.serving().values()):
                if time.monotonic() - published > 300:
                    raise TimeoutError(f"plan {version} not flipped everywhere after 300 s: {self.serving()}")
                time.sleep(0.02)
            times.append(time.monotonic() - published)
            while not self.idle(version):
                time.sleep(0.1)
            time.sleep(0.3)
            after = sum((scrape(url) for _, url in self.enactors), Counter())
            delta = after - before
            calls.append(total(delta, "dnsctl_enactor_route53_calls_total"))
            records.append(total(delta, "dnsctl_enactor_records_written_total"))
            batches.append(total(delta, 'dnsctl_enactor_batches_total'))
            for k, v in delta.items():
                if version > 1 and k.startswith("dnsctl_enactor_route53_calls_total"):
                    by_op[k.split('operation="', 1)[1].rstrip('"}')] += v
        return {"times": times, "calls": calls, "records": records, "batches": batches, "by_op": by_op}

    def stop(self) -> None:
        for proc, _ in self.enactors:
            proc.stop()
        self.emulator.stop()


def report(label: str, fleet: Fleet, r: dict, plans: int) -> None:
    lbs = len(fleet.load_balancers)
    first, rest = r["times"][0], r["times"][1:] or r["times"]
    print(f"{label}: {lbs} load balancers, {len(fleet.endpoints)} endpoints, {plans} plans, 3 guarded enactors")
    print(f"  publication -> all endpoints flipped: first plan {first:6.2f} s; later plans "
          f"median {statistics.median(rest):6.2f} s, max {max(rest):6.2f} s")
    print(f"  per plan (3 enactors together): Route 53 calls first {r['calls'][0]:.0f}, later mean "
          f"{statistics.mean(r['calls'][1:] or r['calls']):.1f}; batches mean {statistics.mean(r['batches']):.1f}; "
          f"records written first {r['records'][0]:.0f}, later mean {statistics.mean(r['records'][1:] or r['records']):.1f}")
    ops = ", ".join(f"{op} {n / max(1, plans - 1):.1f}" for op, n in sorted(r["by_op"].items()))
    print(f"  Route 53 calls per later plan by operation (mean): {ops}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--plans", type=int, default=6)
    parser.add_argument("--lbs", type=int, default=300)
    args = parser.parse_args()
    print("enactor defaults: poll interval 1.0 s, guard on, keep_plans 5, Route 53 paced at 5 calls/s per process\n")
    with tempfile.TemporaryDirectory() as tmp:
        for label, fleet in (("demo fleet", demo_fleet()), (f"generated fleet ({args.lbs} LBs)", generate_fleet(args.lbs, seed=1))):
            bench = Bench(fleet, label.split()[0], Path(tmp))
            try:
                report(label, fleet, bench.run(args.plans), args.plans)
            finally:
                bench.stop()


if __name__ == "__main__":
    main()
