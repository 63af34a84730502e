"""The plan store against the real emulator process: versions, the pointer, damage, the kill switch."""

from __future__ import annotations

import json
import threading

import boto3
import pytest
from botocore.config import Config

from planner.fleet import demo_fleet
from planner.planning import build_plan
from services.plan.model import Plan, PlanInvalid
from services.plan.store import PlanNotFound, PlanStore, StoreUnavailable, VersionExists
from tests.processes import free_port

FLEET = demo_fleet()


def make_plan(version: int, reason: str = "test") -> Plan:
    return build_plan(FLEET, version, reason=reason, lane="slow")


@pytest.fixture
def store(emulator, unique) -> PlanStore:
    s = PlanStore(f"plans-{unique}", "us-east-1")
    s.ensure_bucket()
    return s


def no_listing(store: PlanStore) -> None:
    """Make any listing call on this store's client fail the test."""

    def refuse(**_):
        raise AssertionError("the store listed the bucket")

    store.s3.meta.events.register("before-call.s3.ListObjectsV2", refuse)
    store.s3.meta.events.register("before-call.s3.ListObjects", refuse)
    store.s3.meta.events.register("before-call.s3.ListObjectVersions", refuse)


def test_ensure_bucket_creates_a_versioned_bucket_and_is_idempotent(emulator, unique):
    s = PlanStore(f"fresh-{unique}", "us-east-1")
    s.ensure_bucket()
    s.ensure_bucket()
    assert s.s3.get_bucket_versioning(Bucket=s.bucket)["Status"] == "Enabled"


def test_put_get_round_trip_under_the_documented_key(store):
    plan = make_plan(1)
    store.put(plan)
    assert store.key_for(1) == "plans/us-east-1/0000000001.json"
    raw = store.s3.get_object(Bucket=store.bucket, Key="plans/us-east-1/0000000001.json")["Body"].read()
    assert raw == plan.to_json()
    assert store.get(1) == plan
    with pytest.raises(PlanNotFound) as err:
        store.get(2)
    assert err.value.key == store.key_for(2)


def test_a_version_is_never_overwritten(store):
    first = make_plan(1, "first")
    store.put(first)
    with pytest.raises(VersionExists):
        store.put(make_plan(1, "second"))
    assert store.get(1).reason == "first"
    versions = store.s3.list_object_versions(Bucket=store.bucket, Prefix=store.key_for(1))["Versions"]
    assert len(versions) == 1


def test_versions_strictly_increase_and_newest_needs_no_listing(store):
    published = [store.publish(lambda v: make_plan(v, f"p{v}")).version for _ in range(6)]
    assert published == [1, 2, 3, 4, 5, 6]
    no_listing(store)
    assert store.newest_version() == 6
    assert store.newest().reason == "p6"


def test_publish_moves_on_when_another_writer_takes_the_version(store, emulator):
    rival = PlanStore(store.bucket, "us-east-1")
    store.publish(lambda v: make_plan(v))
    calls = []

    def make(version: int) -> Plan:
        calls.append(version)
        if len(calls) == 1:
            rival.put(make_plan(version, "rival"))  # the rival wins this version between our read and our put
        return make_plan(version, "mine")

    mine = store.publish(make)
    assert calls == [2, 3]
    assert mine.version == 3
    assert store.get(2).reason == "rival"
    assert store.get(3).reason == "mine"


def test_newest_version_finds_plans_a_lagging_or_broken_pointer_misses(store):
    for _ in range(2):
        store.publish(lambda v: make_plan(v))
    # Writers that died between the plan put and the pointer update: plans 3..9 exist, pointer says 2.
    for v in range(3, 10):
        store.s3.put_object(Bucket=store.bucket, Key=store.key_for(v), Body=make_plan(v).to_json())
    no_listing(store)
    assert (
        json.loads(store.s3.get_object(Bucket=store.bucket, Key=store.pointer_key)["Body"].read())["version"]
        == 2
    )
    assert store.newest_version() == 9
    store.s3.put_object(Bucket=store.bucket, Key=store.pointer_key, Body=b"{not json")
    assert store.newest_version() == 9
    store.s3.put_object(
        Bucket=store.bucket,
        Key=store.pointer_key,
        Body=json.dumps({"version": 40, "key": store.key_for(40)}).encode(),
    )
    assert store.newest_version() == 9


def test_pointer_never_moves_backward(store):
    store.put(make_plan(1))
    store.put(make_plan(3))
    store.put(make_plan(2))  # a slow writer finishing late
    pointer = json.loads(store.s3.get_object(Bucket=store.bucket, Key=store.pointer_key)["Body"].read())
    assert pointer == {**pointer, "version": 3, "key": store.key_for(3)}


def test_empty_store_has_no_newest(store):
    assert store.newest_version() is None
    assert store.newest() is None
    assert store.history() == []


@pytest.mark.parametrize(
    "damage",
    ["garbage", "checksum", "wrong_version", "schema"],
)
def test_a_damaged_plan_object_raises_plan_invalid_naming_the_key(store, damage):
    store.publish(lambda v: make_plan(v))
    key = store.key_for(2)
    good = json.loads(make_plan(2).to_json())
    if damage == "garbage":
        body = b"\x00\xffnot a plan"
    elif damage == "checksum":
        good["endpoints"][0]["targets"][0]["weight"] = 7  # content changed, checksum not
        body = json.dumps(good).encode()
    elif damage == "wrong_version":
        body = make_plan(5).to_json()  # a valid plan, under another version's key
    else:
        del good["endpoints"]
        body = json.dumps(good).encode()
    # Written with plain boto3 (not the store), as a buggy or malicious writer would.
    boto3.client("s3").put_object(Bucket=store.bucket, Key=key, Body=body)
    with pytest.raises(PlanInvalid) as err:
        store.get(2)
    assert err.value.key == key
    assert key in str(err.value)
    assert store.newest_version() == 2  # it is there; it is just not valid
    with pytest.raises(PlanInvalid):
        store.newest()


def test_history_pages_newest_first(store):
    for _ in range(12):
        store.publish(lambda v: make_plan(v))
    assert store.history(limit=5) == [12, 11, 10, 9, 8]
    assert store.history(before=8, limit=5) == [7, 6, 5, 4, 3]
    assert store.history(before=3, limit=5) == [2, 1]
    assert store.history(before=1, limit=5) == []
    assert store.history(limit=50) == list(range(12, 0, -1))


def test_freeze_marker_is_the_kill_switch(store):
    assert store.freeze_state() is None
    state = store.freeze("bad plans", "alice")
    assert (state.reason, state.by) == ("bad plans", "alice")
    raw = json.loads(
        store.s3.get_object(Bucket=store.bucket, Key="control/us-east-1/freeze.json")["Body"].read()
    )
    assert raw["reason"] == "bad plans"
    assert store.freeze_state() == state
    store.thaw("alice")
    assert store.freeze_state() is None
    # A marker nobody can read still freezes: its existence is the switch.
    store.s3.put_object(Bucket=store.bucket, Key=store.freeze_key, Body=b"??")
    assert store.freeze_state() is not None


def test_concurrent_writers_lose_and_duplicate_no_version(store):
    writers = [PlanStore(store.bucket, "us-east-1") for _ in range(6)]
    reasons: list[str] = []
    lock = threading.Lock()

    def run(i: int, w: PlanStore) -> None:
        for k in range(4):
            plan = w.publish(lambda v, i=i, k=k: make_plan(v, f"w{i}-{k}"))
            with lock:
                reasons.append(plan.reason)

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.newest_version() == 24
    stored = [store.get(v).reason for v in range(1, 25)]
    assert sorted(stored) == sorted(reasons)
    assert len(set(stored)) == 24
    for v in range(1, 25):
        versions = store.s3.list_object_versions(Bucket=store.bucket, Prefix=store.key_for(v))["Versions"]
        assert len(versions) == 1, f"version {v} was written {len(versions)} times"


def test_unreachable_s3_names_the_endpoint():
    url = f"http://127.0.0.1:{free_port()}"
    s3 = boto3.client("s3", endpoint_url=url, config=Config(retries={"max_attempts": 1}))
    s = PlanStore("any-bucket", "us-east-1", s3=s3)
    with pytest.raises(StoreUnavailable) as err:
        s.newest_version()
    assert url in str(err.value)
    assert "AWS_ENDPOINT_URL" in str(err.value)


def test_put_refuses_a_plan_of_another_region(store):
    other = PlanStore(store.bucket, "eu-west-1", s3=store.s3)
    with pytest.raises(Exception, match="region"):
        other.put(make_plan(1))
