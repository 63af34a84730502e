"""EndpointBlocked: an enactor reports that Route 53 refused the newest plan of an endpoint."""

from __future__ import annotations

from services.prober import alarms
from services.prober.rules import Rules
from services.prober.sources import parse_enactor_status


def status(blocked):
    body = {"enactor": "enactor-a", "state": "idle", "endpoints": {"svc.example.com": {"applied_version": 4, "blocked": blocked}}}
    return parse_enactor_status(body, "http://127.0.0.1:1")


def test_endpoint_blocked_fires_with_the_plan_and_reason_and_clears_after_a_newer_flip():
    rules, book = Rules(), alarms.AlarmBook()
    refused = {"event": "plan_refused_by_route53", "plan_version": 5, "reason": "duplicate_address"}
    conditions, seen = rules.blocked([status(refused)])
    fired = book.observe(alarms.ENDPOINT_BLOCKED, conditions, 1.0, seen)
    assert [t.kind for t in fired] == ["fired"]
    alarm = fired[0].alarm
    assert alarm.subject == "svc.example.com" and "plan 5" in alarm.condition.detail and "duplicate_address" in alarm.condition.detail
    conditions, seen = rules.blocked([status(None)])
    assert [t.kind for t in book.observe(alarms.ENDPOINT_BLOCKED, conditions, 2.0, seen)] == ["cleared"]
