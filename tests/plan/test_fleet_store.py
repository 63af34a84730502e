"""The fleet store against the real emulator process: seeding, compare-and-swap, damage."""

from __future__ import annotations

import json
import threading

import pytest

from planner.fleet import demo_fleet
from services.plan.fleet_store import FleetConflict, FleetDocumentInvalid, FleetStore
from services.plan.store import PlanStore

FLEET = demo_fleet().model_dump(mode="json")


@pytest.fixture
def fleets(emulator, unique) -> FleetStore:
    plans = PlanStore(f"fleet-{unique}", "us-east-1")
    plans.ensure_bucket()
    return FleetStore.beside(plans)


def test_seed_only_into_an_empty_store_then_every_write_is_a_compare_and_swap(fleets: FleetStore) -> None:
    assert fleets.read() is None
    first = fleets.write(FLEET, change="seed", by="a", over=None)
    assert first.revision == 1 and fleets.read().etag == first.etag
    with pytest.raises(FleetConflict):
        fleets.write(FLEET, change="seed again", by="b", over=None)  # only an empty store is seeded
    drained = {**FLEET, "drained_azs": ["use1-az4"]}
    second = fleets.write(drained, change="drain use1-az4", by="a", over=first)
    assert second.revision == 2
    with pytest.raises(FleetConflict):
        fleets.write(FLEET, change="stale writer", by="b", over=first)  # computed from revision 1
    now = fleets.read()
    assert (now.revision, now.fleet["drained_azs"], now.change, now.by) == (2, ["use1-az4"], "drain use1-az4", "a")


def test_racing_writers_never_lose_a_change(fleets: FleetStore) -> None:
    """Eight threads each add their own AZ name to a list, read-modify-CAS with retries: all eight land."""
    fleets.write({**FLEET, "azs": list(FLEET["azs"])}, change="seed", by="t", over=None)
    errors: list[BaseException] = []

    def add(name: str) -> None:
        try:
            for _ in range(100):
                current = fleets.read()
                try:
                    fleets.write({**current.fleet, "azs": [*current.fleet["azs"], name]}, change=name, by=name,
                                 over=current)
                    return
                except FleetConflict:
                    continue
            raise AssertionError(f"{name} never won")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(f"t{k}",)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    final = fleets.read()
    assert final.revision == 9
    assert sorted(a for a in final.fleet["azs"] if a.startswith("t")) == [f"t{k}" for k in range(8)]


def test_a_damaged_document_is_reported_with_its_etag_and_can_be_replaced(fleets: FleetStore) -> None:
    fleets.s3.put_object(Bucket=fleets.bucket, Key=fleets.key, Body=b"{not json")
    with pytest.raises(FleetDocumentInvalid) as caught:
        fleets.read()
    assert caught.value.etag
    fleets.s3.put_object(Bucket=fleets.bucket, Key=fleets.key, Body=json.dumps({"revision": 0, "fleet": {}}))
    with pytest.raises(FleetDocumentInvalid, match="positive integer"):
        fleets.read()
    etag = fleets.s3.head_object(Bucket=fleets.bucket, Key=fleets.key)["ETag"]
    replaced = fleets.write(FLEET, change="load", by="op", over=None, over_etag=etag)
    assert fleets.read().etag == replaced.etag
