"""deploy/aws/dnsctl.yaml for tests: decoded by cfn-lint's own YAML loader, and its intrinsic
functions evaluated for a given set of parameter values, so tests can assert the concrete ARNs,
actions and commands a deployment would get (as CloudFormation would resolve them)."""

from __future__ import annotations

import re
from typing import Any

from cfnlint.decode import decode

from tests.processes import ROOT

TEMPLATE = ROOT / "deploy" / "aws" / "dnsctl.yaml"
ACCOUNT = "123456789012"
REGION = "us-east-1"
STACK = "dnsctl-test"
BUCKET = "dnsctl-test-planbucket-abc123"


def secret_arn(resource: str) -> str:
    return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{resource}-xyz"


SECRET_ARN = secret_arn("ApiTokenSecret")
SIGNING_KEY_SECRET_ARN = secret_arn("PlanSigningKeySecret")


def name_servers(zone: str) -> list[str]:
    """The four name servers Route 53 would give the hosted zone `zone` (a logical id)."""
    return [f"ns-{i}.{zone.lower()}.awsdns.example" for i in range(4)]


def load() -> dict[str, Any]:
    template, matches = decode(str(TEMPLATE))
    assert not matches, [str(m) for m in matches]
    return template


class Resolver:
    """Evaluates Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Split, Fn::Select for the resources here."""

    def __init__(self, template: dict[str, Any], params: dict[str, Any]):
        self.template = template
        self.values: dict[str, Any] = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": STACK,
        }
        for name, spec in template["Parameters"].items():
            value = params.get(name, spec.get("Default"))
            if value is None:
                raise KeyError(f"parameter {name} needs a value")
            if spec["Type"].startswith("List<") or spec["Type"] == "CommaDelimitedList":
                value = value if isinstance(value, list) else str(value).split(",")
            else:
                value = str(value)
            self.values[name] = value

    def ref(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        kind = self.template["Resources"][name]["Type"]
        return {
            "AWS::S3::Bucket": BUCKET,
            "AWS::SecretsManager::Secret": secret_arn(name),
            "AWS::Logs::LogGroup": self.resolve(self.template["Resources"][name]["Properties"].get("LogGroupName", name)),
        }.get(kind, f"{name}-physical-id")

    def get_att(self, name: str, attribute: str) -> str:
        kind = self.template["Resources"][name]["Type"]
        if attribute == "Arn":
            if kind == "AWS::S3::Bucket":
                return f"arn:aws:s3:::{self.ref(name)}"
            if kind == "AWS::Logs::LogGroup":
                return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{self.ref(name)}:*"
            if kind == "AWS::IAM::Role":
                return f"arn:aws:iam::{ACCOUNT}:role/{STACK}-{name}"
        if attribute == "NameServers" and kind == "AWS::Route53::HostedZone":
            return name_servers(name)
        raise NotImplementedError(f"GetAtt {name}.{attribute}")

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.resolve(n) for n in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                name, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(name, attribute)
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
                return re.sub(r"\$\{([^}]+)\}", lambda m: self._sub_var(m.group(1), extra), text)
            if key == "Fn::Join":
                delimiter, items = arg
                assert isinstance(delimiter, str), "Fn::Join takes no functions in its delimiter"
                flat = self.resolve(items)
                return delimiter.join(str(i) for i in flat)
            if key == "Fn::Split":
                delimiter, text = arg
                return str(self.resolve(text)).split(delimiter)
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(index)]
            if key.startswith("Fn::"):
                raise NotImplementedError(key)
        return {k: self.resolve(v) for k, v in node.items()}

    def _sub_var(self, name: str, extra: dict[str, Any]) -> str:
        if name in extra:
            return str(extra[name])
        if "." in name:
            resource, attribute = name.split(".", 1)
            return self.get_att(resource, attribute)
        return str(self.ref(name))
