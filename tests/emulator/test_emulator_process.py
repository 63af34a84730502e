"""Conformance of the emulator as a process: propagation, PriorRequestNotComplete, throttling,
quota, reset, the state file across a restart, and malformed requests that must never get a 500.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.conftest import start_emulator
from tests.emulator.conftest import RESET_TOKEN, client, new_zone


def a_record(name: str, ip: str = "10.0.0.1") -> dict[str, Any]:
    return {"Name": name, "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": ip}]}


def batch(*records: dict[str, Any], action: str = "CREATE") -> dict[str, Any]:
    return {"Changes": [{"Action": action, "ResourceRecordSet": r} for r in records]}


def error_of(call: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        call()
    resp = info.value.response
    return resp["Error"]["Code"], resp["Error"]["Message"], resp["ResponseMetadata"]["HTTPStatusCode"]


def test_get_change_is_pending_until_the_propagation_delay_has_passed(slow_emulator, unique):
    """AWS: a change is PENDING until it has reached every Route 53 server, then INSYNC."""
    r53 = client(slow_emulator, "route53")
    zone_id, name = new_zone(r53, unique, "prop")
    time.sleep(1.6)  # the zone's own creation change must settle first (prior-request check is on)
    info = r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch=batch(a_record(f"a.{name}")))[
        "ChangeInfo"
    ]
    assert info["Status"] == "PENDING"
    assert r53.get_change(Id=info["Id"])["ChangeInfo"]["Status"] == "PENDING"
    # The record itself is visible at once through the control API, as on AWS.
    names = [r["Name"] for r in r53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]]
    assert f"a.{name}" in names
    deadline = time.monotonic() + 5
    while r53.get_change(Id=info["Id"])["ChangeInfo"]["Status"] == "PENDING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert r53.get_change(Id=info["Id"])["ChangeInfo"]["Status"] == "INSYNC"


def test_prior_request_not_complete_while_the_previous_change_is_pending(slow_emulator, unique):
    """AWS: PriorRequestNotComplete when a zone's previous change has not finished propagating."""
    r53 = client(slow_emulator, "route53")
    zone_id, name = new_zone(r53, unique, "prior")
    code, message, status = error_of(
        lambda: r53.change_resource_record_sets(
            HostedZoneId=zone_id, ChangeBatch=batch(a_record(f"a.{name}"))
        )
    )
    assert (code, status) == ("PriorRequestNotComplete", 400)
    assert "still processing a prior request" in message
    time.sleep(1.6)
    r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch=batch(a_record(f"a.{name}")))
    names = [r["Name"] for r in r53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]]
    assert f"a.{name}" in names


def test_record_set_quota_per_zone_is_enforced(slow_emulator, unique):
    """AWS: "Exceeded limit MAX_RRSETS_BY_ZONE for zone: Z..." (quota 12 here: SOA + NS + 10)."""
    r53 = client(slow_emulator, "route53")
    zone_id, name = new_zone(r53, unique, "quota")
    time.sleep(1.6)
    too_many = batch(*(a_record(f"r{i}.{name}") for i in range(11)))
    code, message, _ = error_of(
        lambda: r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch=too_many)
    )
    assert (code, message) == (
        "InvalidChangeBatch",
        f"[Exceeded limit MAX_RRSETS_BY_ZONE for zone: {zone_id}]",
    )
    r53.change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch=batch(*(a_record(f"r{i}.{name}") for i in range(10)))
    )
    assert r53.get_hosted_zone(Id=zone_id)["HostedZone"]["ResourceRecordSetCount"] == 12


def test_reset_clears_zones_and_records(slow_emulator, unique):
    """moto's /moto-api/reset works with the API token (and only with it) and empties the Route 53 store too."""
    r53 = client(slow_emulator, "route53")
    zone_id, _ = new_zone(r53, unique, "reset")
    assert httpx.post(f"{slow_emulator.url}/moto-api/reset").status_code == 401
    assert httpx.post(f"{slow_emulator.url}/moto-api/reset", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.post(f"{slow_emulator.url}/moto-api/seed?a=1").status_code == 401
    assert r53.get_hosted_zone(Id=zone_id)  # nothing was wiped
    reset = httpx.post(f"{slow_emulator.url}/moto-api/reset", headers={"Authorization": f"Bearer {RESET_TOKEN}"})
    assert reset.status_code == 200
    assert r53.list_hosted_zones_by_name()["HostedZones"] == []
    code, _, status = error_of(lambda: r53.list_resource_record_sets(HostedZoneId=zone_id))
    assert (code, status) == ("NoSuchHostedZone", 404)
    new_zone(r53, unique + "x", "reset")  # and it keeps working afterwards


def test_throttling_answers_rate_exceeded(throttled_emulator, unique):
    """AWS: over the account's request rate Route 53 answers HTTP 400 Throttling "Rate exceeded"."""
    r53 = client(throttled_emulator, "route53")
    time.sleep(2.5)  # start from a full bucket
    outcomes = []
    for _ in range(15):  # burst 5, 2 per second: most of a quick run of 15 must be refused
        try:
            r53.list_hosted_zones_by_name()
            outcomes.append("ok")
        except ClientError as err:
            outcomes.append(
                (
                    err.response["Error"]["Code"],
                    err.response["Error"]["Message"],
                    err.response["ResponseMetadata"]["HTTPStatusCode"],
                )
            )
    refused = [o for o in outcomes if o != "ok"]
    assert 5 <= outcomes.count("ok") <= 8
    assert refused and set(refused) == {("Throttling", "Rate exceeded", 400)}
    # S3 is not behind the Route 53 bucket.
    s3 = client(throttled_emulator, "s3")
    for _ in range(10):
        s3.list_buckets()
    # botocore's own retries absorb throttling, as the services' clients rely on.
    time.sleep(1.0)
    from botocore.config import Config

    patient = client(throttled_emulator, "route53", Config(retries={"mode": "adaptive", "max_attempts": 10}))
    for _ in range(8):
        patient.list_hosted_zones_by_name()


def test_state_file_survives_a_restart_with_the_same_zone_ids(tmp_path_factory, unique):
    """`--state-file`: state saved on SIGTERM comes back on the next start; zone ids and change ids too."""
    path = tmp_path_factory.mktemp("state") / "emulator.state"
    first = start_emulator(tmp_path_factory, "--state-file", str(path))
    try:
        r53, s3 = client(first, "route53"), client(first, "s3")
        zone_id, name = new_zone(r53, unique, "persist")
        info = r53.change_resource_record_sets(
            HostedZoneId=zone_id,
            ChangeBatch=batch(
                a_record(f"www.{name}"),
                {
                    "Name": f"_lock.{name}",
                    "Type": "TXT",
                    "TTL": 5,
                    "ResourceRecords": [{"Value": '"holder=a"'}],
                },
            ),
        )["ChangeInfo"]
        s3.create_bucket(Bucket=f"plans-{unique}")
        s3.put_object(Bucket=f"plans-{unique}", Key="plan/0001.json", Body=b'{"version": 1}')
        before = r53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    finally:
        first.process.stop()
    assert first.process.proc.returncode == 0
    assert path.exists()

    second = start_emulator(tmp_path_factory, "--state-file", str(path))
    try:
        r53, s3 = client(second, "route53"), client(second, "s3")
        assert r53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"] == before
        assert r53.get_hosted_zone(Id=zone_id)["HostedZone"]["Name"] == name
        assert r53.list_hosted_zones_by_name(DNSName=name)["HostedZones"][0]["Id"] == f"/hostedzone/{zone_id}"
        assert r53.get_change(Id=info["Id"])["ChangeInfo"]["Status"] == "INSYNC"
        assert (
            s3.get_object(Bucket=f"plans-{unique}", Key="plan/0001.json")["Body"].read() == b'{"version": 1}'
        )
        # The restored zone still obeys the rules: the lock's stale DELETE is refused.
        stale = {
            "Name": f"_lock.{name}",
            "Type": "TXT",
            "TTL": 5,
            "ResourceRecords": [{"Value": '"holder=z"'}],
        }
        code, _, _ = error_of(
            lambda: r53.change_resource_record_sets(
                HostedZoneId=zone_id, ChangeBatch=batch(stale, action="DELETE")
            )
        )
        assert code == "InvalidChangeBatch"
    finally:
        second.process.stop()


def test_reset_is_off_without_a_token(tmp_path_factory, unique):
    emu = start_emulator(tmp_path_factory, env={"DNSCTL_API_TOKEN": "", "DNSCTL_STATE_DIR": str(tmp_path_factory.mktemp("nostate"))})
    try:
        r53 = client(emu, "route53")
        zone_id, _ = new_zone(r53, unique, "noreset")
        r = httpx.post(f"{emu.url}/moto-api/reset", headers={"Authorization": "Bearer anything"})
        assert r.status_code == 403 and "off" in r.text
        assert r53.get_hosted_zone(Id=zone_id)
    finally:
        emu.process.stop()


def test_unreadable_state_file_starts_empty_and_says_why(tmp_path_factory):
    """Bad input never kills the process: a corrupt state file is logged and the emulator starts empty."""
    path = tmp_path_factory.mktemp("badstate") / "emulator.state"
    path.write_bytes(b"not a pickle at all")
    emu = start_emulator(tmp_path_factory, "--state-file", str(path))
    try:
        assert client(emu, "route53").list_hosted_zones_by_name()["HostedZones"] == []
        assert "emulator_state_unreadable" in emu.process.output()
    finally:
        emu.process.stop()


ROUTE53_AUTH = "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/route53/aws4_request, SignedHeaders=host, Signature=0"
S3_AUTH = (
    "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0"
)


@pytest.mark.parametrize(
    ("method", "path", "body", "auth", "code"),
    [
        (
            "POST",
            "/2013-04-01/hostedzone/{zone}/rrset/",
            b"<ChangeResourceRecordSetsRequest",
            ROUTE53_AUTH,
            "InvalidInput",
        ),
        ("POST", "/2013-04-01/hostedzone/{zone}/rrset/", b"", ROUTE53_AUTH, "InvalidInput"),
        ("POST", "/2013-04-01/hostedzone/{zone}/rrset/", b"\xff\xfe\x00", ROUTE53_AUTH, "InvalidInput"),
        (
            "POST",
            "/2013-04-01/hostedzone/{zone}/rrset/",
            b'<ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeBatch><Changes>'
            b"<Change><Action>CREATE</Action><ResourceRecordSet><Name>x.{zone_name}</Name><Type>A</Type><TTL>soon</TTL>"
            b"<ResourceRecords><ResourceRecord><Value>10.0.0.1</Value></ResourceRecord></ResourceRecords></ResourceRecordSet>"
            b"</Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>",
            ROUTE53_AUTH,
            "InvalidInput",
        ),
        (
            "POST",
            "/2013-04-01/hostedzone/{zone}/rrset/",
            b'<ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeBatch><Changes>'
            b"<Change><Action>CREATE</Action></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>",
            ROUTE53_AUTH,
            "InvalidInput",
        ),
        ("GET", "/2013-04-01/hostedzone/{zone}/rrset?maxitems=many", b"", ROUTE53_AUTH, "InvalidInput"),
        ("GET", "/2013-04-01/hostedzone/{zone}/rrset?type=A", b"", ROUTE53_AUTH, "InvalidInput"),
        ("POST", "/2013-04-01/hostedzone", b"<CreateHostedZoneRequest><Name>", ROUTE53_AUTH, "InvalidInput"),
        (
            "PUT",
            "/malformed-{unique}",
            b"<CreateBucketConfiguration><LocationConstraint>",
            S3_AUTH,
            "MalformedXML",
        ),
    ],
)
def test_malformed_requests_get_aws_errors_never_a_500(emulator, r53, unique, method, path, body, auth, code):
    """AWS answers a malformed request with a 4xx error code; the emulator never 500s and stays up."""
    zone_id, zone_name = new_zone(r53, unique, "bad")
    url = emulator.url + path.format(zone=zone_id, unique=unique)
    resp = httpx.request(
        method, url, content=body.replace(b"{zone_name}", zone_name.encode()), headers={"Authorization": auth}
    )
    assert 400 <= resp.status_code < 500, resp.text
    assert f"<Code>{code}</Code>" in resp.text
    assert httpx.get(f"{emulator.url}/moto-api/").status_code == 200
    assert r53.get_hosted_zone(Id=zone_id)["HostedZone"]["ResourceRecordSetCount"] == 2


def test_metrics_count_changes_and_bad_requests(emulator, r53, zone):
    """The emulator exposes Prometheus counters for applied/rejected batches and bad requests."""
    zone_id, name = zone
    r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch=batch(a_record(f"m.{name}")))
    text = httpx.get(f"{emulator.url}/_emulator/metrics").text
    assert 'dnsctl_emulator_route53_changes_total{result="applied"}' in text
    assert "dnsctl_emulator_bad_requests_total" in text
