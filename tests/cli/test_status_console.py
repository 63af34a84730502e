"""`dnsctl status` through the stack's console: a real emulator, DNS server and console process, a stack
description naming them (as `dnsctl up` writes it), and the CLI in a second shell with no AWS
settings. The console's view is the same report `status --direct` reads itself, botocore and
dnspython are not imported on that path, and a console that is gone falls back to direct reads.
Each test runs twice: on a stack of the regional system alone, and on one with a cell and the
cell map (their zones in Route 53, their planners and enactors described and named to the
console), whose view both paths group by cell in one shape (services/prober/cell_groups.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cli.status_cmd import CONSOLE_MAX_AGE_S
from enactor.layout import LockValue, lock_name
from tests.conftest import Emulator, start_emulator
from tests.processes import ROOT, ManagedProcess, free_port, free_port_udp_tcp

ENDPOINTS = ("status-a.example.test", "status-b.example.test")
# With cells: a cell's endpoint and the accounts' zone beside the regional endpoints; the cell's and
# the cell map's planner and an enactor of each, on ports nothing listens on (read as unreachable).
CELL_ENDPOINTS = ("cell-1.ddb.us-east-1.api.aws", "ddb.us-east-1.api.aws")
CELL_SERVICES = ("cell-1-planner", "cell-1-enactor-a", "cellmap-planner", "cellmap-enactor-a")


class ConsoleStack:
    def __init__(self, state_dir: Path, emulator: Emulator, console: ManagedProcess, console_url: str, endpoints: tuple[str, ...]):
        self.state_dir = state_dir
        self.emulator = emulator
        self.console = console
        self.console_url = console_url
        self.endpoints = tuple(sorted(endpoints))

    def status(self, *args: str, python_flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DNSCTL_"))}
        env.update(DNSCTL_STATE_DIR=str(self.state_dir), HOME=str(self.state_dir), COLUMNS="200", PYTHONPATH=str(ROOT))
        return subprocess.run([sys.executable, *python_flags, "-m", "cli.main", "status", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module", params=["regional", "cells"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    with_cells = request.param == "cells"
    endpoints = ENDPOINTS + (CELL_ENDPOINTS if with_cells else ())
    emulator = start_emulator(tmp_path_factory)
    state_dir = tmp_path_factory.mktemp("status-console")
    closed = {name: free_port() for name in ("planner", "prober", "enactor-a", "enactor-b", "enactor-c", *(CELL_SERVICES if with_cells else ()))}
    dns_port, console_port = free_port_udp_tcp(), free_port()
    aws = {"AWS_ENDPOINT_URL": emulator.url, "AWS_ACCESS_KEY_ID": "dnsctl-local", "AWS_SECRET_ACCESS_KEY": "dnsctl-local",
           "AWS_DEFAULT_REGION": "us-east-1"}
    console = dns = None
    try:
        r53 = emulator.client("route53")
        for name in endpoints:  # endpoint zones as an enactor leaves them: a lock record (released)
            zone_id = r53.create_hosted_zone(Name=name, CallerReference=f"{name}-{time.time()}")["HostedZone"]["Id"]
            lock = LockValue(holder="enactor-a", expires=int(time.time()) - 1, counter=3).render()
            r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": {
                "Name": lock_name(name), "Type": "TXT", "TTL": 1, "ResourceRecords": [{"Value": lock}]}}]})
        services = {name: {"port": port, "protocol": "tcp"} for name, port in closed.items()}
        services |= {"emulator": {"port": emulator.port, "protocol": "tcp"}, "dns": {"port": dns_port, "protocol": "udp+tcp"},
                     "console": {"port": console_port, "protocol": "tcp"}}
        (state_dir / "stack.json").write_text(json.dumps({
            "run_id": "status-console", "mode": "guarded", "host": "127.0.0.1", "supervisor_pid": os.getpid(),
            "services": services, "aws_env": aws}))
        peers = ["--planner", f"http://127.0.0.1:{closed['planner']}", "--prober", f"http://127.0.0.1:{closed['prober']}",
                 "--dns", f"127.0.0.1:{dns_port}"]
        for name in ("enactor-a", "enactor-b", "enactor-c"):
            peers += ["--enactor", f"http://127.0.0.1:{closed[name]}"]
        if with_cells:  # as services/stack.py starts the console of `dnsctl up --cells 1 --accounts N`
            peers += ["--enactor", f"cell-1-enactor-a=http://127.0.0.1:{closed['cell-1-enactor-a']}",
                      "--enactor", f"cellmap-enactor-a=http://127.0.0.1:{closed['cellmap-enactor-a']}",
                      "--cell-planner", f"cell-1=http://127.0.0.1:{closed['cell-1-planner']}",
                      "--cellmap-planner", f"http://127.0.0.1:{closed['cellmap-planner']}"]
        # A real data plane: the console's DNS readings take a moment, as they do in `dnsctl up`.
        dns = ManagedProcess("dns", ["dns", "--port", str(dns_port)], aws, state_dir)
        console = ManagedProcess("console", ["console", "--port", str(console_port), *peers],
                                 {**aws, "DNSCTL_STATE_DIR": str(state_dir)}, state_dir)
        url = f"http://127.0.0.1:{console_port}"
        console.wait_http(url + "/healthz", timeout_s=60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # a view with both zones read and their DNS answers taken
            state = httpx.get(url + "/api/state", timeout=5).json()
            if (state and state.get("route53_error") is None and len(state["endpoints"]) == len(endpoints)
                    and all(None not in row["addresses"].values() for row in state["endpoints"])
                    and ("cells" in state) == with_cells):
                break
            time.sleep(0.3)
        yield ConsoleStack(state_dir, emulator, console, url, endpoints)
    finally:
        for proc in (console, dns):
            if proc is not None:
                proc.stop()
        emulator.process.stop()


def _comparable(report: dict) -> dict:
    """What both paths must agree on (times and error texts aside)."""
    return {
        "endpoints": [{k: r[k] for k in ("endpoint", "active_version", "tree", "dangling", "rollback_tree", "lock_holder",
                                         "applied_version", "lag", "addresses")} for r in report["endpoints"]],
        "enactors": [(e["enactor"], e["url"], e["reachable"]) for e in report["enactors"]],
        "planner": (report["planner"]["url"], report["planner"]["reachable"]),
        "route53_error": report["route53_error"], "warnings": report["warnings"], "stack": report["stack"],
        "dns": report["dns"],
        # The grouping by cell (absent without cells), error texts aside.
        "cell_of": [(r["endpoint"], r.get("cell", "absent")) for r in report["endpoints"]] + [(e["enactor"], e.get("cell", "absent"))
                                                                                            for e in report["enactors"]],
        "cells": [(c["cell"], c["planner"] and (c["planner"]["url"], c["planner"]["reachable"]), c["accounts"])
                  for c in report.get("cells", [])] if "cells" in report else "absent",
        "cellmap": report["cellmap"] and (report["cellmap"]["url"], report["cellmap"]["reachable"]) if "cells" in report else "absent",
        "legacy_accounts": report.get("legacy_accounts", "absent"),
    }


def test_status_reads_the_consoles_view_and_it_is_the_direct_view(stack: ConsoleStack):
    via = stack.status("--json")
    assert via.returncode == 0, via.stderr
    report = json.loads(via.stdout)
    assert report["via"]["console"] == stack.console_url and report["via"]["route53_age_s"] <= CONSOLE_MAX_AGE_S
    assert [r["endpoint"] for r in report["endpoints"]] == list(stack.endpoints)
    direct = stack.status("--json", "--direct")
    assert direct.returncode == 0, direct.stderr
    mine = json.loads(direct.stdout)
    assert mine["via"] is None
    assert _comparable(report) == _comparable(mine)
    table = stack.status()
    assert table.returncode == 0 and f"via the console at {stack.console_url}" in table.stdout, table.stdout + table.stderr
    assert "status-a.example.test" in table.stdout
    if "cells" in report:  # one table per management system, from the console's grouping
        assert [c["cell"] for c in report["cells"]] == ["cell-1"] and report["cellmap"]["reachable"] is False
        cell_of = {r["endpoint"]: r["cell"] for r in report["endpoints"]}
        assert cell_of == {**dict.fromkeys(ENDPOINTS), "cell-1.ddb.us-east-1.api.aws": "cell-1", "ddb.us-east-1.api.aws": "cellmap"}
        assert [e["enactor"] for e in report["enactors"] if e["cell"]] == ["cell-1-enactor-a", "cellmap-enactor-a"]
        assert "endpoints of regional" in table.stdout and "endpoints of the cell map (account names)" in table.stdout
        assert "endpoints of cell-1  (planner unreachable)" in table.stdout


def test_the_console_path_imports_neither_botocore_nor_dnspython(stack: ConsoleStack):
    run = stack.status("--json", python_flags=("-X", "importtime"))
    assert run.returncode == 0 and json.loads(run.stdout)["via"], run.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}
    assert "httpx" in imported  # the import log is the one the benchmark reads
    assert not {m for m in imported if m.split(".")[0] in ("botocore", "boto3", "dns")}
    direct = stack.status("--json", "--direct", python_flags=("-X", "importtime"))
    assert "botocore.session" in direct.stderr and "dns.message" in direct.stderr


def test_flags_that_name_other_sources_read_directly(stack: ConsoleStack):
    run = stack.status("--json", "--zone", ENDPOINTS[0])
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["via"] is None and [r["endpoint"] for r in report["endpoints"]] == [ENDPOINTS[0]]


def test_a_console_that_is_gone_falls_back_to_direct_reads(stack: ConsoleStack):
    stack.console.stop()
    run = stack.status("--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["via"] is None and report["route53_error"] is None
    assert [r["endpoint"] for r in report["endpoints"]] == list(stack.endpoints)
