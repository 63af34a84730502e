"""Benchmark: record-set creation and paging, this emulator against stock moto, in one run.

Both servers run as separate processes from the same moto package: `dnsctl emulator` (moto plus
services.route53.engine) and moto's own `moto_server`. Each gets one hosted zone, 20,000 A
record sets created in batches of 1,000 through boto3 over HTTP, then a full ListResourceRecordSets
pass in pages of 300. Printed: records/s, first and last batch time (flat means the per-batch
cost does not grow with the zone), paging time, and the ratio of the two creation rates.

    .venv/bin/python benchmarks/emulator_bench.py [--records 20000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server child process in its own process group, stopped by group at the end."""

    def __init__(self, name: str, args: list[str], port: int, log_dir: Path):
        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}"
        self._log = open(log_dir / f"{name}.log", "wb")
        self.proc = subprocess.Popen(
            args, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {self.proc.returncode}; see {self._log.name}")
            try:
                if httpx.get(f"{self.url}/moto-api/", timeout=1).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} did not become healthy")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._log.close()


@dataclass
class Result:
    name: str
    records: int
    batch_s: list[float]
    paging_s: float
    listed: int

    @property
    def create_s(self) -> float:
        return sum(self.batch_s)

    @property
    def rate(self) -> float:
        return self.records / self.create_s


def run(server: Server, records: int, batch: int) -> Result:
    r53 = boto3.client(
        "route53",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=300),
    )
    zone_name = "bench.example.com."
    zone_id = r53.create_hosted_zone(Name=zone_name, CallerReference=f"bench-{time.time_ns()}")["HostedZone"][
        "Id"
    ]
    times: list[float] = []
    for b in range(records // batch):
        changes = [
            {
                "Action": "CREATE",
                "ResourceRecordSet": {
                    "Name": f"r{b:03}-{i:04}.{zone_name}",
                    "Type": "A",
                    "TTL": 60,
                    "ResourceRecords": [{"Value": f"10.{b % 250}.{i // 250}.{i % 250}"}],
                },
            }
            for i in range(batch)
        ]
        t0 = time.perf_counter()
        r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    listed = 0
    kwargs: dict = {"HostedZoneId": zone_id, "MaxItems": "300"}
    while True:
        page = r53.list_resource_record_sets(**kwargs)
        listed += len(page["ResourceRecordSets"])
        if not page["IsTruncated"]:
            break
        kwargs = {
            "HostedZoneId": zone_id,
            "MaxItems": "300",
            "StartRecordName": page["NextRecordName"],
            "StartRecordType": page["NextRecordType"],
        }
        if "NextRecordIdentifier" in page:
            kwargs["StartRecordIdentifier"] = page["NextRecordIdentifier"]
    return Result(server.name, records, times, time.perf_counter() - t0, listed)


def report(res: Result) -> None:
    t = res.batch_s
    print(
        f"{res.name:<16} created {res.records} record sets in {res.create_s:7.2f} s = {res.rate:9.0f} records/s | "
        f"batch first {t[0] * 1000:7.1f} ms, last {t[-1] * 1000:7.1f} ms, median {statistics.median(t) * 1000:7.1f} ms, "
        f"last/first {t[-1] / t[0]:5.2f} | paged {res.listed} in {res.paging_s:6.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    env_python = sys.executable
    with tempfile.TemporaryDirectory(prefix="emulator-bench-") as tmp:
        log_dir = Path(tmp)
        results = []
        quota = str(args.records + 100)
        p1 = free_port()
        ours = Server(
            "dnsctl emulator",
            [
                env_python,
                "-m",
                "cli.main",
                "emulator",
                "--port",
                str(p1),
                "--max-record-sets-per-zone",
                quota,
            ],
            p1,
            log_dir,
        )
        try:
            results.append(run(ours, args.records, args.batch))
        finally:
            ours.stop()
        p2 = free_port()
        stock = Server(
            "stock moto", [env_python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(p2)], p2, log_dir
        )
        try:
            results.append(run(stock, args.records, args.batch))
        finally:
            stock.stop()
    print(
        f"emulator_bench: {args.records} A record sets in batches of {args.batch}, then ListResourceRecordSets in pages of 300"
    )
    for res in results:
        report(res)
    ours_r, stock_r = results
    print(
        f"ratio (dnsctl emulator / stock moto): creation rate {ours_r.rate / stock_r.rate:.1f}x, "
        f"last batch {stock_r.batch_s[-1] / ours_r.batch_s[-1]:.1f}x faster, paging {stock_r.paging_s / ours_r.paging_s:.1f}x faster"
    )


if __name__ == "__main__":
    main()
