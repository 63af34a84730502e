"""Conformance: Route 53's change-batch rules, through boto3 over HTTP against the emulator process.

Each test names the AWS behaviour it checks; the engine's unit tests cover every rule in depth,
these prove the emulator really serves them on the wire.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError


def rrs(
    name: str, rtype: str, *values: str, ttl: int = 60, sid: str | None = None, weight: int | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Name": name,
        "Type": rtype,
        "TTL": ttl,
        "ResourceRecords": [{"Value": v} for v in values],
    }
    if sid is not None:
        out["SetIdentifier"] = sid
    if weight is not None:
        out["Weight"] = weight
    return out


def alias_rrs(
    name: str, target: str, zone_id: str, sid: str | None = None, weight: int | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Name": name,
        "Type": "A",
        "AliasTarget": {"HostedZoneId": zone_id, "DNSName": target, "EvaluateTargetHealth": False},
    }
    if sid is not None:
        out["SetIdentifier"] = sid
        out["Weight"] = weight
    return out


def change(r53: Any, zone_id: str, *changes: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return r53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={"Changes": [{"Action": action, "ResourceRecordSet": rr} for action, rr in changes]},
    )


def refused(r53: Any, zone_id: str, *changes: tuple[str, dict[str, Any]]) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        change(r53, zone_id, *changes)
    err = info.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


def records(r53: Any, zone_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"HostedZoneId": zone_id}
    while True:
        page = r53.list_resource_record_sets(**kwargs)
        out.extend(page["ResourceRecordSets"])
        if not page["IsTruncated"]:
            return out
        kwargs = {
            "HostedZoneId": zone_id,
            "StartRecordName": page["NextRecordName"],
            "StartRecordType": page["NextRecordType"],
        }
        if "NextRecordIdentifier" in page:
            kwargs["StartRecordIdentifier"] = page["NextRecordIdentifier"]


# --- hosted zones ----------------------------------------------------------------------------


def test_new_zone_has_route53_soa_and_ns_and_can_be_found_and_deleted(r53, unique):
    """AWS: CreateHostedZone adds an SOA and an NS record set; the zone is listed by name, then deleted."""
    name = f"lifecycle-{unique}.example.com."
    created = r53.create_hosted_zone(Name=name, CallerReference=f"lc-{unique}")
    zone_id = created["HostedZone"]["Id"]
    assert created["ChangeInfo"]["Id"].startswith("/change/C")
    assert r53.get_change(Id=created["ChangeInfo"]["Id"])["ChangeInfo"]["Status"] == "INSYNC"
    recs = records(r53, zone_id)
    assert [(r["Name"], r["Type"]) for r in recs] == [(name, "NS"), (name, "SOA")]
    ns = next(r for r in recs if r["Type"] == "NS")
    assert len(ns["ResourceRecords"]) == 4 and all(v["Value"].endswith(".") for v in ns["ResourceRecords"])
    soa = next(r for r in recs if r["Type"] == "SOA")["ResourceRecords"][0]["Value"]
    assert soa.split()[1] == "awsdns-hostmaster.amazon.com." and len(soa.split()) == 7

    found = r53.list_hosted_zones_by_name(DNSName=name, MaxItems="1")["HostedZones"]
    assert found[0]["Id"] == zone_id and found[0]["Name"] == name
    assert r53.get_hosted_zone(Id=zone_id)["HostedZone"]["ResourceRecordSetCount"] == 2

    change(r53, zone_id, ("CREATE", rrs(f"www.{name}", "A", "10.0.0.1")))
    assert r53.get_hosted_zone(Id=zone_id)["HostedZone"]["ResourceRecordSetCount"] == 3
    with pytest.raises(ClientError) as info:
        r53.delete_hosted_zone(Id=zone_id)
    assert info.value.response["Error"]["Code"] == "HostedZoneNotEmpty"
    change(r53, zone_id, ("DELETE", rrs(f"www.{name}", "A", "10.0.0.1")))
    r53.delete_hosted_zone(Id=zone_id)
    with pytest.raises(ClientError) as info:
        r53.get_hosted_zone(Id=zone_id)
    assert info.value.response["Error"]["Code"] == "NoSuchHostedZone"


def test_list_hosted_zones_by_name_pages_in_route53_order(r53, unique):
    """AWS: ListHostedZonesByName starts at DNSName, sorts by reversed labels and pages with NextDNSName."""
    names = [f"{p}.order-{unique}.example.com." for p in ("b", "a", "c")]
    for n in names:
        r53.create_hosted_zone(Name=n, CallerReference=n)
    first = r53.list_hosted_zones_by_name(DNSName=f"a.order-{unique}.example.com", MaxItems="2")
    assert [z["Name"] for z in first["HostedZones"]] == names[1:2] + names[:1]
    assert first["IsTruncated"] and first["NextDNSName"] == names[2]
    second = r53.list_hosted_zones_by_name(
        DNSName=first["NextDNSName"], HostedZoneId=first["NextHostedZoneId"], MaxItems="1"
    )
    assert [z["Name"] for z in second["HostedZones"]] == names[2:]


def test_same_caller_reference_twice_is_refused(r53, unique):
    """AWS: HostedZoneAlreadyExists when the CallerReference was used before."""
    r53.create_hosted_zone(Name=f"ref-{unique}.example.com", CallerReference=f"ref-{unique}")
    with pytest.raises(ClientError) as info:
        r53.create_hosted_zone(Name=f"ref2-{unique}.example.com", CallerReference=f"ref-{unique}")
    assert info.value.response["Error"]["Code"] == "HostedZoneAlreadyExists"


def test_change_to_unknown_zone_is_no_such_hosted_zone(r53):
    """AWS: NoSuchHostedZone (HTTP 404) for a zone id that does not exist."""
    code, _, status = refused(r53, "ZDOESNOTEXIST1", ("CREATE", rrs("x.example.com", "A", "10.0.0.1")))
    assert (code, status) == ("NoSuchHostedZone", 404)


# --- the lock's promises -------------------------------------------------------------------------


def test_stale_txt_delete_is_refused_and_changes_nothing(r53, zone):
    """AWS: a DELETE must match the current record set exactly; a stale lock holder's batch fails whole."""
    zone_id, name = zone
    lock = f"_lock.{name}"
    change(r53, zone_id, ("CREATE", rrs(lock, "TXT", '"holder=a v1"')))
    change(
        r53,
        zone_id,
        ("DELETE", rrs(lock, "TXT", '"holder=a v1"')),
        ("CREATE", rrs(lock, "TXT", '"holder=b v2"')),
    )
    before = records(r53, zone_id)
    code, message, status = refused(
        r53,
        zone_id,
        ("DELETE", rrs(lock, "TXT", '"holder=a v1"')),  # stale: the record holds v2 now
        ("CREATE", rrs(lock, "TXT", '"holder=c v3"')),
        ("CREATE", rrs(f"work.{name}", "A", "10.0.0.1")),
    )
    assert (code, status) == ("InvalidChangeBatch", 400)
    assert (
        f"Tried to delete resource record set [name='{lock}', type='TXT'] but the values provided do not match the current values"
        in message
    )
    assert records(r53, zone_id) == before


def test_create_over_existing_record_set_fails_and_upsert_replaces_it(r53, zone):
    """AWS: CREATE of an existing name+type fails ("but it already exists"); UPSERT replaces the one record set."""
    zone_id, name = zone
    change(r53, zone_id, ("CREATE", rrs(f"x.{name}", "TXT", '"one"')))
    code, message, _ = refused(r53, zone_id, ("CREATE", rrs(f"x.{name}", "TXT", '"two"')))
    assert code == "InvalidChangeBatch" and "but it already exists" in message
    change(r53, zone_id, ("UPSERT", rrs(f"x.{name}", "TXT", '"three"', ttl=30)))
    txts = [r for r in records(r53, zone_id) if r["Type"] == "TXT"]
    assert txts == [
        {"Name": f"x.{name}", "Type": "TXT", "TTL": 30, "ResourceRecords": [{"Value": '"three"'}]}
    ]


def test_batch_whose_last_change_fails_leaves_nothing_applied(r53, zone):
    """AWS: a batch is all or nothing: an out-of-zone last change undoes nothing because nothing was done."""
    zone_id, name = zone
    change(r53, zone_id, ("CREATE", rrs(f"old.{name}", "A", "10.0.0.1")))
    before = records(r53, zone_id)
    code, message, _ = refused(
        r53,
        zone_id,
        ("CREATE", rrs(f"new1.{name}", "A", "10.0.0.2")),
        ("DELETE", rrs(f"old.{name}", "A", "10.0.0.1")),
        ("UPSERT", rrs(f"new2.{name}", "A", "10.0.0.3")),
        ("CREATE", rrs("elsewhere.example.org", "A", "10.0.0.4")),
    )
    assert code == "InvalidChangeBatch" and "is not permitted in zone" in message
    assert records(r53, zone_id) == before


def test_delete_by_set_identifier_only_touches_its_name(r53, zone):
    """AWS: record-set identity is (name, type, SetIdentifier); other names with the same id stay."""
    zone_id, name = zone
    change(
        r53,
        zone_id,
        ("CREATE", rrs(f"one.{name}", "A", "10.0.0.1", sid="lb-1", weight=1)),
        ("CREATE", rrs(f"two.{name}", "A", "10.0.0.1", sid="lb-1", weight=1)),
    )
    change(r53, zone_id, ("DELETE", rrs(f"one.{name}", "A", "10.0.0.1", sid="lb-1", weight=1)))
    left = [(r["Name"], r.get("SetIdentifier")) for r in records(r53, zone_id) if r["Type"] == "A"]
    assert left == [(f"two.{name}", "lb-1")]


# --- weighted sets, aliases, CNAMEs, values --------------------------------------------------------


def test_weighted_rules(r53, zone):
    """AWS: SetIdentifier needs Weight 0-255 (InvalidInput); weighted and simple sets never mix."""
    zone_id, name = zone
    w = f"w.{name}"
    code, message, _ = refused(r53, zone_id, ("CREATE", rrs(w, "A", "10.0.0.1", sid="x", weight=256)))
    assert code == "InvalidInput" and "less than or equal to 255" in message
    code, message, _ = refused(r53, zone_id, ("CREATE", rrs(w, "A", "10.0.0.1", sid="x")))
    assert code == "InvalidInput" and "Expected exactly one of [Weight" in message
    change(r53, zone_id, ("CREATE", rrs(w, "A", "10.0.0.1", sid="x", weight=0)))
    code, message, _ = refused(r53, zone_id, ("CREATE", rrs(w, "A", "10.0.0.2")))
    assert (
        code == "InvalidChangeBatch"
        and "cannot be created as other RRSets exist with the same name and type" in message
    )


def test_at_most_100_weighted_sets_per_name_and_type(r53, zone):
    """AWS: "Exceeded limit on number of weighted RRSets for <name>, type A in this zone."."""
    zone_id, name = zone
    w = f"w.{name}"
    change(
        r53, zone_id, *(("CREATE", rrs(w, "A", "10.0.0.1", sid=f"lb-{i:03}", weight=1)) for i in range(100))
    )
    code, message, _ = refused(r53, zone_id, ("CREATE", rrs(w, "A", "10.0.0.1", sid="lb-100", weight=1)))
    assert (
        code == "InvalidChangeBatch"
        and message == f"[Exceeded limit on number of weighted RRSets for {w}, type A in this zone.]"
    )


def test_alias_target_must_exist_but_may_be_deleted_later(r53, zone):
    """AWS: an alias needs its target when created; deleting the target later leaves a dangling alias."""
    zone_id, name = zone
    code, message, _ = refused(r53, zone_id, ("CREATE", alias_rrs(name, f"tree.{name}", zone_id)))
    assert code == "InvalidChangeBatch"
    assert (
        message
        == f"[Tried to create an alias that targets tree.{name}, type A in zone {zone_id}, but that target was not found]"
    )
    change(
        r53,
        zone_id,
        ("CREATE", rrs(f"leaf.{name}", "A", "10.0.0.1")),
        ("CREATE", alias_rrs(f"tree.{name}", f"leaf.{name}", zone_id, sid="lb-1", weight=5)),
        ("CREATE", alias_rrs(name, f"tree.{name}", f"/hostedzone/{zone_id}")),
    )
    change(r53, zone_id, ("DELETE", alias_rrs(f"tree.{name}", f"leaf.{name}", zone_id, sid="lb-1", weight=5)))
    root = [r for r in records(r53, zone_id) if r["Name"] == name and r["Type"] == "A"]
    assert root[0]["AliasTarget"]["DNSName"] == f"tree.{name}"  # dangling, as on AWS
    assert root[0]["AliasTarget"]["HostedZoneId"] == zone_id  # Route 53 answers the bare zone id


def test_cname_exclusivity_and_value_checks(r53, zone):
    """AWS: CNAME excludes other types at a name; A is IPv4, AAAA IPv6, TXT quoted strings <= 255."""
    zone_id, name = zone
    change(r53, zone_id, ("CREATE", rrs(f"c.{name}", "CNAME", "target.example.net")))
    code, message, _ = refused(r53, zone_id, ("CREATE", rrs(f"c.{name}", "TXT", '"x"')))
    assert code == "InvalidChangeBatch" and "conflicting RRSet of type  CNAME" in message
    for rtype, value, problem in (
        ("A", "300.1.1.1", "ARRDATAIllegalIPv4Address"),
        ("AAAA", "10.0.0.1", "AAAARRDATAIllegalIPv6Address"),
        ("TXT", "not quoted", "InvalidCharacterString"),
        ("TXT", '"' + "y" * 256 + '"', "TXTRDATATooLong"),
    ):
        code, message, _ = refused(r53, zone_id, ("CREATE", rrs(f"v.{name}", rtype, value)))
        assert code == "InvalidChangeBatch" and problem in message


def test_names_are_case_insensitive(r53, zone):
    """AWS: names are case-insensitive and the trailing dot is optional."""
    zone_id, name = zone
    change(r53, zone_id, ("CREATE", rrs(f"MiXeD.{name.upper().rstrip('.')}", "A", "10.0.0.1")))
    code, _, _ = refused(r53, zone_id, ("CREATE", rrs(f"mixed.{name}", "A", "10.0.0.2")))
    assert code == "InvalidChangeBatch"
    assert any(r["Name"] == f"mixed.{name}" for r in records(r53, zone_id))


def test_batch_limits(r53, zone):
    """AWS: 1,000 ResourceRecord elements and 32,000 value characters per request, UPSERT counted twice."""
    zone_id, name = zone
    code, message, _ = refused(
        r53, zone_id, *(("UPSERT", rrs(f"r{i}.{name}", "A", "10.0.0.1")) for i in range(501))
    )
    assert (code, message) == ("InvalidChangeBatch", "[Number of records limit of 1000 exceeded.]")
    big = '"' + "z" * 250 + '"'
    code, message, _ = refused(
        r53, zone_id, *(("CREATE", rrs(f"t{i}.{name}", "TXT", big)) for i in range(130))
    )
    assert (code, message) == ("InvalidChangeBatch", "[RDATA character limit of 32000 exceeded.]")
    assert len(records(r53, zone_id)) == 2


# --- listing ----------------------------------------------------------------------------------------


def test_150_weighted_records_paged_by_40_come_back_exactly_once(r53, zone):
    """AWS: NextRecordIdentifier lets a client page through weighted sets under one name."""
    zone_id, name = zone
    w = f"w.{name}"
    ids = [f"lb-{i:03}" for i in range(150)]
    # 100 weighted A and 50 weighted AAAA under one name (Route 53 allows 100 per name and type).
    change(r53, zone_id, *(("CREATE", rrs(w, "A", "10.0.0.1", sid=sid, weight=1)) for sid in ids[:100]))
    change(r53, zone_id, *(("CREATE", rrs(w, "AAAA", "2001:db8::1", sid=sid, weight=1)) for sid in ids[100:]))
    seen: list[tuple[str, str, str | None]] = []
    kwargs: dict[str, Any] = {"HostedZoneId": zone_id, "MaxItems": "40"}
    pages = 0
    while True:
        page = r53.list_resource_record_sets(**kwargs)
        pages += 1
        assert len(page["ResourceRecordSets"]) <= 40
        seen.extend((r["Name"], r["Type"], r.get("SetIdentifier")) for r in page["ResourceRecordSets"])
        if not page["IsTruncated"]:
            break
        assert "NextRecordIdentifier" in page or page["NextRecordName"] != w
        kwargs = {
            "HostedZoneId": zone_id,
            "MaxItems": "40",
            "StartRecordName": page["NextRecordName"],
            "StartRecordType": page["NextRecordType"],
        }
        if "NextRecordIdentifier" in page:
            kwargs["StartRecordIdentifier"] = page["NextRecordIdentifier"]
        assert pages < 10
    weighted = [s for s in seen if s[0] == w]
    assert len(weighted) == 150 == len(set(weighted))
    assert sorted(s[2] for s in weighted) == sorted(ids)
    assert len(seen) == 152 and pages == 4


def test_max_items_is_capped_at_300(r53, zone):
    """AWS: ListResourceRecordSets returns at most 300 record sets per page."""
    zone_id, name = zone
    change(r53, zone_id, *(("CREATE", rrs(f"r{i:03}.{name}", "A", "10.0.0.1")) for i in range(320)))
    page = r53.list_resource_record_sets(HostedZoneId=zone_id, MaxItems="1000")
    assert len(page["ResourceRecordSets"]) == 300 and page["IsTruncated"]
    rest = r53.list_resource_record_sets(
        HostedZoneId=zone_id, StartRecordName=page["NextRecordName"], StartRecordType=page["NextRecordType"]
    )
    assert len(rest["ResourceRecordSets"]) == 22 and not rest["IsTruncated"]


def test_list_sorted_by_reversed_labels_then_type(r53, zone):
    """AWS: record sets are sorted by name with labels reversed (com.example.www.), then by type."""
    zone_id, name = zone
    change(
        r53,
        zone_id,
        ("CREATE", rrs(f"b.a.{name}", "A", "10.0.0.1")),
        ("CREATE", rrs(f"a.{name}", "TXT", '"x"')),
        ("CREATE", rrs(f"a.{name}", "A", "10.0.0.1")),
        ("CREATE", rrs(f"b.{name}", "A", "10.0.0.1")),
    )
    order = [(r["Name"], r["Type"]) for r in records(r53, zone_id)]
    assert order == [
        (name, "NS"),
        (name, "SOA"),
        (f"a.{name}", "A"),
        (f"a.{name}", "TXT"),
        (f"b.a.{name}", "A"),
        (f"b.{name}", "A"),
    ]


def test_start_record_type_without_name_is_invalid_input(r53, zone):
    """AWS: StartRecordType without StartRecordName is InvalidInput."""
    with pytest.raises(ClientError) as info:
        r53.list_resource_record_sets(HostedZoneId=zone[0], StartRecordType="A")
    assert info.value.response["Error"]["Code"] == "InvalidInput"


# --- changes ------------------------------------------------------------------------------------------


def test_every_change_has_its_own_id_and_unknown_ids_are_no_such_change(r53, zone):
    """AWS: each ChangeResourceRecordSets returns a new change id; GetChange of an unknown id is NoSuchChange."""
    zone_id, name = zone
    first = change(r53, zone_id, ("CREATE", rrs(f"a.{name}", "A", "10.0.0.1")))["ChangeInfo"]
    second = change(r53, zone_id, ("CREATE", rrs(f"b.{name}", "A", "10.0.0.1")))["ChangeInfo"]
    assert first["Id"] != second["Id"]
    assert r53.get_change(Id=first["Id"])["ChangeInfo"]["Status"] == "INSYNC"
    with pytest.raises(ClientError) as info:
        r53.get_change(Id="/change/CNOSUCHCHANGE00")
    assert info.value.response["Error"]["Code"] == "NoSuchChange"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
