"""The client-side rate limit on Route 53: one token bucket per AWS account, shared by every
Route 53 call a process makes.

Route 53's control API allows five requests per second per account. Botocore's adaptive retry
mode learns a send rate per *client* only after the service has refused requests; a process with
several clients (the enactor's lock, tree and clean-up paths, the CLI's repair tools) would still
go over the account's limit together. This bucket paces them before they send, so a process stays
under the limit by itself, and botocore's retries are left to absorb what other processes of the
same account cause.

The bucket is installed on a client through botocore's event system (`before-send.route-53`), so
every HTTP request the client sends takes a token: first attempts and retries alike, whichever
code path made the call. Settings come from the environment:

    DNSCTL_ROUTE53_RPS     sustained requests per second (default 5, Route 53's account limit)
    DNSCTL_ROUTE53_BURST   bucket size, requests that may go at once (default: one second's worth)

A wait is counted in Prometheus metrics every time; the log gets one event when the process
starts being paced and one when it stops, with how many requests waited and for how long.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter

from services.logs import get_logger

RPS_ENV = "DNSCTL_ROUTE53_RPS"
BURST_ENV = "DNSCTL_ROUTE53_BURST"
DEFAULT_RPS = 5.0

ROUTE53_REQUESTS = Counter(
    "dnsctl_route53_requests",
    "HTTP requests sent to Route 53 (every attempt, retries included), by operation.",
    ["operation"],
)
RATE_LIMIT_WAITS = Counter(
    "dnsctl_route53_rate_limit_waits",
    "Route 53 requests that waited for the process's client-side rate limit, by operation.",
    ["operation"],
)
RATE_LIMIT_WAIT_SECONDS = Counter(
    "dnsctl_route53_rate_limit_wait_seconds",
    "Total seconds Route 53 requests spent waiting for the client-side rate limit.",
)


class RateLimitConfigInvalid(ValueError):
    """DNSCTL_ROUTE53_RPS or DNSCTL_ROUTE53_BURST is not a usable number."""


@dataclass(frozen=True)
class RateLimitSettings:
    rps: float = DEFAULT_RPS
    burst: float = DEFAULT_RPS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RateLimitSettings:
        env = os.environ if environ is None else environ
        rps = _positive(env, RPS_ENV, DEFAULT_RPS)
        # One second's worth by default, but never less than one whole request.
        burst = _positive(env, BURST_ENV, max(1.0, rps))
        if burst < 1:
            raise RateLimitConfigInvalid(f"{BURST_ENV}={burst:g}: the bucket must hold at least one request")
        return cls(rps=rps, burst=burst)


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise RateLimitConfigInvalid(f"{name}={raw!r} is not a number; set requests per second, e.g. {name}=5") from None
    if not math.isfinite(value) or value <= 0:
        raise RateLimitConfigInvalid(f"{name}={raw!r} must be a positive, finite number")
    return value


class TokenBucket:
    """A thread-safe token bucket that hands out reservations in arrival order.

    `reserve(now)` takes a token even when none is left (the level goes negative) and returns how
    long the caller must wait for it; the caller sleeps outside the lock. Concurrent callers so
    queue up one interval apart instead of waking together and racing for the next token.
    """

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic):
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._level = burst
        self._stamp = clock()
        self._lock = threading.Lock()

    def reserve(self, now: float | None = None) -> float:
        """Take one token; return the seconds until it is really available (0.0: send now)."""
        with self._lock:
            t = self._clock() if now is None else now
            if t > self._stamp:
                self._level = min(self.burst, self._level + (t - self._stamp) * self.rate)
                self._stamp = t
            self._level -= 1.0
            return 0.0 if self._level >= 0 else -self._level / self.rate


class Route53RateLimiter:
    """One account's bucket plus the botocore handler that makes every request take a token."""

    def __init__(
        self,
        settings: RateLimitSettings,
        account: str,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.settings = settings
        self.account = account
        self.bucket = TokenBucket(settings.rps, settings.burst, clock)
        self._sleep = sleep
        self._episode_lock = threading.Lock()
        self._episode: dict[str, float] | None = None  # set while requests are being paced

    def acquire(self, operation: str) -> float:
        """Block until this request may be sent; return the seconds waited."""
        ROUTE53_REQUESTS.labels(operation=operation).inc()
        wait = self.bucket.reserve()
        if wait > 0:
            RATE_LIMIT_WAITS.labels(operation=operation).inc()
            RATE_LIMIT_WAIT_SECONDS.inc(wait)
            self._note_wait(operation, wait)
            self._sleep(wait)
        else:
            self._note_clear()
        return wait

    def before_send(self, request: Any = None, event_name: str = "", **_: Any) -> None:
        """botocore `before-send` handler. Returns None so the request is really sent."""
        self.acquire(event_name.rsplit(".", 1)[-1] if event_name else "unknown")

    def _note_wait(self, operation: str, wait: float) -> None:
        with self._episode_lock:
            if self._episode is None:
                self._episode = {"waits": 0, "wait_s": 0.0}
                get_logger().info(
                    "route53_rate_limit_pacing",
                    account=self.account,
                    operation=operation,
                    rps=self.settings.rps,
                    burst=self.settings.burst,
                    wait_s=round(wait, 4),
                )
            self._episode["waits"] += 1
            self._episode["wait_s"] += wait

    def _note_clear(self) -> None:
        with self._episode_lock:
            if self._episode is None:
                return
            episode, self._episode = self._episode, None
        get_logger().info(
            "route53_rate_limit_clear",
            account=self.account,
            waits=int(episode["waits"]),
            waited_s=round(episode["wait_s"], 3),
        )


_limiters: dict[str, Route53RateLimiter] = {}
_limiters_lock = threading.Lock()


def account_key(credentials: Any) -> str:
    """Which account a set of credentials signs for, as a label safe to log.

    The account id when botocore knows it; otherwise a short digest of the access key id (never
    the key itself). A process normally has one identity, so all its clients share one bucket.
    """
    if credentials is None:
        return "anonymous"
    account_id = getattr(credentials, "account_id", None)
    if account_id:
        return str(account_id)
    access_key = getattr(credentials, "access_key", None) or ""
    return "key-" + hashlib.sha256(access_key.encode()).hexdigest()[:12]


def limiter_for(account: str, environ: Mapping[str, str] | None = None) -> Route53RateLimiter:
    """The process's limiter for `account`, created on first use from the environment's settings."""
    with _limiters_lock:
        limiter = _limiters.get(account)
        if limiter is None:
            limiter = Route53RateLimiter(RateLimitSettings.from_env(environ), account)
            _limiters[account] = limiter
        return limiter


def install(client: Any, credentials: Any) -> Route53RateLimiter:
    """Make every request of this Route 53 client take a token from its account's bucket."""
    limiter = limiter_for(account_key(credentials))
    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"before-send.{service}", limiter.before_send, unique_id=f"dnsctl-rate-limit-{service}")
    return limiter
