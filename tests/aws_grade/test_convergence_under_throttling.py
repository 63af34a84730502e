"""Three enactor processes converge on every endpoint against an emulator that throttles Route 53
at 10 requests/s (burst 5), delays propagation by 1 s and refuses changes to a zone whose last
change is still PENDING; and every throttle the emulator sent shows up in dnsctl's metrics.

The emulator process is this module's own, so its count of Throttling responses covers exactly
the traffic here: the enactors' (one account: they share an access key) and this test process's
(zone set-up and the watcher, through dnsctl's own clients, under another key).
"""

from __future__ import annotations

import re
import time

import httpx
import pytest

from services.aws_clients import route53_client, s3_client
from tests.aws_grade.aws_like import THROTTLE_RATE
from tests.enactor.test_enactor_processes import Lab, Watcher

METRIC_LINE = re.compile(r'^(\w+)\{([^}]*)\} ([0-9.e+-]+)$')


def throttles(metrics_text: str, code: str) -> float:
    """Sum of dnsctl_aws_throttles_total for Route 53 and `code` in a /metrics page."""
    total = 0.0
    for line in metrics_text.splitlines():
        m = METRIC_LINE.match(line)
        if m and m.group(1) == "dnsctl_aws_throttles_total" and 'service="route-53"' in m.group(2) and f'code="{code}"' in m.group(2):
            total += float(m.group(3))
    return total


def local_throttles(code: str) -> float:
    from prometheus_client import REGISTRY, generate_latest

    return throttles(generate_latest(REGISTRY).decode(), code)


class _DnsctlClients:
    """The aws_like emulator as the Lab sees it, but reached through dnsctl's own clients (rate
    limit, adaptive retries, throttle metrics), so that this process's throttles are counted too."""

    def __init__(self, emulator):
        self.emulator = emulator

    def env(self) -> dict[str, str]:
        return self.emulator.env()

    def client(self, service: str):
        return route53_client() if service == "route53" else s3_client()


@pytest.fixture
def lab(aws_like_emulator, unique, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_like_emulator.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", f"watcher-{unique}")
    lab = Lab(_DnsctlClients(aws_like_emulator), unique, tmp_path)
    yield lab
    lab.stop()


@pytest.mark.slow
def test_three_enactors_converge_under_throttling_and_every_throttle_is_counted(lab, aws_like_emulator, unique):
    before = {code: local_throttles(code) for code in ("Throttling", "PriorRequestNotComplete")}
    with Watcher(lab.zones, lab.client, guard=True) as watcher:
        lab.start(
            # One account for the three: together they would send 15 requests/s at the default 5 each.
            AWS_ACCESS_KEY_ID=f"account-{unique}",
            DNSCTL_ENACTOR_LOCK_TTL_S="20",
            DNSCTL_ENACTOR_PROPAGATION_TIMEOUT_S="10",
            DNSCTL_ENACTOR_PROPAGATION_POLL_S="0.3",
        )
        for v in (1, 2, 3):
            lab.store.put(lab.plan(v))
            time.sleep(0.5)
        views = lab.wait_applied(3, timeout_s=180)
    assert watcher.violations == []
    for view in views.values():
        assert view.applied_value.version == 3 and view.active_tree.complete

    # Route 53 has converged; every enactor must come to see it too (its status is what it last
    # listed, so one still backing off from a throttled batch lags a little).
    deadline = time.monotonic() + 60
    while True:
        seen = {name: {ep: s["applied_version"] for ep, s in e.status()["endpoints"].items()} for name, e in lab.enactors.items()}
        if all(v == 3 for eps in seen.values() for v in eps.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert all(len(eps) == len(lab.zones) and set(eps.values()) == {3} for eps in seen.values()), seen
    pages = {name: httpx.get(e.url + "/metrics", timeout=5).text for name, e in lab.enactors.items()}

    # The scenario really was throttled, and each Throttling the emulator sent is in a metric:
    # the enactors' /metrics plus this process's own (its clients share the registry).
    sent = httpx.get(aws_like_emulator.url + "/_emulator/metrics", timeout=5).text
    (emulator_throttled,) = [float(v) for k, v in (ln.rsplit(" ", 1) for ln in sent.splitlines() if ln and not ln.startswith("#"))
                             if k == "dnsctl_emulator_throttled_total"]
    counted = sum(throttles(text, "Throttling") for text in pages.values()) + local_throttles("Throttling") - before["Throttling"]
    assert emulator_throttled > 0, f"no request was throttled at {THROTTLE_RATE}/s: the test proves nothing"
    print(f"throttled by the emulator: {emulator_throttled:.0f}, counted by dnsctl: {counted:.0f}")
    assert counted == emulator_throttled
    # PriorRequestNotComplete (a change to a zone whose previous change is PENDING) is a throttle
    # to botocore too; each one is counted and logged.
    for name in lab.enactors:
        logged = sum(1 for ev in lab.events(name) if ev["event"] == "aws_throttled")
        assert logged == throttles(pages[name], "Throttling") + throttles(pages[name], "PriorRequestNotComplete"), name
    # The enactors waited for their trees to propagate before flipping.
    waits = [ev for name in lab.enactors for ev in lab.events(name) if ev["event"] == "propagation_insync"]
    assert waits and all(ev["waited_s"] >= 0 for ev in waits)
