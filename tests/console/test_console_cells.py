"""The console groups by cell (issue 16 item 4): on a live `dnsctl up --cells 2 --accounts 6`
stack, the regional system comes first, then one part per cell with its endpoints, its enactors
and its accounts (the prober's /v1/accounts), in a real browser; axe finds no WCAG A/AA
violation on the grouped page. Plus the grouping's pure logic (services/prober/cell_groups.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.prober.cell_groups import CELLMAP, CellReadings, group
from services.prober.sources import PlannerStatus
from tests.console.stack import Stack, open_page, screenshots, start_stack, wait_until
from tests.stack.test_up import _stop_stack

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
CELLS, ACCOUNTS = 2, 6


# -- the grouping itself (pure) -----------------------------------------------------------------


def _row(endpoint: str, applied: int) -> dict:
    return {"endpoint": endpoint, "applied_version": applied, "newest_version": 40, "lag": 0, "ahead_of_planner": 0}


def test_rows_get_their_cell_and_cell_endpoints_their_own_planners_lag():
    state = {
        "endpoints": [_row("dynamodb.us-east-1.api.aws", 40), _row("cell-1.ddb.us-east-1.api.aws", 3),
                      _row("cell-2.ddb.us-east-1.api.aws", 7), _row("ddb.us-east-1.api.aws", 2)],
        "enactors": [{"enactor": n} for n in ("enactor-a", "cell-1-enactor-b", "cell-12-enactor-c", "cellmap-enactor-a")],
    }
    readings = CellReadings(0.0, {"cell-1": PlannerStatus("http://c1", True, newest_version=5),
                                  "cell-2": PlannerStatus("http://c2", False, error="refused")},
                            {"at": 1.0, "accounts": [
                                {"account": "100000000001.ddb.us-east-1.api.aws", "cell": "cell-1", "target": "cell-1.ddb.us-east-1.api.aws", "addresses": 2},
                                {"account": "100000000002.ddb.us-east-1.api.aws", "cell": "cell-2", "target": "cell-2.ddb.us-east-1.api.aws", "addresses": 0},
                                {"account": "100000000003.ddb.us-east-1.api.aws", "cell": "legacy", "target": "dynamodb.us-east-1.api.aws", "addresses": 3},
                                # Never answered yet (the prober's questions timed out): neither answering nor lost.
                                {"account": "100000000004.ddb.us-east-1.api.aws", "cell": "unknown", "target": None, "addresses": 0,
                                 "answered": False}]},
                            cellmap=PlannerStatus("http://map", True, newest_version=4))
    out = group(state, readings, ("cell-1", "cell-2"))
    rows = {r["endpoint"]: r for r in out["endpoints"]}
    assert [rows[e]["cell"] for e in rows] == [None, "cell-1", "cell-2", CELLMAP]
    assert (rows["cell-1.ddb.us-east-1.api.aws"]["newest_version"], rows["cell-1.ddb.us-east-1.api.aws"]["lag"]) == (5, 2)
    assert rows["cell-2.ddb.us-east-1.api.aws"]["newest_version"] is None  # its planner is unreachable: unknown, not the regional 40
    assert rows["dynamodb.us-east-1.api.aws"]["newest_version"] == 40  # the regional rows keep the regional planner's
    # The accounts' zone is judged against the cell map planner's newest map (its own sequence).
    assert (rows["ddb.us-east-1.api.aws"]["newest_version"], rows["ddb.us-east-1.api.aws"]["lag"]) == (4, 2)
    assert out["cellmap"] == {"url": "http://map", "reachable": True, "newest_version": 4, "frozen": None, "error": None}
    assert [e["cell"] for e in out["enactors"]] == [None, "cell-1", "cell-12", CELLMAP]
    assert [c["cell"] for c in out["cells"]] == ["cell-1", "cell-2"]
    assert out["cells"][0]["accounts"] == {"answering": 1, "lost": 0, "unanswered": 0, "accounts": [
        {"account": "100000000001", "name": "100000000001.ddb.us-east-1.api.aws", "target": "cell-1.ddb.us-east-1.api.aws", "addresses": 2,
         "answered": True}]}
    assert (out["cells"][1]["accounts"]["lost"], out["cells"][1]["planner"]["reachable"]) == (1, False)
    assert out["legacy_accounts"]["answering"] == 1
    # The accounts' zone is judged by every account's answer, not by its apex (which has no address).
    assert (rows["ddb.us-east-1.api.aws"]["addresses"], rows["ddb.us-east-1.api.aws"]["accounts"]) == ({}, {"answering": 2, "lost": 1, "unanswered": 1})


def test_without_the_prober_accounts_are_unknown_not_zero():
    out = group({"endpoints": [], "enactors": []}, CellReadings(0.0, {}, None, "prober: connection refused"), ("cell-1",))
    assert out["cells"] == [{"cell": "cell-1", "planner": None, "accounts": None}]
    assert out["legacy_accounts"] is None and out["accounts_error"] == "prober: connection refused"
    assert out["cellmap"] is None  # no cell map planner: unknown, not a map at version 0


# -- the page, live ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("console-cells")
    s = start_stack(base / "state", version_guard=True, cells=CELLS, accounts=ACCOUNTS)
    try:
        yield s
    finally:
        _stop_stack(s.proc, s.state_dir)


def _cell_planner(stack: Stack, cell: str) -> str:
    import json

    described = json.loads((stack.state_dir / "stack.json").read_text())
    return described["services"][f"{cell}-planner"]["url"]


pytestmark = pytest.mark.slow


@pytest.mark.timeout(600)
def test_the_page_shows_the_regional_system_then_each_cell_with_its_enactors_and_accounts(stack, browser):
    state = stack.state()
    assert [c["cell"] for c in state["cells"]] == ["cell-1", "cell-2"]
    # Each cell's endpoint is judged against its own planner's plan stream.
    for cell in ("cell-1", "cell-2"):
        newest = httpx.get(_cell_planner(stack, cell) + "/v1/planner/status", timeout=10).json()["newest_version"]
        wait_until(f"{cell}'s endpoint judged against its own planner (newest {newest})",
                   lambda cell=cell, newest=newest: any(r["endpoint"] == f"{cell}.ddb.us-east-1.api.aws" and r["newest_version"] == newest
                                                        for r in stack.state()["endpoints"]), 30)
    page = open_page(browser, stack)
    try:
        page.wait_for_selector("#cells section.cell[data-cell='cell-2'] article.card", timeout=60_000)
        page.wait_for_function(f"() => document.querySelectorAll('ul.accounts li[data-account]').length === {ACCOUNTS}", timeout=60_000)
        # The regional system first: its heading, its three endpoints and the accounts' zone, its enactors.
        headings = page.eval_on_selector_all("main h2, main h3", "els => els.map(e => e.textContent.trim())")
        assert headings.index("Regional system") < headings.index("Cells") < headings.index("cell-1") < headings.index("cell-2"), headings
        regional = page.eval_on_selector_all("#endpoint-cards article.card", "els => els.map(e => [e.dataset.endpoint, e.dataset.broken])")
        assert sorted(regional) == sorted([[e, "false"] for e in ("dynamodb.us-east-1.api.aws", "dynamodb.us-east-1.amazonaws.com",
                                                                   "dynamodb-fips.us-east-1.amazonaws.com", "ddb.us-east-1.api.aws")]), regional
        regional_enactors = page.eval_on_selector_all("#enactor-table tbody tr", "els => els.map(e => e.dataset.enactor)")
        assert sorted(regional_enactors) == ["cellmap-enactor-a", "cellmap-enactor-b", "cellmap-enactor-c", "enactor-a", "enactor-b", "enactor-c"]
        legacy = page.eval_on_selector_all("#regional-account-list li", "els => els.map(e => e.dataset.account)")
        assert len(legacy) == ACCOUNTS // (CELLS + 1), legacy  # every (cells+1)-th account stays on the legacy name
        # Then each cell: its own endpoint, its own trio, its accounts, every one answering.
        seen = set(legacy)
        for cell in ("cell-1", "cell-2"):
            part = f"#cells section.cell[data-cell='{cell}']"
            cards = page.eval_on_selector_all(f"{part} article.card", "els => els.map(e => [e.dataset.endpoint, e.dataset.broken])")
            assert cards == [[f"{cell}.ddb.us-east-1.api.aws", "false"]], cards
            trio = page.eval_on_selector_all(f"{part} table.enactors tbody tr", "els => els.map(e => e.dataset.enactor)")
            assert trio == [f"{cell}-enactor-a", f"{cell}-enactor-b", f"{cell}-enactor-c"], trio
            accounts = page.eval_on_selector_all(f"{part} ul.accounts li", "els => els.map(e => [e.dataset.account, Number(e.dataset.addresses)])")
            assert len(accounts) == ACCOUNTS // (CELLS + 1) and all(n > 0 for _, n in accounts), accounts
            seen |= {a for a, _ in accounts}
            assert "answering, 0 lost DNS" in page.inner_text(f"{part} .cell-summary")
        assert len(seen) == ACCOUNTS  # every account shown once, in its own group
        page.add_script_tag(path=str(AXE))
        result = page.evaluate("async () => await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}})")
        violations = [(v["id"], v["impact"], len(v["nodes"]), v["nodes"][0]["target"]) for v in result["violations"]]
        assert violations == [], violations
        assert result["passes"], "axe checked nothing"
        page.screenshot(path=str(screenshots() / "console-cells.png"), full_page=True)
        assert page.errors == []
    finally:
        page.close()
