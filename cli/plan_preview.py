"""`dnsctl plan apply --dry-run VERSION` and `dnsctl enactor --dry-run`: the Route 53 change
batches an enactor would submit now.

Read-only: no lock is taken, nothing is written. The plan comes from S3 and each endpoint's zone
from one listing of Route 53 (an endpoint without a hosted zone is skipped, as the enactor skips
it: `zone_missing`); then the
enactor core (enactor/protocol.py) is driven with those observations, every batch answered as
accepted, and the batches it asks for are printed. The decisions are the core's own (freshness
check, lock preamble, tree, flip): this module only feeds it. The clean-up is decided by the core
after a fresh listing, which a dry run cannot make, so it is not shown.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from enactor import protocol as p
from services.route53.listing import SortedRecords

MAX_BATCHES = 1000  # far above any real unit (a 1,000-LB tree is a few dozen batches)


@dataclass(frozen=True)
class WouldApply:
    endpoint: str
    batches: tuple[p.SubmitBatch, ...]
    outcome: str  # the core's last note: flipped, up_to_date, refused_stale, lock_lost, plan_rejected, ...


def would_apply(settings: p.CoreSettings, endpoint: str, zone_id: str, plan, records, now: float | None = None) -> WouldApply:
    """Drive a fresh enactor core over `plan` and the zone's `records`; collect what it would submit."""
    now = time.time() if now is None else now
    st, req = p.start(endpoint, zone_id)
    st, req, notes = p.step(settings, st, p.PlanRead(plan))
    events = [n.event for n in notes]
    listing = SortedRecords(tuple(records))
    while isinstance(req, p.ListRecords | p.ReadRecords | p.ReadPlans):  # the guarded core's reads are answered from the same records
        if isinstance(req, p.ListRecords):
            obs = p.RecordsListed(tuple(records), now)
        elif isinstance(req, p.ReadPlans):
            # No plan store here: the core then learns the nodes from the records (the interior
            # nodes' pages, or a listing), as it does when a tree's plan is gone.
            obs = p.PlansRead(tuple((v, None) for v in req.versions), now)
        else:
            found = tuple(r for q in req.queries for r in listing.page(q[0], q[1], max_items=q[2]).records)
            obs = p.RecordsRead(found, now, record_count=len(listing) if req.zone_size else None)
        st, req, notes = p.step(settings, st, obs)
        events += [n.event for n in notes]
    batches: list[p.SubmitBatch] = []
    while len(batches) < MAX_BATCHES:
        if isinstance(req, p.SubmitBatch):
            batches.append(req)
            st, req, notes = p.step(settings, st, p.BatchAccepted(now, change_id=f"dry-run-{len(batches)}"))
        elif isinstance(req, p.AwaitInsync):
            st, req, notes = p.step(settings, st, p.Insync(True, now))
        else:
            break  # the next request needs the world (a new listing, a sleep): the unit is over
        events += [n.event for n in notes]
    decisive = [e for e in events if e not in ("plan_seen", "lock_attempt", "lock_acquired", "lock_released", "nodes_not_recomputed")]
    outcome = decisive[-1] if decisive else ("not in this plan" if not batches else "batches")
    return WouldApply(endpoint, tuple(batches), outcome)


def describe(result: WouldApply) -> list[str]:
    """The batches in words: one line per batch, one per change below it."""
    out = [f"{result.endpoint}: {len(result.batches)} batch(es), outcome: {result.outcome}"]
    for b in result.batches:
        out.append(f"  batch {b.batch_id} ({b.purpose}, plan {b.plan_version}, {len(b.changes)} changes)")
        for c in b.changes:
            r = c.record
            target = f"ALIAS {r.alias.dns_name}" if r.alias else " ".join(r.values)
            sid = f" [{r.set_identifier} w={r.weight}]" if r.set_identifier else ""
            out.append(f"    {c.action} {r.name} {r.type}{sid} {target}")
    return out


def preview_plan(settings: p.CoreSettings, plan, route53, only: Sequence[str] = ()) -> list[WouldApply]:
    """`would_apply` for every endpoint of `plan` (or those in `only`), each over its zone as
    Route 53 holds it now. Route 53 errors (ClientError, BotoCoreError) reach the caller."""
    from enactor import layout
    from services.dns.snapshot import read_zone
    from services.zones import find_zone_id

    wanted = {layout.root_name(e) for e in only}
    results = []
    for ep in plan.endpoints:
        if wanted and layout.root_name(ep.name) not in wanted:
            continue
        zone_id = find_zone_id(ep.hosted_zone, route53)
        if zone_id is None:
            results.append(WouldApply(ep.name, (), f"zone_missing (no hosted zone {ep.hosted_zone}: skipped)"))
            continue
        zone, _ = read_zone(route53, zone_id, layout.root_name(ep.hosted_zone))
        results.append(would_apply(settings, ep.name, zone_id, plan, zone))
    return results


def as_json(results: Sequence[WouldApply]) -> list[dict[str, Any]]:
    """The batches as boto3 would send them (ChangeBatch.Changes), per endpoint."""
    return [
        {
            "endpoint": r.endpoint,
            "outcome": r.outcome,
            "batches": [
                {"batch_id": b.batch_id, "purpose": b.purpose, "plan_version": b.plan_version,
                 "changes": [c.to_boto() for c in b.changes]}
                for b in r.batches
            ],
        }
        for r in results
    ]


def show(console, results: Sequence[WouldApply], heading: str, json_out: bool) -> None:
    """Print the preview: JSON (`as_json`) on stdout, or `heading` and the batches in words."""
    if json_out:
        print(json.dumps(as_json(results), indent=2, sort_keys=True))
        return
    console.print(heading, highlight=False, markup=False)
    for r in results:
        for line in describe(r):
            console.print(line, highlight=False, markup=False)
