"""The soak's verdict logic, pure: lost changes against the final fleet and plan, attribution."""

from __future__ import annotations

from lab.soak.checker import ChangeOutcome, FaultWindow, Violation, attribute, lost_changes
from lab.soak.nemesis import Fault, OperatorChange

AZS = ["az1", "az4"]


def fleet(drained=(), caps=None):
    caps = caps or {"lb-1": 1000, "lb-4": 300}
    return {"azs": AZS, "drained_azs": list(drained),
            "load_balancers": [{"id": "lb-1", "az": "az1", "capacity": caps["lb-1"], "state": "active"},
                               {"id": "lb-4", "az": "az4", "capacity": caps["lb-4"], "state": "active"}]}


def plan(version, drained=(), caps=None):
    caps = caps or {"lb-1": 1000, "lb-4": 300}
    return {"version": version, "endpoints": [{"name": "e", "targets": [
        {"lb_id": "lb-1", "az": "az1", "weight": 0 if "az1" in drained else 200, "capacity": caps["lb-1"]},
        {"lb_id": "lb-4", "az": "az4", "weight": 0 if "az4" in drained else 60, "capacity": caps["lb-4"]}]}]}


DRAIN = OperatorChange(10.0, "drain", az="az4")
UNDRAIN = OperatorChange(20.0, "undrain", az="az4")
CAP = OperatorChange(30.0, "capacity", lb_id="lb-1", capacity=1100)


def acked(c):
    return ChangeOutcome(c, "acknowledged", c.at_s)


def test_every_acknowledged_change_present_is_no_loss():
    outcomes = [acked(DRAIN), acked(CAP)]
    final_caps = {"lb-1": 1100, "lb-4": 300}
    assert lost_changes(outcomes, fleet(), fleet(["az4"], final_caps), plan(9, ["az4"], final_caps)) == []


def test_a_drain_lost_by_the_fleet_or_by_the_plan_is_named():
    lost = lost_changes([acked(DRAIN)], fleet(), fleet(), plan(9))
    assert len(lost) == 2 and all("drain az4" in line for line in lost)
    assert any("final fleet" in line for line in lost) and any("final plan (version 9)" in line for line in lost)
    only_plan = lost_changes([acked(DRAIN)], fleet(), fleet(["az4"]), plan(9))
    assert len(only_plan) == 1 and "final plan" in only_plan[0]


def test_the_last_acknowledged_change_wins():
    assert lost_changes([acked(DRAIN), acked(UNDRAIN)], fleet(), fleet(), plan(9)) == []
    assert lost_changes([acked(DRAIN), acked(UNDRAIN)], fleet(), fleet(["az4"]), plan(9, ["az4"]))


def test_a_capacity_change_must_reach_the_plan():
    lost = lost_changes([acked(CAP)], fleet(), fleet(caps={"lb-1": 1100, "lb-4": 300}), plan(9))
    assert len(lost) == 1 and "capacity lb-1 -> 1100" in lost[0] and "1000" in lost[0]


def test_refused_changes_are_not_expected_and_unanswered_ones_may_go_either_way():
    refused = ChangeOutcome(DRAIN, "refused", 10.0, "unsafe")
    assert lost_changes([refused], fleet(), fleet(), plan(9)) == []
    assert lost_changes([refused], fleet(), fleet(["az4"]), plan(9, ["az4"]))  # made anyway: not what was said
    unanswered = ChangeOutcome(DRAIN, "unanswered", 10.0)
    assert lost_changes([unanswered], fleet(), fleet(), plan(9)) == []
    assert lost_changes([unanswered], fleet(), fleet(["az4"]), plan(9, ["az4"])) == []


def test_violations_are_laid_at_the_door_of_the_fault_active_then():
    kill = Fault(10.0, "enactor-kill", "enactor-a", 8.0)
    burst = Fault(60.0, "plan-burst", "planner", 5.0)
    windows = [FaultWindow(kill, 10.0, 18.0, True), FaultWindow(burst, 60.0, 65.0, False, "planner down")]
    violations = [Violation(12.0, "NoEmptyAnswer", "e", ""), Violation(30.0, "NoEmptyAnswer", "e", ""),
                  Violation(61.0, "NoEmptyAnswer", "e", "")]
    assert attribute(violations, windows) == {"enactor-kill": 2, "(no fault)": 1}
