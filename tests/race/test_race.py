"""`dnsctl race` end to end, in both modes: a private stack of real processes on free ports
(strict emulator, planner, three enactors, DNS server, prober), the scripted October sequence,
and the verdict built from dig, the prober and the logs."""

from __future__ import annotations

import json
from pathlib import Path

from tests.race.lab import run_cli


def race(tmp_path: Path, guard: str) -> dict:
    result = run_cli("race", "--guard", guard, "--json", "--state-dir", str(tmp_path / "stack"), timeout_s=240)
    assert result.returncode in (0, 1), result.stderr[-3000:]
    out = json.loads(result.stdout)
    out["returncode"] = result.returncode
    return out


def test_legacy_breaks_the_october_way(tmp_path):
    out = race(tmp_path, "off")
    checks = {c["label"]: c for c in out["checks"]}
    assert out["mode"] == "legacy"
    assert out["broken"] is True
    assert all(c["ok"] for c in checks.values()), json.dumps(out, indent=1)
    assert out["returncode"] == 0 and out["passed"] is True
    assert "NOERROR, 0 addresses, via dig" in checks["an endpoint answers NOERROR with zero addresses over dig"]["detail"]
    # The timeline names the cause: a plan flipped in over a newer one (enactor-c's, or enactor-b's
    # during the burst), and the clean-up deleting the tree the root served.
    kinds = [m["text"] for m in out["moments"] if m["kind"] in ("cause", "anomaly")]
    assert any(t.startswith("stale plan flipped over a newer one") for t in kinds), kinds
    assert any(t.startswith("active tree deleted") for t in kinds), kinds
    logs = Path(out["logs"])
    assert '"fault_injected"' in (logs / "enactor-c.log").read_text()
    assert '"alarm_fired"' in (logs / "prober.log").read_text()


def test_guard_holds_on_the_same_script(tmp_path):
    out = race(tmp_path, "on")
    checks = {c["label"]: c for c in out["checks"]}
    assert out["mode"] == "guarded"
    assert out["broken"] is False, json.dumps(out, indent=1)
    assert all(c["ok"] for c in checks.values()), json.dumps(out, indent=1)
    assert out["returncode"] == 0 and out["passed"] is True
    refused = checks["enactor-c refused its stale plan (refused_stale)"]["detail"]
    assert int(refused.split()[0]) > 0
    assert "0 empty probes (dnsctl_probe_empty_total); EndpointEmpty fired 0 times" in checks["the prober recorded not a single empty-answer probe"]["detail"]
    assert not [m for m in out["moments"] if m["kind"] in ("cause", "anomaly")]
