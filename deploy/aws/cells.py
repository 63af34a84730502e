"""Render the cells' part of deploy/aws/dnsctl.yaml from the stack table (services/stack.py).

`python -m deploy.aws.cells` rewrites the generated blocks of the template (between the
`# -- cells: generated ...` and `# -- end of the generated cells --` lines, in Parameters,
Conditions, Resources and Outputs); `--check` exits 1 when the checked-in template differs from what the
table renders. The rest of the template (the plan bucket, the regional system) is written by
hand. Every resource here has the condition RunCells (parameter DeployCells, true by default). Every cell's services are services.stack.cell_services', and the cell map's
services.stack.cellmap_services', exactly as `dnsctl up --cells N --accounts M` and
docker-compose.yml run them, with only what Fargate needs on top:

- per cell: its own hosted zone (`cell-N.ddb.<region>.api.aws`, services/cells/naming.py) and the
  NS delegation of that zone from the accounts' zone (`ddb.<region>.api.aws`, also made here:
  the parent of every cell zone and the zone of the per-account CNAMEs), its planner and its
  enactor trio as ECS services (enactor-a|b|c pinned to SubnetA|B|C, as the regional trio), and
  two roles of its own: its planner may write only `cells/cell-N/` in the plan bucket and read
  its own zone, its enactors may read only `cells/cell-N/` and change only the cell's names in
  the cell's zone, so nothing of one cell's management is read or written by another's;
- the cell map: its planner (`cellmap/` in the bucket) and its three enactors (the accounts'
  zone only, never the cell zones' NS delegations in it: an explicit Deny);
- AWS settings instead of the emulator's: no AWS_ENDPOINT_URL, the bucket and region from the
  stack, the signing key from its secret (planners) or the public key (enactors), no chaos
  routes, no simulated drift, the template's plan interval; the zones one-shots are not run
  (CloudFormation creates the zones).

Outputs give every cell zone's name servers (the delegation is made here) and the accounts'
zone's, which its parent zone must delegate to (deploy/aws/README.md says how).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from services.cells.cellmap import STREAM as CELLMAP_STREAM
from services.cells.naming import CELL_ENV, accounts_zone, cell_endpoint, cell_names, store_prefix
from services.plan.keys import PRIVATE_KEY_FILE_ENV, PUBLIC_KEY_FILE_ENV
from services.stack import ENACTORS, Ports, ServiceSpec, cell_services, cellmap_services, default_cell_ports

ROOT = Path(__file__).resolve().parent.parent.parent
TEMPLATE = ROOT / "deploy" / "aws" / "dnsctl.yaml"
# The cells the template runs: as many as docker-compose.yml (services/compose_file.py), so the
# three ways of running dnsctl show the same system.
CELLS = 2
BEGIN = "  # -- cells: generated from services/stack.py by `python -m deploy.aws.cells`; do not edit by hand --"
END = "  # -- end of the generated cells --"
SECTIONS = ("Parameters", "Conditions", "Resources", "Outputs")
CONDITION = "RunCells"  # DeployCells=false leaves every cell resource out (the regional system alone)
REGION = "${PlanRegion}"  # names are rendered with the template's region, for Fn::Sub
BIND = "0.0.0.0"
SUBNETS = ("SubnetA", "SubnetB", "SubnetC")
AZ_PARAMS = ("AzIdA", "AzIdB", "AzIdC")
DELEGATION_TTL = "172800"  # two days, as Route 53 gives a new zone's NS record at its apex
ACCOUNTS_ZONE = "AccountsHostedZone"


def _camel(name: str) -> str:
    """cell-1-enactor-a -> Cell1EnactorA (a logical id)."""
    return "".join(part.capitalize() for part in name.replace("cellmap", "cell-map").split("-"))


def _sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def _ref(name: str) -> dict[str, str]:
    return {"Ref": name}


def _zone_arn(zone_resource: str) -> dict[str, str]:
    return _sub(f"arn:${{AWS::Partition}}:route53:::hostedzone/${{{zone_resource}}}")


def _bucket(key_pattern: str) -> dict[str, str]:
    return _sub(f"${{PlanBucket.Arn}}/{key_pattern}")


# -- what runs ------------------------------------------------------------------------------------


def table_specs(cells: int = CELLS) -> tuple[dict[str, list[ServiceSpec]], list[ServiceSpec]]:
    """The stack table's long-running services of every cell, and the cell map's (no one-shots:
    CloudFormation makes the zones), as `dnsctl up --cells N --accounts M` runs them."""
    ports = Ports(cells=default_cell_ports(cells))
    common: dict[str, str] = {}
    keys = (Path("signing.key"), Path("signing.pub"))
    per_cell = {
        cell: [s for s in cell_services(cell, p, host=BIND, common=common, peer={}, version_guard=True, plan_interval_s=30.0,
                                         allow_chaos=False, drift=0.0, plan_keys=keys) if not s.oneshot]
        for cell, p in zip(cell_names(cells), ports.cells, strict=True)
    }
    cellmap = [s for s in cellmap_services(ports, 1, host=BIND, common=common, peer={}, plan_keys=keys) if not s.oneshot]
    return per_cell, cellmap


def task_command(spec: ServiceSpec) -> list[Any]:
    """The service's `dnsctl` arguments on Fargate: the plan interval and the cell map's seed from
    the template's parameters."""
    args: list[Any] = list(spec.args)
    for flag, param in (("--plan-interval", "PlanIntervalSeconds"), ("--accounts", "CellMapSeedAccounts")):
        if flag in args:
            args[args.index(flag) + 1] = _ref(param)
    if "--az" in args:  # enactor-a|b|c (any system's) runs in SubnetA|B|C's AZ, as the regional trio
        args[args.index("--az") + 1] = _ref(AZ_PARAMS[_trio_index(spec)])
    return args


def _trio_index(spec: ServiceSpec) -> int:
    """0, 1, 2 for an enactor named ...enactor-a, -b, -c (services/stack.py's ENACTORS)."""
    return [name for name, _, _ in ENACTORS].index(spec.name[-len("enactor-a"):])


def _is_enactor(spec: ServiceSpec) -> bool:
    return PUBLIC_KEY_FILE_ENV in spec.env


def _environment(spec: ServiceSpec) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"Name": "DNSCTL_BUCKET", "Value": _ref("PlanBucket")},
        {"Name": "DNSCTL_REGION", "Value": _ref("PlanRegion")},
        {"Name": "AWS_DEFAULT_REGION", "Value": _ref("AWS::Region")},
    ]
    if CELL_ENV in spec.env:
        env.append({"Name": CELL_ENV, "Value": spec.env[CELL_ENV]})
    if PRIVATE_KEY_FILE_ENV in spec.env:
        env.append({"Name": "DNSCTL_PLAN_SIGNING_KEY_SECRET", "Value": _ref("PlanSigningKeySecret")})
    if _is_enactor(spec):
        env.append({"Name": "DNSCTL_ROUTE53_RPS", "Value": _ref("CellEnactorRoute53Rps")})
        env.append({"Name": "DNSCTL_PLAN_PUBLIC_KEY", "Value": _ref("PlanPublicKey")})
    return env


def _task_definition(spec: ServiceSpec, role: str) -> dict[str, Any]:
    image = "${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/${ImageRepositoryName}:${ImageTag}"
    probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{spec.port}/healthz', timeout=2)"
    return {
        "Type": "AWS::ECS::TaskDefinition",
        "Properties": {
            "Family": _sub(f"${{AWS::StackName}}-{spec.name}"),
            "RequiresCompatibilities": ["FARGATE"],
            "NetworkMode": "awsvpc",
            "Cpu": "256",
            "Memory": "512",
            "RuntimePlatform": {"OperatingSystemFamily": "LINUX", "CpuArchitecture": "X86_64"},
            "ExecutionRoleArn": {"Fn::GetAtt": ["TaskExecutionRole", "Arn"]},
            "TaskRoleArn": {"Fn::GetAtt": [role, "Arn"]},
            "ContainerDefinitions": [{
                "Name": spec.name,
                "Image": _sub(image),
                "Essential": True,
                "Command": task_command(spec),
                "PortMappings": [{"ContainerPort": spec.port, "Protocol": "tcp"}],
                "Environment": _environment(spec),
                "Secrets": [{"Name": "DNSCTL_API_TOKEN", "ValueFrom": _ref("ApiTokenSecret")}],
                "HealthCheck": {"Command": ["CMD", "python", "-c", probe], "Interval": 10, "Timeout": 5, "Retries": 3, "StartPeriod": 30},
                "LogConfiguration": {"LogDriver": "awslogs", "Options": {
                    "awslogs-group": _ref("EnactorLogGroup" if _is_enactor(spec) else "PlannerLogGroup"),
                    "awslogs-region": _ref("AWS::Region"),
                    "awslogs-stream-prefix": spec.name,
                }},
            }],
        },
    }


def _service(spec: ServiceSpec) -> dict[str, Any]:
    props: dict[str, Any] = {
        "Cluster": _ref("Cluster"),
        "ServiceName": spec.name,
        "LaunchType": "FARGATE",
        "TaskDefinition": _ref(f"{_camel(spec.name)}TaskDefinition"),
        "DesiredCount": 1,
    }
    if _is_enactor(spec):
        # Pinned to its AZ's subnet; never two tasks with one enactor id (one lock identity).
        subnets = [_ref(SUBNETS[_trio_index(spec)])]
        props["DeploymentConfiguration"] = {"MinimumHealthyPercent": 0, "MaximumPercent": 100,
                                            "DeploymentCircuitBreaker": {"Enable": True, "Rollback": True}}
    else:
        subnets = [_ref(s) for s in SUBNETS]
        props["EnableExecuteCommand"] = True  # reached by `aws ssm start-session` port forwarding, as the regional planner
        props["DeploymentConfiguration"] = {"DeploymentCircuitBreaker": {"Enable": True, "Rollback": True}}
    props["NetworkConfiguration"] = {"AwsvpcConfiguration": {"AssignPublicIp": _ref("AssignPublicIp"),
                                                             "SecurityGroups": [_ref("TaskSecurityGroup")], "Subnets": subnets}}
    return {"Type": "AWS::ECS::Service", "Properties": props}


# -- least privilege, per system ----------------------------------------------------------------------


def _role(statements: list[dict[str, Any]], policy: str) -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": _ref("AWS::AccountId")}}}]},
            "Policies": [{"PolicyName": policy, "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}],
        },
    }


ZONE_LOOKUPS = {"Sid": "FindZoneIdByName", "Effect": "Allow", "Action": ["route53:ListHostedZonesByName", "route53:GetHostedZoneCount"],
                "Resource": "*"}
SSM_CHANNELS = {"Sid": "EcsExecPortForwarding", "Effect": "Allow", "Resource": "*",
                "Action": [f"ssmmessages:{a}" for a in ("CreateControlChannel", "CreateDataChannel", "OpenControlChannel", "OpenDataChannel")]}


def planner_role(namespace: str, zone: str, *, fleet: bool) -> dict[str, Any]:
    """A planner that writes only its own stream (`namespace` in the bucket) and reads only its zone."""
    objects = [f"{namespace}plans/{REGION}/*"] + ([f"{namespace}fleet/{REGION}/*"] if fleet else []) + [f"{namespace}control/{REGION}/*"]
    return _role([
        {"Sid": "ReadWriteOwnPlansAndFreezeMarker", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
         "Resource": [_bucket(o) for o in objects]},
        {"Sid": "ThawOwnFreezeMarker", "Effect": "Allow", "Action": "s3:DeleteObject", "Resource": _bucket(f"{namespace}control/{REGION}/freeze.json")},
        {"Sid": "ListPlanBucket", "Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketVersioning"], "Resource": {"Fn::GetAtt": ["PlanBucket", "Arn"]}},
        {"Sid": "ReadAppliedVersions", "Effect": "Allow", "Action": "route53:ListResourceRecordSets", "Resource": _zone_arn(zone)},
        ZONE_LOOKUPS,
        {"Sid": "ReadPlanSigningKey", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": _ref("PlanSigningKeySecret")},
        SSM_CHANNELS,
    ], "own-plan-stream-writer")


def enactor_role(namespace: str, zone: str, names: list[str], *, deny: list[str] | None = None) -> dict[str, Any]:
    """Enactors that read only their own stream and change only `names` in their own zone."""
    statements: list[dict[str, Any]] = [
        {"Sid": "ReadOwnPlansAndFreezeMarker", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": [_bucket(f"{namespace}plans/{REGION}/*"), _bucket(f"{namespace}control/{REGION}/*")]},
        {"Sid": "ListPlanBucket", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": {"Fn::GetAtt": ["PlanBucket", "Arn"]}},
        {"Sid": "ChangeOwnRecords", "Effect": "Allow", "Action": "route53:ChangeResourceRecordSets", "Resource": _zone_arn(zone),
         "Condition": {"ForAllValues:StringLike": {"route53:ChangeResourceRecordSetsNormalizedRecordNames": [_sub(n) for n in names]}}},
    ]
    if deny:
        statements.append({"Sid": "NeverTheCellDelegations", "Effect": "Deny", "Action": "route53:ChangeResourceRecordSets", "Resource": _zone_arn(zone),
                           "Condition": {"ForAnyValue:StringLike": {"route53:ChangeResourceRecordSetsNormalizedRecordNames": [_sub(n) for n in deny]}}})
    statements += [
        {"Sid": "ReadOwnRecords", "Effect": "Allow", "Action": ["route53:ListResourceRecordSets", "route53:GetHostedZoneLimit", "route53:GetHostedZone"], "Resource": _zone_arn(zone)},
        {"Sid": "WaitForPropagation", "Effect": "Allow", "Action": "route53:GetChange", "Resource": _sub("arn:${AWS::Partition}:route53:::change/*")},
        ZONE_LOOKUPS,
    ]
    return _role(statements, "own-zone-enactor")


# -- the template's blocks ------------------------------------------------------------------------------


def render(cells: int = CELLS) -> dict[str, dict[str, Any]]:
    """Parameters, Resources and Outputs of the cells and the cell map, as dicts."""
    per_cell, cellmap = table_specs(cells)
    accounts = accounts_zone(REGION)
    parameters = {
        "DeployCells": {
            "Type": "String", "Default": "true", "AllowedValues": ["true", "false"],
            "Description": f"Run the {cells} cells and the cell map beside the regional system (false: the regional system alone).",
        },
        "CellEnactorRoute53Rps": {
            "Type": "String", "Default": "0.5", "AllowedPattern": "^[0-9]+(\\.[0-9]+)?$",
            "Description": (f"Route 53 requests per second each of the {3 * (cells + 1)} enactors of the cells and the cell map allows "
                            "itself (DNSCTL_ROUTE53_RPS). With the regional trio's EnactorRoute53Rps they share the account's "
                            "limit (10/s since 2026; 5/s before: halve both); botocore's adaptive retries absorb any excess."),
        },
        "CellMapSeedAccounts": {
            "Type": "Number", "Default": 0, "MinValue": 0, "MaxValue": 9996,
            "Description": ("Demo accounts the cell map planner seeds an empty map with (0: none; put the real map with "
                            "`dnsctl cells` or PUT /v1/cellmap)."),
        },
    }
    resources: dict[str, Any] = {
        ACCOUNTS_ZONE: {"Type": "AWS::Route53::HostedZone", "Properties": {
            "Name": _sub(accounts), "HostedZoneConfig": {"Comment": "dnsctl: the accounts' names (the cell map) and every cell zone's delegation"}}},
    }
    outputs: dict[str, Any] = {
        "AccountsZoneNameServers": {"Value": {"Fn::Join": [",", {"Fn::GetAtt": [ACCOUNTS_ZONE, "NameServers"]}]},
                                    "Description": f"NS of {accounts_zone('<PlanRegion>')}: delegate to these from its parent zone (deploy/aws/README.md)"},
    }
    for cell, specs in per_cell.items():
        key = _camel(cell)
        zone, name = f"{key}HostedZone", cell_endpoint(cell, REGION)
        resources[zone] = {"Type": "AWS::Route53::HostedZone", "Properties": {
            "Name": _sub(name), "HostedZoneConfig": {"Comment": f"dnsctl: {cell}'s own endpoint (its own zone, lock and plan stream)"}}}
        resources[f"{key}Delegation"] = {"Type": "AWS::Route53::RecordSet", "Properties": {
            "HostedZoneId": _ref(ACCOUNTS_ZONE), "Name": _sub(name), "Type": "NS", "TTL": DELEGATION_TTL,
            "ResourceRecords": {"Fn::GetAtt": [zone, "NameServers"]}}}
        resources[f"{key}PlannerTaskRole"] = planner_role(store_prefix(cell), zone, fleet=True)
        resources[f"{key}EnactorTaskRole"] = enactor_role(store_prefix(cell), zone, [name, f"*.{name}"])
        for spec in specs:
            role = f"{key}EnactorTaskRole" if _is_enactor(spec) else f"{key}PlannerTaskRole"
            resources[f"{_camel(spec.name)}TaskDefinition"] = _task_definition(spec, role)
            resources[f"{_camel(spec.name)}Service"] = _service(spec)
        outputs[f"{key}ZoneNameServers"] = {"Value": {"Fn::Join": [",", {"Fn::GetAtt": [zone, "NameServers"]}]},
                                            "Description": f"NS of {cell_endpoint(cell, '<PlanRegion>')} (delegated from the accounts' zone by {key}Delegation)"}
    resources["CellMapPlannerTaskRole"] = planner_role(CELLMAP_STREAM, ACCOUNTS_ZONE, fleet=False)
    resources["CellMapEnactorTaskRole"] = enactor_role(CELLMAP_STREAM, ACCOUNTS_ZONE, [accounts, f"*.{accounts}"],
                                                       deny=[cell_endpoint(c, REGION) for c in per_cell] + [f"*.{cell_endpoint(c, REGION)}" for c in per_cell])
    for spec in cellmap:
        role = "CellMapEnactorTaskRole" if _is_enactor(spec) else "CellMapPlannerTaskRole"
        resources[f"{_camel(spec.name)}TaskDefinition"] = _task_definition(spec, role)
        resources[f"{_camel(spec.name)}Service"] = _service(spec)
    for body in (*resources.values(), *outputs.values()):
        body["Condition"] = CONDITION
    resources = {name: {"Type": r.pop("Type"), "Condition": r.pop("Condition"), **r} for name, r in resources.items()}
    conditions = {CONDITION: {"Fn::Equals": [_ref("DeployCells"), "true"]}}
    return {"Parameters": parameters, "Conditions": conditions, "Resources": resources, "Outputs": outputs}


class _NoAliases(yaml.SafeDumper):
    """CloudFormation rejects YAML aliases: a statement used by several roles is written out each time."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _block(body: dict[str, Any]) -> str:
    text = yaml.dump(body, Dumper=_NoAliases, sort_keys=False, default_flow_style=False, width=200)
    return "".join(f"  {line}\n" if line else "\n" for line in text.splitlines())


def render_template(current: str, cells: int = CELLS) -> str:
    """The template with its three generated blocks (Parameters, Resources, Outputs) rendered anew."""
    rendered = render(cells)
    lines = current.splitlines(keepends=True)
    out: list[str] = []
    section = None
    i = 0
    seen = []
    while i < len(lines):
        line = lines[i]
        if line and not line[0].isspace() and line.rstrip().endswith(":"):
            section = line.rstrip()[:-1]
        if line.rstrip("\n") == BEGIN:
            if section not in SECTIONS:
                raise ValueError(f"a generated block in {section!r}: only {', '.join(SECTIONS)} have one")
            end = next((j for j in range(i + 1, len(lines)) if lines[j].rstrip("\n") in (BEGIN, END)), None)
            if end is None or lines[end].rstrip("\n") != END:
                raise ValueError(f"the generated block of {section} has its first line ({BEGIN.strip()!r}) without its last ({END.strip()!r})")
            out += [line, _block(rendered[section]), lines[end]]
            seen.append(section)
            i = end + 1
            continue
        out.append(line)
        i += 1
    if sorted(seen) != sorted(SECTIONS):
        raise ValueError(f"{TEMPLATE.name} needs one generated block in each of {', '.join(SECTIONS)} (found: {', '.join(seen) or 'none'})")
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.aws.cells", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the template's cells are not what the stack table renders")
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    args = parser.parse_args(argv)
    current = args.template.read_text()
    try:
        text = render_template(current)
    except ValueError as exc:  # a damaged template: say where, change nothing
        print(f"{args.template}: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if current != text:
            print(f"{args.template}: the cells are stale: run `python -m deploy.aws.cells`", file=sys.stderr)
            return 1
        print(f"{args.template}: the cells match services/stack.py")
        return 0
    args.template.write_text(text)
    print(f"wrote the cells of {args.template}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
