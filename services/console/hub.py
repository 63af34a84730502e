"""Fan-out of the console's live messages to every open page (server-sent events).

The pollers run in threads and publish each message once; every SSE client has a bounded
queue of its own in the server's event loop, so a thousand browsers cost a thousand queue puts,
never a thousand Route 53 reads. A client that stops reading loses its oldest messages, not
the server's memory. The newest message of each kind is kept, so a page that connects gets
the whole picture at once instead of waiting for the next change.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from prometheus_client import Gauge

CLIENTS = Gauge("dnsctl_console_sse_clients", "Server-sent-event streams open right now")
QUEUE_LIMIT = 64
# Kinds whose newest message replaces the previous one (a page needs only the last); others
# ("events") are deltas and are replayed from a short backlog.
REPLACING = ("state", "timeline", "race", "chaos")
BACKLOG = 200


class Hub:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: set[asyncio.Queue] = set()
        self._latest: dict[str, str] = {}
        self._backlog: list[str] = []
        self._lock = threading.Lock()
        self._seq = 0  # every published message's number: a new page skips what it got at subscribe
        self._since: dict[int, int] = {}  # id(queue) -> the last message number it got at subscribe

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    @property
    def clients(self) -> int:
        return len(self._clients)

    def latest(self, kind: str) -> Any:
        with self._lock:
            text = self._latest.get(kind)
        return json.loads(text) if text is not None else None

    def publish(self, kind: str, data: Any) -> None:
        """Thread-safe: encode once, hand the text to every client's queue in the event loop."""
        text = json.dumps(data, separators=(",", ":"), default=str)
        with self._lock:
            self._seq += 1
            seq = self._seq
            if kind in REPLACING:
                self._latest[kind] = text
            else:
                self._backlog = (self._backlog + [text])[-BACKLOG:]
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._fan_out, kind, text, seq)

    def _fan_out(self, kind: str, text: str, seq: int) -> None:
        for queue in list(self._clients):
            if self._since.get(id(queue), 0) >= seq:
                continue  # published before this page subscribed: it got it (or newer) then
            if queue.full():
                queue.get_nowait()  # a slow page loses its oldest message
            queue.put_nowait((kind, text))

    def subscribe(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(QUEUE_LIMIT + BACKLOG + len(REPLACING))
        with self._lock:
            for kind, text in self._latest.items():
                queue.put_nowait((kind, text))
            if self._backlog:
                queue.put_nowait(("backlog", "[" + ",".join(self._backlog) + "]"))
            self._since[id(queue)] = self._seq
        self._clients.add(queue)
        CLIENTS.set(len(self._clients))
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self._clients.discard(queue)
        self._since.pop(id(queue), None)
        CLIENTS.set(len(self._clients))
