"""Two cells on one emulator are two DNS management systems: neither reads or writes the other's
plans, locks or zones, and freezing or breaking one leaves the other's records as they are."""

from __future__ import annotations

import time

import pytest

from enactor.chaos import MAX_LOCK_FAILURES
from services.cells.naming import cell_endpoint
from services.plan.model import Plan
from tests.cells.cellstack import REGION, CellLab


@pytest.fixture(scope="module")
def lab(cell_emulator, tmp_path_factory):
    import uuid

    lab = CellLab(cell_emulator, f"cells-{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("cells"))
    try:
        lab.start_cell("cell-1", ("enactor-a", "enactor-b"))
        lab.start_cell("cell-2", ("enactor-a",))
        yield lab
    finally:
        lab.stop()


def _converged(lab: CellLab) -> dict[str, int]:
    out = {}
    for name, cell in lab.cells.items():
        version = cell.publish("converge")
        lab.wait_applied(cell.endpoint, version)
        out[name] = version
    return out


def test_each_cell_has_its_own_stream_zone_lock_and_enactors(lab):
    versions = _converged(lab)
    keys = lab.keys()
    # Every object is under one cell's prefix; nothing in the regional namespace was written.
    assert keys and all(k.startswith(("cells/cell-1/", "cells/cell-2/")) for k in keys), keys
    for name, cell in lab.cells.items():
        store = lab.store(name)
        assert store.newest_version() == versions[name]
        plan = store.get(versions[name])
        assert plan.cell == name and [e.name for e in plan.endpoints] == [cell.endpoint]
        view = lab.view(cell.endpoint)
        assert view.lock_value.holder.startswith(f"{name}-enactor-")
        # Addresses are the cell's own block (planner/cells.py), so answers cannot be mixed up.
        block = {"cell-1": "10.128.4.", "cell-2": "10.128.8."}[name]
        assert all(a.startswith(block) for t in plan.endpoints[0].targets for a in t.ipv4)
    assert lab.store(None).newest_version() is None  # the regional stream stays empty


def test_a_frozen_cell_stops_and_the_other_carries_on_untouched(lab):
    _converged(lab)
    one, two = lab.cells["cell-1"], lab.cells["cell-2"]
    with one.http() as http:
        assert http.post("/v1/planner/freeze", json={"reason": "cell-1 under test", "by": "test"}).status_code == 200
    try:
        assert lab.store("cell-2").freeze_state() is None  # the kill switch is the cell's own
        before = lab.records(one.endpoint)
        for _ in range(3):
            lab.wait_applied(two.endpoint, two.publish("cell-2 keeps going"))
        time.sleep(1.0)
        assert lab.records(one.endpoint) == before
        assert all(lab.cells["cell-1"].enactor_status(n)["frozen"] for n in one.enactors)
    finally:
        with one.http() as http:
            http.post("/v1/planner/thaw", json={"by": "test"})


def test_a_chaosd_enactor_in_one_cell_changes_nothing_in_the_other(lab):
    import httpx

    _converged(lab)
    one, two = lab.cells["cell-1"], lab.cells["cell-2"]
    headers = {"Authorization": "Bearer cells-test-token"}
    for name in one.enactors:  # every cell-1 enactor keeps losing the lock: cell-1 cannot apply
        r = httpx.post(one.enactors[name][1] + "/v1/chaos", json={"lock_failures": MAX_LOCK_FAILURES}, headers=headers, timeout=10)
        assert r.status_code == 200, r.text
    try:
        before_one = lab.view(one.endpoint).active_version
        one.publish("cell-1 stuck")
        before_two = lab.records(two.endpoint)
        time.sleep(2.0)
        assert lab.records(two.endpoint) == before_two  # nothing of cell-2 moved while cell-1 struggled
        lab.wait_applied(two.endpoint, two.publish("cell-2 unaffected"))
        assert lab.view(one.endpoint).active_version == before_one
    finally:
        for name in one.enactors:
            httpx.delete(one.enactors[name][1] + "/v1/chaos", headers=headers, timeout=10)


def test_a_cell_refuses_plans_that_name_another_cell_or_come_from_its_stream(lab):
    versions = _converged(lab)
    one, two = lab.cells["cell-1"], lab.cells["cell-2"]
    before = lab.records(one.endpoint)
    # 1. A plan in cell-2's own stream that names cell-1's endpoint: cell-2's enactor never touches it.
    store2 = lab.store("cell-2")
    foreign = lab.store("cell-1").get(versions["cell-1"])
    planted = Plan.build(region=REGION, version=versions["cell-2"] + 1,
                         endpoints=[*store2.get(versions["cell-2"]).endpoints, *foreign.endpoints], reason="planted")
    store2.put(planted)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not two.events("enactor-a", "endpoint_outside_cell"):
        time.sleep(0.2)
    refused = two.events("enactor-a", "endpoint_outside_cell")
    assert refused and refused[0]["endpoint"] == one.endpoint and refused[0]["owner"] == "cell-1"
    assert one.endpoint in two.enactor_status("enactor-a")["refused_endpoints"]
    lab.wait_applied(two.endpoint, planted.version)  # its own endpoint of the same plan is applied
    # 2. cell-1's plan object copied byte for byte into cell-2's stream is rejected as invalid.
    raw = lab.s3.get_object(Bucket=lab.bucket, Key=lab.store("cell-1").key_for(versions["cell-1"]))["Body"].read()
    copied = Plan.from_json(raw).model_copy(update={"version": planted.version + 1})
    key = store2.key_for(planted.version + 1)
    lab.s3.put_object(Bucket=lab.bucket, Key=key, Body=raw.replace(
        f'"version":{versions["cell-1"]}'.encode(), f'"version":{copied.version}'.encode()))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not two.events("enactor-a", "plan_rejected"):
        time.sleep(0.2)
    assert two.events("enactor-a", "plan_rejected"), two.enactors["enactor-a"][0].output()[-2000:]
    assert lab.records(one.endpoint) == before
    assert cell_endpoint("cell-1", REGION) == one.endpoint
