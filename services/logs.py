"""Structured logging: one JSON event per state change, the operators' API.

Every process calls `configure(process=...)` once. Each event carries the process name, a
wall-clock timestamp (ISO 8601, UTC), a per-process sequence number and, under a stack, its run id, so `dnsctl timeline`
can merge the logs of many processes into one order and spot gaps. Field names are stable:
enactor, endpoint, plan_version, applied_version, batch_id, holder. Secrets never reach a log:
any field whose name looks like a credential is redacted before rendering.

With DNSCTL_LOG_FILE set (`dnsctl up` sets it for each service) events go to that file instead
of stdout, rotated by size: at DNSCTL_LOG_MAX_BYTES (default 10 MB) the file becomes .1, the
previous .1 becomes .2, and so on up to DNSCTL_LOG_BACKUPS (default 5) files. With
DNSCTL_LOG_STDOUT=1 as well, every event also goes to stdout, line for line: docker compose sets
it, so `docker compose logs SERVICE` shows the events while the file in the `logs` volume feeds
the console's timeline.
"""

from __future__ import annotations

import itertools
import logging
import logging.handlers
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import structlog  # imported when a process configures or logs: `dnsctl status` does neither

LOG_FILE_ENV = "DNSCTL_LOG_FILE"
LOG_STDOUT_ENV = "DNSCTL_LOG_STDOUT"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_BACKUPS = 5
_SECRET_MARKERS = ("token", "secret", "password", "authorization", "credential", "access_key")
_seq = itertools.count(1)
_seq_lock = threading.Lock()
_identity: dict[str, Any] = {}


def _add_sequence(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    with _seq_lock:
        event["seq"] = next(_seq)
    return event


def _add_identity(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    # A processor, not contextvars: worker threads (uvicorn, the DNS server) must carry it too.
    for key, value in _identity.items():
        event.setdefault(key, value)
    return event


def _redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in list(event):
        if any(m in key.lower() for m in _SECRET_MARKERS):
            event[key] = "[redacted]"
    return event


class RotatingStream:
    """A text stream over stdlib's RotatingFileHandler: each line written is one record, and the
    file rolls over by size. structlog's PrintLogger and logging's StreamHandler both write to it."""

    def __init__(self, path: str, max_bytes: int = DEFAULT_MAX_BYTES, backups: int = DEFAULT_BACKUPS):
        self._handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups,
                                                             encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        self._partial = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            *lines, self._partial = (self._partial + text).split("\n")
            for line in lines:
                self._handler.emit(logging.makeLogRecord({"msg": line, "levelno": logging.INFO}))
        return len(text)

    def flush(self) -> None:
        self._handler.flush()


class TeeStream:
    """One text stream into several, each write to each in turn (the rotated file, then stdout)."""

    def __init__(self, *streams: TextIO | RotatingStream):
        self._streams = streams

    def write(self, text: str) -> int:
        for stream in self._streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self._streams:
            stream.flush()


def _default_stream() -> TextIO:
    path = os.environ.get(LOG_FILE_ENV)
    if not path:
        return sys.stdout
    rotating = RotatingStream(
        path,
        int(os.environ.get("DNSCTL_LOG_MAX_BYTES", DEFAULT_MAX_BYTES)),
        int(os.environ.get("DNSCTL_LOG_BACKUPS", DEFAULT_BACKUPS)),
    )
    if os.environ.get(LOG_STDOUT_ENV, "") == "1":
        return TeeStream(rotating, sys.stdout)  # type: ignore[return-value]
    return rotating  # type: ignore[return-value]


def configure(process: str, stream: TextIO | None = None, level: str | None = None) -> None:
    """Send JSON events to `stream` (stdout, or the rotated DNSCTL_LOG_FILE), each tagged with `process`."""
    import structlog

    stream = stream or _default_stream()
    level_name = (level or os.environ.get("DNSCTL_LOG_LEVEL", "INFO")).upper()
    logging.basicConfig(stream=stream or sys.stdout, level=getattr(logging, level_name, logging.INFO), format="%(message)s")
    # uvicorn and botocore have their own loggers; keep them quiet unless debugging.
    for noisy in ("botocore", "boto3", "urllib3", "httpx", "httpcore", "uvicorn.access", "apscheduler", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            _add_identity,
            _add_sequence,
            _redact,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(sort_keys=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level_name, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stdout),
        cache_logger_on_first_use=False,
    )
    _identity.clear()
    _identity.update(process=process, pid=os.getpid())
    # The stack run this process belongs to (`dnsctl up` sets it for its children), so the
    # timeline never reads two runs' logs as one story.
    if os.environ.get("DNSCTL_RUN_ID"):
        _identity["run"] = os.environ["DNSCTL_RUN_ID"]


def get_logger(**bound: Any) -> structlog.typing.FilteringBoundLogger:
    import structlog

    return structlog.get_logger().bind(**bound)
