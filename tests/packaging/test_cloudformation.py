"""deploy/aws/dnsctl.yaml: cfn-lint passes, the plan bucket is locked down, and the ECS services
run the planner and one enactor per AZ subnet with the same commands the local stack uses."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from services.plan.signing import PlanSigner, PlanVerifier
from services.stack import ENACTORS, Ports
from tests.packaging import cfn_template
from tests.packaging.test_iam import PUBLIC_KEY_LINE, SIGNING_KEY_LINE


def _of_type(resolved: dict[str, Any], kind: str) -> dict[str, Any]:
    return {n: r for n, r in resolved.items() if r["Type"] == kind}


def test_cfn_lint_passes():
    cfn_lint = shutil.which("cfn-lint", path=str(Path(sys.executable).parent)) or shutil.which("cfn-lint")
    assert cfn_lint, "cfn-lint is in the test extras (pip install -e '.[test]')"
    proc = subprocess.run([cfn_lint, str(cfn_template.TEMPLATE)], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_plan_bucket_is_versioned_encrypted_private_and_tls_only(resolved):
    (bucket,) = _of_type(resolved, "AWS::S3::Bucket").values()
    props = bucket["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert props["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    assert bucket["DeletionPolicy"] == "Retain"
    (policy,) = _of_type(resolved, "AWS::S3::BucketPolicy").values()
    arn = f"arn:aws:s3:::{cfn_template.BUCKET}"
    assert {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    } in [{k: v for k, v in s.items() if k != "Sid"} for s in policy["Properties"]["PolicyDocument"]["Statement"]]


REGIONAL = ["enactor-a", "enactor-b", "enactor-c", "planner"]  # the cells' and the cell map's: tests/packaging/test_cloudformation_cells.py


def test_one_enactor_service_per_az_subnet_and_a_planner(resolved):
    services = _of_type(resolved, "AWS::ECS::Service")
    by_name = {s["Properties"]["ServiceName"]: s["Properties"] for s in services.values() if s["Properties"]["ServiceName"] in REGIONAL}
    assert sorted(by_name) == ["enactor-a", "enactor-b", "enactor-c", "planner"]
    subnets = [by_name[n]["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"] for n in ("enactor-a", "enactor-b", "enactor-c")]
    assert subnets == [["subnet-a"], ["subnet-b"], ["subnet-c"]]
    assert sorted(by_name["planner"]["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"]) == ["subnet-a", "subnet-b", "subnet-c"]
    for name, props in by_name.items():
        assert props["LaunchType"] == "FARGATE" and props["DesiredCount"] == 1, name
        if name.startswith("enactor-"):
            # Never two tasks with one enactor id (one lock identity) during a deployment.
            assert props["DeploymentConfiguration"]["MaximumPercent"] == 100, name


def _containers(resolved: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every task's container by its service's name (the task family is <stack>-<service>)."""
    out = {}
    for res in _of_type(resolved, "AWS::ECS::TaskDefinition").values():
        props = res["Properties"]
        assert props["RequiresCompatibilities"] == ["FARGATE"] and props["NetworkMode"] == "awsvpc"
        (container,) = props["ContainerDefinitions"]
        out[props["Family"].removeprefix(f"{cfn_template.STACK}-")] = container
    return out


def test_task_commands_match_the_local_stack(resolved):
    containers = {name: c for name, c in _containers(resolved).items() if name in REGIONAL}
    assert sorted(containers) == REGIONAL
    for (name, az, port), param in zip(ENACTORS, ("AzIdA", "AzIdB", "AzIdC"), strict=True):
        cmd = containers[name]["Command"]
        default_az = cfn_template.load()["Parameters"][param]["Default"]
        assert cmd == ["enactor", "--id", name, "--az", default_az, "--host", "0.0.0.0", "--port", str(port), "--version-guard"]
        assert default_az == az
        assert "--allow-chaos" not in cmd  # chaos routes are for the local race lab only
    planner = containers["planner"]["Command"]
    assert planner[:5] == ["planner", "--host", "0.0.0.0", "--port", str(Ports().planner)]


def test_task_commands_parse_with_the_real_cli(resolved):
    """Every option the tasks pass exists: click parses all arguments (failing on an unknown
    option with exit code 2) before it acts on the trailing --help."""
    from cli.main import app

    group = typer.main.get_command(app)
    missing = []
    for name, container in _containers(resolved).items():
        if container["Command"][0] not in group.commands:
            missing.append(container["Command"][0])
            continue
        result = CliRunner().invoke(app, [*container["Command"], "--help"])
        assert result.exit_code == 0, f"{name}: `dnsctl {' '.join(container['Command'])}` does not parse:\n{result.output}"
    if missing:
        pytest.skip(f"not registered yet: dnsctl {', '.join(sorted(set(missing)))} (the others parse)")


def test_logs_token_and_image(resolved):
    groups = _of_type(resolved, "AWS::Logs::LogGroup")
    assert sorted(g["Properties"]["LogGroupName"] for g in groups.values()) == [
        f"/dnsctl/{cfn_template.STACK}/enactor",
        f"/dnsctl/{cfn_template.STACK}/planner",
    ]
    assert all(g["Properties"]["RetentionInDays"] for g in groups.values())
    image = f"{cfn_template.ACCOUNT}.dkr.ecr.{cfn_template.REGION}.amazonaws.com/dnsctl:latest"
    for name, container in _containers(resolved).items():
        assert container["Image"] == image, name
        assert container["LogConfiguration"]["LogDriver"] == "awslogs", name
        assert container["Secrets"] == [{"Name": "DNSCTL_API_TOKEN", "ValueFrom": cfn_template.SECRET_ARN}], name
        env = {e["Name"]: e["Value"] for e in container["Environment"]}
        assert "DNSCTL_API_TOKEN" not in env and "AWS_ENDPOINT_URL" not in env, name  # real AWS, no override
        assert env["DNSCTL_BUCKET"] == cfn_template.BUCKET and env["DNSCTL_REGION"] == "us-east-1", name
        if "enactor-" in name:  # every system's enactors (the cells' and the cell map's too)
            if name in REGIONAL:
                # Three enactors share the account's 5 requests/s; each paces itself below a third.
                assert 3 * float(env["DNSCTL_ROUTE53_RPS"]) <= 5, name
            # Enactors get only the public key; the private key stays in its secret, read by the planner.
            assert env["DNSCTL_PLAN_PUBLIC_KEY"] == PUBLIC_KEY_LINE and "DNSCTL_PLAN_SIGNING_KEY_SECRET" not in env, name
        else:
            assert env["DNSCTL_PLAN_SIGNING_KEY_SECRET"] == cfn_template.SIGNING_KEY_SECRET_ARN
            assert "DNSCTL_PLAN_PUBLIC_KEY" not in env and SIGNING_KEY_LINE not in str(container)
        assert "healthz" in " ".join(container["HealthCheck"]["Command"]), name


def test_the_signing_key_parameters_load_as_the_services_load_them(resolved):
    (secret,) = [r for n, r in _of_type(resolved, "AWS::SecretsManager::Secret").items() if n == "PlanSigningKeySecret"]
    signer = PlanSigner.from_pem(secret["Properties"]["SecretString"], "the secret")
    verifier = PlanVerifier.from_pem(PUBLIC_KEY_LINE, "DNSCTL_PLAN_PUBLIC_KEY")
    assert signer.key_id == verifier.key_id


def test_the_planner_is_reached_by_ssm_port_forwarding_and_drift_is_off_by_default(resolved):
    services = _of_type(resolved, "AWS::ECS::Service")
    planner = next(s for s in services.values() if s["Properties"]["ServiceName"] == "planner")
    assert planner["Properties"]["EnableExecuteCommand"] is True  # `aws ssm start-session` port forwarding
    # Every planner (the cells' and the cell map's too) is reached that way; no enactor is.
    for s in services.values():
        assert bool(s["Properties"].get("EnableExecuteCommand")) == s["Properties"]["ServiceName"].endswith("planner"), s
    params = cfn_template.load()["Parameters"]
    assert params["PlannerIngressCidr"]["Default"] == ""  # no plain-HTTP ingress unless asked
    assert params["TrafficDrift"]["Default"] == "0"
    env = {e["Name"]: e["Value"] for e in _containers(resolved)["planner"]["Environment"]}
    assert env["DNSCTL_PLANNER_DRIFT"] == "0"
    from planner.settings import PlannerSettings

    for value in params["TrafficDrift"]["AllowedValues"]:
        assert PlannerSettings(drift=float(value)).drift == float(value)  # every allowed value starts the planner
