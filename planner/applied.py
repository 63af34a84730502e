"""What Route 53 has applied: the floor below which the planner never numbers a plan.

If the plan store falls behind Route 53 (a bucket re-created, plans deleted), a planner that kept
numbering from S3 would publish versions every enactor skips as older than what is applied,
drains included. So before publishing, the planner reads each endpoint's applied version (the
`_applied` record in guarded mode, else the version of the tree the root serves) and numbers
above the highest.

Reading is Route 53's control API only, through enactor/layout.py's reader: one call per endpoint
for the `_applied` record (guarded mode), the whole zone only when it has none; at most once per
`interval_s` (Route 53 allows 5 requests a second per account, shared with the enactors); a failed read keeps the highest version seen so far, so Route 53 being
unreachable never stops publishing (the planner depends on S3 alone to do its job).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from enactor import layout
from services.dns.snapshot import read_zone
from services.route53.records import RecordSet
from services.zones import find_zone_id


@dataclass(frozen=True)
class AppliedFloor:
    version: int  # the highest applied version seen (0: none)
    endpoint: str | None  # the endpoint that has it
    error: str | None  # why the last read failed, if it did


class AppliedVersions:
    def __init__(self, client=None, interval_s: float = 30.0):
        self._client = client
        self.interval_s = interval_s
        self._read_at = -interval_s
        self._zones: dict[str, str | None] = {}
        self.floor = AppliedFloor(0, None, None)

    @property
    def client(self):
        if self._client is None:
            from services.aws_clients import route53_client

            self._client = route53_client()
        return self._client

    def current(self, endpoints: Iterable[tuple[str, str]], *, now: float | None = None) -> AppliedFloor:
        """The floor for endpoints given as (name, hosted zone); re-read when `interval_s` passed."""
        now = time.monotonic() if now is None else now
        if now - self._read_at < self.interval_s:
            return self.floor
        self._read_at = now
        try:
            high, where = self.floor.version, self.floor.endpoint
            for name, zone in endpoints:
                version = self._applied(name, zone)
                if version is not None and version > high:
                    high, where = version, name
            self.floor = AppliedFloor(high, where, None)
        except (ClientError, BotoCoreError, RuntimeError) as exc:
            self.floor = AppliedFloor(self.floor.version, self.floor.endpoint, f"{type(exc).__name__}: {exc}")
        return self.floor

    def _applied(self, name: str, hosted_zone: str) -> int | None:
        if hosted_zone not in self._zones or self._zones[hosted_zone] is None:
            self._zones[hosted_zone] = find_zone_id(hosted_zone, self.client)
        zone_id = self._zones[hosted_zone]
        if zone_id is None:
            return None  # no zone yet: nothing applied there
        # Guarded mode keeps the version in one record: one call. Without it (legacy mode) the
        # version is the active tree's, which takes the whole zone.
        page = self.client.list_resource_record_sets(
            HostedZoneId=zone_id, StartRecordName=layout.applied_name(name), StartRecordType="TXT", MaxItems="1"
        )
        first = [RecordSet.from_boto(r) for r in page.get("ResourceRecordSets", [])[:1]]
        view = layout.read_endpoint(name, first)
        if view.applied_value is not None:
            return view.applied_value.version
        zone, _ = read_zone(self.client, zone_id, layout.root_name(hosted_zone))
        return layout.read_endpoint(name, zone).applied_version()
