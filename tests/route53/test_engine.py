"""Unit tests of the pure Route 53 change engine. Each test names the AWS behaviour it copies."""

from __future__ import annotations

import pytest

from services.route53.engine import (
    DEFAULT_LIMITS,
    IndexedZone,
    InvalidChangeBatch,
    InvalidInput,
    Limits,
    apply_batch,
    apply_changes,
)
from services.route53.records import AliasTarget, Change, RecordSet, Zone

ZONE_ID = "Z0TESTZONE"
APEX = "example.com."


def zone(*records: RecordSet) -> Zone:
    defaults = [
        RecordSet(APEX, "NS", 172800, ("ns-1.awsdns-1.com.",)),
        RecordSet(
            APEX, "SOA", 900, ("ns-1.awsdns-1.com. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400",)
        ),
    ]
    return Zone.of(APEX, [*defaults, *records], zone_id=ZONE_ID)


def txt(name: str, value: str, ttl: int = 60) -> RecordSet:
    return RecordSet(name, "TXT", ttl, (f'"{value}"',))


def a(name: str, *ips: str, ttl: int = 60, sid: str | None = None, weight: int | None = None) -> RecordSet:
    return RecordSet(name, "A", ttl, ips, set_identifier=sid, weight=weight)


def alias(
    name: str, target: str, rtype: str = "A", sid: str | None = None, weight: int | None = None
) -> RecordSet:
    return RecordSet(name, rtype, alias=AliasTarget(target, ZONE_ID), set_identifier=sid, weight=weight)


def create(r: RecordSet) -> Change:
    return Change("CREATE", r)


def delete(r: RecordSet) -> Change:
    return Change("DELETE", r)


def upsert(r: RecordSet) -> Change:
    return Change("UPSERT", r)


def rejected(z: Zone, *changes: Change, limits: Limits = DEFAULT_LIMITS) -> list[str]:
    with pytest.raises(InvalidChangeBatch) as info:
        apply_changes(z, list(changes), limits)
    return info.value.messages


# --- transactions ---------------------------------------------------------------------------


def test_batch_is_validated_against_the_evolving_state_delete_then_create_same_record():
    """AWS: a batch that DELETEs a record set and CREATEs it again (the lock preamble) succeeds."""
    z = zone(txt("lock.example.com", "holder=a"))
    out = apply_changes(
        z, [delete(txt("lock.example.com", "holder=a")), create(txt("lock.example.com", "holder=b"))]
    )
    assert out.get("lock.example.com", "TXT").values == ('"holder=b"',)


def test_deleting_the_same_record_set_twice_in_one_batch_fails():
    """AWS: "you cannot delete the same resource record set more than once in a single change batch"."""
    z = zone(txt("x.example.com", "v"))
    msgs = rejected(z, delete(txt("x.example.com", "v")), delete(txt("x.example.com", "v")))
    assert msgs == [
        "Tried to delete resource record set [name='x.example.com.', type='TXT'] but it was not found"
    ]


def test_batch_whose_last_change_fails_applies_nothing():
    """AWS: change batches are transactional; if any change fails, none is applied."""
    z = zone(txt("keep.example.com", "v"))
    before = dict(z.records)
    with pytest.raises(InvalidChangeBatch):
        apply_changes(
            z,
            [
                create(a("new1.example.com", "10.0.0.1")),
                delete(txt("keep.example.com", "v")),
                create(a("out.other.org", "10.0.0.2")),
            ],
        )
    assert dict(z.records) == before  # the input is untouched and nothing partial escapes


def test_all_messages_of_a_failing_batch_are_reported():
    """AWS: InvalidChangeBatch carries a list of messages, one per problem, shown as "[m1, m2]"."""
    z = zone(txt("lock.example.com", "v2"))
    with pytest.raises(InvalidChangeBatch) as info:
        apply_changes(z, [delete(txt("lock.example.com", "v1")), create(txt("lock.example.com", "mine"))])
    assert info.value.messages == [
        "Tried to delete resource record set [name='lock.example.com.', type='TXT'] but the values provided do not match the current values",
        "Tried to create resource record set [name='lock.example.com.', type='TXT'] but it already exists",
    ]
    assert info.value.message.startswith("[Tried to delete") and info.value.message.endswith(
        "already exists]"
    )
    assert info.value.code == "InvalidChangeBatch"


def test_empty_batch_is_invalid_input():
    """AWS: Changes must hold at least one Change (schema validation, InvalidInput)."""
    with pytest.raises(InvalidInput):
        apply_changes(zone(), [])


# --- DELETE must match exactly ----------------------------------------------------------------


@pytest.mark.parametrize(
    "stale",
    [
        txt("lock.example.com", "v1"),  # other value
        txt("lock.example.com", "v2", ttl=61),  # other TTL
        RecordSet("lock.example.com", "TXT", 60, ('"v2"', '"extra"')),  # extra value
    ],
)
def test_delete_with_stale_values_is_refused(stale: RecordSet):
    """AWS: "Tried to delete resource record set [...] but the values provided do not match the current values"."""
    z = zone(txt("lock.example.com", "v2"))
    msgs = rejected(z, delete(stale))
    assert msgs == [
        "Tried to delete resource record set [name='lock.example.com.', type='TXT'] but the values provided do not match the current values"
    ]


def test_delete_matches_values_in_any_order():
    """AWS: the values of a DELETE are compared as a set, not as a sequence."""
    z = zone(a("m.example.com", "10.0.0.1", "10.0.0.2"))
    out = apply_changes(z, [delete(a("m.example.com", "10.0.0.2", "10.0.0.1"))])
    assert out.get("m.example.com", "A") is None


def test_delete_of_missing_record_set_is_not_found():
    """AWS: "Tried to delete resource record set [...] but it was not found"."""
    msgs = rejected(zone(), delete(txt("ghost.example.com", "v")))
    assert msgs == [
        "Tried to delete resource record set [name='ghost.example.com.', type='TXT'] but it was not found"
    ]


def test_delete_by_set_identifier_removes_only_that_name():
    """AWS: identity is (name, type, SetIdentifier); a DELETE never touches other names with the same id."""
    z = zone(
        a("one.example.com", "10.0.0.1", sid="lb-1", weight=1),
        a("two.example.com", "10.0.0.1", sid="lb-1", weight=1),
    )
    out = apply_changes(z, [delete(a("one.example.com", "10.0.0.1", sid="lb-1", weight=1))])
    assert out.get("one.example.com", "A", "lb-1") is None
    assert out.get("two.example.com", "A", "lb-1") is not None


def test_delete_with_other_weight_is_refused():
    """AWS: a DELETE must carry the current weight of a weighted record set."""
    z = zone(a("w.example.com", "10.0.0.1", sid="x", weight=5))
    msgs = rejected(z, delete(a("w.example.com", "10.0.0.1", sid="x", weight=6)))
    assert "do not match the current values" in msgs[0] and "set-identifier='x'" in msgs[0]


def test_delete_of_alias_must_match_target():
    """AWS: an alias DELETE must name the current alias target."""
    z = zone(
        a("t1.example.com", "10.0.0.1"),
        a("t2.example.com", "10.0.0.2"),
        alias("root.example.com", "t1.example.com"),
    )
    assert "do not match" in rejected(z, delete(alias("root.example.com", "t2.example.com")))[0]
    out = apply_changes(z, [delete(alias("root.example.com", "T1.Example.com."))])
    assert out.get("root.example.com", "A") is None


# --- CREATE / UPSERT ---------------------------------------------------------------------------


def test_create_over_existing_record_set_fails():
    """AWS: "Tried to create resource record set [...] but it already exists" (no second record set)."""
    z = zone(txt("lock.example.com", "v1"))
    msgs = rejected(z, create(txt("lock.example.com", "v2")))
    assert msgs == [
        "Tried to create resource record set [name='lock.example.com.', type='TXT'] but it already exists"
    ]


def test_upsert_replaces_exactly_one_record_set():
    """AWS: UPSERT creates the record set or replaces the one with the same name, type and SetIdentifier."""
    z = zone(
        a("w.example.com", "10.0.0.1", sid="a", weight=1), a("w.example.com", "10.0.0.2", sid="b", weight=1)
    )
    out = apply_changes(z, [upsert(a("w.example.com", "10.0.0.9", sid="a", weight=7))])
    assert out.get("w.example.com", "A", "a").values == ("10.0.0.9",)
    assert out.get("w.example.com", "A", "a").weight == 7
    assert out.get("w.example.com", "A", "b").values == ("10.0.0.2",)
    assert len(out) == len(z)


def test_names_are_case_insensitive_with_trailing_dot_normalisation():
    """AWS: Route 53 treats names case-insensitively and with or without the trailing dot alike."""
    z = zone(txt("Lock.Example.COM", "v"))
    msgs = rejected(z, create(txt("lock.example.com.", "w")))
    assert "already exists" in msgs[0]


def test_name_outside_the_zone_is_refused():
    """AWS: "RRSet with DNS name x is not permitted in zone y"."""
    msgs = rejected(zone(), create(a("www.other.org", "10.0.0.1")))
    assert msgs == ["RRSet with DNS name www.other.org. is not permitted in zone example.com."]


def test_suffix_that_is_not_a_subdomain_is_outside_the_zone():
    """AWS: notexample.com. is not inside example.com. (label boundary, not string suffix)."""
    assert "not permitted in zone" in rejected(zone(), create(a("notexample.com", "10.0.0.1")))[0]


# --- CNAME exclusivity ---------------------------------------------------------------------------


def test_cname_next_to_other_types_is_refused():
    """AWS: "RRSet of type CNAME with DNS name x is not permitted as it conflicts with other records ..."."""
    z = zone(a("www.example.com", "10.0.0.1"))
    msgs = rejected(z, create(RecordSet("www.example.com", "CNAME", 60, ("target.example.net",))))
    assert msgs == [
        "RRSet of type CNAME with DNS name www.example.com. is not permitted as it conflicts with other records with the same DNS name in zone example.com."
    ]


def test_other_type_next_to_cname_is_refused():
    """AWS: "RRSet of type A with DNS name x is not permitted because a conflicting RRSet of type  CNAME ..."."""
    z = zone(RecordSet("www.example.com", "CNAME", 60, ("target.example.net",)))
    msgs = rejected(z, create(a("www.example.com", "10.0.0.1")))
    assert (
        "conflicting RRSet of type  CNAME with the same DNS name already exists in zone example.com."
        in msgs[0]
    )


def test_cname_at_apex_is_refused():
    """AWS: a CNAME is not allowed at the zone apex."""
    assert "apex" in rejected(zone(), create(RecordSet(APEX, "CNAME", 60, ("x.example.net",))))[0]


def test_cname_replaced_by_a_in_one_batch_is_fine():
    """AWS docs: DELETE the CNAME and CREATE an A record in the same batch succeeds."""
    z = zone(RecordSet("www.example.com", "CNAME", 60, ("target.example.net",)))
    out = apply_changes(
        z,
        [
            delete(RecordSet("www.example.com", "CNAME", 60, ("target.example.net",))),
            create(a("www.example.com", "10.0.0.1")),
        ],
    )
    assert out.get("www.example.com", "A") is not None


# --- values -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        (a("x.example.com", "10.0.0.256"), "ARRDATAIllegalIPv4Address"),
        (a("x.example.com", "::1"), "ARRDATAIllegalIPv4Address"),
        (RecordSet("x.example.com", "AAAA", 60, ("10.0.0.1",)), "AAAARRDATAIllegalIPv6Address"),
        (RecordSet("x.example.com", "TXT", 60, ("unquoted",)), "InvalidCharacterString"),
        (RecordSet("x.example.com", "TXT", 60, ('"' + "x" * 256 + '"',)), "TXTRDATATooLong"),
    ],
)
def test_value_syntax_is_checked(record: RecordSet, problem: str):
    """AWS: "Invalid Resource Record: 'FATAL problem: <code> (...) encountered with '<value>''"."""
    msgs = rejected(zone(), create(record))
    assert msgs[0].startswith("Invalid Resource Record: 'FATAL problem: " + problem)


def test_txt_may_hold_several_strings_of_255_characters():
    """AWS: a TXT value is one or more quoted strings, each up to 255 characters."""
    value = '"' + "a" * 255 + '" "' + "b" * 255 + '"'
    out = apply_changes(zone(), [create(RecordSet("long.example.com", "TXT", 60, (value,)))])
    assert out.get("long.example.com", "TXT").values == (value,)


def test_aaaa_accepts_ipv6():
    """AWS: AAAA values are IPv6 addresses."""
    out = apply_changes(zone(), [create(RecordSet("v6.example.com", "AAAA", 60, ("2001:db8::1",)))])
    assert out.get("v6.example.com", "AAAA") is not None


def test_duplicate_values_are_refused():
    """AWS: "Duplicate Resource Record: '<value>'"."""
    assert rejected(zone(), create(a("d.example.com", "10.0.0.1", "10.0.0.1"))) == [
        "Duplicate Resource Record: '10.0.0.1'"
    ]


# --- weighted sets --------------------------------------------------------------------------------


def test_set_identifier_requires_weight():
    """AWS: a SetIdentifier without a routing policy is InvalidInput ("Expected exactly one of [Weight, ...]")."""
    with pytest.raises(InvalidInput, match=r"Expected exactly one of \[Weight"):
        apply_changes(zone(), [create(a("w.example.com", "10.0.0.1", sid="x"))])


def test_weight_requires_set_identifier():
    """AWS: Weight without SetIdentifier is InvalidInput ("Missing field 'SetIdentifier'")."""
    with pytest.raises(InvalidInput, match="Missing field 'SetIdentifier'"):
        apply_changes(zone(), [create(a("w.example.com", "10.0.0.1", weight=3))])


@pytest.mark.parametrize("weight", [-1, 256])
def test_weight_must_be_0_to_255(weight: int):
    """AWS: Weight is 0-255, a schema constraint (InvalidInput)."""
    with pytest.raises(InvalidInput, match="weight"):
        apply_changes(zone(), [create(a("w.example.com", "10.0.0.1", sid="x", weight=weight))])


@pytest.mark.parametrize("weight", [0, 255])
def test_weight_bounds_are_accepted(weight: int):
    """AWS: 0 and 255 are valid weights (0 = no traffic unless all are 0)."""
    out = apply_changes(zone(), [create(a("w.example.com", "10.0.0.1", sid="x", weight=weight))])
    assert out.get("w.example.com", "A", "x").weight == weight


def test_weighted_next_to_simple_is_refused():
    """AWS: "... cannot be created as a non-weighted set exists with the same name and type."."""
    z = zone(a("w.example.com", "10.0.0.1"))
    msgs = rejected(z, create(a("w.example.com", "10.0.0.2", sid="x", weight=1)))
    assert msgs == [
        "RRSet with DNS name w.example.com., type A, SetIdentifier x cannot be created as a non-weighted set exists with the same name and type."
    ]


def test_simple_next_to_weighted_is_refused():
    """AWS: "RRSet with DNS name x, type A cannot be created as other RRSets exist with the same name and type."."""
    z = zone(a("w.example.com", "10.0.0.1", sid="x", weight=1))
    msgs = rejected(z, create(a("w.example.com", "10.0.0.2")))
    assert msgs == [
        "RRSet with DNS name w.example.com., type A cannot be created as other RRSets exist with the same name and type."
    ]


def test_at_most_100_weighted_sets_per_name_and_type():
    """AWS: "Exceeded limit on number of weighted RRSets for x, type A in this zone." beyond 100."""
    full = zone(*(a("w.example.com", "10.0.0.1", sid=f"lb-{i}", weight=1) for i in range(100)))
    msgs = rejected(full, create(a("w.example.com", "10.0.0.1", sid="lb-100", weight=1)))
    assert msgs == ["Exceeded limit on number of weighted RRSets for w.example.com., type A in this zone."]
    # Upserting one of the 100 is still fine, and another type at the name has its own 100.
    apply_changes(full, [upsert(a("w.example.com", "10.0.0.2", sid="lb-5", weight=9))])
    apply_changes(
        full, [create(RecordSet("w.example.com", "AAAA", 60, ("::1",), set_identifier="lb-100", weight=1))]
    )


# --- alias targets ----------------------------------------------------------------------------------


def test_alias_target_must_exist():
    """AWS: "Tried to create an alias that targets x, type A in zone Z, but that target was not found"."""
    msgs = rejected(zone(), create(alias("root.example.com", "tree.example.com")))
    assert msgs == [
        f"Tried to create an alias that targets tree.example.com., type A in zone {ZONE_ID}, but that target was not found"
    ]


def test_alias_target_must_have_the_same_type():
    """AWS: an A alias needs an A record set at the target name (any SetIdentifier)."""
    z = zone(RecordSet("tree.example.com", "AAAA", 60, ("::1",)))
    assert (
        "but that target was not found"
        in rejected(z, create(alias("root.example.com", "tree.example.com")))[0]
    )


def test_alias_may_target_weighted_sets_created_earlier_in_the_same_batch():
    """AWS: the target is looked up in the zone as the batch has built it so far (build tree, then flip)."""
    out = apply_changes(
        zone(),
        [
            create(a("leaf1.example.com", "10.0.0.1")),
            create(alias("tree.example.com", "leaf1.example.com", sid="lb-1", weight=10)),
            upsert(alias("root.example.com", "tree.example.com")),
        ],
    )
    assert out.get("root.example.com", "A").alias.dns_name == "tree.example.com."


def test_upsert_alias_to_a_target_deleted_earlier_in_the_batch_fails():
    """AWS: an UPSERT is checked against the evolving state, so a target removed before it is gone."""
    z = zone(a("old.example.com", "10.0.0.1"), alias("root.example.com", "old.example.com"))
    msgs = rejected(
        z, delete(a("old.example.com", "10.0.0.1")), upsert(alias("root.example.com", "old.example.com"))
    )
    assert "but that target was not found" in msgs[0]


def test_deleting_a_target_that_an_alias_points_at_is_allowed():
    """AWS: Route 53 lets you delete an alias target; the alias dangles (the 20 October 2025 failure)."""
    z = zone(a("tree.example.com", "10.0.0.1"), alias("root.example.com", "tree.example.com"))
    out = apply_changes(z, [delete(a("tree.example.com", "10.0.0.1"))])
    assert out.get("root.example.com", "A") is not None and out.get("tree.example.com", "A") is None


def test_alias_to_another_hosted_zone_is_not_checked():
    """An alias to an AWS resource or another zone cannot be verified here and is accepted."""
    r = RecordSet(
        "elb.example.com", "A", alias=AliasTarget("my-lb-1.us-east-1.elb.amazonaws.com", "Z35SXDOTRQ7X7K")
    )
    assert apply_changes(zone(), [create(r)]).get("elb.example.com", "A") is not None


def test_alias_with_ttl_is_invalid_input():
    """AWS: "Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords], ...] but found more than one"."""
    r = RecordSet("x.example.com", "A", ttl=60, alias=AliasTarget("y.example.com", ZONE_ID))
    with pytest.raises(InvalidInput, match="found more than one"):
        apply_changes(zone(), [create(r)])


def test_record_without_values_is_invalid_input():
    """AWS: a non-alias change needs both TTL and ResourceRecords ("... but found none in Change with [...]")."""
    with pytest.raises(
        InvalidInput,
        match=r"found none in Change with \[Action=DELETE, Name=x.example.com., Type=TXT, SetIdentifier=null\]",
    ):
        apply_changes(zone(), [delete(RecordSet("x.example.com", "TXT", ttl=60))])


# --- limits -------------------------------------------------------------------------------------------


def test_1000_resource_records_per_batch():
    """AWS: "Number of records limit of 1000 exceeded." (counted over every change of the request)."""
    ok = [create(a(f"r{i}.example.com", "10.0.0.1")) for i in range(1000)]
    apply_changes(zone(), ok)
    assert rejected(zone(), *ok, create(a("one-more.example.com", "10.0.0.1"))) == [
        "Number of records limit of 1000 exceeded."
    ]


def test_upsert_counts_twice_toward_the_record_limit():
    """AWS: "When the value of the Action element is UPSERT, each ResourceRecord element is counted twice."."""
    changes = [upsert(a(f"r{i}.example.com", "10.0.0.1")) for i in range(501)]
    assert rejected(zone(), *changes) == ["Number of records limit of 1000 exceeded."]
    apply_changes(zone(), changes[:500])


def test_32000_value_characters_per_batch():
    """AWS: "RDATA character limit of 32000 exceeded." (UPSERT counted twice)."""
    value = '"' + "x" * 198 + '"'  # 200 characters
    changes = [create(RecordSet(f"t{i}.example.com", "TXT", 60, (value,))) for i in range(160)]  # 32,000
    apply_changes(zone(), changes)
    assert rejected(zone(), *changes, create(txt("one.example.com", "x"))) == [
        "RDATA character limit of 32000 exceeded."
    ]
    assert rejected(zone(), *(upsert(c.record) for c in changes[:81])) == [
        "RDATA character limit of 32000 exceeded."
    ]


def test_record_set_quota_per_zone():
    """AWS: "Exceeded limit MAX_RRSETS_BY_ZONE for zone: Z..." when a zone would pass its record-set quota."""
    limits = Limits(max_record_sets_per_zone=5)  # SOA + NS + 3
    z = zone()
    z = apply_changes(z, [create(a(f"r{i}.example.com", "10.0.0.1")) for i in range(3)], limits)
    assert rejected(z, create(a("r9.example.com", "10.0.0.1")), limits=limits) == [
        f"Exceeded limit MAX_RRSETS_BY_ZONE for zone: {ZONE_ID}"
    ]
    # Swapping one record for another keeps the count and is allowed.
    apply_changes(
        z, [delete(a("r0.example.com", "10.0.0.1")), create(a("r9.example.com", "10.0.0.1"))], limits
    )


def test_apex_soa_and_ns_cannot_be_deleted():
    """AWS: a hosted zone must keep its SOA and its apex NS record."""
    z = zone()
    soa = z.get(APEX, "SOA")
    assert rejected(z, delete(soa)) == ["A HostedZone must contain exactly one SOA record."]
    ns = z.get(APEX, "NS")
    assert rejected(z, delete(ns)) == [
        "A HostedZone must contain at least one NS record for the zone itself."
    ]
    # Replacing them in one batch is fine.
    apply_changes(z, [delete(ns), create(RecordSet(APEX, "NS", 300, ("ns-9.example.net.",)))])


def test_unknown_action_and_type_are_invalid_input():
    """AWS: Action and Type are schema enumerations (InvalidInput, "cvc-enumeration-valid")."""
    with pytest.raises(InvalidInput, match="cvc-enumeration-valid"):
        apply_changes(zone(), [Change("REPLACE", a("x.example.com", "10.0.0.1"))])  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="cvc-enumeration-valid"):
        apply_changes(zone(), [create(RecordSet("x.example.com", "BOGUS", 60, ("x",)))])


def test_indexed_and_plain_application_agree():
    """The emulator's indexed path and the model checker's plain path are the same function."""
    z = zone(a("w.example.com", "10.0.0.1", sid="x", weight=1))
    changes = [
        create(a("w.example.com", "10.0.0.2", sid="y", weight=2)),
        delete(a("w.example.com", "10.0.0.1", sid="x", weight=1)),
    ]
    plain = apply_changes(z, changes)
    indexed = apply_batch(IndexedZone.of(z), changes)
    assert plain.fingerprint() == indexed.zone.fingerprint()
    assert IndexedZone.of(indexed.zone).names == indexed.names
