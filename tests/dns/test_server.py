"""The DNS server as a real process over real UDP and TCP, serving zones built in the emulator."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
from collections import Counter

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from services.dns.loadgen import encode_query, run_udp
from services.route53.records import Change, RecordSet
from tests.dns.conftest import WEIGHTS, Served
from tests.dns.dnsproc import wait_for
from tests.dns.trees import HandZone, a_fleet

DIG = shutil.which("dig")
needs_dig = pytest.mark.skipif(DIG is None, reason="dig is not installed (Debian package bind9-dnsutils; .ci/run installs it)")


def dig(served: Served, *args: str) -> str:
    assert DIG is not None
    out = subprocess.run(
        [DIG, "@127.0.0.1", "-p", str(served.dns.port), "+time=2", "+tries=1", *args],
        capture_output=True, text=True, timeout=10, check=True,
    )
    return out.stdout


def test_a_and_aaaa_answers_match_the_records_over_udp_and_tcp(served: Served) -> None:
    v4 = {a for lb in served.lbs for a in lb.ipv4}
    v6 = {a for lb in served.lbs for a in lb.ipv6}
    for tcp in (False, True):
        a = served.dns.query(served.stable.endpoint, "A", tcp=tcp)
        assert a.rcode() == dns.rcode.NOERROR and a.flags & dns.flags.AA
        (rrset,) = a.answer
        addresses = {r.to_text() for r in rrset}
        assert len(addresses) == 2 and addresses <= v4
        # Both addresses of one load balancer: one weighted member answers, whole.
        assert any(addresses == set(lb.ipv4) for lb in served.lbs)
        assert rrset.ttl == 60 and rrset.name.to_text() == served.stable.endpoint
        aaaa = served.dns.query(served.stable.endpoint, "AAAA", tcp=tcp)
        got6 = {r.to_text() for rrset in aaaa.answer for r in rrset}
        assert got6 and got6 <= v6 and any(got6 == set(lb.ipv6) for lb in served.lbs)


def test_each_lb_share_over_10000_queries_is_within_3_points_of_its_weight(served: Served) -> None:
    owner = {a: lb.lb_id for lb in served.lbs for a in lb.ipv4}
    counts: Counter[str] = Counter()

    def tally(wire: bytes) -> None:
        msg = dns.message.from_wire(wire)
        first = next(iter(msg.answer[0])) if msg.answer else None
        counts[owner.get(first.to_text(), "?") if first else "empty"] += 1

    # UDP may drop a query on a loaded machine; ask again until 10,000 have been answered.
    for _ in range(3):
        missing = 10_000 - sum(counts.values())
        if missing <= 0:
            break
        run_udp("127.0.0.1", served.dns.port, [encode_query(served.stable.endpoint, "A")], missing, window=32,
                timeout_s=2, on_response=tally)
    assert sum(counts.values()) == 10_000 and counts["empty"] == 0 and counts["?"] == 0, counts
    total = sum(WEIGHTS)
    for lb in served.lbs:
        share = counts[lb.lb_id] / 10_000
        assert abs(share - lb.weight / total) <= 0.03, (lb.lb_id, share, lb.weight / total, counts)


def test_nxdomain_with_soa_and_refused_outside_served_zones(served: Served) -> None:
    nx = served.dns.query(f"nope.{served.stable.endpoint}", "A")
    assert nx.rcode() == dns.rcode.NXDOMAIN and not nx.answer
    assert [r.rdtype for r in nx.authority] == [dns.rdatatype.SOA]
    refused = served.dns.query("example.com.", "A")
    assert refused.rcode() == dns.rcode.REFUSED and not refused.flags & dns.flags.AA
    # A zone that exists in Route 53 but is not served by this server (--zone) is foreign too.
    assert served.dns.query("api.aws.", "A").rcode() == dns.rcode.REFUSED


def test_dangling_root_is_noerror_with_zero_answers_and_soa_then_repaired(emulator, served: Served) -> None:
    zone = HandZone(emulator.client("route53"), f"dangle.{served.parent}")
    old = zone.build_tree(110, a_fleet(2, salt=9))
    zone.flip(old)
    wait_for(lambda: served.dns.addresses(zone.endpoint), 15, "the new zone to be served")
    zone.delete_tree(old)  # the clean-up deletes the tree the root points at
    reply = wait_for(
        lambda: (r := served.dns.query(zone.endpoint, "A")).rcode() == dns.rcode.NOERROR and not r.answer and r,
        15, "the root to dangle",
    )
    assert [r.rdtype for r in reply.authority] == [dns.rdatatype.SOA]
    assert reply.authority[0].name.to_text() == zone.endpoint
    assert served.dns.query(zone.endpoint, "AAAA").answer == []
    fresh = zone.build_tree(146, a_fleet(3, salt=10))
    zone.flip(fresh)
    assert wait_for(lambda: served.dns.addresses(zone.endpoint), 15, "the repaired root to answer")


@needs_dig
def test_dig_shows_answers_and_the_empty_answer(emulator, served: Served) -> None:
    out = dig(served, served.stable.endpoint, "AAAA")
    assert "status: NOERROR" in out and "ANSWER: 2" in out and "flags: qr aa" in out
    assert any(a in out for lb in served.lbs for a in lb.ipv6)
    zone = HandZone(emulator.client("route53"), f"digdangle.{served.parent}")
    tree = zone.build_tree(3, a_fleet(1, salt=11), types=("A",))
    zone.flip(tree, types=("A",))
    wait_for(lambda: served.dns.addresses(zone.endpoint), 15, "zone served")
    # An IPv4-only name asked for AAAA: no error, zero answers (the talk's demonstration).
    out = dig(served, zone.endpoint, "AAAA")
    assert "status: NOERROR" in out and "ANSWER: 0" in out and "AUTHORITY: 1" in out and "SOA" in out
    zone.delete_tree(tree)
    wait_for(lambda: not served.dns.addresses(zone.endpoint), 15, "the root to dangle")
    out = dig(served, zone.endpoint, "A")
    assert "status: NOERROR" in out and "ANSWER: 0" in out and "AUTHORITY: 1" in out
    assert "status: NXDOMAIN" in dig(served, f"nope.{zone.endpoint}", "A")
    assert "status: REFUSED" in dig(served, "example.com", "A")
    assert "ANSWER: 2" in dig(served, "+tcp", served.stable.endpoint, "A")


def test_root_flip_is_served_after_the_next_refresh(emulator, served: Served) -> None:
    zone = HandZone(emulator.client("route53"), f"flip.{served.parent}")
    first = a_fleet(1, salt=12)
    zone.flip(zone.build_tree(1, first))
    wait_for(lambda: served.dns.addresses(zone.endpoint) == sorted(first[0].ipv4), 15, "first tree served")
    second = a_fleet(1, salt=13)
    zone.flip(zone.build_tree(2, second))
    wait_for(lambda: served.dns.addresses(zone.endpoint) == sorted(second[0].ipv4), 15, "flipped tree served")


def _fuzz_packets(rng: random.Random, valid: list[bytes]) -> bytes:
    kind = rng.randrange(8)
    base = bytearray(rng.choice(valid))
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 600))
    if kind == 1:
        return bytes(base[: rng.randrange(0, len(base))])  # truncated
    if kind == 2:
        for _ in range(rng.randrange(1, 6)):
            i = rng.randrange(len(base))
            base[i] ^= 1 << rng.randrange(8)
        return bytes(base)
    if kind == 3:
        base[2] |= 0x80  # a response: must not be answered
        return bytes(base)
    if kind == 4:
        base[2] = (base[2] & 0x87) | (rng.choice([1, 2, 4, 5, 15]) << 3)  # other opcodes
        return bytes(base)
    if kind == 5:
        # Counts that promise more records than the packet holds.
        base[4:12] = rng.randbytes(8)
        return bytes(base)
    if kind == 6:
        return bytes(base) + rng.randbytes(rng.randrange(1, 40))  # trailing junk
    return rng.randbytes(12) + bytes(base[12:])


def test_fuzz_never_crashes_the_server(served: Served) -> None:
    seed = int(os.environ.get("DNS_FUZZ_SEED", random.randrange(1 << 30)))
    print(f"fuzz seed {seed} (replay with DNS_FUZZ_SEED={seed})")
    rng = random.Random(seed)
    ep = served.stable.endpoint
    valid = [
        encode_query(ep, "A"), encode_query(ep, "AAAA"), encode_query(ep, "TXT"), encode_query(ep, "ANY"),
        encode_query("example.com", "A"), encode_query(f"x.{ep}", "AXFR"), encode_query(ep, "TYPE65280"),
        dns.message.make_query(ep, "A", rdclass="CH").to_wire(),
        dns.message.make_query("version.bind.", "TXT", rdclass="CH").to_wire(),
    ]
    two = dns.message.make_query(ep, "A")
    two.question.append(two.question[0])
    valid.append(two.to_wire())
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setblocking(False)
    deadline = time.monotonic() + 3.0
    sent = 0
    while time.monotonic() < deadline:
        try:
            udp.sendto(_fuzz_packets(rng, valid), ("127.0.0.1", served.dns.port))
            sent += 1
        except BlockingIOError:
            pass
        try:
            while True:
                udp.recv(65535)
        except BlockingIOError:
            pass
        if sent % 200 == 0:
            # TCP: garbage streams, lying length prefixes, half-sent messages.
            with socket.create_connection(("127.0.0.1", served.dns.port), timeout=1) as tcp:
                payload = _fuzz_packets(rng, valid)
                prefix = rng.choice([len(payload), len(payload) + 5, 0, 65535, rng.randrange(65536)])
                tcp.sendall(prefix.to_bytes(2, "big") + payload)
                tcp.settimeout(0.05)
                try:
                    tcp.recv(65535)
                except OSError:
                    pass
    udp.close()
    assert sent > 1000
    assert served.dns.process.proc.poll() is None, served.dns.process.output()[-3000:]
    # The burst leaves the server's receive buffer full: the kernel may drop this query's datagram
    # (UDP), and the backlog is read first. A stub resolver retries; so does this check.
    ok = None
    for _ in range(8):
        try:
            ok = served.dns.query(ep, "A")
            break
        except dns.exception.Timeout:
            continue
    assert ok is not None, "no answer over UDP in 8 tries of 2 s after the fuzz burst"
    assert ok.rcode() == dns.rcode.NOERROR and ok.answer
    assert served.dns.query(ep, "A", tcp=True).answer
    log = served.dns.process.output()
    # Bad packets are the sender's problem; a failed answer or render would be ours.
    assert "Traceback" not in log and "query_failed" not in log and "response_render_failed" not in log


def test_an_answer_too_big_for_udp_is_truncated_and_whole_over_tcp(served: Served) -> None:
    name = f"big.{served.stable.endpoint}"
    values = tuple(f'"{i:02d}{"x" * 200}"' for i in range(12))
    served.stable.apply(Change("UPSERT", RecordSet(name, "TXT", ttl=30, values=values)))
    query = dns.message.make_query(name, "TXT")  # no EDNS: 512 bytes at most over UDP
    wait_for(lambda: dns.query.tcp(query, "127.0.0.1", port=served.dns.port, timeout=2).answer, 15, "the record served")
    for _ in range(2):  # twice: a memoised reply must not cross from one transport to the other
        udp = dns.query.udp(query, "127.0.0.1", port=served.dns.port, timeout=2)
        assert udp.flags & dns.flags.TC and not udp.answer
        tcp = dns.query.tcp(query, "127.0.0.1", port=served.dns.port, timeout=2)
        assert not tcp.flags & dns.flags.TC and len(tcp.answer[0]) == 12


def _tcp_query(port: int, endpoint: str, source: str = "127.0.0.1") -> dns.message.Message:
    return dns.query.tcp(dns.message.make_query(endpoint, "A"), "127.0.0.1", port=port, timeout=3, source=source)


def test_one_client_holding_300_idle_tcp_connections_blocks_no_other_client(served: Served) -> None:
    """RFC 7766 limits: per client, and idle connections of the heaviest client give way when full."""
    port = served.dns.port
    hog: list[socket.socket] = []
    try:
        for _ in range(300):
            s = socket.socket()
            s.bind(("127.0.0.2", 0))  # the hog: another address on loopback
            s.settimeout(3)
            try:
                s.connect(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            hog.append(s)
        time.sleep(0.5)
        # Another client is answered at once, over TCP, many times.
        for _ in range(20):
            assert _tcp_query(port, served.stable.endpoint).rcode() == dns.rcode.NOERROR
        # The hog itself got only its share: the rest of its connections were closed by the server.
        closed = 0
        for s in hog:
            s.settimeout(0.2)
            try:
                if s.recv(1) == b"":
                    closed += 1
            except TimeoutError:
                pass
            except OSError:
                closed += 1
        assert closed >= 300 - 32, f"only {closed} of the hog's 300 connections were refused"
        # A held connection that stays idle is closed too (idle timeout), so even its share frees up.
    finally:
        for s in hog:
            s.close()
