"""The fleet model: the demo fleet, fleet files, the generator, and changes that must be validated."""

from __future__ import annotations

import json

import pytest
import yaml

from planner.fleet import (
    DEMO_AZS,
    MAX_GENERATED_LBS,
    FleetError,
    LoadBalancer,
    NotInFleet,
    demo_fleet,
    generate_fleet,
    load_fleet_file,
    validate_fleet,
)
from services.stack import ENACTORS

TALK_ENDPOINTS = {
    "dynamodb.us-east-1.amazonaws.com": ("A",),
    "dynamodb.us-east-1.api.aws": ("A", "AAAA"),
    "dynamodb-fips.us-east-1.amazonaws.com": ("A",),
}


def test_demo_fleet_is_modelled_on_the_talk():
    fleet = demo_fleet()
    assert fleet.region == "us-east-1"
    assert fleet.azs == tuple(az for _, az, _ in ENACTORS) == DEMO_AZS
    assert {e.name: e.record_types for e in fleet.endpoints} == TALK_ENDPOINTS
    assert all(e.hosted_zone == e.name for e in fleet.endpoints)
    assert len(fleet.load_balancers) >= 12
    assert len({b.capacity for b in fleet.load_balancers}) >= 3, "load balancers of mixed sizes"
    for ep in fleet.endpoints:
        assert {b.az for b in fleet.lbs_of(ep.name)} == set(fleet.azs), f"{ep.name} has LBs in every AZ"
    for b in fleet.lbs_of("dynamodb.us-east-1.api.aws"):
        assert b.ipv4 and b.ipv6


def fleet_data() -> dict:
    return demo_fleet().model_dump(mode="json")


def test_fleet_file_toml_and_yaml_load_the_same_fleet(tmp_path):
    data = fleet_data()
    data["load_balancers"] = data["load_balancers"][:5]
    yml = tmp_path / "fleet.yaml"
    yml.write_text(yaml.safe_dump(data))
    toml = tmp_path / "fleet.toml"
    lines = [f'region = "{data["region"]}"', f"azs = {json.dumps(data['azs'])}", ""]
    for ep in data["endpoints"]:
        lines += [
            "[[endpoints]]",
            f'name = "{ep["name"]}"',
            f"record_types = {json.dumps(ep['record_types'])}",
            "",
        ]
    for lb in data["load_balancers"]:
        lines += ["[[load_balancers]]"] + [f"{k} = {json.dumps(v)}" for k, v in lb.items()] + [""]
    toml.write_text("\n".join(lines))
    from_yaml, from_toml = load_fleet_file(yml), load_fleet_file(toml)
    assert from_yaml == from_toml
    assert len(from_toml.load_balancers) == 5


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d["load_balancers"][0].update(az="use1-az9"), "load_balancers.0.az"),
        (lambda d: d["load_balancers"][1].update(id=d["load_balancers"][0]["id"]), "load_balancers.1.id"),
        (lambda d: d["load_balancers"][0].update(endpoint="nope.example.com"), "load_balancers.0.endpoint"),
        (lambda d: d["load_balancers"][0].update(ipv4=["300.1.1.1"]), "load_balancers.0.ipv4"),
        (lambda d: d["load_balancers"][0].update(capacity=-5), "load_balancers.0.capacity"),
        (lambda d: d.update(drained_azs=["use1-az7"]), "drained_azs"),
    ],
)
def test_a_bad_fleet_file_names_the_field(tmp_path, mutate, where):
    data = fleet_data()
    mutate(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(FleetError) as err:
        load_fleet_file(path)
    assert any(loc.startswith(where) for loc, _ in err.value.errors), err.value.errors
    assert str(path) in str(err.value)


def test_dual_stack_lb_needs_ipv6():
    data = fleet_data()
    dual = next(lb for lb in data["load_balancers"] if lb["endpoint"] == "dynamodb.us-east-1.api.aws")
    dual["ipv6"] = []
    with pytest.raises(FleetError, match="AAAA"):
        validate_fleet(data)


def test_unreadable_or_unknown_fleet_files_fail_clearly(tmp_path):
    with pytest.raises(FleetError, match="cannot read"):
        load_fleet_file(tmp_path / "missing.toml")
    (tmp_path / "f.json").write_text("{}")
    with pytest.raises(FleetError, match="unknown format"):
        load_fleet_file(tmp_path / "f.json")
    (tmp_path / "f.toml").write_text("region = [")
    with pytest.raises(FleetError, match="not valid TOML"):
        load_fleet_file(tmp_path / "f.toml")
    (tmp_path / "f.yaml").write_text("- just a list")
    with pytest.raises(FleetError, match="mapping"):
        load_fleet_file(tmp_path / "f.yaml")


def test_generator_scales_to_1000_and_is_deterministic():
    big = generate_fleet(1000, seed=7)
    assert len(big.load_balancers) == 1000
    assert big == generate_fleet(1000, seed=7)
    assert big != generate_fleet(1000, seed=8)
    addresses = [a for b in big.load_balancers for a in (*b.ipv4, *b.ipv6)]
    assert len(addresses) == len(set(addresses))
    for ep in big.endpoints:
        assert {b.az for b in big.lbs_of(ep.name)} == set(big.azs)
    small = generate_fleet(3)
    assert {b.endpoint for b in small.load_balancers} == {e.name for e in small.endpoints}
    for bad in (2, MAX_GENERATED_LBS + 1):
        with pytest.raises(FleetError):
            generate_fleet(bad)
    with pytest.raises(FleetError, match="not demo endpoints"):
        generate_fleet(10, endpoints=("nope.example.com",))
    only = generate_fleet(10, endpoints=("dynamodb.us-east-1.api.aws",))
    assert [e.name for e in only.endpoints] == ["dynamodb.us-east-1.api.aws"] and len(only.load_balancers) == 10


def test_changes_make_new_validated_fleets_and_leave_the_old_one():
    fleet = demo_fleet()
    lb = fleet.load_balancers[0]
    changed = fleet.with_lb_update(lb.id, capacity=lb.capacity + 1, state="draining")
    assert changed.lb(lb.id).capacity == lb.capacity + 1 and changed.lb(lb.id).state == "draining"
    assert fleet.lb(lb.id) == lb
    with pytest.raises(FleetError):
        fleet.with_lb_update(lb.id, capacity=-1)
    with pytest.raises(FleetError, match="already exists"):
        fleet.with_load_balancer(lb)
    with pytest.raises(NotInFleet):
        fleet.with_lb_update("nope", capacity=1)
    with pytest.raises(NotInFleet):
        fleet.drain_az("use1-az3")
    drained = fleet.drain_az("use1-az4")
    assert drained.drained_azs == ("use1-az4",)
    assert not any(drained.serving(b) for b in drained.load_balancers if b.az == "use1-az4")
    assert drained.undrain_az("use1-az4") == fleet
    new = LoadBalancer(
        id="extra-1",
        az="use1-az1",
        endpoint="dynamodb.us-east-1.amazonaws.com",
        ipv4=("192.0.2.200",),
        capacity=10,
    )
    assert fleet.with_load_balancer(new).without_load_balancer("extra-1") == fleet
