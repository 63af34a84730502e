"""The cell map's model and its apply machine, against the real Route 53 change engine (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from enactor import cellmap as machine
from enactor import layout
from enactor import protocol as core
from services.cells.cellmap import CellMap, CellMapBody, map_diff, max_accounts, seed_body, validate_body
from services.plan.store import PlanInvalid
from services.route53.engine import InvalidChangeBatch, apply_changes
from services.route53.records import RecordSet, Zone

ZONE = "ddb.us-east-1.api.aws"
A = core.CoreSettings(enactor_id="cellmap-enactor-a")
B = core.CoreSettings(enactor_id="cellmap-enactor-b")


def _zone() -> Zone:
    return Zone.of(ZONE, [RecordSet(ZONE, "SOA", ttl=900, values=("ns-1.example. hostmaster.example. 1 7200 900 1209600 86400",)),
                          RecordSet(ZONE, "NS", ttl=172800, values=("ns-1.example.",))], zone_id="ZCELLMAP")


def _apply(zone: Zone, unit: machine.Unit) -> Zone:
    for batch in unit.batches:
        zone = apply_changes(zone, batch.changes)
    return zone


def _cnames(zone: Zone) -> dict[str, str]:
    return {r.name.rstrip("."): r.values[0].rstrip(".") for r in zone.records.values() if r.type == "CNAME"}


def test_the_limit_is_the_zone_quota_less_its_own_records():
    assert max_accounts() == 9_996
    validate_body({"accounts": [{"account": f"{i:012d}"} for i in range(9_996)]})
    with pytest.raises(ValidationError) as err:
        validate_body({"accounts": [{"account": f"{i:012d}"} for i in range(9_997)]})
    assert err.value.errors()[0]["loc"] == ("accounts",) and "9996" in err.value.errors()[0]["msg"]
    # A raised quota raises the limit.
    validate_body({"zone_record_quota": 20_000, "accounts": [{"account": f"{i:012d}"} for i in range(9_997)]})


def test_bad_maps_are_refused_with_the_field():
    for data, field in (({"cells": ["cell-1", "cell-1"]}, "cells"), ({"cells": ["cell-x"]}, "cells"),
                        ({"cells": ["cell-1"], "accounts": [{"account": "1"}]}, "accounts"),
                        ({"cells": ["cell-1"], "accounts": [{"account": "100000000001", "cell": "cell-2"}]}, "accounts"),
                        ({"accounts": [{"account": "100000000001"}, {"account": "100000000001"}]}, "accounts")):
        with pytest.raises(ValidationError) as err:
            validate_body(data)
        assert err.value.errors()[0]["loc"][0] == field, data


def test_a_stored_map_is_checked_like_a_plan():
    m = CellMap.build(seed_body(3, 12), region="us-east-1", version=4)
    assert CellMap.from_json(m.to_json()) == m
    with pytest.raises(PlanInvalid):
        CellMap.from_json(m.to_json().replace(b'"cell-2"', b'"cell-3"'))  # checksum


def test_seed_leaves_every_fourth_account_on_the_legacy_name():
    body = seed_body(3, 12)
    assert [a.cell for a in body.accounts[:4]] == ["cell-1", "cell-2", "cell-3", None]
    m = CellMap.build(body, region="us-east-1", version=1)
    assert m.names()["100000000004.ddb.us-east-1.api.aws"] == "dynamodb.us-east-1.api.aws"
    assert m.names()["100000000002.ddb.us-east-1.api.aws"] == "cell-2.ddb.us-east-1.api.aws"


def test_a_whole_map_of_1000_accounts_applies_in_batches_route53_accepts():
    m = CellMap.build(seed_body(3, 1000), region="us-east-1", version=1)
    unit = machine.decide(A, "ZCELLMAP", tuple(_zone().records.values()), m, 1000.0)
    assert unit.kind == "apply" and unit.changes == 1000 and len(unit.batches) == 3
    zone = _apply(_zone(), unit)
    assert _cnames(zone) == m.names()
    view = layout.read_endpoint(ZONE, zone.records.values())
    assert view.applied_value.version == 1 and view.lock_value.holder == "cellmap-enactor-a"
    # Applied: nothing more to do; a move is one UPSERT.
    assert machine.decide(B, "ZCELLMAP", tuple(zone.records.values()), m, 1001.0).kind == "idle"
    moved = CellMap.build(m.with_move("100000000004", "cell-1"), region="us-east-1", version=2)
    unit = machine.decide(B, "ZCELLMAP", tuple(zone.records.values()), moved, 1002.0)
    assert unit.changes == 1 and len(unit.batches) == 1
    assert _cnames(_apply(zone, unit))["100000000004.ddb.us-east-1.api.aws"] == "cell-1.ddb.us-east-1.api.aws"


def test_a_held_lock_waits_and_a_stale_unit_changes_nothing():
    m1 = CellMap.build(seed_body(2, 6), region="us-east-1", version=1)
    m2 = CellMap.build(m1.with_move("100000000001", "cell-2"), region="us-east-1", version=2)
    listed = tuple(_zone().records.values())
    # a and b both list the empty zone; a applies map 2 first; b's unit for map 1 was decided on the old listing.
    slow = machine.decide(B, "ZCELLMAP", listed, m1, 1000.0)
    zone = _apply(_zone(), machine.decide(A, "ZCELLMAP", listed, m2, 1000.0))
    with pytest.raises(InvalidChangeBatch):
        _apply(zone, slow)  # its preamble (or its create of the lock) fails: the batch changes nothing
    # A lock that another enactor holds (multi-batch unit in flight) means: wait.
    big = CellMap.build(seed_body(2, 1200), region="us-east-1", version=3)
    unit = machine.decide(A, "ZCELLMAP", tuple(zone.records.values()), big, 2000.0)
    half = apply_changes(zone, unit.batches[0].changes)
    assert machine.decide(B, "ZCELLMAP", tuple(half.records.values()), big, 2001.0).kind == "wait"
    # ... until the lease expires; then b takes over and finishes, a's next batch is refused.
    takeover = machine.decide(B, "ZCELLMAP", tuple(half.records.values()), big, 2000.0 + A.lock_ttl_s + 1)
    done = _apply(half, takeover)
    assert _cnames(done) == big.names()
    with pytest.raises(InvalidChangeBatch):
        apply_changes(done, unit.batches[1].changes)


_accounts = st.lists(st.tuples(st.integers(1, 400), st.sampled_from([None, "cell-1", "cell-2", "cell-3"])), max_size=60)


@settings(max_examples=40, deadline=None)
@given(first=_accounts, second=_accounts)
def test_any_map_then_any_other_leaves_exactly_the_second_in_dns(first, second):
    def body(pairs):
        uniq = {f"{100_000_000_000 + k:012d}": c for k, c in pairs}
        return CellMapBody.model_validate({"cells": ["cell-1", "cell-2", "cell-3"],
                                           "accounts": [{"account": a, "cell": c} for a, c in uniq.items()]})

    m1 = CellMap.build(body(first), region="us-east-1", version=1)
    m2 = CellMap.build(body(second), region="us-east-1", version=2)
    zone = _apply(_zone(), machine.decide(A, "ZCELLMAP", tuple(_zone().records.values()), m1, 10.0))
    zone = _apply(zone, machine.decide(B, "ZCELLMAP", tuple(zone.records.values()), m2, 20.0))
    assert _cnames(zone) == m2.names()
    diff = map_diff(m1, m2)
    assert {m.account for m in diff.moves} == {a for a in {x.account for x in m1.accounts} | {x.account for x in m2.accounts}
                                               if m1.cell_of(a) != m2.cell_of(a) or m1.has(a) != m2.has(a)}
