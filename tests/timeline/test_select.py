"""One run, a time window, one endpoint: lab/timeline/select.py and `dnsctl timeline --run/--since/--last/--endpoint`."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lab.timeline.select import SelectionError, parse_duration, parse_since, select, stack_logs
from tests.processes import ROOT

T0 = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def _line(run: str | None, seconds: float, event: str, process: str = "enactor-a", **fields) -> str:
    data = {"event": event, "ts": (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "seq": int(seconds * 10) + 1,
            "process": process, "pid": 7, "level": "info", **fields}
    if run:
        data["run"] = run
    return json.dumps(data)


def _write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["ms", "s", "m", "h", "d", ""]))
def test_durations_parse_in_every_unit(n: int, unit: str):
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "": 1}[unit]
    assert parse_duration(f"{n}{unit}") == timedelta(seconds=n * scale)


def test_since_takes_iso_time_of_day_and_a_duration_ago():
    now = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    assert parse_since("2026-12-01T14:05:00Z", now) == datetime(2026, 12, 1, 14, 5, tzinfo=UTC)
    assert parse_since("14:05", now) == datetime(2026, 12, 1, 14, 5, tzinfo=UTC)
    assert parse_since("14:05:30", now) == datetime(2026, 12, 1, 14, 5, 30, tzinfo=UTC)
    assert parse_since("10m", now) == now - timedelta(minutes=10)
    for bad in ("yesterday", "5 parsecs", "25:99"):
        with pytest.raises(SelectionError):
            parse_since(bad, now)


def test_two_runs_in_one_file_are_never_merged(tmp_path: Path):
    # A restarted stack appending to the same file: plan 251 from the run before, then plan 1 again.
    log = _write(tmp_path / "enactor-a.log", [
        _line("run-1", 0, "flip_done", endpoint="e.example", plan_version=251),
        _line("run-2", 60, "flip_done", endpoint="e.example", plan_version=1),
        _line("run-2", 61, "flip_done", endpoint="f.example", plan_version=2),
    ])
    chosen = select([log])
    assert chosen.runs == ("run-1", "run-2") and chosen.run == "run-2"
    assert [e.int_field("plan_version") for e in chosen.merged.events] == [1, 2]
    assert [e.int_field("plan_version") for e in select([log], run="run-1").merged.events] == [251]
    with pytest.raises(SelectionError, match="no events of run"):
        select([log], run="run-9")
    only_f = select([log], endpoint="F.example.")
    assert [e.endpoint for e in only_f.merged.events] == ["f.example"] and only_f.dropped == 2
    late = select([log], since=T0 + timedelta(seconds=61))
    assert [e.int_field("plan_version") for e in late.merged.events] == [2]


def test_stack_logs_reads_one_run_folder(tmp_path: Path):
    state = tmp_path / "state"
    _write(state / "logs" / "20261201T100000Z-aaaa" / "planner.log", [_line("20261201T100000Z-aaaa", 0, "plan_published", "planner")])
    _write(state / "logs" / "20261201T110000Z-bbbb" / "planner.log", [_line("20261201T110000Z-bbbb", 0, "plan_published", "planner")])
    assert stack_logs(state)[0] == "20261201T110000Z-bbbb"
    assert stack_logs(state, "20261201T100000Z-aaaa")[1] == [state / "logs" / "20261201T100000Z-aaaa" / "planner.log"]
    assert stack_logs(state, current=state / "logs" / "20261201T100000Z-aaaa")[0] == "20261201T100000Z-aaaa"
    with pytest.raises(SelectionError, match="latest runs: 20261201T100000Z-aaaa, 20261201T110000Z-bbbb"):
        stack_logs(state, "nope")


def test_cli_filters(tmp_path: Path):
    state = tmp_path / "state"
    run = "20261201T110000Z-bbbb"
    now = datetime.now(UTC)
    old = (now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    new = (now - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    lines = [json.dumps({"event": "flip_done", "ts": ts, "seq": i, "process": "enactor-a", "pid": 7, "level": "info", "run": run,
                         "endpoint": ep, "plan_version": i}) for i, (ts, ep) in enumerate([(old, "e.example"), (new, "e.example"), (new, "f.example")], 1)]
    _write(state / "logs" / run / "enactor-a.log", lines)

    def rows(*args: str) -> list[dict]:
        done = subprocess.run([sys.executable, "-m", "cli.main", "timeline", "--stack", "--state-dir", str(state), "--json", "--all", *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return [r for r in json.loads(done.stdout)["rows"] if r["kind"] == "event"]

    assert len(rows()) == 3
    assert len(rows("--last", "10m")) == 2
    assert len(rows("--last", "10m", "--endpoint", "f.example")) == 1
    assert len(rows("--run", run, "--since", new)) == 2
    bad = subprocess.run([sys.executable, "-m", "cli.main", "timeline", "--stack", "--state-dir", str(state), "--last", "soon"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "not a duration" in bad.stderr
