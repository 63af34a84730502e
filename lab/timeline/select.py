"""Which logs and which events a timeline shows: one stack run, a time window, one endpoint.

A stack logs each run into its own folder, <state dir>/logs/<run id>/ (services/supervisor.py),
and every event carries its run id (services/logs.py). Two runs are never merged by default:
their plan versions start again from the store's newest, their processes are new, and reading
them as one story makes false anomalies (a "stale flip" of plan 1 over plan 251 of the run
before). `--run` picks a run; with none the stack's current run (or the newest) is read; logs
given by hand that hold several runs are cut to the newest, and the timeline says so.

Each process's log is rotated by size (services/logs.py: `x.log` is the live file, `x.log.1` the
newest backup ... `x.log.5` the oldest); a run's folder is read with every backup, oldest first,
so a long run's beginning (the plan that started it all) is not lost to rotation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lab.timeline.events import LogFile, Merged, merge, normalise_endpoint, read_log

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_ROTATED = re.compile(r"^(?P<live>.+\.log)(?:\.(?P<backup>\d+))?$")


class SelectionError(ValueError):
    """A bad --since/--last/--run: the message says what is accepted."""


def parse_duration(text: str) -> timedelta:
    """'90s', '5m', '1.5h', '2d', '300' (seconds) -> timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise SelectionError(f"{text!r} is not a duration: give a number with ms, s, m, h or d (e.g. 30s, 5m, 2h)")
    return timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 time ('2026-12-01T14:05:00Z'), a time of day today in UTC ('14:05', '14:05:30'),
    or a duration ago ('10m')."""
    now = now or datetime.now(UTC)
    value = text.strip()
    try:
        return now - parse_duration(value)
    except SelectionError:
        pass
    for fmt in ("%H:%M", "%H:%M:%S"):
        try:
            t = datetime.strptime(value, fmt).time()
        except ValueError:
            continue
        return datetime.combine(now.date(), t, tzinfo=UTC)
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SelectionError(f"{text!r} is not a time: give ISO 8601 (2026-12-01T14:05:00Z), HH:MM[:SS] (UTC today) or a duration ago (10m)") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def log_files(folder: Path) -> list[Path]:
    """The folder's logs, per process: its rotated backups oldest first (x.log.5 ... x.log.1),
    then the live x.log. A backup whose live file is gone still counts (the process's history)."""
    found = []
    for path in folder.iterdir():
        match = _ROTATED.match(path.name)
        if match and path.is_file():
            backup = int(match.group("backup")) if match.group("backup") else 0
            found.append(((match.group("live"), -backup), path))
    return [path for _, path in sorted(found)]


def run_dirs(state_dir: Path) -> list[Path]:
    """The per-run log folders under <state dir>/logs, oldest first (run ids sort by start time)."""
    logs = state_dir / "logs"
    return sorted(p for p in logs.iterdir() if p.is_dir() and any(p.glob("*.log"))) if logs.is_dir() else []


def stack_logs(state_dir: Path, run: str | None = None, current: Path | None = None) -> tuple[str | None, list[Path]]:
    """(run id, log files) of one run of the stack in `state_dir`: `run`, else `current` (the
    running stack's folder, from its description), else the newest run; logs written before
    runs existed (<state dir>/logs/*.log) when there is no run folder at all."""
    runs = run_dirs(state_dir)
    if run is not None:
        folder = state_dir / "logs" / run
        if not folder.is_dir():
            known = ", ".join(p.name for p in runs[-5:]) or "none"
            raise SelectionError(f"no run {run!r} in {state_dir / 'logs'} (latest runs: {known})")
        return run, log_files(folder)
    if current is not None and current.is_dir() and any(current.glob("*.log")):
        return current.name, log_files(current)
    if runs:
        return runs[-1].name, log_files(runs[-1])
    logs = state_dir / "logs"
    return None, log_files(logs) if logs.is_dir() else []


@dataclass(frozen=True)
class Selection:
    merged: Merged
    runs: tuple[str, ...]  # every run id the files held
    run: str | None  # the run shown
    dropped: int  # events left out by the filters


def select(
    paths: Sequence[Path],
    *,
    run: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    endpoint: str | None = None,
) -> Selection:
    """Read the files and keep one run's events (`run`, or the newest), in [since, until], about
    `endpoint` (events that name no endpoint at all, such as a published plan, stay: the story
    needs them)."""
    files = [read_log(p) for p in paths]
    runs = tuple(sorted({e.run for f in files for e in f.events if e.run}))
    if run is not None and runs and run not in runs:
        raise SelectionError(f"no events of run {run!r} in these logs (runs: {', '.join(runs)})")
    shown = run or (runs[-1] if runs else None)
    wanted = normalise_endpoint(endpoint) if endpoint else None

    def keep(e) -> bool:
        if shown is not None and e.run is not None and e.run != shown:
            return False
        if since is not None and e.ts < since:
            return False
        if until is not None and e.ts > until:
            return False
        return not (wanted and e.endpoints and wanted not in e.endpoints)

    kept: list[LogFile] = []
    dropped = 0
    for f in files:
        events = tuple(e for e in f.events if keep(e))
        dropped += len(f.events) - len(events)
        kept.append(replace(f, events=events))
    return Selection(merge(kept), runs, shown, dropped)
