"""A burst of plans: the planner publishes one plan every X ms for Y s (the race lab's plan churn).

On 20 October the planner kept producing plans while one enactor was stuck in backoff; plan churn
is what opened the window. The race lab (`dnsctl race`, `dnsctl chaos planner`) recreates it on
demand with a burst. A burst is chaos: its routes exist on every planner but refuse (403) unless
the planner was started with --allow-chaos, and they require the bearer token like every other
mutating route.

    POST   /v1/chaos/burst  {"every_ms": X, "for_s": Y}   start a burst (409 while one runs)
    GET    /v1/chaos/burst                                 the current or last burst
    DELETE /v1/chaos/burst                                 stop a running burst
    POST   /v1/chaos/schedule-hold  {"for_s": Y, "by": W}  hold the scheduled plans for Y s (at most 1 h)
    DELETE /v1/chaos/schedule-hold                         let them run again

A race attached to a running stack (`dnsctl race --attach`) holds the schedule, so the only plans
are the script's: on a stack whose planner publishes every few seconds, the script's waits for
"plan N" were overtaken by scheduled plans. The hold ends by itself (planner/schedule.py's
ScheduleHold). Events: schedule_held, schedule_released (by: the caller, or expiry).

Every plan of a burst goes through the planner's normal path (Planner.burst_run): the traffic
drifts a step, the freeze marker is honoured (frozen: the plan is refused and counted, the burst
goes on trying until its time is up) and the safety check applies. Events: burst_started,
burst_finished (published, refused, failed; stopped=True when cut short).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from planner.service import Planner, PlannerRefused
from services.logs import get_logger
from services.plan.store import StoreError

MAX_BURST_S = 600.0
MAX_HOLD_S = 3600.0


class BurstRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    every_ms: int = Field(ge=10, le=60_000, description="Milliseconds between two plans")
    for_s: float = Field(gt=0, le=MAX_BURST_S, description="How long the burst lasts, in seconds")


class HoldRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    for_s: float = Field(gt=0, le=MAX_HOLD_S, description="How long the scheduled plans are held, in seconds")
    by: str = Field("api", min_length=1, max_length=100, description="Who holds them (logged)")


@dataclass
class BurstReport:
    every_ms: int
    for_s: float
    started_at: str
    published: list[int] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)  # cause -> count (frozen, unsafe)
    failed: int = 0
    running: bool = True
    stopped: bool = False
    finished_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "every_ms": self.every_ms,
            "for_s": self.for_s,
            "started_at": self.started_at,
            "running": self.running,
            "stopped": self.stopped,
            "finished_at": self.finished_at,
            "published": len(self.published),
            "versions": [self.published[0], self.published[-1]] if self.published else [],
            "refused": dict(self.refused),
            "failed": self.failed,
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Burst:
    """One burst at a time, run by a thread of its own; ticks at a fixed rate (late ticks are not made up)."""

    def __init__(self, planner: Planner):
        self.planner = planner
        self.log = get_logger(planner=planner.settings.planner_id)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.report: BurstReport | None = None

    def start(self, every_ms: int, for_s: float) -> BurstReport:
        with self._lock:
            if self.report is not None and self.report.running:
                raise RuntimeError("a burst is already running; stop it first (DELETE /v1/chaos/burst)")
            self._stop = threading.Event()
            self.report = BurstReport(every_ms, for_s, _now())
            self._thread = threading.Thread(
                target=self._run, args=(self.report, self._stop), name="planner-burst", daemon=True
            )
            self.log.warning("burst_started", every_ms=every_ms, for_s=for_s, plans=int(for_s * 1000 // every_ms))
            self._thread.start()
            return self.report

    def stop(self) -> BurstReport | None:
        with self._lock:
            report, thread = self.report, self._thread
            self._stop.set()
        if thread is not None and thread.is_alive():
            thread.join(timeout=30)
        return report

    def _run(self, report: BurstReport, stop: threading.Event) -> None:
        started = time.monotonic()
        n = max(1, int(report.for_s * 1000 // report.every_ms))
        k = 0
        while not stop.is_set() and time.monotonic() - started < report.for_s:
            k += 1
            try:
                plan = self.planner.burst_run(k, n)
                report.published.append(plan.version)
            except PlannerRefused as exc:
                report.refused[exc.cause] = report.refused.get(exc.cause, 0) + 1  # logged by the planner
            except StoreError as exc:
                report.failed += 1
                self.log.warning("burst_plan_failed", error=str(exc)[:300])
            except Exception as exc:  # noqa: BLE001 - a burst never takes the planner down
                report.failed += 1
                self.log.exception("burst_plan_crashed", error=repr(exc)[:300])
            # Next tick on the fixed grid; ticks missed by a slow publish are skipped, not bunched.
            elapsed = time.monotonic() - started
            ticks = int(elapsed * 1000 // report.every_ms) + 1
            stop.wait(max(0.0, ticks * report.every_ms / 1000 - elapsed))
        report.running = False
        report.stopped = stop.is_set()
        report.finished_at = _now()
        self.log.warning("burst_finished", **{k: v for k, v in report.as_dict().items() if k != "running"})


def burst_router(planner: Planner, allow_chaos: bool, guarded: list) -> APIRouter:
    """The burst routes; `guarded` is the app's token dependency list (services/auth.py)."""
    router = APIRouter(prefix="/v1/chaos", tags=["chaos"])
    burst = Burst(planner)

    def refuse_unless_allowed() -> None:
        if not allow_chaos:
            raise HTTPException(403, "chaos is off on this planner: start it with --allow-chaos (`dnsctl up` does)")

    @router.post("/burst", dependencies=guarded, status_code=202)
    def start_burst(body: BurstRequest) -> dict[str, Any]:
        """Publish a plan every `every_ms` for `for_s` seconds, in the background."""
        refuse_unless_allowed()
        try:
            report = burst.start(body.every_ms, body.for_s)
        except RuntimeError as exc:
            raise HTTPException(409, str(exc)) from exc
        return {"burst": report.as_dict()}

    @router.get("/burst")
    def burst_status() -> dict[str, Any]:
        """The running or last burst (null if none was started), and whether chaos is allowed."""
        return {"allow_chaos": allow_chaos, "burst": burst.report.as_dict() if burst.report else None}

    @router.delete("/burst", dependencies=guarded)
    def stop_burst() -> dict[str, Any]:
        """Stop a running burst (a no-op when none runs)."""
        refuse_unless_allowed()
        report = burst.stop()
        return {"burst": report.as_dict() if report else None}

    @router.post("/schedule-hold", dependencies=guarded)
    def hold_schedule(body: HoldRequest) -> dict[str, Any]:
        """Publish no scheduled plan for `for_s` seconds (requested and burst plans go on)."""
        refuse_unless_allowed()
        planner.hold_schedule(body.for_s, body.by)
        return {"schedule_held_s": planner.schedule_hold.remaining_s(), "by": body.by}

    @router.delete("/schedule-hold", dependencies=guarded)
    def release_schedule() -> dict[str, Any]:
        """Let the scheduled plans run again (a no-op when none is held)."""
        refuse_unless_allowed()
        return {"released": planner.release_schedule("api")}

    return router
