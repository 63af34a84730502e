"""Unit tests of Route 53's ListResourceRecordSets paging rules (services.route53.listing)."""

from __future__ import annotations

import pytest

from services.route53.engine import InvalidInput
from services.route53.listing import MAX_ITEMS, SortedRecords, reversed_name
from services.route53.records import RecordSet


def listing(n: int) -> SortedRecords:
    return SortedRecords(RecordSet(f"r{i:04}.example.com.", "A", 60, ("10.0.0.1",)) for i in range(n))


def test_max_items_is_capped_at_300():
    """AWS: "ListResourceRecordSets returns up to 300 resource record sets at a time"."""
    page = listing(400).page(max_items=1000)
    assert len(page.records) == MAX_ITEMS == 300 and page.is_truncated
    assert (page.next_name, page.next_type, page.next_identifier) == ("r0300.example.com.", "A", None)


def test_start_name_without_type_starts_at_the_first_name_at_or_after_it():
    """AWS: "If you specify Name but not Type: the first record set whose name is >= Name"."""
    page = listing(10).page(start_name="r0004.example.com", max_items=2)
    assert [r.name for r in page.records] == ["r0004.example.com.", "r0005.example.com."]
    absent = listing(10).page(start_name="r00045.example.com", max_items=1)
    assert absent.records[0].name == "r0005.example.com."


@pytest.mark.parametrize(
    "kwargs",
    [
        {"start_type": "A"},  # AWS: Type without Name is InvalidInput
        {"start_name": "a.example.com.", "start_identifier": "x"},  # identifier needs name and type
        {"start_name": "a.example.com.", "start_type": "BOGUS"},
        {"max_items": 0},
    ],
)
def test_invalid_start_points_are_invalid_input(kwargs):
    with pytest.raises(InvalidInput):
        listing(3).page(**kwargs)


def test_reversed_name_keeps_the_trailing_dot():
    """AWS docs: www.example.com. sorts as com.example.www. (the trailing dot matters for '-' and '!')."""
    assert reversed_name("www.example.com.") == "com.example.www."
    assert reversed_name("example.com") == "com.example."
    # '-' (45) sorts before '.' (46): a-b.example.com. comes before a.example.com.'s children.
    assert reversed_name("a-b.example.com.") < reversed_name("x.a.example.com.")
