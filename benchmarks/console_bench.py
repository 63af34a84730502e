"""The web console's figures: flip -> page latency, Route 53 calls per second, page weight.

Starts a `dnsctl up` stack (guarded, with its console) on free ports in a temp state dir, the
way tests/console does, and drives Debian's Chromium with Playwright:

- latency: publishes N plans one after another; for every `flipped` event an enactor logs for
  them, the time from the event's timestamp to the moment the page drew it (the page records
  Date.now() when it renders a flip; same host, same clock). Median, p90, max, count. Beside it,
  the same for the card's Route 53 view: from the `flipped` event to the page drawing the
  endpoint as serving that plan (what the console read from Route 53, within its call budget).
- Route 53 calls per second made by the console, counted by the emulator itself
  (dnsctl_emulator_route53_requests_total{caller="dnsctl-console"}, every operation; the console
  names itself in its User-Agent) over a window with 1 open page, then with P open pages
  (separate browser contexts), while plans keep flowing; the console's own counter beside it.
  The console reads Route 53 the same whatever the number of pages; this shows it.
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
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.console.snapshot import APP_ID  # noqa: E402
from services.emulator.server import METRICS_PATH  # noqa: E402
from tests.console.stack import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, start_stack  # noqa: E402
from tests.stack.test_up import _stop_stack  # noqa: E402


def console_counter(console: str) -> float:
    """The console's own count of its Route 53 requests (for comparison only)."""
    for line in httpx.get(console + "/metrics", timeout=10).text.splitlines():
        if line.startswith("dnsctl_console_route53_requests_total "):
            return float(line.split()[1])
    raise RuntimeError("the console's /metrics has no dnsctl_console_route53_requests_total")


def emulator_counts(stack) -> Counter:
    """The emulator's count of the console's Route 53 requests, by operation."""
    out: Counter = Counter()
    text = httpx.get(f"http://127.0.0.1:{stack.ports['emulator']}{METRICS_PATH}", timeout=10).text
    for line in text.splitlines():
        if line.startswith("dnsctl_emulator_route53_requests_total{") and f'caller="{APP_ID}"' in line:
            out[line.split('operation="', 1)[1].split('"', 1)[0]] += float(line.rsplit(" ", 1)[1])
    return out


@dataclass
class Window:
    seconds: float
    emulator: Counter  # the console's requests by operation, as the emulator counted them
    console: float  # the console's own count over the same window
    clients: int

    @property
    def rate(self) -> float:
        return sum(self.emulator.values()) / self.seconds


def calls_per_second(stack, window_s: float) -> Window:
    start_e, start_c, start_t = emulator_counts(stack), console_counter(stack.console), time.monotonic()
    next_plan = 0.0
    while time.monotonic() - start_t < window_s:
        if time.monotonic() >= next_plan:
            stack.publish("console bench: traffic")
            next_plan = time.monotonic() + 2.0
        time.sleep(0.1)
    end_e, end_c, end_t = emulator_counts(stack), console_counter(stack.console), time.monotonic()
    clients = httpx.get(stack.console + "/healthz", timeout=10).json()["clients"]
    end_e.subtract(start_e)
    return Window(end_t - start_t, +end_e, end_c - start_c, clients)


def every_endpoint_shows(page, kind: str, version: int) -> bool:
    """Within 30 s, the page's record of `kind` ("flips": log events drawn, "served": the cards'
    Route 53 view) has `version` for all three endpoints."""
    try:
        page.wait_for_function(
            f"v => new Set(window.dnsctlConsole.{kind}.filter(f => f.plan_version === v).map(f => f.endpoint)).size >= 3",
            arg=version, timeout=30_000)
    except Exception:  # noqa: BLE001 - counted by the caller, the run goes on
        return False
    return True


def epoch_ms(ts: str) -> float:
    """An event's ISO 8601 UTC timestamp as the page's Date.now() counts (ms since the epoch)."""
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000


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
            served: list[float] = []  # flipped event -> the card showing the plan from Route 53
            parts: list[tuple[float, float, float]] = []  # (read after the flip, read -> published, stream + draw)
            missing = missing_served = 0
            for i in range(args.flips):
                version = stack.publish(f"console bench: flip {i + 1}")
                # Every endpoint flips to the plan: wait for all three on the page, by the log
                # events and by the Route 53 view.
                missing += not every_endpoint_shows(page, "flips", version)
                missing_served += not every_endpoint_shows(page, "served", version)
                flips = page.evaluate("v => window.dnsctlConsole.flips.filter(f => f.plan_version === v)", version)
                latencies += [f["shown_at"] - epoch_ms(f["ts"]) for f in flips]
                views = {s["endpoint"]: s for s in
                         page.evaluate("v => window.dnsctlConsole.served.filter(f => f.plan_version === v)", version)}
                first_flip: dict[str, float] = {}
                for f in flips:  # the enactor that flipped the endpoint: the earliest event for it
                    at = epoch_ms(f["ts"])
                    first_flip[f["endpoint"]] = min(at, first_flip.get(f["endpoint"], at))
                for ep, at in first_flip.items():
                    if ep in views:
                        v = views[ep]
                        served.append(v["shown_at"] - at)
                        # where it went: the Route 53 read done, the view published, drawn
                        parts.append((v["read_at"] - at, v["published_at"] - v["read_at"], v["shown_at"] - v["published_at"]))
            print(f"flip -> page latency: {len(latencies)} flipped events, {len(served)} Route 53 views"
                  + (f", median {statistics.median(latencies):.0f} ms, p90 {pct(latencies, 0.9):.0f} ms" if latencies else "")
                  + (f"; Route 53 view median {statistics.median(served):.0f} ms, p90 {pct(served, 0.9):.0f} ms" if served else ""),
                  flush=True)
            one = calls_per_second(stack, args.window_s)
            print(f"Route 53: {one.rate:.2f}/s with {one.clients} page(s)", flush=True)
            contexts = [browser.new_context(viewport=VIEWPORT) for _ in range(args.pages - 1)]
            for ctx in contexts:
                # A loaded machine opens twenty pages slowly: wait for each page, not for a guess.
                ctx.new_page().goto(stack.console + "/", wait_until="domcontentloaded", timeout=180_000)
            time.sleep(2)
            many = calls_per_second(stack, args.window_s)
            endpoints = len(stack.state().get("endpoints") or [])
            browser.close()
    finally:
        _stop_stack(stack.proc, stack.state_dir)

    print(f"\nflip -> page latency over {len(latencies)} flipped events of {args.flips} plans "
          f"({missing} plans not seen on all endpoints in 30 s):")
    if latencies:
        print(f"  log event drawn:  median {statistics.median(latencies):.0f} ms, p90 {pct(latencies, 0.9):.0f} ms, "
              f"max {max(latencies):.0f} ms")
    print(f"flip -> the card serving the plan (Route 53 view) over {len(served)} endpoint flips "
          f"({missing_served} plans not seen on all endpoints in 30 s):")
    if served:
        print(f"  Route 53 view drawn: median {statistics.median(served):.0f} ms, p90 {pct(served, 0.9):.0f} ms, "
              f"max {max(served):.0f} ms")
        for i, what in enumerate(("Route 53 read done after the flip", "the read -> the view published",
                                  "stream and draw")):
            xs = [p[i] for p in parts]
            print(f"    {what}: median {statistics.median(xs):.0f} ms, p90 {pct(xs, 0.9):.0f} ms")
    print(f"console Route 53 requests per second, counted by the emulator ({endpoints} endpoints, "
          f"{args.window_s:.0f} s windows, plans every 2 s):")
    for w in (one, many):
        ops = ", ".join(f"{op} {n:.0f}" for op, n in sorted(w.emulator.items()))
        print(f"  {w.clients:>2} page(s) open: {w.rate:.2f}/s ({w.rate / max(1, endpoints):.2f} per endpoint; {ops}; "
              f"the console's own counter: {w.console / w.seconds:.2f}/s)")
    print("page weight (bytes raw / gzip):")
    for path, (raw, gz) in weights.items():
        print(f"  {path:<22} {raw:>8} / {gz:>7}")
    total_raw = sum(r for k, (r, _) in weights.items() if k != "/api/state")
    total_gz = sum(g for k, (_, g) in weights.items() if k != "/api/state")
    print(f"  {'page total (no state)':<22} {total_raw:>8} / {total_gz:>7}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
