"""Probing every account's own name, and what it says per cell.

With the cell map applied, every account resolves `<account>.ddb.<region>.api.aws`, a CNAME to
its cell's name (or to the legacy regional name). The prober asks the DNS data plane for every
account name it finds in Route 53 (the accounts' zone in its snapshot), follows each CNAME to its
target once per round (accounts of one cell share one target question), and counts per cell how
many accounts get addresses and how many lost DNS (the chain ends in zero addresses, NXDOMAIN,
or no answer). One `accounts_dns` event per change of a cell's counts; gauges per cell.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class AccountProbe:
    account: str  # the account's name, without the final dot
    cell: str  # cell-N, legacy, or "unknown" (a target that is neither)
    target: str | None  # the CNAME the data plane served (None: none)
    addresses: int  # A addresses at the end of the chain

    @property
    def lost(self) -> bool:
        return self.addresses == 0


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


async def probe_accounts(server: tuple[str, int], names: list[str], region: str, timeout_s: float = 0.5) -> list[AccountProbe]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def ask(name: str, rtype: str) -> dns.message.Message | None:
        async with gate:
            try:
                return await dns.asyncquery.udp(dns.message.make_query(name + ".", rtype), server[0], port=server[1], timeout=timeout_s)
            except (dns.exception.DNSException, OSError):
                return None

    replies = await asyncio.gather(*(ask(n, "A") for n in names))
    targets: dict[str, str | None] = {}
    for name, reply in zip(names, replies, strict=True):
        cname = [r for r in reply.answer if r.rdtype == dns.rdatatype.CNAME] if reply is not None else []
        targets[name] = cname[0][0].target.to_text().rstrip(".") if cname else None
    distinct = sorted({t for t in targets.values() if t})
    answers = await asyncio.gather(*(ask(t, "A") for t in distinct))
    counts = {t: sum(len(r) for r in a.answer if r.rdtype == dns.rdatatype.A) if a is not None else 0
              for t, a in zip(distinct, answers, strict=True)}
    return [AccountProbe(n, cell_of(targets[n], region), targets[n], counts.get(targets[n] or "", 0)) for n in names]


def per_cell(probes: list[AccountProbe]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"answering": 0, "lost": 0})
    for p in probes:
        out[p.cell]["lost" if p.lost else "answering"] += 1
    return dict(sorted(out.items()))


def export(counts: dict[str, dict[str, int]], before: dict[str, dict[str, int]]) -> None:
    for cell in set(before) - set(counts):
        for state in ("answering", "lost"):
            ACCOUNTS.labels(cell, state).set(0)
    for cell, c in counts.items():
        for state, n in c.items():
            ACCOUNTS.labels(cell, state).set(n)
