"""Reading Route 53 into a snapshot: every page, and the last good copy kept when reads fail."""

from __future__ import annotations

import time

import dns.rcode

from services.aws_clients import route53_client
from services.dns.snapshot import Snapshot, load_snapshot, read_zone
from tests.conftest import start_emulator
from tests.dns.dnsproc import start_dns, wait_for
from tests.dns.trees import HandZone, a_fleet


def test_paged_read_equals_single_read_across_weighted_sets(emulator, unique) -> None:
    zone = HandZone(emulator.client("route53"), f"paging-{unique}.test")
    zone.flip(zone.build_tree(1, a_fleet(6)))
    client = route53_client()
    whole, pages_whole = read_zone(client, zone.zone_id, zone.endpoint)
    paged, pages = read_zone(client, zone.zone_id, zone.endpoint, page_size=5)
    assert pages_whole == 1 and pages >= 6
    assert paged.records == whole.records and len(whole) > 25
    snap = load_snapshot(client, only=(zone.endpoint,), page_size=7)
    assert set(snap.zones) == {zone.endpoint}
    assert snap.zones[zone.endpoint].zone.records == whole.records
    assert snap.by_id[zone.zone_id] is snap.zones[zone.endpoint]


def test_unchanged_zone_keeps_its_object_and_other_zones_are_filtered(emulator, unique) -> None:
    a = HandZone(emulator.client("route53"), f"a.filter-{unique}.test")
    HandZone(emulator.client("route53"), f"b-filter-{unique}.test")
    client = route53_client()
    first = load_snapshot(client, only=(f"filter-{unique}.test",))
    assert set(first.zones) == {a.endpoint}
    second = load_snapshot(client, only=(f"filter-{unique}.test",), previous=first)
    assert second.zones[a.endpoint] is first.zones[a.endpoint] and second.generation == first.generation + 1
    assert Snapshot().zone_for(a.endpoint) is None


def test_server_keeps_answering_from_the_last_snapshot_when_route53_is_gone(tmp_path_factory, unique) -> None:
    private = start_emulator(tmp_path_factory)
    try:
        zone = HandZone(private.client("route53"), f"outage-{unique}.test")
        lbs = a_fleet(1, salt=30)
        zone.flip(zone.build_tree(1, lbs))
        server = start_dns(tmp_path_factory.mktemp("dns-outage"), "--refresh-ms", "100", zone=zone.endpoint,
                           env={**private.env(), "AWS_MAX_ATTEMPTS": "1"})
    except Exception:
        private.process.stop()
        raise
    try:
        private.process.stop()  # Route 53's control plane goes away
        wait_for(lambda: '"snapshot_refresh_failed"' in server.process.output(), 30, "the refresh failure to be logged")
        time.sleep(0.5)
        reply = server.query(zone.endpoint, "A")
        assert reply.rcode() == dns.rcode.NOERROR
        assert sorted(r.to_text() for rrset in reply.answer for r in rrset) == sorted(lbs[0].ipv4)
        assert server.process.output().count('"snapshot_refresh_failed"') == 1  # once, not once per refresh
    finally:
        server.stop()
