"""The race button on a guarded `dnsctl up` stack: the guard holds, no endpoint turns red, and the
verdict links the interleaving the guard refuses (the checker's October race) and says the guard
holds in the checker too."""

from __future__ import annotations

import pytest

from tests.console.stack import (
    open_page,
    open_the_races_trace,
    race_from_the_page,
    screenshots,
    stack_fixture,
)

pytestmark = pytest.mark.slow
stack = stack_fixture(version_guard=True)


@pytest.mark.timeout(600)  # the race itself takes a minute; a busy machine stretches it
def test_the_race_button_in_guarded_mode_holds(stack, browser):
    stack.publish("console test: settle")
    page = open_page(browser, stack, token=stack.token)
    try:
        assert not race_from_the_page(page, "guarded"), page.inner_text("#race-verdict")
        assert "HELD" in page.inner_text("#race-verdict").upper()
        page.wait_for_timeout(1500)  # one more state read after the verdict
        assert page.query_selector_all("article.card[data-broken='true']") == []
        assert len(page.query_selector_all("article.card[data-broken='false']")) == 3
        page.screenshot(path=str(screenshots() / "console-guarded-race-held.png"), full_page=True)
        said = open_the_races_trace(page, stack)
        assert "the model checker says the guard holds" in said, said
        assert page.errors == []
    finally:
        page.close()
