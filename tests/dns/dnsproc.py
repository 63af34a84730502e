"""A real `dnsctl dns` process for tests, and small helpers to ask it questions over UDP/TCP."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from tests.processes import ManagedProcess, free_port_udp_tcp

T = TypeVar("T")
# Tests read Route 53 faster than the default 5 requests/s; the emulator has no account limit.
FAST_ROUTE53 = {"DNSCTL_ROUTE53_RPS": "50", "DNSCTL_ROUTE53_BURST": "50"}


class DnsProcess:
    def __init__(self, process: ManagedProcess, port: int):
        self.process = process
        self.port = port
        self.host = "127.0.0.1"

    def query(self, name: str, rtype: str = "A", *, tcp: bool = False, timeout: float = 2.0) -> dns.message.Message:
        q = dns.message.make_query(name, dns.rdatatype.from_text(rtype))
        if tcp:
            return dns.query.tcp(q, self.host, port=self.port, timeout=timeout)
        return dns.query.udp(q, self.host, port=self.port, timeout=timeout)

    def addresses(self, name: str, rtype: str = "A") -> list[str]:
        return sorted(r.to_text() for rrset in self.query(name, rtype).answer for r in rrset)

    def stop(self) -> None:
        self.process.stop()


def wait_for(predicate: Callable[[], T], timeout_s: float, what: str, interval_s: float = 0.05) -> T:
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except Exception as exc:  # noqa: BLE001 - keep polling; report the last failure
            last = exc
        time.sleep(interval_s)
    raise TimeoutError(f"timed out after {timeout_s}s waiting for {what} (last: {last!r})")


def start_dns(log_dir: Path, *args: str, zone: str | None = None, name: str = "dns", env: dict | None = None) -> DnsProcess:
    """Start `dnsctl dns` on a free port; with `zone`, wait until that zone is being served."""
    port = free_port_udp_tcp()
    proc = ManagedProcess(name, ["dns", "--host", "127.0.0.1", "--port", str(port), *args], {**FAST_ROUTE53, **(env or {})}, log_dir)
    server = DnsProcess(proc, port)

    def serving() -> bool:
        if proc.proc.poll() is not None:
            raise RuntimeError(f"dns exited with {proc.proc.returncode}:\n{proc.output()[-3000:]}")
        reply = server.query(zone or "probe.invalid.", "SOA", timeout=0.5)
        return reply.rcode() == dns.rcode.NOERROR if zone else True

    try:
        wait_for(serving, 30, f"dns server on {port} to serve {zone}")
    except Exception:
        proc.stop()
        raise
    return server
