"""A live `dnsctl up` stack (with its web console) on free ports in its own state dir, and a
headless Debian Chromium driven by Playwright, for the console's browser tests.

The stack runs with the race lab's settings (lab/race/stack.py: short backoff, fast polling,
keep_plans 2) and no scheduled plans, so the tests publish every plan themselves and the race
button reaches the October window as `dnsctl race` does. Screenshots go to DNSCTL_SCREENSHOTS
(default: a temp dir), for the note.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from lab.race.stack import RACE_ENACTOR_ENV, RACE_ROUTE53_ENV
from tests.processes import ROOT, free_port, free_port_udp_tcp
from tests.stack.test_up import _stop_stack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 720}


@dataclass
class Stack:
    proc: subprocess.Popen
    state_dir: Path
    ports: dict[str, int]

    @property
    def console(self) -> str:
        return f"http://127.0.0.1:{self.ports['console']}"

    @property
    def planner(self) -> str:
        return f"http://127.0.0.1:{self.ports['planner']}"

    @property
    def token(self) -> str:
        return (self.state_dir / "token").read_text().strip()

    def publish(self, reason: str = "console test") -> int:
        r = httpx.post(self.planner + "/v1/plans", json={"reason": reason}, headers={"Authorization": f"Bearer {self.token}"}, timeout=30)
        r.raise_for_status()
        return int(r.json()["version"])

    def state(self) -> dict:
        return httpx.get(self.console + "/api/state", timeout=10).json() or {}

    def log(self, service: str) -> Path:
        """The service's log of this run: <state dir>/logs/<run id>/<service>.log (stack.json names it)."""
        described = json.loads((self.state_dir / "stack.json").read_text())
        return Path(described["log_dir"]) / f"{service}.log"


def start_stack(state_dir: Path, *, version_guard: bool, cells: int = 0, accounts: int = 0) -> Stack:
    """`dnsctl up` with its console; with `cells`/`accounts`, the cells and the cell map beside the
    regional system (their ports free ones: --cell-port-base 0), ready once the console shows
    every endpoint (3 regional, one per cell, the accounts' zone) and, with accounts, every account."""
    ports = {n: free_port() for n in ("emulator", "planner", "enactor-a", "enactor-b", "enactor-c", "prober", "console")}
    ports["dns"] = free_port_udp_tcp()
    args = [
        sys.executable, "-m", "cli.main", "up",
        "--emulator-port", str(ports["emulator"]), "--planner-port", str(ports["planner"]),
        "--enactor-ports", ",".join(str(ports[f"enactor-{x}"]) for x in "abc"),
        "--dns-port", str(ports["dns"]), "--prober-port", str(ports["prober"]), "--console-port", str(ports["console"]),
        "--plan-interval", "3600", "--state-dir", str(state_dir), "--no-live",
        "--version-guard" if version_guard else "--no-version-guard",
    ]  # fmt: skip
    if cells or accounts:
        args += ["--cells", str(cells), "--accounts", str(accounts), "--cell-port-base", "0"]
    endpoints = 3 + cells + (1 if accounts else 0)
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "DNSCTL_API_TOKEN", "DNSCTL_BUCKET")}
    env.update(RACE_ENACTOR_ENV)
    env.update(RACE_ROUTE53_ENV)
    log = open(state_dir.parent / "up.log", "wb")  # noqa: SIM115 - kept open for the stack's life
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    stack = Stack(proc, state_dir, ports)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dnsctl up exited with {proc.returncode}:\n{(state_dir.parent / 'up.log').read_text()[-3000:]}")
        try:
            if httpx.get(stack.console + "/healthz", timeout=2).status_code == 200:
                state = stack.state()
                if len(state.get("endpoints") or []) == endpoints and (not accounts or _accounts_seen(state) == accounts):
                    return stack
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    _stop_stack(proc, state_dir)
    raise TimeoutError(f"the console did not show {endpoints} endpoints (and {accounts} accounts) in time:\n{(state_dir.parent / 'up.log').read_text()[-3000:]}")


def _accounts_seen(state: dict) -> int:
    """Accounts the console's view has (every cell's and the legacy ones), answering or not."""
    groups = [c.get("accounts") for c in state.get("cells") or []] + [state.get("legacy_accounts")]
    return sum(g["answering"] + g["lost"] for g in groups if g)


def stack_fixture(version_guard: bool):
    @pytest.fixture(scope="module")
    def stack(tmp_path_factory) -> Iterator[Stack]:
        base = tmp_path_factory.mktemp("console-stack")
        s = start_stack(base / "state", version_guard=version_guard)
        try:
            yield s
        finally:
            _stop_stack(s.proc, s.state_dir)

    return stack


@functools.cache
def screenshots() -> Path:
    """The session's one folder for the console's screenshots: DNSCTL_SCREENSHOTS, or a temp dir
    (outside the repo); pytest's summary prints it (tests/console/conftest.py)."""
    out = Path(os.environ.get("DNSCTL_SCREENSHOTS") or tempfile.mkdtemp(prefix="dnsctl-console-screens-"))
    out.mkdir(parents=True, exist_ok=True)
    return out


def open_page(browser, stack: Stack, token: str | None = None):
    page = browser.new_page(viewport=VIEWPORT)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(stack.console + "/")
    if token:
        page.fill("#token", token)
        page.click("#token-form button[type=submit]")
        page.wait_for_selector("#token-state.ok")
    page.errors = errors  # type: ignore[attr-defined]
    return page


def race_from_the_page(page, mode: str) -> bool:
    """Click the race button on a page that holds the token; the verdict says whether it broke."""
    # The mode comes from the enactors' status in the console's view (not from the first card):
    # wait for a view that has it.
    page.wait_for_function("m => document.querySelector('#race-mode').textContent === m", arg=mode, timeout=60_000)
    page.click("#race-run")
    page.wait_for_function("() => window.dnsctlConsole.race && window.dnsctlConsole.race.running", timeout=60_000)
    # The race's every wait is bounded (lab/race/scenario.py); it ends with a verdict or an error.
    page.wait_for_function("() => { const r = window.dnsctlConsole.race; return r && !r.running && (r.verdict || r.error); }",
                           timeout=480_000)
    race = page.evaluate("() => window.dnsctlConsole.race")
    assert race["verdict"] and not race["error"], f"the race did not run: {race['error']}"
    page.wait_for_selector("#race-verdict[data-broken]")
    return page.get_attribute("#race-verdict", "data-broken") == "true"


def open_the_races_trace(page, stack: Stack) -> str:
    """Follow the race verdict's link to the checker's shortest October race (the console ran the
    checker after the race, as `dnsctl race` does): the file beside the stack, opened in the trace
    viewer at its end, where the name answers nothing. Returns what the verdict says of the checker."""
    link = page.wait_for_selector("#race-verdict .checker[data-checker='trace'] a.trace-link", timeout=60_000)
    assert link.get_attribute("href") == "/#trace=october-legacy"
    assert (stack.state_dir / "traces" / "october-legacy.json").is_file()
    said = page.inner_text("#race-verdict .checker")
    link.click()
    page.wait_for_selector("#trace-view:not([hidden]) #trace-endpoints article", timeout=60_000)
    assert "legacy counterexample" in page.inner_text("#trace-title")
    page.click("#trace-last")
    page.wait_for_selector(".trace-dns[data-addresses='0']")
    return said


def wait_until(what: str, done, timeout_s: float, interval_s: float = 0.25):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = done()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last: {last!r})")


def flipped_events(path: Path, version: int) -> list[dict]:
    out = []
    if not path.exists():
        return out
    for line in path.read_text(errors="replace").splitlines():
        if '"flipped"' in line:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("event") == "flipped" and e.get("plan_version") == version:
                out.append(e)
    return out



def what_the_console_shows(page, stack: Stack) -> str:
    """The race's verdict and every endpoint as the console has them, for a failed wait's message."""
    lines = []
    try:
        race = httpx.get(stack.console + "/api/race", timeout=10).json()
        verdict = race.get("verdict") or {}
        lines.append(f"race: running={race.get('running')} error={race.get('error')!r} headline={verdict.get('headline')!r}")
        lines += [f"  {'ok' if c['ok'] else 'NOT'} {c['label']}: {c['detail']}" for c in verdict.get("checks", [])]
        lines += [f"  {m['t']:.1f} s {m['who']}: {m['text']}" for m in race.get("moments", [])[-12:]]
        for ep in stack.state().get("endpoints") or []:
            lines.append(f"state: {ep['endpoint']} serves {ep.get('active_version')} dangling={ep.get('dangling')} "
                         f"addresses={ep.get('addresses')}")
        for card in page.query_selector_all("article.card[data-endpoint]"):
            answers = [a.get_attribute("data-answers") for a in card.query_selector_all(".answers [data-answers]")]
            lines.append(f"page: {card.get_attribute('data-endpoint')} broken={card.get_attribute('data-broken')} answers={answers}")
    except Exception as exc:  # noqa: BLE001 - a diagnosis must not hide the failure it explains
        lines.append(f"(could not read everything: {type(exc).__name__}: {exc})")
    return "\n".join(lines)
