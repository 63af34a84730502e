"""The checker's cellular world: cells, each its own DNS management system, and the cell map between them.

`dnsctl check --cells 2` (issue 16 item 5) asks two questions of the cellular design:
- CellIsolation: can anything a cell's planner or enactors do change what DNS answers for a name of
  another cell, or for an account mapped to another cell? Judged on every transition, by comparing
  the other cells' answers before and after it.
- NoEmptyAnswer through the CNAME: does every account's own name (`<account>.ddb.us-east-1.api.aws`,
  a CNAME to its cell's name or to the legacy regional name) answer addresses in every state,
  a move between cells included? A legacy-mode cell may lose the October race and empty its own
  accounts: that is the blast radius the verdict reports, and it must stay inside that cell.

Theory of operation. Nothing is re-modelled. Each cell is a lab/checker/world.py World of its own
(the real core, enactor/protocol.py, against the real Route 53 engine) built in the cell's
namespace: its endpoint `cell-N.ddb.us-east-1.api.aws` in its own hosted zone, its own plan stream
(the model's plans stamped for the cell, dual-stack, with addresses no other cell has), its own
enactors and its own lock. The cell map is the real cell-map core (enactor/cellmap.py: `decide`
over one listing, its batches submitted in order, as enactor/cellmap_runner.py does) applying
versioned maps (services/cells/cellmap.py) to the accounts' zone through the same engine. The
legacy regional name is served by a zone the real core built for plan 1 (not racing here).

A global state is (maps published, the accounts' zone, the map enactors, one state per cell); a
cell's state is its World's State, reduced by that World's own symmetry (its enactors are
interchangeable) and interned, so a global state is a tuple of small ints. A transition is one
transition of one cell's World (its planner publishing, its lease expiry, one of its enactors'
steps), the map planner publishing the next map, or one map enactor's step. Each cell's clock
jumps on its own (`--lease-expiries` per cell): an over-approximation of one clock, so no
interleaving of the real system is missed.

The start is a running system: every cell serves its plan 1 (one of its enactors applied it) and
map 1 is applied, so every account answers; from there the planners publish plans 2.., and map 2
moves the legacy account to the last cell (map 3 moves cell-1's account there too).

Answers are judged through the DNS data plane's own code: services/dns/answer.py `resolve` (what
the DNS server answers, rendered by its AuthoritativeResponder), the caching resolver's
`chase_target` (services/dns/cache.py: a CNAME into another hosted zone is chased), and at the end
of the chain every weighted branch (answer.py's `leaf_distribution`, via invariants.served), per
account name and per record type.

Planted faults (FAULTS) show each invariant catching what it is there for:
- enactor_in_other_cell: one of cell-1's enactors runs with cell-2's namespace (DNSCTL_CELL mixed
  up in a deployment): its steps are cell-1's, and they change cell-2's answers (CellIsolation);
- cellmap_delete_first: a copy of enactor/cellmap.py whose move DELETEs the old CNAME in one batch
  and CREATEs the new one in the next: between the two the account is NXDOMAIN (NoEmptyAnswer).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import random
import time
import types
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import dns.message
import dns.name
import dns.rdatatype

from enactor import cellmap as default_cellmap
from enactor import layout
from enactor import protocol as default_core
from lab.checker import trace
from lab.checker.invariants import NO_EMPTY_ANSWER, Invariants, Served, Violation, served
from lab.checker.symmetry import Symmetry
from lab.checker.world import (
    LOCK_TTL_S,
    PLAN_CREATED_AT,
    PUBLISH,
    REGION,
    T0,
    Bounds,
    BoundsError,
    Interner,
    Label,
    State,
    World,
    empty_zone,
    model_fleet,
    model_plans,
)
from services.cells.cellmap import CellMap, validate_body
from services.cells.naming import (
    account_name,
    accounts_zone,
    cell_endpoint,
    cell_names,
    cell_number,
    legacy_endpoint,
    owner_cell,
)
from services.dns.answer import Rcode, leaf_distribution, resolve
from services.dns.cache import MAX_CNAME_CHAIN, chase_target
from services.dns.server import AuthoritativeResponder
from services.dns.snapshot import ServedZone, Snapshot
from services.plan.model import EndpointPlan, Plan, Target
from services.route53.engine import IndexedZone, Route53Error, apply_batch
from services.route53.listing import sort_key
from services.route53.records import Zone, normalise_name

FORMAT = "dnsctl-check-cells/1"
CELL_ISOLATION = "CellIsolation"
RECORD_TYPES = ("A", "AAAA")
LEGACY = "legacy"
MAP_OWNER = "cell map"
ACCOUNTS_ZONE_ID = "Z0000ACCOUNTS"
LEGACY_ZONE_ID = "Z0000LEGACY"
MAX_CELLS = 3  # the product of the cells' spaces grows too fast beyond
MAX_MAP_ENACTORS = 3

FAULT_ENACTOR_IN_OTHER_CELL = "enactor_in_other_cell"
FAULT_CELLMAP_DELETE_FIRST = "cellmap_delete_first"
FAULTS = {
    FAULT_ENACTOR_IN_OTHER_CELL: "one of cell-1's enactors runs with cell-2's namespace (its DNSCTL_CELL mixed up)",
    FAULT_CELLMAP_DELETE_FIRST: "a copy of enactor/cellmap.py whose move deletes the old CNAME in one batch and creates the new one in the next",
}

# The planted cell-map fault, as a named source edit of a copy of enactor/cellmap.py (lab/checker/mutants.py's way).
_UPSERT = 'changes = [Change("UPSERT", r) for name, r in sorted(want.items()) if have.get(name) != r]'
_PARTS = 'parts = [p.changes for p in core.chunk_batches(settings, state, "build", changes, cas, ())] if changes else [()]'
DELETE_FIRST_EDITS = (
    (_UPSERT, 'changes = [Change("DELETE", have[name]) for name, r in sorted(want.items()) if name in have and have[name] != r]\n'
              '    changes += [Change("CREATE", r) for name, r in sorted(want.items()) if have.get(name) != r]'),
    (_PARTS, 'deletes = tuple(c for c in changes if c.action == "DELETE")\n'
             '    parts = [deletes, tuple(c for c in changes if c.action != "DELETE")] if deletes else '
             '[p.changes for p in core.chunk_batches(settings, state, "build", changes, cas, ())] if changes else [()]'),
)


def delete_first_cellmap() -> types.ModuleType:
    from lab.checker.mutants import Mutant, mutant_module

    return mutant_module(Mutant(FAULT_CELLMAP_DELETE_FIRST, "enactor/cellmap.py", DELETE_FIRST_EDITS, FAULTS[FAULT_CELLMAP_DELETE_FIRST]))


# -- bounds ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellsBounds:
    """What is explored: one world.py Bounds per cell (cell-1 first), the cell map's enactors and
    map versions, and at most one planted fault."""

    cells: tuple[Bounds, ...]
    map_enactors: int = 1
    maps: int = 2  # map 1 (applied at the start), then each a move (MOVES)
    fault: str = ""
    max_depth: int | None = None

    def __post_init__(self) -> None:
        problems = []
        if not 2 <= len(self.cells) <= MAX_CELLS:
            problems.append(f"--cells must be 2..{MAX_CELLS}")
        if not 1 <= self.map_enactors <= MAX_MAP_ENACTORS:
            problems.append(f"--map-enactors must be 1..{MAX_MAP_ENACTORS}")
        if not 1 <= self.maps <= len(MOVES) + 1:
            problems.append(f"--maps must be 1..{len(MOVES) + 1}")
        if self.fault and self.fault not in FAULTS:
            problems.append(f"--fault must be one of {', '.join(FAULTS)}")
        if self.max_depth is not None and self.max_depth < 1:
            problems.append("--max-depth must be at least 1")
        for name, b in zip(cell_names(len(self.cells)), self.cells, strict=True):
            if b.endpoints != 1 or b.start != "clean" or b.invalid_plans:
                problems.append(f"{name}: one endpoint, a clean world and no invalid plan (the cell starts live)")
        if problems:
            raise BoundsError("; ".join(problems))

    @property
    def names(self) -> tuple[str, ...]:
        return cell_names(len(self.cells))

    @property
    def legacy_cells(self) -> tuple[str, ...]:
        return tuple(n for n, b in zip(self.names, self.cells, strict=True) if not b.guard)

    def as_json(self) -> dict[str, Any]:
        return {"cells": [dataclasses.asdict(b) for b in self.cells], "map_enactors": self.map_enactors, "maps": self.maps,
                "fault": self.fault, "max_depth": self.max_depth}

    @classmethod
    def from_json(cls, data: Any) -> CellsBounds:
        if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
            raise BoundsError("not the bounds of a cells check")
        try:
            return cls(tuple(Bounds(**b) for b in data["cells"]), data.get("map_enactors", 1), data.get("maps", 2),
                       data.get("fault", ""), data.get("max_depth"))
        except TypeError as exc:
            raise BoundsError(f"malformed cells bounds: {exc}") from exc


def cells_bounds(
    cells: int = 2,
    legacy: tuple[str, ...] = ("cell-1",),
    *,
    enactors: int = 2,
    plans: int = 4,
    guarded_enactors: int = 1,
    guarded_plans: int = 2,
    lbs: int = 1,
    keep_plans: int = 1,
    lease_expiries: int = 0,
    lock_losses: int = 0,
    lost_replies: int = 0,
    map_enactors: int = 1,
    maps: int = 2,
    symmetry: bool = True,
    fault: str = "",
    max_depth: int | None = None,
) -> CellsBounds:
    """The bounds `dnsctl check --cells` runs with: legacy (racing) cells get `enactors` and `plans`
    (the race needs two enactors and four plans from a live start), the guarded ones
    `guarded_enactors` and `guarded_plans`. Defaults: cell-1 legacy, cell-2 guarded."""
    names = cell_names(cells)
    unknown = [c for c in legacy if c not in names]
    if unknown:
        raise BoundsError(f"--legacy-cells: {', '.join(unknown)} not among {', '.join(names)}")
    out = []
    for name in names:
        racing = name in legacy
        extra = 1 if fault == FAULT_ENACTOR_IN_OTHER_CELL and name == "cell-2" else 0  # the misplaced enactor
        out.append(Bounds(
            guard=not racing, enactors=(enactors if racing else guarded_enactors) + extra, plans=plans if racing else guarded_plans,
            lbs=lbs, keep_plans=keep_plans, lease_expiries=lease_expiries, lock_losses=lock_losses, lost_replies=lost_replies,
            symmetry=symmetry and not extra, por=False,
        ))
    return CellsBounds(tuple(out), map_enactors, maps, fault, max_depth)


# -- each cell's namespace and plans ------------------------------------------------------------


def cell_plans(cell: str, bounds: Bounds) -> tuple[Plan, ...]:
    """The model's plans 1..N (world.model_plans: re-address, weights, a load balancer added and
    retired) stamped for `cell`: its endpoint and hosted zone, always dual-stack (a cell's name is),
    load balancer ids and addresses of its own (10.<n>.x.y; the model's IPv6 with the cell number in its fifth group)."""
    n = cell_number(cell)
    name = cell_endpoint(cell, REGION)
    out = []
    for plan in model_plans(bounds):
        (ep,) = plan.endpoints
        # The plan that drops AAAA (world.PLAN_CHANGES) carries no IPv6 addresses: the fleet still has them.
        ipv6 = {lb.id: lb.ipv6 for lb in model_fleet(bounds, plan.version).load_balancers}
        targets = tuple(
            Target(lb_id=f"c{n}-{t.lb_id}", az=t.az, weight=t.weight, capacity=t.capacity,
                   ipv4=tuple(f"10.{n}.{a.split('.')[2]}.{a.split('.')[3]}" for a in t.ipv4),
                   ipv6=tuple(str(ipaddress.IPv6Address(int(ipaddress.IPv6Address(a)) + (n << 48))) for a in t.ipv6 or ipv6[t.lb_id]))
            for t in ep.targets
        )
        endpoint = EndpointPlan(name=name, hosted_zone=name, record_types=RECORD_TYPES, targets=targets)
        out.append(Plan.build(region=plan.region, version=plan.version, endpoints=[endpoint], reason=f"{cell}: {plan.reason}",
                              lane=plan.lane, created_at=PLAN_CREATED_AT).for_cell(cell))
    return tuple(out)


def cell_world(cell: str, bounds: Bounds, core: types.ModuleType = default_core) -> World:
    """A World in `cell`'s namespace: its endpoint, its hosted zone, its plan stream."""
    zone_id = f"Z{cell_number(cell):04d}CELL"
    return World(bounds, core, namespace=((cell_endpoint(cell, REGION),), (zone_id,), cell_plans(cell, bounds)))


def live_state(world: World, enactor: int = 0, limit: int = 100) -> State:
    """The world once its planner published plan 1 and one enactor applied it (flip and clean-up
    done, the lock released): a running system, reached by the real core's own steps."""
    state = world.apply(world.initial, PUBLISH)[0]
    for _ in range(limit):
        st = world.machine(state.machines[enactor])
        if state.applied[0] == 1 and st.task == "idle" and st.phase == "plan" and st.done_version == 1:
            return state
        state = world.apply(state, ("step", enactor, ""))[0]
    raise RuntimeError(f"{world.endpoints[0]}: plan 1 was not applied in {limit} steps of one enactor")


def legacy_zone() -> Zone:
    """The legacy regional name's zone with plan 1 served, built by the real core (static here)."""
    world = World(Bounds(enactors=1, plans=1, lbs=1, lease_expiries=0, lock_losses=0, lost_replies=0))
    state = live_state(world)
    zone = world.zone(state.zones[0]).zone
    return Zone.of(zone.name, list(zone), zone_id=LEGACY_ZONE_ID)


# -- the cell map -------------------------------------------------------------------------------


def account_ids(cells: int) -> tuple[str, ...]:
    """One account per cell (1000000000NN in cell-N) and one not moved yet (legacy), the last."""
    return tuple(f"{100_000_000_000 + k:012d}" for k in range(1, cells + 2))


# The moves of maps 2, 3, ...: (account index, cell index or None); -1 is the last cell.
MOVES = ((-1, -1), (0, -1))


def map_versions(cells: tuple[str, ...], maps: int) -> tuple[CellMap, ...]:
    """Map 1: account k in cell k, the last account legacy; map 2 moves the legacy account to the
    last cell; map 3 moves cell-1's account there too. Built and validated as the map planner does."""
    ids = account_ids(len(cells))
    body = validate_body({"cells": list(cells), "ttl": 60,
                          "accounts": [{"account": a, "cell": cells[k] if k < len(cells) else None} for k, a in enumerate(ids)]})
    out = [CellMap.build(body, region=REGION, version=1, reason="the accounts' names", created_at=PLAN_CREATED_AT)]
    for v, (account, cell) in enumerate(MOVES[: maps - 1], start=2):
        body = body.with_move(ids[account], cells[cell])
        out.append(CellMap.build(body, region=REGION, version=v, reason=f"move {ids[account]} to {cells[cell]}", created_at=PLAN_CREATED_AT))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class MapMachine:
    """One cell-map enactor between requests, as enactor/cellmap_runner.py's round goes: read the
    newest map, list the accounts' zone and `decide`, submit the unit's batches in order. A batch
    that fails ends the round (the runner backs off, then reads and lists again)."""

    phase: str = "read"  # read | list | batch
    version: int = 0  # the map in hand
    batches: tuple = ()  # the unit's batches still to submit; [0] goes next


@dataclass(frozen=True, slots=True)
class MapMove:
    machine: int
    zone: int | None  # the accounts' zone after an accepted batch
    text: str
    outcome: str = ""


# -- global states -----------------------------------------------------------------------------


# A global state, as explored, is a tuple of small ints: (map part, cell-1's state, cell-2's state, ...),
# where the map part interns (maps published, the accounts' zone, the map enactors) and each cell's
# state is its World's State in canonical form (that World's own symmetry), interned per cell.
GlobalState = tuple[int, ...]


class Concrete(NamedTuple):
    """A global state with each cell's State itself (traces name enactors as they were)."""

    maps: int
    map_zone: int
    map_machines: tuple[int, ...]
    cells: tuple[State, ...]


@dataclass(frozen=True, slots=True)
class Hop:
    cname: str | None  # the CNAME the name answered with (its first), if any
    chase: str | None  # the name a resolver asks next (a CNAME into another hosted zone)
    end: str | None  # the name whose records answer (None: the answer is empty)
    rcode: str


@dataclass(frozen=True, slots=True)
class NameAnswer:
    """What a client resolving one name and type gets at the end of its CNAME chain."""

    cname: str | None
    served: Served
    branches: tuple  # ((addresses, probability, missing), ...) of every weighted branch
    rcode: str


class CellsWorld:
    """The transitions of the cellular world and what DNS answers in each of its states."""

    def __init__(self, bounds: CellsBounds, core: types.ModuleType = default_core, cellmap_core: types.ModuleType | None = None):
        self.bounds = bounds
        self.core = core
        self.cellmap_core = cellmap_core or (delete_first_cellmap() if bounds.fault == FAULT_CELLMAP_DELETE_FIRST else default_cellmap)
        self.names = bounds.names
        self.worlds = tuple(cell_world(name, b, core) for name, b in zip(self.names, bounds.cells, strict=True))
        # Which cell's management each enactor belongs to (its process, its schedule): its own cell's,
        # except the planted misplaced enactor, which is cell-1's but runs in cell-2's namespace.
        self.owners = tuple(
            tuple("cell-1" if bounds.fault == FAULT_ENACTOR_IN_OTHER_CELL and name == "cell-2" and e == w.n_enactors - 1 else name
                  for e in range(w.n_enactors))
            for name, w in zip(self.names, self.worlds, strict=True)
        )
        self.syms = tuple(Symmetry(w, w.bounds.symmetry) for w in self.worlds)
        self.invariants = tuple(Invariants(w) for w in self.worlds)
        self.cell_states = tuple(Interner() for _ in self.worlds)
        self.maps = map_versions(self.names, bounds.maps)
        self.accounts = tuple(a.account for a in self.maps[0].accounts)
        self.account_names = tuple(normalise_name(account_name(a, REGION)) for a in self.accounts)
        self.map_ids = tuple(f"cellmap-enactor-{chr(ord('a') + i)}" for i in range(bounds.map_enactors))
        self.map_settings = tuple(
            core.CoreSettings(eid, version_guard=True, lock_ttl_s=LOCK_TTL_S, backoff_base_s=1.0, backoff_cap_s=1.0)
            for eid in self.map_ids
        )
        self.map_zones = Interner()
        self.map_machines = Interner()
        self.legacy = legacy_zone()
        self.endpoints = tuple(w.endpoints[0] for w in self.worlds)
        apexes = [(normalise_name(accounts_zone(REGION)), 1), (self.legacy.name, 0)]
        apexes += [(ep, 2 + c) for c, ep in enumerate(self.endpoints)]
        self._apexes = sorted(apexes, key=lambda a: -len(a[0]))
        self._responder = AuthoritativeResponder(lambda: None, random.Random(0))
        self._rng = random.Random(0)
        self.map_parts = Interner()
        self.cell_zone: tuple[list[int], ...] = tuple([] for _ in self.worlds)  # per cell: state id -> its zone id
        self._cell_succ: tuple[dict[int, list], ...] = tuple({} for _ in self.worlds)
        self._map_succ: dict[int, list] = {}
        self._map_moves: dict[tuple, MapMove] = {}
        self._cells_of: dict[str | None, str | None] = {}
        self._served_zones: dict[tuple[int, int], ServedZone] = {}
        self._snapshots: dict[tuple, Snapshot] = {}
        self._hops: dict[tuple, Hop] = {}
        self._ends: dict[tuple, tuple[Served, tuple]] = {}
        self._answers: dict[tuple, NameAnswer] = {}
        self.concrete_initial = self._initial()
        self.initial = self.canonical(self.concrete_initial)

    # -- building blocks ---------------------------------------------------------------------------

    def _initial(self) -> Concrete:
        cells = tuple(live_state(w) for w in self.worlds)
        zone = IndexedZone.of(empty_zone(accounts_zone(REGION), ACCOUNTS_ZONE_ID))
        machines = tuple(self.map_machines.add(MapMachine()) for _ in self.map_ids)
        state = Concrete(1, self.map_zones.add(zone, zone.zone.fingerprint()), machines, cells)
        for _ in range(10):  # map enactor a applies map 1
            if self.map_machine(state.map_machines[0]).phase == "read" and self._map_applied(state.map_zone) == 1:
                return state
            state = self.apply_concrete(state, ("map", 0))[0]
        raise RuntimeError("map 1 was not applied by one map enactor")

    def map_zone(self, zid: int) -> IndexedZone:
        return self.map_zones.values[zid]

    def map_machine(self, mid: int) -> MapMachine:
        return self.map_machines.values[mid]

    def cell_state(self, c: int, sid: int) -> State:
        return self.cell_states[c].values[sid]

    def _map_applied(self, zid: int) -> int | None:
        applied = layout.read_endpoint(accounts_zone(REGION), self.map_zone(zid).zone).applied_value
        return applied.version if applied else None

    def canonical(self, s: Concrete) -> GlobalState:
        return (self._map_part(s.maps, s.map_zone, s.map_machines),
                *(self._cell_id(c, self.syms[c].canonical(st)) for c, st in enumerate(s.cells)))

    def _map_part(self, maps: int, zone: int, machines: tuple[int, ...]) -> int:
        return self.map_parts.add((maps, zone, machines))

    def _cell_id(self, c: int, state: State) -> int:
        sid = self.cell_states[c].add(state)
        if sid == len(self.cell_zone[c]):
            self.cell_zone[c].append(state.zones[0])
        return sid

    def owner(self, label: Label) -> str:
        if label[0] == "map":
            return MAP_OWNER
        c, inner = label[1], label[2]
        return self.owners[c][inner[1] // self.worlds[c].n_endpoints] if inner[0] == "step" else self.names[c]

    # -- transitions --------------------------------------------------------------------------------

    def labels(self, s: Concrete) -> Iterator[Label]:
        if s.maps < len(self.maps):
            yield ("map", "publish")
        for i in range(len(s.map_machines)):
            yield ("map", i)
        for c, st in enumerate(s.cells):
            for inner in self.worlds[c].labels(st):
                yield ("cell", c, inner)

    def map_moves(self, mid: int) -> list[tuple[Label, int]]:
        """Every transition of the map part `mid`: (label, the map part after it)."""
        out = self._map_succ.get(mid)
        if out is None:
            maps, zone, machines = self.map_parts.values[mid]
            out = [(("map", "publish"), self._map_part(maps + 1, zone, machines))] if maps < len(self.maps) else []
            for i in range(len(machines)):
                move = self._map_move_of(i, machines[i], zone, maps)
                after = move.zone if move.zone is not None else zone
                out.append((("map", i), self._map_part(maps, after, machines[:i] + (move.machine,) + machines[i + 1:])))
            self._map_succ[mid] = out
        return out

    def cell_moves(self, c: int, sid: int) -> list[tuple[Label, int, tuple[Violation, ...], str]]:
        """Every transition of cell c's state `sid`: (label, the state after it, the cell's own step
        invariants it breaks, whose management made it)."""
        out = self._cell_succ[c].get(sid)
        if out is None:
            w, st, out = self.worlds[c], self.cell_state(c, sid), []
            for inner in w.labels(st):
                after, move, knocked = w.apply(st, inner)
                label = ("cell", c, inner)
                vs = self.invariants[c].of_step(st, inner, move, knocked) if move is not None else ()
                out.append((label, self._cell_id(c, self.syms[c].canonical(after)), vs, self.owner(label)))
            self._cell_succ[c][sid] = out
        return out

    def successor(self, s: GlobalState, label: Label) -> GlobalState:
        if label[0] == "map":
            return (next(m for x, m in self.map_moves(s[0]) if x == label), *s[1:])
        c = label[1]
        n = next(n for x, n, _, _ in self.cell_moves(c, s[1 + c]) if x == label)
        return s[:1 + c] + (n,) + s[2 + c:]

    def apply_concrete(self, s: Concrete, label: Label) -> tuple[Concrete, Any]:
        if label[0] == "map":
            maps, zone, machines, move = self._map_step(s, label)
            return Concrete(maps, zone, machines, s.cells), move
        c, inner = label[1], label[2]
        after, move, knocked = self.worlds[c].apply(s.cells[c], inner)
        return Concrete(s.maps, s.map_zone, s.map_machines, s.cells[:c] + (after,) + s.cells[c + 1:]), (move, knocked)

    def _map_step(self, s: Concrete, label: Label) -> tuple[int, int, tuple[int, ...], MapMove | None]:
        if label[1] == "publish":
            return s.maps + 1, s.map_zone, s.map_machines, None
        i = label[1]
        move = self._map_move_of(i, s.map_machines[i], s.map_zone, s.maps)
        machines = s.map_machines[:i] + (move.machine,) + s.map_machines[i + 1:]
        return s.maps, move.zone if move.zone is not None else s.map_zone, machines, move

    def _map_move_of(self, i: int, mid: int, zid: int, maps: int) -> MapMove:
        key = (i, mid, zid, maps)
        move = self._map_moves.get(key)
        if move is None:
            move = self._map_moves[key] = self._map_move(i, self.map_machine(mid), zid, maps)
        return move

    def _map_move(self, i: int, m: MapMachine, zid: int, maps: int) -> MapMove:
        """Carry out map enactor i's next request (the runner's round, step by step)."""
        who = self.map_ids[i]
        if m.phase == "read":
            return MapMove(self.map_machines.add(MapMachine("list", maps)), None, f"{who} reads the newest cell map: map {maps}")
        izone = self.map_zone(zid)
        if m.phase == "list":
            listing = tuple(sorted(izone.zone, key=sort_key))
            unit = self.cellmap_core.decide(self.map_settings[i], ACCOUNTS_ZONE_ID, listing, self.maps[m.version - 1], float(T0))
            if unit.kind != "apply":
                return MapMove(self.map_machines.add(MapMachine()), None, f"{who} lists the accounts' zone: {unit.reason}, so it waits")
            n = len(unit.batches)
            return MapMove(self.map_machines.add(MapMachine("batch", m.version, unit.batches)), None,
                           f"{who} lists the accounts' zone and goes for {unit.reason}: {unit.changes} account record"
                           f"{'s' if unit.changes != 1 else ''} in {n} batch{'es' if n != 1 else ''}")
        batch, rest = m.batches[0], m.batches[1:]
        try:
            after = apply_batch(izone, batch.changes, self.map_settings[i].limits)
        except Route53Error as exc:
            messages = " ".join(getattr(exc, "messages", None) or (exc.message,))
            return MapMove(self.map_machines.add(MapMachine()), None,
                           f"{who}'s batch {batch.batch_id} for map {m.version} is rejected: {messages[:160]}", "rejected")
        moved = ", ".join(f"{c.action} {c.record.name.split('.')[0]} CNAME {c.record.values[0].rstrip('.') if c.record.values else ''}"
                          for c in batch.changes if c.record.type == "CNAME")
        nxt = MapMachine("batch", m.version, rest) if rest else MapMachine()
        return MapMove(self.map_machines.add(nxt), self.map_zones.add(after, after.zone.fingerprint()),
                       f"{who}'s batch {batch.batch_id} for map {m.version} is accepted: {moved or 'the lock and _applied only'}"
                       + ("" if rest else f"; map {m.version} is applied"), "accepted")

    # -- what DNS answers ---------------------------------------------------------------------------

    def zones_key(self, s: GlobalState) -> tuple[int, ...]:
        """The hosted zones of a state: the accounts' zone, then each cell's (the legacy zone is static)."""
        return (self.map_parts.values[s[0]][1], *(self.cell_zone[c][sid] for c, sid in enumerate(s[1:])))

    def concrete_zones(self, s: Concrete) -> tuple[int, ...]:
        return (s.map_zone, *(st.zones[0] for st in s.cells))

    def _served_zone(self, component: int, zid: int) -> ServedZone:
        key = (component, zid)
        out = self._served_zones.get(key)
        if out is None:
            out = self._served_zones[key] = ServedZone.build(self._zone(component, zid))
        return out

    def _zone(self, component: int, zid: int) -> Zone:
        if component == 0:
            return self.legacy
        if component == 1:
            return self.map_zone(zid).zone
        return self.worlds[component - 2].zone(zid).zone

    def _zid(self, zones: tuple[int, ...], component: int) -> int:
        return 0 if component == 0 else zones[component - 1]

    def snapshot(self, zones: tuple[int, ...]) -> Snapshot:
        """Every hosted zone of the state, as the DNS server serves them."""
        out = self._snapshots.get(zones)
        if out is None:
            served_zones = [self._served_zone(0, 0)] + [self._served_zone(k + 1, zid) for k, zid in enumerate(zones)]
            out = self._snapshots[zones] = Snapshot.of(served_zones)
        return out

    def _component(self, name: str) -> int | None:
        for apex, component in self._apexes:
            if name == apex or name.endswith("." + apex):
                return component
        return None

    def _hop(self, zones: tuple[int, ...], component: int, name: str, rtype: str) -> Hop:
        """The authoritative answer for one name, as the DNS server renders it, and what a resolver
        makes of it (services/dns/cache.py's chase_target). Depends on the name's own zone only."""
        key = (component, self._zid(zones, component), name, rtype)
        hop = self._hops.get(key)
        if hop is None:
            ans = resolve(self.snapshot(zones), name, rtype, self._rng)
            query = dns.message.make_query(name, rtype)
            response = self._responder.build(query, (ans.rcode, ans.answers, ans.authority, ans.authoritative))
            target = chase_target(response, query.question[0].name, dns.rdatatype.from_text(rtype))
            cname = next((rr.value for rr in ans.answers if rr.type == "CNAME"), None)
            end = None
            if target is None and ans.rcode == Rcode.NOERROR and any(rr.type == rtype for rr in ans.answers):
                end = next((s.target for s in reversed(ans.path) if s.kind == "cname"), name)
            hop = self._hops[key] = Hop(cname, target.to_text().lower() if target is not None else None, end, ans.rcode.name)
        return hop

    def _end(self, zones: tuple[int, ...], component: int, name: str, rtype: str) -> tuple[Served, tuple]:
        key = (component, self._zid(zones, component), name, rtype)
        out = self._ends.get(key)
        if out is None:
            zone = self._zone(component, self._zid(zones, component))
            leaves = leaf_distribution(Snapshot.of([zone]), name, rtype)
            branches = tuple(sorted((tuple(sorted(leaf.values)), round(leaf.probability, 9), leaf.missing) for leaf in leaves))
            out = self._ends[key] = (served(zone, name, rtype), branches)
        return out

    def answer(self, zones: tuple[int, ...], name: str, rtype: str) -> NameAnswer:
        """What a client's resolver gets for `name`/`rtype`: the chain of CNAMEs chased across hosted
        zones, then every weighted branch of the name that answers."""
        key = (zones, name, rtype)
        out = self._answers.get(key)
        if out is not None:
            return out
        current, cname, rcode = normalise_name(name), None, "NOERROR"
        result = None
        for _ in range(MAX_CNAME_CHAIN):
            component = self._component(current)
            if component is None:
                rcode = "REFUSED"
                break
            hop = self._hop(zones, component, current, rtype)
            cname = cname or hop.cname
            rcode = hop.rcode
            if hop.chase is not None:
                current = hop.chase
                continue
            if hop.end is not None:
                result = self._end(zones, self._component(hop.end) or component, hop.end, rtype)
            break
        else:
            rcode = "SERVFAIL"  # a CNAME loop
        s, branches = result or (Served(frozenset(), 1.0), ())
        out = self._answers[key] = NameAnswer(cname and normalise_name(cname), s, branches, rcode)
        return out

    def cell_of_target(self, target: str | None) -> str | None:
        """The cell (or "legacy") a CNAME target names; None: no CNAME."""
        out = self._cells_of.get(target, "")
        if out == "":
            if target is None:
                out = None
            elif target == normalise_name(legacy_endpoint(REGION)):
                out = LEGACY
            else:
                out = owner_cell(target, REGION) or "unknown"
            self._cells_of[target] = out
        return out


# -- invariants ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountEmpty:
    account: str
    rtype: str
    cell: str | None  # where its CNAME points (a cell, "legacy", or None: no CNAME)
    message: str


class CellsInvariants:
    """NoEmptyAnswer through the CNAME (per state) and CellIsolation (per transition), memoised:
    both are functions of the state's hosted zones."""

    def __init__(self, world: CellsWorld):
        self.world = world
        self._accounts: dict[tuple[int, ...], tuple[tuple[AccountEmpty, ...], tuple[str, ...]]] = {}
        self._isolation: dict[tuple, tuple[Violation, ...]] = {}

    def accounts(self, zones: tuple[int, ...]) -> tuple[tuple[AccountEmpty, ...], tuple[str, ...]]:
        """(the accounts whose name answers empty, per record type; the cell each account's CNAME names)."""
        found = self._accounts.get(zones)
        if found is None:
            out, cells = [], []
            w = self.world
            for account, name in zip(w.accounts, w.account_names, strict=True):
                for rtype in RECORD_TYPES:
                    a = w.answer(zones, name, rtype)
                    cell = w.cell_of_target(a.cname)
                    if rtype == RECORD_TYPES[0]:
                        cells.append(cell or "none")
                    if a.served.empty_share > 0:
                        where = f"CNAME {a.cname.rstrip('.')} ({cell})" if a.cname else "no CNAME"
                        share = f" (share {a.served.empty_share:.0%} of answers)" if a.served.empty_share < 1 else ""
                        out.append(AccountEmpty(account, rtype, cell, (
                            f"account {account}'s name {name.rstrip('.')} {rtype}: {where}: the resolver gets {a.rcode} with no address{share}")))
            found = self._accounts[zones] = (tuple(out), tuple(cells))
        return found

    def empty_accounts(self, zones: tuple[int, ...]) -> tuple[AccountEmpty, ...]:
        return self.accounts(zones)[0]

    def cell_answers(self, zones: tuple[int, ...], cell: str, names: frozenset[str]) -> dict[tuple[str, str], tuple]:
        """What `names` answer, per record type: CNAME, every branch's addresses, rcode."""
        w = self.world
        return {(n, rt): (a.cname, a.branches, a.rcode) for n in sorted(names) for rt in RECORD_TYPES for a in (w.answer(zones, n, rt),)}

    def names_of(self, zones: tuple[int, ...], cell: str) -> frozenset[str]:
        """`cell`'s names in these zones: its endpoint, and every account whose CNAME names it."""
        w = self.world
        return frozenset(n for n in w.account_names if w.cell_of_target(w.answer(zones, n, "A").cname) == cell) | {
            w.endpoints[w.names.index(cell)]}

    def isolation(self, owner: str, before: tuple[int, ...], after: tuple[int, ...], label: Label) -> tuple[Violation, ...]:
        """CellIsolation for one transition of `owner`'s management: every other cell's names (its
        endpoint, the accounts mapped to it before or after) answer the same after it as before."""
        if owner == MAP_OWNER or before == after:
            return ()
        key = (owner, before, after)
        found = self._isolation.get(key)
        if found is None:
            out = []
            for other in self.world.names:
                if other == owner:
                    continue
                names = self.names_of(before, other) | self.names_of(after, other)
                was, now = self.cell_answers(before, other, names), self.cell_answers(after, other, names)
                for (name, rtype), answer in was.items():
                    if now[(name, rtype)] != answer:
                        out.append(Violation(CELL_ISOLATION, name.rstrip("."), (
                            f"{_actor(self.world, label)} ({owner}'s management) changed what {name.rstrip('.')} {rtype} answers, "
                            f"a name of {other}: {_addresses(answer)} -> {_addresses(now[(name, rtype)])}")))
                        break
            found = self._isolation[key] = tuple(out)
        return found


def _addresses(answer: tuple | None) -> str:
    if answer is None:
        return "nothing"
    cname, branches, rcode = answer
    addresses = sorted({a for values, p, missing in branches if p > 0 for a in values})
    via = f"CNAME {cname.rstrip('.')}, " if cname else ""
    return f"{via}{rcode} with {', '.join(addresses) or 'no address'}"


# -- exploring -------------------------------------------------------------------------------------


@dataclass
class Finding:
    """The first (shallowest) state or transition that breaks an invariant, for one subject and scope."""

    invariant: str
    subject: str  # "accounts" (through the CNAME), "endpoint" (a cell's own invariants) or "transition" (CellIsolation)
    scope: str  # the cell whose accounts or endpoint it is ("legacy", "none": an account without a CNAME), "" for CellIsolation
    violations: tuple[Violation, ...]
    state: int  # index of the state it was found from
    label: Label | None  # the transition (None: the state itself)
    labels: list[Label] = field(default_factory=list)  # the concrete run, filled in at the end
    expected: bool = False  # the blast radius of a legacy cell's race, not a failure of the design

    @property
    def title(self) -> str:
        if self.subject == "accounts":
            where = "an account left without a CNAME" if self.scope == "none" else f"accounts in {self.scope}"
            return f"{self.invariant} through the CNAME, {where}"
        if self.subject == "endpoint":
            return f"{self.invariant} on {self.scope}'s own endpoint"
        return self.invariant


@dataclass
class CellsResult:
    world: CellsWorld
    states: int = 0
    transitions: int = 0
    isolation_judged: int = 0  # transitions of a cell's management judged by CellIsolation
    zone_writes: int = 0  # of those, the ones that changed a hosted zone (answers compared name by name)
    depth: int = 0
    elapsed_s: float = 0.0
    exhausted: bool = False
    frontier: int = 0
    findings: list[Finding] = field(default_factory=list)
    # account -> the cells (or "legacy"/"none") it was in when it answered empty in some state
    lost: dict[str, set[str]] = field(default_factory=dict)
    # account -> every cell it was mapped to in some state
    seen_in: dict[str, set[str]] = field(default_factory=dict)
    cell_states: tuple[int, ...] = ()  # distinct states per cell reached
    map_states: int = 0

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if not f.expected]

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def states_per_s(self) -> float:
        return self.states / self.elapsed_s if self.elapsed_s > 0 else 0.0


def check(
    world: CellsWorld,
    *,
    on_progress: Callable[[int, int, float], None] | None = None,
    progress_every_s: float = 5.0,
    max_states: int | None = None,
    max_seconds: float | None = None,
) -> CellsResult:
    """Breadth-first over every reachable global state (so each finding is at the least depth there
    is), judging every state and every transition; it never stops at a finding: the blast radius
    and CellIsolation are claims about the whole space."""
    started = last = time.perf_counter()
    inv = CellsInvariants(world)
    legacy = set(world.bounds.legacy_cells)
    result = CellsResult(world)
    init = world.initial
    index: dict[GlobalState, int] = {init: 0}
    states = [init]
    parent, depth = array("i", [-1]), array("i", [0])
    via: list[Label | None] = [None]
    found: dict[tuple[str, str, str], Finding] = {}
    judged_cells = [set() for _ in world.worlds]
    judged_zones: set[tuple[int, ...]] = set()
    n_cells = len(world.worlds)
    cell_zone = world.cell_zone

    def record(invariant: str, subject: str, scope: str, violations: tuple[Violation, ...], i: int, label: Label | None) -> None:
        if (invariant, subject, scope) not in found:
            expected = scope in legacy and subject != "transition"
            f = found[(invariant, subject, scope)] = Finding(invariant, subject, scope, violations, i, label, expected=expected)
            result.findings.append(f)

    def judge_state(s: GlobalState, zones: tuple[int, ...], i: int, label: Label | None) -> None:
        empties, cells = inv.accounts(zones)
        if zones not in judged_zones:
            judged_zones.add(zones)
            for name, cell in zip(world.account_names, cells, strict=True):
                result.seen_in.setdefault(name.split(".")[0], set()).add(cell)
            for e in empties:
                result.lost.setdefault(e.account, set()).add(e.cell or "none")
        for e in empties:
            record(NO_EMPTY_ANSWER, "accounts", e.cell or "none", (Violation(NO_EMPTY_ANSWER, e.account, e.message),), i, label)
        for c in range(n_cells):
            sid = s[1 + c]
            if sid not in judged_cells[c]:
                judged_cells[c].add(sid)
                vs = world.invariants[c].of_state(world.cell_state(c, sid))
                for invariant in dict.fromkeys(v.invariant for v in vs):
                    record(invariant, "endpoint", world.names[c], tuple(v for v in vs if v.invariant == invariant), i, label)

    def new(t: GlobalState, zones: tuple[int, ...] | None, i: int, label: Label, d: int) -> None:
        index[t] = len(states)
        states.append(t)
        parent.append(i)
        via.append(label)
        depth.append(d)
        judge_state(t, zones or world.zones_key(t), i, label)

    judge_state(init, world.zones_key(init), 0, None)
    head = 0
    max_depth = world.bounds.max_depth
    exhausted = True
    map_moves, cell_moves, cell_succ = world.map_moves, world.cell_moves, world._cell_succ
    while head < len(states):
        i = head
        head += 1
        s = states[i]
        d = depth[i]
        if max_depth is not None and d >= max_depth:
            result.frontier += 1
            continue
        if not (i & 1023):
            now = time.perf_counter()
            if (max_seconds is not None and now - started > max_seconds) or (max_states is not None and len(states) >= max_states):
                exhausted = False
                break
            if on_progress is not None and now - last >= progress_every_s:
                last = now
                on_progress(len(states), d, now - started)
        d += 1
        rest = s[1:]
        zones = world.zones_key(s)
        for label, m in map_moves(s[0]):
            result.transitions += 1
            t = (m, *rest)
            if t not in index:
                new(t, None, i, label, d)
        for c in range(n_cells):
            sid = s[1 + c]
            zone, zc = cell_zone[c][sid], cell_zone[c]
            before, after = s[:1 + c], s[2 + c:]
            zbefore, zafter = zones[:1 + c], zones[2 + c:]
            moves = cell_succ[c].get(sid) or cell_moves(c, sid)
            result.transitions += len(moves)
            result.isolation_judged += len(moves)
            for label, n, vs, owner in moves:
                if vs:
                    for invariant in dict.fromkeys(v.invariant for v in vs):
                        record(invariant, "endpoint", world.names[c], tuple(v for v in vs if v.invariant == invariant), i, label)
                t = before + (n,) + after
                tz = None
                # DNS answers are a function of the hosted zones: a step that writes none changes none.
                if zc[n] != zone:
                    result.zone_writes += 1
                    tz = zbefore + (zc[n],) + zafter
                    iso = inv.isolation(owner, zones, tz, label)
                    if iso:
                        record(CELL_ISOLATION, "transition", "", iso, i, label)
                if t not in index:
                    new(t, tz, i, label, d)
    result.exhausted = exhausted
    result.states = len(states)
    result.depth = max(depth)
    result.cell_states = tuple(len(cs.values) for cs in world.cell_states)
    result.map_states = len(world.map_parts.values)
    for f in result.findings:
        f.labels = concrete_run(world, states, parent, via, f.state, f.label)
    result.findings.sort(key=lambda f: (f.expected, len(f.labels)))
    result.elapsed_s = time.perf_counter() - started
    return result


def _actor(world: CellsWorld, label: Label) -> str:
    c, inner = label[1], label[2]
    if inner[0] == "step":
        return f"{world.names[c]}/{world.worlds[c].enactor_ids[inner[1] // world.worlds[c].n_endpoints]}"
    return f"{world.names[c]}'s planner" if inner[0] == "publish" else f"{world.names[c]}'s clock"


def concrete_run(world: CellsWorld, states: list[GlobalState], parent, via, i: int, last: Label | None) -> list[Label]:
    """The path to state i (then `last`) as one run with fixed enactor names: each cell's states
    were stored up to a renaming of its enactors, so every step picks the label of the same kind
    whose successor has the stored (canonical) next state."""
    chain = [i]
    while parent[chain[-1]] >= 0:
        chain.append(parent[chain[-1]])
    chain.reverse()
    steps = [(via[n], states[n]) for n in chain[1:]]
    if last is not None:
        steps.append((last, world.successor(states[i], last)))
    state, run = world.concrete_initial, []
    for label, target in steps:
        for cand in [label] + [x for x in world.labels(state) if x != label and x[:2] == label[:2]]:
            if label[0] == "cell" and (cand[2][0] != label[2][0] or cand[2][2:] != label[2][2:]):
                continue
            after = world.apply_concrete(state, cand)[0]
            if world.canonical(after) == target:
                state = after
                run.append(cand)
                break
        else:
            raise RuntimeError(f"no renaming of {label} reproduces the explored step")
    return run


# -- reports ---------------------------------------------------------------------------------------


def describe(world: CellsWorld, state: Concrete, label: Label, n: int) -> trace.Step:
    if label[0] == "map":
        if label[1] == "publish":
            v = state.maps + 1
            return trace.Step(n, label, "cell map planner", None, f"the cell map planner publishes map {v} ({world.maps[v - 1].reason})")
        after, move = world.apply_concrete(state, label)
        return trace.Step(n, label, world.map_ids[label[1]], accounts_zone(REGION), move.text, move.outcome)
    c, inner = label[1], label[2]
    step = trace.describe(world.worlds[c], state.cells[c], inner, n)
    owner = world.owner(label)
    prefix = f"[{world.names[c]}]" if owner == world.names[c] else f"[{owner}'s enactor in {world.names[c]}'s namespace]"
    actor = f"{world.names[c]}/{step.actor}" if inner[0] == "step" else f"{world.names[c]} {step.actor}"
    return dataclasses.replace(step, label=label, actor=actor, text=f"{prefix} {step.text}")


def run_steps(world: CellsWorld, labels: list[Label]) -> tuple[list[trace.Step], Concrete]:
    state = world.concrete_initial
    steps = []
    for n, label in enumerate(labels, start=1):
        steps.append(describe(world, state, label, n))
        state = world.apply_concrete(state, label)[0]
    return steps, state


def account_summaries(world: CellsWorld, state: Concrete) -> list[dict[str, Any]]:
    """Every account's name as a card of the console's trace viewer (endpoint-shaped)."""
    zones = world.concrete_zones(state)
    view = layout.read_endpoint(accounts_zone(REGION), world.map_zone(state.map_zone).zone)
    applied, lock = view.applied_value, view.lock_value
    out = []
    for account, name in zip(world.accounts, world.account_names, strict=True):
        a = world.answer(zones, name, "A")
        cell = world.cell_of_target(a.cname)
        addresses = sorted({x for values, p, missing in a.branches if p > 0 for x in values})
        out.append({
            "endpoint": name.rstrip("."),
            "root_tree": f"CNAME {a.cname.rstrip('.')}" if a.cname else None,
            "root_plan": _served_plan(world, state, cell),
            "root_tree_exists": a.served.empty_share == 0,
            "rollback_tree": None, "rollback_plan": None, "rollback_tree_exists": False,
            "applied": {"version": applied.version, "tree": applied.tree_id} if applied else None,
            "lock": {"holder": lock.holder, "expires": lock.expires, "counter": lock.counter} if lock else None,
            "trees": [],
            "newest_plan": state.maps,
            "dns": {"rcode": a.rcode, "addresses": addresses, "dangling": False},
            "account": account,
            "cell": cell,
        })
    return out


def _served_plan(world: CellsWorld, state: Concrete, cell: str | None) -> int | None:
    """The plan the CNAME target's root serves (the legacy name serves plan 1 here)."""
    if cell == LEGACY:
        return 1
    if cell not in world.names:
        return None
    c = world.names.index(cell)
    return world.worlds[c].view(state.cells[c].zones[0], 0).active_version


def summaries(world: CellsWorld, state: Concrete) -> list[dict[str, Any]]:
    return [trace.endpoint_summary(w, state.cells[c], 0) | {"cell": world.names[c]} for c, w in enumerate(world.worlds)] + \
        account_summaries(world, state)


def summary_lines(s: dict[str, Any]) -> list[str]:
    if "account" not in s:
        return trace.summary_lines(s)
    dns = s["dns"]
    target = s["root_tree"] or "no CNAME"
    return [f"{s['endpoint']}: {target} ({s['cell'] or 'nothing'}); the resolver gets {dns['rcode']} with "
            f"{len(dns['addresses'])} address{'es' if len(dns['addresses']) != 1 else ''}"
            + (f" ({', '.join(dns['addresses'])})" if dns["addresses"] else "")]


def finding_lines(world: CellsWorld, f: Finding) -> list[str]:
    steps, end = run_steps(world, f.labels)
    tag = " (the blast radius of a legacy cell's race)" if f.expected else ""
    out = [f"Counterexample ({f.title}{tag}), {len(steps)} steps:"]
    width = len(str(len(steps)))
    out += [f"  {s.n:>{width}}. {s.text}" for s in steps]
    out += [f"  => {v.invariant} broken: {v.message}" for v in f.violations]
    out.append("State at the end:")
    for s in summaries(world, end):
        out += ["  " + line for line in summary_lines(s)]
    return out


def as_json(world: CellsWorld, result: CellsResult, f: Finding) -> dict[str, Any]:
    steps, end = run_steps(world, f.labels)
    return {
        "format": FORMAT,
        "bounds": world.bounds.as_json(),
        "core": world.core.__name__,
        "cellmap_core": world.cellmap_core.__name__,
        "kind": "safety",
        "invariants": [f.invariant],
        "subject": f.subject,
        "scope": f.scope,
        "expected": f.expected,
        "violations": [dataclasses.asdict(v) for v in f.violations],
        "states": result.states,
        "steps": [s.as_json() for s in steps],
        "final": summaries(world, end),
        "lost": {a: sorted(c) for a, c in sorted(result.lost.items())},
        "ok": result.ok,
    }


class CellsTraceInvalid(ValueError):
    """Not a counterexample written by `dnsctl check --cells --json`."""


def read_trace(doc: Any) -> tuple[CellsBounds, list[Label]]:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CellsTraceInvalid(f"not a counterexample written by `dnsctl check --cells --json` (format {FORMAT})")
    try:
        bounds = CellsBounds.from_json(doc["bounds"])
        labels = [_label(s["label"]) for s in doc["steps"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise CellsTraceInvalid(f"malformed counterexample: {exc}") from exc
    return bounds, labels


def _label(raw: Any) -> Label:
    if isinstance(raw, list) and raw[:1] == ["map"] and len(raw) == 2 and (raw[1] == "publish" or isinstance(raw[1], int)):
        return tuple(raw)
    if isinstance(raw, list) and len(raw) == 3 and raw[0] == "cell" and isinstance(raw[1], int) and isinstance(raw[2], list):
        return ("cell", raw[1], tuple(raw[2]))
    raise ValueError(f"not a step: {raw!r}")


def frames(doc: Any, machine_row: Callable[[World, State, int], dict[str, Any]], max_steps: int) -> dict[str, Any]:
    """The console's trace viewer frames of a cells counterexample: every cell's endpoint and every
    account's name as cards, every enactor (cells' and the map's) as a row, per step."""
    bounds, labels = read_trace(doc)
    if len(labels) > max_steps:
        raise CellsTraceInvalid(f"more than {max_steps} steps")
    world = CellsWorld(bounds)
    state = world.concrete_initial

    def frame(step: dict[str, Any] | None) -> dict[str, Any]:
        rows = [machine_row(w, state.cells[c], k) | {"enactor": f"{world.names[c]}/{world.worlds[c].enactor_ids[k]}"}
                for c, w in enumerate(world.worlds) for k in range(len(state.cells[c].machines))]
        lock = layout.read_endpoint(accounts_zone(REGION), world.map_zone(state.map_zone).zone).lock_value
        for i, mid in enumerate(state.map_machines):
            m = world.map_machine(mid)
            rows.append({"enactor": world.map_ids[i], "endpoint": accounts_zone(REGION), "task": "cellmap", "phase": m.phase,
                         "plan": m.version or None, "done_version": None, "applied_version": world._map_applied(state.map_zone) or 0,
                         "holds_lock": bool(lock and lock.holder == world.map_ids[i] and lock.expires > T0),
                         "lock_seen": lock.holder if lock else None,
                         "losses": 0, "flip_failures": 0, "stuck": False})
        return {"step": step, "endpoints": summaries(world, state), "machines": rows, "published": state.maps}

    out = [frame(None)]
    try:
        for n, label in enumerate(labels, start=1):
            step = describe(world, state, label, n).as_json()
            step["continuation"] = False
            state = world.apply_concrete(state, label)[0]
            out.append(frame(step))
    except (KeyError, IndexError, TypeError, ValueError, AssertionError) as exc:
        raise CellsTraceInvalid(f"step {len(out)} cannot be replayed: {exc}") from exc
    legacy = ", ".join(bounds.legacy_cells) or "none"
    return {"mode": f"cells (legacy: {legacy})", "kind": doc.get("kind"), "invariants": doc.get("invariants") or [],
            "violations": doc.get("violations") or [], "steps": len(labels), "frames": out}


# -- the verdict ----------------------------------------------------------------------------------


def header_line(world: CellsWorld) -> str:
    b = world.bounds
    parts = []
    for name, cb in zip(b.names, b.cells, strict=True):
        extra = " (one of them cell-1's, misplaced)" if b.fault == FAULT_ENACTOR_IN_OTHER_CELL and name == "cell-2" else ""
        parts.append(f"{name} {cb.mode} ({cb.enactors} enactor{'s' if cb.enactors != 1 else ''}{extra}, plans 1..{cb.plans})")
    moves = "; ".join(f"map {m.version}: {m.reason}" for m in world.maps[1:]) or "no move"
    first = b.cells[0]
    faults = [f"{v} {k}" for k, v in (("lease expiries", first.lease_expiries), ("lock losses", first.lock_losses),
                                      ("lost replies", first.lost_replies)) if v]
    return (f"dnsctl check --cells {len(b.cells)}: {', '.join(parts)}, each its own hosted zone, plan stream, enactors and lock; "
            f"the cell map: {len(world.accounts)} accounts, {b.map_enactors} map enactor{'s' if b.map_enactors != 1 else ''}, {moves}; "
            f"a live start (every cell serves its plan 1, map 1 applied)"
            + (f"; per cell at most {', '.join(faults)}" if faults else "")
            + (f"; planted fault: {FAULTS[b.fault]}" if b.fault else ""))


def verdict_lines(result: CellsResult, cpu_s: float | None = None) -> list[str]:
    world, r = result.world, result
    b = world.bounds
    complete = "all of them" if r.exhausted and not r.frontier else (
        f"cut at depth {b.max_depth}: {r.frontier:,} states not expanded" if r.frontier else "cut before the space was exhausted")
    cpu = f", {cpu_s:.1f} CPU s" if cpu_s is not None else ""
    whole = r.exhausted and not r.frontier
    every = "every" if whole else "every explored"  # a cut run claims nothing about the rest
    out = [f"explored {r.states:,} states ({r.transitions:,} transitions, depth {r.depth}) in {r.elapsed_s:.2f} s{cpu}: "
           f"{r.states_per_s:,.0f} states/s; {complete}",
           "  the parts: " + ", ".join(f"{n} {k:,} states" for n, k in zip(world.names, r.cell_states, strict=True))
           + f", the cell map {r.map_states:,}: a global state is one of each"]
    isolation = [f for f in r.findings if f.invariant == CELL_ISOLATION]
    if isolation:
        out.append(f"CellIsolation broken: {isolation[0].violations[0].message}")
    else:
        out.append(f"CellIsolation holds: none of the {r.isolation_judged:,} {'' if whole else 'explored '}transitions of a cell's planner, clock or enactors "
                   f"({r.zone_writes:,} of them wrote a hosted zone) changed an answer of another cell's name or of an account mapped to another cell")
    lost = {a: cells for a, cells in r.lost.items()}
    kept = [a for a in world.accounts if a not in lost]
    legacy = set(b.legacy_cells)
    if lost:
        inside = all(c in legacy for cells in lost.values() for c in cells)
        out.append(f"NoEmptyAnswer through the CNAME: {len(lost)} of {len(world.accounts)} accounts answered empty in some state, "
                   + ("each only while mapped to a legacy cell: " if inside else "")
                   + ", ".join(f"{a} ({_where(c)})" for a, c in sorted(lost.items())))
    else:
        out.append(f"NoEmptyAnswer through the CNAME holds: all {len(world.accounts)} accounts answer addresses in {every} state")
    if kept:
        out.append(f"  answered in {every} state: " + ", ".join(
            f"{a} ({', '.join(sorted(r.seen_in.get(a, ())))}{': across its move' if len(r.seen_in.get(a, ())) > 1 else ''})" for a in kept))
    radius = []
    for cell in (*world.names, LEGACY):
        members = [a for a in world.accounts if cell in r.seen_in.get(a, ())]
        if members:
            broken = sum(1 for a in members if cell in lost.get(a, ()))
            radius.append(f"{cell} {broken} of {len(members)} lost DNS")
    out.append("blast radius (accounts ever mapped there / lost DNS while there): " + "; ".join(radius))
    for name, cb in zip(world.names, b.cells, strict=True):
        own = sorted({f.invariant for f in r.findings if f.subject == "endpoint" and f.scope == name})
        race = " (the October race)" if own and not cb.guard else ""
        out.append(f"{name}'s own invariants ({cb.mode}): " + (f"{', '.join(own)} broken{race}" if own else "all hold"))
    if r.ok:
        where = f"inside {', '.join(b.legacy_cells)}" if b.legacy_cells else "nowhere"
        cut = "" if whole else " within the explored states (the space was cut)"
        out.append(f"verdict: the cells hold{cut}: every race stays {where}; no account of a guarded cell or of the legacy name "
                   "ever answers empty, a move included")
    else:
        out.append("verdict: broken: " + "; ".join(f.title for f in r.failures))
    return out


def _where(cells: set[str]) -> str:
    return "; ".join("while it had no CNAME" if c == "none" else f"while in {c}" for c in sorted(cells))


def reported(result: CellsResult) -> list[Finding]:
    """The counterexamples to print: every failure, then the blast radius's shortest (one)."""
    blast = [f for f in result.findings if f.expected and f.subject == "accounts"]
    return result.failures + blast[:1]
