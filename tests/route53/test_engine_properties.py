"""Property tests of the change engine and Route 53's list order (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.route53.engine import (
    IndexedZone,
    InvalidChangeBatch,
    InvalidInput,
    Limits,
    apply_batch,
    apply_changes,
)
from services.route53.listing import SortedRecords, sort_key
from services.route53.records import AliasTarget, Change, RecordSet, Zone

ZONE_ID = "ZPROP"
APEX = "example.com."
NAMES = ("a.example.com.", "b.example.com.", "x.a.example.com.", "a-b.example.com.", "outside.org.")
LIMITS = Limits(max_record_sets_per_zone=10_000)


@st.composite
def records(draw: st.DrawFn) -> RecordSet:
    name = draw(st.sampled_from(NAMES))
    rtype = draw(st.sampled_from(("A", "TXT", "CNAME")))
    weighted = draw(st.booleans())
    sid = draw(st.sampled_from(("x", "y"))) if weighted else None
    weight = draw(st.integers(0, 3)) if weighted else None
    if rtype == "A" and draw(st.integers(0, 3)) == 0:
        target = draw(st.sampled_from(NAMES))
        return RecordSet(name, rtype, alias=AliasTarget(target, ZONE_ID), set_identifier=sid, weight=weight)
    value = {
        "A": draw(st.sampled_from(("10.0.0.1", "10.0.0.2"))),
        "TXT": draw(st.sampled_from(('"v1"', '"v2"'))),
        "CNAME": "t.example.net.",
    }[rtype]
    return RecordSet(
        name, rtype, ttl=draw(st.sampled_from((60, 300))), values=(value,), set_identifier=sid, weight=weight
    )


changes = st.builds(Change, st.sampled_from(("CREATE", "DELETE", "UPSERT")), records())


def fold(zone: Zone, batch: list[Change]) -> Zone | None:
    """Apply the batch one change at a time; None when some step is refused."""
    for change in batch:
        try:
            zone = apply_changes(zone, [change], LIMITS)
        except InvalidChangeBatch:
            return None
    return zone


@st.composite
def zones(draw: st.DrawFn) -> Zone:
    zone = Zone.of(APEX, [], zone_id=ZONE_ID)
    for change in draw(st.lists(changes, max_size=12)):
        try:
            zone = apply_changes(zone, [change], LIMITS)
        except (InvalidChangeBatch, InvalidInput):
            pass
    return zone


@settings(max_examples=400, deadline=None)
@given(zones(), st.lists(changes, min_size=1, max_size=6))
def test_a_batch_is_all_or_nothing_and_equals_its_changes_in_sequence(zone: Zone, batch: list[Change]):
    """AWS: validation runs change by change against the evolving state; then all or none applies."""
    before = dict(zone.records)
    try:
        result = apply_changes(zone, batch, LIMITS)
    except InvalidInput:
        return
    except InvalidChangeBatch:
        assert fold(zone, batch) is None  # some change really was refused in sequence
        assert dict(zone.records) == before
        return
    sequential = fold(zone, batch)
    assert sequential is not None
    assert result.fingerprint() == sequential.fingerprint()
    assert dict(zone.records) == before


@settings(max_examples=200, deadline=None)
@given(zones(), st.lists(changes, min_size=1, max_size=6))
def test_the_index_stays_in_step_with_the_records(zone: Zone, batch: list[Change]):
    try:
        out = apply_batch(IndexedZone.of(zone), batch, LIMITS)
    except (InvalidChangeBatch, InvalidInput):
        return
    assert out.names == IndexedZone.of(out.zone).names


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(NAMES[:4] + ("*.example.com.", "a!.example.com.")),
            st.sampled_from(("A", "AAAA", "TXT")),
            st.sampled_from((None, "1", "2", "10")),
        ),
        unique=True,
        max_size=40,
    ),
    st.integers(1, 7),
)
def test_paging_returns_every_record_set_once_in_route53_order(keys, page_size: int):
    """AWS: pages chained by NextRecordName/Type/Identifier cover the zone exactly once, sorted."""
    recs = [RecordSet(n, t, 60, ("x",), set_identifier=s, weight=1 if s else None) for n, t, s in keys]
    listing = SortedRecords(recs)
    seen: list[RecordSet] = []
    start: tuple[str | None, str | None, str | None] = (None, None, None)
    for _ in range(len(recs) + 2):
        page = listing.page(*start, max_items=page_size)
        seen.extend(page.records)
        if not page.is_truncated:
            break
        start = (page.next_name, page.next_type, page.next_identifier)
    assert seen == sorted(recs, key=sort_key)
    assert len(seen) == len(set(seen)) == len(recs)


def test_route53_sort_order_reverses_labels():
    """AWS docs: sorted by DNS name with the labels reversed (com.example.www.), then by type."""
    recs = [
        RecordSet("www.example.com.", "A", 60, ("1.1.1.1",)),
        RecordSet("example.com.", "SOA", 60, ("x",)),
        RecordSet("a.www.example.com.", "A", 60, ("1.1.1.1",)),
        RecordSet("example.com.", "NS", 60, ("x",)),
        RecordSet("b.example.com.", "TXT", 60, ('"x"',)),
        RecordSet("b.example.com.", "A", 60, ("1.1.1.1",)),
    ]
    order = [(r.name, r.type) for r in SortedRecords(recs).page().records]
    assert order == [
        ("example.com.", "NS"),
        ("example.com.", "SOA"),
        ("b.example.com.", "A"),
        ("b.example.com.", "TXT"),
        ("www.example.com.", "A"),
        ("a.www.example.com.", "A"),
    ]
