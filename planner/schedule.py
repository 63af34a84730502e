"""When plans are made: the scheduled job, the slow lane that waits for it, and simulated traffic drift.

Production planners publish on a timer, and that churn is what exposed the race; so does this
one. Every plan_interval an apscheduler (3.x) job recomputes the plan from the fleet and publishes
it. Two lanes feed it:
- slow lane (capacity and weight changes, adding LBs, undraining): the change is applied to the
  fleet at once but only queued for publishing; the next scheduled plan carries every queued
  change together (coalescing: fewer plans, fewer races);
- fast lane (draining an AZ or an LB, retiring or deleting an LB): the planner publishes at once
  and the plan also carries whatever the slow lane had queued.

Traffic drift stands in for the metrics a real planner reads: each scheduled run moves every
LB's weight factor by a small seeded random step, bounded, so consecutive plans differ slightly
and the same seed replays the same sequence.
"""

from __future__ import annotations

import contextvars
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

JOB_ID = "scheduled-plan"


class TrafficDrift:
    """Per-LB weight factors doing a bounded, seeded random walk around 1.0."""

    def __init__(self, seed: int, step: float = 0.02, bound: float = 0.10):
        self._rng = random.Random(seed)
        self.step = step
        self.bound = bound
        self._factors: dict[str, float] = {}

    def advance(self, lb_ids: Iterable[str]) -> dict[str, float]:
        """Move every LB's factor one step (sorted order, so a seed replays exactly); drop unknown LBs."""
        factors = {}
        for lb_id in sorted(lb_ids):
            f = self._factors.get(lb_id, 1.0) + self._rng.uniform(-self.step, self.step)
            factors[lb_id] = min(1.0 + self.bound, max(1.0 - self.bound, f))
        self._factors = factors
        return dict(factors)

    def factors(self) -> dict[str, float]:
        return dict(self._factors)


@dataclass(frozen=True)
class QueuedChange:
    at: str
    description: str
    forced: bool

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class SlowLane:
    """Fleet changes applied but not yet published; the next scheduled plan takes them all."""

    def __init__(self) -> None:
        self._changes: list[QueuedChange] = []
        self._lock = threading.Lock()

    def add(self, description: str, forced: bool) -> QueuedChange:
        change = QueuedChange(datetime.now(UTC).isoformat(timespec="milliseconds"), description, forced)
        with self._lock:
            self._changes.append(change)
        return change

    def pending(self) -> list[QueuedChange]:
        with self._lock:
            return list(self._changes)

    def forced(self) -> bool:
        return any(c.forced for c in self.pending())

    def drop_all(self) -> list[QueuedChange]:
        with self._lock:
            dropped, self._changes = self._changes, []
        return dropped

    def clear(self, published: list[QueuedChange]) -> None:
        """Drop the changes a published plan carried (not ones queued after it was built)."""
        taken = {id(c) for c in published}
        with self._lock:
            self._changes = [c for c in self._changes if id(c) not in taken]

    def summary(self, limit: int = 5) -> str:
        changes = self.pending()
        if not changes:
            return ""
        shown = "; ".join(c.description for c in changes[:limit])
        more = f"; and {len(changes) - limit} more" if len(changes) > limit else ""
        return f"{len(changes)} queued change(s): {shown}{more}"


class ScheduleHold:
    """The scheduled job held for a while (the race lab's chaos control, planner/burst.py's routes):
    while held, the timer publishes nothing and the slow lane's changes wait, and requested and
    burst plans go on as ever. A hold always ends by itself, so a race that dies mid-script never
    leaves a stack without its scheduled plans; `release` ends it sooner."""

    def __init__(self, clock: Callable[[], float] | None = None):
        self._clock = clock or time.monotonic
        self._until: float | None = None
        self.by: str | None = None
        self._lock = threading.Lock()

    def hold(self, for_s: float, by: str) -> None:
        with self._lock:
            self._until, self.by = self._clock() + for_s, by

    def release(self) -> tuple[bool, bool]:
        """End the hold: (whether one was in force, whether one was set at all, in force or run
        out since: the caller tells its end once)."""
        with self._lock:
            in_force, was_set = self._remaining() is not None, self._until is not None
            self._until, self.by = None, None
            return in_force, was_set

    def remaining_s(self) -> float | None:
        """Seconds the hold has left, None when the schedule runs."""
        with self._lock:
            return self._remaining()

    def current(self) -> tuple[float, str | None] | None:
        """(seconds left, who holds it), read together; None when the schedule runs."""
        with self._lock:
            left = self._remaining()
            return None if left is None else (left, self.by)

    def ran_out(self) -> bool:
        """A hold that ended by itself and was not released yet."""
        with self._lock:
            return self._until is not None and self._remaining() is None

    def _remaining(self) -> float | None:
        if self._until is None:
            return None
        left = self._until - self._clock()
        return left if left > 0 else None


class PlanSchedule:
    """The apscheduler job that runs `job` every `interval_s`, the first run right at start."""

    def __init__(self, interval_s: float, job: Callable[[], object]):
        self.interval_s = interval_s
        self._scheduler = BackgroundScheduler(timezone=UTC)
        # The scheduler's threads do not inherit context variables; run the job in a copy of the
        # creator's context so its log events carry the process's bound fields (process, pid).
        context = contextvars.copy_context()
        self._scheduler.add_job(
            lambda: context.copy().run(job),
            IntervalTrigger(seconds=interval_s, timezone=UTC),
            id=JOB_ID,
            next_run_time=datetime.now(UTC),
            max_instances=1,  # a slow run (S3 retrying) must not overlap the next one
            coalesce=True,  # runs missed while one was slow collapse into one
            misfire_grace_time=max(1, int(interval_s)),
        )

    def start(self) -> None:
        self._scheduler.start()

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def next_run(self) -> datetime | None:
        job = self._scheduler.get_job(JOB_ID)
        return job.next_run_time if job else None
