"""A counterexample as numbered steps in human terms, and as JSON (`--json`, read by `--replay`).

The steps are re-run through the World from the initial state, so the text is drawn from what
the core itself reported (its notes: the events the runner logs) and from the zones before and
after each step, e.g. "enactor-c flips the root of dynamodb.us-east-1.api.aws to plan 1 while
plan 4 is active".
"""

from __future__ import annotations

import dataclasses
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enactor import layout
from lab.checker.explore import Counterexample
from lab.checker.world import (
    CHOICES,
    EXPIRE,
    FAIL,
    FREEZE,
    LOCK_TTL_S,
    LOSE_LOCK,
    PENDING,
    PUBLISH,
    PUBLISH_INVALID,
    START,
    Bounds,
    Label,
    Move,
    State,
    World,
)
from services.dns.answer import resolve
from services.dns.snapshot import Snapshot

FORMAT = "dnsctl-check/1"
MAX_ROUNDS = 8


@dataclass
class Step:
    n: int
    label: Label
    actor: str  # "planner", "clock" or an enactor id
    endpoint: str | None
    text: str
    outcome: str = ""
    fresh_tree_id: str | None = None
    notes: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "label": list(self.label),
            "actor": self.actor,
            "endpoint": self.endpoint,
            "outcome": self.outcome,
            "fresh_tree_id": self.fresh_tree_id,
            "text": self.text,
            "notes": self.notes,
        }


def run(world: World, labels: list[Label], start: State | None = None, first: int = 1) -> tuple[list[Step], State]:
    """Carry out `labels` from `start` (the initial state) and describe every step."""
    state = start if start is not None else world.initial
    steps = []
    for n, label in enumerate(labels, start=first):
        steps.append(describe(world, state, label, n))
        state = world.apply(state, label)[0]
    return steps, state


def describe(world: World, state: State, label: Label, n: int) -> Step:
    after, move, knocked = world.apply(state, label)
    if label == PUBLISH:
        return Step(n, label, "planner", None, f"the planner publishes plan {after.published}")
    if label == PUBLISH_INVALID:
        return Step(n, label, "planner", None, f"the newest object in the plan store fails the schema (after plan {after.published}, injected)")
    if label[0] == START:
        view = world.view(after.zones[0], 0)
        served = f"the root on plan {view.active_version}" if view.active_version is not None else (
            "the root dangling" if view.dangling else "no root")
        trees = ", ".join(f"{t.tree_id} (plan {t.version}{'' if t.complete else ', incomplete'})" for t in view.trees) or "no tree"
        return Step(n, label, "deploy", None, (
            f"the guard is deployed on {world.endpoints[0].rstrip('.')} as legacy run {label[1]} left it: plans 1..{after.published} "
            f"published, {served}, trees {trees}"))
    if label == EXPIRE:
        held = []
        for j, zid in enumerate(state.zones):
            lock = world.view(zid, j).lock_value
            if lock is not None and lock.expires > world.now(state):
                held.append(f"{lock.holder}'s lease on {world.endpoints[j].rstrip('.')}")
        return Step(n, label, "clock", None, f"{LOCK_TTL_S} s pass: {', '.join(held) or 'every lease'} expires")
    k = label[1]
    who, ep = world.who(k)
    assert move is not None
    fresh = world.fresh_tree_id(state, k) if world.machine(state.machines[k]).phase == "list" else None
    # A fault that carries nothing out has its own text below (and an observation _move_text does not read).
    told_below = move.error is not None or label[2] in (FAIL, FREEZE, PENDING)
    text = "" if told_below else _move_text(world, state, k, move, label[2] == LOSE_LOCK)
    if move.error is not None:
        pass
    elif move.outcome == "failed" or label[2] == FAIL:
        text = f"{who}'s {type(move.request).__name__} request on {ep} fails before anything is carried out (injected): it backs off"
    elif label[2] == FREEZE:
        what = "plan read" if type(move.request).__name__ == "ReadNewestPlan" else f"{move.request.purpose} batch for plan {move.request.plan_version}"
        text = f"the freeze switch is on: {who}'s {what} on {ep} is answered Frozen, nothing is carried out; {who} drops its unit and waits"
    elif label[2] == PENDING:
        text = f"{who} waits for its tree's changes on {ep} to be INSYNC; the wait ends with them still PENDING: it defers the flip and backs off"
    elif type(move.request).__name__ == "AwaitInsync":
        text = f"{who} waits until Route 53 reports its tree's changes on {ep} INSYNC, then goes on to the flip"
    elif move.outcome.startswith("lost_reply"):
        done = "applied" if move.outcome == "lost_reply_accepted" else "rejected"
        text = f"{who}'s {move.request.purpose} batch for plan {move.request.plan_version} on {ep} is {done} by Route 53, but the reply is lost (injected): {who} backs off"
    if move.error is not None:
        text = f"{who} on {ep}: {move.error[0]}: {move.error[1]}"
    for k2, m2 in knocked:
        other = world.who(k2)[0]
        text += f"; {other}'s pending {m2.request.purpose} batch cannot match the new lock: rejected, {other} backs off"
    notes = [_note_json(x) for _, m in ((k, move), *knocked) for x in m.notes]
    return Step(n, label, who, ep, text, move.outcome, fresh, notes)


def _note_json(note) -> dict[str, Any]:
    return {"event": note.event, **{k: _plain(v) for k, v in note.fields}}


def _plain(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return [_plain(x) for x in v]
    return v


def _lock_text(view: layout.EndpointZone, who: str, now: int) -> str:
    lock = view.lock_value
    if view.lock is None:
        return "the lock is free"
    if lock is None:
        return "the lock record is unreadable"
    if lock.holder == who:
        return "the lock is its own"
    if lock.expires <= now:
        return f"{lock.holder}'s lock is released or expired"
    return f"the lock is held by {lock.holder}"


def _active(view: layout.EndpointZone) -> str:
    if not view.roots:
        return "nothing is served yet"
    if view.dangling:
        target = next(iter(view.root_targets().values()), None)
        return f"the root dangles (tree {target} is gone)"
    return f"plan {view.active_version} is active"


def _move_text(world: World, state: State, k: int, move: Move, lost: bool) -> str:
    core = world.core
    who, ep = world.who(k)
    j = k % world.n_endpoints
    events = {note.event: note for note in move.notes}
    req = move.request
    before = world.view(state.zones[j], j)
    st_before = world.machine(state.machines[k])
    st_after = world.machine(move.machine)
    if isinstance(req, core.ReadNewestPlan):
        plan = move.observation.plan
        if "plan_seen" in events:
            return f"{who} reads plan {plan.version} from the plan store and takes it up for {ep}"
        if "plan_rejected" in events:
            what = f"plan {plan.version}" if plan else "the newest object in the plan store"
            return f"{who} reads {what} and rejects it for {ep}: {events['plan_rejected'].get('reason')}"
        if plan is None and move.observation.invalid is not None:
            return f"{who} reads the plan store: the newest object still fails the schema (rejected before) for {ep}"
        return f"{who} reads the plan store: {'no plan yet' if plan is None else f'plan {plan.version}, nothing new'} for {ep}"
    if isinstance(req, core.ListRecords) or (isinstance(req, core.ReadRecords) and st_before.phase == "read"):
        # (a guarded unit's first page, or its whole zone: told as a listing)
        lock = _lock_text(before, who, world.now(state))
        v = st_before.plan.version if st_before.plan else None
        if "refused_stale" in events:
            return f"{who} lists {ep} and finds its plan {v} older than the applied plan {events['refused_stale'].get('applied_version')}: it drops the plan"
        if "up_to_date" in events:
            return f"{who} lists {ep} and finds plan {v} already applied"
        cleaning = st_before.task == "cleanup"
        if "lock_lost" in events:
            return f"{who} lists {ep} to {'clean up' if cleaning else f'apply plan {v}'}: {lock}, so it backs off"
        if "lock_attempt" in events:
            if cleaning and not any(p.changes for p in st_after.unit):
                return f"{who} lists {ep} to clean up after a refusal: nothing to delete, but its own lease is still held: it releases it"
            if cleaning:
                trees = _cleanup_trees(st_after.unit)
                return f"{who} lists {ep} to clean up ({lock}; {_active(before)}): it will delete {trees or 'unused leaves'}"
            builds = sum(1 for p in st_after.unit if p.purpose == "build")
            flip = next((p for p in st_after.unit if p.purpose in ("flip", "heal")), None)
            tree = st_after.tree.tree_id if st_after.tree else "?"
            checked = " (its one freshness check passes)" if not world.bounds.guard and st_after.checked and not st_before.checked else ""
            if builds:
                plan_text = f"{builds} build batch{'es' if builds > 1 else ''} for tree {tree}" + (", then the flip" if flip else "")
            else:
                plan_text = f"{'a heal' if flip is not None and flip.purpose == 'heal' else 'the flip'} to tree {tree}, already built"
            return f"{who} lists {ep} ({lock}; {_active(before)}) and goes for plan {v}{checked}: {plan_text}"
        if cleaning or st_before.task == "cleanup":
            return f"{who} lists {ep} to clean up: nothing to delete"
        return f"{who} lists {ep}"
    if isinstance(req, core.SubmitBatch):
        v, purpose = req.plan_version, req.purpose
        if lost:
            return f"{who} loses its lock attempt on {ep} to another writer (injected lock loss): its {purpose} batch for plan {v} is rejected, it backs off"
        if move.outcome == "rejected":
            note = events.get("flip_failed") or events.get("cleanup_aborted") or events.get("build_failed") or events.get("lock_lost")
            cause = note.get("cause") if note else "?"
            message = " ".join(note.get("messages") or ()) if note else ""
            return f"{who}'s {purpose} batch for plan {v} on {ep} is rejected ({cause}): {message[:200]}"
        if purpose == "build":
            built = events.get("tree_built")
            return f"{who}'s build batch {req.batch_id} for plan {v} is accepted" + (f": tree {built.get('tree_id')} is complete" if built else "")
        if purpose in ("flip", "heal"):
            flipped = events.get("flipped")
            tree = flipped.get("tree_id") if flipped else "?"
            rollback = ", ".join(flipped.get("rollback_to") or ()) if flipped else ""
            tail = f"; the rollback now names {rollback}" if rollback else ""
            if purpose == "heal":
                return f"{who} heals the root of {ep}: flips it to plan {v} (tree {tree}) while {_active(before)}{tail}"
            return f"{who} flips the root of {ep} to plan {v} (tree {tree}) while {_active(before)}{tail}"
        if not st_before.unit[0].changes:
            return f"{who}'s release of its lease on {ep} is accepted (the lock is written back already expired)"
        deleted = events.get("cleanup_deleted")
        roots = set(before.root_targets().values())
        parts = []
        if deleted:
            for tid, tv in zip(deleted.get("trees") or (), deleted.get("tree_versions") or (), strict=False):
                mark = ", the tree the root serves" if tid in roots else ""
                parts.append(f"{tid} (plan {tv}{mark})")
        return f"{who}'s clean-up of {ep} is accepted: it deletes {', '.join(parts) or 'unused leaves'}"
    return f"{who} {type(req).__name__}"


def _cleanup_trees(unit) -> str:
    names = []
    for planned in unit:
        info = dict(planned.info)
        for tid, tv in zip(info.get("trees") or (), info.get("tree_versions") or (), strict=False):
            names.append(f"{tid} (plan {tv})")
    return ", ".join(dict.fromkeys(names))


# -- the end state --------------------------------------------------------------------------


def dns_answer(world: World, zid: int, j: int, rtype: str = "A") -> dict[str, Any]:
    """What the DNS data plane answers for endpoint j in this zone (services/dns/answer.py)."""
    snapshot = Snapshot.of([world.zone(zid).zone])
    answer = resolve(snapshot, world.endpoints[j], rtype, random.Random(0))
    return {
        "rcode": answer.rcode.name,
        "addresses": [r.value for r in answer.answers if r.type == rtype],
        "dangling": answer.dangling,
    }


def endpoint_summary(world: World, state: State, j: int) -> dict[str, Any]:
    zid = state.zones[j]
    view = world.view(zid, j)
    roots = view.root_targets()
    root = next(iter(roots.values()), None)
    rollback = next(iter(view.rollback_targets().values()), None)
    tree = view.tree(root)
    rb_tree = view.tree(rollback)
    lock = view.lock_value
    applied = view.applied_value
    return {
        "endpoint": world.endpoints[j].rstrip("."),
        "root_tree": root,
        "root_plan": tree.version if tree else None,
        "root_tree_exists": bool(tree and tree.complete),
        "rollback_tree": rollback,
        "rollback_plan": rb_tree.version if rb_tree else None,
        "rollback_tree_exists": bool(rb_tree and rb_tree.complete),
        "applied": {"version": applied.version, "tree": applied.tree_id} if applied else None,
        "lock": {"holder": lock.holder, "expires": lock.expires, "counter": lock.counter} if lock else None,
        "trees": [{"tree": t.tree_id, "plan": t.version, "complete": t.complete} for t in view.trees],
        "newest_plan": state.published,
        "dns": dns_answer(world, zid, j),
    }


def summary_lines(summary: dict[str, Any]) -> list[str]:
    s = summary
    root = "no root record" if s["root_tree"] is None else (
        f"root -> {s['root_tree']} (plan {s['root_plan']})" if s["root_tree_exists"] else f"root -> {s['root_tree']} (MISSING)")
    rollback = "" if s["rollback_tree"] is None else (
        f", rollback -> {s['rollback_tree']}" + (f" (plan {s['rollback_plan']})" if s["rollback_tree_exists"] else " (MISSING)"))
    dns = s["dns"]
    answer = f"{dns['rcode']} with {len(dns['addresses'])} address{'es' if len(dns['addresses']) != 1 else ''}"
    if dns["addresses"]:
        answer += f" ({', '.join(dns['addresses'])})"
    lines = [f"{s['endpoint']}: {root}{rollback}; newest plan {s['newest_plan']}"]
    lock = s["lock"]
    applied = s["applied"]
    extra = []
    if applied:
        extra.append(f"_applied says plan {applied['version']} ({applied['tree']})")
    if lock:
        extra.append(f"lock: {lock['holder']} counter {lock['counter']}")
    if extra:
        lines.append("  " + "; ".join(extra))
    lines.append(f"  DNS (services/dns/answer.py over the zone): {s['endpoint']} A -> {answer}")
    return lines


# -- the whole counterexample ---------------------------------------------------------------


@dataclass
class Report:
    """A counterexample, rendered."""

    bounds: Bounds
    core: str
    counterexample: Counterexample
    steps: list[Step]
    continuation: list[Step]
    final: list[dict[str, Any]]
    after_continuation: list[dict[str, Any]]

    def lines(self) -> list[str]:
        cx = self.counterexample
        out = [f"Counterexample ({cx.kind}: {', '.join(cx.invariants)}), {len(self.steps)} steps:"]
        width = len(str(len(self.steps) + len(self.continuation)))
        for step in self.steps:
            out.append(f"  {step.n:>{width}}. {step.text}")
        for v in cx.violations:
            out.append(f"  => {v.invariant} broken: {v.message}")
        if getattr(cx, "note", ""):
            out.append(f"  (note: {cx.note})")
        out.append("State at the end:")
        for s in self.final:
            out += ["  " + line for line in summary_lines(s)]
        if self.continuation:
            out.append(f"Every enactor in turn, without new plans ({len(self.continuation)} steps): the fleet goes in circles")
            for step in self.continuation:
                out.append(f"  {step.n:>{width}}. {step.text}")
            for s in self.after_continuation:
                out += ["  " + line for line in summary_lines(s)]
        return out

    def as_json(self) -> dict[str, Any]:
        cx = self.counterexample
        return {
            "format": FORMAT,
            "bounds": dataclasses.asdict(self.bounds),
            "core": self.core,
            "kind": cx.kind,
            "invariants": list(cx.invariants),
            "violations": [dataclasses.asdict(v) for v in cx.violations],
            "found_after_s": round(cx.found_after_s, 3),
            "states_when_found": cx.states_when_found,
            "walk": cx.walk,
            "steps": [s.as_json() for s in self.steps],
            "continuation": [s.as_json() for s in self.continuation],
            "final": self.final,
        }


def stuck_loop(world: World, state: State, first: int) -> tuple[list[Step], State]:
    """Every enactor in turn, round after round, until a round ends where an earlier one ended
    (the fleet is going in circles) or MAX_ROUNDS: what "stuck" looks like."""
    labels: list[Label] = []
    seen = {state}
    end = state
    for _ in range(MAX_ROUNDS):
        for k in range(len(state.machines)):
            labels.append(("step", k, ""))
            end = world.apply(end, labels[-1])[0]
        if end in seen:
            break
        seen.add(end)
    return run(world, labels, state, first)


def report(world: World, cx: Counterexample, stuck: bool = False) -> Report:
    """`stuck`: also show a continuation (set when Progress fails from the counterexample's end)."""
    steps, state = run(world, cx.labels)
    final = [endpoint_summary(world, state, j) for j in range(world.n_endpoints)]
    continuation: list[Step] = []
    after = []
    if cx.kind == "progress" or stuck:
        continuation, end = stuck_loop(world, state, first=len(steps) + 1)
        after = [endpoint_summary(world, end, j) for j in range(world.n_endpoints)]
    return Report(world.bounds, world.core.__name__, cx, steps, continuation, final, after)


def write_json(path: Path, rep: Report) -> None:
    path.write_text(json.dumps(rep.as_json(), indent=2) + "\n")


class TraceFileError(ValueError):
    """A --replay file that is not a counterexample written by `dnsctl check --json`."""


def read_json(path: Path) -> tuple[Bounds, list[Label], list[Label], dict[str, Any]]:
    """(bounds, the steps' labels, the continuation's labels, the whole document)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TraceFileError(f"{path}: cannot read a counterexample: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TraceFileError(f"{path}: not a counterexample written by `dnsctl check --json` (format {FORMAT})")
    try:
        bounds = Bounds(**data["bounds"])
        labels = [_label(s["label"]) for s in data["steps"]]
        continuation = [_label(s["label"]) for s in data.get("continuation", [])]
    except (KeyError, TypeError, ValueError) as exc:
        raise TraceFileError(f"{path}: malformed counterexample: {exc}") from exc
    return bounds, labels, continuation, data


def _label(raw: Any) -> Label:
    label = tuple(raw)
    if label in (PUBLISH, PUBLISH_INVALID, EXPIRE) or (len(label) == 2 and label[0] == START and isinstance(label[1], int) and label[1] >= 0) or (
        len(label) == 3 and label[0] == "step" and isinstance(label[1], int) and label[1] >= 0 and label[2] in CHOICES
    ):
        return label
    raise ValueError(f"not a step: {raw!r}")
