"""Scale figures (issue 11): one endpoint with a large fleet, three guarded enactor processes, a real emulator.

For every size given, A-only (dynamodb.us-east-1.amazonaws.com) and dual-stack
(dynamodb.us-east-1.api.aws), the script builds the fleet with the planner's own generator and
validator (planner/fleet.py: a fleet whose tree cannot fit the zone quota is refused there, and
the refusal is printed), starts an emulator process and three `dnsctl enactor` processes (guard
on, default settings: keep_plans 5, plans polled every second), and writes plans to the store
with the planner's own plan builder:

    plan 1: the full fleet; plan 2: one LB's weight changes; plans 3..N: ten LBs' weights change.

Two modes, each with its own emulator:
- free-running: the emulator does not throttle and the enactors' client-side limiter is opened
  (DNSCTL_ROUTE53_RPS=1000), so the protocol's own cost shows;
- throttled: the emulator throttles the enactors' account at 5 requests/s (burst 5), the way
  tests/aws_grade does (`--throttle --throttle-rate 5 --throttle-burst 5`), and each enactor paces
  itself at a third of that (DNSCTL_ROUTE53_RPS=1.67), as on AWS.

Measured per plan, never estimated:
- publication -> flipped: from the plan's put until an enactor reports (its /status, polled every
  0.1 s) that Route 53 accepted the plan's flip batch;
- Route 53 calls by operation (ListResourceRecordSets, ChangeResourceRecordSets, GetChange,
  GetHostedZone for the zone's size before a targeted build, GetHostedZoneLimit for its quota,
  cached five minutes) and records written (changes in accepted batches: lock preamble,
  tree, flip, compare-and-swap and clean-up deletes) from the three enactors' /metrics, summed,
  taken when all three are idle again at the plan (its clean-up done);
- zone record sets: listed when the flip is seen and again when idle; the peak is the largest.
The script's own zone listings use another access key than the enactors', so they never spend
the throttled account's budget (the emulator's Throttling count printed is for all clients).

Each (size, mode) run is bounded by --timeout; whatever was not reached is printed with the
enactors' state and last error (a zone quota refusal, a stuck endpoint, ...).

    .venv/bin/python benchmarks/scale_bench.py --a-only 300,1000 --dual-stack 1000 [--plans 10]
        [--throttled-plans 3] [--modes free,throttled] [--timeout 900]

Figures depend on the machine and its load; calls and records do not.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
import httpx  # noqa: E402
from botocore.config import Config  # noqa: E402

from benchmarks.enactor_bench import scrape  # noqa: E402
from benchmarks.enactor_bench import total as _sum  # noqa: E402
from enactor import layout  # noqa: E402
from enactor.faults import Faults  # noqa: E402
from enactor.metrics import EnactorMetrics  # noqa: E402
from enactor.runner import InconsistentListing, Route53Zone  # noqa: E402
from planner.fleet import Fleet, FleetError, generate_fleet  # noqa: E402
from planner.planning import build_plan  # noqa: E402
from services.emulator.server import METRICS_PATH  # noqa: E402
from services.plan.model import Plan  # noqa: E402
from services.plan.store import PlanStore  # noqa: E402
from services.stack import ENACTORS  # noqa: E402
from services.zones import ensure_zones, find_zone_id  # noqa: E402
from tests.processes import ManagedProcess, free_port  # noqa: E402

A_ONLY = "dynamodb.us-east-1.amazonaws.com"
DUAL_STACK = "dynamodb.us-east-1.api.aws"
ENACTOR_KEY = "scale-bench-enactors"  # the throttled account
READER_KEY = "scale-bench-reader"  # the script's own reads
THROTTLE_RPS = 5.0
OPS = ("list_resource_record_sets", "change_resource_record_sets", "get_change", "get_hosted_zone", "get_hosted_zone_limit")


class Unreached(Exception):
    """A run hit its deadline or a refusal; the message says what could not be reached and why."""


@dataclass
class PlanFigures:
    version: int
    lbs_changed: int
    flip_s: float | None = None
    calls: Counter = field(default_factory=Counter)
    records_written: float = 0.0
    batches: float = 0.0
    zone_at_flip: int | None = None
    zone_idle: int | None = None
    throttled: float = 0.0


def _client(service: str, url: str, key: str):
    # The script's listings may meet Throttling too (the emulator limits every account): retry patiently.
    config = Config(retries={"mode": "adaptive", "max_attempts": 50})
    return boto3.client(
        service, endpoint_url=url, region_name="us-east-1", aws_access_key_id=key, aws_secret_access_key="bench", config=config
    )


class Run:
    """One emulator and three enactors for one fleet and mode."""

    def __init__(self, fleet: Fleet, mode: str, tmp: Path, deadline: float):
        self.fleet, self.mode, self.deadline = fleet, mode, deadline
        (self.endpoint,) = [e.name for e in fleet.endpoints]
        self.root = layout.root_name(self.endpoint)
        port = free_port()
        flags = ["--throttle", "--throttle-rate", str(THROTTLE_RPS), "--throttle-burst", str(THROTTLE_RPS)] if mode == "throttled" else []
        self.processes: list[ManagedProcess] = []
        self.emulator = self._start(f"emulator-{mode}", ["emulator", "--port", str(port), *flags], None, tmp)
        self.url = f"http://127.0.0.1:{port}"
        self.emulator.wait_http(self.url + "/moto-api/", timeout_s=60)
        route53 = _client("route53", self.url, READER_KEY)
        ensure_zones([self.endpoint], route53)
        self.zone = Route53Zone(route53, find_zone_id(self.endpoint, route53), self.root, EnactorMetrics(), Faults())
        self.bucket = f"scale-{uuid.uuid4().hex[:8]}"
        self.store = PlanStore(self.bucket, fleet.region, s3=_client("s3", self.url, READER_KEY))
        self.store.ensure_bucket()
        rps = "1000" if mode == "free" else f"{THROTTLE_RPS / 3:.2f}"
        env = {
            "AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": ENACTOR_KEY, "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1", "DNSCTL_BUCKET": self.bucket, "DNSCTL_REGION": fleet.region,
            "DNSCTL_ROUTE53_RPS": rps, "DNSCTL_ROUTE53_BURST": rps,
        }
        self.enactors: list[tuple[ManagedProcess, str]] = []
        for name, az, _ in ENACTORS:
            eport = free_port()
            proc = self._start(f"{name}-{mode}", ["enactor", "--id", name, "--az", az, "--port", str(eport)], env, tmp)
            self.enactors.append((proc, f"http://127.0.0.1:{eport}"))
        for proc, url in self.enactors:
            proc.wait_http(url + "/healthz", timeout_s=60)

    def _start(self, name, args, env, tmp) -> ManagedProcess:
        proc = ManagedProcess(name, args, env, tmp)
        self.processes.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()

    # -- observations ----------------------------------------------------------------------

    def applied_version(self) -> int:
        """The newest version an enactor saw Route 53 accept a flip of (its /status; no Route 53 call,
        so watching never spends the throttled account's budget)."""
        best = 0
        for _, url in self.enactors:
            for ep in httpx.get(url + "/status", timeout=30).json()["endpoints"].values():
                best = max(best, ep["applied_version"] or 0)
        return best

    def zone_records(self) -> int | None:
        try:
            return len(self.zone.snapshot())
        except InconsistentListing:
            return None

    def metrics(self) -> Counter:
        return sum((scrape(url) for _, url in self.enactors), Counter())

    def throttled(self) -> float:
        """Route 53 requests the emulator refused with Throttling (its own counter)."""
        text = httpx.get(self.url + METRICS_PATH, timeout=30).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("dnsctl_emulator_throttled_total"))

    def idle_at(self, version: int) -> bool:
        for _, url in self.enactors:
            st = httpx.get(url + "/status", timeout=30).json()
            eps = list(st["endpoints"].values())
            if not eps or any(e["done_version"] < version or e["state"] != "idle" for e in eps):
                return False
        return True

    def why(self) -> str:
        lines = []
        for proc, url in self.enactors:
            try:
                st = httpx.get(url + "/status", timeout=10).json()
            except httpx.HTTPError as exc:
                lines.append(f"{proc.name}: unreachable ({exc})")
                continue
            for ep in st["endpoints"].values():
                lines.append(f"{proc.name}: state {ep['state']}, applied {ep['applied_version']}, done {ep['done_version']}, "
                             f"plan in hand {ep['plan_in_hand']}, last error: {(ep['last_error'] or '-')[:300]}")
        return "\n      ".join(lines)

    def _wait(self, what: str, ok) -> None:
        while not ok():
            if time.monotonic() > self.deadline:
                raise Unreached(f"{what}: not reached before the --timeout\n      {self.why()}")
            time.sleep(0.1)

    # -- one plan ----------------------------------------------------------------------------

    def apply(self, plan: Plan, lbs_changed: int) -> PlanFigures:
        figures = PlanFigures(plan.version, lbs_changed)
        before, throttled = self.metrics(), self.throttled()
        self.store.put(plan)
        published = time.monotonic()
        self._wait(f"plan {plan.version} flipped", lambda: self.applied_version() >= plan.version)
        figures.flip_s = time.monotonic() - published
        figures.zone_at_flip = self.zone_records()
        self._wait(f"plan {plan.version} cleaned up (all enactors idle)", lambda: self.idle_at(plan.version))
        time.sleep(0.5)  # let the last metrics land
        figures.zone_idle = self.zone_records()
        delta = self.metrics() - before
        for op in OPS:
            figures.calls[op] = _sum(delta, f'dnsctl_enactor_route53_calls_total{{operation="{op}"}}')
        figures.records_written = _sum(delta, "dnsctl_enactor_records_written_total")
        figures.batches = _sum(delta, "dnsctl_enactor_batches_total")
        figures.throttled = self.throttled() - throttled
        return figures


def plans_for(fleet: Fleet, count: int, seed: int):
    """Plan 1 the full fleet, plan 2 one LB's weight changed, then ten LBs per plan (planner's own builder)."""
    rng = random.Random(seed)
    top = max(b.capacity for b in fleet.load_balancers)
    # Only LBs below the largest capacity: lowering them never moves the largest LB's weight (255),
    # so only they change (checked below against the previous plan, not assumed).
    candidates = [b.id for b in fleet.load_balancers if b.capacity < top]
    rng.shuffle(candidates)
    drift: dict[str, float] = {}
    previous: Plan | None = None
    for version in range(1, count + 1):
        k = 0 if version == 1 else 1 if version == 2 else 10
        for _ in range(k):
            lb = candidates.pop()
            drift[lb] = 0.5
        plan = build_plan(fleet, version, reason=f"scale bench: {k} LBs changed", lane="slow", drift=dict(drift))
        changed = len(plan.endpoints[0].targets) if previous is None else sum(
            a != b for a, b in zip(previous.endpoints[0].targets, plan.endpoints[0].targets, strict=True)
        )
        yield plan, changed
        previous = plan


def run_size(n: int, endpoint: str, mode: str, plans: int, timeout_s: float, tmp: Path) -> None:
    kind = "A-only" if endpoint == A_ONLY else "dual-stack"
    title = f"{n} LBs {kind} ({endpoint}), {mode}"
    try:
        fleet = generate_fleet(n, seed=1, endpoints=(endpoint,))
    except FleetError as exc:
        print(f"{title}: NOT REACHED: the planner refuses this fleet: {exc}\n", flush=True)
        return
    print(f"{title}: {plans} plans, 3 guarded enactors, keep_plans 5, timeout {timeout_s:.0f} s", flush=True)
    started = time.monotonic()
    run: Run | None = None
    done: list[PlanFigures] = []
    try:
        run = Run(fleet, mode, tmp, started + timeout_s)
        for plan, changed in plans_for(fleet, plans, seed=n):
            done.append(run.apply(plan, changed))
            f = done[-1]
            print(f"  plan {f.version:2d} ({f.lbs_changed:4d} LBs changed): flipped {f.flip_s:6.2f} s after publication; "
                  f"List/Change/GetChange {f.calls['list_resource_record_sets']:.0f}/{f.calls['change_resource_record_sets']:.0f}/"
                  f"{f.calls['get_change']:.0f}, GetHostedZone(+Limit) {f.calls['get_hosted_zone']:.0f}(+{f.calls['get_hosted_zone_limit']:.0f}); records written {f.records_written:.0f} in {f.batches:.0f} batches; "
                  f"zone {f.zone_at_flip} at flip, {f.zone_idle} idle; {f.throttled:.0f} Throttling answers", flush=True)
    except Unreached as exc:
        print(f"  NOT REACHED: {exc}", flush=True)
    finally:
        if run is not None:
            run.stop()
    summarise(done, mode)
    print(f"  ({time.monotonic() - started:.0f} s for this run)\n", flush=True)


def summarise(done: list[PlanFigures], mode: str) -> None:
    if not done:
        return
    first = done[0]
    print(f"  full first plan: records written {first.records_written:.0f}; flipped {first.flip_s:.2f} s after publication ({mode})")
    if len(done) > 1:
        one = done[1]
        print(f"  one-LB weight change: records written {one.records_written:.0f}; flipped {one.flip_s:.2f} s after publication")
    later = done[1:] or done
    calls = {op: statistics.mean(f.calls[op] for f in later) for op in OPS}
    print(f"  per later plan (3 enactors, mean of {len(later)}): List {calls['list_resource_record_sets']:.1f} / "
          f"Change {calls['change_resource_record_sets']:.1f} / GetChange {calls['get_change']:.1f} / "
          f"GetHostedZone(+Limit) {calls['get_hosted_zone']:.1f}(+{calls['get_hosted_zone_limit']:.1f}) "
          f"= {sum(calls.values()):.1f} Route 53 calls; publication -> flipped median {statistics.median(f.flip_s for f in later):.2f} s")
    samples = [z for f in done for z in (f.zone_at_flip, f.zone_idle) if z is not None]
    print(f"  zone record sets after {len(done)} plans: {done[-1].zone_idle} (peak {max(samples) if samples else '?'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--a-only", default="300,1000", help="A-only fleet sizes, comma-separated ('' for none)")
    parser.add_argument("--dual-stack", default="", help="dual-stack fleet sizes, comma-separated")
    parser.add_argument("--plans", type=int, default=10, help="plans per free-running run")
    parser.add_argument("--throttled-plans", type=int, default=3, help="plans per throttled run")
    parser.add_argument("--modes", default="free,throttled")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per (size, mode) run")
    args = parser.parse_args()
    sizes = [(int(n), A_ONLY) for n in args.a_only.split(",") if n] + [(int(n), DUAL_STACK) for n in args.dual_stack.split(",") if n]
    os.environ.pop("AWS_PROFILE", None)
    with tempfile.TemporaryDirectory() as tmp:
        for n, endpoint in sizes:
            for mode in args.modes.split(","):
                plans = args.plans if mode == "free" else args.throttled_plans
                run_size(n, endpoint, mode, plans, args.timeout, Path(tmp))


if __name__ == "__main__":
    main()
