"""/docs and /redoc in a real browser with the network cut off: Swagger UI and ReDoc render from
the assets the service itself serves (fastapi-offline), nothing from a CDN.

Playwright for Python drives Debian's chromium (/usr/bin/chromium; `.ci/run` installs it); every
request to any host but the service is aborted, so the page only works if it is self-contained.
Set DNSCTL_SCREENSHOT_DIR to keep the screenshots.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from tests.processes import ManagedProcess, free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.sync_api")
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


@needs_chromium
def test_docs_render_offline_in_chromium(emulator, tmp_path):
    port = free_port()
    env = {**emulator.env(), "DNSCTL_BUCKET": f"docs-{uuid.uuid4().hex[:10]}", "DNSCTL_API_TOKEN": "docs-token",
           "DNSCTL_STATE_DIR": str(tmp_path / "state")}
    planner = ManagedProcess("planner-docs", ["planner", "--port", str(port), "--plan-interval", "3600"], env, tmp_path)
    base = f"http://127.0.0.1:{port}"
    outside: list[str] = []
    try:
        planner.wait_http(base + "/healthz", timeout_s=40)
        with playwright_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})

                def only_local(route):
                    if route.request.url.startswith(base):
                        route.continue_()
                    else:
                        outside.append(route.request.url)
                        route.abort()

                page.route("**/*", only_local)
                page.goto(base + "/", wait_until="networkidle")  # `/` redirects to the docs
                assert page.url == base + "/docs"
                page.wait_for_selector(".opblock", timeout=90_000)
                operations = page.locator(".opblock").count()
                assert operations >= 10, f"Swagger UI shows {operations} operations"
                assert "dnsctl planner" in page.locator(".title").first.inner_text()
                shots = Path(os.environ.get("DNSCTL_SCREENSHOT_DIR", tmp_path))
                shots.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(shots / "docs-offline.png"), full_page=False)
                page.goto(base + "/redoc", wait_until="networkidle")
                page.wait_for_selector("h1", timeout=90_000)
                assert "dnsctl planner" in page.locator("h1").first.inner_text()
                page.screenshot(path=str(shots / "redoc-offline.png"), full_page=False)
            finally:
                browser.close()
    finally:
        planner.stop()
    assert outside == [], f"the docs tried to load {outside}"
