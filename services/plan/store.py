"""The plan store: versioned plans in S3, shared by the planner (writer) and the enactors (readers).

Layout in the bucket (versioning enabled, created on first use):

    plans/<region>/<version:010d>.json   one immutable plan per version
    plans/<region>/latest.json           pointer: {"version": n, "key": ...}, a hint that may lag
    control/<region>/freeze.json         the kill switch: present = frozen (reason, by, at)

A cell's store (`cell=`, DNSCTL_CELL) keeps the same layout under `cells/<cell>/`
(services/cells/naming.py): its own versions, pointer and kill switch. It stamps every plan it
puts with its cell and refuses (PlanInvalid) a plan whose cell is not its own, so a plan copied
from another cell's stream (or the regional one) is never applied.

Theory of operation:
- A version is written once: every put carries If-None-Match: *, so of two writers racing for the
  same version one wins and the other gets VersionExists and moves on to the next version.
- Finding the newest plan never lists the history. The pointer names the newest key a writer
  knew of; the reader checks that key exists and then probes forward (HEAD next keys, galloping
  then bisecting) until a key is missing. A writer that died between its plan put and its pointer
  update therefore never hides a plan. This relies on versions being contiguous, which holds
  because every writer publishes newest + 1 (or jumps once above what Route 53 has applied, when
  the store fell behind it: the pointer, written right after, then names the jump).
- The pointer itself moves only forward: it is replaced with If-Match on the ETag read, so a slow
  writer cannot set it back.
- Every read verifies schema and checksum (Plan.from_json) and that the document's region and
  version match its key; a bad object raises PlanInvalid naming the key.
- Signatures (services/plan/signing.py): a store given a signer signs every plan it puts; a store
  given a verifier treats an unsigned or badly signed plan as invalid (PlanInvalid), so a plan
  written to the bucket by anyone but the planner is rejected like a corrupt one.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from pydantic import BaseModel, ConfigDict

from services.cells.naming import cell_from_env, store_prefix
from services.plan.model import Plan, PlanInvalid, canonical_json
from services.plan.signing import PlanSigner, PlanVerifier
from services.stack import DEFAULT_BUCKET, DEFAULT_REGION

PUBLISH_ATTEMPTS = 50
_POINTER_ATTEMPTS = 10
_UNREACHABLE = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)


class StoreError(Exception):
    """Base of every plan store error."""


class StoreUnavailable(StoreError):
    """S3 cannot be reached (or refuses us); the message says which endpoint and what to do."""


class PlanNotFound(StoreError):
    def __init__(self, key: str):
        super().__init__(f"no plan at {key}")
        self.key = key


class VersionExists(StoreError):
    def __init__(self, key: str):
        super().__init__(f"{key} already exists (another writer published that version first)")
        self.key = key


class FreezeState(BaseModel):
    """The kill switch marker: while it exists, nothing is published and enactors apply nothing."""

    model_config = ConfigDict(frozen=True)

    reason: str
    by: str
    at: str


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


@contextmanager
def s3_errors(endpoint: str, bucket: str, action: str) -> Iterator[None]:
    """Turn botocore's errors into the store's: unreachable S3 names the endpoint and the fix.

    Shared by every store kept in the plan bucket (plans here, the fleet in fleet_store.py).
    """
    try:
        yield
    except _UNREACHABLE as exc:
        raise StoreUnavailable(
            f"S3 is not reachable at {endpoint} ({action}: {exc}). Start the emulator "
            "(`dnsctl up` or `dnsctl emulator`) or point AWS_ENDPOINT_URL at a reachable S3."
        ) from exc
    except ClientError as exc:
        code = _code(exc)
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"):
            raise StoreUnavailable(
                f"S3 at {endpoint} refused {action} on bucket {bucket}: {code}. Check the AWS credentials."
            ) from exc
        if code == "NoSuchBucket":
            raise StoreUnavailable(
                f"bucket {bucket} does not exist at {endpoint} ({action}); the planner creates it on first use."
            ) from exc
        raise StoreError(f"S3 at {endpoint} failed {action}: {code or _status(exc)} {exc}") from exc
    except BotoCoreError as exc:
        raise StoreUnavailable(f"S3 at {endpoint} failed {action}: {exc}") from exc


def is_precondition_failure(exc: ClientError) -> bool:
    """412 PreconditionFailed: the condition did not hold; 409 ConditionalRequestConflict: a
    concurrent conditional write to the same key is in flight. Either way another writer won."""
    return _code(exc) in ("PreconditionFailed", "ConditionalRequestConflict") or _status(exc) in (409, 412)


def is_missing(exc: ClientError) -> bool:
    return _code(exc) in ("NoSuchKey", "404", "NotFound") or _status(exc) == 404


class PlanStore:
    @classmethod
    def from_env(cls, bucket: str | None = None, region: str | None = None) -> PlanStore:
        """The store the processes use: DNSCTL_BUCKET / DNSCTL_REGION / DNSCTL_CELL unless given, else the
        defaults; it verifies signatures when the environment names a public key (signing.PlanVerifier.from_env)."""
        return cls(
            bucket or os.environ.get("DNSCTL_BUCKET", DEFAULT_BUCKET),
            region or os.environ.get("DNSCTL_REGION", DEFAULT_REGION),
            verifier=PlanVerifier.from_env(),
            cell=cell_from_env(),
        )

    def __init__(
        self,
        bucket: str,
        region: str,
        s3=None,
        *,
        signer: PlanSigner | None = None,
        verifier: PlanVerifier | None = None,
        cell: str | None = None,
        document: type = Plan,
        namespace: str | None = None,
    ):
        """`document` is the class of what the stream holds (Plan; the cell map's CellMap has the same
        shape), `namespace` a key prefix of its own (the cell map's "cellmap/"); by default the cell's."""
        if s3 is None:
            from services.aws_clients import s3_client

            s3 = s3_client()
        self.bucket = bucket
        self.region = region
        self.s3 = s3
        self.signer = signer
        # A signing store trusts what it signs: its own public key unless told otherwise.
        self.verifier = verifier or (signer.verifier() if signer else None)
        self.cell = cell
        self.document = document
        # "" for the regional system, "cells/<cell>/" for a cell, or the stream's own (the cell map's).
        self.namespace = store_prefix(cell) if namespace is None else namespace
        self.prefix = f"{self.namespace}plans/{region}/"
        self.pointer_key = f"{self.prefix}latest.json"
        self.freeze_key = f"{self.namespace}control/{region}/freeze.json"

    @property
    def endpoint(self) -> str:
        return self.s3.meta.endpoint_url

    # -- errors ------------------------------------------------------------------------------

    def _s3(self, action: str):
        return s3_errors(self.endpoint, self.bucket, action)

    # -- bucket ------------------------------------------------------------------------------

    def ensure_bucket(self) -> None:
        """Create the bucket with versioning when absent; make sure versioning is on either way."""
        with self._s3("create bucket"):
            try:
                self.s3.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if _status(exc) != 404 and _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                    raise
                args: dict[str, Any] = {"Bucket": self.bucket}
                location = self.s3.meta.region_name
                if location and location != "us-east-1":
                    args["CreateBucketConfiguration"] = {"LocationConstraint": location}
                try:
                    self.s3.create_bucket(**args)
                except ClientError as create_exc:
                    if _code(create_exc) not in ("BucketAlreadyOwnedByYou",):
                        raise
            versioning = self.s3.get_bucket_versioning(Bucket=self.bucket)
            if versioning.get("Status") != "Enabled":
                self.s3.put_bucket_versioning(
                    Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"}
                )

    # -- plans -------------------------------------------------------------------------------

    def key_for(self, version: int) -> str:
        return f"{self.prefix}{version:010d}.json"

    def put(self, plan: Plan) -> Plan:
        """Write `plan` under its version's key, never over an existing one; returns it as stored (signed)."""
        if plan.region != self.region:
            raise StoreError(
                f"plan {plan.version} is for region {plan.region}, this store holds {self.region}"
            )
        key = self.key_for(plan.version)
        plan = plan.for_cell(self.cell)  # the stream's own cell, covered by checksum and signature
        if self.signer is not None:
            plan = self.signer.sign(plan)
        with self._s3(f"put {key}"):
            try:
                self.s3.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=plan.to_json(),
                    ContentType="application/json",
                    IfNoneMatch="*",
                )
            except ClientError as exc:
                if is_precondition_failure(exc):  # the version is taken
                    raise VersionExists(key) from exc
                raise
        self._advance_pointer(plan.version)
        return plan

    def publish(self, make: Callable[[int], Plan], *, above: int = 0) -> Plan:
        """Write make(max(newest, above) + 1); when another writer took that version, try the next free one.

        `above` is a floor the caller knows of besides the store (the planner passes the highest
        version Route 53 has applied, so a store that fell behind never numbers below it).
        Under heavy contention a writer that only stepped by one could keep losing to faster
        ones, so after a loss it jumps to the newest version + 1 and waits a little, jittered.
        """
        version = max(self.newest_version() or 0, above) + 1
        for attempt in range(PUBLISH_ATTEMPTS):
            plan = make(version)
            if plan.version != version:
                raise StoreError(f"make({version}) returned a plan with version {plan.version}")
            try:
                return self.put(plan)
            except VersionExists:
                time.sleep(random.uniform(0, 0.005 * min(attempt + 1, 10)))
                version = max(version + 1, (self.newest_version() or 0) + 1)
        raise StoreError(f"gave up publishing after losing {PUBLISH_ATTEMPTS} versions to other writers")

    def _exists(self, key: str) -> bool:
        with self._s3(f"head {key}"):
            try:
                self.s3.head_object(Bucket=self.bucket, Key=key)
                return True
            except ClientError as exc:
                if _status(exc) == 404 or _code(exc) in ("404", "NoSuchKey", "NotFound"):
                    return False
                raise

    def _read_pointer(self) -> tuple[int | None, str | None]:
        """(version the pointer names, its ETag); (None, None) when absent or unreadable."""
        with self._s3(f"get {self.pointer_key}"):
            try:
                obj = self.s3.get_object(Bucket=self.bucket, Key=self.pointer_key)
            except ClientError as exc:
                if _code(exc) in ("NoSuchKey", "404") or _status(exc) == 404:
                    return None, None
                raise
            raw, etag = obj["Body"].read(), obj.get("ETag")
        try:
            data = json.loads(raw)
            version = int(data["version"])
            if data.get("key") != self.key_for(version) or version < 1:
                return None, etag
            return version, etag
        except (ValueError, KeyError, TypeError):
            # A damaged pointer is only a hint gone bad: probing from 0 still finds the newest plan.
            return None, etag

    def _advance_pointer(self, version: int) -> None:
        """Move the pointer forward to `version` (compare-and-swap on its ETag); never backward."""
        body = canonical_json(
            {
                "version": version,
                "key": self.key_for(version),
                "updated_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            }
        )
        for _ in range(_POINTER_ATTEMPTS):
            current, etag = self._read_pointer()
            if current is not None and current >= version:
                return
            condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            with self._s3(f"put {self.pointer_key}"):
                try:
                    self.s3.put_object(
                        Bucket=self.bucket,
                        Key=self.pointer_key,
                        Body=body,
                        ContentType="application/json",
                        **condition,
                    )
                    return
                except ClientError as exc:
                    if _code(exc) in (
                        "PreconditionFailed",
                        "ConditionalRequestConflict",
                        "NoSuchKey",
                    ) or _status(exc) in (
                        404,
                        409,
                        412,
                    ):
                        continue  # someone moved the pointer meanwhile: re-read and decide again
                    raise
        # Losing every round means others keep moving it forward; readers probe past a lagging one anyway.

    def newest_version(self) -> int | None:
        """The newest published version, without listing: the pointer, checked, then probed forward."""
        hint, _ = self._read_pointer()
        if hint is not None and not self._exists(self.key_for(hint)):
            hint = None  # the pointer names a missing key: do not trust it
        low = hint or 0  # highest version known to exist (0: none)
        step = 1
        high = low + step
        while self._exists(self.key_for(high)):
            low, step = high, step * 2
            high = low + step
        # low exists (or is 0), high is missing: bisect the gap.
        while high - low > 1:
            mid = (low + high) // 2
            if self._exists(self.key_for(mid)):
                low = mid
            else:
                high = mid
        return low or None

    def newest(self) -> Plan | None:
        version = self.newest_version()
        return None if version is None else self.get(version)

    def get(self, version: int) -> Plan:
        key = self.key_for(version)
        with self._s3(f"get {key}"):
            try:
                raw = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            except ClientError as exc:
                if _code(exc) in ("NoSuchKey", "404") or _status(exc) == 404:
                    raise PlanNotFound(key) from exc
                raise
        plan = self.document.from_json(raw, key)
        if plan.version != version:
            raise PlanInvalid(key, f"document says version {plan.version}, its key says {version}")
        if plan.region != self.region:
            raise PlanInvalid(key, f"document says region {plan.region}, its key says {self.region}")
        if plan.cell != self.cell:
            raise PlanInvalid(key, f"document is for {plan.cell or 'the regional system'}, this stream is "
                                   f"{self.cell or 'the regional system'}'s")
        if self.verifier is not None and (problem := self.verifier.problem(plan)) is not None:
            raise PlanInvalid(key, problem)
        return plan

    def history(self, *, before: int | None = None, limit: int = 50) -> list[int]:
        """Versions older than `before` (default: all), newest first, at most `limit`.

        One bounded listing of the window of keys just below `before`; never the whole history.
        """
        if limit <= 0:
            return []
        if before is None:
            newest = self.newest_version()
            if newest is None:
                return []
            before = newest + 1
        first = max(1, before - limit)
        if first >= before:
            return []
        args = {"Bucket": self.bucket, "Prefix": self.prefix, "MaxKeys": limit}
        if first > 1:
            args["StartAfter"] = self.key_for(first - 1)
        with self._s3("list plans"):
            page = self.s3.list_objects_v2(**args)
        versions = []
        for obj in page.get("Contents", []):
            name = obj["Key"][len(self.prefix) :].removesuffix(".json")
            if name.isdigit() and first <= int(name) < before:
                versions.append(int(name))
        return sorted(versions, reverse=True)

    # -- the kill switch ---------------------------------------------------------------------

    def freeze_state(self) -> FreezeState | None:
        with self._s3(f"get {self.freeze_key}"):
            try:
                raw = self.s3.get_object(Bucket=self.bucket, Key=self.freeze_key)["Body"].read()
            except ClientError as exc:
                if _code(exc) in ("NoSuchKey", "404") or _status(exc) == 404:
                    return None
                raise
        try:
            return FreezeState.model_validate_json(raw)
        except ValueError:
            # The marker exists, so the system is frozen, whatever its content says.
            return FreezeState(
                reason=f"unreadable freeze marker at {self.freeze_key}", by="unknown", at="unknown"
            )

    def freeze(self, reason: str, by: str) -> FreezeState:
        state = FreezeState(reason=reason, by=by, at=datetime.now(UTC).isoformat(timespec="milliseconds"))
        with self._s3(f"put {self.freeze_key}"):
            self.s3.put_object(
                Bucket=self.bucket,
                Key=self.freeze_key,
                Body=canonical_json(state.model_dump()),
                ContentType="application/json",
            )
        return state

    def thaw(self, by: str) -> None:
        """Remove the marker. `by` is for the caller's log; S3 keeps the marker's history (versioning)."""
        with self._s3(f"delete {self.freeze_key}"):
            self.s3.delete_object(Bucket=self.bucket, Key=self.freeze_key)
