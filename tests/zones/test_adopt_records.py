"""`adoption_of`: an endpoint's existing records -> fleet entries, and the fold of a weighted set (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.route53.engine import apply_changes
from services.route53.records import RecordSet, Zone
from services.zones import AdoptRefused, adoption_of

NAME = "api.example.test"


def a(values, ttl=60, **extra) -> dict:
    return {"Name": NAME + ".", "Type": "A", "TTL": ttl, "ResourceRecords": [{"Value": v} for v in values], **extra}


def aaaa(values, ttl=60, **extra) -> dict:
    return {**a(values, ttl, **extra), "Type": "AAAA"}


def test_a_plain_record_set_becomes_one_load_balancer_with_its_addresses():
    adoption = adoption_of(NAME, "example.test", "Z1", [a(["192.0.2.1", "192.0.2.2"]), aaaa(["2001:db8::1"])])
    assert adoption.record_types == ("A", "AAAA") and not adoption.weighted
    (lb,) = adoption.load_balancers
    assert lb["ipv4"] == ["192.0.2.1", "192.0.2.2"] and lb["ipv6"] == ["2001:db8::1"] and lb["capacity"] > 0
    body = adoption.fleet_entries("use1-az1")
    assert body["endpoint"] == {"name": NAME, "hosted_zone": "example.test", "record_types": ["A", "AAAA"]}
    assert body["load_balancers"][0]["az"] == "use1-az1" and body["load_balancers"][0]["endpoint"] == NAME
    assert adoption.fold_changes() == []


def test_records_of_other_names_and_types_are_left_alone():
    other = {**a(["192.0.2.9"]), "Name": "www.example.test."}
    txt = {"Name": NAME + ".", "Type": "TXT", "TTL": 60, "ResourceRecords": [{"Value": '"v=spf1 -all"'}]}
    adoption = adoption_of(NAME, "example.test", "Z1", [other, txt, a(["192.0.2.1"])])
    assert adoption.record_types == ("A",) and adoption.load_balancers[0]["ipv4"] == ["192.0.2.1"]


def test_a_weighted_set_becomes_one_load_balancer_per_member_with_its_weight_as_capacity():
    records = [
        a(["192.0.2.1"], SetIdentifier="Blue East", Weight=200), aaaa(["2001:db8::1"], SetIdentifier="Blue East", Weight=200),
        a(["192.0.2.2"], ttl=30, SetIdentifier="green", Weight=55), aaaa(["2001:db8::2"], SetIdentifier="green", Weight=55),
    ]
    adoption = adoption_of(NAME, "example.test", "Z1", records, prefix="old")
    assert adoption.weighted
    lbs = {lb["id"]: lb for lb in adoption.load_balancers}
    assert set(lbs) == {"old-blue-east", "old-green"}
    assert lbs["old-blue-east"]["capacity"] == 200 and lbs["old-green"]["capacity"] == 55
    assert lbs["old-green"]["ipv4"] == ["192.0.2.2"] and lbs["old-green"]["ipv6"] == ["2001:db8::2"]


def test_the_fold_is_one_valid_batch_that_keeps_every_address_and_unfold_undoes_it():
    records = [a([f"192.0.2.{i}"], ttl=60 - i, SetIdentifier=f"m{i}", Weight=i) for i in range(1, 4)]
    adoption = adoption_of(NAME, "example.test", "Z1", records)
    zone = Zone.of("example.test.", [RecordSet.from_boto(r) for r in records])
    folded = apply_changes(zone, adoption.fold_changes())
    assert folded.named(NAME + ".") == [RecordSet(NAME, "A", ttl=57, values=("192.0.2.1", "192.0.2.2", "192.0.2.3"))]
    assert apply_changes(folded, adoption.unfold_changes()).fingerprint() == zone.fingerprint()


@given(st.lists(st.tuples(st.integers(0, 255), st.integers(1, 254)), min_size=1, max_size=20, unique_by=lambda m: m[1]))
def test_every_weighted_member_is_one_load_balancer_and_the_fold_serves_the_union(members):
    records = [a([f"198.51.100.{ip}"], SetIdentifier=f"s{ip}", Weight=w) for w, ip in members]
    if not any(w for w, _ in members):
        with pytest.raises(AdoptRefused, match="weight 0"):
            adoption_of(NAME, "example.test", "Z1", records)
        return
    adoption = adoption_of(NAME, "example.test", "Z1", records)
    assert sorted(lb["capacity"] for lb in adoption.load_balancers) == sorted(w for w, _ in members)
    assert len({lb["id"] for lb in adoption.load_balancers}) == len(members)
    (plain,) = [c.record for c in adoption.fold_changes() if c.action == "CREATE"]
    assert set(plain.values) == {f"198.51.100.{ip}" for _, ip in members}


@pytest.mark.parametrize(
    ("records", "why"),
    [
        ([], "no A or AAAA records"),
        ([{"Name": NAME + ".", "Type": "CNAME", "TTL": 60, "ResourceRecords": [{"Value": "lb.example.net"}]}], "is a CNAME"),
        ([{"Name": NAME + ".", "Type": "A", "AliasTarget": {"HostedZoneId": "Z2", "DNSName": "x.elb.amazonaws.com", "EvaluateTargetHealth": False}}],
         "is an alias"),
        ([a(["192.0.2.1"], SetIdentifier="east", Region="us-east-1")], "latency routing"),
        ([a(["192.0.2.1"], SetIdentifier="p", Failover="PRIMARY")], "failover routing"),
        ([a(["192.0.2.1"], HealthCheckId="hc-1")], "health-checked"),
        ([a(["192.0.2.1"], SetIdentifier="x", Weight=1), a(["192.0.2.2"], SetIdentifier="y", Weight=1), aaaa(["2001:db8::1"], SetIdentifier="x", Weight=1)],
         "'y' .* has no AAAA"),
        ([a(["192.0.2.1"], SetIdentifier="x", Weight=1), aaaa(["2001:db8::1"], SetIdentifier="x", Weight=2)], "different weights"),
        ([a(["192.0.2.1"], SetIdentifier="x", Weight=0)], "weight 0"),
    ],
)
def test_what_dnsctl_cannot_serve_identically_is_refused_with_the_reason(records, why):
    with pytest.raises(AdoptRefused, match=why):
        adoption_of(NAME, "example.test", "Z1", records)
