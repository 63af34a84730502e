"""The view grouped by the DNS management system that owns each part: the regional system (and
the cell map's zone of account names), then each cell with its endpoints judged against its own
planner, its enactors and its accounts.

One producer, one shape, for every reader of the view: the web console draws it onto every view it
publishes (services/console/poller.py), `dnsctl status --direct` draws it onto the report it reads
itself (cli/cells_view.py finds the parts in the stack's description), and `dnsctl status` through
the console takes the console's view as it is. What `group` adds to the view
(services/prober/overview.py's report):

    every endpoint and enactor row  "cell": None (regional), "cell-N", or CELLMAP (the cell map's)
    cells            [{"cell": "cell-1", "planner": PLANNER | None, "accounts": ACCOUNTS | None}, ...], cell-1 first
    cellmap          the cell map planner as PLANNER (its newest map version), None without one
    legacy_accounts  ACCOUNTS of the accounts not moved yet (the regional system's)
    accounts_at, accounts_error   when the prober probed the accounts, or why it could not be read

    PLANNER   {"url", "reachable", "newest_version", "frozen", "error"}
    ACCOUNTS  {"answering": n, "lost": n, "unanswered": n, "accounts": [{"account", "name", "target", "addresses", "answered"}]}
              (None: unknown, the prober was not read; never zero for unknown)

With cells, every cell is its own plan stream: a cell's endpoint lags behind its cell's planner,
not the regional one (the versions are different sequences), and the accounts' zone behind the
cell map planner's newest map. What every account's own name answers comes from the prober's
/v1/accounts (services/prober/accounts.py). The cells' enactors are read with the others; their
names say their cell (services/cells/naming.py's process names). Reading is HTTP only (no
Route 53, no DNS: the console's caller already has those); `group` does no I/O.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from services.cells.naming import accounts_zone, cell_number, owner_cell
from services.prober.service_status import Sources, against_planner, fetch_planner, get
from services.prober.sources import PlannerStatus, parse_planner_status
from services.stack import DEFAULT_REGION

CELLMAP = "cellmap"  # the cell map's zone and enactors: their own system, shown with the regional one
_CELL_PROCESS = re.compile(r"^(cell-[0-9]+)-")


@dataclass(frozen=True)
class CellSources:
    """Where each cell's planner is ((cell, url) pairs), the cell map planner and the prober."""

    planners: tuple[tuple[str, str], ...] = ()
    cellmap_url: str | None = None
    prober_url: str | None = None
    timeout_s: float = 3.0

    def __bool__(self) -> bool:
        # A cell map without cells (`--accounts` alone) is grouped too: its zone is judged by the
        # accounts' answers, not by its apex, which has no address.
        return bool(self.planners or self.cellmap_url)


@dataclass(frozen=True)
class CellReadings:
    at: float
    planners: dict[str, PlannerStatus] = field(default_factory=dict)
    accounts: dict[str, Any] | None = None  # the prober's /v1/accounts, None when it could not be read
    accounts_error: str | None = None
    cellmap: PlannerStatus | None = None  # the cell map planner's status, None without one


def _cellmap_status(url: str, timeout_s: float) -> PlannerStatus:
    body, error = get("cellmap-planner", url, "/v1/cellmap/status", timeout_s)
    return parse_planner_status(body, url) if error is None else PlannerStatus(url, False, error=error)


def _prober_accounts(url: str, timeout_s: float) -> tuple[dict[str, Any] | None, str | None]:
    body, error = get("prober", url, "/v1/accounts", timeout_s)
    return (body if isinstance(body, dict) else None), error


def read_cells(sources: CellSources) -> CellReadings:
    """Each cell's planner, the cell map planner and the prober's accounts, asked at once: a stack
    with cells is many processes, and a busy machine answers each one slowly."""
    # Imported here: `dnsctl status` through the console only draws the view, it reads nothing.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(sources.planners) + 2) as pool:
        planners = {cell: pool.submit(fetch_planner, Sources(planner_url=url, enactor_urls=(), dns=("127.0.0.1", 0), prober_url=None,
                                                             timeout_s=sources.timeout_s))
                    for cell, url in sources.planners}
        cellmap = pool.submit(_cellmap_status, sources.cellmap_url, sources.timeout_s) if sources.cellmap_url else None
        accounts = pool.submit(_prober_accounts, sources.prober_url, sources.timeout_s) if sources.prober_url else None
        body, error = accounts.result() if accounts is not None else (None, None)
        return CellReadings(time.time(), {cell: f.result() for cell, f in planners.items()}, body, error,
                            cellmap.result() if cellmap is not None else None)


def cell_of_endpoint(endpoint: str, region: str = DEFAULT_REGION) -> str | None:
    """cell-N for a cell's endpoint, CELLMAP for the accounts' zone, None for the regional system."""
    if endpoint.rstrip(".").lower() == accounts_zone(region):
        return CELLMAP
    return owner_cell(endpoint, region)


def cell_of_enactor(name: str) -> str | None:
    """cell-N for a cell's enactor (cell-N-enactor-a), CELLMAP for the cell map's, None for the regional trio."""
    if name.startswith("cellmap-"):
        return CELLMAP
    m = _CELL_PROCESS.match(name)
    return m.group(1) if m else None


def _planner_part(p: PlannerStatus | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {"url": p.url, "reachable": p.reachable, "newest_version": p.newest_version, "frozen": p.frozen, "error": p.error}


def _judge(row: dict[str, Any], planner: PlannerStatus | None) -> None:
    """The row's newest plan and lag against its own system's planner (unknown when unreachable)."""
    newest = planner.newest_version if planner is not None and planner.reachable else None
    row.update(against_planner(newest, row.get("applied_version")))


def group(state: dict[str, Any], readings: CellReadings | None, cells: tuple[str, ...]) -> dict[str, Any]:
    """The view with every endpoint and enactor row's `cell`, cell endpoints' newest plan and lag
    from their own planner (the accounts' zone's from the cell map planner), `cells` (one entry per
    cell, cell-1 first), `cellmap` and `legacy_accounts` (the shape in the module's docstring)."""
    planners = readings.planners if readings is not None else {}
    cellmap = readings.cellmap if readings is not None else None
    for row in state.get("endpoints", []):
        cell = row["cell"] = cell_of_endpoint(row["endpoint"])
        if cell == CELLMAP:
            _judge(row, cellmap)  # the map's versions are its own sequence, applied by its own enactors
        elif cell is not None:
            _judge(row, planners.get(cell))
    for row in state.get("enactors", []):
        row["cell"] = cell_of_enactor(row["enactor"])
    accounts = (readings.accounts if readings is not None else None) or None
    by_cell: dict[str, list[dict[str, Any]]] = {}
    for probe in (accounts or {}).get("accounts", []):
        by_cell.setdefault(probe.get("cell") or "unknown", []).append(
            {"account": probe["account"].split(".", 1)[0], "name": probe["account"], "target": probe.get("target"),
             "addresses": probe.get("addresses", 0), "answered": probe.get("answered", True)})

    def summary(cell: str) -> dict[str, Any] | None:
        if accounts is None:
            return None
        names = sorted(by_cell.get(cell, []), key=lambda a: a["account"])
        # An account the prober never got a reply for is neither answering nor lost (accounts.py).
        return {"answering": sum(1 for a in names if a["addresses"] > 0),
                "lost": sum(1 for a in names if a["addresses"] == 0 and a["answered"]),
                "unanswered": sum(1 for a in names if not a["answered"]), "accounts": names}

    # The accounts' zone has no address at its apex (its names are CNAMEs): what it serves is
    # every account's answer, so its row carries the accounts' totals instead of the apex's.
    totals = [summary(c) for c in by_cell] if accounts is not None else None
    for row in state.get("endpoints", []):
        if row["cell"] == CELLMAP:
            row["addresses"] = {}
            row["accounts"] = ({key: sum(t[key] for t in totals if t) for key in ("answering", "lost", "unanswered")}
                               if totals is not None else None)
    state["cells"] = [{"cell": cell, "planner": _planner_part(planners.get(cell)), "accounts": summary(cell)}
                      for cell in sorted(set(cells) | set(planners), key=cell_number)]
    state["cellmap"] = _planner_part(cellmap)
    state["legacy_accounts"] = summary("legacy")
    state["accounts_at"] = accounts.get("at") if accounts else None
    state["accounts_error"] = readings.accounts_error if readings is not None else None
    return state
