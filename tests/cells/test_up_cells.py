"""`dnsctl up --cells 1 --accounts 4` as a user runs it, then the cell race: the cell up with its
own enactors beside the regional system, account names resolve through the resolver to their
cell (or the legacy name), the prober reports per cell, `dnsctl status` groups by cell, and
`dnsctl race --cell cell-2 --cells 2 --guard off` breaks only cell 2's accounts. Both start
twenty-odd processes: on a loaded machine they take minutes, hence their timeouts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rdatatype
import httpx
import pytest

from tests.processes import ROOT, free_port, free_port_udp_tcp
from tests.stack.test_up import _env, _stop_stack


def _wait(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (httpx.HTTPError, ValueError, KeyError, OSError, dns.exception.DNSException) as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def _addresses(port: int, name: str) -> list[str]:
    reply = dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=2)
    return sorted(r.to_text() for rrset in reply.answer if rrset.rdtype == dns.rdatatype.A for r in rrset)


@pytest.mark.timeout(900)
def test_up_with_cells_and_accounts(tmp_path: Path):
    state_dir = tmp_path / "state"
    ports = {name: free_port() for name in ("emulator", "planner", "a", "b", "c", "prober", "console")}
    dns_port = free_port_udp_tcp()
    args = [sys.executable, "-m", "cli.main", "up", "--emulator-port", str(ports["emulator"]), "--planner-port", str(ports["planner"]),
            "--enactor-ports", f"{ports['a']},{ports['b']},{ports['c']}", "--dns-port", str(dns_port),
            "--prober-port", str(ports["prober"]), "--console-port", str(ports["console"]), "--plan-interval", "3",
            "--state-dir", str(state_dir), "--duration", "400", "--cells", "1", "--accounts", "4",
            "--cell-port-base", "0"]
    # The live view on: without a terminal `up` prints it every 10 s (into a file: a pipe nobody
    # reads would fill and stop it).
    out = tmp_path / "up.out"
    proc = subprocess.Popen(args, cwd=ROOT, env=_env(), stdout=out.open("w"), stderr=subprocess.STDOUT, text=True)
    try:
        stack_file = state_dir / "stack.json"
        expected = {"console", "resolver", "cellmap-planner", *(f"cellmap-enactor-{x}" for x in "abc"),
                    *(f"cell-1-{p}" for p in ("planner", "enactor-a", "enactor-b", "enactor-c"))}
        services = _wait(lambda: (s := json.loads(stack_file.read_text())["services"]) and expected <= set(s) and s,
                         300, "every service up (each cell its own planner and enactor trio)")
        resolver, auth = services["resolver"]["port"], services["dns"]["port"]
        # Ask the resolver only once the authoritative side answers: an earlier empty answer would be
        # cached for the SOA's negative TTL (900 s), which is the October lesson, not this test's.
        for name in ("cell-1.ddb.us-east-1.api.aws", "dynamodb.us-east-1.api.aws"):
            _wait(lambda n=name: _addresses(auth, n), 240, f"{name} served")
        _wait(lambda: dns.query.udp(dns.message.make_query("100000000002.ddb.us-east-1.api.aws", "A"), "127.0.0.1", port=auth,
                                    timeout=2).answer, 120, "the cell map applied")
        # Seed with one cell: 100000000001 in cell-1, 100000000002 not moved (legacy), and so on.
        got = _addresses(resolver, "100000000001.ddb.us-east-1.api.aws")
        assert got and all(a.startswith("10.128.4.") for a in got), got  # cell-1's own block (planner/cells.py)
        got = _addresses(resolver, "100000000002.ddb.us-east-1.api.aws")
        assert got and all(a.startswith("198.51.100.") for a in got), got  # the legacy regional name's LBs
        prober = f"http://127.0.0.1:{ports['prober']}"
        per_cell = _wait(lambda: (p := httpx.get(prober + "/v1/accounts", timeout=5).json()["per_cell"])
                         and p.get("cell-1", {}).get("answering") == 2 and p.get("legacy", {}).get("answering") == 2 and p,
                         120, "the prober's accounts per cell")
        assert all(c["lost"] == 0 for c in per_cell.values()), per_cell
        # A second shell with no AWS settings of its own: every command finds the stack's emulator.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {"DNSCTL_STATE_DIR": str(state_dir)}

        seen: list = []

        def report(*flags: str) -> dict | None:
            run = subprocess.run([sys.executable, "-m", "cli.main", "status", "--json", *flags], cwd=ROOT, env=env, capture_output=True,
                                 text=True, timeout=180)
            got = json.loads(run.stdout)  # Route 53 read whole and the cell map answered (a busy machine is slow)
            seen[:] = [got.get("via"), got.get("route53_error"), [r["endpoint"] for r in got["endpoints"]], got.get("cells"),
                       got.get("legacy_accounts")]
            cells = {c["cell"]: c for c in got.get("cells") or []}
            # Both groups of accounts answering: a view through the console may be up to
            # CONSOLE_MAX_AGE_S old, so older than what this test saw a moment ago (in one CI run the
            # console's accounts were read before the regional endpoint's first flip, the prober's after).
            ok = not got["route53_error"] and (cells.get("cell-1", {}).get("accounts") or {}).get("answering") == 2
            ok = ok and (got.get("legacy_accounts") or {}).get("answering") == 2
            # ... and the services a busy machine answers slowly did answer this time.
            ok = ok and (got.get("cellmap") or {}).get("reachable") and all(e["reachable"] for e in got["enactors"])
            # Through the console unless --direct; a console view older than CONSOLE_MAX_AGE_S (a
            # loaded machine) is read directly instead: asked again, not taken for the console's.
            return got if ok and len(got["endpoints"]) == 5 and (got["via"] is None) == ("--direct" in flags) else None

        # Through the stack's console (its grouped view as it is: services/prober/cell_groups.py), and
        # read directly, grouped by the same producer: one shape.
        for flags in ((), ("--direct",)):
            try:
                got = _wait(lambda f=flags: report(*f), 240, f"a whole status report {flags}")
            except AssertionError as exc:
                raise AssertionError(f"{exc}: {seen}") from None
            assert [c["cell"] for c in got["cells"]] == ["cell-1"] and got["legacy_accounts"]["answering"] == 2, (
                flags, got["cells"], got["legacy_accounts"], got.get("accounts_at"), got.get("accounts_error"))
            assert got["cellmap"]["reachable"] and got["cellmap"]["newest_version"] >= 1
            cells_of = {r["endpoint"]: r.get("cell") for r in got["endpoints"]}
            assert cells_of["ddb.us-east-1.api.aws"] == "cellmap"
            assert cells_of["cell-1.ddb.us-east-1.api.aws"] == "cell-1" and cells_of["dynamodb.us-east-1.api.aws"] is None
            assert any(e["enactor"] == "cell-1-enactor-c" and e["reachable"] and e["cell"] == "cell-1" for e in got["enactors"])
            assert {e["enactor"] for e in got["enactors"] if e["cell"] == "cellmap"} == {f"cellmap-enactor-{x}" for x in "abc"}

        def table() -> str | None:
            text = subprocess.run([sys.executable, "-m", "cli.main", "status"], cwd=ROOT, env={**env, "COLUMNS": "200"},
                                  capture_output=True, text=True, timeout=120).stdout
            seen[:] = [text]
            return text if "via the console" in text else None

        text = _wait(table, 120, "the status tables through the console")
        assert "endpoints of regional, 2 legacy accounts" in text and "endpoints of cell-1, 2 accounts" in text, text
        # `dnsctl up`'s own live view groups the same way (cli/stack_view.py, the same producer).
        _wait(lambda: "endpoints of cell-1, 2 accounts" in (live := out.read_text()) and "cell-1-enactor-c" in live, 60,
              "the live view grouped by cell")
    finally:
        _stop_stack(proc, state_dir)


@pytest.mark.timeout(900)
def test_a_race_in_cell_2_breaks_only_cell_2s_accounts(tmp_path: Path):
    env = {**_env(), "DNSCTL_STATE_DIR": str(tmp_path / "race")}
    run = subprocess.run([sys.executable, "-m", "cli.main", "race", "--cell", "cell-2", "--cells", "2", "--accounts", "6",
                          "--guard", "off", "--json", "--state-dir", str(tmp_path / "race")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = json.loads(run.stdout)
    assert out["cell"] == "cell-2" and out["broken"]
    assert out["blast_radius"]["per_cell"] == {"cell-1": {"lost": 0, "kept": 2}, "cell-2": {"lost": 2, "kept": 0},
                                               "legacy": {"lost": 0, "kept": 2}}
    assert any(c["label"].startswith("only cell-2") and c["ok"] for c in out["checks"])
