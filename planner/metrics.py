"""The planner's Prometheus metrics, in a registry of its own (one per app, so tests can build many)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class PlannerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.plans_published = Counter(
            "dnsctl_planner_plans_published", "Plans written to the store", ["lane"], registry=r
        )
        self.plan_refusals = Counter(
            "dnsctl_planner_plan_refusals",
            "Plans not published: frozen, or unsafe without force",
            ["cause"],
            registry=r,
        )
        self.forced_plans = Counter(
            "dnsctl_planner_forced_plans", "Plans published with force despite safety violations", registry=r
        )
        self.store_errors = Counter(
            "dnsctl_planner_store_errors",
            "Plan store failures (unavailable, invalid plan, other)",
            ["kind"],
            registry=r,
        )
        self.fleet_changes = Counter(
            "dnsctl_planner_fleet_changes", "Accepted fleet changes", ["change", "lane"], registry=r
        )
        self.http_responses = Counter(
            "dnsctl_planner_http_responses",
            "HTTP responses by method and status",
            ["method", "status"],
            registry=r,
        )
        self.newest_version = Gauge(
            "dnsctl_planner_newest_version", "Version of the last plan this planner published", registry=r
        )
        self.queued_changes = Gauge(
            "dnsctl_planner_queued_changes", "Slow-lane changes waiting for the next plan", registry=r
        )
        self.frozen = Gauge(
            "dnsctl_planner_frozen", "1 when the freeze marker was present at the last check", registry=r
        )
        self.publish_seconds = Histogram(
            "dnsctl_planner_publish_seconds", "Time to compute, check and write one plan", registry=r
        )
        # The durable fleet (services/plan/fleet_store.py) and the floor Route 53 sets (planner/applied.py).
        self.fleet_revision = Gauge(
            "dnsctl_planner_fleet_revision", "Revision of the desired fleet this planner last read or wrote", registry=r
        )
        self.fleet_conflicts = Counter(
            "dnsctl_planner_fleet_conflicts",
            "Fleet writes that lost the compare-and-swap to another writer (then retried)",
            registry=r,
        )
        self.fleet_invalid = Counter(
            "dnsctl_planner_fleet_invalid", "Reads of a damaged fleet document (the last good fleet is kept)", registry=r
        )
        self.store_behind = Gauge(
            "dnsctl_planner_store_behind",
            "1 while the plan store's newest version is below the version Route 53 has applied (PlanStoreBehind)",
            registry=r,
        )
        self.applied_version = Gauge(
            "dnsctl_planner_applied_version", "Highest plan version Route 53 has applied, as last read", registry=r
        )
