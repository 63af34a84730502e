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

from tests.processes import ROOT, free_port, free_port_udp_tcp


def _up_args(state_dir: Path, ports: dict[str, int], duration: float) -> list[str]:
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
        _up_args(state_dir, ports, duration=40), cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        stack_file = state_dir / "stack.json"
        deadline = time.monotonic() + 180  # eight services start one after another; a busy machine is slow
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


def test_a_port_in_use_is_a_clear_error_and_starts_nothing(tmp_path: Path):
    ports = _ports()
    state_dir = tmp_path / "state"
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports["planner"]))
        squatter.listen()
        run = subprocess.run(_up_args(state_dir, ports, duration=5), cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    text = " ".join(run.stdout.split())
    assert "port in use" in text and f"planner needs 127.0.0.1:{ports['planner']}" in text
    assert not (state_dir / "stack.json").exists()
