"""Hosted zones of the endpoints: find a zone's id by name, and create the zones that are missing.

Each endpoint lives in its own public hosted zone, named like the endpoint (or a parent of it,
as a fleet may say). The enactor finds the id with ListHostedZonesByName, the one call Route 53
offers for a look-up by name; `dnsctl up` calls `ensure_zones` before any enactor starts. Both
work the same against real Route 53 and the emulator: they only use documented calls.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from services.route53.records import normalise_name


class ZoneNotFound(LookupError):
    def __init__(self, name: str):
        super().__init__(
            f"no public hosted zone named {name} (create it with `dnsctl zones ensure --endpoint NAME` (`dnsctl up` does it for the fleet), "
            "or with `aws route53 create-hosted-zone`)"
        )
        self.name = name


def bare_zone_id(raw: str) -> str:
    """'/hostedzone/Z123' -> 'Z123' (alias targets and most tools want the bare id)."""
    return raw.rsplit("/", 1)[-1]


def find_zone_id(name: str, client=None) -> str | None:
    """The bare id of the public hosted zone named exactly `name`, or None."""
    if client is None:
        from services.aws_clients import route53_client

        client = route53_client()
    wanted = normalise_name(name)
    marker: dict[str, str] = {}
    while True:
        # Zones come sorted by name from DNSName on; zones of the same name (rare) follow each other.
        page = client.list_hosted_zones_by_name(DNSName=wanted, MaxItems="100", **marker)
        for zone in page.get("HostedZones", []):
            zone_name = normalise_name(zone["Name"])
            if zone_name != wanted:
                return None
            if not zone.get("Config", {}).get("PrivateZone", False):
                return bare_zone_id(zone["Id"])
        if not page.get("IsTruncated"):
            return None
        marker = {"HostedZoneId": page["NextHostedZoneId"]}
        wanted = normalise_name(page["NextDNSName"])


def zone_id_for(name: str, client=None) -> str:
    """Like find_zone_id, but a missing zone is a ZoneNotFound that says how to create it."""
    zone_id = find_zone_id(name, client)
    if zone_id is None:
        raise ZoneNotFound(normalise_name(name))
    return zone_id


def ensure_zones(endpoint_names: Iterable[str], client=None, *, real_account: bool = False) -> dict[str, str]:
    """Create a public hosted zone for every name that has none; return {name: zone id} of those created.

    Idempotent: names that already have a zone are left alone. In a real AWS account (no endpoint
    override) it calls nothing unless `real_account` says the user asked for it (`--aws`):
    RealAccountRefused names the zones it could create.
    """
    from services.aws_clients import refuse_real_aws

    if client is None:
        from services.aws_clients import route53_client

        client = route53_client()
    names = list(dict.fromkeys(normalise_name(n) for n in endpoint_names))
    refuse_real_aws(client, f"create hosted zones for {', '.join(names)}", real_account)
    missing = [name for name in names if find_zone_id(name, client) is None]
    created: dict[str, str] = {}
    for name in missing:
        reply = client.create_hosted_zone(
            Name=name,
            CallerReference=f"dnsctl-{uuid.uuid4()}",
            HostedZoneConfig={"Comment": "dnsctl endpoint zone", "PrivateZone": False},
        )
        created[name] = bare_zone_id(reply["HostedZone"]["Id"])
    return created
