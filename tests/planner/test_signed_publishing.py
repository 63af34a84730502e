"""A planner process signs every plan, and its safety check trusts only plans that verify.

Issue 13: a bucket writer re-checksummed a plan with inflated capacities and the planner then
refused every later plan as unsafe. With a signing key, the planner's baseline is the newest plan
whose signature verifies, so the forged plan is skipped (logged as plan_invalid) and the next plan
is checked against the last genuine one.
"""

from __future__ import annotations

import boto3

from services.plan.model import Plan
from services.plan.signing import PlanSigner, PlanVerifier, generate_key_pair
from tests.plan.test_signing import rechecksummed


def test_plans_are_signed_and_a_forged_baseline_is_ignored(planner_factory, tmp_path, monkeypatch):
    private, public = generate_key_pair(tmp_path / "keys")
    monkeypatch.setenv("DNSCTL_PLAN_SIGNING_KEY_FILE", str(private))
    planner = planner_factory()
    first = planner.wait_for_version(1)
    s3 = boto3.client("s3")
    store = planner.store()
    raw = s3.get_object(Bucket=planner.bucket, Key=store.key_for(first))["Body"].read()
    genuine = Plan.from_json(raw)
    verifier = PlanVerifier.from_file(public)
    assert genuine.signature is not None and verifier.problem(genuine) is None
    assert genuine.signature.key_id == PlanSigner.from_file(private).key_id
    assert any(f'"plan_key": "{verifier.key_id}"' in line for line in planner.events("planner_started"))

    # Forge plan first+1: every capacity x100, re-checksummed, the old signature kept.
    body = genuine.body()
    for ep in body["endpoints"]:
        for t in ep["targets"]:
            t["capacity"] *= 100
    forged = rechecksummed(genuine, version=first + 1, endpoints=body["endpoints"])
    s3.put_object(Bucket=planner.bucket, Key=store.key_for(first + 1), Body=forged.to_json())

    with planner.http() as http:
        r = http.post("/v1/plans", json={"reason": "after the forgery"})
        assert r.status_code == 201, r.text  # against the forged baseline this would be a 97 % capacity drop
        assert r.json()["version"] == first + 2
        listed = {p["version"]: p for p in http.get("/v1/plans").json()["plans"]}
        assert "does not verify" in listed[first + 1]["invalid"]
    published = [e for e in planner.events("plan_published") if f'"plan_version": {first + 2}' in e]
    assert published and f'"baseline_version": {first}' in published[0]
    assert any(store.key_for(first + 1) in e for e in planner.events("plan_invalid"))
