"""Follow the stack's JSON logs and feed the page its events and its live timeline.

Every `*.log` file of the log directory (DNSCTL_STATE_DIR/logs, where `dnsctl up` writes one
per service) is read from where it was last read, every TAIL_INTERVAL_S: new events go to the
pages at once (a flip shows within a fraction of a second of the enactor logging it), and the
timeline of the last WINDOW events (its newest ROWS_SENT rows go to the page) is rebuilt with `dnsctl timeline`'s own code
(lab/timeline: the same lanes, folding, cause/effect marks and links) at most every
TIMELINE_EVERY_S, so the browser only draws it. A half-written last line waits for its end; a
file that shrank (rotated, truncated) is read again from its start.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from lab.timeline.build import build
from lab.timeline.events import Event, LogFile, merge, parse_line
from lab.timeline.render_json import to_json
from services.console.hub import Hub
from services.logs import get_logger

TAIL_INTERVAL_S = 0.1
TIMELINE_EVERY_S = 1.0
# The analysis needs the cause inside its window (a race logs thousands of events between the
# stale flip and its effects); the page needs only the newest rows.
WINDOW = 3000
ROWS_SENT = 250
READ_LIMIT = 4 * 1024 * 1024  # per file per pass: a huge backlog is caught up over several passes


class _Followed:
    def __init__(self, path: Path, start_at_end: bool):
        self.path = path
        self.offset = path.stat().st_size if start_at_end else 0
        self.partial = b""
        self.lines = 0


class LogTail:
    def __init__(self, log_dir: Path | None, hub: Hub, *, backfill_bytes: int = 256 * 1024):
        self.log_dir = log_dir
        self.hub = hub
        self.backfill_bytes = backfill_bytes
        self.window: deque[Event] = deque(maxlen=WINDOW)
        self.events_seen = 0
        self._files: dict[Path, _Followed] = {}
        self._stop = threading.Event()
        self._dirty = False
        self._timeline_at = 0.0
        self._timeline_every = TIMELINE_EVERY_S
        self._thread = threading.Thread(target=self._run, name="console-logs", daemon=True)
        self._log = get_logger(component="console-logs")

    def start(self) -> LogTail:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _discover(self, first: bool) -> None:
        if self.log_dir is None or not self.log_dir.is_dir():
            return
        for path in sorted(self.log_dir.glob("*.log")):
            if path not in self._files:
                followed = _Followed(path, start_at_end=False)
                if first and followed.path.stat().st_size > self.backfill_bytes:
                    # A long-running stack: show the recent past, not the whole history.
                    followed.offset = followed.path.stat().st_size - self.backfill_bytes
                    followed.partial = b"\x00"  # the first line read is a fragment: drop it
                self._files[path] = followed

    def poll_once(self, first: bool = False) -> list[Event]:
        self._discover(first)
        new: list[Event] = []
        for f in self._files.values():
            try:
                size = f.path.stat().st_size
            except OSError:
                continue
            if size < f.offset:
                f.offset, f.partial = 0, b""
            if size == f.offset:
                continue
            with open(f.path, "rb") as fh:
                fh.seek(f.offset)
                data = fh.read(min(READ_LIMIT, size - f.offset))
            f.offset += len(data)
            data = f.partial + data
            lines = data.split(b"\n")
            f.partial = lines.pop()
            if lines and lines[0].startswith(b"\x00"):
                lines.pop(0)
            for raw in lines:
                f.lines += 1
                event = parse_line(raw.decode("utf-8", errors="replace"), str(f.path), f.lines, default_process=f.path.stem)
                if event is not None:
                    new.append(event)
        if new:
            new.sort(key=lambda e: (e.ts, e.process, e.seq if e.seq is not None else -1))
            self.window.extend(new)
            self.events_seen += len(new)
            self._dirty = True
            self.hub.publish("events", [event_json(e) for e in new[-ROWS_SENT:]])
        return new

    def timeline(self) -> dict[str, Any]:
        merged = merge([LogFile(path="live", events=tuple(self.window), skipped_lines=0)])
        out = to_json(build(merged, fold=True))
        out["rows_total"] = len(out["rows"])
        out["rows"] = out["rows"][-ROWS_SENT:]
        return out

    def _run(self) -> None:
        first = True
        failing = False
        while not self._stop.wait(TAIL_INTERVAL_S):
            try:
                self.poll_once(first)
                first = False
                if self._dirty and time.monotonic() - self._timeline_at >= self._timeline_every:
                    self._dirty = False
                    started = self._timeline_at = time.monotonic()
                    self.hub.publish("timeline", self.timeline())
                    # A big window on a busy machine: never spend more than a quarter of the time on it.
                    self._timeline_every = max(TIMELINE_EVERY_S, 4 * (time.monotonic() - started))
                failing = False
            except Exception as exc:  # noqa: BLE001 - a bad file or line never stops the console
                if not failing:
                    failing = True
                    self._log.warning("console_logs_failed", error=f"{type(exc).__name__}: {exc}"[:300])


def event_json(e: Event) -> dict[str, Any]:
    return {**e.as_dict(), "lane": e.lane, "endpoint": e.endpoint, "received_at": time.time()}
