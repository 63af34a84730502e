"""`dnsctl status` with cells: where a stack's cells are, and its endpoints as one table per DNS
management system.

The grouping itself (every row's cell, a cell's lag against its own planner, the accounts per
cell) has one producer, services/prober/cell_groups.py, which the web console runs too: status
through the console takes the console's grouped view as it is, and status reading directly runs
the same `group` on its own report. This module only finds the parts in the stack's description
(stack.json: services named cell-N-planner, cell-N-enactor-a ..., cellmap-planner,
cellmap-enactor-a ...) and splits the grouped report into the tables' groups, the regional
system first.
"""

from __future__ import annotations

import re
from typing import Any

from services.prober.cell_groups import CELLMAP, CellSources

_CELL_SERVICE = re.compile(r"^(cell-[0-9]+)-(planner|enactor-[a-z])$")
_CELLMAP_ENACTOR = re.compile(r"^cellmap-enactor-[a-z]$")


def cell_sources(stack, timeout_s: float = 10.0) -> tuple[tuple[tuple[str, str], ...], CellSources]:
    """The cells' and the cell map's enactors ((name, url) pairs, read with the regional ones) and
    where the cells' planners, the cell map planner and the prober are; empty without cells or a
    cell map. A busy machine answers a stack of many processes slowly, hence the long timeout."""
    planners: list[tuple[str, str]] = []
    enactors: list[tuple[str, str]] = []
    for name in sorted(stack.services if stack else {}, key=_service_order):
        url = stack.url(name)
        m = _CELL_SERVICE.match(name)
        if not url or not (m or _CELLMAP_ENACTOR.match(name)):
            continue
        if m and m.group(2) == "planner":
            planners.append((m.group(1), url))
        else:
            enactors.append((name, url))
    cellmap = stack.url("cellmap-planner") if stack else None
    prober = stack.url("prober") if stack else None
    return tuple(enactors), CellSources(tuple(planners), cellmap, prober if (planners or cellmap) else None, timeout_s)


def grouped(report: dict[str, Any], cells: CellSources) -> dict[str, Any]:
    """A report read here (status --direct, the live view of `dnsctl up`) grouped by cell, as the
    console groups its own: the cells' planners, the cell map planner and the prober's accounts
    read now, then services/prober/cell_groups.py's `group`."""
    from services.prober.cell_groups import group, read_cells

    return group(report, read_cells(cells), tuple(cell for cell, _ in cells.planners))


def _service_order(name: str) -> tuple[int, str]:
    """cell-2 before cell-10, the cell map's after every cell's."""
    m = _CELL_SERVICE.match(name)
    return (int(m.group(1).split("-")[1]), name) if m else (1 << 30, name)


def accounts_text(summary: dict[str, Any], noun: str = "accounts") -> str:
    """"4 accounts", "4 accounts, 2 without DNS" or "..., 1 no reply" (the prober's answers
    for their names; an account with no answer to count is neither answering nor without DNS)."""
    unanswered = summary.get("unanswered", 0)
    count = summary["answering"] + summary["lost"] + unanswered
    return (f"{count} {noun if count != 1 else noun.removesuffix('s')}" + (f", {summary['lost']} without DNS" if summary["lost"] else "")
            + (f", {unanswered} no reply" if unanswered else ""))


def groups(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One sub-report per management system, regional first, for the endpoint renderers."""
    unknown = {"url": None, "reachable": False, "newest_version": None, "frozen": None, "error": "not read"}
    legacy = report.get("legacy_accounts")
    out = [{**report, "group": "regional" + (f", {accounts_text(legacy, 'legacy accounts')}" if legacy is not None else ""),
            "endpoints": [r for r in report["endpoints"] if r.get("cell") is None]}]
    mapped = [r for r in report["endpoints"] if r.get("cell") == CELLMAP]
    if mapped:
        out.append({**report, "group": "the cell map (account names)" + ("" if report.get("cells") else ", no cells yet"),
                    "planner": report.get("cellmap") or unknown, "versions_of": "map", "endpoints": mapped})
    for info in report.get("cells") or []:
        label = info["cell"] + (f", {accounts_text(info['accounts'])}" if info.get("accounts") is not None else "")
        out.append({**report, "group": label, "planner": info.get("planner") or unknown,
                    "endpoints": [r for r in report["endpoints"] if r.get("cell") == info["cell"]]})
    return out
