"""The fleet store: the planner's desired fleet as one document in S3, beside the plans.

Layout in the plan bucket (the bucket has versioning on, so every revision stays in S3's history):

    fleet/<region>/desired.json    {"revision": n, "updated_at", "by", "change", "fleet": {...}}

Theory of operation:
- Every write is a compare-and-swap. The first one carries If-None-Match: * (only an empty store
  is seeded); every later one If-Match on the ETag of the revision the change was computed from.
  Of two planners changing the fleet at once, one wins and the other gets FleetConflict, re-reads
  and re-applies its change to the winner's fleet: no change is lost, none is applied twice.
- `revision` counts writes (seed = 1). It is what an operator quotes (`dnsctl fleet load` applies
  only over the revision it showed the diff of) and what the planner logs with every plan.
- The store keeps the document as plain data: the planner (planner/fleet.py) validates it, so a
  damaged document is reported by the planner, which keeps its last good fleet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from services.plan.model import canonical_json
from services.plan.store import StoreError, is_missing, is_precondition_failure, s3_errors


class FleetConflict(StoreError):
    """Another writer changed the fleet since it was read (the compare-and-swap failed)."""

    def __init__(self, key: str, expected: int | None):
        what = "an empty store" if expected is None else f"revision {expected}"
        super().__init__(f"{key} changed since it was read (expected {what}); re-read and try again")
        self.key = key
        self.expected = expected


class FleetDocumentInvalid(StoreError):
    """The stored document is not a fleet document at all (not JSON, no revision, no fleet)."""

    def __init__(self, key: str, reason: str, etag: str | None):
        super().__init__(f"fleet document {key} is invalid: {reason}")
        self.key = key
        self.reason = reason
        self.etag = etag


@dataclass(frozen=True)
class StoredFleet:
    """One revision of the desired fleet as read from (or written to) S3."""

    revision: int
    etag: str
    fleet: dict[str, Any]
    updated_at: str
    by: str
    change: str


class FleetStore:
    def __init__(self, bucket: str, region: str, s3, namespace: str = ""):
        self.bucket = bucket
        self.region = region
        self.s3 = s3
        self.key = f"{namespace}fleet/{region}/desired.json"  # namespace: a cell's "cells/<cell>/"

    @classmethod
    def beside(cls, plans) -> FleetStore:
        """The fleet store in the same bucket, region, cell and S3 client as a PlanStore."""
        return cls(plans.bucket, plans.region, plans.s3, plans.namespace)

    @property
    def endpoint(self) -> str:
        return self.s3.meta.endpoint_url

    def _s3(self, action: str):
        return s3_errors(self.endpoint, self.bucket, action)

    def read(self) -> StoredFleet | None:
        """The current revision, or None when the store is empty. Damage raises FleetDocumentInvalid."""
        with self._s3(f"get {self.key}"):
            try:
                obj = self.s3.get_object(Bucket=self.bucket, Key=self.key)
            except ClientError as exc:
                if is_missing(exc):
                    return None
                raise
            raw, etag = obj["Body"].read(), obj.get("ETag", "")
        try:
            data = json.loads(raw)
            revision = data["revision"]
            fleet = data["fleet"]
            if isinstance(revision, bool) or not isinstance(revision, int) or revision < 1:
                raise ValueError(f"revision must be a positive integer, got {revision!r}")
            if not isinstance(fleet, dict):
                raise ValueError("fleet must be an object")
            return StoredFleet(
                revision=revision,
                etag=etag,
                fleet=fleet,
                updated_at=str(data.get("updated_at", "")),
                by=str(data.get("by", "")),
                change=str(data.get("change", "")),
            )
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise FleetDocumentInvalid(self.key, str(exc), etag) from exc

    def write(
        self,
        fleet: dict[str, Any],
        *,
        change: str,
        by: str,
        over: StoredFleet | None,
        over_etag: str | None = None,
    ) -> StoredFleet:
        """Write the next revision over `over` (None: only into an empty store), or FleetConflict.

        `over_etag` replaces a damaged document whose ETag is known (no revision to follow: the
        new one restarts at 1 above nothing, so it is revision 1 again, which S3's history shows).
        """
        revision = (over.revision if over else 0) + 1
        updated_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        body = canonical_json(
            {"revision": revision, "updated_at": updated_at, "by": by, "change": change[:500], "fleet": fleet}
        )
        etag = over.etag if over else over_etag
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        with self._s3(f"put {self.key}"):
            try:
                reply = self.s3.put_object(
                    Bucket=self.bucket, Key=self.key, Body=body, ContentType="application/json", **condition
                )
            except ClientError as exc:
                if is_precondition_failure(exc) or (etag and is_missing(exc)):
                    raise FleetConflict(self.key, over.revision if over else None) from exc
                raise
        return StoredFleet(
            revision=revision,
            etag=reply.get("ETag", ""),
            fleet=fleet,
            updated_at=updated_at,
            by=by,
            change=change[:500],
        )
