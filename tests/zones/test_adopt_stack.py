"""`dnsctl zones adopt` on real processes: the emulator, a planner, an enactor and the DNS server.

A name that some other tool manages (a plain record set, or a weighted set of A and AAAA) is
adopted while a poller asks the DNS server for it over UDP without pause. The poller must never
see an empty answer nor an address the name did not have, and at the end the root is dnsctl's
alias to the first plan's tree, published through the planner and the plan store.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

import dns.rcode
import httpx
import pytest

from services.zones import ensure_zones, find_zone_id, records_at
from tests.dns.dnsproc import start_dns, wait_for
from tests.race.lab import TOKEN, run_cli, start_enactor, start_planner, wait_healthy, write_fleet


@dataclass
class Stack:
    parent: str
    planner: str
    dns: object
    client: object
    env: dict[str, str]

    def zone_with(self, label: str, records: list[dict]) -> tuple[str, str]:
        name = f"{label}.{self.parent}"
        ensure_zones([name], self.client)
        zone_id = find_zone_id(name, self.client)
        changes = [{"Action": "CREATE", "ResourceRecordSet": {"Name": name + ".", **r}} for r in records]
        self.client.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
        return name, zone_id

    def adopt(self, *args: str):
        return run_cli("zones", "adopt", *args, "--planner", self.planner, env=self.env, timeout_s=180)


@pytest.fixture(scope="module")
def stack(emulator, tmp_path_factory):
    unique = tmp_path_factory.mktemp("adopt").name.replace("_", "-").lower()
    parent = f"{unique}.adopt.example"
    tmp = tmp_path_factory.mktemp("adopt-stack")
    client = emulator.client("route53")
    base = f"base.{parent}"
    ensure_zones([base], client)
    bucket = f"adopt-{unique}"[:60]
    planner = start_planner(tmp, emulator, bucket, write_fleet(tmp / "fleet.toml", base), allow_chaos=False)
    enactor = start_enactor(tmp, emulator, bucket, "enactor-a", allow_chaos=False, guard=True)
    server = None
    try:
        wait_healthy(planner, enactor)
        server = start_dns(tmp, "--zone", parent, "--zone-list-ms", "200", env=emulator.env())
        env = {**emulator.env(), "DNSCTL_STATE_DIR": str(tmp)}
        yield Stack(parent, planner.url, server, client, env)
    finally:
        if server is not None:
            server.stop()
        enactor.process.stop()
        planner.process.stop()


@dataclass
class Poller:
    """Asks the DNS server for a name, each record type in turn, as fast as it answers."""

    dns: object
    name: str
    types: tuple[str, ...]
    answers: Counter = field(default_factory=Counter)  # (type, addresses) -> count
    empty: list = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            for rtype in self.types:
                reply = self.dns.query(self.name, rtype, timeout=2.0)
                addresses = tuple(sorted(r.to_text() for rrset in reply.answer for r in rrset if rrset.rdtype == reply.question[0].rdtype))
                if reply.rcode() != dns.rcode.NOERROR or not addresses:
                    self.empty.append((rtype, dns.rcode.to_text(reply.rcode())))
                self.answers[(rtype, addresses)] += 1

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    @property
    def total(self) -> int:
        return sum(self.answers.values())


def _served(stack: Stack, name: str, rtype: str) -> set[str]:
    return set(stack.dns.addresses(name, rtype))


def _root_is_dnsctl_tree(stack: Stack, name: str, zone_id: str, types: tuple[str, ...]) -> bool:
    roots = [r for r in records_at(name, zone_id, stack.client) if r["Type"] in types]
    return len(roots) == len(types) and all(r.get("AliasTarget", {}).get("DNSName", "").startswith("t-") for r in roots)


def _fleet(stack: Stack) -> dict:
    return httpx.get(stack.planner + "/v1/fleet", timeout=10).json()


def test_a_plain_record_set_is_adopted_without_an_empty_answer(stack):
    addresses = ["198.51.100.1", "198.51.100.2"]
    name, zone_id = stack.zone_with("plain", [{"Type": "A", "TTL": 60, "ResourceRecords": [{"Value": v} for v in addresses]}])
    wait_for(lambda: _served(stack, name, "A") == set(addresses), 30, f"the DNS server to serve {name}")

    dry = stack.adopt(name, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "dry run: nothing was changed" in dry.stdout and "adopted-plain" in dry.stdout
    assert name not in {e["name"] for e in _fleet(stack)["endpoints"]}

    with Poller(stack.dns, name, ("A",)) as poller:
        result = stack.adopt(name)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "cut over" in result.stdout
        wait_for(lambda: poller.total > 0 and _root_is_dnsctl_tree(stack, name, zone_id, ("A",)), 30, "the root alias")
        seen = poller.total
        wait_for(lambda: poller.total > seen + 20, 30, "answers after the cut-over")
    assert poller.empty == [], f"{len(poller.empty)} empty answers of {poller.total}: {poller.empty[:5]}"
    assert set(poller.answers) == {("A", tuple(addresses))}, poller.answers
    assert poller.total > 20
    fleet = _fleet(stack)
    assert name in {e["name"] for e in fleet["endpoints"]}
    (lb,) = [b for b in fleet["load_balancers"] if b["endpoint"] == name]
    assert sorted(lb["ipv4"]) == addresses
    latest = httpx.get(stack.planner + "/v1/plans/latest", timeout=10).json()
    assert name in {e["name"] for e in latest["endpoints"]}

    again = stack.adopt(name)
    assert again.returncode == 1 and "alias" in again.stdout  # dnsctl manages it now: nothing to adopt


def test_a_weighted_set_of_a_and_aaaa_is_adopted_without_an_empty_answer(stack):
    members = {"blue": (200, "198.51.100.11", "2001:db8::11"), "green": (55, "198.51.100.12", "2001:db8::12")}
    records = []
    for sid, (weight, v4, v6) in members.items():
        records.append({"Type": "A", "TTL": 30, "SetIdentifier": sid, "Weight": weight, "ResourceRecords": [{"Value": v4}]})
        records.append({"Type": "AAAA", "TTL": 30, "SetIdentifier": sid, "Weight": weight, "ResourceRecords": [{"Value": v6}]})
    name, zone_id = stack.zone_with("weighted", records)
    v4s = {m[1] for m in members.values()}
    v6s = {m[2] for m in members.values()}
    wait_for(lambda: _served(stack, name, "A") <= v4s and _served(stack, name, "AAAA") <= v6s and _served(stack, name, "A"), 30, "the weighted set")

    with Poller(stack.dns, name, ("A", "AAAA")) as poller:
        result = stack.adopt(name, "--prefix", "legacy")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "folded" in result.stdout and "cut over" in result.stdout
        wait_for(lambda: _root_is_dnsctl_tree(stack, name, zone_id, ("A", "AAAA")), 30, "the root aliases")
        seen = poller.total
        wait_for(lambda: poller.total > seen + 20, 30, "answers after the cut-over")
    assert poller.empty == [], f"{len(poller.empty)} empty answers of {poller.total}: {poller.empty[:5]}"
    for (rtype, addresses), _ in poller.answers.items():
        assert set(addresses) <= (v4s if rtype == "A" else v6s), (rtype, addresses)
    lbs = {b["id"]: b for b in _fleet(stack)["load_balancers"] if b["endpoint"] == name}
    assert {i: b["capacity"] for i, b in lbs.items()} == {"legacy-blue": 200, "legacy-green": 55}
    # The weights came back with the flip: the plan's targets keep blue:green as 200:55.
    latest = httpx.get(stack.planner + "/v1/plans/latest", timeout=10).json()
    (ep,) = [e for e in latest["endpoints"] if e["name"] == name]
    weights = {t["lb_id"]: t["weight"] for t in ep["targets"]}
    assert weights["legacy-blue"] == 255 and abs(weights["legacy-green"] - round(255 * 55 / 200)) <= 1


def test_the_planner_refuses_an_endpoint_it_has_and_a_body_without_the_token(stack):
    body = {"endpoint": {"name": f"base.{stack.parent}", "record_types": ["A"]},
            "load_balancers": [{"id": "x-1", "az": "use1-az1", "endpoint": f"base.{stack.parent}", "ipv4": ["192.0.2.1"], "capacity": 1}]}
    assert httpx.post(stack.planner + "/v1/fleet/endpoints", json=body, timeout=10).status_code == 401
    reply = httpx.post(stack.planner + "/v1/fleet/endpoints", json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert reply.status_code == 409 and reply.json()["error"] == "exists"
    bad = {**body, "endpoint": {"name": f"new.{stack.parent}", "record_types": ["AAAA"]},
           "load_balancers": [{**body["load_balancers"][0], "endpoint": f"new.{stack.parent}"}]}
    reply = httpx.post(stack.planner + "/v1/fleet/endpoints", json=bad, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert reply.status_code == 422 and "IPv6" in str(reply.json()["detail"])
    assert f"new.{stack.parent}" not in {e["name"] for e in _fleet(stack)["endpoints"]}
