"""The emulator's write-ahead journal: no acknowledged change is lost, even to kill -9.

Every request that changes state (an accepted Route 53 change batch, a created or deleted hosted
zone, an S3 bucket or object write or delete) is appended to the journal and fsync'ed before its
reply leaves the emulator; at start the journal is replayed, in order, through the same moto
dispatcher and Route 53 engine that accepted it, so the restarted emulator holds exactly what
it had acknowledged.

Why requests and not state: moto's models have no faithful serialisation other than pickling
the whole backend (services/emulator/state_file.py), far too slow to do per request; a request,
replayed against the state it was accepted in, reproduces its effect. Three things make that
exact:

- Order. Mutating requests run one at a time under one lock, from dispatch to fsync, so the
  journal's order is the order the state changed in (two batches on one zone, or two writes of
  one key, can never be journaled the other way round). Reads are not serialised.
- Identifiers. Hosted zone ids and Route 53 change ids are random; the journal records the ones
  the reply carried, and replay pins them (moto's id manager for zones, the store for changes),
  so zone ids, change ids and their submission times survive a restart.
- Only what was accepted. A request is journaled only when it succeeded (2xx); a refused one
  changed nothing. A line cut short by a crash was never acknowledged and is ignored.

The journal is compacted into the state file (`state.pickle`, with the sequence number of the
last entry it includes) at start after a replay, on a clean shutdown, and whenever it grows past
`compact_bytes`; entries at or below the state file's sequence are skipped, so a crash between
saving the state file and truncating the journal applies nothing twice.

Entries are JSON lines: sequence, time, method, path, query, the headers moto needs (the
signature replaced by a placeholder: no credential material is kept beyond the access key id,
which moto maps to an account), the body (base64), pinned ids, and a CRC32 of the rest.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Histogram

from services.emulator import state_file
from services.emulator.route53_state import Route53Store
from services.logs import get_logger

JOURNAL_NAME = "journal.jsonl"
STATE_NAME = "state.pickle"
DEFAULT_COMPACT_BYTES = 64 * 1024 * 1024
MUTATING = frozenset({"PUT", "POST", "DELETE", "PATCH"})
RESET_PATH = "/moto-api/reset"  # the one moto control route that changes state (journaled: a reset survives a restart)
# Request headers replay needs; everything else (Host, Connection, User-Agent, ...) is noise.
_KEEP_HEADERS = ("HTTP_CONTENT_MD5", "HTTP_IF_MATCH", "HTTP_IF_NONE_MATCH", "HTTP_CONTENT_ENCODING",
                 "HTTP_CACHE_CONTROL", "HTTP_CONTENT_DISPOSITION", "HTTP_CONTENT_LANGUAGE", "HTTP_EXPIRES")
_ZONE_ID = re.compile(rb"<HostedZone>\s*<Id>/hostedzone/([^<]+)</Id>")
_CHANGE_ID = re.compile(rb"<ChangeInfo>\s*<Id>/change/([^<]+)</Id>")

JOURNALED = Counter("dnsctl_emulator_journal_entries_total", "Mutating requests journaled (fsync'ed before the reply)")
FSYNC_SECONDS = Histogram(
    "dnsctl_emulator_journal_fsync_seconds", "Time to append and fsync one journal entry",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)


def _crc(entry: dict[str, Any]) -> int:
    return zlib.crc32(json.dumps(entry, sort_keys=True, separators=(",", ":")).encode())


def _auth_without_signature(auth: str) -> str:
    """Keep the SigV4 credential scope (moto finds the service and account in it), drop the rest."""
    match = re.search(r"Credential=([^,\s]+)", auth)
    if match is None:
        return ""
    return f"AWS4-HMAC-SHA256 Credential={match.group(1)}, SignedHeaders=host, Signature=0"


def read_body(environ: dict[str, Any]) -> bytes:
    """The whole request body (Content-Length, or a chunked body the server has de-chunked)."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = environ.get("CONTENT_LENGTH")
    if length:
        return stream.read(int(length))
    if environ.get("wsgi.input_terminated") or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return stream.read()
    return b""


@dataclass(frozen=True)
class Entry:
    seq: int
    at: float
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    zone_id: str | None = None
    change_id: str | None = None

    def to_line(self) -> bytes:
        data = {
            "seq": self.seq, "at": self.at, "method": self.method, "path": self.path, "query": self.query,
            "headers": self.headers, "body": base64.b64encode(self.body).decode(),
            "zone_id": self.zone_id, "change_id": self.change_id,
        }
        data["crc"] = _crc(data)
        return json.dumps(data, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> Entry:
        data = json.loads(line)
        crc = data.pop("crc")
        if crc != _crc(data):
            raise ValueError("checksum mismatch")
        return cls(
            seq=int(data["seq"]), at=float(data["at"]), method=data["method"], path=data["path"],
            query=data["query"], headers=dict(data["headers"]), body=base64.b64decode(data["body"]),
            zone_id=data.get("zone_id"), change_id=data.get("change_id"),
        )

    def environ(self) -> dict[str, Any]:
        from werkzeug.test import EnvironBuilder

        env = EnvironBuilder(path=self.path, method=self.method, query_string=self.query, data=self.body,
                             base_url="http://localhost:4566").get_environ()
        env.update(self.headers)
        env["CONTENT_LENGTH"] = str(len(self.body))
        return env


class _PinnedIds:
    """The zone id replay must reuse, offered to moto's id manager (moto_id) while it is set."""

    def __init__(self) -> None:
        self.zone_id: str | None = None

    def __call__(self, context: dict[str, Any]) -> str | None:
        identifier = context.get("resource_identifier")
        if self.zone_id and getattr(identifier, "service", "") == "route53" and getattr(identifier, "resource", "") == "hosted_zone":
            return self.zone_id
        return None


_pinned = _PinnedIds()
_pinned_installed = False


def _install_pinned_ids() -> None:
    global _pinned_installed
    if not _pinned_installed:
        from moto.utilities.id_generator import moto_id_manager

        moto_id_manager.add_id_source(_pinned)  # type: ignore[arg-type]
        _pinned_installed = True


class Journal:
    """Owns DIR/journal.jsonl and DIR/state.pickle of one emulator."""

    def __init__(self, directory: Path, store: Route53Store, compact_bytes: int = DEFAULT_COMPACT_BYTES):
        self.directory = directory
        self.store = store
        self.compact_bytes = compact_bytes
        self.path = directory / JOURNAL_NAME
        self.state_path = directory / STATE_NAME
        self.write_lock = threading.Lock()
        self._seq = 0
        self._file: io.BufferedWriter | None = None
        self._log = get_logger(component="emulator")

    # -- start ---------------------------------------------------------------------------------

    def recover(self, app: Callable) -> int:
        """Load the state file, replay the journal on top, compact; returns entries replayed."""
        self.directory.mkdir(parents=True, exist_ok=True)
        _install_pinned_ids()
        base_seq = 0
        if self.state_path.exists():
            state_file.load(self.state_path, self.store)
            base_seq = state_file.journal_seq(self.state_path)
        self._seq = base_seq
        replayed = failed = 0
        started = time.monotonic()
        for entry in self._entries():
            if entry.seq <= base_seq:
                continue
            if not self._apply(app, entry):
                failed += 1
            replayed += 1
            self._seq = max(self._seq, entry.seq)
        self._log.info("emulator_journal_replayed", path=str(self.path), entries=replayed, failed=failed,
                       from_journal_seq=base_seq, to_journal_seq=self._seq, seconds=round(time.monotonic() - started, 3))
        if replayed:
            self.compact()
        self._file = open(self.path, "ab")
        return replayed

    def _entries(self) -> Iterator[Entry]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        lines = raw.split(b"\n")
        for number, line in enumerate(lines, start=1):
            if not line:
                continue
            try:
                yield Entry.from_line(line)
            except (ValueError, KeyError, TypeError) as exc:
                last = number == len(lines) or (number == len(lines) - 1 and not lines[-1])
                if last and not raw.endswith(b"\n"):
                    # A torn write from a crash: never fsync'ed, so never acknowledged.
                    self._log.warning("emulator_journal_torn_tail", path=str(self.path), line=number)
                else:
                    self._log.error("emulator_journal_corrupt", path=str(self.path), line=number,
                                    error=f"{type(exc).__name__}: {exc}"[:200], kept_entries_before=True)
                return

    def _apply(self, app: Callable, entry: Entry) -> bool:
        status: list[str] = []
        _pinned.zone_id = entry.zone_id
        if entry.change_id:
            self.store.pin_next_change(entry.change_id, entry.at)
        try:
            body = b"".join(app(entry.environ(), lambda s, h, exc_info=None: status.append(s)))
        finally:
            _pinned.zone_id = None
            self.store.pin_next_change(None)
        ok = bool(status) and status[0][:1] == "2"
        if not ok:
            self._log.error("emulator_journal_entry_failed", journal_seq=entry.seq, method=entry.method, path=entry.path,
                            status=status[0] if status else None, reply=body[:300].decode(errors="replace"))
        return ok

    # -- serving -------------------------------------------------------------------------------

    def append(self, environ: dict[str, Any], body: bytes, reply: bytes) -> None:
        """Journal one accepted request and fsync; the caller holds write_lock."""
        assert self._file is not None, "recover() first"
        headers = {k: v for k, v in environ.items() if k in _KEEP_HEADERS or k.startswith("HTTP_X_AMZ_")}
        headers.pop("HTTP_X_AMZ_SECURITY_TOKEN", None)
        if environ.get("CONTENT_TYPE"):
            headers["CONTENT_TYPE"] = environ["CONTENT_TYPE"]
        auth = _auth_without_signature(environ.get("HTTP_AUTHORIZATION", ""))
        if auth:
            headers["HTTP_AUTHORIZATION"] = auth
        zone = _ZONE_ID.search(reply)
        change = _CHANGE_ID.search(reply)
        self._seq += 1
        entry = Entry(
            seq=self._seq, at=time.time(), method=environ["REQUEST_METHOD"], path=environ.get("PATH_INFO", ""),
            query=environ.get("QUERY_STRING", ""), headers=headers, body=body,
            zone_id=zone.group(1).decode() if zone else None,
            change_id=change.group(1).decode() if change else None,
        )
        if entry.change_id:
            # Replay pins the change's own submission time, so PENDING/INSYNC keep their timeline.
            try:
                entry = Entry(**{**entry.__dict__, "at": self.store.get_change(entry.change_id).submitted_at})
            except Exception:  # noqa: BLE001 - the id came from our own reply; keep the journal's time if not
                pass
        started = time.monotonic()
        self._file.write(entry.to_line())
        self._file.flush()
        os.fsync(self._file.fileno())
        FSYNC_SECONDS.observe(time.monotonic() - started)
        JOURNALED.inc()
        if self._file.tell() >= self.compact_bytes:
            self.compact()

    def compact(self) -> None:
        """Fold the journal into the state file, then empty it (caller holds write_lock, or none serves)."""
        state_file.save(self.state_path, self.store, journal_seq=self._seq)
        if self._file is not None:
            self._file.close()
        with open(self.path, "wb") as f:
            f.flush()
            os.fsync(f.fileno())
        self._file = open(self.path, "ab")
        self._log.info("emulator_journal_compacted", path=str(self.path), journal_seq=self._seq)

    def close(self) -> None:
        with self.write_lock:
            self.compact()
            if self._file is not None:
                self._file.close()
                self._file = None


class JournalWsgi:
    """WSGI middleware: mutating requests run one at a time and are journaled before the reply."""

    def __init__(self, app: Callable, journal: Journal):
        self.app = app
        self.journal = journal

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") not in MUTATING or (path.startswith("/moto-api/") and path != RESET_PATH):
            return self.app(environ, start_response)
        body = read_body(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        captured: list[tuple[str, list, Any]] = []

        def capture(status: str, headers: list, exc_info: Any = None) -> Callable[[bytes], None]:
            captured.append((status, headers, exc_info))
            return lambda _data: None

        with self.journal.write_lock:
            result = self.app(environ, capture)
            try:
                reply = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            status, headers, exc_info = captured[-1]
            if status[:1] == "2":
                try:
                    self.journal.append(environ, body, reply)
                except OSError as exc:
                    # Applied in memory but not durable: the client must not take it as acknowledged.
                    self.journal._log.error("emulator_journal_write_failed", error=f"{type(exc).__name__}: {exc}"[:300])
                    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
                    return [b"the emulator could not journal this change; retry"]
        start_response(status, headers, exc_info)
        return [reply]
