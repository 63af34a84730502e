"""How AWS clients retry, and how every throttle they meet becomes visible.

Retries are botocore's own: adaptive mode by default, which is standard mode (exponential
backoff with jitter, a retry quota) plus a client-side send rate that drops when the service
throttles. Standard mode already treats Route 53's `Throttling` and `PriorRequestNotComplete`
as throttling errors (botocore.retries.standard.ThrottledRetryableChecker), so no extra retry
rule and no hand-written loop is needed; tests/aws_grade/test_retries.py keeps that fact checked.

The settings are boto3's standard ones, so operators configure dnsctl like any AWS tool:

    AWS_RETRY_MODE      adaptive (default here), standard or legacy   (or retry_mode in the profile)
    AWS_MAX_ATTEMPTS    total attempts per call, first one included   (or max_attempts in the profile)

When neither is set, each client keeps the attempts its caller asked for.

Every throttling response (any code botocore classifies as throttling: Throttling,
PriorRequestNotComplete, SlowDown, ...) is counted in `dnsctl_aws_throttles_total` and logged as
one `aws_throttled` event, whether or not botocore then retries it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.retries.standard import RetryEventAdapter, ThrottlingErrorDetector
from prometheus_client import Counter

from services.logs import get_logger

RETRY_MODES = ("adaptive", "standard", "legacy")
DEFAULT_RETRY_MODE = "adaptive"

AWS_THROTTLES = Counter(
    "dnsctl_aws_throttles",
    "Throttling responses from AWS (Throttling, PriorRequestNotComplete, SlowDown, ...) by service, operation and code.",
    ["service", "operation", "code"],
)


class RetryConfigInvalid(ValueError):
    """AWS_RETRY_MODE or AWS_MAX_ATTEMPTS (or the profile's retry settings) cannot be used."""


@dataclass(frozen=True)
class RetrySettings:
    mode: str
    total_max_attempts: int

    def botocore_retries(self) -> dict[str, Any]:
        return {"mode": self.mode, "total_max_attempts": self.total_max_attempts}


def retry_settings(default_retries: int, scoped_config: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> RetrySettings:
    """Resolve the retry mode and attempts: environment, then profile, then dnsctl's defaults.

    `default_retries` is the caller's number of retries after the first attempt (botocore's
    `max_attempts` meaning); AWS_MAX_ATTEMPTS counts attempts including the first, as boto3 does.
    """
    env = os.environ if environ is None else environ
    profile = scoped_config or {}
    mode = (env.get("AWS_RETRY_MODE") or str(profile.get("retry_mode") or "") or DEFAULT_RETRY_MODE).strip().lower()
    if mode not in RETRY_MODES:
        raise RetryConfigInvalid(f"retry mode {mode!r} is not one of {', '.join(RETRY_MODES)} (AWS_RETRY_MODE or retry_mode in the profile)")
    raw = env.get("AWS_MAX_ATTEMPTS") or str(profile.get("max_attempts") or "")
    if raw.strip():
        try:
            total = int(raw)
        except ValueError:
            raise RetryConfigInvalid(f"max attempts {raw!r} is not a whole number (AWS_MAX_ATTEMPTS or max_attempts in the profile)") from None
        if total < 1:
            raise RetryConfigInvalid(f"max attempts {total} must be at least 1 (the first attempt counts)")
    else:
        total = default_retries + 1
    return RetrySettings(mode=mode, total_max_attempts=total)


class ThrottleObserver:
    """A botocore `needs-retry` handler that counts and logs throttling responses.

    It reuses botocore's own throttling classification, so what it counts is exactly what the
    retry handler treats as a throttle. It always returns None: the retry decision stays botocore's.
    """

    def __init__(self, service: str):
        self.service = service
        self._adapter = RetryEventAdapter()
        self._detector = ThrottlingErrorDetector(self._adapter)

    def __call__(self, **kwargs: Any) -> None:
        if kwargs.get("response") is None:
            return None
        context = self._adapter.create_retry_context(**kwargs)
        code = context.get_error_code()
        if code is None or not self._detector.is_throttling_error_from_context(context):
            return None
        operation = context.operation_model.name if context.operation_model is not None else "unknown"
        AWS_THROTTLES.labels(service=self.service, operation=operation, code=code).inc()
        get_logger().info("aws_throttled", service=self.service, operation=operation, code=code, attempt=context.attempt_number)
        return None


def observe_throttles(client: Any) -> None:
    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"needs-retry.{service}", ThrottleObserver(service), unique_id=f"dnsctl-throttles-{service}")
