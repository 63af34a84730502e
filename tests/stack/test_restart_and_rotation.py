"""The supervisor's restart backoff on a real child that keeps dying, size-rotated logs, and the
events sent to stdout as well for docker compose."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.logs import LOG_FILE_ENV, LOG_STDOUT_ENV, RotatingStream
from services.stack import ServiceSpec
from services.supervisor import RestartPolicy, Supervisor
from tests.processes import ROOT


def test_backoff_doubles_and_is_capped():
    policy = RestartPolicy(initial_s=1.0, max_s=8.0)
    assert [policy.delay(n) for n in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_a_crashing_service_is_restarted_and_counted(tmp_path: Path):
    sup = Supervisor(host="127.0.0.1", state_dir=tmp_path, base_env={}, restart_policy=RestartPolicy(0.2, 1.0, 60))
    # A "service" that exits at once: `dnsctl` with an unknown option fails with code 2.
    spec = ServiceSpec("crasher", ("emulator", "--no-such-option"), 0, None)
    process, log_path = sup._spawn(spec)
    from services.supervisor import Child

    child = Child(spec, process, log_path)
    sup.children.append(child)
    restarted_at = []
    deadline = time.monotonic() + 40
    while len(restarted_at) < 3 and time.monotonic() < deadline:
        if sup.restart_crashed():
            restarted_at.append(time.monotonic())
        time.sleep(0.05)
    try:
        assert child.restarts == 3 and child.last_exit == 2
        stack = json.loads((tmp_path / "stack.json").read_text())
        assert stack["services"]["crasher"]["restarts"] == 3
        assert "No such option" in child.out_path.read_text()
    finally:
        sup.stop_all()


def test_rotating_stream_rolls_over_by_size(tmp_path: Path):
    path = tmp_path / "svc.log"
    stream = RotatingStream(str(path), max_bytes=1000, backups=2)
    for i in range(100):
        stream.write(json.dumps({"event": "tick", "n": i}) + "\n")
    stream.flush()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["svc.log", "svc.log.1", "svc.log.2"]
    assert all(p.stat().st_size <= 1000 for p in tmp_path.iterdir())
    last = [json.loads(line) for line in path.read_text().splitlines()]
    assert last[-1]["n"] == 99  # the newest events are in the live file, whole lines only


TEE_WRITER = """
from services.logs import configure, get_logger
configure(process="enactor-a")
log = get_logger(enactor="enactor-a", endpoint="e.example")
for version in range(1, 6):
    log.info("plan_seen", plan_version=version, api_token="not-for-logs")
"""


@pytest.mark.parametrize("tee", [True, False])
def test_events_go_to_stdout_too_only_when_asked(tmp_path: Path, tee: bool):
    """DNSCTL_LOG_STDOUT=1 (docker compose sets it) sends every event to the rotated file and to
    stdout, the same lines; without it stdout stays empty (`dnsctl up`'s children)."""
    path = tmp_path / "enactor-a.log"
    env = {k: v for k, v in os.environ.items() if k != LOG_STDOUT_ENV} | {LOG_FILE_ENV: str(path)}
    if tee:
        env[LOG_STDOUT_ENV] = "1"
    run = subprocess.run([sys.executable, "-c", TEE_WRITER], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True)
    in_file = path.read_text().splitlines()
    assert [json.loads(line)["plan_version"] for line in in_file] == [1, 2, 3, 4, 5]
    assert all(json.loads(line)["api_token"] == "[redacted]" for line in in_file)
    assert run.stdout.splitlines() == (in_file if tee else [])


def test_stop_all_stops_every_child_when_reporting_a_stop_fails(tmp_path: Path):
    """`make demo | tee log`, Ctrl-C: tee is gone, so printing "stopped emulator" raises (rich
    turns the broken pipe into SystemExit). The children after it must be stopped all the same."""
    import subprocess

    import pytest

    from services.supervisor import Child

    sup = Supervisor(host="127.0.0.1", state_dir=tmp_path, base_env={})
    for name in ("one", "two", "three"):
        process = subprocess.Popen(["sleep", "120"], start_new_session=True)  # its own group, as _spawn does
        sup.children.append(Child(ServiceSpec(name, ("sleep",), 0, None), process, tmp_path / f"{name}.log"))
    processes = [c.process for c in sup.children]
    reported = []

    def on_stop(name: str) -> None:
        reported.append(name)
        raise SystemExit(1)

    try:
        with pytest.raises(SystemExit):
            sup.stop_all(timeout_s=5, on_stop=on_stop)
        assert [p.poll() for p in processes] == [-15, -15, -15]
        assert reported == ["three"]  # the first report failed; the stops went on without reports
    finally:
        for p in processes:
            p.kill()
            p.wait()


FOREIGN = """
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
pid = int(sys.argv[2])
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/healthz":
            self.send_response(404); self.end_headers(); return
        body = json.dumps({"status": "ok", "pid": pid}).encode()
        self.send_response(200); self.send_header("content-type", "application/json"); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def test_a_health_reply_from_another_process_on_the_childs_port_is_not_the_child(tmp_path: Path):
    """Another program took the port between the free-port pick and the child's bind: its
    /healthz answers with its own pid (or 404), so the child is not taken for healthy (the race
    then talked to whatever held the port: "prober: Not Found")."""
    import socket
    import subprocess
    import sys
    import time

    from services.supervisor import Child, free_port

    def wait_port(port: int) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.05)
        raise AssertionError(f"nothing listens on {port}")

    port = free_port("127.0.0.1")
    child = subprocess.Popen(["sleep", "120"], start_new_session=True)
    servers = []
    try:
        sup = Supervisor(host="127.0.0.1", state_dir=tmp_path, base_env={})
        me = Child(ServiceSpec("prober", ("prober",), port, "/healthz"), child, tmp_path / "prober.log")
        for pid, healthy in ((child.pid + 1_000_000, False), (child.pid, True)):
            server = subprocess.Popen([sys.executable, "-c", FOREIGN, str(port), str(pid)])
            servers.append(server)
            wait_port(port)
            assert sup.is_healthy(me) is healthy
            server.kill()
            server.wait()
        other = Child(ServiceSpec("prober", ("prober",), port, "/nothing-here"), child, tmp_path / "prober.log")
        server = subprocess.Popen([sys.executable, "-c", FOREIGN, str(port), str(child.pid)])
        servers.append(server)
        wait_port(port)
        assert not sup.is_healthy(other)  # 404: no such health route
    finally:
        for p in (child, *servers):
            p.kill()
            p.wait()
