"""A guarded run on targeted reads replays on the emulator: the heads page, the zone's size
(GetHostedZone), the plans behind the trees (the plan store) and the model's fresh tree ids on a
unit's reads, so every step does on Route 53 what it did in the model (lab/checker/replay.py)."""

from __future__ import annotations

from dataclasses import replace

from enactor import protocol
from lab.checker.replay import Replayer
from lab.checker.world import Bounds
from tests.checker.schedules import walk


def test_a_guarded_walk_on_targeted_reads_replays_on_the_emulator(emulator):
    bounds = Bounds(guard=True, enactors=2, plans=3, keep_plans=1, lost_replies=0)
    replayer = Replayer(bounds, [], route53=emulator.client("route53"), s3=emulator.client("s3"), echo=lambda line: None)
    world = replayer.world
    # A small heads page: these zones take the targeted path, as zones past 300 record sets do.
    world.settings = tuple(replace(s, heads_page=4) for s in world.settings)
    replayer.labels = walk(world, 150)
    try:
        result = replayer.run()
    finally:
        replayer.cleanup()
    assert result.agrees and len(result.steps) == len(replayer.labels)
    requests = [m.request for m in world._moves.values()]
    assert any(isinstance(r, protocol.ReadRecords) and r.zone_size for r in requests)
    assert any(isinstance(r, protocol.ReadPlans) for r in requests)
    assert any(protocol.is_cleanup(r) for r in requests) and any(protocol.is_flip(r) and r.plan_version == 3 for r in requests)
