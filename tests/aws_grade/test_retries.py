"""botocore's retries, not ours: Route 53's Throttling and PriorRequestNotComplete are retried by
botocore's standard/adaptive machinery, the settings follow boto3's standard configuration, and
every throttle is counted."""

from __future__ import annotations

import botocore.session
import pytest
from botocore.retries.standard import (
    RetryContext,
    RetryEventAdapter,
    StandardRetryConditions,
    ThrottlingErrorDetector,
)
from prometheus_client import REGISTRY

from enactor.propagation import wait_insync
from services import aws_clients
from services.aws_retries import RetryConfigInvalid, RetrySettings, retry_settings


def _context(code: str, operation: str, attempt: int = 1) -> RetryContext:
    model = botocore.session.get_session().get_service_model("route53").operation_model(operation)
    return RetryContext(
        attempt_number=attempt,
        operation_model=model,
        parsed_response={"Error": {"Code": code, "Message": "x"}},
        http_response=None,
        request_context={},
    )


@pytest.mark.parametrize("code", ["Throttling", "PriorRequestNotComplete"])
@pytest.mark.parametrize("operation", ["ChangeResourceRecordSets", "ListResourceRecordSets", "GetChange"])
def test_botocore_retries_route53s_codes_as_throttles(code, operation):
    """The fact services/aws_retries.py relies on: no extra retry rule is needed for these codes,
    and both count as throttles (1 s backoff base, adaptive rate cut)."""
    assert StandardRetryConditions(max_attempts=6).is_retryable(_context(code, operation))
    assert not StandardRetryConditions(max_attempts=6).is_retryable(_context(code, operation, attempt=6))
    assert ThrottlingErrorDetector(RetryEventAdapter()).is_throttling_error_from_context(_context(code, operation))


def test_a_real_error_is_not_retried():
    assert not StandardRetryConditions(max_attempts=6).is_retryable(_context("InvalidChangeBatch", "ChangeResourceRecordSets"))


def test_settings_default_to_adaptive_with_the_callers_attempts():
    assert retry_settings(5, {}, {}) == RetrySettings(mode="adaptive", total_max_attempts=6)
    assert retry_settings(5, {"retry_mode": "standard", "max_attempts": "4"}, {}) == RetrySettings("standard", 4)
    # The environment wins over the profile, as in boto3.
    env = {"AWS_RETRY_MODE": "adaptive", "AWS_MAX_ATTEMPTS": "10"}
    assert retry_settings(5, {"retry_mode": "standard", "max_attempts": "4"}, env) == RetrySettings("adaptive", 10)


@pytest.mark.parametrize(
    "env",
    [{"AWS_RETRY_MODE": "aggressive"}, {"AWS_MAX_ATTEMPTS": "many"}, {"AWS_MAX_ATTEMPTS": "0"}],
)
def test_bad_retry_settings_are_refused(env):
    with pytest.raises(RetryConfigInvalid):
        retry_settings(5, {}, env)


def test_clients_carry_the_settings(monkeypatch):
    monkeypatch.delenv("AWS_RETRY_MODE", raising=False)
    monkeypatch.delenv("AWS_MAX_ATTEMPTS", raising=False)
    assert aws_clients.route53_client().meta.config.retries == {"mode": "adaptive", "total_max_attempts": 6}
    assert aws_clients.s3_client().meta.config.retries == {"mode": "adaptive", "total_max_attempts": 4}
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "9")
    assert aws_clients.route53_client().meta.config.retries == {"mode": "standard", "total_max_attempts": 9}


def _throttles(code: str, operation: str) -> float:
    value = REGISTRY.get_sample_value(
        "dnsctl_aws_throttles_total", {"service": "route-53", "operation": operation, "code": code}
    )
    return value or 0.0


def test_prior_request_not_complete_is_retried_until_the_change_is_insync(aws_like_emulator, unique, monkeypatch):
    """Against the emulator with a 1 s propagation delay and the prior-request check: a second
    change right after the first is refused with PriorRequestNotComplete until the first is INSYNC;
    botocore retries it and it succeeds, and the refusals are in the throttle metric."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_like_emulator.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", f"prnc-{unique}")
    r53 = aws_clients.route53_client()
    created = r53.create_hosted_zone(Name=f"prnc-{unique}.example.com", CallerReference=unique)
    zone = created["HostedZone"]["Id"]
    # The zone's creation is itself a change, PENDING for the delay. Let it propagate first: a
    # refusal of the first batch would make botocore's adaptive mode slow this client down,
    # and a slowed-down second batch could arrive after the first had propagated.
    assert wait_insync(r53, [created["ChangeInfo"]["Id"]], timeout_s=30, poll_s=0.1).insync

    def create(label: str) -> dict:
        record = {"Name": f"{label}.prnc-{unique}.example.com", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}]}
        return r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": record}]})

    before = _throttles("PriorRequestNotComplete", "ChangeResourceRecordSets")
    first = create("one")
    assert first["ChangeInfo"]["Status"] == "PENDING"
    second = create("two")
    assert second["ResponseMetadata"]["RetryAttempts"] >= 1
    retried = first["ResponseMetadata"]["RetryAttempts"] + second["ResponseMetadata"]["RetryAttempts"]
    assert _throttles("PriorRequestNotComplete", "ChangeResourceRecordSets") - before == retried
    names = {r["Name"] for r in r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]}
    assert {f"one.prnc-{unique}.example.com.", f"two.prnc-{unique}.example.com."} <= names
