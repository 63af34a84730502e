"""A caching resolver in front of the authoritative server, to show negative caching at work.

On 20 October Route 53 was repaired at 9:25 UTC, but customers saw DynamoDB's name again only
between 9:25 and 9:40: resolvers kept serving the cached empty answer. This cache behaves like
such a resolver: a positive answer lives for the smallest TTL of its records; a negative answer
(NXDOMAIN, or NOERROR with no records) lives for the negative-caching TTL of the SOA in its
authority section, min(SOA TTL, SOA MINIMUM) (RFC 2308), and is not cached at all without an
SOA. Served records count their TTLs down. Failures upstream are never cached.

CNAME chains are followed as a recursive resolver follows them: an authoritative answer that ends
in a CNAME whose target is in another zone (Route 53 gives the target's records only when it is
in the same hosted zone) is chased by asking for the target, through this same cache, until the
chain ends in records of the asked type or in a negative answer. The client gets the whole chain;
each name is cached on its own TTL (`<account>.ddb...` CNAME and the cell's addresses age apart),
and a negative answer at the end of a chain carries the SOA of the target's zone, so negative
caching shows through a CNAME too.

`ResolverCache` is pure (the clock is passed in); `CachingResponder` does the upstream I/O.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from prometheus_client import Counter

from services.logs import get_logger

CACHE_LOOKUPS = Counter("dnsctl_cache_lookups_total", "Cache lookups by outcome", ["outcome"])
UPSTREAM_FAILURES = Counter("dnsctl_cache_upstream_failures_total", "Upstream queries that failed", ["reason"])

CacheKey = tuple[str, int, int]  # (lower-case qname, rdtype, rdclass)
MAX_CNAME_CHAIN = 8  # hops before a chain is a loop (SERVFAIL)


def chase_target(response: dns.message.Message, qname: dns.name.Name, rdtype: int) -> dns.name.Name | None:
    """The name still to ask for when `response` ends in a CNAME without the asked type, else None."""
    if rdtype in (dns.rdatatype.CNAME, dns.rdatatype.ANY) or response.rcode() != dns.rcode.NOERROR:
        return None
    owned = {(r.name, r.rdtype): r for r in response.answer}
    current, seen = qname, {qname}
    while (cname := owned.get((current, dns.rdatatype.CNAME))) is not None and len(cname):
        current = cname[0].target
        if current in seen:
            return None  # a loop inside one answer: nothing to chase
        seen.add(current)
    if current == qname or (current, rdtype) in owned:
        return None
    return current


def key_of(query: dns.message.Message) -> CacheKey:
    q = query.question[0]
    return (q.name.to_text().lower(), int(q.rdtype), int(q.rdclass))


@dataclass(frozen=True, slots=True)
class CacheEntry:
    rcode: int
    answer: tuple[dns.rrset.RRset, ...]
    authority: tuple[dns.rrset.RRset, ...]
    stored_at: float
    ttl: int
    negative: bool

    @property
    def expires_at(self) -> float:
        return self.stored_at + self.ttl


def cacheable_ttl(response: dns.message.Message) -> tuple[int, bool] | None:
    """(ttl, negative) for a response a resolver may cache, or None."""
    rcode = response.rcode()
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN) or response.flags & dns.flags.TC:
        return None
    answers = [r for r in response.answer]
    if rcode == dns.rcode.NOERROR and answers:
        return min(r.ttl for r in answers), False
    soas = [r for r in response.authority if r.rdtype == dns.rdatatype.SOA]
    if not soas or not len(soas[0]):
        return None  # RFC 2308: no SOA, no negative caching
    soa = soas[0]
    return min(soa.ttl, soa[0].minimum), True


class ResolverCache:
    """Answers by key with their expiry; the oldest entry goes first when full."""

    def __init__(self, *, max_entries: int = 10_000, max_ttl: int = 86_400, max_negative_ttl: int = 10_800):
        self.max_entries = max_entries
        self.max_ttl = max_ttl
        self.max_negative_ttl = max_negative_ttl
        self._entries: OrderedDict[CacheKey, CacheEntry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: CacheKey, now: float) -> CacheEntry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now >= entry.expires_at:
            del self._entries[key]
            return None
        return entry

    def store(self, key: CacheKey, response: dns.message.Message, now: float) -> CacheEntry | None:
        found = cacheable_ttl(response)
        if found is None:
            return None
        ttl, negative = found
        ttl = min(ttl, self.max_negative_ttl if negative else self.max_ttl)
        if ttl <= 0:
            return None
        entry = CacheEntry(
            rcode=response.rcode(),
            answer=tuple(response.answer),
            authority=tuple(response.authority) if negative else (),
            stored_at=now,
            ttl=ttl,
            negative=negative,
        )
        self._entries.pop(key, None)
        self._entries[key] = entry
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return entry


def _aged(rrsets: tuple[dns.rrset.RRset, ...], elapsed: int, cap: int | None = None) -> list[dns.rrset.RRset]:
    out = []
    for rrset in rrsets:
        copy = rrset.copy()
        ttl = max(0, rrset.ttl - elapsed)
        copy.ttl = min(ttl, cap) if cap is not None else ttl
        out.append(copy)
    return out


def response_from_entry(query: dns.message.Message, entry: CacheEntry, now: float) -> dns.message.Message:
    """The cached answer to `query`, with TTLs counted down to what is left."""
    response = dns.message.make_response(query, our_payload=1232)
    response.flags |= dns.flags.RA
    response.set_rcode(entry.rcode)
    elapsed = int(now - entry.stored_at)
    remaining = max(0, entry.ttl - elapsed)
    response.answer = _aged(entry.answer, elapsed)
    # The SOA of a negative answer tells the client how long the absence may still be believed.
    response.authority = _aged(entry.authority, elapsed, cap=remaining) if entry.negative else []
    return response


class CachingResponder:
    """Serves from the cache; on a miss asks the upstream server (UDP, TCP when truncated)."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        *,
        cache: ResolverCache | None = None,
        timeout_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.upstream = (upstream_host, upstream_port)
        self.cache = cache or ResolverCache()
        self.timeout_s = timeout_s
        self.clock = clock
        self._inflight: dict[CacheKey, asyncio.Future[dns.message.Message]] = {}
        self._log = get_logger(component="cache")

    def __call__(self, query: dns.message.Message):
        key = key_of(query)
        entry = self.cache.lookup(key, self.clock())
        if entry is not None:
            CACHE_LOOKUPS.labels("negative_hit" if entry.negative else "hit").inc()
            response = response_from_entry(query, entry, self.clock())
            if chase_target(response, query.question[0].name, query.question[0].rdtype) is None:
                return response
            return self._follow(query, response)
        CACHE_LOOKUPS.labels("miss").inc()
        return self._resolve(query, key)

    async def _resolve(self, query: dns.message.Message, key: CacheKey) -> dns.message.Message:
        return await self._follow(query, await self._miss(query, key))

    async def _follow(self, query: dns.message.Message, response: dns.message.Message) -> dns.message.Message:
        """`response` with its CNAME chain chased to the end (each hop through the cache)."""
        q = query.question[0]
        chain = list(response.answer)
        current, last = q.name, response
        for _ in range(MAX_CNAME_CHAIN):
            target = chase_target(last, current, q.rdtype)
            if target is None:
                break
            hop = dns.message.make_query(target, q.rdtype, q.rdclass)
            got = self(hop)
            last = await got if asyncio.iscoroutine(got) else got
            chain += [r for r in last.answer if r not in chain]
            current = target
        else:
            last = dns.message.make_response(query)
            last.set_rcode(dns.rcode.SERVFAIL)
            chain = []
        out = dns.message.make_response(query, our_payload=1232)
        out.flags |= dns.flags.RA
        out.set_rcode(last.rcode())
        out.answer = chain
        out.authority = list(last.authority)  # the SOA of a negative end, in the zone that said it
        return out

    async def _miss(self, query: dns.message.Message, key: CacheKey) -> dns.message.Message:
        pending = self._inflight.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._ask_upstream(query))
            self._inflight[key] = pending
            pending.add_done_callback(lambda _f: self._inflight.pop(key, None))
        try:
            upstream = await asyncio.shield(pending)
        except (TimeoutError, dns.exception.DNSException, OSError) as exc:
            UPSTREAM_FAILURES.labels(type(exc).__name__).inc()
            failed = dns.message.make_response(query, our_payload=1232)
            failed.flags |= dns.flags.RA
            failed.set_rcode(dns.rcode.SERVFAIL)
            return failed
        entry = self.cache.lookup(key, self.clock())
        if entry is None:
            entry = self.cache.store(key, upstream, self.clock())
            if entry is not None and entry.negative:
                q = query.question[0]
                self._log.info(
                    "cache_negative_stored",
                    name=q.name.to_text(),
                    type=dns.rdatatype.to_text(q.rdtype),
                    rcode=dns.rcode.to_text(entry.rcode),
                    negative_ttl=entry.ttl,
                )
        if entry is not None:
            return response_from_entry(query, entry, self.clock())
        response = dns.message.make_response(query, our_payload=1232)
        response.flags |= dns.flags.RA
        response.set_rcode(upstream.rcode())
        response.answer = list(upstream.answer)
        response.authority = list(upstream.authority)
        return response

    async def _ask_upstream(self, query: dns.message.Message) -> dns.message.Message:
        q = query.question[0]
        ask = dns.message.make_query(q.name, q.rdtype, q.rdclass, use_edns=0, payload=1232)
        host, port = self.upstream
        response = await dns.asyncquery.udp(ask, host, timeout=self.timeout_s, port=port)
        if response.flags & dns.flags.TC:
            response = await dns.asyncquery.tcp(ask, host, timeout=self.timeout_s, port=port)
        return response
