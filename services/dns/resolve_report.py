"""What `dnsctl resolve NAME` reports: Route 53's answer and the path behind it, from Route 53 alone.

The zone holding NAME is read through the control API (no DNS server needed), answered with the
same rules as the data plane (answer.py), and explained in human terms (explain.py): root alias
-> tree UUID -> plan version -> load balancers and weights. A dangling root is reported as such,
naming the missing tree. With a DNS server given, what it serves right now is shown beside it
(it may lag Route 53 by a refresh, or be a cache).
"""

from __future__ import annotations

import random
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from services.dns.answer import leaf_distribution, resolve
from services.dns.explain import endpoint_view, is_endpoint_zone, view_to_json
from services.dns.snapshot import Snapshot, list_zones, read_served_zone, zone_selected
from services.route53.records import normalise_name


class NoHostedZone(LookupError):
    """No public hosted zone in Route 53 contains the name."""


def build(client: Any, name: str, rtype: str, dns_server: tuple[str, int] | None = None) -> dict[str, Any]:
    qname = normalise_name(name)
    zones = [z for z in list_zones(client) if not z.private and zone_selected(qname, (z.name,))]
    if not zones:
        raise NoHostedZone(f"no public hosted zone in Route 53 contains {qname} (see `aws route53 list-hosted-zones`)")
    listing = max(zones, key=lambda z: len(z.name))
    served = read_served_zone(client, listing.zone_id, listing.name)
    snap = Snapshot.of([served])
    result = resolve(snap, qname, rtype, random.Random())
    answer_ttl = min((r.ttl for r in result.answers), default=None)
    report: dict[str, Any] = {
        "name": qname,
        "type": rtype,
        "zone": {"name": listing.name, "id": listing.zone_id},
        "answer": {
            "rcode": result.rcode.name,
            "addresses": [r.value for r in result.answers if r.type == rtype],
            "records": [{"name": r.name, "type": r.type, "ttl": r.ttl, "value": r.value} for r in result.answers],
            "ttl": answer_ttl,
            "authority": [{"name": r.name, "type": r.type, "ttl": r.ttl, "value": r.value} for r in result.authority],
            "dangling": result.dangling,
            "path": [
                {"kind": s.kind, "name": s.name, "target": s.target, "set_identifier": s.set_identifier,
                 "weight": s.weight, "total_weight": s.total_weight}
                for s in result.path
            ],
        },
        "endpoint": None,
        "leaves": [
            {"name": leaf.name, "probability": round(leaf.probability, 6), "via": list(leaf.via),
             "values": list(leaf.values), "missing": leaf.missing}
            for leaf in leaf_distribution(snap, qname, rtype)
        ],
        "data_plane": None,
    }
    if qname == served.name and is_endpoint_zone(served):
        report["endpoint"] = view_to_json(endpoint_view(snap, served, rtype))
    if dns_server is not None:
        report["data_plane"] = ask(dns_server, qname, rtype)
    return report


def ask(server: tuple[str, int], name: str, rtype: str) -> dict[str, Any]:
    query = dns.message.make_query(name, dns.rdatatype.from_text(rtype))
    where = f"{server[0]}:{server[1]}"
    try:
        reply = dns.query.udp(query, server[0], port=server[1], timeout=2.0)
    except (dns.exception.DNSException, OSError) as exc:
        return {"server": where, "error": f"{type(exc).__name__}: {exc}"}
    return {
        "server": where,
        "rcode": dns.rcode.to_text(reply.rcode()),
        "addresses": [r.to_text() for rrset in reply.answer if rrset.rdtype == query.question[0].rdtype for r in rrset],
        "authority": [rrset.to_text() for rrset in reply.authority],
    }
