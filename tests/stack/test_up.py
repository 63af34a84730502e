"""`dnsctl up` as a user runs it: every service comes up, plans flow to Route 53, and stopping
leaves no process behind; a port in use is a clear error that starts nothing."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.processes import ROOT, free_port, free_port_udp_tcp
from tests.stack.shells import bare_env


def _up_args(state_dir: Path, ports: dict[str, int], duration: float, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "cli.main", "up",
        "--emulator-port", str(ports["emulator"]),
        "--planner-port", str(ports["planner"]),
        "--enactor-ports", ",".join(str(ports[f"enactor-{x}"]) for x in "abc"),
        "--dns-port", str(ports["dns"]),
        "--prober-port", str(ports["prober"]),
        "--console-port", str(ports["console"]),
        "--plan-interval", "2",
        "--state-dir", str(state_dir),
        "--duration", str(duration),
        "--no-live",
        *extra,
    ]  # fmt: skip


def _ports() -> dict[str, int]:
    ports = {name: free_port() for name in ("emulator", "planner", "enactor-a", "enactor-b", "enactor-c", "prober", "console")}
    ports["dns"] = free_port_udp_tcp()
    return ports


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop_stack(proc: subprocess.Popen, state_dir: Path) -> None:
    """Even when an assertion failed: ask `dnsctl up` to stop, and stop its children by process
    group if it cannot (each child runs in its own group, so killing `up` alone would orphan them)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    stack_file = state_dir / "stack.json"
    if stack_file.exists():
        for svc in json.loads(stack_file.read_text())["services"].values():
            try:
                os.killpg(svc["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass


def _env() -> dict[str, str]:
    # The stack brings its own emulator; nothing from the test session's settings leaks in.
    return {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "DNSCTL_API_TOKEN", "DNSCTL_BUCKET")}


def test_up_runs_the_whole_stack_and_stops_every_child(tmp_path: Path):
    ports = _ports()
    state_dir = tmp_path / "state"
    proc = subprocess.Popen(
        _up_args(state_dir, ports, 150, "--lbs", "30"), cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        stack_file = state_dir / "stack.json"
        deadline = time.monotonic() + 240  # services start one after another: about 15 s each on a loaded machine
        applied: dict = {}
        while time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                status = httpx.get(f"http://127.0.0.1:{ports['enactor-a']}/status", timeout=2).json()
                newest = httpx.get(f"http://127.0.0.1:{ports['planner']}/v1/planner/status", timeout=2).json()["newest_version"]
            except (httpx.HTTPError, ValueError, KeyError):
                continue
            applied = {name: ep.get("applied_version") for name, ep in status["endpoints"].items()}
            started = json.loads(stack_file.read_text())["services"] if stack_file.exists() else {}
            if len(applied) == 3 and newest and all(applied.values()) and "console" in started:
                break
        assert len(applied) == 3 and all(applied.values()), f"no plan was applied on every endpoint: {applied}"
        pids = [svc["pid"] for svc in json.loads(stack_file.read_text())["services"].values()]
        assert len(pids) == 8  # emulator, planner, three enactors, dns, prober, console (zones is a one-shot)
        assert (state_dir / "token").stat().st_mode & 0o777 == 0o600
        for key in ("plan-signing.key", "plan-signing.pub"):
            assert (state_dir / key).stat().st_mode & 0o777 == 0o600
        fleet = httpx.get(f"http://127.0.0.1:{ports['planner']}/v1/fleet", timeout=5).json()
        assert len(fleet["load_balancers"]) == 30, "--lbs reaches the planner"
        _second_shell_finds_the_stack(tmp_path, state_dir, ports)
        pids += _kill_9_emulator_and_an_enactor_and_see_them_restarted(state_dir, ports)
        proc.send_signal(signal.SIGINT)  # what Ctrl-C does
        out, _ = proc.communicate(timeout=60)
    finally:
        _stop_stack(proc, state_dir)
    assert proc.returncode == 0, out
    for name in ("emulator", "planner", "enactor-a", "enactor-b", "enactor-c", "dns", "prober", "console"):
        assert f"up {name}" in " ".join(out.split()) or f"up {name}" in out, out
        assert f"stopped {name}" in out, out
    assert "zones_ready endpoints=3" in out
    time.sleep(0.5)
    assert not [pid for pid in pids if _alive(pid)], "children outlived dnsctl up"
    assert not stack_file.exists()
    # Every plan was signed by the planner with the state dir's key and verified by every enactor with its pair.
    keys = {name: _started_key(state_dir, name) for name in ("planner", "enactor-a", "enactor-b", "enactor-c")}
    assert len(set(keys.values())) == 1 and None not in keys.values() and "unsigned" not in keys.values(), keys


@pytest.mark.parametrize("how", ["ctrl-c, output gone", "terminal closed"])
def test_stopping_stops_every_child_when_the_terminal_is_gone(tmp_path: Path, how: str):
    """`make demo | tee log`: one Ctrl-C stops tee too, so `up` says "stopped ..." into a closed
    pipe, and must still stop every child. Closing the terminal sends SIGHUP, which used to kill
    `up` outright and orphan every child. (Unbuffered, as a terminal sees each line at once.)"""
    ports = _ports()
    state_dir = tmp_path / "state"
    proc = subprocess.Popen(_up_args(state_dir, ports, 300), cwd=ROOT, env={**_env(), "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        stack_file = state_dir / "stack.json"
        deadline = time.monotonic() + 240
        services: dict = {}
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            try:
                services = json.loads(stack_file.read_text())["services"]
            except (OSError, ValueError, KeyError):
                continue
            if "console" in services:
                break
        assert "console" in services, f"the stack did not come up: {sorted(services)}"
        pids = [svc["pid"] for svc in services.values()]
        assert proc.stdout is not None
        proc.stdout.close()  # the reader (tee, the terminal) is gone
        proc.send_signal(signal.SIGINT if how.startswith("ctrl-c") else signal.SIGHUP)
        proc.wait(timeout=90)
        time.sleep(0.5)
        assert not [pid for pid in pids if _alive(pid)], "children outlived dnsctl up"
    finally:
        _stop_stack(proc, state_dir)


def _started_key(state_dir: Path, name: str) -> str | None:
    (log,) = state_dir.glob(f"logs/*/{name}.log")  # one run: logs/<run id>/<service>.log
    for line in log.read_text().splitlines():
        if '"event": "planner_started"' in line or '"event": "enactor_started"' in line:
            return json.loads(line).get("plan_key")
    return None


def test_a_bad_fleet_file_is_a_clear_error_and_starts_nothing(tmp_path: Path):
    state_dir = tmp_path / "state"
    bad = tmp_path / "fleet.yaml"
    bad.write_text("region: us-east-1\nazs: [use1-az1]\nendpoints: [{name: x.example.com, record_types: [A]}]\n"
                   "load_balancers: [{id: lb-, az: use1-az1, endpoint: x.example.com, ipv4: [192.0.2.1], capacity: 1}]\n")
    run = subprocess.run(_up_args(state_dir, _ports(), 5, "--fleet-file", str(bad)), cwd=ROOT, env=_env(),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stdout + run.stderr
    text = " ".join(run.stdout.split())
    assert "load_balancers.0.id" in text and "DNS label" in text
    assert not (state_dir / "stack.json").exists()


def _second_shell_finds_the_stack(tmp_path: Path, state_dir: Path, ports: dict[str, int]) -> None:
    """Another shell, elsewhere, with no AWS settings at all: every command finds the stack from its state dir."""
    described = json.loads((state_dir / "stack.json").read_text())
    run_id = described["run_id"]
    assert described["mode"] == "guarded" and described["log_dir"] == str(state_dir / "logs" / run_id)
    assert described["aws_env"]["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{ports['emulator']}"
    assert all(Path(svc["log"]).parent == state_dir / "logs" / run_id for svc in described["services"].values())
    shell = tmp_path / "elsewhere"
    shell.mkdir()
    env = bare_env(shell)

    def run(*args: str, columns: int = 200) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "cli.main", "--state-dir", str(state_dir), *args], cwd=shell,
                              env={**env, "COLUMNS": str(columns), "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=90)

    status = run("status", "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["route53_error"] is None and report["planner"]["reachable"] and report["warnings"] == []
    assert len(report["endpoints"]) == 3 and all(e["reachable"] for e in report["enactors"])
    assert report["dns"] == f"127.0.0.1:{ports['dns']}" and report["stack"]["run_id"] == run_id
    assert all(r["lag"] is None or r["lag"] >= 0 for r in report["endpoints"])
    view = run("status", columns=80)  # the compact layout: 80x24
    assert view.returncode == 0, view.stderr
    lines = view.stdout.rstrip("\n").splitlines()
    assert len(lines) <= 24 and max(len(line) for line in lines) <= 80, view.stdout
    assert sum("enactor-" in line for line in lines) >= 3 and "DNS A" in view.stdout
    exports = run("env")
    assert f"export AWS_ENDPOINT_URL=http://127.0.0.1:{ports['emulator']}" in exports.stdout
    repair = run("repair", "--all", "--dry-run")
    assert repair.returncode == 0 and repair.stdout.count("healthy") == 3, repair.stdout + repair.stderr
    timeline = run("timeline", "--stack", "--json")
    assert timeline.returncode == 0, timeline.stderr
    assert {Path(f["path"]).parent.name for f in json.loads(timeline.stdout)["files"]} == {run_id}


def _records(emulator_port: int) -> dict[str, set[tuple[str, str]]]:
    import boto3

    r53 = boto3.client("route53", endpoint_url=f"http://127.0.0.1:{emulator_port}", region_name="us-east-1",
                       aws_access_key_id="dnsctl-local", aws_secret_access_key="dnsctl-local")
    out = {}
    for zone in r53.list_hosted_zones_by_name()["HostedZones"]:
        zone_id = zone["Id"].rsplit("/", 1)[-1]
        names = set()
        for page in r53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id):
            names |= {(r["Name"], r["Type"]) for r in page["ResourceRecordSets"] if not r["Name"].startswith("_lock.")}
        out[zone_id] = names
    return out


def _kill_9_emulator_and_an_enactor_and_see_them_restarted(state_dir: Path, ports: dict[str, int]) -> list[int]:
    """`dnsctl up` restarts what crashes (service_restarted); the emulator comes back with every record."""
    services = json.loads((state_dir / "stack.json").read_text())["services"]
    # Freeze first, so what Route 53 holds before the kill is all there is to find after it.
    token = (state_dir / "token").read_text().strip()
    planner = f"http://127.0.0.1:{ports['planner']}"
    assert httpx.post(f"{planner}/v1/planner/freeze", json={"reason": "kill -9 test"},
                      headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200
    time.sleep(3)  # enactors see the freeze within a poll
    before = _records(ports["emulator"])
    assert before and all(len(names) > 5 for names in before.values()), before
    for name in ("emulator", "enactor-b"):
        os.killpg(services[name]["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 60
    now: dict = services
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = json.loads((state_dir / "stack.json").read_text())["services"]
        if all(now[n]["restarts"] >= 1 and now[n]["pid"] != services[n]["pid"] for n in ("emulator", "enactor-b")):
            break
    assert now["emulator"]["restarts"] >= 1 and now["enactor-b"]["restarts"] >= 1, now
    while True:  # the restarted emulator replays its journal before it listens
        try:
            httpx.get(f"http://127.0.0.1:{ports['emulator']}/moto-api/", timeout=5)
            break
        except httpx.HTTPError:
            assert time.monotonic() < deadline + 60, "the restarted emulator never listened"
            time.sleep(0.5)
    after = _records(ports["emulator"])
    assert after.keys() == before.keys()
    for zone_id, names in before.items():
        assert names <= after[zone_id], f"records lost in {zone_id}: {sorted(names - after[zone_id])[:5]}"
    (supervisor_log,) = state_dir.glob("logs/*/supervisor.log")  # this run's folder: logs/<run id>/
    events = [json.loads(line) for line in supervisor_log.read_text().splitlines()]
    restarted = {e["service"] for e in events if e["event"] == "service_restarted"}
    assert {"emulator", "enactor-b"} <= restarted
    httpx.post(f"{planner}/v1/planner/thaw", json={}, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    return [now["emulator"]["pid"], now["enactor-b"]["pid"]]


def test_a_port_in_use_is_a_clear_error_and_starts_nothing(tmp_path: Path):
    ports = _ports()
    state_dir = tmp_path / "state"
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports["planner"]))
        squatter.listen()
        run = subprocess.run(_up_args(state_dir, ports, duration=5), cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    text = " ".join(run.stdout.split())
    assert "port in use" in text and f"planner needs 127.0.0.1:{ports['planner']}, held by pid {os.getpid()}" in text
    assert not (state_dir / "stack.json").exists()
