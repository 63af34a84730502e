"""The race's blast radius: which accounts lost DNS and which kept it, per cell.

Every account's own name (`<account>.ddb.us-east-1.api.aws`, from the cell map) is resolved the
way a client's resolver does it, but without a cache, so the count is what the data plane serves
now: the account's CNAME from the authoritative DNS server, then its target's addresses of every
type the target's zone serves. An account whose chain ends in zero addresses lost DNS.
The cells' design says a race in cell 2 breaks cell 2's accounts only; the same race on the
regional system breaks every account not yet moved (they CNAME the legacy regional name).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from services.cells.cellmap import CellMap

TYPES = ("A", "AAAA")


@dataclass(frozen=True)
class AccountAnswer:
    account: str
    cell: str  # "legacy" when not moved
    target: str | None  # the CNAME target served (None: no CNAME)
    addresses: dict[str, int] = field(default_factory=dict)  # per type the target answers

    @property
    def lost(self) -> bool:
        """No IPv4 address at the end of the chain (every cell and the legacy name serve A; both are
        dual-stack, and the race empties both types together): the account cannot reach its endpoint."""
        return self.target is None or self.addresses.get("A", 0) == 0


@dataclass(frozen=True)
class BlastRadius:
    answers: tuple[AccountAnswer, ...]

    def per_cell(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = defaultdict(lambda: {"lost": 0, "kept": 0})
        for a in self.answers:
            out[a.cell]["lost" if a.lost else "kept"] += 1
        return dict(sorted(out.items()))

    @property
    def lost(self) -> int:
        return sum(a.lost for a in self.answers)

    @property
    def kept(self) -> int:
        return len(self.answers) - self.lost

    def as_dict(self) -> dict[str, Any]:
        return {"accounts": len(self.answers), "lost": self.lost, "kept": self.kept, "per_cell": self.per_cell(),
                "lost_accounts": [a.account for a in self.answers if a.lost]}


ATTEMPTS = 3  # as a stub resolver does: a lost datagram or a busy server is not a lost name


def _ask(server: tuple[str, int], name: str, rtype: str, timeout_s: float) -> dns.message.Message | None:
    """The reply, asked up to ATTEMPTS times with the timeout doubling; None: no reply at all."""
    query = dns.message.make_query(name, dns.rdatatype.from_text(rtype))
    for attempt in range(ATTEMPTS):
        try:
            return dns.query.udp(query, server[0], port=server[1], timeout=timeout_s * 2**attempt)
        except (dns.exception.DNSException, OSError):
            continue
    return None


def resolve_account(server: tuple[str, int], name: str, timeout_s: float = 1.0) -> tuple[str | None, dict[str, int]]:
    """(CNAME target, addresses per type) for one account name, asked of the authoritative server."""
    reply = _ask(server, name, "A", timeout_s)
    if reply is None:
        return None, {}
    cnames = [r for r in reply.answer if r.rdtype == dns.rdatatype.CNAME]
    if not cnames:
        return None, {}
    target = cnames[0][0].target.to_text()
    counts = {}
    for rtype in TYPES:
        answer = _ask(server, target, rtype, timeout_s)
        want = dns.rdatatype.from_text(rtype)
        counts[rtype] = sum(len(r) for r in answer.answer if r.rdtype == want) if answer is not None else 0
    return target.rstrip("."), counts


def blast_radius(cellmap: CellMap, server: tuple[str, int]) -> BlastRadius:
    answers = []
    for a in cellmap.accounts:
        name = f"{a.account}.{cellmap.zone}"
        target, counts = resolve_account(server, name)
        answers.append(AccountAnswer(a.account, a.cell or "legacy", target, counts))
    return BlastRadius(tuple(answers))


def expected_loss(blast: BlastRadius, cell: str | None, broken: bool) -> tuple[bool, str]:
    """Whether the loss is the one the design promises: a race that broke `cell` (None: the regional
    system, whose accounts are the legacy ones) takes down exactly that cell's accounts and no
    other's; a race that broke nothing takes down none."""
    home = cell or "legacy"
    per = blast.per_cell()
    elsewhere = sum(c["lost"] for name, c in per.items() if name != home)
    mine = per.get(home, {"lost": 0, "kept": 0})
    if not broken:
        return blast.lost == 0, f"{blast.lost} accounts lost DNS"
    ok = elsewhere == 0 and mine["kept"] == 0 and mine["lost"] > 0
    return ok, (f"{mine['lost']} of {mine['lost'] + mine['kept']} {home} accounts lost DNS; "
                f"{elsewhere} accounts elsewhere lost it, {blast.kept} kept it")
