"""The enactor's Prometheus metrics, in a registry of its own (one per runner, so tests can build many).

Counters follow the protocol's notes (lock attempts, wins and losses, refusals, rejections) and
the runner's calls (batches, records written, Route 53 calls, backoff slept); gauges give the
per-endpoint applied version and plan lag (newest published version - applied version).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class EnactorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.lock_attempts = Counter("dnsctl_enactor_lock_attempts", "Lock acquisitions tried (a listing found the lock free, expired or ours, or held)", ["endpoint"], registry=r)
        self.lock_wins = Counter("dnsctl_enactor_lock_wins", "Units of work whose first batch was accepted", ["endpoint"], registry=r)
        self.lock_losses = Counter("dnsctl_enactor_lock_losses", "Lock attempts lost (held by another, or a batch's preamble failed)", ["endpoint"], registry=r)
        self.batches = Counter("dnsctl_enactor_batches", "Change batches by purpose and outcome (accepted, rejected, failed)", ["endpoint", "purpose", "outcome"], registry=r)
        self.records_written = Counter("dnsctl_enactor_records_written", "Changes in accepted batches (preamble included)", ["endpoint"], registry=r)
        self.route53_calls = Counter("dnsctl_enactor_route53_calls", "Route 53 API calls made, by operation", ["operation"], registry=r)
        self.backoff_seconds = Counter("dnsctl_enactor_backoff_seconds", "Seconds slept in backoff (after jitter)", ["endpoint"], registry=r)
        self.stale_refused = Counter("dnsctl_enactor_stale_plans_refused", "Plans found stale after a listing and not applied", ["endpoint"], registry=r)
        self.plans_rejected = Counter("dnsctl_enactor_plans_rejected", "Invalid plans (schema, checksum, empty endpoint) never applied", ["endpoint"], registry=r)
        self.plans_refused = Counter("dnsctl_enactor_plans_refused", "Plan versions Route 53 refused for their content, or that cannot fit the zone quota (never retried)", ["endpoint", "reason"], registry=r)
        self.flips = Counter("dnsctl_enactor_flips", "Flips of the root alias accepted (heals included)", ["endpoint"], registry=r)
        self.flip_failures = Counter("dnsctl_enactor_flip_failures", "Flip batches rejected for another reason than the lock", ["endpoint"], registry=r)
        self.cleanup_records = Counter("dnsctl_enactor_cleanup_records_deleted", "Records deleted by clean-up", ["endpoint"], registry=r)
        self.request_failures = Counter("dnsctl_enactor_request_failures", "Requests that could not be carried out (S3, Route 53, faults)", ["endpoint", "request"], registry=r)
        self.applied_version = Gauge("dnsctl_enactor_applied_version", "Applied plan version of the endpoint as last seen", ["endpoint"], registry=r)
        self.plan_lag = Gauge("dnsctl_enactor_plan_lag", "Newest published plan version minus the endpoint's applied version", ["endpoint"], registry=r)
        self.outside_cell = Counter("dnsctl_enactor_endpoints_outside_cell", "Plan endpoints refused because they belong to another cell (or to none, for a cell's enactor)", ["endpoint"], registry=r)
        self.frozen = Gauge("dnsctl_enactor_frozen", "1 while the freeze marker stops this enactor", registry=r)
        self.stuck = Gauge("dnsctl_enactor_stuck", "1 while the endpoint's flips keep failing", ["endpoint"], registry=r)
