"""The console in a real browser against a live legacy-mode `dnsctl up` stack: the three
endpoints with the newest plan, a flip on the page within 2 s of the enactor's log event, a
token-less click refused, accessibility basics, the checker trace viewer, and the race button
breaking an endpoint the October way (then repair heals it). One stack for the module; the race
runs last because it leaves the stack broken."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.console.stack import (
    flipped_events,
    open_page,
    open_the_races_trace,
    race_from_the_page,
    screenshots,
    stack_fixture,
    wait_until,
    what_the_console_shows,
)
from tests.processes import ROOT

pytestmark = pytest.mark.slow
stack = stack_fixture(version_guard=False)
AXE = Path(__file__).parent / "vendor" / "axe.min.js"


def test_a_click_without_the_token_is_refused_and_changes_nothing(stack, browser):
    page = open_page(browser, stack)
    try:
        page.wait_for_selector("article.card")
        page.click("#freeze")
        result = page.wait_for_selector("#action-result p")
        assert "refused (401)" in result.inner_text()
        assert "token" in result.inner_text()
        status = httpx.get(stack.planner + "/v1/planner/status", timeout=10).json()
        assert status["frozen"] is False
        assert httpx.post(stack.console + "/api/freeze", json={"reason": "x"}, timeout=10).status_code == 401
        assert httpx.post(stack.console + "/api/race", headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401
        too_big = httpx.post(stack.console + "/api/trace", content=b"x" * (3 * 1024 * 1024), timeout=30)
        assert too_big.status_code == 413  # refused before it is parsed
        page.screenshot(path=str(screenshots() / "console-refused-without-token.png"))
        assert page.errors == []
    finally:
        page.close()


def test_the_page_shows_the_three_endpoints_with_the_newest_plan(stack, browser):
    version = stack.publish("console test: newest plan")
    page = open_page(browser, stack)
    try:
        page.wait_for_function(
            """v => { const cards = [...document.querySelectorAll('article.card[data-endpoint]')];
                      return cards.length === 3 && cards.every(c => Number(c.dataset.activeVersion) === v
                                                                  && Number(c.querySelector('.newest').dataset.newest) === v); }""",
            arg=version, timeout=60_000,
        )
        cards = page.query_selector_all("article.card[data-endpoint]")
        rows = {e["endpoint"]: e for e in stack.state()["endpoints"]}
        assert sorted(c.get_attribute("data-endpoint") for c in cards) == sorted(rows)
        for card in cards:
            assert card.get_attribute("data-broken") == "false"
            assert f"plan {version}" in card.query_selector(".newest").inner_text()
            # root -> tree -> LBs drawn: one square per load balancer of the active tree (a bottom
            # node holds several LBs; each is drawn, with its AZ and share in the square's title)
            lbs = rows[card.get_attribute("data-endpoint")]["route53"]["active_tree"]["load_balancers"]
            titles = [t.text_content() for t in card.query_selector_all("svg.tree rect > title")]
            assert len(lbs) > 1 and all(any(t.startswith(f"{lb['lb_id']} ({lb['az']})") for t in titles) for lb in lbs), titles
        assert page.query_selector("#enactor-table tbody tr[data-enactor='enactor-c']") is not None
        page.screenshot(path=str(screenshots() / "console-demo.png"), full_page=True)
        assert page.errors == []
    finally:
        page.close()


def test_a_flip_shows_within_two_seconds_of_the_enactors_log_event(stack, browser):
    page = open_page(browser, stack)
    try:
        page.wait_for_selector("article.card")
        page.wait_for_timeout(500)  # the stream is open
        version = stack.publish("console test: flip")
        logged = wait_until(
            f"an enactor logging flipped v{version}",
            lambda: [e for n in ("enactor-a", "enactor-b", "enactor-c") for e in flipped_events(stack.log(n), version)],
            60,
        )
        page.wait_for_function("v => window.dnsctlConsole.flips.some(f => f.plan_version === v)", arg=version, timeout=10_000)
        flips = page.evaluate("v => window.dnsctlConsole.flips.filter(f => f.plan_version === v)", version)
        first = min(flips, key=lambda f: f["shown_at"])
        latency_ms = first["shown_at"] - page.evaluate("ts => Date.parse(ts)", first["ts"])
        assert first["ts"] in {e["ts"] for e in logged}
        assert latency_ms <= 2000, f"the flip showed {latency_ms} ms after the enactor logged it"
        card = page.query_selector(f"article.card[data-endpoint='{first['endpoint']}'] .last-flip")
        assert card.get_attribute("data-plan") == str(version)
    finally:
        page.close()


def test_accessibility_basics_labels_contrast_keyboard_and_print(stack, browser):
    page = open_page(browser, stack)
    try:
        page.wait_for_selector("article.card")
        page.wait_for_selector("#timeline-table tbody tr")
        page.add_script_tag(path=str(AXE))
        result = page.evaluate("async () => await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}})")
        violations = [(v["id"], v["impact"], len(v["nodes"]), v["nodes"][0]["target"]) for v in result["violations"]]
        assert violations == [], violations
        assert result["passes"], "axe checked nothing"
        # Keyboard: every control is reached with Tab alone.
        reached = set()
        for _ in range(60):
            page.keyboard.press("Tab")
            reached.add(page.evaluate("document.activeElement.id"))
        assert {"token", "race-run", "freeze", "drain", "repair", "trace-file"} <= reached, reached
        page.emulate_media(media="print")
        assert not page.is_visible("#controls") and page.is_visible("#endpoints") and page.is_visible("#timeline")
        page.screenshot(path=str(screenshots() / "console-print.png"), full_page=True)
    finally:
        page.close()


def test_the_trace_viewer_steps_through_a_checker_counterexample(stack, browser, tmp_path):
    cx = tmp_path / "cx.json"
    run = subprocess.run([sys.executable, "-m", "cli.main", "check", "--guard", "off", "--json", str(cx)],
                         cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert cx.exists(), run.stdout + run.stderr
    page = open_page(browser, stack)
    try:
        page.set_input_files("#trace-file", str(cx))
        page.wait_for_selector("#trace-view:not([hidden]) #trace-endpoints article")
        assert "step 0 of" in page.inner_text("#trace-pos")
        # Somewhere along the way a plan is served; at the end the name answers with no address.
        assert page.evaluate("window.dnsctlConsole.trace.frames.some(f => f.endpoints.every(e => e.dns.addresses.length > 0))")
        page.click("#trace-last")
        page.wait_for_selector(".trace-dns[data-addresses='0']")  # the counterexample's end: zero answers
        last = page.inner_text("#trace-pos")
        page.focus("#trace-step")
        page.keyboard.press("ArrowLeft")
        assert page.inner_text("#trace-pos") != last
        page.click("#trace-next")
        assert page.inner_text("#trace-pos") == last
        page.screenshot(path=str(screenshots() / "console-trace-viewer.png"), full_page=True)
        bad = httpx.post(stack.console + "/api/trace", json={"format": "something else"}, timeout=10)
        assert bad.status_code == 422
    finally:
        page.close()


@pytest.mark.timeout(600)  # the race itself takes a minute; a busy machine stretches it
def test_the_race_button_in_legacy_mode_breaks_an_endpoint_and_repair_heals_it(stack, browser):
    page = open_page(browser, stack, token=stack.token)
    try:
        try:
            assert race_from_the_page(page, "legacy"), page.inner_text("#race-verdict")
            broken = page.wait_for_selector("article.card[data-broken='true'] .answers [data-answers='0']", timeout=60_000)
            assert broken is not None
            page.wait_for_selector("#timeline-head .cause", timeout=60_000)  # the live timeline names the cause
        except Exception as exc:
            raise AssertionError(f"{exc}\n{what_the_console_shows(page, stack)}") from exc
        page.screenshot(path=str(screenshots() / "console-legacy-race-broken.png"), full_page=True)

        endpoint = page.get_attribute("article.card[data-broken='true']", "data-endpoint")
        page.select_option("#repair-endpoint", endpoint)
        page.check("#repair-break-lock")
        page.click("#repair")
        page.wait_for_selector("#confirm:not([hidden])")
        assert "tree" in page.inner_text("#confirm-body")
        page.click("#confirm-yes")
        page.wait_for_function("document.querySelector('#action-result p') && /repair .*: done/.test(document.querySelector('#action-result p').textContent)", timeout=60_000)
        page.wait_for_selector(f"article.card[data-endpoint='{endpoint}'][data-broken='false']", timeout=30_000)
        said = open_the_races_trace(page, stack)  # why it can happen, one click from the verdict
        assert said.startswith("Why it can happen"), said
        assert page.errors == []
    finally:
        page.close()
