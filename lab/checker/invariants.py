"""The invariants the checker holds every reachable state and every accepted batch to.

- NoEmptyAnswer (state): once a flip has been accepted on an endpoint in this run, a query for
  the endpoint's name reaches at least one address on every weighted branch. Judged by the DNS
  data plane itself (services/dns/answer.py enumerating every branch over a snapshot of the
  zone), so "empty" means what a resolver would get: NOERROR with no address.
- NeverDeleteActive (batch): no accepted batch leaves the root on a tree that was whole before
  the batch and is not after it (a clean-up deleting the tree the root serves).
- Monotonic (batch, guarded mode only): the endpoint's applied version (the `_applied` record,
  else the version the root serves) never goes down.
- Progress (graph): see explore.py; it needs every reachable state, not one.

Every judgement is a pure function of interned zones, so it is memoised per zone (or zone pair).
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.checker.world import State, World
from services.dns.answer import leaf_distribution
from services.dns.snapshot import Snapshot

NO_EMPTY_ANSWER = "NoEmptyAnswer"
NEVER_DELETE_ACTIVE = "NeverDeleteActive"
MONOTONIC = "Monotonic"
PROGRESS = "Progress"
ALL = (NO_EMPTY_ANSWER, NEVER_DELETE_ACTIVE, MONOTONIC, PROGRESS)


@dataclass(frozen=True, slots=True)
class Violation:
    invariant: str
    endpoint: str
    message: str


class Invariants:
    def __init__(self, world: World):
        self.world = world
        self._answers: dict[tuple[int, int], str | None] = {}
        self._edges: dict[tuple[int, int, int], tuple[Violation, ...]] = {}
        self._types = {
            j: tuple(sorted(world.plans[-1].endpoint(ep).record_types)) for j, ep in enumerate(world.endpoints)
        }

    def of_state(self, state: State) -> tuple[Violation, ...]:
        if not state.flipped:
            return ()
        out = []
        for j, zid in enumerate(state.zones):
            if state.flipped >> j & 1:
                problem = self.empty_answer(zid, j)
                if problem is not None:
                    out.append(Violation(NO_EMPTY_ANSWER, self.world.endpoints[j].rstrip("."), problem))
        return tuple(out)

    def empty_answer(self, zid: int, j: int) -> str | None:
        """Why a query for endpoint j can come back empty in this zone, or None if it cannot."""
        key = (zid, j)
        if key in self._answers:
            return self._answers[key]
        world = self.world
        ep = world.endpoints[j]
        snapshot = Snapshot.of([world.zone(zid).zone])
        problem = None
        for rtype in self._types[j]:
            leaves = leaf_distribution(snapshot, ep, rtype)
            empty = [leaf for leaf in leaves if leaf.missing or not leaf.values]
            if not leaves or empty:
                view = world.view(zid, j)
                target = view.root_targets().get(rtype)
                where = f"the root points at {target}, which is missing or incomplete" if target else "there is no root record"
                missing = f" (share {sum(x.probability for x in empty):.0%} of answers)" if leaves else ""
                problem = f"{ep.rstrip('.')} {rtype}: {where}: DNS answers NOERROR with no address{missing}"
                break
        self._answers[key] = problem
        return problem

    def of_batch(self, before: int, after: int, j: int) -> tuple[Violation, ...]:
        key = (before, after, j)
        found = self._edges.get(key)
        if found is None:
            found = self._edges[key] = self._judge_batch(before, after, j)
        return found

    def _judge_batch(self, before: int, after: int, j: int) -> tuple[Violation, ...]:
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
                out.append(
                    Violation(
                        NEVER_DELETE_ACTIVE,
                        ep,
                        f"{ep}: a batch deleted tree {tree_id} (plan {was.version}) while the root served it",
                    )
                )
                break
        if world.bounds.guard:
            a, b = old.applied_version(), new.applied_version()
            if a is not None and b is not None and b < a:
                out.append(Violation(MONOTONIC, ep, f"{ep}: the applied version went down from plan {a} to plan {b}"))
        return tuple(out)

    def goal(self, state: State) -> bool:
        """Every endpoint serves the newest published plan (trivially true before any plan)."""
        if state.published == 0:
            return True
        return all(self.world.view(zid, j).active_version == state.published for j, zid in enumerate(state.zones))
