"""The prober's account probes over real UDP DNS: a question with no reply in time says nothing
either way. It is asked again, and if that goes unanswered too the account keeps its last answered
probe for a few rounds, or counts as unanswered, never as lost (services/prober/accounts.py). A name that answers
with no address is lost at once."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter
from collections.abc import Iterator

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from services.cells.naming import legacy_endpoint
from services.prober.accounts import KEEP_ROUNDS, AccountProbe, per_cell, probe_accounts

REGION = "us-east-1"
CELL1 = f"cell-1.ddb.{REGION}.api.aws"
LEGACY = legacy_endpoint(REGION)
ACCOUNTS = {f"10000000000{i}.ddb.{REGION}.api.aws": target for i, target in ((1, CELL1), (2, LEGACY), (3, LEGACY))}


class Server:
    """A UDP DNS server on a port of its own: each account name answers its CNAME, each target its
    A addresses (`addresses`); it never replies to a name in `silent`, and drops the first
    `drop_first` questions for every name."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.addresses = {CELL1: 2, LEGACY: 3}
        self.silent: set[str] = set()
        self.drop_first = 0
        self.asked: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        return self.sock.getsockname()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            name = query.question[0].name.to_text().rstrip(".")
            self.asked[name] += 1
            if name in self.silent or self.asked[name] <= self.drop_first:
                continue
            reply = dns.message.make_response(query)
            if name in ACCOUNTS:
                reply.answer.append(dns.rrset.from_text(name + ".", 60, "IN", "CNAME", ACCOUNTS[name] + "."))
            elif name in self.addresses:
                n = self.addresses[name]
                if n:
                    reply.answer.append(dns.rrset.from_text(name + ".", 60, "IN", "A", *(f"10.0.0.{i + 1}" for i in range(n))))
            else:
                reply.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(reply.to_wire(), peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    try:
        yield s
    finally:
        s.close()


def probe(server: Server, previous: dict[str, AccountProbe] | None = None) -> dict[str, AccountProbe]:
    got = asyncio.run(probe_accounts(server.address, sorted(ACCOUNTS), REGION, timeout_s=0.2, previous=previous))
    return {p.account: p for p in got}


def test_every_account_answers_through_its_cname(server: Server):
    got = probe(server)
    assert {a: (p.cell, p.addresses, p.answered, p.misses) for a, p in got.items()} == {
        "100000000001.ddb.us-east-1.api.aws": ("cell-1", 2, True, 0),
        "100000000002.ddb.us-east-1.api.aws": ("legacy", 3, True, 0),
        "100000000003.ddb.us-east-1.api.aws": ("legacy", 3, True, 0),
    }
    assert per_cell(list(got.values())) == {"cell-1": {"answering": 1, "lost": 0}, "legacy": {"answering": 2, "lost": 0}}


def test_a_question_dropped_once_is_asked_again(server: Server):
    server.drop_first = 1
    got = probe(server)
    assert all(p.misses == 0 and p.addresses > 0 for p in got.values()), got
    assert server.asked[CELL1] == 2 and server.asked["100000000001.ddb.us-east-1.api.aws"] == 2


def test_no_reply_keeps_the_last_answer_for_a_few_rounds_and_a_never_answered_account_is_not_lost(server: Server):
    first = probe(server)
    server.silent = {"100000000001.ddb.us-east-1.api.aws", LEGACY}
    kept = probe(server, previous=first)
    # The accounts whose questions went unanswered keep their last answered probe: still answering.
    assert all(p.misses == 1 and p.answered for p in kept.values()), kept
    assert per_cell(list(kept.values())) == per_cell(list(first.values()))
    # For KEEP_ROUNDS rounds in a row at most: a DNS server gone silent shows as accounts with no reply.
    rounds = [kept]
    for _ in range(KEEP_ROUNDS - 1):
        rounds.append(probe(server, previous=rounds[-1]))
    assert per_cell(list(rounds[-2].values())) == per_cell(list(first.values()))
    assert per_cell(list(rounds[-1].values())) == {"cell-1": {"answering": 0, "lost": 0, "unanswered": 1},
                                                   "legacy": {"answering": 0, "lost": 0, "unanswered": 2}}
    server.silent = set()
    assert per_cell(list(probe(server, previous=rounds[-1]).values())) == per_cell(list(first.values()))  # back at once
    # With no earlier answer they are unanswered, never lost.
    server.silent = {"100000000001.ddb.us-east-1.api.aws", LEGACY}
    fresh_start = probe(server)
    assert per_cell(list(fresh_start.values())) == {"unknown": {"answering": 0, "lost": 0, "unanswered": 3}}
    assert not any(p.lost for p in fresh_start.values())


def test_a_name_that_answers_no_address_is_lost_at_once(server: Server):
    first = probe(server)
    server.addresses[LEGACY] = 0
    got = probe(server, previous=first)
    assert per_cell(list(got.values())) == {"cell-1": {"answering": 1, "lost": 0}, "legacy": {"answering": 0, "lost": 2}}
    assert all(p.misses == 0 for p in got.values())
