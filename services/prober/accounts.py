"""Probing every account's own name, and what it says per cell.

With the cell map applied, every account resolves `<account>.ddb.<region>.api.aws`, a CNAME to
its cell's name (or to the legacy regional name). The prober asks the DNS data plane for every
account name it finds in Route 53 (the accounts' zone in its snapshot), follows each CNAME to its
target once per round (accounts of one cell share one target question), and counts per cell how
many accounts get addresses and how many lost DNS (the chain ends in zero addresses or
NXDOMAIN). One `accounts_dns` event per change of a cell's counts; gauges per cell.

A question with no reply in time says nothing either way (as for the endpoints' alarms,
services/prober/rules.py): it is asked once more with twice the timeout, and if that goes
unanswered too the account keeps its last answered probe (`misses` counts the rounds), for at
most KEEP_ROUNDS rounds; never answered, or silent for longer (`answered` False), it counts as
`unanswered`, never as lost. On a loaded machine a 0.5 s timeout is missed now and then, and a
lost account that is not lost is the one figure an SRE must be able to trust; a silent DNS server
shows as accounts with no reply within a few rounds.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype
from prometheus_client import Gauge

from services.cells.naming import accounts_zone, legacy_endpoint, owner_cell
from services.dns.snapshot import Snapshot
from services.route53.records import normalise_name

ACCOUNTS = Gauge("dnsctl_probe_accounts", "Accounts by cell and whether their name answers addresses", ["cell", "state"])
CONCURRENCY = 64  # questions in flight at once
# How many rounds in a row without a reply an account keeps its last answer: a missed datagram on
# a busy machine is not an outage, but a DNS server gone silent must not look healthy for ever.
KEEP_ROUNDS = 3


@dataclass(frozen=True, slots=True)
class AccountProbe:
    account: str  # the account's name, without the final dot
    cell: str  # cell-N, legacy, or "unknown" (a target that is neither)
    target: str | None  # the CNAME the data plane served (None: none)
    addresses: int  # A addresses at the end of the chain
    answered: bool = True  # False: nothing to count (never answered, or no reply for KEEP_ROUNDS rounds)
    misses: int = 0  # rounds in a row with no reply (then the fields are the last answered round's)

    @property
    def lost(self) -> bool:
        return self.answered and self.addresses == 0


def account_names(snapshot: Snapshot, region: str) -> list[str]:
    """Every CNAME owner of the accounts' zone (the names the cell map enactors write)."""
    zone = snapshot.zones.get(normalise_name(accounts_zone(region)))
    if zone is None:
        return []
    return sorted(name.rstrip(".") for name, types in zone.rrsets.items() if "CNAME" in types)


def cell_of(target: str | None, region: str) -> str:
    if target is None:
        return "unknown"
    if target == legacy_endpoint(region):
        return "legacy"
    return owner_cell(target, region) or "unknown"


async def probe_accounts(server: tuple[str, int], names: list[str], region: str, timeout_s: float = 0.5,
                         previous: Mapping[str, AccountProbe] | None = None) -> list[AccountProbe]:
    """One round: every name's CNAME, then every distinct target's A addresses. `previous` (the last
    round's probes by account) is what an account keeps when its questions go unanswered."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def ask_once(name: str, wait_s: float) -> dns.message.Message | None:
        async with gate:
            try:
                return await dns.asyncquery.udp(dns.message.make_query(name + ".", "A"), server[0], port=server[1], timeout=wait_s)
            except (dns.exception.DNSException, OSError):
                return None

    async def ask(name: str) -> dns.message.Message | None:
        return await ask_once(name, timeout_s) or await ask_once(name, 2 * timeout_s)

    replies = dict(zip(names, await asyncio.gather(*(ask(n) for n in names)), strict=True))
    targets: dict[str, str | None] = {}
    for name, reply in replies.items():
        cname = [r for r in reply.answer if r.rdtype == dns.rdatatype.CNAME] if reply is not None else []
        targets[name] = cname[0][0].target.to_text().rstrip(".") if cname else None
    distinct = sorted({t for t in targets.values() if t})
    answers = dict(zip(distinct, await asyncio.gather(*(ask(t) for t in distinct)), strict=True))
    out = []
    for n in names:
        target = targets[n]
        answer = answers.get(target) if target else None
        if replies[n] is None or (target and answer is None):  # no reply in time: nothing said either way
            last = (previous or {}).get(n)
            misses = last.misses + 1 if last else 1
            if last and last.answered and misses < KEEP_ROUNDS:
                out.append(replace(last, misses=misses))
            else:
                out.append(AccountProbe(n, last.cell if last else "unknown", last.target if last else None, 0,
                                        answered=False, misses=misses))
            continue
        count = sum(len(r) for r in answer.answer if r.rdtype == dns.rdatatype.A) if answer is not None else 0
        out.append(AccountProbe(n, cell_of(target, region), target, count))
    return out


def per_cell(probes: list[AccountProbe]) -> dict[str, dict[str, int]]:
    """Per cell: accounts answering addresses, lost (answered with none) and, only where there are
    any, unanswered (no answer to count). An account that missed fewer than KEEP_ROUNDS rounds
    counts as its last answered probe did."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"answering": 0, "lost": 0})
    for p in probes:
        if not p.answered:
            out[p.cell]["unanswered"] = out[p.cell].get("unanswered", 0) + 1
        else:
            out[p.cell]["lost" if p.lost else "answering"] += 1
    return dict(sorted(out.items()))


STATES = ("answering", "lost", "unanswered")


def export(counts: dict[str, dict[str, int]], before: dict[str, dict[str, int]]) -> None:
    for cell in set(before) | set(counts):
        for state in STATES:
            ACCOUNTS.labels(cell, state).set(counts.get(cell, {}).get(state, 0))
