"""Traffic drift and the slow lane (pure parts of planner/schedule.py)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from planner.schedule import SlowLane, TrafficDrift

IDS = [f"lb-{i}" for i in range(20)]


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32), steps=st.integers(1, 60))
def test_drift_is_seeded_small_and_bounded(seed, steps):
    a, b = TrafficDrift(seed, step=0.02, bound=0.1), TrafficDrift(seed, step=0.02, bound=0.1)
    previous = {i: 1.0 for i in IDS}
    for _ in range(steps):
        fa, fb = a.advance(IDS), b.advance(IDS)
        assert fa == fb, "the same seed replays the same drift"
        for i in IDS:
            assert 0.9 <= fa[i] <= 1.1
            assert abs(fa[i] - previous[i]) <= 0.02 + 1e-12
        previous = fa


def test_drift_differs_by_seed_and_forgets_removed_lbs():
    a, b = TrafficDrift(1), TrafficDrift(2)
    assert a.advance(IDS) != b.advance(IDS)
    a.advance(IDS[:3])
    assert set(a.factors()) == set(IDS[:3])


def test_slow_lane_clears_only_what_a_plan_carried():
    lane = SlowLane()
    first = lane.add("capacity a", forced=False)
    carried = lane.pending()
    late = lane.add("capacity b", forced=True)  # queued while the plan was being written
    assert lane.forced()
    lane.clear(carried)
    assert lane.pending() == [late]
    assert "1 queued change(s): capacity b" == lane.summary()
    assert lane.drop_all() == [late] and lane.pending() == []
    assert first not in lane.pending()
