"""A real process that sends Route 53 calls through dnsctl's clients and reports what happened.

Tests run it as a child process (`python -m tests.aws_grade.route53_load`) so that the
process-wide rate limit starts fresh with the environment the test chose. It prints one JSON
object: elapsed seconds, the calls made, the retries botocore reported, and dnsctl's Route 53
metrics (requests, rate-limit waits, throttles by code).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

from prometheus_client import REGISTRY

from services.aws_clients import route53_client
from services.logs import configure


def _metrics() -> dict[str, float]:
    out: dict[str, float] = {}
    for family in REGISTRY.collect():
        for sample in family.samples:
            if not sample.name.startswith("dnsctl_") or sample.name.endswith("_created"):
                continue
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, required=True, help="ListHostedZones calls in total")
    parser.add_argument("--clients", type=int, default=1, help="separate route53 clients, one thread each")
    args = parser.parse_args()
    configure(process="route53-load", stream=sys.stderr)
    clients = [route53_client() for _ in range(args.clients)]
    retries: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()

    def work(client, n: int) -> None:
        for _ in range(n):
            try:
                meta = client.list_hosted_zones()["ResponseMetadata"]
                with lock:
                    retries.append(meta.get("RetryAttempts", 0))
            except Exception as exc:  # reported, not swallowed: the test asserts there are none
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")

    shares = [args.calls // args.clients + (1 if i < args.calls % args.clients else 0) for i in range(args.clients)]
    threads = [threading.Thread(target=work, args=(c, n)) for c, n in zip(clients, shares, strict=True)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    print(json.dumps({"elapsed_s": elapsed, "calls": len(retries), "retry_attempts": sum(retries), "errors": errors, "metrics": _metrics()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
