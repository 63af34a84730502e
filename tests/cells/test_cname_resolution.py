"""Per-account names are CNAMEs to a cell's name in another hosted zone: the authoritative data plane
answers them as Route 53 does, the caching resolver follows the chain, and negative caching shows
through it. Real UDP and TCP, a real emulator, real `dnsctl dns` processes."""

from __future__ import annotations

import time

import dns.rcode
import dns.rdatatype
import pytest

from services.zones import ensure_zones, find_zone_id
from tests.dns.dnsproc import start_dns, wait_for

ACCOUNTS = "ddb.us-east-1.api.aws"
CELL2 = "cell-2.ddb.us-east-1.api.aws"
CELL9 = "cell-9.ddb.us-east-1.api.aws"  # a cell zone with no addresses (yet)


def _upsert(client, zone: str, name: str, rtype: str, values: list[str], ttl: int = 60) -> None:
    client.change_resource_record_sets(HostedZoneId=find_zone_id(zone, client), ChangeBatch={"Changes": [{
        "Action": "UPSERT", "ResourceRecordSet": {"Name": name, "Type": rtype, "TTL": ttl,
                                                  "ResourceRecords": [{"Value": v} for v in values]}}]})


@pytest.fixture(scope="module")
def dns_pair(cell_emulator, tmp_path_factory):
    client = cell_emulator.client("route53")
    ensure_zones([ACCOUNTS, CELL2, CELL9], client)
    _upsert(client, CELL2, CELL2, "A", ["10.128.8.1", "10.128.8.2"])
    _upsert(client, CELL2, CELL2, "AAAA", ["2001:db8:c::2:1"])
    _upsert(client, ACCOUNTS, f"111111111111.{ACCOUNTS}", "CNAME", [CELL2])
    _upsert(client, ACCOUNTS, f"333333333333.{ACCOUNTS}", "CNAME", [f"shared.{ACCOUNTS}"])
    _upsert(client, ACCOUNTS, f"shared.{ACCOUNTS}", "A", ["192.0.2.77"])
    _upsert(client, ACCOUNTS, f"444444444444.{ACCOUNTS}", "CNAME", [CELL9])
    log_dir = tmp_path_factory.mktemp("cname-dns")
    env = cell_emulator.env()
    auth = start_dns(log_dir, "--refresh-ms", "100", zone=CELL2, name="auth", env=env)
    wait_for(lambda: auth.query(ACCOUNTS, "SOA").rcode() == dns.rcode.NOERROR, 30, "accounts zone served")
    wait_for(lambda: auth.query(CELL9, "SOA").rcode() == dns.rcode.NOERROR, 30, "cell-9 zone served")
    resolver = start_dns(log_dir, "--cache", "--upstream", f"127.0.0.1:{auth.port}", name="resolver", env=env)
    yield client, auth, resolver
    resolver.stop()
    auth.stop()


def _rrsets(reply) -> dict[tuple[str, str], list[str]]:
    return {(r.name.to_text().rstrip("."), dns.rdatatype.to_text(r.rdtype)): sorted(x.to_text().rstrip(".") for x in r)
            for r in reply.answer}


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_authoritative_gives_the_cname_alone_when_its_target_is_in_another_zone(dns_pair, tcp):
    _, auth, _ = dns_pair
    reply = auth.query(f"111111111111.{ACCOUNTS}", "A", tcp=tcp)
    assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AA
    assert _rrsets(reply) == {(f"111111111111.{ACCOUNTS}", "CNAME"): [CELL2]}
    # Same zone: the CNAME plus the target's records, as Route 53 answers.
    same = auth.query(f"333333333333.{ACCOUNTS}", "A", tcp=tcp)
    assert _rrsets(same) == {(f"333333333333.{ACCOUNTS}", "CNAME"): [f"shared.{ACCOUNTS}"],
                             (f"shared.{ACCOUNTS}", "A"): ["192.0.2.77"]}
    assert auth.query(f"111111111111.{ACCOUNTS}", "CNAME", tcp=tcp).answer[0][0].target.to_text() == CELL2 + "."


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_the_resolver_follows_the_chain_to_the_cells_addresses(dns_pair, tcp):
    _, _, resolver = dns_pair
    for rtype, want in (("A", ["10.128.8.1", "10.128.8.2"]), ("AAAA", ["2001:db8:c::2:1"])):
        reply = resolver.query(f"111111111111.{ACCOUNTS}", rtype, tcp=tcp)
        assert reply.rcode() == dns.rcode.NOERROR
        assert _rrsets(reply) == {(f"111111111111.{ACCOUNTS}", "CNAME"): [CELL2], (CELL2, rtype): want}


def test_dig_through_the_resolver_shows_the_cells_addresses(dns_pair):
    import shutil
    import subprocess

    if shutil.which("dig") is None:
        pytest.skip("dig not installed (apt-get install bind9-dnsutils)")
    _, _, resolver = dns_pair
    out = subprocess.run(["dig", "+short", "@127.0.0.1", "-p", str(resolver.port), f"111111111111.{ACCOUNTS}", "A"],
                         capture_output=True, text=True, timeout=10).stdout.split()
    assert out[0] == CELL2 + "." and sorted(out[1:]) == ["10.128.8.1", "10.128.8.2"], out


def test_negative_caching_shows_through_the_cname(dns_pair):
    client, auth, resolver = dns_pair
    name = f"444444444444.{ACCOUNTS}"
    first = resolver.query(name, "A")
    assert first.rcode() == dns.rcode.NOERROR
    assert _rrsets(first) == {(name, "CNAME"): [CELL9]}  # the chain ends empty
    soa = [r for r in first.authority if r.rdtype == dns.rdatatype.SOA]
    assert soa and soa[0].name.to_text().rstrip(".") == CELL9  # the target zone's SOA: its negative TTL
    # The cell gets its addresses; the authoritative side answers them at once ...
    _upsert(client, CELL9, CELL9, "A", ["10.128.36.1"])
    wait_for(lambda: auth.addresses(CELL9) == ["10.128.36.1"], 20, "cell-9 served")
    time.sleep(1.1)
    # ... the resolver keeps the empty answer it cached, its SOA TTL counting down: the October lesson.
    again = resolver.query(name, "A")
    assert [r for r in again.answer if r.rdtype == dns.rdatatype.A] == []
    assert again.authority[0].ttl < soa[0].ttl
