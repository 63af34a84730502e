"""Plan signatures (services/plan/signing.py): what verifies, what does not, and the key files.

Pure tests of the signer and verifier, plus the plan store's read path against the emulator
process: a store given a public key turns an unsigned, re-checksummed or foreign-key plan into
PlanInvalid, exactly as a corrupt one.
"""

from __future__ import annotations

import json
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from services.plan.model import Plan, PlanInvalid, checksum
from services.plan.signing import PlanSigner, PlanVerifier, SigningKeyError, generate_key_pair
from services.plan.store import PlanStore
from tests.enactor.world import endpoint_plan, make_plan

SIGNER = PlanSigner(Ed25519PrivateKey.generate())
VERIFIER = SIGNER.verifier()


def plan(version: int = 1, lbs: int = 3) -> Plan:
    return make_plan(version, [endpoint_plan("ep.example.com", lbs)])


def rechecksummed(signed: Plan, **changes) -> Plan:
    """What a bucket writer can do without the key: change the body, stamp a fresh checksum, keep the signature."""
    body = {**signed.body(), **changes}
    return Plan.model_validate({**body, "sha256": checksum(body)}).with_signature(signed.signature)


def test_a_signed_plan_verifies_and_survives_its_json():
    signed = SIGNER.sign(plan())
    assert VERIFIER.problem(signed) is None
    again = Plan.from_json(signed.to_json())
    assert again == signed and VERIFIER.problem(again) is None
    assert signed.sha256 == plan().sha256, "the signature is outside the checksum: signing changes no body byte"


def test_unsigned_plans_serialise_exactly_as_before_signatures():
    assert "signature" not in json.loads(plan().to_json())


def test_unsigned_foreign_and_tampered_plans_do_not_verify():
    signed = SIGNER.sign(plan())
    assert "not signed" in VERIFIER.problem(plan())
    other = PlanSigner(Ed25519PrivateKey.generate())
    assert "signed by key" in VERIFIER.problem(other.sign(plan()))
    tampered = rechecksummed(signed, reason="inflated capacities")
    assert tampered.sha256 != signed.sha256  # a valid checksum for the new body
    assert "does not verify" in VERIFIER.problem(tampered)


@settings(max_examples=40, deadline=None)
@given(weight=st.integers(0, 255), lb=st.integers(0, 2), version=st.integers(2, 10**6))
def test_any_change_to_a_signed_plan_breaks_its_signature(weight, lb, version):
    signed = SIGNER.sign(plan())
    endpoints = signed.body()["endpoints"]
    candidates = [rechecksummed(signed, version=version)]
    if endpoints[0]["targets"][lb]["weight"] != weight:
        endpoints[0]["targets"][lb]["weight"] = weight
        candidates.append(rechecksummed(signed, endpoints=endpoints))
    for candidate in candidates:
        assert VERIFIER.problem(candidate) is not None


def test_key_pair_files_are_mode_600_and_kept_across_runs(tmp_path):
    private, public = generate_key_pair(tmp_path / "state")
    for path in (private, public):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    signer = PlanSigner.from_file(private)
    assert PlanVerifier.from_file(public).problem(signer.sign(plan())) is None
    again = generate_key_pair(tmp_path / "state")
    assert again == (private, public) and PlanSigner.from_file(private).key_id == signer.key_id


def test_bad_key_material_is_a_clear_error(tmp_path, monkeypatch):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    with pytest.raises(SigningKeyError, match="not a PEM private key"):
        PlanSigner.from_file(junk)
    with pytest.raises(SigningKeyError, match="cannot read"):
        PlanVerifier.from_file(tmp_path / "missing.pub")
    monkeypatch.setenv("DNSCTL_PLAN_PUBLIC_KEY", "junk")
    with pytest.raises(SigningKeyError, match="DNSCTL_PLAN_PUBLIC_KEY"):
        PlanVerifier.load(None)


def test_a_verifying_store_rejects_what_it_did_not_sign(emulator, unique):
    s3 = emulator.client("s3")
    writer = PlanStore(f"signed-{unique}", "us-east-1", s3=s3, signer=SIGNER)
    writer.ensure_bucket()
    reader = PlanStore(f"signed-{unique}", "us-east-1", s3=s3, verifier=VERIFIER)
    stored = writer.put(plan(1))
    assert stored.signature is not None and reader.get(1) == stored
    s3.put_object(Bucket=writer.bucket, Key=writer.key_for(2), Body=plan(2).to_json())
    s3.put_object(Bucket=writer.bucket, Key=writer.key_for(3), Body=rechecksummed(SIGNER.sign(plan(3)), reason="x").to_json())
    for version, words in ((2, "not signed"), (3, "does not verify")):
        with pytest.raises(PlanInvalid, match=words) as info:
            reader.get(version)
        assert info.value.key == writer.key_for(version)
    assert reader.newest_version() == 3


def test_the_signing_key_is_read_from_secrets_manager(emulator, unique):
    """How the ECS planner task gets its key (deploy/aws/dnsctl.yaml): one GetSecretValue at start."""
    from cryptography.hazmat.primitives import serialization

    client = emulator.client("secretsmanager")
    pem = SIGNER.private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    arn = client.create_secret(Name=f"plan-key-{unique}", SecretString=pem.splitlines()[1])["ARN"]
    assert PlanSigner.load(None, arn, secrets_client=client).key_id == SIGNER.key_id
    with pytest.raises(SigningKeyError, match="cannot read the plan signing key"):
        PlanSigner.from_secret(f"missing-{unique}", client)


@pytest.mark.parametrize(
    ("service", "env", "words"),
    [
        ("planner", {"DNSCTL_PLAN_SIGNING_KEY_FILE": "/nonexistent/plan-signing.key"}, "cannot read the plan signing key"),
        ("enactor", {"DNSCTL_PLAN_PUBLIC_KEY": "junk"}, "not a PEM public key"),
    ],
)
def test_a_bad_key_stops_the_service_at_start_with_the_reason(service, env, words):
    import subprocess
    import sys

    from tests.processes import ROOT, free_port

    run = subprocess.run(
        [sys.executable, "-m", "cli.main", service, "--port", str(free_port())],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "DNSCTL_API_TOKEN": "t", "AWS_ENDPOINT_URL": "http://127.0.0.1:1", **env},
    )
    output = " ".join((run.stdout + run.stderr).split())
    assert run.returncode == 2 and words in output and "Traceback" not in output, output
