"""The DNS server: UDP and TCP on one port, dnspython for the wire format.

It serves every hosted zone in Route 53 from a snapshot (authoritative mode), or sits in front
of another DNS server as a caching resolver (`--cache --upstream HOST:PORT`). Either way the
wire handling is the same and is built to survive anything a network can send: packets too short
for a header are dropped, responses (QR set) are never answered (no reflection loops), packets
that do not parse get FORMERR, other opcodes NOTIMP, other classes and zone transfers REFUSED,
and an answer too big for UDP is sent truncated (TC) so the client retries over TCP. Bad record
values in Route 53 are skipped and counted; nothing a query or a record holds stops the server.

Until the first snapshot is read the server answers SERVFAIL, not REFUSED: "I do not know yet"
is not "not my zone".
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import random
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from prometheus_client import Counter, start_http_server

from services.aws_clients import route53_client
from services.dns import answer
from services.dns.cache import CachingResponder
from services.dns.snapshot import DEFAULT_LIST_INTERVAL_S, DEFAULT_REFRESH_S, Snapshot, SnapshotRefresher
from services.logs import get_logger

UDP_PAYLOAD = 1232  # the EDNS buffer size DNS flag day 2020 settled on
# TCP limits (RFC 7766 section 6.2: servers should limit connections per client and close idle
# ones). A client gets at most MAX_TCP_PER_CLIENT connections; when the server as a whole is
# full, a new connection takes the place of an idle one of the client holding the most, so one
# client holding many idle connections can never shut others out.
TCP_IDLE_S = 10.0  # between queries on one connection
TCP_READ_S = 5.0  # to receive the rest of a query once its length has arrived
MAX_TCP_CONNECTIONS = 1024
MAX_TCP_PER_CLIENT = 32
MEMO_ENTRIES = 16_384  # parsed queries and rendered replies kept for reuse
MAX_PENDING = 4096  # asynchronous answers (cache misses) in flight before new ones are dropped

QUERIES = Counter("dnsctl_dns_queries_total", "Queries answered", ["transport", "rcode"])
MALFORMED = Counter("dnsctl_dns_malformed_total", "Packets that were not a usable query", ["transport", "reason"])
BAD_VALUES = Counter("dnsctl_dns_bad_record_values_total", "Record values in Route 53 that are not valid rdata (skipped)")
TCP_REFUSED = Counter("dnsctl_dns_tcp_refused_total", "TCP connections refused at accept", ["reason"])
TCP_EVICTED = Counter("dnsctl_dns_tcp_evicted_total", "Idle TCP connections closed to make room for a new client")
RESPONDER_ERRORS = Counter("dnsctl_dns_responder_errors_total", "Queries whose answer failed (SERVFAIL sent)")

_RCODE_TEXT = {int(r): r.name for r in dns.rcode.Rcode if int(r) < 16}

Responder = Callable[[dns.message.Message], "dns.message.Message | Awaitable[dns.message.Message]"]


@dataclass(frozen=True)
class DnsSettings:
    host: str = "127.0.0.1"
    port: int = 8053
    refresh_s: float = DEFAULT_REFRESH_S
    list_interval_s: float = DEFAULT_LIST_INTERVAL_S
    zones: tuple[str, ...] = ()  # serve only these zones (and zones below them); empty = all
    cache: bool = False
    upstream: tuple[str, int] | None = None
    metrics_port: int = 0  # 0 = no metrics endpoint


# ---------------------------------------------------------------------------------------------
# Authoritative answers: answer.py's result in dnspython's terms


@lru_cache(maxsize=65_536)
def _rdata(rdtype: int, value: str) -> dns.rdata.Rdata:
    return dns.rdata.from_text(dns.rdataclass.IN, rdtype, value, origin=dns.name.root, relativize=False)


@lru_cache(maxsize=65_536)
def _name(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


Decision = tuple[answer.Rcode, tuple[answer.Rr, ...], tuple[answer.Rr, ...], bool]
_NOT_LOADED: Decision = (answer.Rcode.SERVFAIL, (), (), False)


class AuthoritativeResponder:
    """Answers from the latest Route 53 snapshot, exactly as answer.resolve says."""

    def __init__(self, snapshot: Callable[[], Snapshot | None], rng: answer.RandomSource | None = None):
        self._snapshot = snapshot
        self._rng = rng or random.Random()
        self._bad_logged: set[tuple[int, str]] = set()
        self._log = get_logger(component="dns")

    def __call__(self, query: dns.message.Message) -> dns.message.Message:
        return self.build(query, self.decide(query))

    def decide(self, query: dns.message.Message) -> Decision:
        """What to answer, as a hashable value: equal decisions render to equal bytes."""
        snap = self._snapshot()
        if snap is None:
            return _NOT_LOADED
        q = query.question[0]
        result = answer.resolve(snap, q.name.to_text(), dns.rdatatype.to_text(q.rdtype), self._rng)
        return (result.rcode, result.answers, result.authority, result.authoritative)

    def build(self, query: dns.message.Message, decision: Decision) -> dns.message.Message:
        rcode, answers, authority, authoritative = decision
        response = dns.message.make_response(query, our_payload=UDP_PAYLOAD)
        response.set_rcode(dns.rcode.Rcode(int(rcode)))
        if authoritative:
            response.flags |= dns.flags.AA
        q = query.question[0]
        qname_text = q.name.to_text().lower()
        self._add(response, response.answer, answers, q.name, qname_text)
        self._add(response, response.authority, authority, q.name, qname_text)
        return response

    def _add(self, response, section, records, qname: dns.name.Name, qname_text: str) -> None:
        for rr in records:
            rdtype = dns.rdatatype.from_text(rr.type)
            try:
                rdata = _rdata(rdtype, rr.value)
            except (dns.exception.DNSException, ValueError, UnicodeError) as exc:
                BAD_VALUES.inc()
                if (rdtype, rr.value) not in self._bad_logged and len(self._bad_logged) < 1000:
                    self._bad_logged.add((rdtype, rr.value))
                    self._log.warning("record_value_invalid", name=rr.name, type=rr.type, value=rr.value[:200], error=str(exc))
                continue
            owner = qname if rr.name == qname_text else _name(rr.name)
            rrset = response.find_rrset(section, owner, dns.rdataclass.IN, rdtype, create=True)
            rrset.add(rdata, rr.ttl)


# ---------------------------------------------------------------------------------------------
# Wire handling, shared by UDP and TCP


def _header_reply(data: bytes, rcode: int) -> bytes:
    """A bare reply built from the request header alone, for packets dnspython cannot parse."""
    flags = int.from_bytes(data[2:4], "big")
    opcode_and_rd = flags & 0x7900  # keep OPCODE and RD
    return data[0:2] + (0x8000 | opcode_and_rd | rcode).to_bytes(2, "big") + bytes(8)


class WireHandler:
    """Bytes in, bytes out.

    Parsing and rendering with dnspython cost far more than answering, and clients repeat the
    same questions, so both are memoised: a query's bytes after its id map to the parsed query,
    and (query bytes, decision) map to the rendered reply, whose id is then patched. A responder
    that offers `decide`/`build` gets this fast path; others are called per query. The memo
    tables are bounded and simply emptied when full.
    """

    def __init__(self, responder: Responder):
        self.responder = responder
        self._decide = getattr(responder, "decide", None)
        self._build = getattr(responder, "build", None)
        self._parsed: dict[bytes, tuple[dns.message.Message, int | None]] = {}
        self._rendered: dict[tuple[str, bytes, object], bytes] = {}
        self._log = get_logger(component="dns")
        self._reasons_logged: set[str] = set()

    def _malformed(self, transport: str, reason: str, detail: str = "") -> None:
        MALFORMED.labels(transport, reason).inc()
        if reason not in self._reasons_logged:
            # One event per kind of bad packet; the counter carries the rest.
            self._reasons_logged.add(reason)
            self._log.warning("query_malformed", transport=transport, reason=reason, detail=detail[:200])

    def handle(self, data: bytes, transport: str) -> bytes | None | Awaitable[bytes | None]:
        """The reply to one packet: bytes, None (send nothing), or an awaitable of either."""
        if len(data) < 12:
            self._malformed(transport, "short")
            return None
        if data[2] & 0x80:
            self._malformed(transport, "response")
            return None
        body = data[2:]
        parsed = self._parsed.get(body)
        if parsed is None:
            try:
                query = dns.message.from_wire(data)
            except dns.message.ShortHeader:
                self._malformed(transport, "short")
                return None
            except Exception as exc:  # noqa: BLE001 - every parse failure is the sender's problem
                self._malformed(transport, "unparseable", f"{type(exc).__name__}: {exc}")
                QUERIES.labels(transport, "FORMERR").inc()
                return _header_reply(data, dns.rcode.FORMERR)
            parsed = (query, self._refusal(query))
            if len(self._parsed) >= MEMO_ENTRIES:
                self._parsed.clear()
            self._parsed[body] = parsed
        query, refusal = parsed
        if refusal is None and self._decide is not None and self._build is not None:
            return self._fast(data, body, query, transport)
        query = _with_id(query, data)
        if refusal is not None:
            response = dns.message.make_response(query, our_payload=UDP_PAYLOAD)
            response.set_rcode(refusal)
            return self._render(query, response, transport)
        try:
            result = self.responder(query)
        except Exception as exc:  # noqa: BLE001
            return self._failed(query, exc, transport)
        if inspect.isawaitable(result):
            return self._finish(query, result, transport)
        return self._render(query, result, transport)

    def _fast(self, data: bytes, body: bytes, query: dns.message.Message, transport: str) -> bytes | None:
        try:
            decision = self._decide(query)
        except Exception as exc:  # noqa: BLE001
            return self._failed(_with_id(query, data), exc, transport)
        key = (transport, body, decision)  # UDP replies may be truncated, TCP ones never
        wire = self._rendered.get(key)
        if wire is None:
            try:
                response = self._build(query, decision)
            except Exception as exc:  # noqa: BLE001
                return self._failed(_with_id(query, data), exc, transport)
            wire = self._render(query, response, transport, count=False)
            if wire is None:
                return None
            if len(self._rendered) >= MEMO_ENTRIES:
                self._rendered.clear()
            self._rendered[key] = wire
        QUERIES.labels(transport, _RCODE_TEXT.get(wire[3] & 0x0F, "OTHER")).inc()
        return data[:2] + wire[2:]

    async def _finish(self, query, pending, transport: str) -> bytes | None:
        try:
            response = await pending
        except Exception as exc:  # noqa: BLE001
            return self._failed(query, exc, transport)
        return self._render(query, response, transport)

    def _failed(self, query: dns.message.Message, exc: BaseException, transport: str) -> bytes | None:
        RESPONDER_ERRORS.inc()
        if "responder" not in self._reasons_logged:
            self._reasons_logged.add("responder")
            self._log.error("query_failed", error=f"{type(exc).__name__}: {exc}"[:300])
        response = dns.message.make_response(query, our_payload=UDP_PAYLOAD)
        response.set_rcode(dns.rcode.SERVFAIL)
        return self._render(query, response, transport)

    @staticmethod
    def _refusal(query: dns.message.Message) -> int | None:
        if query.opcode() != dns.opcode.QUERY:
            return dns.rcode.NOTIMP
        if len(query.question) != 1:
            return dns.rcode.FORMERR
        q = query.question[0]
        if q.rdclass != dns.rdataclass.IN:
            return dns.rcode.REFUSED
        if q.rdtype in (dns.rdatatype.AXFR, dns.rdatatype.IXFR):
            return dns.rcode.REFUSED  # no zone transfers: Route 53 offers none either
        return None

    def _render(self, query: dns.message.Message, response: dns.message.Message, transport: str,
                count: bool = True) -> bytes | None:
        if transport == "udp":
            limit = max(512, min(query.payload, UDP_PAYLOAD)) if query.edns >= 0 else 512
        else:
            limit = 65535
        try:
            wire = response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            truncated = dns.message.make_response(query, our_payload=UDP_PAYLOAD)
            truncated.set_rcode(response.rcode())
            truncated.flags |= dns.flags.TC | (response.flags & dns.flags.AA)
            wire = truncated.to_wire()
        except Exception as exc:  # noqa: BLE001 - e.g. a record dnspython cannot render
            RESPONDER_ERRORS.inc()
            if "render" not in self._reasons_logged:
                self._reasons_logged.add("render")
                self._log.error("response_render_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            failed = dns.message.make_response(query, our_payload=UDP_PAYLOAD)
            failed.set_rcode(dns.rcode.SERVFAIL)
            wire = failed.to_wire()
        if count:
            QUERIES.labels(transport, dns.rcode.to_text(response.rcode())).inc()
        return wire


def _with_id(query: dns.message.Message, data: bytes) -> dns.message.Message:
    """The memoised query carries the id of the packet it was parsed from; give it this one's."""
    qid = int.from_bytes(data[:2], "big")
    if query.id != qid:
        query = copy.copy(query)
        query.id = qid
    return query


# ---------------------------------------------------------------------------------------------
# Transports


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, handler: WireHandler):
        self.handler = handler
        self.transport: asyncio.DatagramTransport | None = None
        self.pending = 0

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        try:
            reply = self.handler.handle(data, "udp")
        except Exception:  # noqa: BLE001 - the last line of defence: never let a packet kill the loop
            MALFORMED.labels("udp", "handler_error").inc()
            return
        if reply is None:
            return
        if isinstance(reply, bytes):
            self._send(reply, addr)
            return
        if self.pending >= MAX_PENDING:
            MALFORMED.labels("udp", "overloaded").inc()
            return
        self.pending += 1
        task = asyncio.ensure_future(reply)
        task.add_done_callback(lambda t: self._done(t, addr))

    def _done(self, task: asyncio.Future, addr) -> None:
        self.pending -= 1
        if not task.cancelled() and task.exception() is None and task.result() is not None:
            self._send(task.result(), addr)

    def _send(self, reply: bytes, addr) -> None:
        if self.transport is not None:
            try:
                self.transport.sendto(reply, addr)
            except OSError:
                MALFORMED.labels("udp", "send_failed").inc()

    def error_received(self, exc: Exception) -> None:
        # ICMP errors from clients that went away; nothing to do but carry on.
        pass


class DnsServer:
    """UDP and TCP listeners on one host:port, answering through `responder`."""

    def __init__(self, responder: Responder, host: str, port: int, max_tcp: int = MAX_TCP_CONNECTIONS,
                 max_tcp_per_client: int = MAX_TCP_PER_CLIENT, tcp_idle_s: float = TCP_IDLE_S):
        self.handler = WireHandler(responder)
        self.host, self.port = host, port
        self.max_tcp, self.max_tcp_per_client, self.tcp_idle_s = max_tcp, max_tcp_per_client, tcp_idle_s
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.base_events.Server | None = None
        self._tcp_open = 0
        self._per_client: dict[str, int] = {}
        self._idle: dict[str, set[asyncio.StreamWriter]] = {}  # connections waiting for their next query

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self.handler), local_addr=(self.host, self.port))
        self._tcp = await asyncio.start_server(self._tcp_client, self.host, self.port, reuse_address=True)

    def _admit(self, client: str) -> bool:
        """Room for one more connection from `client`? May close another client's idle connection."""
        if self._per_client.get(client, 0) >= self.max_tcp_per_client:
            TCP_REFUSED.labels("per_client_limit").inc()
            return False
        if self._tcp_open >= self.max_tcp:
            # Full: take an idle connection from whoever holds the most connections.
            heaviest = max((c for c in self._idle if self._idle[c]), key=lambda c: self._per_client.get(c, 0), default=None)
            if heaviest is None:
                TCP_REFUSED.labels("server_full").inc()
                return False
            victim = self._idle[heaviest].pop()
            victim.close()
            TCP_EVICTED.inc()
        return True

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        client = peer[0] if isinstance(peer, tuple) and peer else "?"
        if not self._admit(client):
            writer.close()
            return
        self._tcp_open += 1
        self._per_client[client] = self._per_client.get(client, 0) + 1
        idle = self._idle.setdefault(client, set())
        try:
            while True:
                idle.add(writer)
                try:
                    head = await asyncio.wait_for(reader.readexactly(2), self.tcp_idle_s)
                finally:
                    idle.discard(writer)
                size = int.from_bytes(head, "big")
                if size == 0:
                    break
                data = await asyncio.wait_for(reader.readexactly(size), TCP_READ_S)
                reply = self.handler.handle(data, "tcp")
                if inspect.isawaitable(reply):
                    reply = await reply
                if reply is None:
                    break  # not a query: a stream that carries garbage is not worth keeping
                writer.write(len(reply).to_bytes(2, "big") + reply)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except Exception:  # noqa: BLE001 - one connection's trouble never reaches the others
            MALFORMED.labels("tcp", "handler_error").inc()
        finally:
            self._tcp_open -= 1
            self._per_client[client] -= 1
            if not self._per_client[client]:
                del self._per_client[client]
                self._idle.pop(client, None)
            writer.close()

    def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()


# ---------------------------------------------------------------------------------------------
# The process


def serve(settings: DnsSettings) -> None:
    """Run the DNS server until SIGTERM/SIGINT."""
    log = get_logger(component="dns")
    refresher: SnapshotRefresher | None = None
    if settings.cache:
        if settings.upstream is None:
            raise ValueError("--cache needs --upstream HOST:PORT")
        responder: Responder = CachingResponder(*settings.upstream)
    else:
        refresher = SnapshotRefresher(
            route53_client, interval_s=settings.refresh_s, only=settings.zones, list_interval_s=settings.list_interval_s
        ).start()
        responder = AuthoritativeResponder(lambda: refresher.current)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.host)

    async def main() -> None:
        server = DnsServer(responder, settings.host, settings.port)
        await server.start()
        log.info(
            "dns_serving",
            host=settings.host,
            port=settings.port,
            mode="cache" if settings.cache else "authoritative",
            upstream=f"{settings.upstream[0]}:{settings.upstream[1]}" if settings.upstream else None,
            refresh_ms=int(settings.refresh_s * 1000),
            zones=list(settings.zones) or "all",
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        server.close()
        log.info("dns_stopped")

    try:
        asyncio.run(main())
    finally:
        if refresher is not None:
            refresher.stop()
