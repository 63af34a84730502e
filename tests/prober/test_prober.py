"""The prober as a real process, probing a real DNS server, across a break and a repair of Route 53."""

from __future__ import annotations

import json
import re
import secrets
import uuid

import httpx

from tests.dns.dnsproc import FAST_ROUTE53, start_dns, wait_for
from tests.dns.trees import HandZone, a_fleet
from tests.processes import ManagedProcess, free_port


def events(process: ManagedProcess, name: str) -> list[dict]:
    out = []
    for line in process.output().splitlines():
        if f'"{name}"' in line:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def alarms_of(url: str) -> list[dict]:
    return httpx.get(f"{url}/v1/alarms", timeout=2).json()["alarms"]


def test_alarms_fire_once_and_clear_once_across_a_break_and_a_repair(emulator, tmp_path) -> None:
    parent = f"p{uuid.uuid4().hex[:10]}.test"
    zone = HandZone(emulator.client("route53"), f"dynamodb.{parent}")
    ep = zone.endpoint.rstrip(".")
    v1 = zone.build_tree(1, a_fleet(2, salt=40))
    zone.flip(v1)
    v2 = zone.build_tree(2, a_fleet(3, salt=41))
    zone.flip(v2)
    dns_server = start_dns(tmp_path, "--zone", parent, "--refresh-ms", "100", "--zone-list-ms", "500", zone=zone.endpoint)
    token = secrets.token_urlsafe(16)
    port = free_port()
    prober = ManagedProcess(
        "prober",
        ["prober", "--port", str(port), "--dns", f"127.0.0.1:{dns_server.port}", "--zone", parent,
         "--route53-refresh-ms", "200"],
        {**FAST_ROUTE53, "DNSCTL_API_TOKEN": token},
        tmp_path,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        prober.wait_http(f"{url}/healthz")
        wait_for(lambda: httpx.get(f"{url}/healthz").json()["endpoints"] == 1, 15, "the prober to see the endpoint")
        wait_for(lambda: any(p["addresses"] for p in httpx.get(f"{url}/v1/probes").json()["probes"]), 15, "answers")
        assert alarms_of(url) == []

        # Break: the clean-up deletes the tree the root points at.
        zone.delete_tree(v2)
        wait_for(lambda: {a["alarm"] for a in alarms_of(url)} >= {"RootAliasDangling", "EndpointEmpty"}, 15,
                 "both alarms")
        ranked = alarms_of(url)
        assert ranked[0]["alarm"] == "RootAliasDangling" and ranked[0]["endpoint"] == ep
        assert v2 in ranked[0]["detail"] and ranked[0]["missing_tree"] == v2
        empty = next(a for a in ranked if a["alarm"] == "EndpointEmpty")
        assert empty["caused_by"] == f"RootAliasDangling:{ep}"
        body = httpx.get(f"{url}/v1/alarms").json()
        assert body["cause"]["alarm"] == "RootAliasDangling"
        metrics = httpx.get(f"{url}/metrics").text
        assert f'dnsctl_probe_answers{{endpoint="{ep}",type="A"}} 0.0' in metrics
        assert f'dnsctl_alarm_active{{alarm="RootAliasDangling",subject="{ep}"}} 1.0' in metrics
        empty_probes = re.search(rf'dnsctl_probe_empty_total{{endpoint="{re.escape(ep)}",type="A"}} ([0-9.]+)', metrics)
        assert empty_probes and float(empty_probes.group(1)) >= 1, "every empty probe is counted"
        wait_for(lambda: f'dnsctl_probe_empty_seconds_total{{endpoint="{ep}",type="A"}}' in httpx.get(f"{url}/metrics").text,
                 5, "empty seconds to be counted")
        rounds = httpx.get(f"{url}/healthz").json()["rounds"]
        wait_for(lambda: httpx.get(f"{url}/healthz").json()["rounds"] >= rounds + 5, 10, "five more probe rounds")

        # Repair: a new tree, the root flipped to it.
        zone.flip(zone.build_tree(3, a_fleet(3, salt=42)))
        wait_for(lambda: alarms_of(url) == [], 15, "every alarm to clear")
        for alarm in ("RootAliasDangling", "EndpointEmpty"):
            fired = [e for e in events(prober, "alarm_fired") if e["alarm"] == alarm]
            cleared = [e for e in events(prober, "alarm_cleared") if e["alarm"] == alarm]
            assert len(fired) == 1 and len(cleared) == 1, (alarm, fired, cleared)
            assert fired[0]["endpoint"] == ep and cleared[0]["endpoint"] == ep
        assert events(prober, "alarm_fired")[0]["alarm"] == "RootAliasDangling"  # the cause is logged first

        # A stale plan: the root goes back to plan 1's tree, no operator restore.
        zone.flip(v1)
        wait_for(lambda: [a["alarm"] for a in alarms_of(url)] == ["StalePlanApplied"], 15, "StalePlanApplied")
        assert "from 3 to 1" in alarms_of(url)[0]["detail"]
        refused = httpx.post(f"{url}/v1/alarms/stale-plan/acknowledge", json={"endpoint": ep})
        assert refused.status_code == 401
        ok = httpx.post(f"{url}/v1/alarms/stale-plan/acknowledge", json={"endpoint": ep, "by": "test"},
                        headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200, ok.text
        wait_for(lambda: alarms_of(url) == [], 10, "the acknowledged restore to clear the alarm")
        assert len(events(prober, "alarm_fired")) == 3 and len(events(prober, "alarm_cleared")) == 3
        assert token not in prober.output()
    finally:
        prober.stop()
        dns_server.stop()


def test_a_prober_that_probes_nothing_alarms_and_is_not_ready_and_refused_answers_alarm(emulator, tmp_path) -> None:
    """ProberBlind with nothing to probe; EndpointAnswerError when DNS answers REFUSED for an endpoint."""
    parent = f"p{uuid.uuid4().hex[:10]}.test"
    served_elsewhere = f"q{uuid.uuid4().hex[:10]}.test"
    zone = HandZone(emulator.client("route53"), f"dynamodb.{parent}")
    zone.flip(zone.build_tree(1, a_fleet(2, salt=42)))
    # This DNS server serves another zone only: it answers REFUSED for the prober's endpoint.
    dns_server = start_dns(tmp_path, "--zone", served_elsewhere, "--refresh-ms", "100")
    blind_port, port = free_port(), free_port()
    common = ["--dns", f"127.0.0.1:{dns_server.port}", "--route53-refresh-ms", "200"]
    blind = ManagedProcess("prober-blind", ["prober", "--port", str(blind_port), "--zone", f"nothing-{parent}", *common],
                           dict(FAST_ROUTE53), tmp_path)
    refused = ManagedProcess("prober-refused", ["prober", "--port", str(port), "--zone", parent, *common],
                             dict(FAST_ROUTE53), tmp_path)
    try:
        blind_url, url = f"http://127.0.0.1:{blind_port}", f"http://127.0.0.1:{port}"
        blind.wait_http(f"{blind_url}/healthz")
        refused.wait_http(f"{url}/healthz")
        wait_for(lambda: [a["alarm"] for a in alarms_of(blind_url)] == ["ProberBlind"], 20, "ProberBlind")
        (alarm,) = alarms_of(blind_url)
        assert "no endpoint to probe" in alarm["detail"]
        ready = httpx.get(f"{blind_url}/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["probing"]["ok"] is False
        assert events(blind, "alarm_fired")[0]["alarm"] == "ProberBlind"

        wait_for(lambda: "EndpointAnswerError" in {a["alarm"] for a in alarms_of(url)}, 20, "EndpointAnswerError")
        error = next(a for a in alarms_of(url) if a["alarm"] == "EndpointAnswerError")
        assert "REFUSED" in error["detail"] and error["endpoint"] == zone.endpoint.rstrip(".")
        assert "ProberBlind" not in {a["alarm"] for a in alarms_of(url)}  # it probes, and gets answers
    finally:
        blind.stop()
        refused.stop()
        dns_server.stop()
