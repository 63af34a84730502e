"""Waiting for Route 53 to propagate a tree before the root is flipped to it.

ChangeResourceRecordSets returns as soon as Route 53 has accepted a batch; the records reach its
name servers later, when GetChange reports the change INSYNC (usually within a minute). If the
enactor flipped the root alias to a tree whose batches were still PENDING, resolvers could be
sent to names that do not answer yet. So the enactor collects the change ids of a tree's batches
and calls `wait_insync` before the flip batch; only an all-INSYNC result allows the flip.

The wait is bounded: on timeout the enactor does not flip (the tree stays unused and is cleaned
up with the others), it logs why and the next cycle tries again. Errors while polling are
logged and polled again until the deadline: GetChange is read-only, and throttling is already
retried by botocore. An unknown change id (NoSuchChange) ends the wait at once, because it can
never become INSYNC.

Events: `propagation_wait_started`, `propagation_insync`, `propagation_timeout`,
`propagation_unknown_change`, `propagation_poll_failed`. Metrics: the histogram
`dnsctl_enactor_propagation_wait_seconds` and the counter `dnsctl_enactor_propagation_waits_total`
by outcome.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from prometheus_client import Counter, Histogram

from services.logs import get_logger

Outcome = Literal["insync", "timeout", "unknown_change"]
INSYNC = "INSYNC"

PROPAGATION_WAIT_SECONDS = Histogram(
    "dnsctl_enactor_propagation_wait_seconds",
    "Seconds an enactor waited for its tree batches to be INSYNC before flipping.",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300),
)
PROPAGATION_WAITS = Counter(
    "dnsctl_enactor_propagation_waits",
    "Waits for tree batches to be INSYNC, by outcome (insync, timeout, unknown_change).",
    ["outcome"],
)


@dataclass(frozen=True)
class InsyncResult:
    """What a wait ended with. `insync` is the only outcome that allows the flip."""

    outcome: Outcome
    waited_s: float
    polls: int
    pending: tuple[str, ...]  # change ids not (known to be) INSYNC when the wait ended

    @property
    def insync(self) -> bool:
        return self.outcome == "insync"


def change_id(value: str) -> str:
    """'/change/C123' (as ChangeResourceRecordSets returns it) -> 'C123'."""
    return value.rsplit("/", 1)[-1]


def wait_insync(
    client: Any,
    change_ids: Iterable[str],
    timeout_s: float,
    poll_s: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    **log_fields: Any,
) -> InsyncResult:
    """Poll GetChange until every change is INSYNC, the timeout passes, or a change is unknown.

    `log_fields` (e.g. enactor=, endpoint=, plan_version=) are added to every event.
    """
    if timeout_s < 0 or poll_s <= 0:
        raise ValueError("timeout_s must be >= 0 and poll_s > 0")
    log = get_logger(**log_fields)
    pending = list(dict.fromkeys(change_id(c) for c in change_ids))
    started = clock()
    deadline = started + timeout_s
    polls = 0
    if pending:
        log.info("propagation_wait_started", changes=len(pending), timeout_s=timeout_s)
    while pending:
        polls += 1
        still: list[str] = []
        for i, cid in enumerate(pending):
            try:
                status = client.get_change(Id=cid)["ChangeInfo"]["Status"]
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code == "NoSuchChange":
                    log.warning("propagation_unknown_change", change_id=cid)
                    return _finish("unknown_change", started, clock(), polls, still + pending[i:])
                log.warning("propagation_poll_failed", change_id=cid, error=code or type(exc).__name__)
                status = None
            except BotoCoreError as exc:
                log.warning("propagation_poll_failed", change_id=cid, error=type(exc).__name__)
                status = None
            if status != INSYNC:
                still.append(cid)
        pending = still
        if not pending:
            break
        now = clock()
        if now >= deadline:
            log.warning("propagation_timeout", pending=len(pending), waited_s=round(now - started, 3), polls=polls)
            return _finish("timeout", started, now, polls, pending)
        sleep(min(poll_s, deadline - now))
    if not polls:
        # Nothing to wait for: no event, no sample.
        return InsyncResult(outcome="insync", waited_s=0.0, polls=0, pending=())
    result = _finish("insync", started, clock(), polls, [])
    log.info("propagation_insync", waited_s=round(result.waited_s, 3), polls=polls)
    return result


def _finish(outcome: Outcome, started: float, now: float, polls: int, pending: list[str]) -> InsyncResult:
    waited = max(0.0, now - started)
    PROPAGATION_WAITS.labels(outcome=outcome).inc()
    PROPAGATION_WAIT_SECONDS.observe(waited)
    return InsyncResult(outcome=outcome, waited_s=waited, polls=polls, pending=tuple(pending))
