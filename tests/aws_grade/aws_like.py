"""The AWS-like emulator's settings, and running the Route 53 load child and reading its report."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import Emulator
from tests.processes import ROOT

THROTTLE_RATE = 10
THROTTLE_BURST = 5
PROPAGATION_DELAY_S = 1.0
EMULATOR_FLAGS = (
    "--throttle",
    "--throttle-rate",
    str(THROTTLE_RATE),
    "--throttle-burst",
    str(THROTTLE_BURST),
    "--propagation-delay",
    str(PROPAGATION_DELAY_S),
    "--prior-request-check",
)


def run_route53_load(emulator: Emulator, access_key: str, calls: int, clients: int = 1, **env: str) -> dict:
    """Run tests/aws_grade/route53_load.py as a child process against `emulator`.

    The emulator throttles per access key, so each test passes its own and starts with a full bucket.
    """
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("DNSCTL_ROUTE53_") and not k.startswith("AWS_")}
    child_env.update(
        {
            "AWS_ENDPOINT_URL": emulator.url,
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            **env,
        }
    )
    proc = subprocess.run(
        [sys.executable, "-m", "tests.aws_grade.route53_load", "--calls", str(calls), "--clients", str(clients)],
        cwd=ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    report["log"] = proc.stderr
    return report


def metric(report: dict, name: str, **labels: str) -> float:
    key = name + "{" + ",".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"
    return report["metrics"].get(key, 0.0)


def metric_sum(report: dict, name: str) -> float:
    return sum(v for k, v in report["metrics"].items() if k.startswith(name + "{"))


def log_events(report: dict, event: str) -> list[dict]:
    out = []
    for line in report["log"].splitlines():
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if data.get("event") == event:
            out.append(data)
    return out
