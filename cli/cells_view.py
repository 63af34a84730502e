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

from services.cells.naming import accounts_zone, owner_cell
from services.prober.service_status import Sources, enactor_row, fetch_enactors, fetch_planner
from services.stack import DEFAULT_REGION

CELLMAP = "cell map"
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


def annotate(report: dict[str, Any], stack, dns: tuple[str, int], timeout_s: float = 10.0) -> dict[str, Any]:
    """The report with every endpoint row's cell, cell rows' newest plan and lag from their own
    planner, the cells' enactors, and (with a cell map) the accounts per cell. The services are
    asked in parallel: a stack with cells is many processes, and a busy machine answers slowly."""
    from concurrent.futures import ThreadPoolExecutor

    cells = cell_services(stack)
    if not cells:
        return report
    sources = {cell: Sources(planner_url=where["planner"], enactor_urls=tuple(where["enactors"]), dns=dns, prober_url=None,
                             timeout_s=timeout_s) for cell, where in cells.items()}
    with ThreadPoolExecutor(max_workers=2 * len(cells) + 1) as pool:
        planner_futures = {cell: pool.submit(fetch_planner, s) for cell, s in sources.items()}
        enactor_futures = [pool.submit(fetch_enactors, s) for s in sources.values()]
        accounts_future = pool.submit(_accounts, stack, timeout_s)
        planners = {cell: f.result() for cell, f in planner_futures.items()}
        for f in enactor_futures:
            report["enactors"] += [enactor_row(s) for s in f.result()]
        cellmap = accounts_future.result()
    accounts = cellmap.get("accounts_per_cell") or {} if cellmap is not None else None
    for row in report["endpoints"]:
        cell = owner_cell(row["endpoint"], DEFAULT_REGION)
        if row["endpoint"] == accounts_zone(DEFAULT_REGION):
            cell = CELLMAP  # the cell map's zone: its versions are the map's, judged on their own
            row["newest_version"] = row["lag"] = None
        row["cell"] = cell
        if cell is None or cell == CELLMAP:
            continue
        planner = planners.get(cell)
        newest = planner.newest_version if planner and planner.reachable else None
        applied = row["applied_version"]
        row["newest_version"] = newest
        row["lag"] = max(0, newest - applied) if newest is not None and applied is not None else None
        row["ahead_of_planner"] = max(0, applied - newest) if newest is not None and applied is not None else 0
    report["cells"] = {
        cell: {"planner": {"url": p.url, "reachable": p.reachable, "newest_version": p.newest_version, "frozen": p.frozen,
                           "error": p.error},
               "accounts": accounts.get(cell) if accounts is not None else None}
        for cell, p in planners.items()
    }
    report["legacy_accounts"] = accounts.get("legacy") if accounts is not None else None
    report["cellmap"] = ({"url": stack.url("cellmap-planner"), "reachable": True, "newest_version": cellmap.get("newest_version"),
                          "frozen": cellmap.get("frozen"), "error": None} if cellmap is not None else None)
    return report


def _accounts(stack, timeout_s: float) -> dict[str, Any] | None:
    """The cell map planner's status (accounts per cell, newest map), or None without one."""
    url = stack.url("cellmap-planner") if stack else None
    if not url:
        return None
    import httpx

    try:
        return httpx.get(url + "/v1/cellmap/status", timeout=timeout_s).json()
    except (httpx.HTTPError, ValueError):
        return None


def groups(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One sub-report per management system, regional first, for the endpoint renderers."""
    regional_accounts = report.get("legacy_accounts")
    out = [{**report, "group": "regional" + (f", {regional_accounts} legacy accounts" if regional_accounts is not None else ""),
            "endpoints": [r for r in report["endpoints"] if r.get("cell") is None]}]
    mapped = [r for r in report["endpoints"] if r.get("cell") == CELLMAP]
    if mapped:
        planner = report.get("cellmap") or {"reachable": False, "newest_version": None, "frozen": None}
        out.append({**report, "group": "the cell map (account names)", "planner": planner, "endpoints": mapped})
    for cell, info in report.get("cells", {}).items():
        label = cell + (f", {info['accounts']} accounts" if info.get("accounts") is not None else "")
        out.append({**report, "group": label, "planner": info["planner"],
                    "endpoints": [r for r in report["endpoints"] if r.get("cell") == cell]})
    return out
