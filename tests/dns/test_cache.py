"""Negative caching: the cache keeps an outage alive for the SOA's negative TTL after repair."""

from __future__ import annotations

import time

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from services.dns.cache import ResolverCache, cacheable_ttl, key_of, response_from_entry
from tests.dns.conftest import Served
from tests.dns.dnsproc import start_dns, wait_for
from tests.dns.trees import HandZone, a_fleet

NAME = "dynamodb.example."


def upstream_reply(rcode=dns.rcode.NOERROR, answers=(), soa_ttl=900, soa_minimum=30, with_soa=True):
    query = dns.message.make_query(NAME, "A")
    reply = dns.message.make_response(query)
    reply.set_rcode(rcode)
    for ttl, address in answers:
        reply.answer.append(dns.rrset.from_text(NAME, ttl, "IN", "A", address))
    if with_soa and not answers:
        soa = f"ns-1.example. hostmaster.example. 1 7200 900 1209600 {soa_minimum}"
        reply.authority.append(dns.rrset.from_text("example.", soa_ttl, "IN", "SOA", soa))
    return query, reply


def test_positive_answer_lives_for_its_smallest_ttl_and_counts_down() -> None:
    cache = ResolverCache()
    query, reply = upstream_reply(answers=[(60, "10.0.0.1")])
    key = key_of(query)
    cache.store(key, reply, now=100.0)
    entry = cache.lookup(key, now=159.5)
    assert entry is not None and not entry.negative
    served = response_from_entry(query, entry, now=130.0)
    assert served.answer[0].ttl == 30 and served.flags & dns.flags.RA
    assert cache.lookup(key, now=160.0) is None


def test_negative_answer_lives_for_min_of_soa_ttl_and_minimum() -> None:
    for soa_ttl, minimum, expected in ((900, 30, 30), (20, 86400, 20)):
        _, reply = upstream_reply(soa_ttl=soa_ttl, soa_minimum=minimum)
        assert cacheable_ttl(reply) == (expected, True)
    _, nx = upstream_reply(rcode=dns.rcode.NXDOMAIN, soa_minimum=5)
    assert cacheable_ttl(nx) == (5, True)
    cache = ResolverCache()
    query, reply = upstream_reply(soa_minimum=30)
    cache.store(key_of(query), reply, now=0.0)
    entry = cache.lookup(key_of(query), now=10.0)
    served = response_from_entry(query, entry, now=10.0)
    assert served.answer == [] and served.authority[0].ttl == 20  # the absence may be believed 20 s more


def test_no_soa_no_negative_caching_and_failures_never_cached() -> None:
    _, reply = upstream_reply(with_soa=False)
    assert cacheable_ttl(reply) is None
    _, failed = upstream_reply(rcode=dns.rcode.SERVFAIL)
    assert cacheable_ttl(failed) is None
    _, refused = upstream_reply(rcode=dns.rcode.REFUSED)
    assert cacheable_ttl(refused) is None


def test_cache_keeps_serving_the_empty_answer_after_repair_until_the_negative_ttl_ends(
    emulator, served: Served, tmp_path
) -> None:
    negative_ttl = 6
    zone = HandZone(emulator.client("route53"), f"negcache.{served.parent}")
    zone.set_soa_minimum(negative_ttl, ttl=300)
    old = zone.build_tree(110, a_fleet(2, salt=20))
    zone.flip(old)
    zone.delete_tree(old)
    wait_for(lambda: (r := served.dns.query(zone.endpoint, "A")).rcode() == 0 and r.authority and not r.answer, 15,
             "the authoritative server to serve the dangling root")
    cache = start_dns(tmp_path, "--cache", "--upstream", f"127.0.0.1:{served.dns.port}", name="dns-cache")
    try:
        first = cache.query(zone.endpoint, "A")
        cached_at = time.monotonic()
        assert first.rcode() == dns.rcode.NOERROR and first.answer == []
        assert first.authority[0].rdtype == dns.rdatatype.SOA and first.authority[0].ttl <= negative_ttl
        # Route 53 is repaired: a new tree, the root flipped to it.
        fresh = a_fleet(2, salt=21)
        zone.flip(zone.build_tree(146, fresh))
        wait_for(lambda: served.dns.addresses(zone.endpoint), 15, "the authoritative server to serve the repair")
        repaired_at = time.monotonic()
        assert repaired_at - cached_at < negative_ttl - 1, "repair took longer than the negative TTL; cannot show caching"
        still = cache.query(zone.endpoint, "A")
        assert still.answer == [], "the cache must keep the empty answer for its negative TTL"
        assert 0 < still.authority[0].ttl <= negative_ttl
        answered = wait_for(lambda: cache.addresses(zone.endpoint), negative_ttl + 5, "the cache to expire the empty answer")
        expired_at = time.monotonic()
        assert expired_at - cached_at >= negative_ttl - 1
        assert set(answered) <= {a for lb in fresh for a in lb.ipv4}
        assert '"cache_negative_stored"' in cache.process.output()
    finally:
        cache.stop()
