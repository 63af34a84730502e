"""The console's view grouped by the DNS management system that owns each part: the regional
system first, then each cell (its endpoints judged against its own planner, its enactors, its
accounts), as `dnsctl status` groups them (cli/cells_view.py).

With cells, every cell is its own plan stream: a cell's endpoint lags behind its cell's planner,
not the regional one (the versions are different sequences). The console reads each cell's
planner beside the regional one, and the prober's /v1/accounts for what every account's own
name answers, per cell (services/prober/accounts.py). The cells' enactors come in with the
others (`dnsctl console --enactor cell-1-enactor-a=URL`); their names say their cell
(services/cells/naming.py's process names). Everything here is read in the poller's thread, at
most once per interval, and drawn onto the view without I/O.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from cli.client import ServiceError, service_client
from services.cells.naming import accounts_zone, cell_number, owner_cell
from services.prober.overview import Sources, fetch_planner
from services.prober.sources import PlannerStatus
from services.stack import DEFAULT_REGION

CELLMAP = "cellmap"  # the cell map's zone and enactors: their own system, shown with the regional one
_CELL_PROCESS = re.compile(r"^(cell-[0-9]+)-")


@dataclass(frozen=True)
class CellSources:
    """Where each cell's planner is ((cell, url) pairs, from `--cell-planner cell-N=URL`) and the prober."""

    planners: tuple[tuple[str, str], ...] = ()
    prober_url: str | None = None
    timeout_s: float = 3.0

    def __bool__(self) -> bool:
        return bool(self.planners)


@dataclass(frozen=True)
class CellReadings:
    at: float
    planners: dict[str, PlannerStatus] = field(default_factory=dict)
    accounts: dict[str, Any] | None = None  # the prober's /v1/accounts, None when it could not be read
    accounts_error: str | None = None


def read_cells(sources: CellSources) -> CellReadings:
    """Each cell's planner status and the prober's accounts (HTTP; the poller's thread calls it)."""
    planners = {cell: fetch_planner(Sources(planner_url=url, enactor_urls=(), dns=("127.0.0.1", 0), prober_url=None,
                                            timeout_s=sources.timeout_s))
                for cell, url in sources.planners}
    accounts, error = None, None
    if sources.prober_url:
        try:
            body = service_client("prober", sources.prober_url, sources.timeout_s).get("/v1/accounts")
        except ServiceError as exc:
            error = str(exc)
        else:
            accounts = body if isinstance(body, dict) else None
    return CellReadings(time.time(), planners, accounts, error)


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


def group(state: dict[str, Any], readings: CellReadings | None, cells: tuple[str, ...]) -> dict[str, Any]:
    """The view with every endpoint and enactor row's `cell`, cell endpoints' newest plan and lag
    from their own planner, and `cells` (one entry per cell, cell-1 first) with its planner and its
    accounts; `legacy_accounts` are the accounts not moved yet (the regional system's)."""
    planners = readings.planners if readings is not None else {}
    for row in state.get("endpoints", []):
        cell = row["cell"] = cell_of_endpoint(row["endpoint"])
        if cell == CELLMAP:
            row["newest_version"] = row["lag"] = None  # the map's versions are its own; it has no tree planner
            row["ahead_of_planner"] = 0
        elif cell is not None:
            planner = planners.get(cell)
            newest = planner.newest_version if planner is not None and planner.reachable else None
            applied = row.get("applied_version")
            row["newest_version"] = newest
            row["lag"] = max(0, newest - applied) if newest is not None and applied is not None else None
            row["ahead_of_planner"] = max(0, applied - newest) if newest is not None and applied is not None else 0
    for row in state.get("enactors", []):
        row["cell"] = cell_of_enactor(row["enactor"])
    accounts = (readings.accounts if readings is not None else None) or None
    by_cell: dict[str, list[dict[str, Any]]] = {}
    for probe in (accounts or {}).get("accounts", []):
        by_cell.setdefault(probe.get("cell") or "unknown", []).append(
            {"account": probe["account"].split(".", 1)[0], "name": probe["account"], "target": probe.get("target"),
             "addresses": probe.get("addresses", 0)})

    def summary(cell: str) -> dict[str, Any] | None:
        if accounts is None:
            return None
        names = sorted(by_cell.get(cell, []), key=lambda a: a["account"])
        return {"answering": sum(1 for a in names if a["addresses"] > 0), "lost": sum(1 for a in names if a["addresses"] == 0),
                "accounts": names}

    # The accounts' zone has no address at its apex (its names are CNAMEs): what it serves is
    # every account's answer, so its row carries the accounts' totals instead of the apex's.
    totals = [summary(c) for c in by_cell] if accounts is not None else None
    for row in state.get("endpoints", []):
        if row["cell"] == CELLMAP:
            row["addresses"] = {}
            row["accounts"] = ({"answering": sum(t["answering"] for t in totals if t), "lost": sum(t["lost"] for t in totals if t)}
                               if totals is not None else None)
    out = []
    for cell in sorted(set(cells) | set(planners), key=cell_number):
        p = planners.get(cell)
        out.append({
            "cell": cell,
            "planner": ({"url": p.url, "reachable": p.reachable, "newest_version": p.newest_version, "frozen": p.frozen, "error": p.error}
                        if p is not None else None),
            "accounts": summary(cell),
        })
    state["cells"] = out
    state["legacy_accounts"] = summary("legacy")
    state["accounts_at"] = accounts.get("at") if accounts else None
    state["accounts_error"] = readings.accounts_error if readings is not None else None
    return state
