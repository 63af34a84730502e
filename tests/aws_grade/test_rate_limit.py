"""The per-account Route 53 rate limit: the bucket's arithmetic, its settings, and the real thing
(a child process with several clients against the emulator, with and without throttling)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.rate_limit import (
    DEFAULT_RPS,
    RateLimitConfigInvalid,
    RateLimitSettings,
    Route53RateLimiter,
    TokenBucket,
    account_key,
)
from tests.aws_grade.aws_like import (
    THROTTLE_BURST,
    THROTTLE_RATE,
    log_events,
    metric,
    metric_sum,
    run_route53_load,
)

# -- the bucket -------------------------------------------------------------------------------------


def test_burst_goes_at_once_then_one_interval_apart():
    bucket = TokenBucket(rate=5, burst=3, clock=lambda: 0.0)
    waits = [bucket.reserve(now=0.0) for _ in range(6)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3:] == pytest.approx([0.2, 0.4, 0.6])


def test_idle_bucket_refills_to_burst_and_no_further():
    bucket = TokenBucket(rate=2, burst=2, clock=lambda: 0.0)
    for _ in range(2):
        bucket.reserve(now=0.0)
    # 100 s idle refill only up to the burst: the third request right after must wait.
    assert [bucket.reserve(now=100.0) for _ in range(3)] == pytest.approx([0.0, 0.0, 0.5])


arrivals = st.lists(st.floats(min_value=0, max_value=20, allow_nan=False), min_size=1, max_size=60).map(sorted)


@given(
    arrivals=arrivals,
    rate=st.floats(min_value=0.5, max_value=50),
    burst=st.integers(min_value=1, max_value=10),
)
@settings(max_examples=200, deadline=None)
def test_sends_never_exceed_burst_plus_rate_in_any_window(arrivals, rate, burst):
    bucket = TokenBucket(rate=rate, burst=burst, clock=lambda: 0.0)
    sends = [t + bucket.reserve(now=t) for t in arrivals]
    # FIFO: a later arrival never goes before an earlier one.
    assert all(a <= b + 1e-9 for a, b in zip(sends, sends[1:], strict=False))
    # In every window [sends[i], sends[j]] at most burst + rate * width requests go out.
    for i in range(len(sends)):
        for j in range(i, len(sends)):
            assert j - i + 1 <= burst + rate * (sends[j] - sends[i]) + 1e-6


@given(arrivals=arrivals, rate=st.floats(min_value=0.5, max_value=50), burst=st.integers(min_value=1, max_value=10))
@settings(max_examples=200, deadline=None)
def test_a_request_after_a_long_enough_idle_gap_never_waits(arrivals, rate, burst):
    bucket = TokenBucket(rate=rate, burst=burst, clock=lambda: 0.0)
    last_send = -math.inf
    for t in arrivals:
        wait = bucket.reserve(now=t)
        if t - last_send >= 1.0 / rate:
            # A whole token has accrued since the previous send went out.
            assert wait == 0.0
        last_send = t + wait


# -- settings and identity --------------------------------------------------------------------------


def test_settings_default_to_route53s_account_limit():
    assert RateLimitSettings.from_env({}) == RateLimitSettings(rps=DEFAULT_RPS, burst=DEFAULT_RPS)
    assert RateLimitSettings.from_env({"DNSCTL_ROUTE53_RPS": "0.5"}) == RateLimitSettings(rps=0.5, burst=1.0)
    assert RateLimitSettings.from_env({"DNSCTL_ROUTE53_RPS": "20", "DNSCTL_ROUTE53_BURST": "2"}) == RateLimitSettings(rps=20, burst=2)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DNSCTL_ROUTE53_RPS": "fast"}, "DNSCTL_ROUTE53_RPS"),
        ({"DNSCTL_ROUTE53_RPS": "0"}, "DNSCTL_ROUTE53_RPS"),
        ({"DNSCTL_ROUTE53_RPS": "-3"}, "DNSCTL_ROUTE53_RPS"),
        ({"DNSCTL_ROUTE53_RPS": "inf"}, "DNSCTL_ROUTE53_RPS"),
        ({"DNSCTL_ROUTE53_BURST": "0.5"}, "DNSCTL_ROUTE53_BURST"),
    ],
)
def test_bad_settings_are_refused_by_name(env, named):
    with pytest.raises(RateLimitConfigInvalid, match=named):
        RateLimitSettings.from_env(env)


def test_account_key_prefers_the_account_id_and_never_shows_the_key():
    assert account_key(SimpleNamespace(account_id="123456789012", access_key="AKIAEXAMPLE")) == "123456789012"
    label = account_key(SimpleNamespace(account_id=None, access_key="AKIAEXAMPLE"))
    assert label.startswith("key-") and "AKIAEXAMPLE" not in label
    assert label == account_key(SimpleNamespace(access_key="AKIAEXAMPLE"))
    assert label != account_key(SimpleNamespace(access_key="AKIAOTHER"))
    assert account_key(None) == "anonymous"


def test_limiter_sleeps_exactly_the_reserved_wait():
    slept: list[float] = []
    limiter = Route53RateLimiter(RateLimitSettings(rps=4, burst=1), "acct", clock=lambda: 10.0, sleep=slept.append)
    waits = [limiter.acquire("GetChange") for _ in range(3)]
    assert waits == pytest.approx([0.0, 0.25, 0.5])
    assert slept == pytest.approx([0.25, 0.5])


# -- the real thing ---------------------------------------------------------------------------------


def test_every_call_of_every_client_shares_one_bucket(emulator, unique):
    """Two clients in two threads, 21 calls at 10/s with a bucket of one: the calls are spread over
    at least 2 s in total, which only a bucket shared by both clients produces (one bucket per
    client would let each send its ~10 calls in about 1 s)."""
    report = run_route53_load(emulator, f"rl-{unique}", calls=21, clients=2, DNSCTL_ROUTE53_RPS="10", DNSCTL_ROUTE53_BURST="1")
    assert report["errors"] == [] and report["calls"] == 21
    assert report["retry_attempts"] == 0  # the plain emulator never throttles
    assert metric(report, "dnsctl_route53_requests_total", operation="ListHostedZones") == 21
    assert metric(report, "dnsctl_route53_rate_limit_waits_total", operation="ListHostedZones") >= 19
    assert report["elapsed_s"] >= 2.0 - 0.05
    assert metric(report, "dnsctl_route53_rate_limit_wait_seconds_total") > 0
    paced = log_events(report, "route53_rate_limit_pacing")
    assert paced and paced[0]["rps"] == 10.0
    assert "rl-" + unique not in report["log"]  # the access key id is never logged


def test_default_rate_stays_under_the_accounts_limit(aws_like_emulator, unique):
    """At Route 53's own 5 requests/s the throttling emulator (10/s) never refuses a call."""
    report = run_route53_load(aws_like_emulator, f"ok-{unique}", calls=30, clients=3)
    assert report["errors"] == [] and report["calls"] == 30
    assert metric_sum(report, "dnsctl_aws_throttles_total") == 0
    assert report["retry_attempts"] == 0
    assert metric_sum(report, "dnsctl_route53_rate_limit_waits_total") > 0


def test_without_the_limit_the_same_load_is_throttled_and_retried(aws_like_emulator, unique):
    """The control experiment: with the limit lifted, the emulator throttles, botocore retries every
    throttle, every call still succeeds and every throttle is counted."""
    calls = 3 * (THROTTLE_BURST + THROTTLE_RATE)
    report = run_route53_load(aws_like_emulator, f"hot-{unique}", calls=calls, clients=3, DNSCTL_ROUTE53_RPS="1000", DNSCTL_ROUTE53_BURST="1000")
    assert report["errors"] == [] and report["calls"] == calls
    throttles = metric(report, "dnsctl_aws_throttles_total", service="route-53", operation="ListHostedZones", code="Throttling")
    assert throttles > 0
    # Every retry was caused by a throttle, and every throttle is in the metric.
    assert report["retry_attempts"] == throttles
    assert metric(report, "dnsctl_route53_requests_total", operation="ListHostedZones") == calls + throttles
    assert len(log_events(report, "aws_throttled")) == throttles
