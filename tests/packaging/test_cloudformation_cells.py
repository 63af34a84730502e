"""The cells in deploy/aws/dnsctl.yaml (issue 16 item 6): rendered from the stack table, never a
second hand-written list. Every cell of services/stack.py runs on ECS with the same command as under
`dnsctl up --cells N --accounts M` (only the AWS differences), has its own hosted zone delegated from
the accounts' zone by an NS record, and roles that reach only its own plan stream and zone; the
cell map's enactors may never touch a cell's delegation. Resolved as CloudFormation would resolve
them (tests/packaging/cfn_template.py)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from deploy.aws import cells as cfn_cells
from services import compose_file
from services.cells.cellmap import STREAM
from services.cells.naming import accounts_zone, cell_endpoint, cell_names
from services.plan.fleet_store import FleetStore
from services.plan.store import PlanStore
from services.stack import Ports, default_cell_ports, services
from tests.packaging import cfn_template
from tests.packaging.test_iam import BUCKET_ARN, _allows, statements
from tests.processes import ROOT

REGION = cfn_template.REGION


def _table() -> list:
    """The long-running services of the cells and the cell map, straight from the stack table, as
    `dnsctl up --cells N --accounts M` starts them (the AWS settings: no chaos, no drift)."""
    specs = services(Ports(cells=default_cell_ports(cfn_cells.CELLS)), host="0.0.0.0", allow_chaos=False, drift=0.0, accounts=1,
                     plan_keys=(cfn_template.ROOT / "k", cfn_template.ROOT / "p"))
    return [s for s in specs if not s.oneshot and (s.name.startswith("cell-") or s.name.startswith("cellmap-"))]


def _by_service(resolved: dict[str, Any]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """ECS service name -> (service properties, its task's container)."""
    tasks = {name: r["Properties"] for name, r in resolved.items() if r["Type"] == "AWS::ECS::TaskDefinition"}
    out = {}
    for r in resolved.values():
        if r["Type"] == "AWS::ECS::Service":
            props = r["Properties"]
            task = next(t for t in tasks.values() if t["Family"] == f"{cfn_template.STACK}-{props['ServiceName']}")
            (container,) = task["ContainerDefinitions"]
            out[props["ServiceName"]] = (props, container)
    return out


def test_the_template_cells_are_what_the_stack_table_renders(tmp_path):
    current = cfn_cells.TEMPLATE.read_text()
    assert cfn_cells.render_template(current) == current, "the template's cells are stale: run `python -m deploy.aws.cells`"
    stale = tmp_path / "dnsctl.yaml"
    stale.write_text(current.replace("cell-2-enactor-b", "cell-2-enactor-x"))
    run = [sys.executable, "-m", "deploy.aws.cells", "--check", "--template", str(stale)]
    proc = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "stale" in proc.stderr
    assert cfn_cells.CELLS == compose_file.COMPOSE_CELLS  # CloudFormation and compose run the same cells


def test_the_cells_are_one_switch_away(template):
    """DeployCells=false leaves every resource and output of the cells out, and nothing else."""
    cell_resources = {n for n, r in template["Resources"].items() if r.get("Condition") == "RunCells"}
    assert cell_resources == set(cfn_cells.render()["Resources"])
    assert template["Conditions"]["RunCells"] == {"Fn::Equals": [{"Ref": "DeployCells"}, "true"]}
    assert template["Parameters"]["DeployCells"]["Default"] == "true"
    assert all(o.get("Condition") == "RunCells" for n, o in template["Outputs"].items() if n in cfn_cells.render()["Outputs"])
    assert {"PlanBucket", "PlannerService", "EnactorAService", "EnactorTaskRole"}.isdisjoint(cell_resources)  # the regional system stays


def test_a_broken_template_is_refused_and_left_as_it_was(tmp_path):
    broken = tmp_path / "dnsctl.yaml"
    text = cfn_cells.TEMPLATE.read_text().replace(cfn_cells.END + "\n\nOutputs:", "\nOutputs:", 1)
    broken.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "deploy.aws.cells", "--template", str(broken)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0 and "without" in proc.stderr
    assert broken.read_text() == text


def test_every_cell_of_the_table_runs_its_planner_and_trio_with_the_tables_command(resolved):
    table = _table()
    ecs = _by_service(resolved)
    assert {s.name for s in table} == {n for n in ecs if n.startswith(("cell-", "cellmap-"))}
    assert {f"{c}-planner" for c in cell_names(cfn_cells.CELLS)} | {"cellmap-planner"} <= set(ecs)
    azs = [cfn_template.load()["Parameters"][p]["Default"] for p in ("AzIdA", "AzIdB", "AzIdC")]
    for spec in table:
        props, container = ecs[spec.name]
        expected = list(spec.args)
        # Only the AWS differences: the template's plan interval and the cell map's seed (parameters).
        if "--plan-interval" in expected:
            expected[expected.index("--plan-interval") + 1] = "30"
        if "--accounts" in expected:
            expected[expected.index("--accounts") + 1] = "0"
        if "--az" in expected:
            expected[expected.index("--az") + 1] = azs["abc".index(spec.name[-1])]
        assert container["Command"] == expected, spec.name
        assert container["PortMappings"] == [{"ContainerPort": spec.port, "Protocol": "tcp"}], spec.name
        env = {e["Name"]: e["Value"] for e in container["Environment"]}
        assert env.get("DNSCTL_CELL") == spec.env.get("DNSCTL_CELL"), spec.name  # a cell's services are in its namespace
        assert "AWS_ENDPOINT_URL" not in env and "DNSCTL_API_TOKEN" not in env, spec.name
        subnets = props["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"]
        if "-enactor-" in spec.name:
            assert subnets == [f"subnet-{spec.name[-1]}"], spec.name  # enactor-a|b|c in SubnetA|B|C, as the regional trio
            assert props["DeploymentConfiguration"]["MaximumPercent"] == 100, spec.name
        else:
            assert sorted(subnets) == ["subnet-a", "subnet-b", "subnet-c"], spec.name


def test_each_cell_zone_is_its_own_and_delegated_from_the_accounts_zone(resolved):
    zones = {r["Properties"]["Name"]: name for name, r in resolved.items() if r["Type"] == "AWS::Route53::HostedZone"}
    assert set(zones) == {accounts_zone(REGION)} | {cell_endpoint(c, REGION) for c in cell_names(cfn_cells.CELLS)}
    delegations = {r["Properties"]["Name"]: r["Properties"] for r in resolved.values() if r["Type"] == "AWS::Route53::RecordSet"}
    assert set(delegations) == {cell_endpoint(c, REGION) for c in cell_names(cfn_cells.CELLS)}
    for name, ns in delegations.items():
        assert ns["Type"] == "NS" and ns["HostedZoneId"] == f"{zones[accounts_zone(REGION)]}-physical-id", name
        assert ns["ResourceRecords"] == cfn_template.name_servers(zones[name]), name  # the cell zone's own servers


def _zone_arn(logical: str) -> str:
    return f"arn:aws:route53:::hostedzone/{logical}-physical-id"


def test_a_cells_roles_reach_only_its_own_stream_and_zone(resolved):
    obj = lambda key: f"{BUCKET_ARN}/{key}"  # noqa: E731
    cells = cell_names(cfn_cells.CELLS)
    for k, cell in enumerate(cells, 1):
        planner, enactor = statements(resolved, f"Cell{k}PlannerTaskRole"), statements(resolved, f"Cell{k}EnactorTaskRole")
        for other in (None, *(c for c in cells if c != cell)):  # the regional system and every other cell
            theirs = PlanStore(cfn_template.BUCKET, REGION, s3=object(), cell=other)
            for key in (theirs.key_for(1), theirs.pointer_key, theirs.freeze_key):
                assert not _allows(planner, "s3:PutObject", obj(key)) and not _allows(enactor, "s3:GetObject", obj(key)), (cell, key)
            if other is not None:
                assert not _allows(enactor, "route53:ChangeResourceRecordSets", _zone_arn(f"Cell{cells.index(other) + 1}HostedZone"))
        own = PlanStore(cfn_template.BUCKET, REGION, s3=object(), cell=cell)
        for key in (own.key_for(1), own.key_for(146), own.pointer_key, own.freeze_key):
            assert _allows(planner, "s3:PutObject", obj(key)) and _allows(enactor, "s3:GetObject", obj(key)), (cell, key)
            assert not _allows(enactor, "s3:PutObject", obj(key)), (cell, key)
        assert _allows(planner, "s3:PutObject", obj(FleetStore.beside(own).key))
        assert _allows(enactor, "route53:ChangeResourceRecordSets", _zone_arn(f"Cell{k}HostedZone"))
        assert not _allows(enactor, "route53:ChangeResourceRecordSets", _zone_arn("AccountsHostedZone"))
        (change,) = [s for s in enactor if "route53:ChangeResourceRecordSets" in s["Action"]]
        names = change["Condition"]["ForAllValues:StringLike"]["route53:ChangeResourceRecordSetsNormalizedRecordNames"]
        assert sorted(names) == sorted([cell_endpoint(cell, REGION), f"*.{cell_endpoint(cell, REGION)}"])
        planner_route53 = {a for st in planner for a in st["Action"] if a.startswith("route53:")}
        assert planner_route53 == {"route53:ListResourceRecordSets", "route53:ListHostedZonesByName", "route53:GetHostedZoneCount"}
    # The regional roles never reach a cell's stream.
    regional_planner = statements(resolved, "PlannerTaskRole")
    assert not _allows(regional_planner, "s3:PutObject", obj(PlanStore(cfn_template.BUCKET, REGION, s3=object(), cell=cells[0]).key_for(1)))


def test_the_cell_map_roles_write_its_stream_and_never_a_cells_delegation(resolved):
    obj = lambda key: f"{BUCKET_ARN}/{key}"  # noqa: E731
    stream = PlanStore(cfn_template.BUCKET, REGION, s3=object(), namespace=STREAM)
    planner, enactor = statements(resolved, "CellMapPlannerTaskRole"), statements(resolved, "CellMapEnactorTaskRole")
    for key in (stream.key_for(1), stream.pointer_key, stream.freeze_key):
        assert _allows(planner, "s3:PutObject", obj(key)) and _allows(enactor, "s3:GetObject", obj(key)), key
    assert not _allows(planner, "s3:PutObject", obj(PlanStore(cfn_template.BUCKET, REGION, s3=object()).key_for(1)))
    assert _allows(enactor, "route53:ChangeResourceRecordSets", _zone_arn("AccountsHostedZone"))
    assert not _allows(enactor, "route53:ChangeResourceRecordSets", _zone_arn("Cell1HostedZone"))
    (deny,) = [s for s in enactor if s["Effect"] == "Deny"]
    assert deny["Action"] == ("route53:ChangeResourceRecordSets",) and deny["Resource"] == (_zone_arn("AccountsHostedZone"),)
    denied = deny["Condition"]["ForAnyValue:StringLike"]["route53:ChangeResourceRecordSetsNormalizedRecordNames"]
    for cell in cell_names(cfn_cells.CELLS):
        assert cell_endpoint(cell, REGION) in denied  # the NS delegation of every cell zone


def test_every_enactor_together_stays_within_the_accounts_route53_rate(template):
    params = template["Parameters"]
    enactors = {"regional": 3, "cells and cell map": 3 * (cfn_cells.CELLS + 1)}
    total = enactors["regional"] * float(params["EnactorRoute53Rps"]["Default"]) + \
        enactors["cells and cell map"] * float(params["CellEnactorRoute53Rps"]["Default"])
    assert total <= 10, f"{total} requests/s for {sum(enactors.values())} enactors: above the account's 10/s"
