"""A DNS load generator: many UDP queries over one socket with a window of queries in flight.

Queries are encoded once and only their 16-bit id is patched per send, so the generator costs
far less than the server it measures; several generator processes (`run_processes`) load a
server from outside its own process, as real clients would. Used by benchmarks/dns_bench.py and
by the weighted-share tests (which need thousands of real answers in a few seconds).
"""

from __future__ import annotations

import multiprocessing
import select
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dns.message
import dns.rdatatype


def encode_query(name: str, rtype: str = "A") -> bytes:
    return dns.message.make_query(name, dns.rdatatype.from_text(rtype), use_edns=0, payload=1232).to_wire()


@dataclass(frozen=True)
class LoadResult:
    sent: int
    received: int
    lost: int
    elapsed_s: float

    @property
    def qps(self) -> float:
        return self.received / self.elapsed_s if self.elapsed_s > 0 else 0.0


def run_udp(
    host: str,
    port: int,
    queries: Sequence[bytes],
    count: int,
    *,
    window: int = 64,
    timeout_s: float = 1.0,
    on_response: Callable[[bytes], None] | None = None,
    deadline_s: float | None = None,
) -> LoadResult:
    """Send `count` queries (cycling through `queries`), keeping up to `window` unanswered.

    A query unanswered for `timeout_s` is counted lost. Stops early at `deadline_s` seconds.
    """
    if not 0 < window < 65536:
        raise ValueError("window must be between 1 and 65535")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.connect((host, port))
    sock.setblocking(False)
    inflight: dict[int, float] = {}
    sent = received = lost = 0
    started = time.monotonic()
    stop_at = started + deadline_s if deadline_s else None
    try:
        while sent < count or inflight:
            now = time.monotonic()
            if stop_at is not None and now >= stop_at:
                lost += len(inflight)
                break
            while sent < count and len(inflight) < window:
                qid = sent & 0xFFFF
                if qid in inflight:
                    break
                template = queries[sent % len(queries)]
                try:
                    sock.send(qid.to_bytes(2, "big") + template[2:])
                except BlockingIOError:
                    break
                inflight[qid] = now
                sent += 1
            ready, _, _ = select.select([sock], [], [], 0.05)
            if ready:
                while True:
                    try:
                        data = sock.recv(65535)
                    except (BlockingIOError, ConnectionRefusedError):
                        break
                    qid = int.from_bytes(data[:2], "big") if len(data) >= 2 else -1
                    if inflight.pop(qid, None) is not None:
                        received += 1
                        if on_response is not None:
                            on_response(data)
            expired = [q for q, t in inflight.items() if now - t > timeout_s]
            for q in expired:
                del inflight[q]
                lost += 1
    finally:
        sock.close()
    return LoadResult(sent, received, lost, time.monotonic() - started)


def _worker(args: tuple[str, int, list[bytes], int, int, float], results) -> None:
    host, port, queries, count, window, deadline_s = args
    results.put(run_udp(host, port, queries, count, window=window, deadline_s=deadline_s))


def run_processes(
    host: str, port: int, queries: Sequence[bytes], count_per_process: int, processes: int, *, window: int = 64,
    deadline_s: float = 60.0,
) -> tuple[LoadResult, list[LoadResult]]:
    """Load the server from `processes` separate generator processes; returns (total, each)."""
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=((host, port, list(queries), count_per_process, window, deadline_s), results))
        for _ in range(processes)
    ]
    started = time.monotonic()
    for p in procs:
        p.start()
    each = [results.get(timeout=deadline_s + 30) for _ in procs]
    for p in procs:
        p.join(timeout=10)
    wall = time.monotonic() - started
    # Wall time includes process start-up; the workers' own windows are the fairer rate, so the
    # total uses the slowest worker's elapsed time (they run side by side).
    elapsed = max(r.elapsed_s for r in each) if each else wall
    total = LoadResult(sum(r.sent for r in each), sum(r.received for r in each), sum(r.lost for r in each), elapsed)
    return total, each
