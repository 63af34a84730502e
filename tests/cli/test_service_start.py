"""cli/service_start.py through the real service commands: bad settings exit 2 and start nothing;
a port in use exits 1 and names the process holding it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from tests.processes import ROOT


def dnsctl(*args: str, tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DNSCTL_STATE_DIR": str(tmp_path), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_bad_settings_and_a_held_port_are_one_clear_line_each(tmp_path) -> None:
    bad = dnsctl("planner", "--port", "1", "--plan-interval", "-1", tmp_path=tmp_path)
    assert bad.returncode == 2 and "bad planner settings: plan_interval: Input should be greater than 0" in bad.stderr
    assert "Traceback" not in bad.stderr
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        taken = dnsctl("enactor", "--port", str(port), tmp_path=tmp_path)
    assert taken.returncode == 1, taken.stderr
    assert f"port {port} on 127.0.0.1 is in use by pid {os.getpid()}" in taken.stderr and "pass --port" in taken.stderr
