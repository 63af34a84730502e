"""Where is my stack: the description in the state dir, explicit AWS settings winning over it,
the error when there is neither, `dnsctl env`, and the refusal to create resources in a real
AWS account without --aws (all as real subprocesses of the CLI, plus the pure resolution rules)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services import stack_file
from tests.processes import ROOT
from tests.stack.shells import NO_AWS
from tests.stack.shells import bare_env as _bare_env


def dnsctl(*args: str, env: dict[str, str], cwd: Path = ROOT, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=cwd, env={**env, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=timeout)


def _describe(state: Path, pid: int, emulator: str = "http://127.0.0.1:1") -> Path:
    return stack_file.write(state, {
        "supervisor_pid": pid, "run_id": "20261201T000000Z-abcd", "host": "127.0.0.1", "mode": "guarded",
        "log_dir": str(state / "logs" / "20261201T000000Z-abcd"),
        "aws_env": {"AWS_ACCESS_KEY_ID": "dnsctl-local", "AWS_SECRET_ACCESS_KEY": "dnsctl-local",
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": emulator},
        "settings": {"DNSCTL_BUCKET": "dnsctl-plans", "DNSCTL_REGION": "us-east-1"},
        "services": {"planner": {"pid": pid, "port": 18080, "protocol": "tcp", "url": "http://127.0.0.1:18080"},
                     "dns": {"pid": pid, "port": 18053, "protocol": "udp+tcp"}},
    })


def test_no_stack_and_no_aws_settings_says_what_is_missing(tmp_path: Path):
    env = _bare_env(tmp_path, DNSCTL_STATE_DIR=str(tmp_path / "state"))
    for args in (("status",), ("resolve", "dynamodb.us-east-1.api.aws"), ("repair", "--all")):
        done = dnsctl(*args, env=env, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        text = " ".join(done.stderr.split())
        assert "no AWS settings" in text and str(tmp_path / "state" / "stack.json") in text, text
        assert "dnsctl up" in text and "AWS_PROFILE" in text and "Traceback" not in done.stderr
        assert "no active alarms" not in done.stdout


def test_env_prints_the_stack_and_fails_without_one(tmp_path: Path):
    state = tmp_path / "state"
    env = _bare_env(tmp_path)
    done = dnsctl("env", "--state-dir", str(state), env=env, cwd=tmp_path)
    assert done.returncode == 1 and "no stack described" in done.stderr
    _describe(state, os.getpid())
    done = dnsctl("--state-dir", str(state), "env", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    exports = dict(line.removeprefix("export ").split("=", 1) for line in done.stdout.splitlines() if line.startswith("export "))
    assert exports["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1" and exports["AWS_ACCESS_KEY_ID"] == "dnsctl-local"
    assert exports["DNSCTL_STATE_DIR"] == str(state) and exports["DNSCTL_PLANNER_URL"] == "http://127.0.0.1:18080"
    assert exports["DNSCTL_DNS"] == "127.0.0.1:18053" and "dig @127.0.0.1 -p 18053" in done.stdout
    # A description whose writer is gone is still printed, with a warning.
    _describe(state, 2**22 + 12345)
    done = dnsctl("env", env={**env, "DNSCTL_STATE_DIR": str(state)}, cwd=tmp_path)
    assert done.returncode == 0 and "not running" in " ".join(done.stderr.split())


@pytest.fixture
def clean_env(monkeypatch):
    for name in NO_AWS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(stack_file, "_resolved", {})
    yield monkeypatch


def test_the_stack_fills_in_aws_settings_and_explicit_ones_win(tmp_path: Path, clean_env):
    state = tmp_path / "state"
    _describe(state, os.getpid(), emulator="http://127.0.0.1:4999")
    source = stack_file.resolve_aws(state)
    assert source.kind == "stack" and os.environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4999"
    assert os.environ["AWS_ACCESS_KEY_ID"] == "dnsctl-local"
    assert stack_file.resolve_aws(state) is source  # decided once per process

    clean_env.setattr(stack_file, "_resolved", {})
    for name in NO_AWS:
        clean_env.delenv(name, raising=False)
    clean_env.setenv("AWS_PROFILE", "prod")
    source = stack_file.resolve_aws(state)
    assert source.kind == "explicit" and "AWS_PROFILE" in source.detail
    assert "AWS_ENDPOINT_URL" not in os.environ and os.environ["AWS_PROFILE"] == "prod"

    # The stack's own emulator given explicitly still gets its placeholder credentials.
    clean_env.setattr(stack_file, "_resolved", {})
    clean_env.delenv("AWS_PROFILE")
    clean_env.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4999")
    assert stack_file.resolve_aws(state).kind == "explicit" and os.environ["AWS_ACCESS_KEY_ID"] == "dnsctl-local"

    clean_env.setattr(stack_file, "_resolved", {})
    for name in NO_AWS:
        clean_env.delenv(name, raising=False)
    assert stack_file.resolve_aws(tmp_path / "nothing").kind == "default" and "AWS_ENDPOINT_URL" not in os.environ


def test_creating_resources_in_a_real_account_needs_aws_flag(tmp_path: Path):
    # Credentials that look real and no endpoint override: boto3 would talk to AWS itself.
    env = _bare_env(tmp_path, AWS_ACCESS_KEY_ID="AKIAEXAMPLEEXAMPLE", AWS_SECRET_ACCESS_KEY="example", AWS_DEFAULT_REGION="us-east-1",
                    DNSCTL_STATE_DIR=str(tmp_path / "state"))
    done = dnsctl("zones", "ensure", "--endpoint", "dynamodb.us-east-1.api.aws", env=env, cwd=tmp_path)
    text = " ".join(done.stderr.split())
    assert done.returncode == 2 and "real AWS account" in text and "--aws" in text and "nothing was created" in text, done.stderr
    trace = tmp_path / "ce.json"
    found = dnsctl("check", "--guard", "off", "--json", str(trace), env=env, cwd=tmp_path, timeout=180)
    assert trace.exists(), found.stdout + found.stderr
    done = dnsctl("check", "--replay", str(trace), env=env, cwd=tmp_path)
    text = " ".join(done.stderr.split())
    assert done.returncode == 2 and "real AWS account" in text and "--aws" in text, done.stdout + done.stderr
    assert json.loads(trace.read_text())  # the trace itself is untouched
