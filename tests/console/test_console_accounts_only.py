"""The console of `dnsctl up --accounts 4` with no cell (the cell map alone, every account on the
legacy regional name), in a real browser: the accounts' zone is judged by what the account names
answer, not by its apex (which has no address: it showed red, BROKEN with "A: 0"), and its card
says there are no cells, neutral; its newest map is the cell map planner's own."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.console.stack import Stack, open_page, screenshots, start_stack
from tests.stack.test_up import _stop_stack

ACCOUNTS = 4
ACCOUNTS_ZONE = "ddb.us-east-1.api.aws"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("console-accounts")
    s = start_stack(base / "state", version_guard=True, cells=0, accounts=ACCOUNTS)  # ready once every account is seen
    try:
        yield s
    finally:
        _stop_stack(s.proc, s.state_dir)


@pytest.mark.timeout(600)
def test_the_cell_map_without_cells_is_neutral_and_says_there_are_no_cells(stack, browser):
    state = stack.state()
    assert state["cells"] == [] and state["legacy_accounts"]["answering"] == ACCOUNTS, state.get("legacy_accounts")
    row = next(r for r in state["endpoints"] if r["endpoint"] == ACCOUNTS_ZONE)
    assert row["cell"] == "cellmap" and row["addresses"] == {} and row["accounts"] == {"answering": ACCOUNTS, "lost": 0, "unanswered": 0}
    cellmap = json.loads((stack.state_dir / "stack.json").read_text())["services"]["cellmap-planner"]
    newest = httpx.get(f"http://127.0.0.1:{cellmap['port']}/v1/cellmap/status", timeout=10).json()["newest_version"]
    assert state["cellmap"]["newest_version"] == newest and row["newest_version"] == newest
    page = open_page(browser, stack)
    try:
        # The page redraws every card on each view: read through locators, which find the card anew.
        card = page.locator(f"article.card[data-endpoint='{ACCOUNTS_ZONE}']")
        page.wait_for_function(f"() => /{ACCOUNTS} accounts: {ACCOUNTS} answering/.test("
                               f"document.querySelector(\"article.card[data-endpoint='{ACCOUNTS_ZONE}'] .answers\").textContent)", timeout=60_000)
        assert card.get_attribute("data-broken") == "false" and "neutral" in card.get_attribute("class").split()
        assert card.locator("h3 .badge.neutral").inner_text() == "no cells"
        assert "no cells: every account's name CNAMEs the legacy regional name" in card.locator(".answers").inner_text()
        assert f"map {newest}" in card.locator(".newest").inner_text()
        assert page.locator("#cells").is_hidden()  # no cell part without cells
        others = page.eval_on_selector_all("#endpoint-cards article.card:not([data-cell='cellmap'])", "els => els.map(e => e.dataset.broken)")
        assert others == ["false"] * 3, others
        page.screenshot(path=str(screenshots() / "console-cellmap-no-cells.png"), full_page=True)
        assert page.errors == []
    finally:
        page.close()
