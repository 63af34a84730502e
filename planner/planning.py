"""Fleet -> plan: Route 53 weights from capacity, and the safety check every new plan must pass.

Pure functions, no I/O: the planner service feeds fleets and previous plans in and gets plans
and verdicts out, so the rules are tested directly and with hypothesis.

Weights. Within an endpoint, each serving LB (active, capacity > 0, AZ not drained) gets
weight = round(255 * effective capacity / the endpoint's largest effective capacity), at least
1, so the biggest LB gets 255 and every serving LB keeps some traffic. Effective capacity is the
capacity times the simulated traffic drift factor (1.0 without drift). LBs that are draining, in
a drained AZ, or without capacity stay in the plan with weight 0 (visible, taking no traffic);
retired LBs drop out.

Safety. A candidate plan is refused when any endpoint would have no target of weight > 0, when
an endpoint of the previous plan would disappear, or when an endpoint's serving capacity (sum of
the capacity of its targets with weight > 0) would fall by more than max_capacity_drop in one step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from planner.fleet import Fleet, LoadBalancer, validate_fleet
from services.plan.model import EndpointPlan, Lane, Plan, Target

WEIGHT_MAX = 255
DEFAULT_MAX_CAPACITY_DROP = 0.30


def endpoint_weights(fleet: Fleet, endpoint: str, drift: Mapping[str, float] | None = None) -> dict[str, int]:
    """lb id -> Route 53 weight for every non-retired LB of `endpoint`."""
    drift = drift or {}
    lbs = [b for b in fleet.lbs_of(endpoint) if b.state != "retired"]
    effective = {b.id: b.capacity * drift.get(b.id, 1.0) for b in lbs if fleet.serving(b)}
    top = max(effective.values(), default=0.0)
    weights: dict[str, int] = {}
    for b in lbs:
        if b.id in effective and top > 0:
            weights[b.id] = max(1, min(WEIGHT_MAX, round(WEIGHT_MAX * effective[b.id] / top)))
        else:
            weights[b.id] = 0
    return weights


def _target(lb: LoadBalancer, weight: int, record_types: tuple[str, ...]) -> Target:
    return Target(
        lb_id=lb.id,
        az=lb.az,
        ipv4=lb.ipv4 if "A" in record_types else (),
        ipv6=lb.ipv6 if "AAAA" in record_types else (),
        weight=weight,
        capacity=lb.capacity,
    )


def endpoint_plans(fleet: Fleet, drift: Mapping[str, float] | None = None) -> tuple[EndpointPlan, ...]:
    plans = []
    for ep in sorted(fleet.endpoints, key=lambda e: e.name):
        weights = endpoint_weights(fleet, ep.name, drift)
        lbs = {b.id: b for b in fleet.lbs_of(ep.name)}  # not fleet.lb(): one scan per endpoint, not per LB
        targets = tuple(_target(lbs[i], w, ep.record_types) for i, w in sorted(weights.items()))
        plans.append(
            EndpointPlan(
                name=ep.name, hosted_zone=ep.hosted_zone, record_types=ep.record_types, targets=targets
            )
        )
    return tuple(plans)


def build_plan(
    fleet: Fleet,
    version: int,
    *,
    reason: str,
    lane: Lane,
    drift: Mapping[str, float] | None = None,
    created_at: str | None = None,
) -> Plan:
    return Plan.build(
        region=fleet.region,
        version=version,
        endpoints=endpoint_plans(fleet, drift),
        reason=reason[:500],
        lane=lane,
        created_at=created_at,
    )


def fleet_from_plan(plan: Plan, base: Fleet) -> Fleet:
    """The fleet a plan describes, so the planner can adopt a restored plan and keep building on it.

    Targets with weight 0 come back as draining LBs; targets of plans without capacity figures
    take their weight as capacity. The AZs of `base` are kept (plus any the plan names).
    """
    azs = list(base.azs)
    lbs = []
    for ep in plan.endpoints:
        for t in ep.targets:
            if t.az not in azs:
                azs.append(t.az)
            lbs.append(
                {
                    "id": t.lb_id,
                    "az": t.az,
                    "endpoint": ep.name,
                    "ipv4": list(t.ipv4),
                    "ipv6": list(t.ipv6),
                    "capacity": t.capacity or t.weight,
                    "state": "active" if t.weight > 0 else "draining",
                }
            )
    return validate_fleet(
        {
            "region": plan.region,
            "azs": azs,
            "drained_azs": [],
            "endpoints": [
                {"name": ep.name, "hosted_zone": ep.hosted_zone, "record_types": list(ep.record_types)}
                for ep in plan.endpoints
            ],
            "load_balancers": lbs,
        },
        f"plan {plan.version}",
    )


@dataclass(frozen=True)
class Violation:
    """One reason a candidate plan is unsafe. `rule`: no_address | endpoint_removed | capacity_drop."""

    endpoint: str
    rule: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"endpoint": self.endpoint, "rule": self.rule, "message": self.message}


def serving_capacity(endpoint: EndpointPlan) -> int:
    return sum(t.capacity for t in endpoint.targets if t.weight > 0)


def safety_violations(
    previous: Plan | None, candidate: Plan, max_capacity_drop: float = DEFAULT_MAX_CAPACITY_DROP
) -> list[Violation]:
    violations: list[Violation] = []
    for ep in candidate.endpoints:
        if not any(t.weight > 0 for t in ep.targets):
            violations.append(
                Violation(ep.name, "no_address", f"endpoint {ep.name} would have no address with weight > 0")
            )
    if previous is None:
        return violations
    for old in previous.endpoints:
        new = candidate.endpoint(old.name)
        if new is None:
            violations.append(
                Violation(old.name, "endpoint_removed", f"endpoint {old.name} would disappear from the plan")
            )
            continue
        before, after = serving_capacity(old), serving_capacity(new)
        # A previous plan without capacity figures gives no baseline to compare against.
        if before > 0 and after < before and (before - after) / before > max_capacity_drop:
            violations.append(
                Violation(
                    old.name,
                    "capacity_drop",
                    f"endpoint {old.name} would lose {(before - after) / before:.0%} of its capacity "
                    f"({before} -> {after}), more than max_capacity_drop {max_capacity_drop:.0%}",
                )
            )
    return violations
