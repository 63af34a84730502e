"""Cells as real processes for the cells' tests: per cell its own planner and enactors, all on one emulator.

Each cell is started exactly as `dnsctl up --cells` starts it (services/stack.py's cell_services):
`dnsctl planner --cell`, `dnsctl zones ensure`, `dnsctl enactor --cell`, with DNSCTL_CELL set; only the
ports are free ones and the bucket is the test's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from enactor import layout
from enactor.faults import Faults
from enactor.metrics import EnactorMetrics
from enactor.runner import Route53Zone
from services.cells.naming import cell_endpoint
from services.plan.store import PlanStore
from services.zones import find_zone_id
from tests.processes import ROOT, ManagedProcess, free_port

TOKEN = "cells-test-token"
REGION = "us-east-1"


@dataclass
class Cell:
    name: str
    planner: ManagedProcess
    planner_url: str
    enactors: dict[str, tuple[ManagedProcess, str]] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return cell_endpoint(self.name, REGION)

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.planner_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30.0)

    def publish(self, reason: str = "test") -> int:
        with self.http() as http:
            r = http.post("/v1/plans", json={"reason": reason})
            r.raise_for_status()
            return r.json()["version"]

    def enactor_status(self, name: str) -> dict:
        return httpx.get(self.enactors[name][1] + "/status", timeout=10).json()

    def events(self, name: str, event: str) -> list[dict]:
        out = []
        proc = self.planner if name == "planner" else self.enactors[name][0]
        for line in proc.output().splitlines():
            if line.startswith("{") and f'"event": "{event}"' in line:
                out.append(json.loads(line))
        return out


class CellLab:
    """Cells on one emulator, one bucket; `stop()` stops every process it started."""

    def __init__(self, emulator, bucket: str, tmp: Path):
        self.emulator = emulator
        self.bucket = bucket
        self.tmp = tmp
        self.client = emulator.client("route53")
        self.s3 = emulator.client("s3")
        self.cells: dict[str, Cell] = {}
        self.processes: list[ManagedProcess] = []

    def env(self, cell: str | None, **extra: str) -> dict[str, str]:
        return {
            **self.emulator.env(),
            "DNSCTL_BUCKET": self.bucket,
            "DNSCTL_REGION": REGION,
            "DNSCTL_API_TOKEN": TOKEN,
            "DNSCTL_STATE_DIR": str(self.tmp / "state"),
            "DNSCTL_ENACTOR_LOCK_TTL_S": "4",
            "DNSCTL_ENACTOR_PROPAGATION_TIMEOUT_S": "2",
            "DNSCTL_ENACTOR_BACKOFF_CAP_S": "1.0",
            "DNSCTL_ENACTOR_BACKOFF_BASE_S": "0.05",
            **({"DNSCTL_CELL": cell} if cell else {}),
            **extra,
        }

    def start_cell(self, cell: str, enactors: tuple[str, ...] = ("enactor-a",), planner_args: tuple[str, ...] = ()) -> Cell:
        port = free_port()
        planner = ManagedProcess(f"{cell}-planner", ["planner", "--cell", cell, "--port", str(port),
                                                      "--plan-interval", "3600", *planner_args], self.env(cell), self.tmp)
        self.processes.append(planner)
        url = f"http://127.0.0.1:{port}"
        planner.wait_http(url + "/readyz", timeout_s=60)
        subprocess.run([sys.executable, "-m", "cli.main", "zones", "ensure", "--planner", url], cwd=ROOT,
                       env={**os.environ, **self.env(cell)}, check=True, capture_output=True, timeout=60)
        c = Cell(cell, planner, url)
        for name, az in zip(enactors, ("use1-az1", "use1-az2", "use1-az4"), strict=False):
            eport = free_port()
            ident = f"{cell}-{name}"
            proc = ManagedProcess(ident, ["enactor", "--id", ident, "--cell", cell, "--az", az, "--port", str(eport),
                                          "--poll-interval", "0.2", "--allow-chaos"], self.env(cell), self.tmp)
            self.processes.append(proc)
            c.enactors[name] = (proc, f"http://127.0.0.1:{eport}")
        for proc, eurl in c.enactors.values():
            proc.wait_http(eurl + "/healthz", timeout_s=60)
        self.cells[cell] = c
        return c

    def store(self, cell: str | None) -> PlanStore:
        return PlanStore(self.bucket, REGION, s3=self.s3, cell=cell)

    def view(self, endpoint: str) -> layout.EndpointZone:
        zone_id = find_zone_id(endpoint, self.client)
        assert zone_id, f"no zone for {endpoint}"
        reader = Route53Zone(self.client, zone_id, layout.root_name(endpoint), EnactorMetrics(), Faults())
        return layout.read_endpoint(layout.root_name(endpoint), reader.snapshot())

    def records(self, endpoint: str) -> list[tuple]:
        """Every record set of the endpoint's zone, as comparable tuples."""
        zone_id = find_zone_id(endpoint, self.client)
        out = []
        for page in self.client.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id):
            for r in page["ResourceRecordSets"]:
                out.append(json.dumps(r, sort_keys=True, default=str))
        return sorted(out)

    def wait_applied(self, endpoint: str, version: int, timeout_s: float = 60.0) -> layout.EndpointZone:
        deadline = time.monotonic() + timeout_s
        view = None
        while time.monotonic() < deadline:
            view = self.view(endpoint)
            if view.active_version == version and not view.dangling:
                return view
            time.sleep(0.2)
        logs = "\n".join(p.output()[-2000:] for p in self.processes)
        raise AssertionError(f"{endpoint} did not reach plan {version} (at {view and view.active_version})\n{logs}")

    def keys(self) -> list[str]:
        return [o["Key"] for p in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
                for o in p.get("Contents", [])]

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
