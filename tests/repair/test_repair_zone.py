"""`dnsctl repair` against a real hosted zone in the emulator, broken the October way.

The zone is made by the protocol core itself (tests/enactor/world.py: the same code the enactors
run) applying plans 1..4, copied into the emulator, and then broken as the clean-up race broke it:
the tree the root serves is deleted under it. No enactor or planner runs; the CLI runs as a
real process against the emulator and (to rebuild a tree) the plan store in the emulator's S3.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from enactor import layout
from enactor import protocol as p
from services.dns.snapshot import read_zone
from services.plan.store import PlanStore
from services.route53.records import Change, RecordSet
from services.zones import ensure_zones, find_zone_id
from tests.enactor.world import World, empty_zone, endpoint_plan, make_plan
from tests.race.lab import run_cli

ORDER = {"leaf": 0, "node": 0, "interior": 1, "top": 2, "meta": 3, "rollback": 4, "root": 5, "lock": 6, "applied": 6}


@dataclass
class Broken:
    endpoint: str
    zone_id: str
    client: object
    bucket: str
    env: dict[str, str]

    def view(self) -> layout.EndpointZone:
        zone, _ = read_zone(self.client, self.zone_id, layout.root_name(self.endpoint))
        return layout.read_endpoint(self.endpoint, zone)

    def records(self) -> set[RecordSet]:
        return set(read_zone(self.client, self.zone_id, layout.root_name(self.endpoint))[0])

    def change(self, changes: list[Change]) -> None:
        self.client.change_resource_record_sets(HostedZoneId=self.zone_id, ChangeBatch={"Changes": [c.to_boto() for c in changes]})

    def repair(self, *args: str, stdin: str | None = None):
        return run_cli("repair", self.endpoint, *args, env=self.env, stdin=stdin)


def plan(endpoint: str, version: int):
    return make_plan(version, [endpoint_plan(endpoint, 3, weight=lambda i: 10 + (i + version) % 5)])


@pytest.fixture(params=[False, True], ids=["legacy", "guarded"])
def broken(request, emulator, unique, tmp_path) -> Broken:
    guard = request.param
    client = emulator.client("route53")
    endpoint = f"repair-{unique}.dnsctl-test.example"
    root = layout.root_name(endpoint)
    ensure_zones([endpoint], client)
    zone_id = find_zone_id(endpoint, client)
    store = PlanStore(f"repair-{unique}", "us-east-1", s3=emulator.client("s3"))
    store.ensure_bucket()
    world = World((root,), zones={root: empty_zone(root, zone_id)})
    world.add_enactor(p.CoreSettings("enactor-a", version_guard=guard, keep_plans=5))
    for v in range(1, 5):
        store.put(plan(endpoint, v))
        world.publish(plan(endpoint, v))
        world.run_idle("enactor-a", root)
    made = [r for r in world.zones[root].zone if layout.role_of(r.name, root)[0] in ORDER and r.type not in ("SOA", "NS")]
    # Bottom nodes (addresses) before the nodes aliasing them: Route 53 checks alias targets in order.
    made.sort(key=lambda r: (ORDER[layout.role_of(r.name, root)[0]], r.alias is not None))
    b = Broken(endpoint, zone_id, client, store.bucket,
               {**emulator.env(), "DNSCTL_BUCKET": store.bucket, "DNSCTL_REGION": "us-east-1", "DNSCTL_STATE_DIR": str(tmp_path)})
    b.change([Change("CREATE", r) for r in made])
    active = b.view().active_tree
    assert active is not None and active.version == 4
    # The clean-up race: the tree the root serves is deleted under it.
    b.change([Change("DELETE", r) for r in active.records])
    view = b.view()
    assert view.dangling and view.root_targets()["A"] == active.tree_id
    return b


def test_dry_run_prints_the_batch_and_changes_nothing(broken):
    before = broken.records()
    result = broken.repair("--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "MISSING (dangling)" in out and "intact trees: plan 3" in out
    assert "batch 1/1 (heal" in out
    assert f"DELETE _lock.{broken.endpoint}. TXT" in out and f"CREATE _lock.{broken.endpoint}. TXT" in out
    assert f"UPSERT {broken.endpoint}. A ALIAS -> t-" in out and f"UPSERT rollback.{broken.endpoint}. A ALIAS" in out
    assert "dry run: nothing was changed" in out
    assert broken.records() == before


def test_repair_points_root_and_rollback_at_the_newest_intact_tree(broken):
    result = broken.repair("--newest")
    assert result.returncode == 0, result.stdout + result.stderr
    view = broken.view()
    assert not view.dangling and view.active_version == 3
    tree = view.active_tree.tree_id
    assert view.root_targets() == {"A": tree} and view.rollback_targets() == {"A": tree}
    lock = view.lock_value
    assert lock.holder == "dnsctl-repair" and lock.expires <= time.time() + 1  # released by the last batch
    if view.applied is not None:
        # Guarded stacks: the compare-and-swap word follows, marked as an operator's restore.
        assert view.applied_value == layout.AppliedValue(3, tree)
        assert "operator=" in layout.unquote_txt(view.applied.values[0])
    # The repaired zone is one the core can work on again: a legacy flip of plan 5 succeeds.
    world_settings = p.CoreSettings("enactor-b", version_guard=view.applied is not None)
    state, request = p.start(broken.endpoint, broken.zone_id)
    state, request, _ = p.step(world_settings, state, p.PlanRead(plan(broken.endpoint, 5)))
    for _ in range(10):
        if isinstance(request, p.ListRecords):
            obs = p.RecordsListed(tuple(read_zone(broken.client, broken.zone_id, layout.root_name(broken.endpoint))[0]), time.time())
        elif isinstance(request, p.ReadRecords):  # the guarded core's targeted reads, one page each
            pages = [broken.client.list_resource_record_sets(HostedZoneId=broken.zone_id, StartRecordName=n, StartRecordType=t, MaxItems=str(m))
                     for n, t, m in request.queries]
            obs = p.RecordsRead(tuple(RecordSet.from_boto(r) for pg in pages for r in pg["ResourceRecordSets"]), time.time())
        elif isinstance(request, p.SubmitBatch):
            reply = broken.client.change_resource_record_sets(
                HostedZoneId=broken.zone_id, ChangeBatch={"Changes": [c.to_boto() for c in request.changes]})
            obs = p.BatchAccepted(time.time(), reply["ChangeInfo"]["Id"])
        elif isinstance(request, p.AwaitInsync):
            obs = p.Insync(True, time.time())
        else:
            break
        state, request, notes = p.step(world_settings, state, obs)
        assert not [n for n in notes if n.event == "flip_failed"], notes
    assert broken.view().active_version == 5


def test_rebuilds_a_plan_whose_tree_is_gone(broken):
    result = broken.repair("--to-version", "4", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    view = broken.view()
    assert not view.dangling and view.active_version == 4
    assert view.active_tree.complete and len(view.active_tree.meta.members) == 3


def test_a_held_lock_is_taken_only_with_break_lock_and_confirmation(broken):
    view = broken.view()
    held = RecordSet(layout.lock_name(broken.endpoint), "TXT", ttl=60,
                     values=(layout.LockValue("enactor-stuck", int(time.time()) + 600, 99).render(),))
    broken.change([Change("DELETE", view.lock), Change("CREATE", held)])
    before = broken.records()

    refused = broken.repair()
    assert refused.returncode == 3 and "held by enactor-stuck" in refused.stderr and "--break-lock" in refused.stderr
    declined = broken.repair("--break-lock", stdin="n\n")
    assert declined.returncode == 1 and "left to its holder" in declined.stderr
    assert broken.records() == before

    taken = broken.repair("--break-lock", "--yes")
    assert taken.returncode == 0, taken.stdout + taken.stderr
    after = broken.view()
    assert not after.dangling and after.lock_value.holder == "dnsctl-repair" and after.lock_value.counter == 100


def test_bad_input_changes_nothing(broken):
    before = broken.records()
    missing = run_cli("repair", "no-such-zone.dnsctl-test.example", env=broken.env)
    assert missing.returncode == 2 and "no public hosted zone" in missing.stderr
    unknown = broken.repair("--to-version", "99")
    assert unknown.returncode == 2 and "0000000099" in unknown.stderr
    both = broken.repair("--newest", "--to-version", "3")
    assert both.returncode == 2
    assert broken.records() == before
