"""GetHostedZoneLimit and GetHostedZone's ResourceRecordSetCount, as the enactor reads them (gap 18)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.emulator.conftest import client, new_zone


def test_zone_limit_answers_the_default_quota_and_the_count(r53, zone):
    zone_id, name = zone
    r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        {"Action": "CREATE", "ResourceRecordSet": {"Name": f"a.{name}", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}]}}
    ]})
    limit = r53.get_hosted_zone_limit(Type="MAX_RRSETS_BY_ZONE", HostedZoneId=zone_id)
    assert limit["Limit"] == {"Type": "MAX_RRSETS_BY_ZONE", "Value": 10000} and limit["Count"] == 3  # SOA, NS, A
    assert r53.get_hosted_zone(Id=zone_id)["HostedZone"]["ResourceRecordSetCount"] == 3


def test_zone_limit_follows_the_configured_quota_and_refuses_nonsense(slow_emulator, unique):
    r53 = client(slow_emulator, "route53")
    zone_id, _ = new_zone(r53, unique, "limit")
    assert r53.get_hosted_zone_limit(Type="MAX_RRSETS_BY_ZONE", HostedZoneId=zone_id)["Limit"]["Value"] == 12
    with pytest.raises(ClientError) as bad:
        r53.get_hosted_zone_limit(Type="MAX_RECORDS", HostedZoneId=zone_id)
    assert bad.value.response["Error"]["Code"] == "InvalidInput"
    with pytest.raises(ClientError) as missing:
        r53.get_hosted_zone_limit(Type="MAX_RRSETS_BY_ZONE", HostedZoneId="ZNOSUCHZONE")
    assert missing.value.response["Error"]["Code"] == "NoSuchHostedZone"
