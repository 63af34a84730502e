"""The enactor's chaos routes: set the fault injection points of enactor/faults.py over HTTP.

The race lab makes one enactor unlucky on purpose (`dnsctl chaos enactor-c --lock-failures 5
--delay-before-flip 20`, `dnsctl race`). The routes exist on every enactor but refuse (403) unless
it was started with --allow-chaos (`dnsctl up` sets it for demos; production never does), and
every mutating route requires the bearer token (services/auth.py).

    GET    /v1/chaos          the faults now (lock_failures counts down as attempts are lost)
    POST   /v1/chaos          set some faults: {"lock_failures": N, "delay_before_flip_s": S,
                              "route53_latency_ms": MS, "route53_error_rate": P,
                              "backoff_multiplier": M}; fields left out keep their value
    POST   /v1/chaos/pause    the runner performs no request until resumed
    POST   /v1/chaos/resume
    DELETE /v1/chaos          every fault back to off (and resumed)

Every change is one log event (chaos_changed, chaos_paused, chaos_resumed, chaos_cleared) with
the faults after it, so a timeline shows when the world was made unlucky; the faults themselves
log `fault_injected` where they strike (enactor/runner.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field, model_validator

from enactor.faults import Faults, FaultSettings
from services.auth import bearer_dependency, load_token
from services.logs import get_logger

MAX_LOCK_FAILURES = 1_000_000


class ChaosRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lock_failures: int | None = Field(None, ge=0, le=MAX_LOCK_FAILURES, description="Lose the next N lock attempts as if contended")
    delay_before_flip_s: float | None = Field(None, ge=0, le=600, description="Sleep this long before submitting each flip")
    route53_latency_ms: int | None = Field(None, ge=0, le=60_000, description="Added before every Route 53 call")
    route53_error_rate: float | None = Field(None, ge=0, le=1, description="Probability that a Route 53 call fails")
    backoff_multiplier: float | None = Field(None, ge=0.001, le=100, description="Scales every backoff sleep")

    @model_validator(mode="after")
    def _something(self) -> ChaosRequest:
        if all(v is None for v in self.model_dump().values()):
            raise ValueError("give at least one fault to set (or DELETE /v1/chaos to clear them)")
        return self


def describe(faults: FaultSettings) -> dict[str, Any]:
    """Faults in the units of the API (and of `dnsctl chaos`)."""
    return {
        "lock_failures": faults.lose_lock_attempts,
        "delay_before_flip_s": faults.delay_before_flip_s,
        "route53_latency_ms": round(faults.route53_latency_s * 1000),
        "route53_error_rate": faults.route53_error_rate,
        "backoff_multiplier": faults.backoff_multiplier,
        "paused": faults.paused,
    }


def _fault_fields(body: ChaosRequest) -> dict[str, Any]:
    """The API's names -> FaultSettings' fields, for the fields given."""
    fields: dict[str, Any] = {}
    if body.lock_failures is not None:
        fields["lose_lock_attempts"] = body.lock_failures
    if body.delay_before_flip_s is not None:
        fields["delay_before_flip_s"] = body.delay_before_flip_s
    if body.route53_latency_ms is not None:
        fields["route53_latency_s"] = body.route53_latency_ms / 1000
    if body.route53_error_rate is not None:
        fields["route53_error_rate"] = body.route53_error_rate
    if body.backoff_multiplier is not None:
        fields["backoff_multiplier"] = body.backoff_multiplier
    return fields


def chaos_router(faults: Faults, *, allow_chaos: bool, enactor_id: str) -> APIRouter:
    router = APIRouter(prefix="/v1/chaos", tags=["chaos"])
    guarded = [Depends(bearer_dependency(load_token()))]
    log = get_logger(enactor=enactor_id)

    def allowed() -> None:
        if not allow_chaos:
            raise HTTPException(403, f"chaos is off on {enactor_id}: start it with --allow-chaos (`dnsctl up` does)")

    def answer() -> dict[str, Any]:
        return {"enactor": enactor_id, "allow_chaos": allow_chaos, "faults": describe(faults.current())}

    @router.get("")
    def show() -> dict[str, Any]:
        return answer()

    @router.post("", dependencies=guarded)
    def change(body: ChaosRequest) -> dict[str, Any]:
        allowed()
        given = body.model_dump(exclude_none=True)
        after = faults.update(**_fault_fields(body))
        log.warning("chaos_changed", changed=sorted(given), **describe(after))
        return answer()

    @router.post("/pause", dependencies=guarded)
    def pause() -> dict[str, Any]:
        allowed()
        after = faults.update(paused=True)
        log.warning("chaos_paused", **describe(after))
        return answer()

    @router.post("/resume", dependencies=guarded)
    def resume() -> dict[str, Any]:
        allowed()
        after = faults.update(paused=False)
        log.warning("chaos_resumed", **describe(after))
        return answer()

    @router.delete("", dependencies=guarded)
    def clear() -> dict[str, Any]:
        allowed()
        after = faults.update(**vars(FaultSettings()))
        log.warning("chaos_cleared", **describe(after))
        return answer()

    return router
