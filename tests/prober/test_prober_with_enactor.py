"""The prober beside a real legacy enactor: after the clean-up deletes the active tree, every flip
fails and the enactor is stuck, yet the alarm ranked first names the cause (the dangling root),
and the effects say what caused them. An operator's repair of Route 53 clears every alarm once."""

from __future__ import annotations

import json
import uuid

import httpx

from enactor import layout
from services.plan.store import PlanStore
from services.route53.records import AliasTarget, Change, ChangeBatch, RecordSet
from services.zones import ensure_zones, find_zone_id
from tests.dns.dnsproc import FAST_ROUTE53, start_dns, wait_for
from tests.enactor.world import endpoint_plan, make_plan
from tests.processes import ManagedProcess, free_port

REGION = "us-east-1"


def endpoint_zone(client, zone_id: str, ep: str) -> layout.EndpointZone:
    from services.dns.snapshot import read_zone

    return layout.read_endpoint(ep, read_zone(client, zone_id, ep)[0])


def alarm_events(process: ManagedProcess) -> list[dict]:
    return [json.loads(line) for line in process.output().splitlines() if '"alarm_fired"' in line or '"alarm_cleared"' in line]


def test_stuck_legacy_enactor_is_ranked_below_the_dangling_root_and_all_clear_after_repair(emulator, tmp_path) -> None:
    unique = uuid.uuid4().hex[:8]
    ep = layout.root_name(f"stuck-{unique}.dnsctl-test.example")
    client = emulator.client("route53")
    ensure_zones([ep], client)
    zone_id = find_zone_id(ep, client)
    store = PlanStore(f"plans-{unique}", REGION, s3=emulator.client("s3"))
    store.ensure_bucket()

    def plan(version: int):
        return make_plan(version, [endpoint_plan(ep, 3, weight=lambda i, v=version: 1 + (i * 7 + v) % 200)])

    env = {
        **emulator.env(), **FAST_ROUTE53, "DNSCTL_BUCKET": store.bucket, "DNSCTL_REGION": REGION,
        "DNSCTL_ENACTOR_LOCK_TTL_S": "4", "DNSCTL_ENACTOR_PROPAGATION_TIMEOUT_S": "2",
        "DNSCTL_ENACTOR_BACKOFF_CAP_S": "0.5", "DNSCTL_ENACTOR_BACKOFF_BASE_S": "0.05",
    }
    enactor_port = free_port()
    enactor = ManagedProcess(
        "enactor", ["enactor", "--id", "enactor-a", "--az", "use1-az1", "--port", str(enactor_port),
                    "--poll-interval", "0.2", "--no-version-guard"], env, tmp_path,
    )
    processes: list = [enactor]
    try:
        enactor.wait_http(f"http://127.0.0.1:{enactor_port}/healthz", timeout_s=30)
        store.put(plan(1))
        wait_for(lambda: endpoint_zone(client, zone_id, ep).active_version == 1, 30, "plan 1 applied")
        store.put(plan(2))
        wait_for(lambda: endpoint_zone(client, zone_id, ep).active_version == 2, 30, "plan 2 applied")
        dns_server = start_dns(tmp_path, "--zone", ep, "--refresh-ms", "100", zone=ep)
        processes.append(dns_server)
        # The data plane answers with the applied plan: one of its load balancers' addresses each time.
        targets = {t.ipv4 for t in plan(2).endpoints[0].targets if t.weight > 0}
        seen = {tuple(dns_server.addresses(ep)) for _ in range(50)}
        assert seen <= targets and len(seen) > 1, (seen, targets)
        assert dns_server.query(ep, "AAAA").answer == []  # an IPv4-only plan: NOERROR, no AAAA
        port = free_port()
        prober = ManagedProcess(
            "prober", ["prober", "--port", str(port), "--dns", f"127.0.0.1:{dns_server.port}", "--zone", ep,
                       "--route53-refresh-ms", "200", "--enactor", f"http://127.0.0.1:{enactor_port}"],
            FAST_ROUTE53, tmp_path,
        )
        processes.append(prober)
        url = f"http://127.0.0.1:{port}"
        prober.wait_http(f"{url}/healthz")
        wait_for(lambda: httpx.get(f"{url}/healthz").json()["endpoints"] == 1, 15, "the prober to see the endpoint")

        # The clean-up deletes the active tree (what the race did); then a new plan arrives.
        view = endpoint_zone(client, zone_id, ep)
        active, rollback = view.active_tree, view.rollback_targets()["A"]
        client.change_resource_record_sets(
            HostedZoneId=zone_id, ChangeBatch=ChangeBatch(tuple(Change("DELETE", r) for r in active.records)).to_boto()
        )
        store.put(plan(3))
        wanted = {"RootAliasDangling", "EnactorStuck", "EndpointEmpty"}
        wait_for(lambda: {a["alarm"] for a in httpx.get(f"{url}/v1/alarms").json()["alarms"]} >= wanted, 40,
                 "the dangling root, the stuck enactor and the empty endpoint")
        ranked = httpx.get(f"{url}/v1/alarms").json()["alarms"]
        assert ranked[0]["alarm"] == "RootAliasDangling" and ranked[0]["missing_tree"] == active.tree_id
        cause = f"RootAliasDangling:{ep.rstrip('.')}"
        stuck = next(a for a in ranked if a["alarm"] == "EnactorStuck")
        assert stuck["enactor"] == "enactor-a" and stuck["caused_by"] == cause and stuck["flip_failures"] >= 3
        assert next(a for a in ranked if a["alarm"] == "EndpointEmpty")["caused_by"] == cause

        # The operator repairs Route 53 by hand: the root back at the rollback tree, which exists.
        client.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch=ChangeBatch((
            Change("UPSERT", RecordSet(ep, "A", alias=AliasTarget(layout.tree_name(ep, rollback), zone_id))),
        )).to_boto())
        wait_for(lambda: endpoint_zone(client, zone_id, ep).active_version == 3, 40, "the enactor to apply plan 3")
        wait_for(lambda: httpx.get(f"{url}/v1/alarms").json()["alarms"] == [], 30, "every alarm to clear")
        events = alarm_events(prober)
        for alarm in wanted:
            fired = [e for e in events if e["alarm"] == alarm and e["event"] == "alarm_fired"]
            cleared = [e for e in events if e["alarm"] == alarm and e["event"] == "alarm_cleared"]
            assert len(fired) == 1 and len(cleared) == 1, (alarm, events)
        assert events[0]["alarm"] == "RootAliasDangling"
    finally:
        for p in reversed(processes):
            p.stop()
