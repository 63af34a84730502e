"""Route 53's XML for the record-set paths and the errors, read and written directly.

ChangeResourceRecordSets bodies of 1,000 changes and ListResourceRecordSets pages of 300 record
sets are the emulator's hot paths; moto's model-driven parser and serialiser spend 30-70 ms on
each, more than the engine itself. These functions do the same with ElementTree and string
building, following the 2013-04-01 API's element names and order, so the emulator's per-batch
time stays flat and small. Pure: bytes in, values or bytes out.
"""

from __future__ import annotations

import uuid
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from services.emulator.route53_state import ChangeInfo
from services.route53.engine import InvalidInput
from services.route53.listing import Page
from services.route53.records import AliasTarget, Change, RecordSet

XMLNS = "https://route53.amazonaws.com/doc/2013-04-01/"

# HTTP status of each Route 53 error code the emulator answers (all others: 400).
STATUS = {"NoSuchHostedZone": 404, "NoSuchChange": 404, "HostedZoneAlreadyExists": 409}

Response = tuple[int, dict[str, str], str]


def route53_error(code: str, message: str, status: int | None = None) -> Response:
    """A Route 53 error response as AWS sends it (ErrorResponse/Error/Type+Code+Message)."""
    request_id = str(uuid.uuid4())
    body = (
        f'<?xml version="1.0"?>\n<ErrorResponse xmlns="{XMLNS}"><Error><Type>Sender</Type>'
        f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    headers = {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}
    return status or STATUS.get(code, 400), headers, body


def s3_error(code: str, message: str, status: int = 400) -> Response:
    request_id = uuid.uuid4().hex[:16].upper()
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(code)}</Code>'
        f"<Message>{escape(message)}</Message><RequestId>{request_id}</RequestId></Error>"
    )
    return status, {"Content-Type": "application/xml", "x-amz-request-id": request_id}, body


def _ok(body: str) -> Response:
    return 200, {"Content-Type": "text/xml", "x-amzn-RequestId": str(uuid.uuid4())}, body


# --- requests -------------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _to_data(elem: ElementTree.Element) -> Any:
    """An element as boto-shaped data: lists for the API's list wrappers, dicts, strings."""
    children = list(elem)
    if not children:
        return elem.text or ""
    name = _local(elem.tag)
    if name in ("Changes", "ResourceRecords"):
        return [_to_data(c) for c in children]
    return {_local(c.tag): _to_data(c) for c in children}


def _null(field: str) -> InvalidInput:
    return InvalidInput(
        f"1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
    )


def parse_change_request(body: bytes) -> tuple[list[Change], str]:
    """A ChangeResourceRecordSetsRequest body -> (changes, comment); InvalidInput when malformed."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as err:
        raise InvalidInput(f"Invalid XML ; {err}") from None
    data = _to_data(root)
    batch = data.get("ChangeBatch") if isinstance(data, dict) else None
    if not isinstance(batch, dict):
        raise _null("changeBatch")
    raw_changes = batch.get("Changes")
    if not isinstance(raw_changes, list):
        raise _null("changeBatch.changes")
    comment = batch.get("Comment")
    changes = [parse_change(raw, i) for i, raw in enumerate(raw_changes, start=1)]
    return changes, comment if isinstance(comment, str) else ""


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
            f"1 validation error detected: Value '{raw}' at '{where}.{key[0].lower()}{key[1:]}' failed to "
            "satisfy constraint: Member must be a number"
        ) from None


def parse_change(raw: Any, position: int) -> Change:
    """One boto-shaped Change -> records.Change, or InvalidInput worded as Route 53's schema errors."""
    where = f"changeBatch.changes.{position}.member"
    if not isinstance(raw, dict) or not raw.get("Action"):
        raise _null(f"{where}.action")
    data = raw.get("ResourceRecordSet")
    if not isinstance(data, dict):
        raise _null(f"{where}.resourceRecordSet")
    for key in ("Name", "Type"):
        if not data.get(key) or not isinstance(data[key], str):
            raise _null(f"{where}.resourceRecordSet.{key.lower()}")
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
            raise _null(f"{where}.resourceRecordSet.aliasTarget.dNSName")
        alias = AliasTarget(
            dns_name=str(a["DNSName"]),
            # Route 53 stores and answers the bare id, whether or not "/hostedzone/" was sent.
            hosted_zone_id=str(a["HostedZoneId"]).rstrip("/").rsplit("/", 1)[-1],
            evaluate_target_health=str(a.get("EvaluateTargetHealth", False)).lower() == "true",
        )
    values: list[str] = []
    for rr in data.get("ResourceRecords") or []:
        if not isinstance(rr, dict) or not isinstance(rr.get("Value"), str):
            raise _null(f"{where}.resourceRecordSet.resourceRecords.member.value")
        values.append(rr["Value"])
    set_identifier = data.get("SetIdentifier")
    record = RecordSet(
        name=data["Name"],
        type=data["Type"],
        ttl=_int_field(data, "TTL", f"{where}.resourceRecordSet"),
        values=tuple(values),
        alias=alias,
        set_identifier=set_identifier if isinstance(set_identifier, str) else None,
        weight=_int_field(data, "Weight", f"{where}.resourceRecordSet"),
    )
    return Change(action=str(raw["Action"]), record=record)  # type: ignore[arg-type]


def parse_max_items(raw: str | None, default: int) -> int:
    if raw in (None, ""):
        return default
    try:
        return int(raw)  # type: ignore[arg-type]
    except ValueError:
        raise InvalidInput(
            f"1 validation error detected: Value '{raw}' at 'maxItems' failed to satisfy constraint: Member must be a number"
        ) from None


# --- responses ------------------------------------------------------------------------------


def timestamp(info: ChangeInfo) -> str:
    return info.submitted_datetime.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def change_info_dict(info: ChangeInfo, status: str) -> dict[str, Any]:
    """ChangeInfo for responses moto serialises (CreateHostedZone, GetChange, ...)."""
    out: dict[str, Any] = {
        "Id": f"/change/{info.id}",
        "Status": status,
        "SubmittedAt": info.submitted_datetime,
    }
    if info.comment:
        out["Comment"] = info.comment
    return out


def change_response(info: ChangeInfo, status: str) -> Response:
    comment = f"<Comment>{escape(info.comment)}</Comment>" if info.comment else ""
    return _ok(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<ChangeResourceRecordSetsResponse xmlns="{XMLNS}"><ChangeInfo>'
        f"<Id>/change/{info.id}</Id><Status>{status}</Status><SubmittedAt>{timestamp(info)}</SubmittedAt>{comment}"
        "</ChangeInfo></ChangeResourceRecordSetsResponse>"
    )


def wire_name(name: str) -> str:
    """Route 53 answers '*' escaped as \\052."""
    return name.replace("*", "\\052")


def _record_xml(r: RecordSet) -> str:
    parts = [f"<ResourceRecordSet><Name>{escape(wire_name(r.name))}</Name><Type>{r.type}</Type>"]
    if r.set_identifier is not None:
        parts.append(f"<SetIdentifier>{escape(r.set_identifier)}</SetIdentifier>")
    if r.weight is not None:
        parts.append(f"<Weight>{r.weight}</Weight>")
    if r.alias is not None:
        a = r.alias
        health = "true" if a.evaluate_target_health else "false"
        parts.append(
            f"<AliasTarget><HostedZoneId>{escape(a.hosted_zone_id)}</HostedZoneId><DNSName>{escape(a.dns_name)}</DNSName>"
            f"<EvaluateTargetHealth>{health}</EvaluateTargetHealth></AliasTarget>"
        )
    else:
        values = "".join(f"<ResourceRecord><Value>{escape(v)}</Value></ResourceRecord>" for v in r.values)
        parts.append(f"<TTL>{r.ttl}</TTL><ResourceRecords>{values}</ResourceRecords>")
    parts.append("</ResourceRecordSet>")
    return "".join(parts)


def list_response(page: Page, max_items: int) -> Response:
    body = [
        f'<?xml version="1.0" encoding="UTF-8"?>\n<ListResourceRecordSetsResponse xmlns="{XMLNS}"><ResourceRecordSets>'
    ]
    body.extend(_record_xml(r) for r in page.records)
    body.append(f"</ResourceRecordSets><IsTruncated>{'true' if page.is_truncated else 'false'}</IsTruncated>")
    if page.is_truncated:
        body.append(f"<NextRecordName>{escape(wire_name(page.next_name or ''))}</NextRecordName>")
        body.append(f"<NextRecordType>{page.next_type}</NextRecordType>")
        if page.next_identifier is not None:
            body.append(f"<NextRecordIdentifier>{escape(page.next_identifier)}</NextRecordIdentifier>")
    body.append(f"<MaxItems>{max_items}</MaxItems></ListResourceRecordSetsResponse>")
    return _ok("".join(body))


def zone_limit_response(limit_type: str, value: int, count: int) -> Response:
    """GetHostedZoneLimit's answer: the limit and how much of it the zone uses."""
    return _ok(
        f'<?xml version="1.0"?>\n<GetHostedZoneLimitResponse xmlns="{XMLNS}"><Limit><Type>{escape(limit_type)}</Type>'
        f"<Value>{value}</Value></Limit><Count>{count}</Count></GetHostedZoneLimitResponse>"
    )
