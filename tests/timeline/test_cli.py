"""`dnsctl timeline` end to end: the CLI as a child process over log files on disk."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import ROOT
from tests.timeline.race_logs import ENDPOINT, race


def dnsctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "timeline", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def legacy_logs(tmp_path: Path) -> list[Path]:
    return race().write(tmp_path)


def _json(*args: str, env: dict[str, str] | None = None) -> dict:
    done = dnsctl(*args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_json_orders_folds_and_marks_the_cause(legacy_logs: list[Path]):
    data = _json(*map(str, reversed(legacy_logs)))  # file order does not matter
    assert data["skipped_lines"] == 5 and len(data["files"]) == 6
    assert data["lanes"] == ["planner", "enactor-a", "enactor-b", "enactor-c", "dns", "prober"]
    rows = data["rows"]
    # ordering: every event shown once, rows in (ts, process, seq) order of their first event
    indices = [i for r in rows for i in (r["indices"] if r["kind"] == "collapsed" else [r["index"]])]
    assert sorted(indices) == list(range(data["events"]))
    firsts = [r["indices"][0] if r["kind"] == "collapsed" else r["index"] for r in rows]
    assert firsts == sorted(firsts)
    keys = [(r["ts"], r["process"], r["seq"]) for r in rows if r["kind"] == "event"]
    assert keys == sorted(keys)
    # collapsing: c's lost lock attempts are one row; the stuck enactors' loops are one row each
    folded = {(r["lane"], r["label"]): r for r in rows if r["kind"] == "collapsed"}
    contention = folded[("enactor-c", "lock contention")]
    # 20 lost, 20 backoffs, 6 attempts that looked free (the last one before c got through)
    assert contention["counts"] == {"lock_lost": 20, "backoff": 20, "lock_attempt": 6}
    assert contention["text"].startswith("×46 lock contention")
    stuck = folded[("enactor-b", "cycles")]
    assert stuck["count"] == 12 and stuck["mark"]["role"] == "effect" and stuck["mark"]["anomaly"] == "A1"
    assert len(rows) < data["events"] / 10
    # the anomaly: the stale flip is the cause, the rest follows from it, effects are labelled
    kinds = [(a["id"], a["kind"], a["caused_by"]) for a in data["anomalies"]]
    assert kinds == [("A1", "stale_flip", None), ("A2", "active_tree_deleted", "A1"), ("A3", "root_dangling", "A1"), ("A4", "flip_failed", "A1")]
    cause_rows = [r for r in rows if r["mark"] and r["mark"]["role"] == "cause"]
    assert len(cause_rows) == 1
    cause = cause_rows[0]
    assert (cause["process"], cause["event"], cause["plan_version"], cause["tree_id"]) == ("enactor-c", "flipped", 110, "t-c110")
    effects = [r for r in rows if r["mark"] and r["mark"]["role"] == "effect"]
    assert {r["mark"]["anomaly"] for r in effects} == {"A1"}
    assert any(r.get("alarm") == "EndpointEmpty" for r in effects)
    assert all(r["index"] > cause["index"] for r in effects if r["kind"] == "event")


def test_html_is_a_self_contained_diagram_with_a_lane_per_process(legacy_logs: list[Path], tmp_path: Path):
    out = tmp_path / "race.html"
    done = dnsctl(*map(str, legacy_logs), "--html", str(out), "--json")
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}" in done.stderr.replace("\n", "")
    page = out.read_text()
    assert not re.search(r"https?://", page)
    assert not re.search(r"<script|<link|@import|src=", page)
    for lane in json.loads(done.stdout)["lanes"]:
        assert page.count(f">{lane}</div>") == 1
    assert "◆ CAUSE A1" in page and "stale plan flipped over a newer one" in page


def test_terminal_output_names_the_cause_first(legacy_logs: list[Path]):
    done = dnsctl(*map(str, legacy_logs))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.index("CAUSE A1") < out.index("then A2") < out.index("×46 lock contention")
    assert f"enactor-c flipped {ENDPOINT} to plan 110 over newer plan 145" in out


def test_all_shows_every_event(legacy_logs: list[Path]):
    data = _json(*map(str, legacy_logs), "--all")
    assert all(r["kind"] == "event" for r in data["rows"]) and len(data["rows"]) == data["events"]


def test_stack_reads_the_state_dirs_logs(tmp_path: Path):
    logs = tmp_path / "state" / "logs"
    logs.mkdir(parents=True)
    race(guarded=True).write(logs)
    data = _json("--stack", env={"DNSCTL_STATE_DIR": str(tmp_path / "state")})
    assert data["anomalies"] == [] and len(data["files"]) == 6
    assert any(r["mark"] and r["mark"]["role"] == "guard" and r["event"] == "refused_stale" for r in data["rows"] if r["kind"] == "event")


def test_bad_input_is_a_clear_error(tmp_path: Path):
    done = dnsctl()
    assert done.returncode == 2 and "give log files, or --stack" in done.stderr
    done = dnsctl(str(tmp_path / "nope.log"))
    assert done.returncode == 2 and "no such log file" in done.stderr
    done = dnsctl("--stack", env={"DNSCTL_STATE_DIR": str(tmp_path)})
    assert done.returncode == 2 and "no logs in" in done.stderr
    log = tmp_path / "x.log"
    log.write_text("not json at all\n")
    done = dnsctl(str(log), "--html", str(tmp_path / "missing-dir" / "t.html"))
    assert done.returncode == 2 and "no directory" in done.stderr
    assert not (tmp_path / "missing-dir").exists()


# Real processes logging through services/logs.py, one after the other so their clocks order them.
_SCRIPT = """
import sys, json
from services.logs import configure, get_logger
process, events = sys.argv[1], json.loads(sys.argv[2])
configure(process=process)
log = get_logger(**({"enactor": process} if process.startswith("enactor") else {}))
print("INFO:     Started server process", flush=True)
for name, fields in events:
    log.info(name, **fields)
"""


def test_logs_written_by_real_processes(tmp_path: Path):
    steps = [
        ("planner", [("plan_published", {"plan_version": v, "lane": "slow"}) for v in (110, 111, 112, 113)]),
        ("enactor-a", [("flipped", {"endpoint": ENDPOINT, "plan_version": 113, "applied_version": 113, "tree_id": "t-a113"})]),
        ("enactor-c", [("lock_lost", {"endpoint": ENDPOINT, "plan_version": 110, "holder": "enactor-a"})] * 5
         + [("flipped", {"endpoint": ENDPOINT, "plan_version": 110, "applied_version": 110, "tree_id": "t-c110"})]),
        ("prober", [("alarm_fired", {"alarm": "RootAliasDangling", "endpoint": ENDPOINT})]),
    ]  # fmt: skip
    paths = []
    for process, events in steps:
        path = tmp_path / f"{process}.log"
        with open(path, "w") as out:
            subprocess.run([sys.executable, "-c", _SCRIPT, process, json.dumps(events)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, check=True, timeout=60)
        paths.append(path)
    data = _json(*map(str, paths))
    assert data["events"] == 12 and data["skipped_lines"] == 4 and data["seq_gaps"] == []
    assert data["lanes"] == ["planner", "enactor-a", "enactor-c", "prober"]
    rows = data["rows"]
    assert [r.get("event") or f'×{r["count"]} {r["label"]}' for r in rows] == [
        "×4 plan_published lane=slow", "flipped", "×5 lock contention", "flipped", "alarm_fired"
    ]  # fmt: skip
    assert [(a["kind"], a["process"]) for a in data["anomalies"]] == [("stale_flip", "enactor-c"), ("root_dangling", "prober")]
