"""`dnsctl repair` heals a stack the legacy race broke, with every enactor (and the planner) stopped.

`dnsctl race --guard off --keep-stack` breaks a private stack of real processes the October way
and keeps it running; the test stops every enactor and the planner, checks that DNS still answers
nothing, repairs each endpoint with the CLI (a real process talking to the emulator; it breaks
the lock a stuck enactor left behind when it must), and checks that DNS answers again and Route 53
holds an intact tree behind every root and rollback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import dns.message
import dns.query
import dns.rdatatype
import httpx

from enactor import layout
from services.dns.snapshot import read_zone
from services.zones import find_zone_id
from tests.processes import ROOT
from tests.race.lab import TOKEN, run_cli


def addresses(server: str, name: str, rtype: str) -> int:
    host, port = server.rsplit(":", 1)
    reply = dns.query.udp(dns.message.make_query(name + ".", rtype), host, port=int(port), timeout=2)
    return sum(len(r) for r in reply.answer if r.rdtype == dns.rdatatype.from_text(rtype))


def read_verdict(proc: subprocess.Popen, timeout_s: float) -> dict:
    """The JSON the race prints before it holds the stack (it keeps running afterwards)."""
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"the race ended without a verdict (exit {proc.poll()})")
        text += line
        if line.rstrip() == "}":
            return json.loads(text)
    raise AssertionError("no verdict in time")


def down(url: str) -> bool:
    try:
        httpx.get(url + "/healthz", timeout=1)
    except httpx.HTTPError:
        return True
    return False


def test_repair_heals_a_broken_legacy_stack_with_all_enactors_stopped(tmp_path):
    cmd = [sys.executable, "-m", "cli.main", "race", "--guard", "off", "--json", "--keep-stack", "--state-dir", str(tmp_path / "stack")]
    err = open(tmp_path / "race.err", "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True,
                            env={**os.environ, "DNSCTL_API_TOKEN": TOKEN})
    try:
        out = read_verdict(proc, 240)
        assert out["broken"] and out["passed"], json.dumps(out, indent=1)
        stack = out["stack"]
        env = {"AWS_ENDPOINT_URL": stack["emulator"], "DNSCTL_STATE_DIR": str(tmp_path / "repair")}
        endpoints = [(e["name"], e["record_types"]) for e in httpx.get(stack["planner"] + "/v1/fleet", timeout=10).json()["endpoints"]]

        # Nothing of the automation may help: every enactor and the planner stop.
        for name in ("enactor-a", "enactor-b", "enactor-c", "planner"):
            os.killpg(stack["pids"][name], signal.SIGTERM)
        for url in [*stack["enactors"].values(), stack["planner"]]:
            deadline = time.monotonic() + 20
            while not down(url) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert down(url), url

        import boto3

        route53 = boto3.client("route53", endpoint_url=stack["emulator"], region_name="us-east-1")
        broken = [name for name, types in endpoints if any(addresses(stack["dns"], name, t) == 0 for t in types)]
        assert broken, "the race left every endpoint answering"

        for name in broken:
            result = run_cli("repair", name, "--json", env=env)
            if result.returncode == 3:
                # A stuck legacy enactor took the lock for its last unit (build, then a flip that
                # failed): the lock stays its own until it expires, as on 20 October.
                assert "the lock is held by enactor-" in result.stderr
                result = run_cli("repair", name, "--json", "--break-lock", "--yes", env=env)
            assert result.returncode == 0, result.stdout + result.stderr
            report = json.loads(result.stdout)
            assert report["ok"] is True and report["rebuild"] is False
            assert report["breaks_lock"] == (report["lock"] == "held")
            zone_id = find_zone_id(name, route53)
            view = layout.read_endpoint(name, read_zone(route53, zone_id, layout.root_name(name))[0])
            assert not view.dangling and view.active_version == report["plan_version"]
            assert all(view.tree(t).complete for t in view.rollback_targets().values())

        deadline = time.monotonic() + 10  # the DNS server reads Route 53 every 250 ms
        while time.monotonic() < deadline and any(addresses(stack["dns"], n, t) == 0 for n, ts in endpoints for t in ts):
            time.sleep(0.2)
        assert all(addresses(stack["dns"], n, t) > 0 for n, ts in endpoints for t in ts)
        assert all(down(url) for url in stack["enactors"].values())  # healed with the enactors still down
        assert '"event": "repair_done"' in (tmp_path / "repair" / "logs" / "repair.log").read_text()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # the race stops its private stack
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        err.close()
