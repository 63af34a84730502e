"""The console's Route 53 reader against the emulator process: every call it makes, counted by the
emulator itself (by the app id in the User-Agent), stays within one per endpoint per second, and
the snapshot still follows a change within a round; a zone bigger than one page costs one call
while its first page (root, _applied, _lock) is unchanged and is read whole when it changes."""

from __future__ import annotations

import time

import boto3
import httpx
from botocore.config import Config

from services.console.snapshot import BudgetedRefresher
from services.emulator.server import METRICS_PATH


def _client(emulator, app_id: str):
    return boto3.client("route53", endpoint_url=emulator.url, region_name="us-east-1",
                        config=Config(user_agent_appid=app_id, retries={"max_attempts": 1}))


def _emulator_calls(emulator, app_id: str) -> dict[str, float]:
    """The emulator's own count of Route 53 requests from `app_id`, by operation."""
    out: dict[str, float] = {}
    for line in httpx.get(emulator.url + METRICS_PATH, timeout=10).text.splitlines():
        if line.startswith("dnsctl_emulator_route53_requests_total{") and f'caller="{app_id}"' in line:
            operation = line.split('operation="', 1)[1].split('"', 1)[0]
            out[operation] = out.get(operation, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def _zone(r53, name: str, extra: int = 0) -> str:
    zone_id = r53.create_hosted_zone(Name=name, CallerReference=f"{name}-{time.time()}")["HostedZone"]["Id"].split("/")[-1]
    changes = [_upsert(f"_lock.{name}", "TXT", '"holder=a expires=1 counter=1"'), _upsert(name, "A", "192.0.2.1")]
    changes += [_upsert(f"h{i:04d}.{name}", "A", f"198.51.100.{i % 250 + 1}") for i in range(extra)]
    for i in range(0, len(changes), 400):  # an UPSERT counts twice against a batch's 1,000 records
        r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes[i : i + 400]})
    return zone_id


def _upsert(name: str, rtype: str, value: str) -> dict:
    return {"Action": "UPSERT", "ResourceRecordSet": {"Name": name, "Type": rtype, "TTL": 60, "ResourceRecords": [{"Value": value}]}}


def _values(snapshot, zone: str, name: str, rtype: str) -> tuple[str, ...]:
    records = snapshot.zones[zone + "."].rrsets.get(name + ".", {}).get(rtype, ())
    return records[0].values if records else ()


def test_every_call_of_the_console_stays_within_one_per_endpoint_per_second_and_changes_show_in_a_round(emulator, unique):
    r53 = emulator.client("route53")
    zones = [f"ep{i}.budget-{unique}.test" for i in range(3)]
    ids = [_zone(r53, z) for z in zones]
    app_id = f"budget-{unique}"
    refresher = BudgetedRefresher(lambda: _client(emulator, app_id), only=(f"budget-{unique}.test",))
    rounds: list[float] = []
    refresher.add_listener(lambda snap: rounds.append(time.monotonic()))
    started = time.monotonic()
    refresher.start()
    try:
        while not rounds and time.monotonic() - started < 10:
            time.sleep(0.05)
        assert rounds, "no round in 10 s"
        assert set(refresher.current.zones) == {z + "." for z in zones}
        # A change (an enactor's flip would do the same) is in the snapshot within about a round.
        r53.change_resource_record_sets(HostedZoneId=ids[1], ChangeBatch={"Changes": [_upsert(zones[1], "A", "192.0.2.99")]})
        changed = time.monotonic()
        while _values(refresher.current, zones[1], zones[1], "A") != ("192.0.2.99",):
            assert time.monotonic() - changed < 10, "the change did not show in 10 s"
            time.sleep(0.02)
        time.sleep(max(0.0, 6 - (time.monotonic() - started)))
    finally:
        refresher.stop()
    elapsed = time.monotonic() - started
    calls = _emulator_calls(emulator, app_id)
    total = sum(calls.values())
    # Within the budget (one round may be counted ahead of its share), and everything was paid for.
    assert total <= 0.95 * 3 * elapsed + 4, (calls, elapsed)
    assert total == refresher.calls, (calls, refresher.calls)
    assert calls.get("ListHostedZones") == 1 and calls["ListResourceRecordSets"] == total - 1
    assert len(rounds) >= 3


def test_a_zone_bigger_than_a_page_costs_one_call_while_its_first_page_is_unchanged(emulator, unique):
    r53 = emulator.client("route53")
    zone = f"big-{unique}.test"
    zone_id = _zone(r53, zone, extra=700)  # 704 record sets (SOA and NS too): three pages of 300
    app_id = f"big-{unique}"
    client = _client(emulator, app_id)
    refresher = BudgetedRefresher(lambda: client, only=(zone,), full_read_every_s=3600)
    client.meta.events.register("before-send.route-53", refresher._count)

    def round_calls() -> float:
        before = sum(_emulator_calls(emulator, app_id).values())
        refresher.refresh_once(client)
        return sum(_emulator_calls(emulator, app_id).values()) - before

    assert round_calls() == 1 + 3  # the listing, then the whole zone
    assert len(refresher.current.zones[zone + "."].zone) == 704
    first = refresher.current.zones[zone + "."]
    assert round_calls() == 1
    assert refresher.current.zones[zone + "."] is first
    # A batch deep in the zone that also rewrites the lock, as every enactor batch does: read whole.
    r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        _upsert(f"_lock.{zone}", "TXT", '"holder=b expires=2 counter=2"'), _upsert(f"h0699.{zone}", "A", "203.0.113.7")]})
    assert round_calls() == 3  # the first page again (the check), then the two others
    assert _values(refresher.current, zone, f"h0699.{zone}", "A") == ("203.0.113.7",)
    assert _values(refresher.current, zone, f"_lock.{zone}", "TXT") == ('"holder=b expires=2 counter=2"',)
    assert round_calls() == 1
    assert refresher.calls == sum(_emulator_calls(emulator, app_id).values())


def test_a_change_past_the_first_page_alone_shows_at_the_next_whole_read(emulator, unique):
    r53 = emulator.client("route53")
    zone = f"deep-{unique}.test"
    zone_id = _zone(r53, zone, extra=400)
    now = [0.0]
    client = _client(emulator, f"deep-{unique}")
    refresher = BudgetedRefresher(lambda: client, only=(zone,), full_read_every_s=30, clock=lambda: now[0])
    refresher.refresh_once(client)
    r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [_upsert(f"h0399.{zone}", "A", "203.0.113.9")]})
    now[0] = 10.0
    refresher.refresh_once(client)
    assert _values(refresher.current, zone, f"h0399.{zone}", "A") != ("203.0.113.9",)  # no lock change: not read
    now[0] = 31.0
    refresher.refresh_once(client)
    assert _values(refresher.current, zone, f"h0399.{zone}", "A") == ("203.0.113.9",)


def test_a_zone_that_goes_away_is_dropped_and_the_zones_are_listed_again(emulator, unique):
    r53 = emulator.client("route53")
    zones = [f"a.gone-{unique}.test", f"b.gone-{unique}.test"]
    ids = [_zone(r53, z) for z in zones]
    app_id = f"gone-{unique}"
    client = _client(emulator, app_id)
    refresher = BudgetedRefresher(lambda: client, only=(f"gone-{unique}.test",))
    refresher.refresh_once(client)
    assert len(refresher.current.zones) == 2
    r53.change_resource_record_sets(HostedZoneId=ids[0], ChangeBatch={"Changes": [
        {**_upsert(n, t, v), "Action": "DELETE"} for n, t, v in ((f"_lock.{zones[0]}", "TXT", '"holder=a expires=1 counter=1"'),
                                                                 (zones[0], "A", "192.0.2.1"))]})
    r53.delete_hosted_zone(Id=ids[0])
    refresher.refresh_once(client)
    assert set(refresher.current.zones) == {zones[1] + "."}
    before = _emulator_calls(emulator, app_id).get("ListHostedZones", 0)
    refresher.refresh_once(client)
    assert _emulator_calls(emulator, app_id).get("ListHostedZones", 0) == before + 1  # listed again, once
    assert set(refresher.current.zones) == {zones[1] + "."}
