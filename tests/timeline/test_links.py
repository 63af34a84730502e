"""Arrows between lanes: a plan to the enactors that saw it, a flip to where it became visible,
a cause to what follows from it."""

from __future__ import annotations

from lab.timeline.anomalies import analyse
from lab.timeline.build import lane_order
from lab.timeline.links import find_links, observer_lanes
from tests.timeline.events_builder import EP, EP6, Events


def _links(ev: Events):
    events = ev.merged()
    return events, [(link.src, link.dst, link.kind) for link in find_links(events, analyse(events))]


def test_a_plan_links_to_the_first_plan_seen_in_each_enactor():
    ev = Events()
    ev.add(0, "planner", "plan_published", plan_version=7)
    ev.add(1, "enactor-a", "plan_seen", endpoint=EP, plan_version=7)
    ev.add(2, "enactor-a", "plan_seen", endpoint=EP6, plan_version=7)  # same lane again: no second arrow
    ev.add(3, "enactor-b", "plan_seen", endpoint=EP, plan_version=7)
    ev.add(4, "enactor-b", "plan_seen", endpoint=EP, plan_version=6)  # never published in these logs
    _, links = _links(ev)
    assert links == [(0, 1, "plan"), (0, 3, "plan")]


def test_a_flip_links_to_the_first_change_each_observer_sees():
    ev = Events()
    ev.add(0, "prober", "probe", endpoint=EP, answers=3)
    ev.add(1, "enactor-a", "flipped", endpoint=EP, plan_version=8, tree_id="t-a8")
    ev.add(2, "prober", "probe", endpoint=EP, answers=3)  # nothing changed for the prober
    ev.add(3, "dns", "snapshot_zone_changed", zone=EP + ".", records=9)
    ev.add(4, "prober", "probe", endpoint=EP6, answers=0)  # another endpoint
    ev.add(5, "enactor-c", "flipped", endpoint=EP, plan_version=3, tree_id="t-c3")
    ev.add(6, "prober", "probe", endpoint=EP, answers=0)
    ev.add(7, "prober", "probe", endpoint=EP, answers=0)
    events, links = _links(ev)
    assert observer_lanes(events) == {"prober", "dns"}
    assert (1, 3, "observe") in links and (5, 6, "observe") in links
    assert not any(kind == "observe" and dst in (2, 4, 7) for _, dst, kind in links)
    # the stale flip is the cause; the empty answers are its effects
    assert (5, 6, "effect") in links and (5, 7, "effect") not in links


def test_causes_link_to_the_anomalies_that_follow():
    ev = Events()
    ev.add(0, "enactor-a", "flipped", endpoint=EP, plan_version=145, tree_id="t-a145")
    ev.add(1, "enactor-c", "flipped", endpoint=EP, plan_version=110, tree_id="t-c110")
    ev.add(2, "enactor-a", "cleanup_deleted", endpoint=EP, trees=["t-c110"])
    ev.add(3, "prober", "alarm_fired", alarm="RootAliasDangling", endpoint=EP)
    _, links = _links(ev)
    assert [(s, d) for s, d, k in links if k == "anomaly"] == [(1, 2), (1, 3)]


def test_lane_order_puts_the_planner_first_and_observers_after_enactors():
    ev = Events()
    ev.add(0, "prober", "probe", endpoint=EP, answers=1)
    ev.add(1, "emulator", "started")
    ev.add(2, "enactor-b", "plan_seen", endpoint=EP, plan_version=1)
    ev.add(3, "dns", "dns_serving")
    ev.add(4, "enactor-a", "lock_lost", endpoint=EP)
    ev.add(5, "planner", "plan_published", plan_version=1)
    assert lane_order(ev.merged()) == ("planner", "enactor-a", "enactor-b", "dns", "prober", "emulator")
