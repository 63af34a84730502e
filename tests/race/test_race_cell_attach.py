"""`dnsctl race --attach --cell cell-2` against a running `dnsctl up --cells 2 --accounts 6`: the race
drives cell 2's own planner and enactors on the stack someone else runs, and only cell 2's
accounts lose DNS. Twenty-odd real processes: minutes on a loaded machine, hence the timeout."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import pytest

from lab.race.stack import RACE_ENACTOR_ENV, RACE_ROUTE53_ENV
from tests.processes import ROOT
from tests.stack.test_up import _env, _ports, _stop_stack, _up_args

CELL_2 = ("cell-2-planner", "cell-2-enactor-a", "cell-2-enactor-b", "cell-2-enactor-c")


def _answers(port: int, name: str) -> int:
    reply = dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=2)
    return sum(len(r) for r in reply.answer)


def _wait(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            if last := predicate():
                return last
        except (OSError, ValueError, KeyError, dns.exception.DNSException) as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@pytest.mark.timeout(1200)
def test_a_race_attached_to_cell_2_of_a_running_stack_breaks_only_cell_2(tmp_path: Path):
    state_dir = tmp_path / "state"
    ports = _ports()
    dns_port = ports["dns"]
    # No scheduled plans (the later --plan-interval wins over the helper's), legacy enactors, two cells.
    args = _up_args(state_dir, ports, 1100, "--plan-interval", "3600", "--no-version-guard", "--cells", "2", "--accounts", "6",
                    "--cell-port-base", "0")
    # The race lab's enactor settings (short backoff, fast polling, keep_plans 2), as the console's race tests run `dnsctl up`.
    env = {**_env(), **RACE_ENACTOR_ENV, **RACE_ROUTE53_ENV}
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        stack_file = state_dir / "stack.json"
        _wait(lambda: set(CELL_2) | {"cellmap-planner", "console"} <= set(json.loads(stack_file.read_text())["services"]),
              400, "every service of the stack up")
        for name in ("cell-2.ddb.us-east-1.api.aws", "cell-1.ddb.us-east-1.api.aws", "dynamodb.us-east-1.api.aws"):
            _wait(lambda n=name: _answers(dns_port, n), 240, f"{name} served")
        _wait(lambda: dns.query.udp(dns.message.make_query("100000000002.ddb.us-east-1.api.aws", "A"), "127.0.0.1", port=dns_port,
                                    timeout=2).answer, 180, "the cell map applied")
        refused = subprocess.run([sys.executable, "-m", "cli.main", "race", "--attach", "--cell", "cell-9", "--guard", "off",
                                  "--state-dir", str(state_dir)], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
        said = " ".join(refused.stderr.split())  # rich wraps the error at the terminal's width
        assert refused.returncode == 2 and "has no cell-9" in said and "its cells are cell-1, cell-2" in said, said
        run = subprocess.run([sys.executable, "-m", "cli.main", "race", "--attach", "--cell", "cell-2", "--guard", "off", "--json",
                              "--state-dir", str(state_dir)], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        out = json.loads(run.stdout)
        assert out["cell"] == "cell-2" and out["broken"] and not out["stack"]["private"]
        assert out["stack"]["planner"] == f"http://127.0.0.1:{json.loads(stack_file.read_text())['services']['cell-2-planner']['port']}"
        assert out["blast_radius"]["per_cell"] == {"cell-1": {"lost": 0, "kept": 2}, "cell-2": {"lost": 2, "kept": 0},
                                                   "legacy": {"lost": 0, "kept": 2}}
        assert any(c["label"].startswith("only cell-2") and c["ok"] for c in out["checks"])
        # The regional system and cell 1 still answer: the race ran in cell 2 alone.
        assert _answers(dns_port, "dynamodb.us-east-1.api.aws") and _answers(dns_port, "cell-1.ddb.us-east-1.api.aws")
    finally:
        _stop_stack(proc, state_dir)
