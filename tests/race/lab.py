"""Helpers for the race lab's tests: the `dnsctl` CLI as a subprocess, and planner and enactor
processes on free ports against the session emulator, with a fleet of unique endpoint names
(so tests sharing the emulator never touch each other's zones)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.processes import ROOT, ManagedProcess, free_port

TOKEN = "race-lab-test-token"
REGION = "us-east-1"
AZS = ("use1-az1", "use1-az2", "use1-az4")


def run_cli(*args: str, env: dict[str, str] | None = None, timeout_s: float = 120, stdin: str | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "DNSCTL_API_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT, env=full, capture_output=True, text=True, timeout=timeout_s, input=stdin,
    )


def write_fleet(path: Path, endpoint: str, lbs: int = 3) -> Path:
    """A one-endpoint fleet (A records), one load balancer per AZ and more, in the planner's TOML."""
    lines = [f'region = "{REGION}"', f"azs = {list(AZS)!r}".replace("'", '"'), "", "[[endpoints]]", f'name = "{endpoint}"', 'record_types = ["A"]']
    for i in range(lbs):
        lines += ["", "[[load_balancers]]", f'id = "lb-{i}"', f'az = "{AZS[i % 3]}"', f'endpoint = "{endpoint}"',
                  f'ipv4 = ["192.0.2.{10 + i}"]', f"capacity = {1000 + 100 * i}"]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Service:
    name: str
    port: int
    process: ManagedProcess

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def http(self, token: str | None = TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0)


def _env(emulator, bucket: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**emulator.env(), "DNSCTL_BUCKET": bucket, "DNSCTL_REGION": REGION, "DNSCTL_API_TOKEN": TOKEN, **(extra or {})}


def start_planner(log_dir: Path, emulator, bucket: str, fleet: Path, *, allow_chaos: bool) -> Service:
    port = free_port()
    args = ["planner", "--port", str(port), "--plan-interval", "3600", "--fleet-file", str(fleet)]
    if allow_chaos:
        args.append("--allow-chaos")
    name = f"planner-{port}"
    return Service(name, port, ManagedProcess(name, args, _env(emulator, bucket), log_dir))


def start_enactor(log_dir: Path, emulator, bucket: str, enactor_id: str, *, allow_chaos: bool, guard: bool = True) -> Service:
    port = free_port()
    args = ["enactor", "--id", enactor_id, "--port", str(port), "--poll-interval", "0.2",
            "--version-guard" if guard else "--no-version-guard"]
    if allow_chaos:
        args.append("--allow-chaos")
    extra = {"DNSCTL_ENACTOR_BACKOFF_CAP_S": "1.0", "DNSCTL_ROUTE53_RPS": "100"}
    return Service(enactor_id, port, ManagedProcess(f"{enactor_id}-{port}", args, _env(emulator, bucket, extra), log_dir))


def wait_healthy(*services: Service, timeout_s: float = 60) -> None:
    for s in services:
        s.process.wait_http(s.url + "/healthz", timeout_s=timeout_s)
