"""The `dnsctl` planner commands, run as real subprocesses against a running planner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.planner.conftest import TOKEN, RunningPlanner, start_planner
from tests.processes import ROOT, free_port


@pytest.fixture(scope="module")
def planner(emulator, tmp_path_factory) -> Iterator[RunningPlanner]:
    p = start_planner(tmp_path_factory.mktemp("cli-planner"), emulator.url)
    p.wait_for_version(1)
    yield p
    p.process.stop()


def dnsctl(*args: str, url: str | None = None, token: str | None = TOKEN) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DNSCTL_API_TOKEN", "DNSCTL_PLANNER_URL")}
    env["DNSCTL_STATE_DIR"] = str(ROOT / ".dnsctl-test-none")  # no token file: only the env token counts
    env["COLUMNS"] = "200"
    if token:
        env["DNSCTL_API_TOKEN"] = token
    if url:
        env["DNSCTL_PLANNER_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def ok(run: subprocess.CompletedProcess) -> str:
    assert run.returncode == 0, f"exit {run.returncode}\nstdout: {run.stdout}\nstderr: {run.stderr}"
    return run.stdout


def test_unreachable_planner_gives_a_clear_error():
    url = f"http://127.0.0.1:{free_port()}"
    for args in (("plan", "list"), ("fleet", "show"), ("freeze", "--reason", "x")):
        run = dnsctl(*args, url=url)
        assert run.returncode == 1
        assert f"planner is not reachable at {url}" in run.stderr
        assert "`dnsctl up`" in run.stderr and "`dnsctl planner`" in run.stderr
        assert "Traceback" not in run.stderr


def test_url_flag_overrides_the_environment(planner):
    run = dnsctl("fleet", "show", "--json", "--url", planner.url, url=f"http://127.0.0.1:{free_port()}")
    assert json.loads(ok(run))["region"] == "us-east-1"


def test_read_commands_print_tables_and_json(planner):
    fleet = json.loads(ok(dnsctl("fleet", "show", "--json", url=planner.url)))
    assert fleet == httpx.get(f"{planner.url}/v1/fleet").json()
    table = ok(dnsctl("fleet", "show", url=planner.url))
    assert "dynamodb.us-east-1.api.aws" in table and "ddb-az1-a" in table

    published = ok(dnsctl("plan", "trigger", "--reason", "from the cli", url=planner.url))
    version = int(published.split("published plan ")[1].split()[0])
    page = json.loads(ok(dnsctl("plan", "list", "--json", url=planner.url)))
    assert page["plans"][0]["version"] == version and page["plans"][0]["reason"] == "requested: from the cli"
    listing = ok(dnsctl("plan", "list", url=planner.url))
    assert "from the cli" in listing
    shown = json.loads(ok(dnsctl("plan", "show", str(version), "--json", url=planner.url)))
    assert shown == httpx.get(f"{planner.url}/v1/plans/{version}").json()
    latest = ok(dnsctl("plan", "show", url=planner.url))
    assert f"plan {version}" in latest and "dynamodb-fips.us-east-1.amazonaws.com" in latest
    missing = dnsctl("plan", "show", "9999", url=planner.url)
    assert missing.returncode == 1 and "0000009999.json" in missing.stderr


def test_fleet_changes_freeze_thaw_and_restore(planner):
    start = planner.status()["newest_version"]
    out = ok(dnsctl("fleet", "set-capacity", "ddb-az1-b", "4500", url=planner.url))
    assert "queued" in out
    out = ok(
        dnsctl(
            "fleet", "add-lb", "ddb-az2-new", "--az", "use1-az2", "--endpoint", "dynamodb.us-east-1.amazonaws.com",
            "--ipv4", "192.0.2.77", "--ipv4", "192.0.2.78", "--capacity", "1500", url=planner.url,
        )
    )  # fmt: skip
    assert "queued" in out
    fleet = httpx.get(f"{planner.url}/v1/fleet").json()
    new = next(lb for lb in fleet["load_balancers"] if lb["id"] == "ddb-az2-new")
    assert new["ipv4"] == ["192.0.2.77", "192.0.2.78"] and new["capacity"] == 1500

    bad = dnsctl("fleet", "add-lb", "x-1", "--az", "use1-az9", "--endpoint", "dynamodb.us-east-1.amazonaws.com",
                 "--ipv4", "192.0.2.1", "--capacity", "1", url=planner.url)  # fmt: skip
    assert bad.returncode == 1 and "az: " in bad.stderr and "use1-az9" in bad.stderr

    refused = dnsctl("fleet", "drain-az", "use1-az1", url=planner.url)
    assert refused.returncode == 1 and "unsafe" in refused.stderr and "--force" in refused.stderr
    out = ok(dnsctl("fleet", "drain-az", "use1-az4", url=planner.url))
    drained_version = int(out.split("published plan ")[1].split()[0])
    assert drained_version == start + 1
    assert "queued" in ok(dnsctl("fleet", "undrain-az", "use1-az4", url=planner.url))

    assert "frozen by" in ok(dnsctl("freeze", "--reason", "incident 42", url=planner.url))
    blocked = dnsctl("plan", "trigger", url=planner.url)
    assert blocked.returncode == 1 and "frozen" in blocked.stderr and "incident 42" in blocked.stderr
    assert "already frozen" in ok(dnsctl("freeze", "--reason", "again", url=planner.url))
    assert "thawed" in ok(dnsctl("thaw", url=planner.url))
    assert "not frozen" in ok(dnsctl("thaw", url=planner.url))

    restored = json.loads(ok(dnsctl("plan", "restore", str(start), "--json", url=planner.url)))
    assert restored["restored_version"] == start and restored["version"] > drained_version


def test_wrong_token_is_refused_with_a_hint(planner):
    run = dnsctl("plan", "trigger", url=planner.url, token="not-the-token")
    assert run.returncode == 1
    assert "bearer token" in run.stderr and "DNSCTL_API_TOKEN" in run.stderr
    assert "not-the-token" not in run.stderr


def test_help_everywhere():
    for args in (
        ("planner",),
        ("plan",),
        ("plan", "list"),
        ("fleet",),
        ("fleet", "add-lb"),
        ("freeze",),
        ("thaw",),
    ):
        run = dnsctl(*args, "--help")
        assert run.returncode == 0 and "Usage" in run.stdout, args


def test_freeze_and_thaw_direct_work_with_no_planner_running(emulator, unique):
    """The kill switch must not depend on the planner: --direct writes the S3 marker itself."""
    from services.plan.store import PlanStore

    bucket = f"direct-freeze-{unique}"
    store = PlanStore(bucket, "us-east-1")
    store.ensure_bucket()
    env_bucket = {"DNSCTL_BUCKET": bucket}
    os.environ.update(env_bucket)
    try:
        frozen = json.loads(ok(dnsctl("freeze", "--direct", "--reason", "hands off", "--by", "sre", "--json")))
        assert frozen["frozen"] and frozen["newly_frozen"] and frozen["reason"] == "hands off"
        marker = store.freeze_state()
        assert marker is not None and marker.by == "sre"
        again = json.loads(ok(dnsctl("freeze", "--direct", "--reason", "twice", "--json")))
        assert not again["newly_frozen"] and again["reason"] == "hands off"  # the first freeze is kept
        thawed = json.loads(ok(dnsctl("thaw", "--direct", "--json")))
        assert thawed["lifted"]["reason"] == "hands off"
        assert store.freeze_state() is None
        # With S3 unreachable: a clear error, exit 1, nothing written.
        os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{free_port()}"
        failed = dnsctl("freeze", "--direct", "--reason", "x")
        assert failed.returncode == 1 and "127.0.0.1" in failed.stderr
    finally:
        os.environ["AWS_ENDPOINT_URL"] = emulator.url
        os.environ.pop("DNSCTL_BUCKET", None)
    assert store.freeze_state() is None
