"""`dnsctl status` with cells: the endpoints grouped by the DNS management system that owns them.

The regional system's endpoints come first, then each cell's, every group judged against its own
planner (a cell's versions are its own sequence: its lag is against its planner's newest plan,
not the regional one's); the cells' enactors join the enactor table; with a cell map, each group
says how many accounts it serves. Everything is found in the stack's description (stack.json:
services named cell-N-planner, cell-N-enactor-a ..., cellmap-planner).
"""

from __future__ import annotations

import re
from typing import Any

from services.cells.naming import owner_cell
from services.prober.overview import Sources, enactor_row, fetch_enactors, fetch_planner
from services.stack import DEFAULT_REGION

_CELL_SERVICE = re.compile(r"^(cell-[0-9]+)-(planner|enactor-[a-z])$")


def cell_services(stack) -> dict[str, dict[str, Any]]:
    """cell -> {"planner": url, "enactors": [(name, url)]} from the stack's description."""
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(stack.services if stack else {}):
        m = _CELL_SERVICE.match(name)
        url = stack.url(name)
        if not m or not url:
            continue
        cell = out.setdefault(m.group(1), {"planner": None, "enactors": []})
        if m.group(2) == "planner":
            cell["planner"] = url
        else:
            cell["enactors"].append((name, url))
    return out


def annotate(report: dict[str, Any], stack, dns: tuple[str, int], timeout_s: float = 2.0) -> dict[str, Any]:
    """The report with every endpoint row's cell, cell rows' newest plan and lag from their own
    planner, the cells' enactors, and (with a cell map) the accounts per cell."""
    cells = cell_services(stack)
    if not cells:
        return report
    planners = {}
    for cell, where in cells.items():
        sources = Sources(planner_url=where["planner"], enactor_urls=tuple(where["enactors"]), dns=dns, prober_url=None,
                          timeout_s=timeout_s)
        planners[cell] = fetch_planner(sources)
        report["enactors"] += [enactor_row(s) for s in fetch_enactors(sources)]
    for row in report["endpoints"]:
        cell = owner_cell(row["endpoint"], DEFAULT_REGION)
        row["cell"] = cell
        if cell is None:
            continue
        planner = planners.get(cell)
        newest = planner.newest_version if planner and planner.reachable else None
        applied = row["applied_version"]
        row["newest_version"] = newest
        row["lag"] = max(0, newest - applied) if newest is not None and applied is not None else None
        row["ahead_of_planner"] = max(0, applied - newest) if newest is not None and applied is not None else 0
    accounts = _accounts(stack, timeout_s)
    report["cells"] = {
        cell: {"planner": {"url": p.url, "reachable": p.reachable, "newest_version": p.newest_version, "frozen": p.frozen,
                           "error": p.error},
               "accounts": accounts.get(cell) if accounts is not None else None}
        for cell, p in planners.items()
    }
    report["legacy_accounts"] = accounts.get("legacy") if accounts is not None else None
    return report


def _accounts(stack, timeout_s: float) -> dict[str, int] | None:
    url = stack.url("cellmap-planner") if stack else None
    if not url:
        return None
    import httpx

    try:
        return httpx.get(url + "/v1/cellmap/status", timeout=timeout_s).json().get("accounts_per_cell") or {}
    except (httpx.HTTPError, ValueError):
        return None


def groups(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One sub-report per management system, regional first, for the endpoint renderers."""
    regional_accounts = report.get("legacy_accounts")
    out = [{**report, "group": "regional" + (f", {regional_accounts} legacy accounts" if regional_accounts is not None else ""),
            "endpoints": [r for r in report["endpoints"] if r.get("cell") is None]}]
    for cell, info in report.get("cells", {}).items():
        label = cell + (f", {info['accounts']} accounts" if info.get("accounts") is not None else "")
        out.append({**report, "group": label, "planner": info["planner"],
                    "endpoints": [r for r in report["endpoints"] if r.get("cell") == cell]})
    return out
