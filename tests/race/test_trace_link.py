"""The race verdict's link to the console's checker trace viewer, end to end: a real legacy race on
a private stack kept running (`--keep-stack`, so it has a console), its "next:" line, and Debian's
Chromium (Playwright) opening that URL and stepping through the checker's counterexample."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from lab.race.trace import LEGACY_TRACE, CheckerRun
from tests.console.stack import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, screenshots
from tests.processes import ROOT
from tests.race.lab import TOKEN

URL = re.compile(r"step by step \(the checker's shortest October race\): (http://127\.0\.0\.1:\d+/#trace=" + LEGACY_TRACE + ")")


def _lines(proc: subprocess.Popen) -> queue.Queue:
    out: queue.Queue = queue.Queue()

    def read() -> None:
        for line in proc.stdout:
            out.put(line)
        out.put(None)

    threading.Thread(target=read, daemon=True).start()
    return out


@pytest.mark.timeout(900)  # a race, the checker and a browser on a busy machine
def test_the_legacy_verdict_links_to_the_counterexample_and_the_page_steps_through_it(tmp_path: Path):
    from playwright.sync_api import sync_playwright

    env = {**os.environ, "DNSCTL_API_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
    race = subprocess.Popen([sys.executable, "-m", "cli.main", "race", "--guard", "off", "--keep-stack", "--state-dir", str(tmp_path / "stack")],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        lines, seen, url = _lines(race), [], None
        deadline = time.monotonic() + 600
        while url is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=5)
            except queue.Empty:
                continue
            if line is None:
                break
            seen.append(line)
            if m := URL.search(line):
                url = m.group(1)
        text = "".join(seen)
        assert url is not None, text[-4000:]
        assert not url.startswith("http://127.0.0.1:8088/")  # the kept stack's console is on a free port, never the demo's
        assert "VERDICT (legacy)" in text and "dnsctl repair --all" in text
        assert (tmp_path / "stack" / "traces" / f"{LEGACY_TRACE}.json").exists()
        base = url.split("/#", 1)[0]
        assert httpx.get(base + "/api/traces/no-such-trace", timeout=10).status_code == 404
        assert httpx.get(base + "/api/traces/Not_A_Name", timeout=10).status_code == 400
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport=VIEWPORT)
                page.goto(url)  # one click: the page opens the trace itself
                page.wait_for_selector("#trace-view:not([hidden]) #trace-endpoints article", timeout=60_000)
                assert "legacy counterexample" in page.inner_text("#trace-title")
                assert page.inner_text("#trace-pos").startswith("step 0 of")
                page.click("#trace-next")
                page.click("#trace-next")
                assert page.inner_text("#trace-pos").startswith("step 2 of")
                page.click("#trace-prev")
                assert page.inner_text("#trace-pos").startswith("step 1 of")
                page.click("#trace-last")
                page.wait_for_selector(".trace-dns[data-addresses='0']")  # the counterexample's end: zero answers
                page.screenshot(path=str(screenshots() / "race-linked-trace.png"), full_page=True)
            finally:
                browser.close()
    finally:
        if race.poll() is None:
            os.killpg(race.pid, signal.SIGINT)  # the kept stack stops on Ctrl-C
            try:
                race.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(race.pid, signal.SIGKILL)
                race.wait()
    assert race.returncode == 0  # legacy broke the October way: the verdict passed


def test_a_guarded_race_asks_the_checker_for_both_cores(tmp_path: Path):
    run = CheckerRun(tmp_path, guarded=True)
    try:
        result = run.result()
    finally:
        run.stop()
    assert result.trace == tmp_path / "traces" / f"{LEGACY_TRACE}.json" and result.trace.exists()
    assert any(line.startswith("Counterexample (safety") for line in result.legacy), result.legacy
    assert result.guard_held is True and any("all of them" in line for line in result.guarded), result.guarded
    assert result.commands[-1].startswith("dnsctl check --guard on --enactors 2")
    # What `race --json` and the console's race button report of it (lab/race/trace.py's as_json).
    said = result.as_json("/#trace=" + LEGACY_TRACE)
    assert said["trace"] == str(result.trace) and said["trace_url"] == "/#trace=" + LEGACY_TRACE and said["guard_held"] is True
    assert said["commands"] == list(result.commands) and said["legacy"] == list(result.legacy)
