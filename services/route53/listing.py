"""Route 53's order of record sets and ListResourceRecordSets paging, as pure functions.

Route 53 lists a zone sorted by DNS name with the labels reversed ("www.example.com." sorts as
"com.example.www.", trailing dot included, compared in ASCII), then by record type. Record sets
sharing a name and type (weighted sets) are ordered by SetIdentifier, the simple set first; a
page that stops inside such a group says where to resume with NextRecordIdentifier, which is
what lets a client page through more than MaxItems weighted sets under one name.

`SortedRecords` sorts once and then answers any page by bisection, so paging a 20,000-record
zone costs O(log n + page) per request; the emulator keeps one per zone version.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass

from services.route53.engine import RECORD_TYPES, InvalidInput
from services.route53.records import RecordSet, normalise_name

MAX_ITEMS = 300  # Route 53 returns at most 300 record sets per page, whatever MaxItems asks


def reversed_name(name: str) -> str:
    """ "www.example.com." -> "com.example.www." (the key Route 53 sorts names by)."""
    labels = name.rstrip(".").split(".")
    return ".".join(reversed(labels)) + "."


def sort_key(record: RecordSet) -> tuple[str, str, str]:
    return (reversed_name(record.name), record.type, record.set_identifier or "")


@dataclass(frozen=True, slots=True)
class Page:
    records: tuple[RecordSet, ...]
    is_truncated: bool
    next_name: str | None = None
    next_type: str | None = None
    next_identifier: str | None = None


class SortedRecords:
    """One zone version's record sets in Route 53's list order."""

    __slots__ = ("_records", "_keys")

    def __init__(self, records: Iterable[RecordSet]):
        self._records = sorted(records, key=sort_key)
        self._keys = [sort_key(r) for r in self._records]

    def __len__(self) -> int:
        return len(self._records)

    def page(
        self,
        start_name: str | None = None,
        start_type: str | None = None,
        start_identifier: str | None = None,
        max_items: int = MAX_ITEMS,
    ) -> Page:
        """The page beginning at the first record set >= (name, type, identifier); see module doc."""
        if start_type and not start_name:
            raise InvalidInput("The input is not valid: StartRecordType requires StartRecordName")
        if start_identifier and not (start_name and start_type):
            raise InvalidInput(
                "The input is not valid: StartRecordIdentifier requires StartRecordName and StartRecordType"
            )
        if start_type and start_type.upper() not in RECORD_TYPES:
            raise InvalidInput(
                f"1 validation error detected: Value '{start_type}' at 'startRecordType' failed to satisfy "
                f"constraint: Member must satisfy enum value set: [{', '.join(RECORD_TYPES)}]"
            )
        if max_items < 1:
            raise InvalidInput(
                f"1 validation error detected: Value '{max_items}' at 'maxItems' failed to satisfy "
                "constraint: Member must have value greater than or equal to 1"
            )
        limit = min(max_items, MAX_ITEMS)
        start = 0
        if start_name:
            probe: tuple[str, ...] = (reversed_name(normalise_name(start_name)),)
            if start_type:
                probe += (start_type.upper(),)
                if start_identifier:
                    probe += (start_identifier,)
            start = bisect_left(self._keys, probe)
        end = start + limit
        chunk = tuple(self._records[start:end])
        if end >= len(self._records):
            return Page(records=chunk, is_truncated=False)
        nxt = self._records[end]
        return Page(
            records=chunk,
            is_truncated=True,
            next_name=nxt.name,
            next_type=nxt.type,
            next_identifier=nxt.set_identifier,
        )
