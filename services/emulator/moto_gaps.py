"""Every change this project makes to moto 5.2.5, in one place, and why.

moto keeps the wire format (request parsing, XML serialisation, S3, hosted-zone bookkeeping);
this module replaces what it gets wrong for a control plane that relies on Route 53's promises.
`install()` applies all of it once per process and returns the Route 53 store it serves.

Gaps closed (each is a place where code that is wrong on AWS would pass on stock moto):

Route 53 record sets (ChangeResourceRecordSets, ListResourceRecordSets, GetChange)
 1. DELETE was checked against the history of past changes, not the current record set, so a
    stale lock holder's DELETE succeeded -> the change path runs services.route53.engine, which
    demands an exact match with the current record set (InvalidChangeBatch otherwise).
 2. CREATE over an existing name+type left two record sets; a mismatching DELETE answered
    InvalidInput -> the engine's identity (name, type, SetIdentifier) and error codes.
 3. An error part-way through a batch left the earlier changes applied -> the engine validates
    against the evolving state and applies all or nothing.
 4. No lock around check-and-apply (lost updates, deleted records coming back) -> one lock per
    zone in services.emulator.route53_state.
 5. DELETE by SetIdentifier removed that id under every name; weights, alias targets, CNAME
    exclusivity, value syntax, the 32,000-character limit and the record-set quota were not
    checked -> the engine checks them.
 6. ListResourceRecordSets never returned NextRecordIdentifier (paging more than MaxItems
    weighted sets under one name looped forever), and ignored the 300 cap -> services.route53.listing.
 7. GetChange was always INSYNC with one shared id -> each change has its own id, PENDING until
    the configured propagation delay has passed; unknown ids answer NoSuchChange.
 8. Creating records was quadratic (each CREATE scanned the change history) -> the engine's
    indexed zone: flat per-batch time.
 9. Optional PriorRequestNotComplete while the zone's previous change is PENDING (store setting).

Route 53 hosted zones
10. New zones got a broken SOA value (a dict's repr) and NS values without the trailing dot ->
    Route 53's SOA and NS (route53_state.default_records); ChangeInfo ids are real change ids.
11. DeleteHostedZone and ResourceRecordSetCount looked at moto's unused record list -> the store.
12. ListHostedZonesByName returned only exact matches, unpaged -> Route 53's order (reversed
    labels, then id), starting at DNSName/HostedZoneId, with MaxItems and NextDNSName/NextHostedZoneId.
13. A second CreateHostedZone with the same CallerReference created another zone ->
    HostedZoneAlreadyExists.

Robustness and limits
14. A malformed Route 53 request (bad XML, bad integers, missing fields) crashed the parser and
    answered HTTP 500 -> InvalidInput (400), logged and counted; the server keeps running.
15. No throttling -> optional token bucket per account on the Route 53 API (off by default;
    10 requests/s, burst 50 when on), answering HTTP 400 Throttling "Rate exceeded".
16. /moto-api/reset did not know about the store -> resetting moto resets the store too.

S3
17. If-None-Match: * and If-Match on PutObject (and If-Match on DeleteObject, If-None-Match on
    CompleteMultipartUpload) were checked, then written, without a lock, so two racing writers
    could both "win" -> one lock per (bucket, key) around every object write, so exactly one
    conditional writer wins and the others get 412 PreconditionFailed.
"""

from __future__ import annotations

import threading
import time
import traceback
import uuid
import zlib
from collections.abc import Callable, Iterable
from typing import Any
from xml.sax.saxutils import escape

from prometheus_client import Counter

from services.emulator.route53_state import ChangeInfo, Route53Store, Settings
from services.logs import get_logger
from services.route53.engine import InvalidInput, Route53Error
from services.route53.listing import MAX_ITEMS, reversed_name
from services.route53.records import AliasTarget, Change, RecordSet, normalise_name

ROUTE53_XMLNS = "https://route53.amazonaws.com/doc/2013-04-01/"

CHANGES = Counter(
    "dnsctl_emulator_route53_changes", "ChangeResourceRecordSets batches, by result.", ["result"]
)
BAD_REQUESTS = Counter(
    "dnsctl_emulator_bad_requests",
    "Requests that could not be parsed or crashed a handler, by service.",
    ["service"],
)
THROTTLED = Counter("dnsctl_emulator_throttled", "Route 53 requests refused with Throttling.")

_installed: Route53Store | None = None
_install_lock = threading.Lock()


def install(settings: Settings | None = None) -> Route53Store:
    """Patch moto (once per process) and return the store behind its Route 53 record sets."""
    global _installed
    with _install_lock:
        if _installed is None:
            store = Route53Store(settings=settings or Settings())
            _patch_route53(store)
            _patch_reset(store)
            _patch_s3_conditional_writes()
            _installed = store
        elif settings is not None:
            _installed.settings = settings
        return _installed


# --- errors on the wire -------------------------------------------------------------------


def route53_error(code: str, message: str, status: int = 400) -> tuple[int, dict[str, str], str]:
    """A Route 53 error response as AWS sends it (ErrorResponse/Error/Code+Message)."""
    request_id = str(uuid.uuid4())
    body = (
        f'<?xml version="1.0"?>\n<ErrorResponse xmlns="{ROUTE53_XMLNS}"><Error><Type>Sender</Type>'
        f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return status, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, body


def s3_error(code: str, message: str, status: int = 400) -> tuple[int, dict[str, str], str]:
    request_id = uuid.uuid4().hex[:16].upper()
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(code)}</Code>'
        f"<Message>{escape(message)}</Message><RequestId>{request_id}</RequestId></Error>"
    )
    return status, {"Content-Type": "application/xml", "x-amz-request-id": request_id}, body


def _as_service_exception(err: Route53Error) -> Exception:
    # moto finds the error's HTTP status in the service model named by the exception's module,
    # so the exception must be one of moto.route53's.
    from moto.route53.exceptions import Route53ClientError

    return Route53ClientError(err.code, err.message)


def _aws_errors(handler: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Turn the store's and engine's Route53Error into moto's serialisable ServiceException."""

    def wrapper(self: Any) -> Any:
        try:
            return handler(self)
        except Route53Error as err:
            raise _as_service_exception(err) from err

    wrapper.__name__ = handler.__name__
    return wrapper


# --- request parsing ----------------------------------------------------------------------


def _zone_id(raw: Any) -> str:
    if not raw or not isinstance(raw, str):
        raise InvalidInput(
            "1 validation error detected: Value null at 'hostedZoneId' failed to satisfy constraint: Member must not be null"
        )
    return raw.rstrip("/").rsplit("/", 1)[-1]


_UNSUPPORTED_ROUTING = (
    "Region",
    "Failover",
    "GeoLocation",
    "GeoProximityLocation",
    "MultiValueAnswer",
    "HealthCheckId",
    "TrafficPolicyInstanceId",
    "CidrRoutingConfig",
)


def _int_field(data: dict[str, Any], key: str, where: str) -> int | None:
    raw = data.get(key)
    if raw is None:
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"Invalid XML ; cvc-datatype-valid.1.2.1: '{raw}' is not a valid value for 'integer' ({where}.{key})."
        ) from None


def parse_change(raw: Any, position: int) -> Change:
    """One boto-shaped Change dict -> records.Change, or InvalidInput worded as Route 53's schema errors."""
    where = f"changeBatch.changes.{position}.member"
    if not isinstance(raw, dict) or not raw.get("Action"):
        raise InvalidInput(
            f"1 validation error detected: Value null at '{where}.action' failed to satisfy constraint: Member must not be null"
        )
    data = raw.get("ResourceRecordSet")
    if not isinstance(data, dict):
        raise InvalidInput(
            f"1 validation error detected: Value null at '{where}.resourceRecordSet' failed to satisfy constraint: Member must not be null"
        )
    for key in ("Name", "Type"):
        if not data.get(key) or not isinstance(data[key], str):
            raise InvalidInput(
                f"1 validation error detected: Value null at '{where}.resourceRecordSet.{key[0].lower()}{key[1:]}' "
                "failed to satisfy constraint: Member must not be null"
            )
    present = [k for k in _UNSUPPORTED_ROUTING if data.get(k) not in (None, "", [], {})]
    if present:
        raise InvalidInput(
            f"Invalid request: this emulator supports simple and weighted record sets only; found {present[0]} "
            f"in Change with [Action={raw['Action']}, Name={data['Name']}]"
        )
    alias = None
    if data.get("AliasTarget"):
        a = data["AliasTarget"]
        if not isinstance(a, dict) or not a.get("DNSName") or not a.get("HostedZoneId"):
            raise InvalidInput(
                f"1 validation error detected: Value null at '{where}.resourceRecordSet.aliasTarget.dNSName' failed to satisfy constraint: Member must not be null"
            )
        alias = AliasTarget(
            dns_name=str(a["DNSName"]),
            hosted_zone_id=str(a["HostedZoneId"]),
            evaluate_target_health=str(a.get("EvaluateTargetHealth", False)).lower() == "true",
        )
    values: list[str] = []
    for rr in data.get("ResourceRecords") or []:
        if not isinstance(rr, dict) or rr.get("Value") is None:
            raise InvalidInput(
                f"1 validation error detected: Value null at '{where}.resourceRecordSet.resourceRecords.member.value' failed to satisfy constraint: Member must not be null"
            )
        values.append(str(rr["Value"]))
    record = RecordSet(
        name=data["Name"],
        type=data["Type"],
        ttl=_int_field(data, "TTL", where),
        values=tuple(values),
        alias=alias,
        set_identifier=data.get("SetIdentifier"),
        weight=_int_field(data, "Weight", where),
    )
    return Change(action=str(raw["Action"]), record=record)  # type: ignore[arg-type]


def _record_out(record: RecordSet) -> dict[str, Any]:
    out = record.to_boto()
    # Route 53 answers '*' escaped as \052.
    out["Name"] = record.name.replace("*", "\\052")
    return out


def _change_info(store: Route53Store, info: ChangeInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Id": f"/change/{info.id}",
        "Status": store.status(info),
        "SubmittedAt": info.submitted_datetime,
    }
    if info.comment:
        out["Comment"] = info.comment
    return out


def _max_items(raw: Any, default: int) -> int:
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"1 validation error detected: Value '{raw}' at 'maxItems' failed to satisfy constraint: Member must be a number"
        ) from None


# --- Route 53 -----------------------------------------------------------------------------


def _patch_route53(store: Route53Store) -> None:
    from moto.core.responses import ActionResult
    from moto.route53 import models as r53_models
    from moto.route53.exceptions import Route53ClientError as ServiceException
    from moto.route53.responses import Route53

    log = get_logger(component="route53")
    original_create = Route53.create_hosted_zone
    original_dispatch = Route53._dispatch

    def create_hosted_zone(self: Route53) -> ActionResult:
        caller_reference = self._get_param("CallerReference")
        if caller_reference and any(
            z.caller_reference == caller_reference for z in self.backend.zones.values()
        ):
            raise ServiceException(
                "HostedZoneAlreadyExists",
                "A hosted zone has already been created with the specified caller reference.",
            )
        if not caller_reference:
            raise ServiceException(
                "InvalidInput",
                "1 validation error detected: Value null at 'callerReference' failed to satisfy constraint: "
                "Member must not be null",
            )
        if not self._get_param("Name"):
            raise ServiceException("InvalidDomainName", "The domain name is invalid: an empty name")
        result = original_create(self)
        zone = result.result["HostedZone"]
        change = store.add_zone(zone.resource_id, zone.name)
        result.result["ChangeInfo"] = _change_info(store, change)
        log.info("hosted_zone_created", zone_id=zone.resource_id, zone=zone.name)
        return result

    @_aws_errors
    def delete_hosted_zone(self: Route53) -> ActionResult:
        zone_id = _zone_id(self._get_param("Id"))
        self.backend.get_hosted_zone(zone_id)  # NoSuchHostedZone as moto words it
        change = store.remove_zone(zone_id)
        self.backend.zones.pop(zone_id, None)
        log.info("hosted_zone_deleted", zone_id=zone_id)
        return ActionResult({"ChangeInfo": _change_info(store, change)})

    @_aws_errors
    def list_hosted_zones_by_name(self: Route53) -> ActionResult:
        dns_name = self._get_param("DNSName")
        start_id = self._get_param("HostedZoneId")
        max_items = _max_items(self._get_param("MaxItems"), 100)
        if start_id and not dns_name:
            raise InvalidInput("The input is not valid: HostedZoneId requires DNSName")
        zones = sorted(
            self.backend.zones.values(), key=lambda z: (reversed_name(normalise_name(z.name)), z.resource_id)
        )
        if dns_name:
            probe = (reversed_name(normalise_name(dns_name)), _zone_id(start_id) if start_id else "")
            zones = [z for z in zones if (reversed_name(normalise_name(z.name)), z.resource_id) >= probe]
        page, rest = zones[: max(max_items, 1)], zones[max(max_items, 1) :]
        result: dict[str, Any] = {
            "HostedZones": page,
            "DNSName": dns_name,
            "HostedZoneId": start_id,
            "IsTruncated": bool(rest),
            "MaxItems": str(max_items),
        }
        if rest:
            result["NextDNSName"] = rest[0].name
            result["NextHostedZoneId"] = rest[0].resource_id
        return ActionResult(result)

    @_aws_errors
    def change_resource_record_sets(self: Route53) -> ActionResult:
        zone_id = _zone_id(self._get_param("HostedZoneId"))
        batch = self._get_param("ChangeBatch")
        if not isinstance(batch, dict):
            raise InvalidInput(
                "1 validation error detected: Value null at 'changeBatch' failed to satisfy constraint: Member must not be null"
            )
        raw_changes = batch.get("Changes") or []
        if not isinstance(raw_changes, list):
            raw_changes = [raw_changes]
        changes = [parse_change(raw, i) for i, raw in enumerate(raw_changes, start=1)]
        try:
            info = store.change(zone_id, changes, comment=str(batch.get("Comment") or ""))
        except Route53Error as err:
            CHANGES.labels(result=err.code).inc()
            log.info(
                "route53_change_rejected",
                zone_id=zone_id,
                code=err.code,
                changes=len(changes),
                reason=err.message[:500],
            )
            raise
        CHANGES.labels(result="applied").inc()
        log.info("route53_change_applied", zone_id=zone_id, change_id=info.id, changes=len(changes))
        return ActionResult({"ChangeInfo": _change_info(store, info)})

    @_aws_errors
    def list_resource_record_sets(self: Route53) -> ActionResult:
        zone_id = _zone_id(self._get_param("HostedZoneId"))
        max_items = _max_items(self._get_param("MaxItems"), MAX_ITEMS)
        page = store.page(
            zone_id,
            start_name=self._get_param("StartRecordName"),
            start_type=self._get_param("StartRecordType"),
            start_identifier=self._get_param("StartRecordIdentifier"),
            max_items=max_items,
        )
        result: dict[str, Any] = {
            "ResourceRecordSets": [_record_out(r) for r in page.records],
            "IsTruncated": page.is_truncated,
            "MaxItems": str(max_items),
        }
        if page.is_truncated:
            result["NextRecordName"] = page.next_name.replace("*", "\\052") if page.next_name else None
            result["NextRecordType"] = page.next_type
            if page.next_identifier is not None:
                result["NextRecordIdentifier"] = page.next_identifier
        return ActionResult(result)

    @_aws_errors
    def get_change(self: Route53) -> ActionResult:
        change_id = self._get_param("Id")
        if not change_id:
            raise InvalidInput(
                "1 validation error detected: Value null at 'id' failed to satisfy constraint: Member must not be null"
            )
        return ActionResult({"ChangeInfo": _change_info(store, store.get_change(str(change_id)))})

    def guarded_dispatch(self: Route53, request: Any, full_url: Any = None, headers: Any = None) -> Any:
        # moto parses the whole request before any handler runs; a body it cannot parse raised
        # out of the Flask view as HTTP 500. Answer as Route 53 does and keep serving.
        try:
            return original_dispatch(self, request, full_url, headers)
        except Exception as exc:  # noqa: BLE001 - the point is that nothing escapes
            BAD_REQUESTS.labels(service="route53").inc()
            log.warning(
                "route53_request_malformed",
                path=getattr(request, "path", ""),
                error=f"{type(exc).__name__}: {exc}"[:300],
                where=traceback.format_exc(limit=3)[-600:],
            )
            return route53_error("InvalidInput", "Invalid request: the request could not be parsed")

    Route53.create_hosted_zone = create_hosted_zone  # type: ignore[method-assign]
    Route53.delete_hosted_zone = delete_hosted_zone  # type: ignore[method-assign]
    Route53.list_hosted_zones_by_name = list_hosted_zones_by_name  # type: ignore[method-assign]
    Route53.change_resource_record_sets = change_resource_record_sets  # type: ignore[method-assign]
    Route53.list_resource_record_sets = list_resource_record_sets  # type: ignore[method-assign]
    Route53.get_change = get_change  # type: ignore[method-assign]
    Route53._dispatch = guarded_dispatch  # type: ignore[method-assign]
    r53_models.FakeZone.resource_record_set_count = property(
        lambda zone: store.record_count(zone.resource_id)
    )  # type: ignore[assignment]


def _patch_reset(store: Route53Store) -> None:
    from moto.moto_api._internal.models import MotoAPIBackend

    original_reset = MotoAPIBackend.reset

    def reset(self: MotoAPIBackend) -> None:
        original_reset(self)
        store.reset()
        get_logger(component="emulator").info("emulator_reset")

    MotoAPIBackend.reset = reset  # type: ignore[method-assign]


# --- S3 -----------------------------------------------------------------------------------


class _KeyLocks:
    """A fixed array of locks striped by (bucket, key): same key, same lock; bounded memory."""

    def __init__(self, stripes: int = 1024):
        self._locks = [threading.Lock() for _ in range(stripes)]

    def lock(self, bucket: str, key: str) -> threading.Lock:
        return self._locks[zlib.crc32(f"{bucket}\0{key}".encode()) % len(self._locks)]


def _patch_s3_conditional_writes() -> None:
    from moto.s3.responses import S3Response

    locks = _KeyLocks()
    put, delete, post = (
        S3Response._key_response_put,
        S3Response._key_response_delete,
        S3Response._key_response_post,
    )

    def locked_put(self: S3Response, query: Any, key_name: str) -> Any:
        with locks.lock(self.bucket_name, key_name):
            return put(self, query, key_name)

    def locked_delete(self: S3Response, bucket_name: str, query: Any, key_name: str) -> Any:
        with locks.lock(bucket_name, key_name):
            return delete(self, bucket_name, query, key_name)

    def locked_post(
        self: S3Response, request: Any, body: bytes, bucket_name: str, query: Any, key_name: str
    ) -> Any:
        with locks.lock(bucket_name, key_name):
            return post(self, request, body, bucket_name, query, key_name)

    S3Response._key_response_put = locked_put  # type: ignore[method-assign]
    S3Response._key_response_delete = locked_delete  # type: ignore[method-assign]
    S3Response._key_response_post = locked_post  # type: ignore[method-assign]


# --- WSGI layer: throttling and the last line of defence -----------------------------------


class _Bucket:
    """Token bucket that refuses (rather than queues) when empty: the service side of a rate limit."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self._clock = rate, burst, clock
        self._level, self._stamp = burst, clock()
        self._lock = threading.Lock()

    def try_take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._level = min(self.burst, self._level + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._level >= 1.0:
                self._level -= 1.0
                return True
            return False


def signing_scope(environ: dict[str, Any]) -> tuple[str, str]:
    """(access key id, service) from a SigV4 Authorization header; ("", "") when unsigned."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    try:
        credential = auth.split("Credential=", 1)[1].split(",", 1)[0].strip()
        parts = credential.split("/")
        return parts[0], parts[3]
    except IndexError:
        return "", ""


class EmulatorWsgi:
    """Wraps moto's dispatcher: Route 53 throttling (optional) and no request ever gets a 500."""

    def __init__(
        self,
        app: Any,
        throttle: tuple[float, float] | None = None,
        extra_routes: dict[str, Callable[[], tuple[str, bytes]]] | None = None,
    ):
        self.app = app
        self.throttle = throttle
        self.extra_routes = extra_routes or {}
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()
        self._log = get_logger(component="emulator")

    def _bucket(self, account: str) -> _Bucket:
        with self._lock:
            bucket = self._buckets.get(account)
            if bucket is None:
                assert self.throttle is not None
                bucket = self._buckets[account] = _Bucket(*self.throttle)
            return bucket

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        route = self.extra_routes.get(path)
        if route is not None:
            content_type, payload = route()
            start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(payload)))])
            return [payload]
        access_key, service = signing_scope(environ)
        if self.throttle is not None and service == "route53" and not self._bucket(access_key).try_take():
            THROTTLED.inc()
            return self._respond(start_response, route53_error("Throttling", "Rate exceeded"))
        try:
            return self.app(environ, start_response)
        except Exception as exc:  # noqa: BLE001 - a request must never take the emulator down
            BAD_REQUESTS.labels(service=service or "unknown").inc()
            self._log.warning(
                "emulator_request_failed", path=path, error=f"{type(exc).__name__}: {exc}"[:300]
            )
            if service == "route53":
                return self._respond(start_response, route53_error("InvalidInput", "Invalid request"))
            if type(exc).__name__ in ("ExpatError", "ParseError"):
                malformed = s3_error(
                    "MalformedXML",
                    "The XML you provided was not well-formed or did not validate against our published schema",
                )
                return self._respond(start_response, malformed)
            return self._respond(
                start_response, s3_error("InvalidRequest", "The request could not be processed.")
            )

    @staticmethod
    def _respond(
        start_response: Callable[..., Any], response: tuple[int, dict[str, str], str]
    ) -> list[bytes]:
        status, headers, body = response
        payload = body.encode()
        reason = {400: "Bad Request", 404: "Not Found"}.get(status, "Error")
        start_response(f"{status} {reason}", [*headers.items(), ("Content-Length", str(len(payload)))])
        return [payload]
