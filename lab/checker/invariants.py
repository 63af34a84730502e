"""The invariants the checker holds every reachable state and every step to.

What is served is judged by the DNS data plane's own answer logic (services/dns/answer.py's
`leaf_distribution` over a services/dns/snapshot.py Snapshot of the engine's zone), per endpoint
and per record type: every branch a weighted tree can take, with its probability. "Empty" means
what a resolver would get, NOERROR with no address. The expected answer is the plan of the last
flip Route 53 accepted on the endpoint in this run (`State.applied`), not the `_applied` record.

State invariants:
- NoEmptyAnswer: once a flip has been accepted on an endpoint, every record type of the applied
  plan answers an address on every branch.
- ServedIsApplied: once no enactor is mid-unit on the endpoint (no unit with an accepted batch
  still going), every record type serves exactly the addresses of the applied plan (the load
  balancers with weight), and a type the plan does not have serves nothing.
- RollbackIntact (guarded): the rollback record, where present, leads to addresses on every
  branch (never to a missing tree).
- NoHalfTree: a root never points at a tree whose records exist but which is incomplete.
With --start legacy the zone starts as legacy mode left it (a half tree, a rollback to a missing
tree): the state invariants are judged once the guarded core's first flip or heal on the endpoint
was accepted; the step invariants from its first batch on.
Step invariants (one accepted batch, or one machine step):
- NeverDeleteActive: no accepted batch leaves the root on a tree that was whole before the batch
  and is not after it.
- Monotonic (guarded): neither the `_applied` record's version nor the version the root serves
  goes down, and no flip installs a plan older than the one last flipped.
- LockExclusion: every accepted batch takes the lock for its own enactor with a higher counter,
  and never over another holder's unexpired lease (a holder whose lease expired and was taken
  over gets nothing accepted).
- CoreRaised / EngineRaised: the core or the engine raised while carrying out a step (the world
  reports these on the move instead of crashing).
Graph invariant:
- Progress: see explore.py; it needs every reachable state, not one.

Every judgement is a pure function of interned zones (and the applied plan), so it is memoised.
`ignore` names invariants not to report (the mutant gate ignores what the unmutated code already
breaks, so a known defect neither hides nor fakes a kill).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from enactor import layout
from lab.checker.world import POISON_PLAN, T0, Label, Move, State, World
from services.dns.answer import leaf_distribution
from services.dns.snapshot import Snapshot

NO_EMPTY_ANSWER = "NoEmptyAnswer"
SERVED_IS_APPLIED = "ServedIsApplied"
ROLLBACK_INTACT = "RollbackIntact"
NO_HALF_TREE = "NoHalfTree"
NEVER_DELETE_ACTIVE = "NeverDeleteActive"
MONOTONIC = "Monotonic"
LOCK_EXCLUSION = "LockExclusion"
CORE_RAISED = "CoreRaised"
ENGINE_RAISED = "EngineRaised"
PROGRESS = "Progress"
ALL = (
    NO_EMPTY_ANSWER, SERVED_IS_APPLIED, ROLLBACK_INTACT, NO_HALF_TREE, NEVER_DELETE_ACTIVE, MONOTONIC,
    LOCK_EXCLUSION, CORE_RAISED, ENGINE_RAISED, PROGRESS,
)  # fmt: skip
GUARDED_ONLY = (ROLLBACK_INTACT, MONOTONIC)
RECORD_TYPES = ("A", "AAAA")


@dataclass(frozen=True, slots=True)
class Violation:
    invariant: str
    endpoint: str
    message: str


@dataclass(frozen=True, slots=True)
class Served:
    """What queries of one name and type can get: the addresses on branches with a share, and
    whether some branch (or the whole answer) ends with no address."""

    addresses: frozenset[str]
    empty_share: float  # 0.0: every branch has an address

    @property
    def nothing(self) -> bool:
        return not self.addresses


def served(zone, name: str, rtype: str) -> Served:
    """`name`/`rtype` answered from `zone` by the DNS data plane's logic (every weighted branch)."""
    leaves = leaf_distribution(Snapshot.of([zone]), name, rtype)
    if not leaves:
        return Served(frozenset(), 1.0)
    addresses = frozenset(a for leaf in leaves if leaf.probability > 0 for a in leaf.values)
    empty = sum(leaf.probability for leaf in leaves if leaf.missing or not leaf.values)
    return Served(addresses, empty)


class Invariants:
    def __init__(self, world: World, ignore: Iterable[str] = ()):
        self.world = world
        self.ignore = frozenset(ignore) | frozenset(getattr(world, "ignore", ()))
        unknown = self.ignore - set(ALL)
        if unknown:
            raise ValueError(f"unknown invariant(s) {', '.join(sorted(unknown))}; known: {', '.join(ALL)}")
        self._served: dict[tuple[int, int, str], Served] = {}
        self._states: dict[tuple, tuple[Violation, ...]] = {}
        self._edges: dict[tuple, tuple[Violation, ...]] = {}
        self._expected: dict[tuple[int, int], dict[str, frozenset[str]]] = {}
        self.types = {
            j: tuple(rt for rt in RECORD_TYPES if any(rt in p.endpoint(ep).record_types for p in world.plans))
            for j, ep in enumerate(world.endpoints)
        }

    def _keep(self, violations: list[Violation]) -> tuple[Violation, ...]:
        return tuple(v for v in violations if v.invariant not in self.ignore)

    # -- what is served ----------------------------------------------------------------------

    def served(self, zid: int, j: int, rtype: str, name: str | None = None) -> Served:
        key = (zid, j, rtype) if name is None else (zid, j, rtype + " " + name)
        out = self._served.get(key)
        if out is None:
            out = self._served[key] = served(self.world.zone(zid).zone, name or self.world.endpoints[j], rtype)
        return out

    def expected(self, version: int, j: int) -> dict[str, frozenset[str]]:
        """Per record type of plan `version`, the addresses endpoint j should serve."""
        key = (version, j)
        out = self._expected.get(key)
        if out is None:
            ep = self.world.plans[version - 1].endpoint(self.world.endpoints[j])
            weighted = [t for t in ep.targets if t.weight > 0] or list(ep.targets)
            out = self._expected[key] = {
                rt: frozenset(a for t in weighted for a in (t.ipv4 if rt == "A" else t.ipv6)) for rt in ep.record_types
            }
        return out

    def mid_unit(self, state: State, j: int) -> bool:
        """Some enactor on endpoint j holds the lock in the middle of a unit (a batch accepted, more to come)."""
        acquired = self.world.acquired
        return any(acquired(m) for m in state.machines[j :: self.world.n_endpoints])

    # -- state invariants -----------------------------------------------------------------------

    def of_state(self, state: State) -> tuple[Violation, ...]:
        out: tuple[Violation, ...] = ()
        for j, zid in enumerate(state.zones):
            version = state.applied[j]
            key = (zid, j, version, version and not self.mid_unit(state, j))
            found = self._states.get(key)
            if found is None:
                found = self._states[key] = self._keep(self._judge_state(zid, j, version, key[3]))
            out += found
        return out

    def _judge_state(self, zid: int, j: int, version: int, settled: bool) -> list[Violation]:
        world = self.world
        ep = world.endpoints[j].rstrip(".")
        view = world.view(zid, j)
        out: list[Violation] = []
        if not version and world.bounds.start == "legacy":
            return out  # the damage legacy mode left, before the guarded core's first flip: see below
        for rtype, tid in view.root_targets().items():
            tree = view.tree(tid)
            if tree is not None and not tree.complete:
                out.append(Violation(NO_HALF_TREE, ep, f"{ep} {rtype}: the root points at tree {tid}, which is incomplete"))
        if world.bounds.guard:
            for rtype, tid in view.rollback_targets().items():
                s = self.served(zid, j, rtype, layout.rollback_name(world.endpoints[j]))
                if s.empty_share > 0:
                    out.append(Violation(ROLLBACK_INTACT, ep, f"{ep} {rtype}: the rollback points at tree {tid}, which is missing or incomplete"))
        if not version:
            return out
        expected = self.expected(version, j)
        roots = view.root_targets()
        for rtype in self.types[j]:
            s = self.served(zid, j, rtype)
            if rtype in expected:
                if s.empty_share > 0:
                    target = roots.get(rtype)
                    where = f"the root points at {target}, which is missing or incomplete" if target else "there is no root record"
                    share = f" (share {s.empty_share:.0%} of answers)" if s.empty_share < 1 else ""
                    out.append(Violation(NO_EMPTY_ANSWER, ep, f"{ep} {rtype}: {where}: DNS answers NOERROR with no address{share}"))
                elif settled and s.addresses != expected[rtype]:
                    out.append(Violation(SERVED_IS_APPLIED, ep, (
                        f"{ep} {rtype} serves {', '.join(sorted(s.addresses))} but the applied plan {version} has "
                        f"{', '.join(sorted(expected[rtype]))}")))
            elif settled and not s.nothing:
                out.append(Violation(SERVED_IS_APPLIED, ep, (
                    f"{ep} {rtype} still serves {', '.join(sorted(s.addresses))} (root -> {roots.get(rtype)}) although the applied "
                    f"plan {version} has no {rtype} records")))
        return out

    # -- step invariants ------------------------------------------------------------------------

    def of_step(self, state: State, label: Label, move: Move | None, knocked=()) -> tuple[Violation, ...]:
        """What one transition from `state` breaks: its machine step's error, its accepted batch."""
        if move is None or (move.zone is None and move.error is None and not knocked):
            return ()
        k = label[1]
        out: tuple[Violation, ...] = ()
        for k2, m in ((k, move), *knocked):
            if m.error is not None:
                who, ep = self.world.who(k2)
                out += self._keep([Violation(m.error[0], ep, f"{who} on {ep}: {m.error[1]}")])
        if move.zone is not None:
            j = k % self.world.n_endpoints
            out += self.of_batch(state.zones[j], move.zone, j, k // self.world.n_endpoints, move, state.applied[j])
        return out

    def of_batch(self, before: int, after: int, j: int, e: int, move: Move, last_flip: int) -> tuple[Violation, ...]:
        flip = move.request.plan_version if move.flip else 0
        key = (before, after, j, e, flip and (flip, last_flip))
        found = self._edges.get(key)
        if found is None:
            found = self._edges[key] = self._keep(self._judge_batch(before, after, j, e, flip, last_flip))
        return found

    def _judge_batch(self, before: int, after: int, j: int, e: int, flip: int, last_flip: int) -> list[Violation]:
        world = self.world
        ep = world.endpoints[j].rstrip(".")
        old, new = world.view(before, j), world.view(after, j)
        out = []
        old_roots = old.root_targets()
        for rtype, tree_id in new.root_targets().items():
            if tree_id is None or old_roots.get(rtype) != tree_id:
                continue
            was, now = old.tree(tree_id), new.tree(tree_id)
            if was is not None and was.complete and (now is None or not now.complete):
                out.append(Violation(NEVER_DELETE_ACTIVE, ep, f"{ep}: a batch deleted tree {tree_id} (plan {was.version}) while the root served it"))
                break
        if world.bounds.guard:
            a, b = old.applied_version(), new.applied_version()
            if a is not None and b is not None and b < a:
                out.append(Violation(MONOTONIC, ep, f"{ep}: the applied version went down from plan {a} to plan {b}"))
            sa, sb = old.active_version, new.active_version
            if sa is not None and sb is not None and sb < sa:
                out.append(Violation(MONOTONIC, ep, f"{ep}: the plan the root serves went down from plan {sa} to plan {sb}"))
            elif flip and flip < last_flip:
                out.append(Violation(MONOTONIC, ep, f"{ep}: a flip installed plan {flip} after plan {last_flip} had been flipped"))
        me = world.enactor_ids[e]
        lock_before, lock_after = old.lock_value, new.lock_value
        if lock_after is None or lock_after.holder != me:
            out.append(Violation(LOCK_EXCLUSION, ep, f"{ep}: Route 53 accepted a batch of {me} that does not leave the lock as {me}'s"))
        elif lock_before is not None:
            if lock_before.holder != me and lock_before.expires > T0:
                out.append(Violation(LOCK_EXCLUSION, ep, (
                    f"{ep}: {me}'s batch was accepted over {lock_before.holder}'s unexpired lease (counter {lock_before.counter})")))
            elif lock_after.counter <= lock_before.counter:
                out.append(Violation(LOCK_EXCLUSION, ep, (
                    f"{ep}: {me}'s batch left the lock counter at {lock_after.counter}, not above {lock_before.counter}")))
        return out

    def goal(self, state: State) -> bool:
        """Every endpoint serves the newest published plan (trivially true before any plan, and
        while the newest object in the store fails the schema or is the plan Route 53 refuses
        (--refused-plans): then an enactor keeps what DNS serves, as the standards ask of bad
        input, until a newer valid plan arrives; an enactor that had not read the plan before it
        was covered has no plan it may apply). Per endpoint, also when every enactor has refused
        the newest plan (--zone-quota: its tree cannot fit, plan_too_large, never retried): DNS
        keeps serving the last good tree, which NoEmptyAnswer and ServedIsApplied judge)."""
        if state.published == 0 or state.invalid == 1 or refused_newest(self.world, state):
            return True
        w = self.world
        return all(w.view(zid, j).active_version == state.published or w.refused_everywhere(state, j) for j, zid in enumerate(state.zones))


def refused_newest(world: World, state: State) -> bool:
    """The newest published plan is the one Route 53 refuses (--refused-plans: never retried)."""
    return bool(world.bounds.refused_plans) and state.published == POISON_PLAN
