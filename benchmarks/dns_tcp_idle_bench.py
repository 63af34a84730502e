"""TCP DNS latency for one client while another client holds 300 idle TCP connections.

Starts its own emulator and `dnsctl dns` as separate processes, builds an endpoint zone by hand,
then times N TCP queries (a new connection each, as a stub resolver retrying after TC does)
from 127.0.0.1: first with nothing else connected, then while a "hog" on 127.0.0.2 opens and
holds `--idle` connections without sending anything. Prints the latencies, how many of the
hog's connections the server kept, and how many of the victim's queries failed.

    .venv/bin/python benchmarks/dns_tcp_idle_bench.py [--idle 300] [--queries 200]

Figures depend on the machine; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import os
import socket
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

from benchmarks.dns_bench import addresses, percentile, wait_until  # noqa: E402
from tests.dns.trees import HandZone, a_fleet  # noqa: E402
from tests.processes import ManagedProcess, free_port, free_port_udp_tcp  # noqa: E402


def time_queries(port: int, name: str, n: int) -> tuple[list[float], int]:
    latencies, failed = [], 0
    for _ in range(n):
        started = time.perf_counter()
        try:
            reply = dns.query.tcp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=5)
            if not reply.answer:
                failed += 1
                continue
        except (OSError, dns.exception.DNSException):
            failed += 1
            continue
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies, failed


def describe(label: str, ms: list[float], failed: int) -> str:
    if not ms:
        return f"{label}: every query failed ({failed})"
    return (f"{label}: median {statistics.median(ms):.2f} ms, p99 {percentile(ms, 99):.2f} ms, "
            f"max {max(ms):.2f} ms; {len(ms)} answered, {failed} failed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=int, default=300, help="idle TCP connections the other client holds")
    parser.add_argument("--queries", type=int, default=200, help="TCP queries timed per phase")
    args = parser.parse_args()

    logs = Path(tempfile.mkdtemp(prefix="dns-tcp-bench-"))
    emu_port = free_port()
    emulator = ManagedProcess("emulator", ["emulator", "--port", str(emu_port)], None, logs)
    server = None
    hog: list[socket.socket] = []
    try:
        emulator.wait_http(f"http://127.0.0.1:{emu_port}/moto-api/", timeout_s=60)
        endpoint_url = f"http://127.0.0.1:{emu_port}"
        zone = HandZone(boto3.client("route53", endpoint_url=endpoint_url, region_name="us-east-1"),
                        f"dynamodb.tcpbench-{uuid.uuid4().hex[:8]}.test")
        zone.flip(zone.build_tree(1, a_fleet(4)))
        dns_port = free_port_udp_tcp()
        server = ManagedProcess("dns", ["dns", "--port", str(dns_port), "--zone", zone.endpoint],
                                {"AWS_ENDPOINT_URL": endpoint_url}, logs)
        wait_until(lambda: addresses(dns_port, zone.endpoint), 30, "the DNS server to serve the zone")
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"machine: {os.cpu_count()} cores, load average {load}")
        time_queries(dns_port, zone.endpoint, 20)  # warm-up
        print(describe("TCP query, no other client", *time_queries(dns_port, zone.endpoint, args.queries)))

        for _ in range(args.idle):
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.settimeout(3)
            try:
                s.connect(("127.0.0.1", dns_port))
                hog.append(s)
            except OSError:
                s.close()
        time.sleep(0.5)
        kept = 0
        for s in hog:
            s.settimeout(0.05)
            try:
                if s.recv(1) != b"":
                    kept += 1
            except TimeoutError:
                kept += 1
            except OSError:
                pass
        print(f"other client (127.0.0.2) opened {len(hog)} idle connections; the server kept {kept} of them open")
        print(describe(f"TCP query with {args.idle} idle connections held by another client",
                       *time_queries(dns_port, zone.endpoint, args.queries)))
    finally:
        for s in hog:
            s.close()
        if server is not None:
            server.stop()
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
