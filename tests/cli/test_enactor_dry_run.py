"""`dnsctl enactor --dry-run`: the batches an enactor would submit now, against a real emulator
process; the zone stays byte-for-byte as it was, and a real enactor then makes the same changes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import botocore.session
import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from enactor import layout
from planner.fleet import validate_fleet
from planner.planning import build_plan
from services.plan.store import PlanStore
from services.route53.engine import apply_changes
from services.route53.records import Change, RecordSet, Zone
from services.zones import ensure_zones
from tests.processes import ROOT, ManagedProcess, free_port

ENACTOR = "enactor-b"


def dnsctl(*args: str, bucket: str, state_dir: Path | None = None) -> subprocess.CompletedProcess:
    # No stack described unless the test gives one (a demo's .dnsctl in the checkout must not count).
    env = {**os.environ, "DNSCTL_BUCKET": bucket, "COLUMNS": "200",
           "DNSCTL_STATE_DIR": str(state_dir or Path(tempfile.gettempdir()) / "dnsctl-test-no-stack")}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def fleet(name: str, second_ip: str):
    return validate_fleet(
        {
            "region": "us-east-1",
            "azs": ["use1-az1", "use1-az2"],
            "endpoints": [{"name": name, "record_types": ["A"]}],
            "load_balancers": [
                {"id": "lb-1", "az": "use1-az1", "endpoint": name, "capacity": 100, "ipv4": ["192.0.2.1"]},
                {"id": "lb-2", "az": "use1-az2", "endpoint": name, "capacity": 100, "ipv4": [second_ip]},
            ],
        }
    )


def raw_listing(emulator, zone_id: str) -> bytes:
    """ListResourceRecordSets as the emulator sends it, byte for byte (signed as boto3 signs it)."""
    url = f"{emulator.url}/2013-04-01/hostedzone/{zone_id}/rrset"
    request = AWSRequest("GET", url)
    SigV4Auth(botocore.session.get_session().get_credentials(), "route53", "us-east-1").add_auth(request)
    response = httpx.get(url, headers=dict(request.headers), timeout=30.0)
    response.raise_for_status()
    return response.content


def records(r53, zone_id: str) -> list[RecordSet]:
    return [RecordSet.from_boto(r) for r in r53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]]


_TREE = re.compile(r"t-[0-9a-f]{32}")
_TIMES = re.compile(r"\b(expires|created)=[0-9T:+-]+")


def shape(recs, trees: dict[str, str]) -> set[str]:
    """The zone without what differs between two runs that make the same changes: tree ids (fresh
    per listing), named in order of first appearance, and lock/creation times. The lock record is
    left out: a real unit ends by releasing it, which the dry run (one unit, up to its flip) does not show."""

    def tree(match: re.Match) -> str:
        return trees.setdefault(match.group(0), f"T{len(trees)}")

    out = set()
    for r in sorted(recs, key=lambda r: (r.name, r.type, r.set_identifier or "")):
        if r.name.startswith("_lock."):
            continue
        text = json.dumps(r.to_boto(), sort_keys=True)
        out.add(_TIMES.sub(r"\1=N", _TREE.sub(tree, text)))
    return out


def endpoint_with_plan_1(emulator, prefix: str):
    """A fresh endpoint zone and plan bucket holding plan 1: (name, route53 client, zone id, store)."""
    name = f"{prefix}.dnsctl-test.example"
    r53 = emulator.client("route53")
    zone_id = ensure_zones([name], r53)[layout.root_name(name)]
    store = PlanStore(prefix, "us-east-1")
    store.ensure_bucket()
    store.put(build_plan(fleet(name, "192.0.2.2"), 1, reason="test", lane="fast"))
    return name, r53, zone_id, store


def test_dry_run_submits_nothing_and_a_real_enactor_then_makes_the_same_changes(emulator, unique, tmp_path) -> None:
    name, r53, zone_id, store = endpoint_with_plan_1(emulator, f"dry-{unique}")
    # Plan 1 applied (through the batches `plan apply --dry-run` prints), then plan 2 re-addresses lb-2.
    first = json.loads(dnsctl("plan", "apply", "--dry-run", "1", "--json", bucket=store.bucket).stdout)
    for batch in first[0]["batches"]:
        r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": batch["changes"]})
    store.put(build_plan(fleet(name, "192.0.2.22"), 2, reason="re-address lb-2", lane="fast"))
    before_bytes = raw_listing(emulator, zone_id)
    before = records(r53, zone_id)

    text = dnsctl("enactor", "--id", ENACTOR, "--dry-run", bucket=store.bucket)
    assert text.returncode == 0, text.stderr
    assert f"dry run of {ENACTOR} (guarded) on the newest plan, 2" in text.stdout
    assert f"{name}: " in text.stdout and "outcome: flipped" in text.stdout
    assert "(build, plan 2" in text.stdout and "(flip, plan 2" in text.stdout and "192.0.2.22" in text.stdout
    listed = dnsctl("enactor", "--id", ENACTOR, "--dry-run", "--json", bucket=store.bucket)
    assert listed.returncode == 0, listed.stderr
    [preview] = json.loads(listed.stdout)
    assert preview["outcome"] == "flipped" and [b["purpose"] for b in preview["batches"]][-1] == "flip"
    assert raw_listing(emulator, zone_id) == before_bytes, "the dry run wrote to Route 53"
    # Every batch starts with the lock preamble for this enactor: it would take the lock, and did not.
    for batch in preview["batches"]:
        delete, create = batch["changes"][:2]
        assert delete["Action"] == "DELETE" and create["Action"] == "CREATE"
        assert create["ResourceRecordSet"]["Name"].startswith("_lock.") and f"holder={ENACTOR}" in json.dumps(create)

    # What the dry run says, applied by Route 53's own rules to the zone as it was...
    predicted = Zone.of(layout.root_name(name), before, zone_id)
    for batch in preview["batches"]:
        predicted = apply_changes(predicted, [Change.from_boto(c) for c in batch["changes"]])
    # ... is what a real enactor with the same settings makes of it.
    port = free_port()
    proc = ManagedProcess(
        ENACTOR, ["enactor", "--id", ENACTOR, "--port", str(port), "--poll-interval", "0.2"],
        {"DNSCTL_BUCKET": store.bucket, "AWS_ENDPOINT_URL": emulator.url, "DNSCTL_STATE_DIR": str(tmp_path)}, tmp_path,
    )
    try:
        proc.wait_http(f"http://127.0.0.1:{port}/status", timeout_s=60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            eps = httpx.get(f"http://127.0.0.1:{port}/status", timeout=10).json()["endpoints"]
            if any(e["applied_version"] == 2 and e["state"] == "idle" for e in eps.values()):
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"the real enactor did not apply plan 2:\n{proc.output()[-3000:]}")
    finally:
        proc.stop()
    after = records(r53, zone_id)
    assert shape(after, {}) == shape(predicted, {}), "the real enactor changed the zone otherwise than the dry run said"
    assert after != before
    # And now there is nothing left to do.
    again = json.loads(dnsctl("enactor", "--id", ENACTOR, "--dry-run", "--json", bucket=store.bucket).stdout)
    assert again[0]["batches"] == [] and again[0]["outcome"] == "up_to_date"


def test_dry_run_of_a_frozen_store_says_so_and_submits_nothing(emulator, unique, tmp_path) -> None:
    _, _, zone_id, store = endpoint_with_plan_1(emulator, f"frozen-{unique}")
    store.freeze("hands off", "test")
    before = raw_listing(emulator, zone_id)
    result = dnsctl("enactor", "--dry-run", "--json", bucket=store.bucket)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [] and "frozen: hands off" in result.stderr
    assert raw_listing(emulator, zone_id) == before
    bad = dnsctl("enactor", "--dry-run", "--keep-plans", "0", bucket=store.bucket)
    assert bad.returncode == 2 and "bad enactor settings: keep_plans" in bad.stderr
    # Thawed, from a shell whose state dir describes a legacy stack: it decides as that stack's enactors do.
    store.thaw("test")
    (tmp_path / "stack.json").write_text(json.dumps({"run_id": "r", "mode": "legacy", "services": {}}))
    legacy = dnsctl("enactor", "--dry-run", bucket=store.bucket, state_dir=tmp_path)
    assert legacy.returncode == 0, legacy.stderr
    assert "dry run of enactor-a (legacy) on the newest plan, 1" in legacy.stdout and "(flip, plan 1" in legacy.stdout
    assert "(guarded)" in dnsctl("enactor", "--dry-run", "--version-guard", bucket=store.bucket, state_dir=tmp_path).stdout
    assert raw_listing(emulator, zone_id) == before
