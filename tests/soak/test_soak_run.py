"""One short real soak: a private stack of real processes, an emulator kill -9 and an S3 + Route 53
outage (SIGSTOP of the emulator), the checker over real DNS and Route 53, and the verdict."""

from __future__ import annotations

import json

from tests.race.lab import run_cli

# Seed 8 with these kinds: emulator-restart (kill -9) at about 6 s, then aws-outage (paused emulator).
KINDS = "enactor-pause,enactor-kill,planner-restart,emulator-restart,aws-outage"


def test_a_short_soak_survives_an_emulator_kill_and_an_outage(tmp_path):
    state = tmp_path / "stack"
    result = run_cli("soak", "--minutes", "0.5", "--seed", "8", "--faults", KINDS, "--json", "--state-dir", str(state),
                     "--converge-timeout", "120", timeout_s=420)
    assert result.stdout.strip(), result.stderr[-3000:]
    out = json.loads(result.stdout)
    assert result.returncode == 0, json.dumps(out["properties"], indent=2)
    assert out["passed"] and out["seed"] == 8
    assert out["replay"] == f"dnsctl soak --minutes 0.5 --seed 8 --faults {KINDS}"
    by_kind = out["faults_by_kind"]
    assert by_kind["emulator-restart"]["injected"] == 1 and by_kind["aws-outage"]["injected"] == 1
    assert sum(row["skipped"] for row in by_kind.values()) == 0
    tally = out["tally"]
    assert tally["dns_answers"] > 100 and tally["empty"] == 0 and tally["dns_version_reads"] > 0
    assert out["converge_s"] is not None and out["lost_changes"] == []
    # The private stack's emulator keeps its state in its state dir, as `dnsctl up`'s does (the
    # journal is folded into the state file at a clean stop).
    kept = state / "emulator"
    assert (kept / "journal.jsonl").exists() and (kept / "state.pickle").stat().st_size > 0
