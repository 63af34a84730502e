"""`dnsctl resolve` and `dnsctl status` as real subprocesses against the emulator and a DNS server."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.dns.conftest import WEIGHTS, Served
from tests.dns.dnsproc import wait_for
from tests.dns.trees import HandZone, a_fleet
from tests.processes import ROOT, free_port


def dnsctl(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env={**__import__("os").environ, "COLUMNS": "200"},
    )


def test_resolve_shows_root_tree_plan_and_lbs_from_route53(served: Served) -> None:
    zone = served.stable
    tree = zone.active
    out = dnsctl("resolve", zone.endpoint.rstrip("."), "--json", "--dns", f"127.0.0.1:{served.dns.port}")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["answer"]["rcode"] == "NOERROR" and len(report["answer"]["addresses"]) == 2
    ep = report["endpoint"]
    assert [r["tree_id"] for r in ep["root"]] == [tree, tree] and ep["dangling"] == []
    active = ep["active_tree"]
    assert active["plan_version"] == 1 and active["complete"]
    lbs = {lb["lb_id"]: lb for lb in active["load_balancers"]}
    assert {k: v["weight"] for k, v in lbs.items()} == {lb.lb_id: lb.weight for lb in served.lbs}
    for lb in served.lbs:
        assert abs(lbs[lb.lb_id]["share"] - lb.weight / sum(WEIGHTS)) < 1e-6
    assert report["data_plane"]["rcode"] == "NOERROR" and len(report["data_plane"]["addresses"]) == 2
    text = dnsctl("resolve", zone.endpoint, "--type", "AAAA")
    assert text.returncode == 0, text.stderr
    assert f"root AAAA alias -> {tree}" in text.stdout and f"tree {tree} -> plan 1" in text.stdout
    assert all(lb.lb_id in text.stdout for lb in served.lbs) and served.lbs[0].ipv6[0] in text.stdout


def test_resolve_shows_a_dangling_root_naming_the_missing_tree(emulator, served: Served) -> None:
    zone = HandZone(emulator.client("route53"), f"resolve-dangle.{served.parent}")
    v110 = zone.build_tree(110, a_fleet(2, salt=50))
    zone.flip(v110)
    v145 = zone.build_tree(145, a_fleet(2, salt=51))
    zone.flip(v145)
    zone.delete_tree(v145)
    out = dnsctl("resolve", zone.endpoint)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "0 addresses" in out.stdout and "DANGLES" in out.stdout
    assert f"root A alias -> {v145} MISSING" in out.stdout
    assert f"rollback -> {v110} (plan 110)" in out.stdout
    report = json.loads(dnsctl("resolve", zone.endpoint, "--json").stdout)
    assert report["endpoint"]["dangling"] == [f"{v145}.{zone.endpoint}"] * 2
    assert report["answer"]["authority"][0]["type"] == "SOA"


def test_resolve_of_a_name_in_no_zone_is_a_clear_error() -> None:
    out = dnsctl("resolve", "nothing-here.invalid")
    assert out.returncode == 1 and "no public hosted zone" in out.stderr and "Traceback" not in out.stderr


def test_status_json_has_every_endpoint_and_says_what_is_unreachable(served: Served) -> None:
    dead = free_port()
    wait_for(lambda: served.dns.addresses(served.stable.endpoint), 10, "stable endpoint served")
    out = dnsctl(
        "status", "--json", "--zone", served.parent, "--dns", f"127.0.0.1:{served.dns.port}",
        "--planner", f"http://127.0.0.1:{dead}", "--enactor", f"http://127.0.0.1:{dead}",
        "--prober", f"http://127.0.0.1:{dead}",
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    rows = {r["endpoint"]: r for r in report["endpoints"]}
    stable = rows[served.stable.endpoint.rstrip(".")]
    assert stable["active_version"] == 1 and stable["tree"] == served.stable.active
    assert stable["addresses"] == {"A": 2, "AAAA": 2}
    assert report["planner"]["reachable"] is False and report["enactors"][0]["reachable"] is False
    assert report["alarms"] is None and "not reachable" in report["prober_error"]
    table = dnsctl("status", "--zone", served.parent, "--dns", f"127.0.0.1:{served.dns.port}",
                   "--planner", f"http://127.0.0.1:{dead}", "--enactor", f"http://127.0.0.1:{dead}",
                   "--prober", f"http://127.0.0.1:{dead}")
    assert table.returncode == 0 and "planner unreachable" in table.stdout and "unreachable" in table.stdout
    assert "plan 1" in table.stdout and "A 2 / AAAA 2" in table.stdout
