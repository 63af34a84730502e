"""Applying the cell map: the endpoints' lock protocol, without trees (pure: no I/O, no clock).

The cell map (services/cells/cellmap.py) is one CNAME per account in one zone. Changing an
account's cell is an UPSERT of its CNAME: atomic per record already, so there is no tree to
build and no root to flip. What stays is what makes the endpoints safe, reused from the enactor
core rather than copied: the same lock record and preamble (enactor/layout.py's names and
values, `protocol.lock_verdict`), the same batch limits and splitting (`protocol.chunk_batches`,
which reserves room for the preamble and the compare-and-swap), and the same `_applied` record,
compare-and-swapped in the last batch of the unit, so a map older than the applied one never
goes in. The core (enactor/protocol.py) is a machine for trees and is not changed for this: this
module is the small machine for a zone of CNAMEs.

One unit of work, decided from one listing of the zone:
- the applied map is as new as the newest one: nothing to do;
- the lock is held by another enactor and not expired: wait;
- else the changes (UPSERT every CNAME that differs, DELETE every account name the map dropped)
  go out in batches, each starting with the lock preamble (DELETE the lock as last seen, CREATE
  it anew with the next counter); the last batch releases the lock (expiry now) and swaps
  `_applied` from the value listed to this map's version. A batch that fails changes nothing
  (Route 53 applies a batch all or nothing); the runner lists again and decides again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from enactor import layout
from enactor import protocol as core
from services.cells.cellmap import APPLIED_TREE, CellMap
from services.route53.records import Change, RecordSet, normalise_name


@dataclass(frozen=True)
class Unit:
    """What to do now. kind: idle | wait | apply (then `batches` hold the calls, in order)."""

    kind: str
    reason: str
    applied: int | None  # the map version the zone's _applied record holds, as listed
    batches: tuple[core.SubmitBatch, ...] = ()
    changes: int = 0  # account records written or deleted (preamble and swap not counted)


def desired(cellmap: CellMap) -> dict[str, RecordSet]:
    """The CNAME record set of every account of the map, by name."""
    return {
        normalise_name(name): RecordSet(name, "CNAME", ttl=cellmap.ttl, values=(normalise_name(target),))
        for name, target in cellmap.names().items()
    }


def account_changes(cellmap: CellMap, records: tuple[RecordSet, ...]) -> tuple[Change, ...]:
    """UPSERT every account CNAME that is missing or differs; DELETE (exactly as listed) every CNAME
    in the zone that the map no longer names. Sorted by name, so the same zone gives the same batches."""
    want = desired(cellmap)
    have = {r.name: r for r in records if r.type == "CNAME"}
    changes = [Change("UPSERT", r) for name, r in sorted(want.items()) if have.get(name) != r]
    changes += [Change("DELETE", r) for name, r in sorted(have.items()) if name not in want]
    return tuple(changes)


def decide(settings: core.CoreSettings, zone_id: str, records: tuple[RecordSet, ...], cellmap: CellMap, now: float) -> Unit:
    """The unit of work for the newest map, from one listing of the accounts' zone."""
    zone = layout.read_endpoint(cellmap.zone, records)
    applied = zone.applied_value
    if applied is not None and applied.version >= cellmap.version:
        return Unit("idle", f"map {applied.version} is applied (newest {cellmap.version})", applied.version)
    verdict = core.lock_verdict(settings, zone, now)
    if verdict == "held":
        holder = zone.lock_value
        return Unit("wait", f"lock held by {holder.holder if holder else '?'}", applied.version if applied else None)
    changes = account_changes(cellmap, records)
    state, _ = core.start(cellmap.zone, zone_id)
    state = replace(state, lock=zone.lock, applied=zone.applied)
    cas = RecordSet(layout.applied_name(cellmap.zone), "TXT", ttl=settings.record_ttl,
                    values=(layout.AppliedValue(cellmap.version, APPLIED_TREE).render(),))
    parts = [p.changes for p in core.chunk_batches(settings, state, "build", changes, cas, ())] if changes else [()]
    seen = zone.lock_value
    counter = seen.counter if seen else 0
    lock = zone.lock
    batches = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        counter += 1
        value = layout.LockValue(settings.enactor_id, int(now) if last else int(now) + settings.lock_ttl_s, counter)
        new_lock = RecordSet(layout.lock_name(cellmap.zone), "TXT", ttl=settings.record_ttl, values=(value.render(),))
        preamble = ((Change("DELETE", lock),) if lock is not None else ()) + (Change("CREATE", new_lock),)
        swap = (((Change("DELETE", zone.applied),) if zone.applied is not None else ()) + (Change("CREATE", cas),)) if last else ()
        batches.append(core.SubmitBatch(preamble + part + swap, f"{settings.enactor_id}@{counter}",
                                        "flip" if last else "build", cellmap.version, last))
        lock = new_lock
    return Unit("apply", f"map {cellmap.version} over {applied.version if applied else 'none'}",
                applied.version if applied else None, tuple(batches), len(changes))
