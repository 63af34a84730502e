"""Least privilege in deploy/aws/dnsctl.yaml: the exact actions and resources of every role, as
CloudFormation would resolve them for a sample deployment, and their fit to the plan store's real
key layout (services/plan/store.py)."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from deploy.aws.cells import CELLS
from services.plan.fleet_store import FleetStore
from services.plan.store import PlanStore
from tests.packaging import cfn_template

ZONES = ["Z0123456789ABCDEFGHIJ", "Z9876543210ZYXWVUTSRQ"]
ENDPOINTS = ["dynamodb.us-east-1.api.aws", "dynamodb.us-east-1.amazonaws.com"]
# The one-line forms of an Ed25519 key pair's PEMs, as the deploy README makes them with openssl.
_KEY = Ed25519PrivateKey.generate()
SIGNING_KEY_LINE = _KEY.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode().splitlines()[1]
PUBLIC_KEY_LINE = _KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode().splitlines()[1]
PARAMS = {
    "PlanSigningKey": SIGNING_KEY_LINE,
    "PlanPublicKey": PUBLIC_KEY_LINE,
    "HostedZoneIds": ZONES,
    "EndpointNames": ENDPOINTS,
    "VpcId": "vpc-0abc",
    "SubnetA": "subnet-a",
    "SubnetB": "subnet-b",
    "SubnetC": "subnet-c",
}
BUCKET_ARN = f"arn:aws:s3:::{cfn_template.BUCKET}"
PLANS = f"{BUCKET_ARN}/plans/us-east-1/*"
CONTROL = f"{BUCKET_ARN}/control/us-east-1/*"
FLEET = f"{BUCKET_ARN}/fleet/us-east-1/*"
SSM_CHANNELS = tuple(f"ssmmessages:{a}" for a in ("CreateControlChannel", "CreateDataChannel", "OpenControlChannel", "OpenDataChannel"))
ZONE_ARNS = tuple(sorted(f"arn:aws:route53:::hostedzone/{z}" for z in ZONES))


def _as_tuple(value: Any) -> tuple[str, ...]:
    return tuple(sorted(value)) if isinstance(value, list) else (value,)


def statements(resolved: dict[str, Any], role: str) -> list[dict[str, Any]]:
    props = resolved[role]["Properties"]
    assert "ManagedPolicyArns" not in props, f"{role}: managed policies are not least privilege"
    out = []
    for policy in props.get("Policies", []):
        for st in policy["PolicyDocument"]["Statement"]:
            entry = {"Effect": st["Effect"], "Action": _as_tuple(st["Action"]), "Resource": _as_tuple(st["Resource"])}
            if "Condition" in st:
                entry["Condition"] = st["Condition"]
            out.append(entry)
    return out


def allow(action: str | tuple[str, ...], resource: str | tuple[str, ...], **condition: Any) -> dict[str, Any]:
    entry = {"Effect": "Allow", "Action": _as_tuple(list(action) if isinstance(action, tuple) else action)}
    entry["Resource"] = _as_tuple(list(resource) if isinstance(resource, tuple) else resource)
    if condition:
        entry["Condition"] = condition["condition"]
    return entry


def _same(actual: list[dict], expected: list[dict]) -> None:
    key = lambda s: repr(sorted(s.items()))  # noqa: E731
    assert sorted(actual, key=key) == sorted(expected, key=key)


def test_planner_may_only_write_plans_and_the_freeze_marker(resolved):
    _same(
        statements(resolved, "PlannerTaskRole"),
        [
            allow(("s3:GetObject", "s3:PutObject"), (PLANS, FLEET, CONTROL)),
            allow("s3:DeleteObject", f"{BUCKET_ARN}/control/us-east-1/freeze.json"),
            allow(("s3:ListBucket", "s3:GetBucketVersioning"), BUCKET_ARN),
            # Read-only: the applied versions it numbers above (planner/applied.py).
            allow("route53:ListResourceRecordSets", ZONE_ARNS),
            allow(("route53:GetHostedZoneCount", "route53:ListHostedZonesByName"), "*"),
            allow("secretsmanager:GetSecretValue", cfn_template.SIGNING_KEY_SECRET_ARN),
            # ECS Exec's channels for SSM port forwarding to the REST API; IAM cannot scope them (see the template's header).
            allow(SSM_CHANNELS, "*"),
        ],
    )


def test_enactors_may_only_read_plans_and_change_the_named_zones(resolved):
    names = sorted(ENDPOINTS + [f"*.{e}" for e in ENDPOINTS])
    statements_ = statements(resolved, "EnactorTaskRole")
    for st in statements_:
        for values in st.get("Condition", {}).get("ForAllValues:StringLike", {}).values():
            values.sort()
    _same(
        statements_,
        [
            allow("s3:GetObject", (PLANS, CONTROL)),
            allow("s3:ListBucket", BUCKET_ARN),
            allow(
                "route53:ChangeResourceRecordSets",
                ZONE_ARNS,
                condition={"ForAllValues:StringLike": {"route53:ChangeResourceRecordSetsNormalizedRecordNames": names}},
            ),
            allow(("route53:GetHostedZone", "route53:GetHostedZoneLimit", "route53:ListResourceRecordSets"), ZONE_ARNS),
            allow("route53:GetChange", "arn:aws:route53:::change/*"),
            # IAM cannot scope this one; it is read-only (see the template's header).
            allow(("route53:GetHostedZoneCount", "route53:ListHostedZonesByName"), "*"),
        ],
    )


def test_execution_role_only_pulls_the_image_writes_logs_and_reads_the_token(resolved):
    acct, region = cfn_template.ACCOUNT, cfn_template.REGION
    _same(
        statements(resolved, "TaskExecutionRole"),
        [
            allow("ecr:GetAuthorizationToken", "*"),
            allow(
                ("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"),
                f"arn:aws:ecr:{region}:{acct}:repository/dnsctl",
            ),
            allow(
                ("logs:CreateLogStream", "logs:PutLogEvents"),
                (
                    f"arn:aws:logs:{region}:{acct}:log-group:/dnsctl/{cfn_template.STACK}/planner:*",
                    f"arn:aws:logs:{region}:{acct}:log-group:/dnsctl/{cfn_template.STACK}/enactor:*",
                ),
            ),
            allow("secretsmanager:GetSecretValue", cfn_template.SECRET_ARN),
        ],
    )


def test_only_ecs_tasks_of_this_account_assume_the_roles(resolved):
    roles = [n for n, r in resolved.items() if r["Type"] == "AWS::IAM::Role"]
    # The regional system's two, and two of its own for every cell and for the cell map.
    systems = ["", "CellMap"] + [f"Cell{k}" for k in range(1, CELLS + 1)]
    assert sorted(roles) == sorted(["TaskExecutionRole"] + [f"{s}{r}TaskRole" for s in systems for r in ("Planner", "Enactor")])
    for name in roles:
        (st,) = resolved[name]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert st["Principal"] == {"Service": "ecs-tasks.amazonaws.com"} and st["Action"] == "sts:AssumeRole", name
        assert st["Condition"] == {"StringEquals": {"aws:SourceAccount": cfn_template.ACCOUNT}}, name


def test_tasks_use_their_own_roles(resolved):
    for name, res in resolved.items():
        if res["Type"] != "AWS::ECS::TaskDefinition":
            continue
        # <system>PlannerTaskDefinition -> <system>PlannerTaskRole; <system>Enactor[ABC]TaskDefinition -> <system>EnactorTaskRole
        system, kind = re.match(r"^(.*?)(Planner|Enactor)", name).groups()
        role = f"{system}{kind}TaskRole"
        assert res["Properties"]["TaskRoleArn"].endswith(f"role/{cfn_template.STACK}-{role}"), name
        assert res["Properties"]["ExecutionRoleArn"].endswith(f"role/{cfn_template.STACK}-TaskExecutionRole"), name


def _allows(stmts: list[dict], action: str, resource: str) -> bool:
    return any(
        st["Effect"] == "Allow" and action in st["Action"] and any(fnmatchcase(resource, r) for r in st["Resource"]) for st in stmts
    )


def test_roles_fit_the_plan_stores_real_keys(resolved):
    store = PlanStore(cfn_template.BUCKET, "us-east-1", s3=object())
    obj = lambda key: f"{BUCKET_ARN}/{key}"  # noqa: E731
    planner, enactor = statements(resolved, "PlannerTaskRole"), statements(resolved, "EnactorTaskRole")
    for key in (store.key_for(1), store.key_for(146), store.pointer_key, store.freeze_key):
        assert _allows(planner, "s3:PutObject", obj(key)), key
        assert _allows(planner, "s3:GetObject", obj(key)), key
        assert _allows(enactor, "s3:GetObject", obj(key)), key
        assert not _allows(enactor, "s3:PutObject", obj(key)), key
        assert not _allows(enactor, "s3:DeleteObject", obj(key)), key
    fleet_key = FleetStore(cfn_template.BUCKET, "us-east-1", s3=object()).key
    assert _allows(planner, "s3:PutObject", obj(fleet_key)) and _allows(planner, "s3:GetObject", obj(fleet_key))
    assert not _allows(enactor, "s3:GetObject", obj(fleet_key))
    assert _allows(planner, "s3:DeleteObject", obj(store.freeze_key))
    assert not _allows(planner, "s3:DeleteObject", obj(store.key_for(1)))  # plans are never deleted
    # Another region's plans are out of reach of both.
    other = PlanStore(cfn_template.BUCKET, "eu-west-1", s3=object())
    assert not _allows(planner, "s3:PutObject", obj(other.key_for(1)))
    assert not _allows(enactor, "s3:GetObject", obj(other.key_for(1)))


def test_no_task_role_has_a_wildcard_action_or_a_route53_write_outside_its_zones(resolved):
    for role in ("PlannerTaskRole", "EnactorTaskRole"):
        for st in statements(resolved, role):
            assert not any("*" in a for a in st["Action"]), (role, st)
            if st["Resource"] == ("*",):
                assert st["Action"] in (("route53:GetHostedZoneCount", "route53:ListHostedZonesByName"), tuple(sorted(SSM_CHANNELS))), (role, st)
    planner, enactor = statements(resolved, "PlannerTaskRole"), statements(resolved, "EnactorTaskRole")
    planner_route53 = {a for st in planner for a in st["Action"] if a.startswith("route53:")}
    assert planner_route53 == {"route53:ListResourceRecordSets", "route53:ListHostedZonesByName", "route53:GetHostedZoneCount"}, "read-only"
    assert not _allows(enactor, "route53:ChangeResourceRecordSets", "arn:aws:route53:::hostedzone/ZOTHERZONE")
    assert _allows(enactor, "route53:ChangeResourceRecordSets", f"arn:aws:route53:::hostedzone/{ZONES[1]}")


def test_every_route53_call_of_the_enactor_is_granted(resolved):
    """Route 53 operations named in the enactor's code (and the zone look-up it uses) must all be
    allowed to the enactor role, so a new call cannot ship without its permission."""
    import inspect

    import botocore.session
    from botocore import xform_name

    from services import zones
    from tests.processes import ROOT

    model = botocore.session.get_session().get_service_model("route53")
    snake = {xform_name(op): op for op in model.operation_names}
    sources = [f.read_text() for f in sorted((ROOT / "enactor").glob("*.py"))] + [inspect.getsource(zones.find_zone_id)]
    used = {snake[name] for text in sources for name in re.findall(r"\b([a-z][a-z0-9_]+)\b", text) if name in snake}
    assert {"ChangeResourceRecordSets", "ListResourceRecordSets", "GetChange", "ListHostedZonesByName"} <= used
    granted = {a.removeprefix("route53:") for st in statements(resolved, "EnactorTaskRole") for a in st["Action"]}
    assert used <= granted, f"the enactor calls Route 53 operations its role lacks: {sorted(used - granted)}"
