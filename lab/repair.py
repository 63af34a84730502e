"""Repair an endpoint straight on Route 53: the tool AWS's operators lacked on 20 October.

It needs no enactor and no planner: it reads the endpoint's hosted zone through the control
API, finds the intact trees (layout.read_endpoint), and points the root and the rollback record
at the chosen one through the lock protocol. When no intact tree is left (or none of the asked
version) it rebuilds the plan's tree from the plan store (S3) first.

Nothing here re-implements the protocol. The tree comes from the core's own builder
(protocol.tree_records), and the batches are a unit of the core's own machinery: the core splits
the changes into batches that fit Route 53's limits, puts the lock preamble in front of each
(DELETE the lock exactly as seen + CREATE it held by the repair; the last batch writes it back
already expired, releasing it), adds the guard's compare-and-swap on `_applied` when the zone has
one, waits for INSYNC before the flip, and reads each outcome (protocol.step). Only the decision
is the operator's: which tree, and whether to take a lock that a stuck enactor still holds
(--break-lock: the preamble then deletes that holder's lock, exactly as seen).

An `_applied` record (guarded stacks) is rewritten with `operator=<who>`, so the prober takes
a lower version for an operator's restore, not for a stale plan.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from enactor import layout
from enactor import protocol as p
from enactor.propagation import wait_insync
from services.dns.snapshot import read_zone
from services.logs import get_logger
from services.plan.model import EndpointPlan, Plan, PlanInvalid, Target
from services.plan.store import PlanStore, StoreError
from services.route53.engine import same_record_set
from services.route53.records import AliasTarget, Change, RecordSet
from services.zones import ZoneNotFound, find_zone_id

HOLDER = "dnsctl-repair"
INSYNC_TIMEOUT_S = 45.0
INSYNC_POLL_S = 0.5


class RepairError(Exception):
    """The repair cannot go ahead; the message says why and what to do."""


class LockHeld(RepairError):
    def __init__(self, lock: layout.LockValue, now: float):
        self.lock = lock
        super().__init__(
            f"the lock is held by {lock.holder} for {lock.expires - now:.0f} s more: wait for it to expire, "
            "stop that enactor, or take the lock with --break-lock"
        )


@dataclass(frozen=True, slots=True)
class Chosen:
    """The tree the root will serve: an intact one, or one to rebuild from a plan."""

    tree_id: str
    version: int
    rebuild: bool
    why: str


@dataclass
class RepairPlan:
    """Everything the repair would do, decided before anything is written (what --dry-run prints)."""

    endpoint: str
    zone_id: str
    view: layout.EndpointZone
    target: Chosen
    settings: p.CoreSettings
    state: p.EndpointState  # the core's machine with the repair's unit in hand
    lock_verdict: str  # free | expired | mine | held
    breaks_lock: bool
    batches: tuple[p.SubmitBatch, ...]  # the unit, as it will be submitted if every batch is accepted
    now: float

    @property
    def intact(self) -> list[layout.TreeInZone]:
        return intact_trees(self.view)


@dataclass
class RepairResult:
    plan: RepairPlan
    notes: list[p.Note] = field(default_factory=list)
    change_ids: list[str] = field(default_factory=list)
    after: layout.EndpointZone | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.after is not None and not self.after.dangling and self.after.active_tree is not None


def intact_trees(view: layout.EndpointZone) -> list[layout.TreeInZone]:
    """Complete trees whose metadata names their plan, newest plan first."""
    return sorted((t for t in view.trees if t.complete and t.version is not None), key=lambda t: (-(t.version or 0), t.tree_id))


def read_view(route53, endpoint: str) -> tuple[str, layout.EndpointZone]:
    """The endpoint's hosted zone (named like it, or like one of its parents) and its layout."""
    labels = layout.root_name(endpoint).rstrip(".").split(".")
    for k in range(len(labels) - 1):
        name = ".".join(labels[k:])
        zone_id = find_zone_id(name, route53)
        if zone_id is not None:
            zone, _ = read_zone(route53, zone_id, layout.root_name(name))
            return zone_id, layout.read_endpoint(endpoint, zone)
    raise ZoneNotFound(layout.root_name(endpoint))


def plan_of_tree(view: layout.EndpointZone, tree: layout.TreeInZone, hosted_zone: str) -> EndpointPlan:
    """What an intact tree serves, read back from Route 53 alone: its metadata and its leaves."""
    assert tree.meta is not None
    leaves = {(r.name, r.type): r for r in view.leaves}
    types = tree.meta.record_types or tree.record_types
    targets = []
    for m in tree.meta.members:
        if tree.meta.lb_count is not None:
            # Shared-node layout: the walk read each LB's addresses from its bottom node.
            targets.append(Target(lb_id=m.lb_id, az=m.az, weight=m.weight, ipv4=m.ipv4, ipv6=m.ipv6))
            continue
        v4 = leaves.get((m.leaf, "A"))
        v6 = leaves.get((m.leaf, "AAAA"))
        targets.append(Target(lb_id=m.lb_id, az=m.az, weight=m.weight, ipv4=v4.values if v4 else (), ipv6=v6.values if v6 else ()))
    return EndpointPlan(name=view.endpoint, hosted_zone=hosted_zone, record_types=types, targets=tuple(targets))


def choose(view: layout.EndpointZone, to_version: int | None) -> tuple[layout.TreeInZone | None, str]:
    """The intact tree to point at (None: rebuild), and why."""
    intact = intact_trees(view)
    if to_version is None:
        if intact:
            return intact[0], f"the newest intact tree (plan {intact[0].version})"
        return None, "no intact tree is left: the newest plan's tree is rebuilt from the plan store"
    same = [t for t in intact if t.version == to_version]
    if same:
        active = view.active_tree
        pick = active if active is not None and active in same else same[0]
        return pick, f"the intact tree of plan {to_version}"
    return None, f"no intact tree of plan {to_version}: its tree is rebuilt from the plan store"


def _who() -> str:
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "operator"
    return f"{user}@{socket.gethostname()}".replace(" ", "_").replace("=", "_").replace('"', "")


def prepare(
    route53,
    endpoint: str,
    *,
    to_version: int | None = None,
    break_lock: bool = False,
    store: PlanStore | None = None,
    operator: str | None = None,
    now: float | None = None,
) -> RepairPlan:
    """Read the zone and decide the repair; writes nothing. Raises RepairError (LockHeld) when it cannot go ahead."""
    now = time.time() if now is None else now
    try:
        zone_id, view = read_view(route53, endpoint)
    except (ClientError, BotoCoreError) as exc:
        raise RepairError(f"cannot read {endpoint} from Route 53: {exc}") from exc
    except LookupError as exc:  # services.zones.ZoneNotFound
        raise RepairError(str(exc)) from exc
    ep_name = view.endpoint
    guarded = view.applied is not None
    settings = p.CoreSettings(HOLDER, version_guard=guarded)
    tree, why = choose(view, to_version)
    if tree is not None:
        version = tree.version or 0
        target = Chosen(tree.tree_id, version, False, why)
        try:
            ep_plan = plan_of_tree(view, tree, ep_name.rstrip("."))
        except ValueError as exc:
            raise RepairError(f"tree {tree.tree_id} cannot be read back as a plan ({exc}): choose another with --to-version") from exc
        changes: tuple[Change, ...] = ()
    else:
        plan = _plan_from_store(store, to_version)
        ep_plan = plan.endpoint(ep_name)
        if ep_plan is None or not ep_plan.targets:
            raise RepairError(f"plan {plan.version} has no load balancers for {ep_name.rstrip('.')}: choose another with --to-version")
        version = plan.version
        target = Chosen(layout.TREE_PREFIX + uuid.uuid4().hex, version, True, why)
        built = p.tree_records(settings, ep_name, zone_id, ep_plan, p.TreeInHand(target.tree_id, version, int(now)))
        present = {r.key: r for r in view_records(view)}
        # Leaves are shared by trees: only what is missing or different is written.
        changes = tuple(
            Change("CREATE" if r.key not in present else "UPSERT", r)
            for r in built if r.key not in present or not same_record_set(present[r.key], r)
        )

    lock_verdict = p.lock_verdict(settings, view, now)
    breaks_lock = lock_verdict == "held"
    if breaks_lock and not break_lock:
        raise LockHeld(view.lock_value, now)  # type: ignore[arg-type]

    flip = _flip(settings, view, zone_id, ep_plan, target, operator or _who())
    state = p.EndpointState(
        endpoint=ep_name, zone_id=zone_id, task=p.Task.IDLE, plan=p.PlanInHand(version, ep_plan),
        lock=view.lock, applied=view.applied, applied_version=view.applied_version() or 0,
    )
    # The core's batching and preamble for the repair's unit: the build (if any), then the flip.
    unit = p.chunk_batches(settings, state, "build", changes, None, (("tree_id", target.tree_id),)) + (flip,)
    state = p.next_batch(settings, replace(state, unit=unit, acquired=False), now, [])
    return RepairPlan(ep_name, zone_id, view, target, settings, state, lock_verdict, breaks_lock, _preview(settings, state, now), now)


def view_records(view: layout.EndpointZone) -> list[RecordSet]:
    out = [*view.roots, *view.rollbacks, *view.leaves, *(r for t in view.trees for r in t.records)]
    return out + [r for r in (view.lock, view.applied) if r is not None]


def _plan_from_store(store: PlanStore | None, version: int | None) -> Plan:
    if store is None:
        raise RepairError("no intact tree to point at, and no plan store to rebuild one from (give --bucket/--region)")
    try:
        plan = store.newest() if version is None else store.get(version)
    except PlanInvalid as exc:
        raise RepairError(f"the plan store holds a damaged plan at {exc.key} ({exc.reason}): choose another with --to-version") from exc
    except StoreError as exc:
        raise RepairError(f"cannot read the plan store to rebuild the tree: {exc}") from exc
    if plan is None:
        raise RepairError("no intact tree is left and the plan store holds no plan: publish one (`dnsctl plan trigger`)")
    return plan


def _flip(settings: p.CoreSettings, view: layout.EndpointZone, zone_id: str, ep_plan: EndpointPlan, target: Chosen, who: str) -> p.Planned:
    """Root and rollback, for every record type the tree serves, to the chosen tree."""
    alias = AliasTarget(layout.tree_name(view.endpoint, target.tree_id), zone_id)
    changes = tuple(
        Change("UPSERT", RecordSet(name, rtype, alias=alias))
        for rtype in sorted(ep_plan.record_types)
        for name in (layout.root_name(view.endpoint), layout.rollback_name(view.endpoint))
    )
    cas = None
    if settings.version_guard:
        text = f"version={target.version} tree={target.tree_id} operator={who}"
        cas = RecordSet(layout.applied_name(view.endpoint), "TXT", ttl=settings.record_ttl, values=(layout.quote_txt(text),))
    info = (
        ("tree_id", target.tree_id),
        ("from_tree", next(iter(view.root_targets().values()), None)),
        ("rollback_to", (target.tree_id,)),
        ("healed", view.dangling),
        ("operator", who),
    )
    return p.Planned("heal" if view.dangling else "flip", changes, cas, info)


def _preview(settings: p.CoreSettings, state: p.EndpointState, now: float) -> tuple[p.SubmitBatch, ...]:
    """The unit's batches, each as the core would submit it after the previous one is accepted."""
    batches = []
    st, request = state, p.request_of(state)
    while isinstance(request, p.SubmitBatch | p.AwaitInsync):
        if isinstance(request, p.AwaitInsync):
            st, request, _ = p.step(settings, st, p.Insync(True, now))
            continue
        batches.append(request)
        st, request, _ = p.step(settings, st, p.BatchAccepted(now, f"preview-{len(batches)}"))
    return tuple(batches)


def execute(route53, plan: RepairPlan) -> RepairResult:
    """Submit the unit batch by batch; stop at the first rejection (nothing after it is written)."""
    result = RepairResult(plan)
    log = get_logger(enactor=HOLDER, endpoint=plan.endpoint.rstrip("."))
    log.warning("repair_started", tree_id=plan.target.tree_id, plan_version=plan.target.version, rebuild=plan.target.rebuild,
                breaks_lock=plan.breaks_lock, lock_holder=plan.view.lock_value.holder if plan.view.lock_value else None)
    st, request = plan.state, p.request_of(plan.state)
    while isinstance(request, p.SubmitBatch | p.AwaitInsync):
        if isinstance(request, p.AwaitInsync):
            waited = wait_insync(route53, request.change_ids, INSYNC_TIMEOUT_S, INSYNC_POLL_S, enactor=HOLDER, endpoint=plan.endpoint.rstrip("."))
            obs: p.Observation = p.Insync(waited.insync, time.time())
        else:
            obs = _submit(route53, plan.zone_id, request)
            if isinstance(obs, p.BatchAccepted):
                result.change_ids.append(obs.change_id)
        st, request, notes = p.step(plan.settings, st, obs)
        for note in notes:
            if note.event != "backoff":
                result.notes.append(note)
                log.info(note.event, **{k: list(v) if isinstance(v, tuple) else v for k, v in note.fields if k != "endpoint"})
        if isinstance(obs, p.BatchRejected | p.RequestFailed) or isinstance(obs, p.Insync) and not obs.ok:
            result.error = _failure(obs)
            log.warning("repair_failed", error=result.error)
            break
    try:
        _, result.after = read_view(route53, plan.endpoint)
    except (ClientError, BotoCoreError) as exc:
        result.error = result.error or f"repaired, but reading the zone back failed: {exc}"
    if result.ok:
        log.warning("repair_done", tree_id=plan.target.tree_id, plan_version=plan.target.version)
    return result


def _submit(route53, zone_id: str, batch: p.SubmitBatch) -> p.Observation:
    try:
        reply = route53.change_resource_record_sets(
            HostedZoneId=zone_id, ChangeBatch={"Comment": batch.comment + " (repair)", "Changes": [c.to_boto() for c in batch.changes]}
        )
    except ClientError as exc:
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        if code in ("InvalidChangeBatch", "InvalidInput"):
            return p.BatchRejected((str(err.get("Message", "")),), code, time.time())
        return p.RequestFailed(f"{code}: {err.get('Message', '')}", time.time())
    except BotoCoreError as exc:
        return p.RequestFailed(f"{type(exc).__name__}: {exc}", time.time())
    return p.BatchAccepted(time.time(), reply["ChangeInfo"]["Id"])


def _failure(obs: Any) -> str:
    if isinstance(obs, p.BatchRejected):
        cause = "someone else wrote the lock meanwhile; run the repair again" if any("_lock." in m for m in obs.messages) else ""
        return f"Route 53 rejected the batch ({obs.error_code}): {' '.join(obs.messages)[:500]}" + (f" ({cause})" if cause else "")
    if isinstance(obs, p.RequestFailed):
        return f"Route 53 could not be reached: {obs.error}"
    return "the rebuilt tree did not become INSYNC in time; nothing was flipped (run the repair again)"


def describe_change(change: Change) -> str:
    r = change.record
    what = f"ALIAS -> {r.alias.dns_name}" if r.alias else " ".join(r.values)
    weight = f" weight={r.weight} id={r.set_identifier}" if r.set_identifier else ""
    return f"{change.action:<6} {r.name} {r.type}{weight} {what}"
