"""Breadth-first exploration of a World, the Progress check on the explored graph, random walks.

Breadth-first: states are expanded in order of depth, every successor is reduced to its
canonical form (symmetry.py) and looked up in one dict, so no state is expanded twice, and the
first violation found is at the least depth there is: a shortest counterexample.

Progress ("once the planner stops and no new fault is injected, some continuation brings every
endpoint to the newest plan", even with the clock standing still: a continuation of machine
steps alone is a weakly fair one) is a property of the whole graph. The machine steps without
an injected fault are kept (not the planner's publications, lease expiries or faults); after the
space is exhausted, backward reachability from the goal states (every endpoint serving the
newest published plan) marks every state that can still get there; any state left unmarked is
a violation, and the first one in breadth-first order has a shortest path. States cut off by
--max-depth are counted as able to progress (they were not explored), and the result says so.

Decomposition (2 or more endpoints, Bounds.decompose): each endpoint is checked as its own
component (World(endpoint=j)) and the results are combined; see `Decomposition` below for why
that is sound. --decompose off explores the product of the endpoints instead.

Random walks (--random N --seed S) follow one seeded random choice per step from the initial
state for bounds too large to exhaust; the same seed gives the same walks and the same answer.
"""

from __future__ import annotations

import random
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from lab.checker.invariants import PROGRESS, Invariants, Violation
from lab.checker.symmetry import Symmetry
from lab.checker.world import Label, State, World

DEFAULT_WALK_LENGTH = 100


@dataclass
class Counterexample:
    """A run from the initial state that breaks an invariant, in concrete enactor names."""

    kind: str  # "safety" | "progress"
    violations: tuple[Violation, ...]
    labels: list[Label]
    found_after_s: float
    states_when_found: int
    walk: int | None = None  # random walks: which walk (0-based)
    note: str = ""  # decomposition: why the lifted run may need another endpoint's step first

    @property
    def invariants(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(v.invariant for v in self.violations))


@dataclass
class Result:
    world: World
    method: str  # "exhaustive" | "random"
    states: int = 0
    transitions: int = 0
    elapsed_s: float = 0.0
    exhausted: bool = False  # every reachable state (within --max-depth) was expanded
    depth: int = 0  # deepest level reached
    frontier: int = 0  # states not expanded because of --max-depth
    progress_checked: bool = False
    stuck_states: int = 0  # states from which the goal cannot be reached
    counterexamples: list[Counterexample] = field(default_factory=list)
    walks: int = 0
    seed: int | None = None
    explored: list[State] = field(default_factory=list)  # the canonical states, if asked for
    timed_out: bool = False  # stopped by max_seconds / max_states before the space was exhausted
    components: list[Result] = field(default_factory=list)  # the decomposition: one result per endpoint

    @property
    def counterexample(self) -> Counterexample | None:
        return self.counterexamples[0] if self.counterexamples else None

    @property
    def states_per_s(self) -> float:
        return self.states / self.elapsed_s if self.elapsed_s > 0 else 0.0


def explore(
    world: World,
    *,
    stop_at_first: bool = True,
    check_progress: bool = True,
    on_level: Callable[[int, int], None] | None = None,
    keep_states: bool = False,
    on_progress: Callable[[int, int, float], None] | None = None,
    progress_every_s: float = 2.0,
    max_seconds: float | None = None,
    max_states: int | None = None,
) -> Result:
    """Breadth-first over every reachable state within world.bounds.

    `on_progress(states, depth, seconds)` is called about every `progress_every_s` seconds;
    `max_seconds` / `max_states` cut the run (profiling, benchmarks; `timed_out` says so).
    With 2+ endpoints and `world.bounds.decompose` (and not `keep_states`), each endpoint is
    explored alone and the results combined (`Decomposition`); `result.components` has them."""
    if world.bounds.decompose and world.n_endpoints > 1 and not keep_states:
        return _explore_decomposed(
            world, stop_at_first=stop_at_first, check_progress=check_progress, on_level=on_level, on_progress=on_progress,
            progress_every_s=progress_every_s, max_seconds=max_seconds, max_states=max_states,
        )
    return _explore(world, stop_at_first, check_progress, on_level, keep_states, on_progress, progress_every_s, max_seconds, max_states)


def _explore(world, stop_at_first, check_progress, on_level, keep_states, on_progress, progress_every_s, max_seconds, max_states) -> Result:
    started = time.perf_counter()
    last_report = started
    por = world.bounds.por
    bounds = world.bounds
    sym = Symmetry(world, bounds.symmetry)
    canonical = sym.canonical
    inv = Invariants(world)
    result = Result(world, "exhaustive")

    init = canonical(world.initial)
    index: dict[State, int] = {init: 0}
    # Budget subsumption (Bounds.subsume): a state that differs from a visited one only by having
    # spent more of the budgets (lease expiries, lock losses, lost replies, failed requests,
    # freezes, PENDING INSYNC waits) is not explored. No machine step reads those counters or does anything different
    # for them, and an expiry or a fault only needs its counter below the bound. So every run from
    # the state with more spent is a run from the visited one (same steps, same zones, same
    # invariants): one that breaks an invariant is found from the visited one, at no greater
    # depth (breadth-first: it was reached first). Progress is judged over continuations of
    # machine steps alone (below), which the two states share. Exact whatever the core and the
    # engine do: it rests on World only (Move keys and invariants read no budget counter).
    subsume = bounds.subsume
    cores: dict[tuple, int | list[int]] = {(init[0], init[3], init[6], init[7], init[9], init[11]): 0}

    def seen(c: State) -> int | None:
        """The index of `c`, or of a visited state that subsumes it; None if it is new."""
        if not subsume:
            return index.get(c)
        got = cores.get((c[0], c[3], c[6], c[7], c[9], c[11]))
        if got is None:
            return None
        for n in got if type(got) is list else (got,):
            o = states[n]
            if o[1] <= c[1] and o[2] <= c[2] and o[4] <= c[4] and o[5] <= c[5] and o[8] <= c[8] and o[10] <= c[10]:
                return n
        return None

    def add(c: State, n: int) -> None:
        if not subsume:
            index[c] = n
            return
        key = (c[0], c[3], c[6], c[7], c[9], c[11])
        got = cores.get(key)
        if got is None:
            cores[key] = n
        elif type(got) is list:
            got.append(n)
        else:
            cores[key] = [got, n]

    states: list[State] = [init]
    parent = array("i", [-1])
    via: list[Label | None] = [None]
    depth = array("i", [0])
    src, dst = array("I"), array("I")
    frontier = bytearray(1)
    found: dict[str, Counterexample] = {}

    def record(i: int, label: Label | None, violations: tuple[Violation, ...]) -> None:
        fresh = tuple(v for v in violations if v.invariant not in found)
        if not fresh:
            return
        labels = concrete_labels(world, sym, states, parent, via, i, label)
        concrete = tuple(v for v in safety_violations(world, inv, labels) if v.invariant in {f.invariant for f in fresh})
        if not concrete:
            # The renamed run breaks it under other names only (symmetry is inexact for this code):
            # report what was found rather than nothing; --symmetry off gives exact names.
            concrete = fresh
        cx = Counterexample("safety", concrete, labels, time.perf_counter() - started, len(states))
        for v in fresh:
            found.setdefault(v.invariant, cx)
        result.counterexamples.append(cx)

    record(0, None, inv.of_state(init))
    head, level = 0, 0
    transitions = 0
    apply, of_step = world.apply, inv.of_step
    stop = bool(found) and stop_at_first
    while head < len(states) and not stop:
        i = head
        head += 1
        s = states[i]
        d = depth[i]
        if d > level:
            level = d
            if on_level is not None:
                on_level(level, len(states))
        if bounds.max_depth is not None and d >= bounds.max_depth:
            frontier[i] = 1
            result.frontier += 1
            continue
        labels = list(world.labels(s))
        done: dict[Label, tuple] = {}  # successors the ample-set search already computed
        if por:
            labels = _ample(world, canonical, seen, s, labels, done)
        if not (i & 4095) and (on_progress is not None or max_seconds is not None or max_states is not None):
            now = time.perf_counter()
            if (max_seconds is not None and now - started > max_seconds) or (max_states is not None and len(states) >= max_states):
                result.timed_out = True
                stop = True
                break
            if on_progress is not None and now - last_report >= progress_every_s:
                last_report = now
                on_progress(len(states), d, now - started)
        for label in labels:
            got = done.get(label) if done else None
            if got is None:
                t, move, knocked = apply(s, label)
                c = canonical(t)
            else:
                t, move, knocked, c = got
            transitions += 1
            violations = of_step(s, label, move, knocked) if move is not None else ()
            n = seen(c)
            if n is None:
                n = len(states)
                states.append(c)
                add(c, n)
                parent.append(i)
                via.append(label)
                depth.append(d + 1)
                frontier.append(0)
                violations += inv.of_state(c)
            if violations:
                record(i, label, violations)
                if stop_at_first:
                    stop = True
                    break
            if label[0] == "step" and not label[2]:  # Progress: no new plan, no new fault, the clock still
                src.append(i)
                dst.append(n)
    result.transitions = transitions
    result.states = len(states)
    if keep_states:
        result.explored = states
    result.depth = max(depth) if len(depth) else 0
    result.exhausted = not stop
    if result.exhausted and check_progress:
        stuck = _stuck_states(states, src, dst, frontier, inv)
        result.progress_checked = True
        result.stuck_states = len(stuck)
        if stuck:
            first = stuck[0]
            labels = concrete_labels(world, sym, states, parent, via, first, None)
            end = world.initial
            for label in labels:
                end = world.apply(end, label)[0]
            cx = Counterexample("progress", _progress_violation(world, end), labels, time.perf_counter() - started, len(states))
            result.counterexamples.append(cx)
    result.elapsed_s = time.perf_counter() - started
    return result


def _ample(world: World, canonical, seen, s: State, labels: list[Label], done: dict) -> list[Label]:
    """Partial-order reduction: an ample set of the transitions enabled in `s`.

    Every transition of one machine whose steps are local (World.local_machine: they read and
    write only that machine and commute with every other transition) is enough on its own when
    (C2) no invariant can see the step (a plan read changes no zone and no `acquired` flag) and
    (C3, the breadth-first cycle proviso) each of its successors is a new state and it changes the
    machine. Otherwise every enabled transition is explored. Every successor computed here is
    left in `done` (label -> (state, move, knocked, canonical form)), so none is computed twice.
    """
    for k in range(len(s.machines)):
        if not world.local_machine(s, k):
            continue
        mine = [x for x in labels if x[0] == "step" and x[1] == k]
        ok = bool(mine)
        for x in mine:
            t, move, knocked = world.apply(s, x)
            c = canonical(t)
            done[x] = (t, move, knocked, c)
            if t.machines[k] == s.machines[k] or seen(c) is not None:
                ok = False
                break
        if ok:
            return mine
    return labels


# --- Decomposition ------------------------------------------------------------------------------
#
# Endpoints share only the planner (`published`, `invalid`), the clock (`expiries`) and the fault
# budgets (losses, lost replies, failed requests, freezes). A machine of endpoint j reads and
# writes only its own machine, zone j, `applied[j]` and (to enable a fault) a budget counter; its
# move depends on nothing else (World.move's key: the machine, zone j, `published`/`invalid`, the
# fresh tree id, which reads the trees of endpoint j's machines only; `_doomed` looks at endpoint
# j's machines only). So a step of endpoint j commutes with every step of another endpoint.
#
# Component j (World(endpoint=j)) is endpoint j alone with the full budgets, and a lease expiry
# allowed whenever budget remains (in the product another endpoint's lease may be held).
# Projection: pi_j(s) = (published, expiries, endpoint j's own spending of each budget,
# applied[j], zone j, endpoint j's machines).
# 1. Every product run projects onto a component run (drop other endpoints' steps): each kept
#    step is enabled in the component (a fault needs own spending < bound, and own <= total;
#    an expiry is always allowed there) and has the same effect (it reads nothing else).
# 2. Safety: every invariant of a state or a step is about one endpoint and reads only what the
#    projection keeps (zone j, applied[j], whether an endpoint-j machine is mid-unit, the batch).
#    So a product violation is a violation of a reachable component state: no component
#    violation => no product violation. This holds whatever the core and the engine do: it needs
#    only the checker's own World (an endpoint-j move never reads another endpoint).
#    Conversely a component run is a product run with the other endpoints idle, except a lease
#    expiry the component takes when no lease is held anywhere; the product takes it once another
#    endpoint's enactor has taken its lock, which it may do at any moment after the first plan.
#    A component counterexample is shown lifted to the product (machine e of endpoint j is
#    product machine e * endpoints + j); `Counterexample.note` says when a lifted expiry is not
#    enabled as it stands in the product.
# 3. Progress (some continuation without new plans or faults brings every endpoint to the newest plan):
#    - a component state that cannot reach its own goal: every product state projecting onto it
#      cannot reach the product's goal (its continuations project onto component continuations),
#      so it is reported, lifted, as a Progress counterexample;
#    - if every endpoint's projection reaches its goal (Progress's continuations are fault-free
#      machine steps alone, each enabled and doing the same whatever the other endpoints do),
#      the product reaches its goal by doing them one endpoint after another.
#    So the product's Progress holds exactly when every component's does.
# Symmetry and partial-order reduction are applied inside each component as in any World.


def _explore_decomposed(world: World, *, stop_at_first, check_progress, on_level, on_progress, progress_every_s,
                        max_seconds, max_states) -> Result:
    started = time.perf_counter()
    result = Result(world, "exhaustive")
    result.exhausted = True
    inv = Invariants(world)
    n_ep = world.n_endpoints
    for j in range(n_ep):
        part = World(world.bounds, world.core, world.reduce, world.ignore, endpoint=j)
        spent = time.perf_counter() - started
        left_s = None if max_seconds is None else max(0.0, max_seconds - spent)
        left_states = None if max_states is None else max(1, max_states - result.states)
        report = None
        if on_progress is not None:
            def report(states, depth, seconds, base=result.states, offset=spent):
                on_progress(base + states, depth, offset + seconds)
        r = _explore(part, stop_at_first, check_progress, on_level, False, report, progress_every_s, left_s, left_states)
        result.components.append(r)
        result.states += r.states
        result.transitions += r.transitions
        result.depth = max(result.depth, r.depth)
        result.frontier += r.frontier
        result.stuck_states += r.stuck_states
        result.exhausted &= r.exhausted
        result.timed_out |= r.timed_out
        for cx in r.counterexamples:
            result.counterexamples.append(_lift(world, inv, part, j, cx, started))
        if r.timed_out or (stop_at_first and r.counterexamples):
            result.exhausted = False
            break
    done = len(result.components) == n_ep and result.exhausted
    result.progress_checked = done and check_progress and all(r.progress_checked for r in result.components)
    result.counterexamples.sort(key=lambda cx: (cx.kind != "safety", len(cx.labels)))
    result.elapsed_s = time.perf_counter() - started
    return result


def _lift(world: World, inv: Invariants, part: World, j: int, cx: Counterexample, started: float) -> Counterexample:
    """A component's counterexample as a run of the whole world (machine e -> e * endpoints + j)."""
    n_ep = world.n_endpoints
    labels = [(x[0], x[1] * n_ep + j, *x[2:]) if x[0] == "step" else x for x in cx.labels]
    state, note = world.initial, ""
    for n, label in enumerate(labels):
        if not note and label not in set(world.labels(state)):
            note = (f"step {n + 1} ({label[0]}) is not enabled as it stands in the whole world: there it comes once an enactor "
                    f"of another endpoint has taken its lock (decomposition; --decompose off explores the whole world)")
        state = world.apply(state, label)[0]
    violations = cx.violations
    if cx.kind == "safety":
        violations = tuple(v for v in safety_violations(world, inv, labels) if v.invariant in cx.invariants) or violations
    return replace(cx, labels=labels, found_after_s=time.perf_counter() - started, note=note, violations=violations)


def safety_violations(world: World, inv: Invariants, labels: list[Label]) -> tuple[Violation, ...]:
    """What the last step of the run `labels` breaks (its batch, or the state it reaches)."""
    state = world.initial
    found: tuple[Violation, ...] = inv.of_state(state) if not labels else ()
    for n, label in enumerate(labels):
        t, move, knocked = world.apply(state, label)
        if n == len(labels) - 1:
            found += inv.of_step(state, label, move, knocked)
            found += inv.of_state(t)
        state = t
    return found


def _chain(parent, i: int) -> list[int]:
    out = [i]
    while parent[i] >= 0:
        i = parent[i]
        out.append(i)
    return out[::-1]


def concrete_labels(world: World, sym: Symmetry, states, parent, via, i: int, last: Label | None) -> list[Label]:
    """The path to canonical state i (then `last`) as one run of the world with fixed names.

    Each stored label was taken from a canonical state; renamed runs mix names. From the real
    initial state, every step picks the transition whose successor has the next canonical form
    (the stored label first: it is the right one whenever no renaming happened on the way).
    """
    chain = _chain(parent, i)
    labels = [via[n] for n in chain[1:]]
    targets = [states[n] for n in chain[1:]]
    run: list[Label] = []
    state = world.initial
    for label, target in zip(labels, targets, strict=True):
        state, chosen = _follow(world, sym, state, label, lambda t, target=target: sym.canonical(t) == target)
        run.append(chosen)
    if last is not None:
        wanted = sym.canonical(world.apply(states[i], last)[0])
        _, chosen = _follow(world, sym, state, last, lambda t: sym.canonical(t) == wanted, same_kind=last)
        run.append(chosen)
    return run


def _follow(world: World, sym: Symmetry, state: State, label: Label, ok, same_kind: Label | None = None):
    enabled = list(world.labels(state))
    candidates = ([label] if label in enabled else []) + [x for x in enabled if x != label]
    if same_kind is not None:
        candidates = [x for x in candidates if x[0] == same_kind[0] and x[2:] == same_kind[2:]]
    for cand in candidates:
        t = world.apply(state, cand)[0]
        if ok(t):
            return t, cand
    raise RuntimeError(f"symmetry reduction is not exact here: no renaming of {label} reproduces the explored step")


def _stuck_states(states, src, dst, frontier, inv: Invariants) -> list[int]:
    """Indices (ascending, so breadth-first order) of states that cannot reach a goal state
    without new plans. Reverse adjacency in compressed rows, then one backward sweep."""
    n = len(states)
    good = bytearray(n)
    for i, s in enumerate(states):
        if frontier[i] or inv.goal(s):
            good[i] = 1
    start = array("I", bytes(4 * (n + 1)))
    for d in dst:
        start[d + 1] += 1
    for i in range(n):
        start[i + 1] += start[i]
    fill = array("I", start)
    preds = array("I", bytes(4 * len(dst)))
    for s_, d in zip(src, dst, strict=True):
        preds[fill[d]] = s_
        fill[d] += 1
    todo = [i for i in range(n) if good[i]]
    while todo:
        d = todo.pop()
        for k in range(start[d], start[d + 1]):
            p = preds[k]
            if not good[p]:
                good[p] = 1
                todo.append(p)
    return [i for i in range(n) if not good[i]]


def _progress_violation(world: World, state: State) -> tuple[Violation, ...]:
    out = []
    for j, zid in enumerate(state.zones):
        view = world.view(zid, j)
        if view.active_version != state.published:
            serving = "nothing (the root dangles)" if view.dangling else (
                f"plan {view.active_version}" if view.active_version is not None else "nothing (no root yet)")
            ep = world.endpoints[j].rstrip(".")
            out.append(Violation(PROGRESS, ep, f"{ep} serves {serving}; no continuation without new plans brings it to plan {state.published}"))
    return tuple(out)


def progress_from(world: World, state: State, limit: int = 300_000) -> tuple[bool | None, int]:
    """Whether some continuation from `state` without new plans or faults reaches a goal state:
    (True / False, states looked at), or (None, ...) when `limit` states did not settle it."""
    sym = Symmetry(world, world.bounds.symmetry)
    inv = Invariants(world)
    start = sym.canonical(state)
    seen = {start}
    todo = [start]
    while todo:
        s = todo.pop()
        if inv.goal(s):
            return True, len(seen)
        for label in world.labels(s):
            if label[0] != "step" or label[2]:  # as explore.py's Progress: fault-free machine steps alone
                continue
            c = sym.canonical(world.apply(s, label)[0])
            if c not in seen:
                seen.add(c)
                todo.append(c)
        if len(seen) > limit:
            return None, len(seen)
    return False, len(seen)


def random_walks(world: World, walks: int, seed: int, length: int | None = None) -> Result:
    """`walks` seeded random runs of `length` steps; stops at the first violation."""
    started = time.perf_counter()
    length = length or world.bounds.max_depth or DEFAULT_WALK_LENGTH
    sym = Symmetry(world, world.bounds.symmetry)
    inv = Invariants(world)
    rng = random.Random(seed)
    seen: set[State] = set()
    result = Result(world, "random", seed=seed)
    for w in range(walks):
        state = world.initial
        seen.add(sym.canonical(state))
        labels: list[Label] = []
        for _ in range(length):
            options = list(world.labels(state))
            label = options[rng.randrange(len(options))]
            t, move, knocked = world.apply(state, label)
            result.transitions += 1
            labels.append(label)
            violations = inv.of_step(state, label, move, knocked) + inv.of_state(t)
            seen.add(sym.canonical(t))
            state = t
            if violations:
                result.counterexamples.append(
                    Counterexample("safety", violations, labels, time.perf_counter() - started, len(seen), walk=w)
                )
                break
        result.walks = w + 1
        result.depth = max(result.depth, len(labels))
        if result.counterexamples:
            break
    result.states = len(seen)
    result.elapsed_s = time.perf_counter() - started
    return result
