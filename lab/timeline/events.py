"""Log events as the timeline sees them: parsed from JSON lines, merged into one order.

services/logs.py writes one JSON object per line with `event`, `ts` (ISO 8601, UTC), `seq`
(per process), `process`, `pid` and `level`, plus domain fields (enactor, endpoint,
plan_version, applied_version, batch_id, holder, ...). Everything else in a log file
(tracebacks, uvicorn's plain lines, a half-written last line) is skipped but counted, so the
reader knows how much the timeline does not show.

Merge order is (ts, process, seq): wall clocks of processes on one host agree closely enough,
and within one process `seq` breaks ties between events stamped in the same microsecond.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Keys services/logs.py adds to every event; the rest are the event's own fields.
ENVELOPE = ("event", "ts", "seq", "process", "pid", "level", "run")
# Shown first wherever an event is summed up in one line.
KEY_FIELDS = (
    "endpoint", "enactor", "alarm", "plan_version", "applied_version", "tree_id", "tree", "trees", "from_tree", "rollback_to",
    "holder", "cause", "error_code", "error", "reason", "batch_id",
)  # fmt: skip


class LogUnreadable(OSError):
    """A log file given to the timeline does not exist or cannot be read."""


@dataclass(frozen=True, slots=True)
class Event:
    """One structured log event. `index` is its place in the merged timeline."""

    ts: datetime
    process: str
    seq: int | None
    name: str
    level: str
    pid: int | None
    fields: dict[str, Any]
    source: str
    line: int
    index: int = -1
    run: str | None = None  # the stack run (`dnsctl up`) that logged it; None in logs from before runs

    @property
    def lane(self) -> str:
        # Enactors name their process after their id; one logging as plain "enactor" still gets its own lane.
        if self.process == "enactor" and isinstance(self.fields.get("enactor"), str) and self.fields["enactor"]:
            return self.fields["enactor"]
        return self.process

    @property
    def endpoint(self) -> str | None:
        return normalise_endpoint(self.fields.get("endpoint"))

    @property
    def subject(self) -> str | None:
        """The DNS name the event is about: its endpoint, or the zone a DNS server or the emulator names."""
        return self.endpoint or normalise_endpoint(self.fields.get("zone")) or self.str_field("zone_id")

    @property
    def endpoints(self) -> tuple[str, ...]:
        """Every endpoint the event names: `endpoint`, and an `endpoints` list (the prober's alarms)."""
        names = [self.endpoint] + [normalise_endpoint(v) for v in _as_list(self.fields.get("endpoints"))]
        return tuple(dict.fromkeys(n for n in names if n))

    def int_field(self, *names: str) -> int | None:
        """The first of `names` that holds an integer (JSON numbers or digit strings)."""
        for name in names:
            value = self.fields.get(name)
            if isinstance(value, bool):
                continue
            if isinstance(value, int):
                return value
            if isinstance(value, str) and value.strip().isdigit():
                return int(value)
        return None

    def str_field(self, *names: str) -> str | None:
        for name in names:
            value = self.fields.get(name)
            if isinstance(value, str) and value:
                return value
        return None

    @property
    def ts_text(self) -> str:
        return format_ts(self.ts)

    def details(self, limit: int = 120, omit: tuple[str, ...] = ()) -> str:
        """The event's fields as 'k=v' text, the domain's key fields first, for one-line displays."""
        keys = [k for k in KEY_FIELDS if k in self.fields] + sorted(k for k in self.fields if k not in KEY_FIELDS)
        parts = []
        for key in keys:
            value = self.fields[key]
            if key in omit or key == "enactor" and value == self.process or value is None or key == "exception":
                continue
            text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)
            parts.append(f"{key}={text}")
        line = " ".join(parts)
        return line if len(line) <= limit else line[: limit - 1] + "…"

    def as_dict(self) -> dict[str, Any]:
        """The event as logs.py wrote it (envelope first), for --json and HTML tooltips."""
        out: dict[str, Any] = {"ts": self.ts_text, "process": self.process, "seq": self.seq, "event": self.name, "level": self.level}
        if self.pid is not None:
            out["pid"] = self.pid
        if self.run is not None:
            out["run"] = self.run
        out.update(self.fields)
        return out


@dataclass(frozen=True, slots=True)
class LogFile:
    path: str
    events: tuple[Event, ...]
    skipped_lines: int  # non-empty lines that are not events: tracebacks, plain text, partial lines


@dataclass(frozen=True, slots=True)
class SeqGap:
    """Events missing from one process's log: its `seq` jumped from `after` to `before`."""

    process: str
    pid: int | None
    after: int
    before: int

    @property
    def missing(self) -> int:
        return self.before - self.after - 1


@dataclass(frozen=True, slots=True)
class Merged:
    events: tuple[Event, ...]
    files: tuple[LogFile, ...]
    gaps: tuple[SeqGap, ...] = field(default=())

    @property
    def skipped_lines(self) -> int:
        return sum(f.skipped_lines for f in self.files)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def normalise_endpoint(value: Any) -> str | None:
    """Prober, DNS and enactors may spell a name with or without the final dot."""
    if not isinstance(value, str) or not value:
        return None
    return value.strip().rstrip(".").lower() or None


def format_ts(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    # A naive stamp is taken as UTC, which is what logs.py writes.
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def parse_line(text: str, source: str = "", line: int = 0, default_process: str = "") -> Event | None:
    """One log line -> an Event, or None when the line is not a structured event."""
    text = text.strip()
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    name, ts = data.get("event"), parse_ts(data.get("ts"))
    if not isinstance(name, str) or not name or ts is None:
        return None
    process = data.get("process") if isinstance(data.get("process"), str) and data.get("process") else default_process
    seq = data.get("seq") if isinstance(data.get("seq"), int) and not isinstance(data.get("seq"), bool) else None
    pid = data.get("pid") if isinstance(data.get("pid"), int) and not isinstance(data.get("pid"), bool) else None
    level = data.get("level") if isinstance(data.get("level"), str) else "info"
    run = data.get("run") if isinstance(data.get("run"), str) and data.get("run") else None
    fields = {k: v for k, v in data.items() if k not in ENVELOPE}
    return Event(ts=ts, process=process, seq=seq, name=name, level=level, pid=pid, fields=fields, source=source, line=line, run=run)


def parse_lines(lines: Iterable[str], source: str = "", default_process: str = "") -> LogFile:
    """The events of one log file, and how many of its lines were something else.

    logs.py binds process and pid with structlog's contextvars, which a thread other than the one
    that called configure() does not see (a server's request threads), so some events come
    without them. They belong to the process whose events surround them in the same file.
    """
    events: list[Event] = []
    skipped = 0
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        event = parse_line(text, source, number)
        if event is None:
            skipped += 1
        else:
            events.append(event)
    current = next(((e.process, e.pid) for e in events if e.process), (default_process or "unknown", None))
    for i, event in enumerate(events):
        if event.process:
            current = (event.process, event.pid if event.pid is not None else current[1])
        else:
            events[i] = replace(event, process=current[0], pid=event.pid if event.pid is not None else current[1])
    return LogFile(path=source, events=tuple(events), skipped_lines=skipped)


def read_log(path: Path) -> LogFile:
    """Read one JSON-lines log; a file with no `process` anywhere is named after itself
    (enactor-a.log, and its rotated backups enactor-a.log.1 ...: enactor-a)."""
    name = path.name
    while name.rsplit(".", 1)[-1].isdigit() and "." in name:
        name = name.rsplit(".", 1)[0]
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return parse_lines(handle, source=str(path), default_process=Path(name).stem)
    except FileNotFoundError as exc:
        raise LogUnreadable(f"no such log file: {path}") from exc
    except IsADirectoryError as exc:
        raise LogUnreadable(f"{path} is a directory; give the log files inside it, or --stack") from exc
    except OSError as exc:
        raise LogUnreadable(f"cannot read {path}: {exc.strerror or exc}") from exc


def merge(files: Sequence[LogFile]) -> Merged:
    """All events of all files in one order: (ts, process, seq), then where they were read."""
    events = [e for f in files for e in f.events]
    events.sort(key=lambda e: (e.ts, e.process, e.seq if e.seq is not None else -1, e.source, e.line))
    ordered = tuple(replace(e, index=i) for i, e in enumerate(events))
    return Merged(events=ordered, files=tuple(files), gaps=seq_gaps(ordered))


def seq_gaps(events: Sequence[Event]) -> tuple[SeqGap, ...]:
    """Holes in each process's sequence numbers: lost lines, a truncated or rotated log.

    A restarted process starts again at 1 with a new pid, so sequences are per (process, pid).
    """
    seqs: dict[tuple[str, int | None], list[int]] = defaultdict(list)
    for e in events:
        if e.seq is not None:
            seqs[(e.process, e.pid)].append(e.seq)
    gaps = []
    for (process, pid), values in sorted(seqs.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        values.sort()
        gaps += [SeqGap(process, pid, a, b) for a, b in zip(values, values[1:], strict=False) if b > a + 1]
    return tuple(gaps)


def read_logs(paths: Sequence[Path]) -> Merged:
    return merge([read_log(p) for p in paths])
