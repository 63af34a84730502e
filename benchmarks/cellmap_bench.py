"""Cell map figures: the map's size as a plan and what applying it costs, for 12 and 1,000 accounts.

Against an emulator process of its own, per size: the seeded map (services/cells/cellmap.py's
seed_body over 3 cells) is published to its stream (signed, as `dnsctl up` signs), then one cell
map enactor round (enactor/cellmap_runner.py, the code `dnsctl cells enactor` runs, its Route 53
calls paced at the default 5 requests/s per process as AWS allows per account) applies it; then
one account is moved and applied again. Printed: the map's JSON bytes, accounts, batches and
account records written, Route 53 calls, and the wall time of each apply (list + batches).

    .venv/bin/python benchmarks/cellmap_bench.py [--sizes 12,1000] [--rps 5]

Figures depend on the machine; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import os
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="12,1000")
    parser.add_argument("--rps", default="5", help="client-side Route 53 pacing (DNSCTL_ROUTE53_RPS)")
    args = parser.parse_args()
    os.environ["DNSCTL_ROUTE53_RPS"] = args.rps
    os.environ["DNSCTL_ROUTE53_BURST"] = args.rps

    from tests.processes import ManagedProcess, free_port

    tmp = Path(tempfile.mkdtemp(prefix="cellmap-bench-"))
    for size in (int(s) for s in args.sizes.split(",")):
        port = free_port()  # an emulator per size: every size starts from an empty accounts zone
        emulator = ManagedProcess(f"emulator-{size}", ["emulator", "--port", str(port)], None, tmp)
        url = f"http://127.0.0.1:{port}"
        try:
            emulator.wait_http(url + "/moto-api/", timeout_s=60)
            os.environ["AWS_ENDPOINT_URL"] = url
            run(size, tmp)
        finally:
            emulator.stop()


def run(accounts: int, tmp: Path) -> None:
    from enactor.cellmap_runner import CellMapRunner, cellmap_store
    from enactor.settings import EnactorSettings
    from services.aws_clients import route53_client
    from services.cells.cellmap import CellMap, seed_body
    from services.cells.naming import accounts_zone
    from services.plan.signing import PlanSigner, generate_key_pair
    from services.zones import ensure_zones, find_zone_id

    bucket = f"cellmap-bench-{uuid.uuid4().hex[:8]}"
    private, public = generate_key_pair(tmp / uuid.uuid4().hex[:6])
    route53 = route53_client()
    zone = accounts_zone("us-east-1")
    if find_zone_id(zone, route53) is None:
        ensure_zones([zone], route53)
    store = cellmap_store(bucket, "us-east-1", signer=PlanSigner.from_file(private))
    store.ensure_bucket()
    body = seed_body(3, accounts)
    published = store.publish(lambda v: CellMap.build(body, region="us-east-1", version=v, reason="bench seed"))
    size = len(published.to_json())
    settings = EnactorSettings(enactor_id="cellmap-bench", bucket=bucket, plan_public_key_file=public)
    runner = CellMapRunner(settings, route53=route53)

    def apply(label: str, version: int) -> None:
        before = {k: v for k, v in _calls(runner).items()}
        started = time.perf_counter()
        runner.round()
        elapsed = time.perf_counter() - started
        assert runner.applied_version == version, runner.last_error
        calls = {k: v - before.get(k, 0) for k, v in _calls(runner).items() if v - before.get(k, 0)}
        print(f"  {label:<28} {elapsed * 1000:8.0f} ms   Route 53 calls {sum(calls.values()):.0f} "
              f"({', '.join(f'{k} {v:.0f}' for k, v in sorted(calls.items()))})")

    print(f"{accounts} accounts: cell map v{published.version} is {size:,} bytes of JSON "
          f"({size / max(1, accounts):.0f} bytes per account), signed")
    from enactor import cellmap as machine
    from enactor.faults import Faults
    from enactor.metrics import EnactorMetrics
    from enactor.runner import Route53Zone

    reader = Route53Zone(route53, find_zone_id(zone, route53), zone + ".", EnactorMetrics(), Faults())
    unit = machine.decide(settings.core(), reader.zone_id, reader.snapshot(), published, time.time())
    print(f"  whole map: {unit.changes} account records in {len(unit.batches)} batches")
    apply("apply whole map", published.version)
    moved = store.publish(lambda v: CellMap.build(published.with_move(f"{100_000_000_001:012d}", "cell-2"), region="us-east-1",
                                                  version=v, reason="bench move"))
    unit = machine.decide(settings.core(), reader.zone_id, reader.snapshot(), moved, time.time())
    print(f"  one move: {unit.changes} account record in {len(unit.batches)} batch")
    apply("apply one move", moved.version)
    empty = store.publish(lambda v: CellMap.build(seed_body(3, 0), region="us-east-1", version=v, reason="bench clear"))
    apply(f"delete all {accounts}", empty.version)


def _calls(runner) -> dict[str, float]:
    out: dict[str, float] = {}
    for metric in runner.metrics.route53_calls.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                out[sample.labels["operation"]] = sample.value
    return out


if __name__ == "__main__":
    main()
