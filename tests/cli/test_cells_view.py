"""`dnsctl status` with cells, its pure parts: where the cells are in a stack's description
(cli/cells_view.py), and the grouped report (services/prober/cell_groups.py's shape, the one the
console publishes) split into one table per management system, rendered."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from cli.cells_view import cell_sources, groups
from cli.status_cmd import status_tables
from services.prober.cell_groups import CellReadings, group
from services.prober.sources import PlannerStatus
from services.stack_file import Stack

REGIONAL, CELL1, CELL10, ACCOUNTS_ZONE = ("dynamodb.us-east-1.api.aws", "cell-1.ddb.us-east-1.api.aws", "cell-10.ddb.us-east-1.api.aws",
                                          "ddb.us-east-1.api.aws")


def _stack(names: list[str]) -> Stack:
    return Stack(Path("/nowhere/stack.json"), {"host": "127.0.0.1", "services": {n: {"port": 9000 + i, "protocol": "tcp"}
                                                                                  for i, n in enumerate(names)}})


def test_the_stack_description_names_the_cells_planners_and_every_cell_and_cell_map_enactor():
    names = ["planner", "enactor-a", "prober", "cell-10-planner", "cell-10-enactor-a", "cell-2-enactor-b", "cell-2-planner",
             "cell-2-enactor-a", "cell-2-zones", "cellmap-planner", "cellmap-enactor-a", "cellmap-zones"]
    stack = _stack(names)
    enactors, sources = cell_sources(stack)
    assert [n for n, _ in enactors] == ["cell-2-enactor-a", "cell-2-enactor-b", "cell-10-enactor-a", "cellmap-enactor-a"]
    assert [c for c, _ in sources.planners] == ["cell-2", "cell-10"]  # by number, not by text
    assert sources.cellmap_url == stack.url("cellmap-planner") and sources.prober_url == stack.url("prober")


def test_a_stack_without_cells_or_a_cell_map_has_nothing_to_group():
    enactors, sources = cell_sources(_stack(["planner", "enactor-a", "prober"]))
    assert enactors == () and not sources
    assert not cell_sources(None)[1]
    _, only_map = cell_sources(_stack(["planner", "prober", "cellmap-planner"]))
    assert only_map and only_map.planners == ()  # `--accounts` without cells is grouped too


def _row(endpoint: str, applied: int) -> dict:
    return {"endpoint": endpoint, "active_version": applied, "applied_version": applied, "tree": "t-1", "dangling": [], "rollback_tree": None,
            "rollback_version": None, "lock_holder": None, "lock_expires": None, "newest_version": 40, "lag": 0, "ahead_of_planner": 0,
            "addresses": {"A": 0 if endpoint == ACCOUNTS_ZONE else 2}}


def _report(readings: CellReadings, cells: tuple[str, ...]) -> dict:
    report = {"at": 0.0, "route53_error": None, "planner": {"url": "http://p", "reachable": True, "newest_version": 40, "frozen": False},
              "endpoints": [_row(REGIONAL, 40), _row(CELL1, 3), _row(CELL10, 9), _row(ACCOUNTS_ZONE, 2)],
              "enactors": [], "alarms": [], "warnings": []}
    return group(report, readings, cells)


def _probe(account: str, cell: str, addresses: int) -> dict:
    return {"account": f"{account}.ddb.us-east-1.api.aws", "cell": cell, "target": None, "addresses": addresses}


def test_each_system_is_its_own_table_judged_against_its_own_planner():
    readings = CellReadings(0.0, {"cell-1": PlannerStatus("http://c1", True, newest_version=5),
                                  "cell-10": PlannerStatus("http://c10", False, error="refused")},
                            {"at": 1.0, "accounts": [_probe("100000000001", "cell-1", 2), _probe("100000000002", "legacy", 0),
                                                     _probe("100000000003", "cell-10", 0)]},
                            cellmap=PlannerStatus("http://m", True, newest_version=4))
    report = _report(readings, ("cell-1", "cell-10"))
    parts = {p["group"]: p for p in groups(report)}
    assert list(parts) == ["regional, 1 legacy account, 1 without DNS", "the cell map (account names)", "cell-1, 1 account",
                           "cell-10, 1 account, 1 without DNS"]
    assert [r["endpoint"] for r in parts["regional, 1 legacy account, 1 without DNS"]["endpoints"]] == [REGIONAL]
    assert parts["the cell map (account names)"]["planner"]["newest_version"] == 4
    assert parts["cell-10, 1 account, 1 without DNS"]["planner"]["reachable"] is False
    rows = {r["endpoint"]: r for r in report["endpoints"]}
    assert (rows[CELL1]["lag"], rows[ACCOUNTS_ZONE]["lag"], rows[CELL10]["lag"]) == (2, 2, None)
    text = _render(report)
    assert "endpoints of cell-1, 1 account  (newest plan 5)" in text and "endpoints of cell-10, 1 account, 1 without DNS  (planner unreachable)" in text
    assert "endpoints of the cell map (account names)  (newest map 4)" in text
    assert "accounts 1 answering / 2 lost" in text  # the accounts' zone: its names' answers, not its apex's "A 0"


def test_a_cell_map_without_cells_says_so_and_unknown_accounts_are_not_zero():
    report = _report(CellReadings(0.0, {}, None, "prober: refused", cellmap=PlannerStatus("http://m", True, newest_version=1)), ())
    report["endpoints"] = [r for r in report["endpoints"] if r["endpoint"] in (REGIONAL, ACCOUNTS_ZONE)]
    assert [p["group"] for p in groups(report)] == ["regional", "the cell map (account names), no cells yet"]
    text = _render(report)
    assert "accounts ?" in text and "A 0" not in text


def _render(report: dict) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(status_tables(report, 200))
    return console.export_text()
