"""Planner figures: building plans for large fleets, and publishing them through the real service.

1. Build: time to turn a fleet of N load balancers into a checked plan (weights, checksum,
   validation), and the plan's size in bytes, for the demo fleet and generated fleets.
2. Publish: a planner process (`dnsctl planner --lbs N`) against its own emulator process;
   POST /v1/plans latency (the whole path: freeze check, baseline read, safety check, conditional
   put, pointer update), newest_version() latency through the store (pointer + HEADs, no listing),
   and plans per second with 8 concurrent publishers.

    .venv/bin/python benchmarks/planner_bench.py [--lbs 1000] [--publishes 30]

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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

import httpx  # noqa: E402

from planner.fleet import demo_fleet, generate_fleet  # noqa: E402
from planner.planning import build_plan  # noqa: E402
from services.plan.store import PlanStore  # noqa: E402
from tests.processes import ManagedProcess, free_port  # noqa: E402

TOKEN = "bench-token"


def ms(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
    return f"p50 {statistics.median(values) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms   (n={len(values)})"


def bench_build(sizes: list[int]) -> None:
    print("plan build (fleet -> checked plan)")
    for n in sizes:
        fleet = demo_fleet() if n == 0 else generate_fleet(n, seed=1)
        times = []
        for v in range(1, 21):
            started = time.perf_counter()
            plan = build_plan(fleet, v, reason="bench", lane="slow")
            times.append(time.perf_counter() - started)
        label = f"{len(fleet.load_balancers)} LBs"
        print(f"  {label:>10}: {ms(times)}   plan {len(plan.to_json()):>8} bytes")


def bench_publish(lbs: int, publishes: int) -> None:
    logs = Path(tempfile.mkdtemp(prefix="planner-bench-"))
    emu_port, planner_port = free_port(), free_port()
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    emulator = ManagedProcess("emulator", ["emulator", "--port", str(emu_port)], None, logs)
    planner = None
    try:
        emulator.wait_http(f"http://127.0.0.1:{emu_port}/moto-api/", timeout_s=60)
        endpoint = f"http://127.0.0.1:{emu_port}"
        env = {"AWS_ENDPOINT_URL": endpoint, "DNSCTL_BUCKET": bucket, "DNSCTL_API_TOKEN": TOKEN}
        planner = ManagedProcess(
            "planner",
            ["planner", "--port", str(planner_port), "--plan-interval", "3600", "--lbs", str(lbs)],
            env,
            logs,
        )
        url = f"http://127.0.0.1:{planner_port}"
        planner.wait_http(f"{url}/healthz", timeout_s=60)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
            while http.get("/v1/planner/status").json()["newest_version"] is None:
                time.sleep(0.05)
            times = []
            for _ in range(publishes):
                started = time.perf_counter()
                http.post("/v1/plans").raise_for_status()
                times.append(time.perf_counter() - started)
        print(f"publish through the planner ({lbs} LBs): POST /v1/plans {ms(times)}")

        os.environ["AWS_ENDPOINT_URL"] = endpoint
        store = PlanStore(bucket, "us-east-1")
        times = []
        for _ in range(50):
            started = time.perf_counter()
            store.newest_version()
            times.append(time.perf_counter() - started)
        print(f"newest_version() with {store.newest_version()} plans in the store: {ms(times)}")

        def one(_: int) -> None:
            with httpx.Client(base_url=url, headers=headers, timeout=60) as h:
                h.post("/v1/plans").raise_for_status()

        count = 8 * 4
        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(count)))
        elapsed = time.perf_counter() - started
        print(f"8 concurrent publishers: {count} plans in {elapsed:.2f} s = {count / elapsed:.1f} plans/s")
    finally:
        if planner:
            planner.stop()
        emulator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lbs", type=int, default=1000, help="Fleet size for the publish figures (3..1000).")
    parser.add_argument("--publishes", type=int, default=30)
    args = parser.parse_args()
    bench_build([0, 100, 1000])
    bench_publish(args.lbs, args.publishes)


if __name__ == "__main__":
    main()
