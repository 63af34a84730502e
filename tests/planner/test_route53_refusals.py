"""The planner refuses, with 422 naming the field, every LB Route 53 would refuse (issue 11 item 6).

Over real HTTP against one planner process: repeated addresses, ids that are no DNS label or
whose leaf label in the tree would pass 63 characters, more addresses than one change batch
holds, and an endpoint whose tree cannot fit its zone's record quota. A refused request changes
nothing: the fleet and the newest plan stay as they were. The tree is counted by the enactor
core's own function, so the quota test reads the limit from it rather than from a formula.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from planner.fleet import FleetError, demo_fleet, generate_fleet, tree_of, validate_fleet
from planner.planning import endpoint_plans
from tests.planner.conftest import RunningPlanner, start_planner

A_ONLY = "dynamodb.us-east-1.amazonaws.com"
DUAL = "dynamodb.us-east-1.api.aws"


def _quota_fleet(lbs: int) -> dict:
    """The demo fleet cut to the A-only endpoint, with a zone quota that fits exactly `lbs` of its LBs."""
    data = demo_fleet().model_dump(mode="json")
    data["endpoints"] = [e for e in data["endpoints"] if e["name"] == A_ONLY]
    data["load_balancers"] = [b for b in data["load_balancers"] if b["endpoint"] == A_ONLY][:lbs]
    data["endpoints"][0]["zone_record_quota"] = 10_000
    fleet = validate_fleet(data)
    # The core's tree of these LBs, plus the zone's fixed records: the smallest quota that still fits.
    tree = len(tree_of(endpoint_plans(fleet)[0]))
    data["endpoints"][0]["zone_record_quota"] = tree + 2 + 2 * 1 + 2
    validate_fleet(data)
    return data


@pytest.fixture(scope="module")
def planner(emulator, tmp_path_factory) -> Iterator[RunningPlanner]:
    tmp = tmp_path_factory.mktemp("refusals")
    path = tmp / "fleet.yaml"
    path.write_text(yaml.safe_dump(_quota_fleet(4)))
    p = start_planner(tmp, emulator.url, args=("--fleet-file", str(path)))
    try:
        p.wait_for_version(1)
        yield p
    finally:
        p.process.stop()


def _lb(**fields) -> dict:
    return {"id": "new-lb", "az": "use1-az1", "endpoint": A_ONLY, "ipv4": ["192.0.2.200"], "capacity": 100, **fields}


@pytest.mark.parametrize(
    ("fields", "loc", "words"),
    [
        ({"ipv4": ["192.0.2.200", "192.0.2.200"]}, ["body", "ipv4"], "192.0.2.200 is repeated"),
        ({"id": "x" * 64}, ["body", "id"], "DNS label"),
        ({"id": "edge-"}, ["body", "id"], "DNS label"),
        ({"ipv4": [f"10.1.{i // 256}.{i % 256}" for i in range(1000)]}, ["body", "ipv4"], "do not fit one Route 53 change batch"),
    ],
    # No "leaf label over 63" case: the shared-node layout names nodes by digest and keeps LB ids in
    # SetIdentifiers ("<id>@<az>", at most 128 characters), so an id that is a DNS label fits everywhere.
    ids=["repeated-address", "id-over-63", "id-not-a-label", "addresses-over-one-batch"],
)
def test_an_lb_route53_would_refuse_gets_422_naming_the_field(planner, fields, loc, words):
    before_fleet = planner.http().get("/v1/fleet").json()
    before_plan = planner.status()["newest_version"]
    with planner.http() as http:
        r = http.post("/v1/fleet/load-balancers", json=_lb(**fields))
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert any(d["loc"] == loc and words in d["msg"] for d in detail), detail
    assert planner.http().get("/v1/fleet").json() == before_fleet
    assert planner.status()["newest_version"] == before_plan


def test_repeated_ipv6_address_is_refused_after_normalisation():
    data = demo_fleet().model_dump(mode="json")
    lb = next(b for b in data["load_balancers"] if b["endpoint"] == DUAL)
    lb["ipv6"] = ["2001:db8::1", "2001:DB8:0::1"]
    with pytest.raises(FleetError) as info:
        validate_fleet(data)
    assert any(loc.endswith(".ipv6") and "2001:db8::1 is repeated" in msg for loc, msg in info.value.errors)


def test_an_lb_whose_tree_cannot_fit_the_zone_quota_is_refused_and_changes_nothing(planner):
    before = planner.status()["newest_version"]
    with planner.http() as http:
        r = http.post("/v1/fleet/load-balancers", json=_lb(id="one-too-many"), params={"force": True})
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert any(d["loc"][-1] == "zone_record_quota" and "quota of" in d["msg"] for d in detail), detail
        assert "one-too-many" not in {b["id"] for b in http.get("/v1/fleet").json()["load_balancers"]}
        # A change that keeps the tree's size is still accepted.
        fleet = http.get("/v1/fleet").json()
        lb = fleet["load_balancers"][0]["id"]
        assert http.patch(f"/v1/fleet/load-balancers/{lb}", json={"capacity": 7000}).status_code == 200
    assert planner.status()["newest_version"] == before


def test_a_fleet_file_over_the_quota_stops_nothing_but_the_bad_fleet(tmp_path):
    data = _quota_fleet(4)
    data["endpoints"][0]["zone_record_quota"] -= 1
    with pytest.raises(FleetError) as info:
        validate_fleet(data, "fleet.yaml")
    assert [loc for loc, _ in info.value.errors] == ["endpoints.0.zone_record_quota"]


@pytest.mark.parametrize(("n", "endpoint"), [(8000, A_ONLY), (4000, DUAL)], ids=["8000-a-only", "4000-dual-stack"])
def test_generated_fleets_beyond_one_thousand(n, endpoint):
    """The generator builds them; whether one tree fits the default quota is the core's layout's say."""
    big = generate_fleet(n, seed=1, endpoints=(endpoint,), zone_record_quota=100_000)
    assert len(big.load_balancers) == n and [e.name for e in big.endpoints] == [endpoint]
    assert all(b.ipv6 for b in big.load_balancers) == (endpoint == DUAL)
    assert len({a for b in big.load_balancers for a in b.ipv4}) == 2 * n
    tree = len(tree_of(endpoint_plans(big)[0]))
    try:
        generate_fleet(n, seed=1, endpoints=(endpoint,))
        assert tree < 10_000
    except FleetError as exc:
        assert tree > 10_000 - 10 and [loc for loc, _ in exc.errors] == ["endpoints.0.zone_record_quota"]
        assert f"is {tree} record sets" in str(exc)
