"""DNS data plane figures: queries per second on loopback UDP, and root flip -> new answer served.

Starts its own emulator and `dnsctl dns` as separate processes (the server with its default
settings unless told otherwise), builds an endpoint zone by hand in Route 53 following
enactor/layout.py, then:

1. QPS: load generators in separate processes (services/dns/loadgen.py) send A and AAAA queries
   for the weighted endpoint over UDP with a window of queries in flight; answered queries per
   second of the slowest generator's run are reported, with lost queries.
2. Flip latency: a new tree is built, the root alias is flipped to it with one
   ChangeResourceRecordSets call at a random point of the server's refresh cycle, and DNS is
   polled every 2 ms until it answers with the new tree's addresses; the time from the call's
   return to that answer is reported.

    .venv/bin/python benchmarks/dns_bench.py [--queries 50000] [--generators 2] [--flips 20]

Figures depend on the machine; nothing here asserts a speed.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

import boto3  # noqa: E402
import dns.message  # noqa: E402
import dns.query  # noqa: E402

from services.dns.loadgen import encode_query, run_processes  # noqa: E402
from tests.dns.trees import HandZone, a_fleet  # noqa: E402
from tests.processes import ManagedProcess, free_port, free_port_udp_tcp  # noqa: E402


def wait_until(predicate, timeout_s: float, what: str, interval_s: float = 0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(interval_s)
    raise TimeoutError(what)


def addresses(port: int, name: str, rtype: str = "A") -> set[str]:
    reply = dns.query.udp(dns.message.make_query(name, rtype), "127.0.0.1", port=port, timeout=1.0)
    return {r.to_text() for rrset in reply.answer for r in rrset}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=50_000, help="queries per generator process")
    parser.add_argument("--generators", type=int, default=2, help="load generator processes")
    parser.add_argument("--window", type=int, default=64, help="queries in flight per generator")
    parser.add_argument("--lbs", type=int, default=10, help="load balancers behind the endpoint")
    parser.add_argument("--flips", type=int, default=20, help="root flips to time")
    parser.add_argument("--seed", type=int, default=1, help="seed of the flip timing")
    parser.add_argument("--refresh-ms", type=int, default=250, help="the DNS server's Route 53 refresh interval")
    args = parser.parse_args()

    logs = Path(tempfile.mkdtemp(prefix="dns-bench-"))
    emu_port = free_port()
    emulator = ManagedProcess("emulator", ["emulator", "--port", str(emu_port)], None, logs)
    server = None
    try:
        emulator.wait_http(f"http://127.0.0.1:{emu_port}/moto-api/", timeout_s=60)
        endpoint_url = f"http://127.0.0.1:{emu_port}"
        client = boto3.client("route53", endpoint_url=endpoint_url, region_name="us-east-1")
        zone = HandZone(client, f"dynamodb.bench-{uuid.uuid4().hex[:8]}.test")
        zone.flip(zone.build_tree(1, a_fleet(args.lbs)))
        dns_port = free_port_udp_tcp()
        server = ManagedProcess(
            "dns",
            ["dns", "--port", str(dns_port), "--zone", zone.endpoint, "--refresh-ms", str(args.refresh_ms)],
            {"AWS_ENDPOINT_URL": endpoint_url},
            logs,
        )
        wait_until(lambda: addresses(dns_port, zone.endpoint), 30, "the DNS server to serve the zone")

        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"machine: {os.cpu_count()} cores, load average {load}; server: 1 process; "
              f"endpoint with {args.lbs} weighted LBs (A+AAAA)")
        queries = [encode_query(zone.endpoint, "A"), encode_query(zone.endpoint, "AAAA")]
        run_processes("127.0.0.1", dns_port, queries, 2_000, 1, window=args.window)  # warm-up
        for generators in sorted({1, args.generators}):
            total, each = run_processes("127.0.0.1", dns_port, queries, args.queries, generators, window=args.window)
            print(
                f"UDP QPS, {generators} generator process(es), window {args.window}: {total.qps:,.0f} answered/s "
                f"({total.received:,} of {total.sent:,} answered, {total.lost} lost, {total.elapsed_s:.2f}s)"
            )

        latencies, call_times = [], []
        rng = random.Random(args.seed)
        for i in range(args.flips):
            fleet = a_fleet(1, salt=100 + i % 150)
            old = zone.active
            tree = zone.build_tree(2 + i, fleet, types=("A", "AAAA"))
            want = set(fleet[0].ipv4)
            # Flip at a random point of the server's refresh cycle, not right after the last one.
            time.sleep(rng.uniform(0, args.refresh_ms / 1000))
            before = time.perf_counter()
            zone.flip(tree)
            flipped = time.perf_counter()
            wait_until(lambda want=want: addresses(dns_port, zone.endpoint) == want, 30, "the flip to be served", 0.002)
            served = time.perf_counter()
            latencies.append(served - flipped)
            call_times.append(flipped - before)
            if old is not None and old in zone.trees:
                zone.delete_tree(old)  # the clean-up, so the zone stays small
        ms = [x * 1000 for x in latencies]
        print(
            f"root flip -> new answer served (refresh {args.refresh_ms} ms, {args.flips} flips): "
            f"median {statistics.median(ms):.0f} ms, p90 {percentile(ms, 90):.0f} ms, "
            f"min {min(ms):.0f} ms, max {max(ms):.0f} ms "
            f"(ChangeResourceRecordSets call itself: median {statistics.median(call_times) * 1000:.0f} ms)"
        )
    finally:
        if server is not None:
            server.stop()
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
