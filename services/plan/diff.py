"""What changes from one plan to another, per endpoint: the preview an operator reads before a change.

Pure: two plans in (the first may be None: nothing published yet), a `PlanDiff` out. Per endpoint
it names the load balancers added and removed, the ones re-weighted (old -> new Route 53 weight),
the ones whose addresses changed, and a change of record types; an endpoint only in one plan is
added or removed as a whole. `dnsctl plan diff A B`, every `--dry-run` and every publish print it
(`lines()`); the REST API returns `as_dict()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.plan.model import EndpointPlan, Plan, Target


@dataclass(frozen=True)
class Reweighted:
    lb_id: str
    old: int
    new: int


@dataclass(frozen=True)
class Readdressed:
    lb_id: str
    old: tuple[str, ...]
    new: tuple[str, ...]


@dataclass(frozen=True)
class EndpointDiff:
    name: str
    status: str  # "added" | "removed" | "changed"
    record_types: tuple[tuple[str, ...], tuple[str, ...]] | None = None  # (old, new) when they differ
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    reweighted: tuple[Reweighted, ...] = ()
    readdressed: tuple[Readdressed, ...] = ()

    @property
    def empty(self) -> bool:
        return self.status == "changed" and not (
            self.record_types or self.added or self.removed or self.reweighted or self.readdressed
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.name,
            "status": self.status,
            "record_types": None
            if self.record_types is None
            else {"old": list(self.record_types[0]), "new": list(self.record_types[1])},
            "added": list(self.added),
            "removed": list(self.removed),
            "reweighted": [{"lb_id": r.lb_id, "old": r.old, "new": r.new} for r in self.reweighted],
            "addresses_changed": [
                {"lb_id": r.lb_id, "old": list(r.old), "new": list(r.new)} for r in self.readdressed
            ],
        }


@dataclass(frozen=True)
class PlanDiff:
    old_version: int | None
    new_version: int
    endpoints: tuple[EndpointDiff, ...] = field(default=())  # only endpoints with a change

    @property
    def empty(self) -> bool:
        return not self.endpoints

    def as_dict(self) -> dict[str, Any]:
        return {
            "old_version": self.old_version,
            "new_version": self.new_version,
            "empty": self.empty,
            "endpoints": [e.as_dict() for e in self.endpoints],
        }

    def lines(self) -> list[str]:
        """The diff in words, one line per fact, for terminals and logs."""
        return diff_lines(self.as_dict())


def _addresses(t: Target) -> tuple[str, ...]:
    return (*t.ipv4, *t.ipv6)


def endpoint_diff(old: EndpointPlan | None, new: EndpointPlan | None) -> EndpointDiff:
    if old is None and new is None:
        raise ValueError("endpoint_diff needs at least one side")
    if new is None:
        return EndpointDiff(old.name, "removed", removed=tuple(sorted(t.lb_id for t in old.targets)))
    if old is None:
        return EndpointDiff(new.name, "added", added=tuple(sorted(t.lb_id for t in new.targets)))
    before = {t.lb_id: t for t in old.targets}
    after = {t.lb_id: t for t in new.targets}
    both = sorted(before.keys() & after.keys())
    return EndpointDiff(
        new.name,
        "changed",
        record_types=None if old.record_types == new.record_types else (old.record_types, new.record_types),
        added=tuple(sorted(after.keys() - before.keys())),
        removed=tuple(sorted(before.keys() - after.keys())),
        reweighted=tuple(
            Reweighted(i, before[i].weight, after[i].weight) for i in both if before[i].weight != after[i].weight
        ),
        readdressed=tuple(
            Readdressed(i, _addresses(before[i]), _addresses(after[i]))
            for i in both
            if _addresses(before[i]) != _addresses(after[i])
        ),
    )


def plan_diff(old: Plan | None, new: Plan) -> PlanDiff:
    """Everything that changes when `new` replaces `old` (None: nothing published yet)."""
    before = {e.name: e for e in old.endpoints} if old else {}
    after = {e.name: e for e in new.endpoints}
    diffs = (endpoint_diff(before.get(n), after.get(n)) for n in sorted(before.keys() | after.keys()))
    return PlanDiff(old.version if old else None, new.version, tuple(d for d in diffs if not d.empty))


def diff_lines(diff: dict[str, Any]) -> list[str]:
    """Render `PlanDiff.as_dict()` (as it comes over REST, too) as lines of text."""
    old = diff.get("old_version")
    head = f"plan {old if old is not None else '(none)'} -> {diff.get('new_version')}"
    if diff.get("empty"):
        return [f"{head}: no change to DNS"]
    out = [f"{head}:"]
    for e in diff.get("endpoints", []):
        name = e["endpoint"]
        if e["status"] != "changed":
            lbs = e["added"] or e["removed"]
            out.append(f"  {name}: endpoint {e['status']} ({len(lbs)} LBs: {', '.join(lbs) or '-'})")
            continue
        out.append(f"  {name}:")
        if e.get("record_types"):
            rt = e["record_types"]
            out.append(f"    record types {'/'.join(rt['old'])} -> {'/'.join(rt['new'])}")
        if e["added"]:
            out.append(f"    added: {', '.join(e['added'])}")
        if e["removed"]:
            out.append(f"    removed: {', '.join(e['removed'])}")
        for r in e["reweighted"]:
            out.append(f"    {r['lb_id']}: weight {r['old']} -> {r['new']}")
        for r in e["addresses_changed"]:
            out.append(f"    {r['lb_id']}: addresses {' '.join(r['old']) or '-'} -> {' '.join(r['new']) or '-'}")
    return out
