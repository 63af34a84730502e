"""`dnsctl plan apply --dry-run`: the enactor core's batches for a plan, read-only, against the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from enactor import layout
from planner.fleet import validate_fleet
from planner.planning import build_plan
from services.plan.store import PlanStore
from services.zones import ensure_zones
from tests.processes import ROOT


def dnsctl(*args: str, bucket: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DNSCTL_BUCKET": bucket, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_dry_run_prints_the_batches_route_53_accepts_and_then_nothing(emulator, unique) -> None:
    name = f"apply-{unique}.dnsctl-test.example"
    fleet = validate_fleet(
        {
            "region": "us-east-1",
            "azs": ["use1-az1", "use1-az2"],
            "endpoints": [{"name": name, "record_types": ["A"]}],
            "load_balancers": [
                {"id": f"lb-{k}", "az": f"use1-az{k}", "endpoint": name, "capacity": 100, "ipv4": [f"192.0.2.{k}"]}
                for k in (1, 2)
            ],
        }
    )
    r53 = emulator.client("route53")
    zone_id = ensure_zones([name], r53)[layout.root_name(name)]
    store = PlanStore(f"apply-{unique}", "us-east-1")
    store.ensure_bucket()
    store.put(build_plan(fleet, 1, reason="test", lane="fast"))
    before = r53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]

    text = dnsctl("plan", "apply", "--dry-run", "latest", bucket=store.bucket)
    assert text.returncode == 0, text.stderr
    assert "dry run of plan 1" in text.stdout and "(build, plan 1" in text.stdout and "(flip, plan 1" in text.stdout
    assert r53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"] == before, "read-only"

    listed = dnsctl("plan", "apply", "--dry-run", "1", "--json", bucket=store.bucket)
    assert listed.returncode == 0, listed.stderr
    [result] = json.loads(listed.stdout)
    assert result["outcome"] == "flipped" and result["batches"]
    # They are real batches: Route 53 accepts them in order, and then the plan is applied.
    for batch in result["batches"]:
        r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": batch["changes"]})
    again = json.loads(dnsctl("plan", "apply", "--dry-run", "1", "--json", bucket=store.bucket).stdout)
    assert again[0]["batches"] == [] and again[0]["outcome"] == "up_to_date"

    refused = dnsctl("plan", "apply", "1", bucket=store.bucket)
    assert refused.returncode == 2 and "plan restore" in refused.stderr
