"""The web console's figures: flip -> page latency, Route 53 calls per second, page weight.

Starts a `dnsctl up` stack (guarded, with its console) on free ports in a temp state dir, the
way tests/console does, and drives Debian's Chromium with Playwright:

- latency: publishes N plans one after another; for every `flipped` event an enactor logs for
  them, the time from the event's timestamp to the moment the page drew it (the page records
  Date.now() when it renders a flip; same host, same clock). Median, p90, max, count.
- Route 53 calls per second made by the console (its own counter on /metrics,
  dnsctl_console_route53_requests_total) over a window with 1 open page, then with P open pages
  (separate browser contexts), while plans keep flowing. The console reads Route 53 the same
  whatever the number of pages; this shows it.
- page weight: bytes of the page, its script and stylesheet (raw and gzip), and of the first
  state message.

    .venv/bin/python benchmarks/console_bench.py                  # 50 flips, 20 pages, 20 s windows
    .venv/bin/python benchmarks/console_bench.py --flips 5 --pages 3 --window-s 5
"""

from __future__ import annotations

import argparse
import gzip
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.console.stack import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, start_stack  # noqa: E402
from tests.stack.test_up import _stop_stack  # noqa: E402


def route53_requests(console: str) -> float:
    for line in httpx.get(console + "/metrics", timeout=10).text.splitlines():
        if line.startswith("dnsctl_console_route53_requests_total "):
            return float(line.split()[1])
    raise RuntimeError("the console's /metrics has no dnsctl_console_route53_requests_total")


def calls_per_second(stack, window_s: float) -> tuple[float, int]:
    start_n, start_t = route53_requests(stack.console), time.monotonic()
    next_plan = 0.0
    while time.monotonic() - start_t < window_s:
        if time.monotonic() >= next_plan:
            stack.publish("console bench: traffic")
            next_plan = time.monotonic() + 2.0
        time.sleep(0.1)
    n, t = route53_requests(stack.console), time.monotonic()
    clients = httpx.get(stack.console + "/healthz", timeout=10).json()["clients"]
    return (n - start_n) / (t - start_t), clients


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flips", type=int, default=50, help="plans to publish for the latency figure")
    ap.add_argument("--pages", type=int, default=20, help="open pages for the second Route 53 window")
    ap.add_argument("--window-s", type=float, default=20.0, help="length of each Route 53 window")
    args = ap.parse_args()
    # Stopped from outside (a timeout): unwind, so the finally below stops the stack.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    from playwright.sync_api import sync_playwright

    state_dir = Path(tempfile.mkdtemp(prefix="dnsctl-console-bench-")) / "state"
    print(f"starting a dnsctl up stack in {state_dir} ...", flush=True)
    stack = start_stack(state_dir, version_guard=True)
    try:
        weights = {}
        for path in ("/", "/static/console.js", "/static/console.css", "/api/state"):
            body = httpx.get(stack.console + path, timeout=10).content
            weights[path] = (len(body), len(gzip.compress(body)))
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(stack.console + "/")
            page.wait_for_selector("article.card")
            latencies: list[float] = []
            missing = 0
            for i in range(args.flips):
                version = stack.publish(f"console bench: flip {i + 1}")
                try:
                    # Every endpoint flips to the plan; wait for all three on the page.
                    page.wait_for_function(
                        "v => new Set(window.dnsctlConsole.flips.filter(f => f.plan_version === v).map(f => f.endpoint)).size >= 3",
                        arg=version, timeout=30_000)
                except Exception:  # noqa: BLE001 - counted, the run goes on
                    missing += 1
                flips = page.evaluate(
                    "v => window.dnsctlConsole.flips.filter(f => f.plan_version === v).map(f => f.shown_at - Date.parse(f.ts))", version)
                latencies += flips
            print(f"flip -> page latency: {len(latencies)} flipped events so far"
                  + (f", median {statistics.median(latencies):.0f} ms, p90 {pct(latencies, 0.9):.0f} ms" if latencies else ""), flush=True)
            one_rate, one_clients = calls_per_second(stack, args.window_s)
            print(f"Route 53: {one_rate:.2f}/s with {one_clients} page(s)", flush=True)
            contexts = [browser.new_context(viewport=VIEWPORT) for _ in range(args.pages - 1)]
            for ctx in contexts:
                ctx.new_page().goto(stack.console + "/")
            time.sleep(2)
            many_rate, many_clients = calls_per_second(stack, args.window_s)
            endpoints = len(stack.state().get("endpoints") or [])
            browser.close()
    finally:
        _stop_stack(stack.proc, stack.state_dir)

    print(f"\nflip -> page latency over {len(latencies)} flipped events of {args.flips} plans "
          f"({missing} plans not seen on all endpoints in 30 s):")
    if latencies:
        print(f"  median {statistics.median(latencies):.0f} ms, p90 {pct(latencies, 0.9):.0f} ms, max {max(latencies):.0f} ms")
    print(f"console Route 53 requests per second ({endpoints} endpoints, {args.window_s:.0f} s windows, plans every 2 s):")
    print(f"  {one_clients:>2} page(s) open: {one_rate:.2f}/s ({one_rate / max(1, endpoints):.2f} per endpoint)")
    print(f"  {many_clients:>2} page(s) open: {many_rate:.2f}/s ({many_rate / max(1, endpoints):.2f} per endpoint)")
    print("page weight (bytes raw / gzip):")
    for path, (raw, gz) in weights.items():
        print(f"  {path:<22} {raw:>8} / {gz:>7}")
    total_raw = sum(r for k, (r, _) in weights.items() if k != "/api/state")
    total_gz = sum(g for k, (_, g) in weights.items() if k != "/api/state")
    print(f"  {'page total (no state)':<22} {total_raw:>8} / {total_gz:>7}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
