"""The cell map as real processes: its planner, two of its enactors, the authoritative DNS server
and `dnsctl cells move` against them; moves show the diff first, land on the fast lane, and a map
over Route 53's limits is refused with the field named."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import dns.rdatatype
import httpx
import pytest

from enactor import layout
from tests.cells.cellstack import TOKEN
from tests.dns.dnsproc import start_dns, wait_for
from tests.processes import ROOT, ManagedProcess, free_port

ZONE = "ddb.us-east-1.api.aws"


@pytest.fixture(scope="module")
def stack(cell_emulator, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cellmap")
    env = {**cell_emulator.env(), "DNSCTL_BUCKET": f"cellmap-{uuid.uuid4().hex[:8]}", "DNSCTL_API_TOKEN": TOKEN,
           "DNSCTL_STATE_DIR": str(tmp / "state")}
    subprocess.run([sys.executable, "-m", "cli.main", "zones", "ensure", "--endpoint", ZONE], cwd=ROOT,
                   env={**os.environ, **env}, check=True, capture_output=True, timeout=60)
    procs = []
    try:
        port = free_port()
        planner = ManagedProcess("cellmap-planner", ["cells", "planner", "--port", str(port), "--cells", "2", "--accounts", "6",
                                                     "--ttl", "5"], env, tmp)
        procs.append(planner)
        url = f"http://127.0.0.1:{port}"
        planner.wait_http(url + "/readyz", timeout_s=60)
        enactor_urls = []
        for name in ("cellmap-enactor-a", "cellmap-enactor-b"):
            eport = free_port()
            enactor_urls.append(f"http://127.0.0.1:{eport}")
            procs.append(ManagedProcess(name, ["cells", "enactor", "--id", name, "--port", str(eport), "--poll-interval", "0.2"],
                                        {**env, "DNSCTL_ENACTOR_LOCK_TTL_S": "4", "DNSCTL_ENACTOR_PROPAGATION_TIMEOUT_S": "2"}, tmp))
            procs[-1].wait_http(f"http://127.0.0.1:{eport}/healthz", timeout_s=60)
        auth = start_dns(tmp, "--refresh-ms", "100", zone=ZONE, name="auth", env=cell_emulator.env())
        yield {"url": url, "env": env, "auth": auth, "procs": procs, "client": cell_emulator.client("route53"), "enactors": enactor_urls}
        auth.stop()
    finally:
        for p in reversed(procs):
            p.stop()


def _cname(stack, account: str) -> str | None:
    reply = stack["auth"].query(f"{account}.{ZONE}", "A")
    found = [r for r in reply.answer if r.rdtype == dns.rdatatype.CNAME]
    return found[0][0].target.to_text().rstrip(".") if found else None


def _cli(stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", "cells", *args, "--url", stack["url"]], cwd=ROOT,
                          env={**os.environ, **stack["env"]}, capture_output=True, text=True, timeout=60)


def _newest(stack) -> int:
    return httpx.get(stack["url"] + "/v1/cellmap/status", timeout=10).json()["newest_version"]


def test_the_seeded_map_is_applied_as_one_cname_per_account(stack):
    wait_for(lambda: _cname(stack, "100000000001") == "cell-1.ddb.us-east-1.api.aws", 30, "seeded map applied")
    assert _cname(stack, "100000000002") == "cell-2.ddb.us-east-1.api.aws"
    assert _cname(stack, "100000000003") == "dynamodb.us-east-1.api.aws"  # not moved yet: the legacy name
    status = httpx.get(stack["url"] + "/v1/cellmap/status", timeout=10).json()
    assert status["accounts_per_cell"] == {"cell-1": 2, "cell-2": 2, "legacy": 2}
    assert status["limits"]["max_accounts"] == 9_996


def test_a_move_shows_the_diff_first_then_lands_on_the_fast_lane(stack):
    wait_for(lambda: _cname(stack, "100000000003") == "dynamodb.us-east-1.api.aws", 30, "seeded map applied")
    before = _newest(stack)
    preview = _cli(stack, "move", "100000000003", "cell-2")
    assert preview.returncode == 0, preview.stderr
    assert "100000000003: legacy -> cell-2" in preview.stdout and "nothing published" in preview.stdout
    assert _newest(stack) == before
    # --yes publishes, then waits (a spinner on stderr) until an enactor lists the new map as applied.
    watch = [a for url in stack["enactors"] for a in ("--enactor", url)]
    done = _cli(stack, "move", "100000000003", "cell-2", "--yes", "--reason", "test move", *watch)
    assert done.returncode == 0 and f"v{before + 1}" in done.stdout, done.stdout + done.stderr
    assert f"applied cell map v{before + 1} to the accounts' zone" in done.stdout, done.stdout + done.stderr
    wait_for(lambda: _cname(stack, "100000000003") == "cell-2.ddb.us-east-1.api.aws", 30, "move applied")
    records = stack["client"].list_resource_record_sets(HostedZoneId=_zone_id(stack), StartRecordName=f"_applied.{ZONE}",
                                                        StartRecordType="TXT", MaxItems="1")["ResourceRecordSets"]
    assert layout.AppliedValue.parse(" ".join(v["Value"] for v in records[0]["ResourceRecords"])).version == before + 1
    again = _cli(stack, "move", "100000000003", "cell-2", "--yes")
    assert "already there" in again.stdout and _newest(stack) == before + 1


def test_a_move_no_enactor_applies_says_so_and_exits_1(stack):
    """Watching an enactor that is not there: the map is published, the wait ends at --wait, in words."""
    before = _newest(stack)
    was = _cell_of(stack, "100000000004")
    gone = f"http://127.0.0.1:{free_port()}"
    run = _cli(stack, "move", "100000000004", "cell-2" if was != "cell-2" else "legacy", "--yes", "--wait", "2", "--enactor", gone)
    assert run.returncode == 1 and f"v{before + 1}" in run.stdout, run.stdout + run.stderr
    assert f"cell map v{before + 1} is published but not applied after 2 s" in run.stderr and "unreachable" in run.stderr, run.stderr
    assert _newest(stack) == before + 1
    back = _cli(stack, "move", "100000000004", was, "--yes", "--wait", "0")  # where it was; no wait asked for
    assert back.returncode == 0 and "applied" not in back.stdout, back.stdout + back.stderr


def _cell_of(stack, account: str) -> str:
    cellmap = httpx.get(stack["url"] + "/v1/cellmap", timeout=10).json()
    return next(a["cell"] or "legacy" for a in cellmap["accounts"] if a["account"] == account)


def _zone_id(stack) -> str:
    from services.zones import find_zone_id

    return find_zone_id(ZONE, stack["client"])


def test_a_map_over_the_zone_limit_or_into_an_unknown_cell_is_refused_naming_the_field(stack):
    before = _newest(stack)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    too_big = {"cells": ["cell-1"], "accounts": [{"account": f"{i:012d}", "cell": "cell-1"} for i in range(9_997)]}
    r = httpx.put(stack["url"] + "/v1/cellmap", json=too_big, headers=headers, timeout=30)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "accounts"], r.text[:300]
    assert "9996" in r.json()["detail"][0]["msg"]
    bad = _cli(stack, "move", "100000000001", "cell-7")
    assert bad.returncode == 1 and "cell:" in bad.stderr and "cell-7" in bad.stderr, bad.stderr
    assert httpx.post(stack["url"] + "/v1/cellmap/moves", json={"account": "100000000001", "cell": "cell-2"},
                      timeout=10).status_code == 401  # the token is required
    assert _newest(stack) == before
