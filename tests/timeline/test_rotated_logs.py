"""`dnsctl timeline --stack` reads a run's rotated logs (x.log.N ... x.log.1, x.log), oldest first,
as services/logs.py's size rotation writes them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lab.timeline.select import log_files, stack_logs
from tests.processes import ROOT

RUN = "20261201T120000Z-abcd"
PLANS = 60
# One process logging PLANS plan_seen events into a file that rotates every ~2 KB, keeping 5 backups.
WRITER = f"""
from services.logs import configure, get_logger
configure(process="enactor-a")
log = get_logger(enactor="enactor-a", endpoint="e.example")
for version in range(1, {PLANS} + 1):
    log.info("plan_seen", plan_version=version, done_version=version - 1)
"""


def write_rotated(state: Path, max_bytes: int) -> Path:
    folder = state / "logs" / RUN
    folder.mkdir(parents=True)
    env = {**os.environ, "DNSCTL_LOG_FILE": str(folder / "enactor-a.log"), "DNSCTL_LOG_MAX_BYTES": str(max_bytes),
           "DNSCTL_LOG_BACKUPS": "5", "DNSCTL_RUN_ID": RUN}
    subprocess.run([sys.executable, "-c", WRITER], cwd=ROOT, env=env, check=True, timeout=60)
    (folder / "planner.log").write_text("")  # another process of the run, nothing rotated
    return folder


def timeline_json(state: Path) -> dict:
    done = subprocess.run([sys.executable, "-m", "cli.main", "timeline", "--stack", "--all", "--json"], cwd=ROOT,
                          env={**os.environ, "DNSCTL_STATE_DIR": str(state)}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_every_rotated_file_of_the_run_is_read_oldest_first(tmp_path: Path):
    state = tmp_path / "state"
    folder = write_rotated(state, max_bytes=2500)
    names = sorted(p.name for p in folder.iterdir())
    assert "enactor-a.log.3" in names and "enactor-a.log.6" not in names, names  # rotated, nothing dropped yet
    backups = sorted((p for p in folder.glob("enactor-a.log.*")), key=lambda p: -int(p.suffix[1:]))
    assert log_files(folder) == [*backups, folder / "enactor-a.log", folder / "planner.log"]
    assert stack_logs(state) == (RUN, log_files(folder))

    data = timeline_json(state)
    versions = [r["plan_version"] for r in data["rows"] if r["kind"] == "event" and r["event"] == "plan_seen"]
    assert versions == list(range(1, PLANS + 1)), "every event of the run, in order, none lost to rotation"
    assert data["seq_gaps"] == [] and data["lanes"] == ["enactor-a"]
    assert [Path(f["path"]).name for f in data["files"]][:2] == [backups[0].name, backups[1].name]


def test_a_run_whose_oldest_backups_rotated_away_shows_the_gap(tmp_path: Path):
    state = tmp_path / "state"
    folder = write_rotated(state, max_bytes=1200)
    assert (folder / "enactor-a.log.5").exists() and not (folder / "enactor-a.log.6").exists()
    data = timeline_json(state)
    versions = [r["plan_version"] for r in data["rows"] if r["kind"] == "event" and r["event"] == "plan_seen"]
    # What is left is read whole and in order; what rotation dropped is a seq gap at the start, never a hole inside.
    assert versions == list(range(versions[0], PLANS + 1)) and versions[0] > 1
    assert data["seq_gaps"] == []
