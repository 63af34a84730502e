"""The console tests' browser: Debian's Chromium (/usr/bin/chromium) driven by Playwright, one per
module; and the folder their screenshots went to, printed in pytest's summary (for the note)."""

from __future__ import annotations

import pytest

from tests.console.stack import CHROMIUM, CHROMIUM_ARGS, screenshots


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def pytest_terminal_summary(terminalreporter):
    if screenshots.cache_info().currsize:  # some test of this session took a screenshot
        folder = screenshots()
        shots = ", ".join(sorted(p.name for p in folder.glob("*.png")))
        terminalreporter.write_line(f"console screenshots: {folder} ({shots or 'none written'})")
