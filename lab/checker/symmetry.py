"""Symmetry reduction: the enactors are interchangeable, so states that differ only by a
renaming of the enactors are explored once.

An enactor's identity appears only inside strings: the lock holder ("holder=enactor-b ..."),
batch ids ("enactor-b@4") and the checker's tree ids ("t-bp3", and the names built from them:
"t-bp3.<endpoint>.", "_meta.t-bp3.<endpoint>.", "i-bp3-0", "version=3 tree=t-bp3"). A renaming
rewrites those strings in a machine state or a zone by walking the core's frozen dataclasses
generically (a field the core adds later is renamed too) and moves each machine to its new
enactor's slot. The canonical form of a state is the least of its n! renamings compared as
tuples of interned ids. The zones decide first: the least renaming of a zones tuple, and which
renamings give it, is memoised per zones tuple (there are few), so only the renamings that tie
on the zones rename the machines (usually one); renamed components are memoised too.

Exactness: the core breaks ties between two trees of the same plan version by tree id (which
intact tree a heal names as the rollback, the order of a clean-up's deletions), and a renaming
can swap such a tie. `dnsctl check --symmetry off` explores without the reduction; the tests
check that both give the same verdicts.
"""

from __future__ import annotations

import itertools
import re

from lab.checker.world import State, World, rewrite_strings
from services.route53.engine import IndexedZone
from services.route53.records import Zone

# "enactor-b" as a whole word, and the letter of a checker tree id ("t-bp3", "i-bp3-0").
_NAMES = re.compile(r"(?<![a-z0-9])(?:(enactor-)([a-z])(?![a-z0-9])|([ti]-)([a-z])(?=p\d))")


class Symmetry:
    """Canonical forms of states of one World under renaming of its enactors."""

    def __init__(self, world: World, enabled: bool = True):
        self.world = world
        n = world.n_enactors if enabled else 1
        # perm[e] = the index enactor e gets; permutation 0 is the identity.
        self.perms = [tuple(p) for p in itertools.permutations(range(n))] if enabled else [tuple(range(world.n_enactors))]
        self._letters = [
            {chr(ord("a") + e): chr(ord("a") + perm[e]) for e in range(len(perm))} for perm in self.perms
        ]
        self._strings: list[dict[str, str]] = [{} for _ in self.perms]
        self._machines: list[dict[int, int]] = [{} for _ in self.perms]
        self._zones: list[dict[int, int]] = [{} for _ in self.perms]
        # Renamed records by identity: zones share most record objects (the engine keeps the ones a
        # batch does not touch), so a zone renames only the records it has not met yet.
        self._records: list[dict[int, object]] = [{} for _ in self.perms]
        self._least: dict[tuple[int, ...], tuple[tuple[int, ...], tuple[int, ...]]] = {}
        # For renaming i, the old position of the machine that lands in each new position.
        n_ep = world.n_endpoints
        self._sources = []
        for perm in self.perms:
            src = [0] * (len(perm) * n_ep)
            for e, new_e in enumerate(perm):
                for j in range(n_ep):
                    src[new_e * n_ep + j] = e * n_ep + j
            self._sources.append(src)

    def canonical(self, state: State) -> State:
        zones, machines = state.zones, state.machines
        least = self._least.get(zones)
        if least is None:
            least = self._least[zones] = self._least_zones(zones)
        best_z, perms = least
        if len(perms) == 1:
            i = perms[0]
            if i == 0:
                return state
            mmemo = self._machines[i]
            try:
                m = tuple([mmemo[machines[q]] for q in self._sources[i]])
            except KeyError:
                m = self._renamed(zones, machines, i)[1]
            return state._replace(zones=best_z, machines=m)
        best_m = None
        for i in perms:
            if i == 0:
                m = machines
            else:
                mmemo = self._machines[i]
                try:
                    m = tuple([mmemo[machines[q]] for q in self._sources[i]])
                except KeyError:
                    m = self._renamed(zones, machines, i)[1]
            if best_m is None or m < best_m:
                best_m = m
        if best_m is machines and best_z is zones:
            return state
        return state._replace(zones=best_z, machines=best_m)

    def _least_zones(self, zones: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The least renaming of `zones` and every renaming that gives it: only those compete on
        the machines. Zones are few (a few thousand) beside states (millions), so this is
        memoised per zones tuple and a canonical form usually renames the machines once."""
        renamed = []
        for i in range(len(self.perms)):
            if i == 0:
                renamed.append(zones)
                continue
            zmemo = self._zones[i]
            for x in zones:
                if x not in zmemo:
                    zmemo[x] = self._rename_zone(x, i)
            renamed.append(tuple([zmemo[x] for x in zones]))
        best = min(renamed)
        return best, tuple(i for i, z in enumerate(renamed) if z == best)

    def rename(self, state: State, i: int) -> State:
        zones, machines = self._renamed(state.zones, state.machines, i)
        return state._replace(zones=zones, machines=machines)

    def _renamed(self, zones: tuple[int, ...], machines: tuple[int, ...], i: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        zmemo, mmemo, sources = self._zones[i], self._machines[i], self._sources[i]
        try:
            z = tuple([zmemo[x] for x in zones])
        except KeyError:
            for x in zones:
                if x not in zmemo:
                    zmemo[x] = self._rename_zone(x, i)
            z = tuple([zmemo[x] for x in zones])
        try:
            m = tuple([mmemo[machines[q]] for q in sources])
        except KeyError:
            for x in machines:
                if x not in mmemo:
                    mmemo[x] = self._rename_machine(x, i)
            m = tuple([mmemo[machines[q]] for q in sources])
        return z, m

    def _rename_str(self, i: int):
        memo, letters = self._strings[i], self._letters[i]

        def sub(m: re.Match) -> str:
            if m.group(1):
                return m.group(1) + letters.get(m.group(2), m.group(2))
            return m.group(3) + letters.get(m.group(4), m.group(4))

        def rename(s: str) -> str:
            out = memo.get(s)
            if out is None:
                out = memo[s] = _NAMES.sub(sub, s) if ("enactor-" in s or "-" in s) else s
            return out

        return rename

    def _rename_machine(self, mid: int, i: int) -> int:
        st = self.world.machine(mid)
        renamed = rewrite_strings(st, self._rename_str(i))
        return mid if renamed is st else self.world.machines.add(renamed)

    def _rename_zone(self, zid: int, i: int) -> int:
        izone = self.world.zone(zid)
        rename = self._rename_str(i)
        memo = self._records[i]
        records = []
        for r in izone.zone:
            out = memo.get(id(r))
            if out is None:
                out = memo[id(r)] = rewrite_strings(r, rename)  # every zone stays interned: ids are never reused
            records.append(out)
        if all(a is b for a, b in zip(records, izone.zone, strict=True)):
            return zid
        zone = Zone.of(izone.zone.name, records, zone_id=izone.zone.zone_id)
        return self.world.intern_zone(IndexedZone.of(zone))
