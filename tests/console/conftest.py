"""The console tests' browser: Debian's Chromium (/usr/bin/chromium) driven by Playwright, one per module."""

from __future__ import annotations

import pytest

from tests.console.stack import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
