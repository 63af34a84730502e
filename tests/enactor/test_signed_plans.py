"""A real enactor process applies only plans signed with the key it is given (issue 13 item 3).

Anyone who can write the bucket can re-checksum a plan; without the planner's private key they
cannot sign it. The enactor (given the public key, as `dnsctl up` gives it) rejects a tampered,
re-checksummed plan and an unsigned one written straight to the emulator's S3 as `plan_rejected`,
keeps serving the last good plan, and applies the next good plan.
"""

from __future__ import annotations

import time

import boto3
import pytest

from services.plan.signing import PlanSigner, generate_key_pair
from services.plan.store import PlanStore
from tests.enactor.test_enactor_processes import REGION, Lab
from tests.plan.test_signing import rechecksummed


@pytest.fixture
def signed_lab(emulator, unique, tmp_path):
    private, public = generate_key_pair(tmp_path / "keys")
    lab = Lab(emulator, unique, tmp_path, n_endpoints=1)
    lab.start(names=(("enactor-a", "use1-az1"),), DNSCTL_PLAN_PUBLIC_KEY_FILE=str(public))
    try:
        yield lab, PlanStore(lab.bucket, REGION, s3=emulator.client("s3"), signer=PlanSigner.from_file(private))
    finally:
        lab.stop()


def _wait_rejected(lab: Lab, key: str, timeout_s: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [e for e in lab.events("enactor-a") if e.get("event") == "plan_rejected" and e.get("key") == key]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no plan_rejected for {key}:\n{lab.enactors['enactor-a'].process.output()[-3000:]}")


def test_tampered_and_unsigned_plans_are_rejected_and_the_next_good_plan_applied(signed_lab):
    lab, signed = signed_lab
    started = [e for e in lab.events("enactor-a") if e.get("event") == "enactor_started"]
    assert started and started[0]["plan_key"] == signed.signer.key_id
    signed.put(lab.plan(1))
    lab.wait_applied(1)
    s3 = boto3.client("s3", endpoint_url=lab.emulator.url, region_name="us-east-1")

    # A bucket writer re-checksums plan 2 with other weights, keeping the planner's signature.
    good2 = signed.signer.sign(lab.plan(2))
    endpoints = good2.body()["endpoints"]
    for t in endpoints[0]["targets"]:
        t["weight"] = 255
    tampered = rechecksummed(good2, endpoints=endpoints)
    s3.put_object(Bucket=lab.bucket, Key=signed.key_for(2), Body=tampered.to_json())
    event = _wait_rejected(lab, signed.key_for(2))
    assert "does not verify" in event["reason"]

    # An unsigned plan 3, equally well-formed, is rejected too.
    s3.put_object(Bucket=lab.bucket, Key=signed.key_for(3), Body=lab.plan(3).to_json())
    event = _wait_rejected(lab, signed.key_for(3))
    assert "not signed" in event["reason"]
    (view,) = lab.views().values()
    assert view.active_version == 1 and view.applied_value.version == 1, "the last good plan keeps serving"
    assert lab.enactors["enactor-a"].metrics()["dnsctl_enactor_plans_rejected_total"] >= 2

    # The next good plan (version 4) is applied.
    assert signed.put(lab.plan(4)).version == 4
    (view,) = lab.wait_applied(4).values()
    weights = {m.lb_id: m.weight for m in view.active_tree.meta.members}
    assert weights == {t.lb_id: t.weight for t in lab.plan(4).endpoints[0].targets}
