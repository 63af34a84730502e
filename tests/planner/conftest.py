"""Real planner processes for the planner's tests: each on a free port, with its own bucket."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from services.plan.store import PlanStore
from tests.processes import ManagedProcess, free_port

TOKEN = "planner-test-token"


class RunningPlanner:
    def __init__(self, process: ManagedProcess, port: int, bucket: str):
        self.process = process
        self.port = port
        self.bucket = bucket
        self.url = f"http://127.0.0.1:{port}"

    def http(self, token: str | None = TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0)

    def store(self) -> PlanStore:
        return PlanStore(self.bucket, "us-east-1")

    def status(self) -> dict:
        return httpx.get(f"{self.url}/v1/planner/status", timeout=30.0).json()

    def wait_for_version(self, at_least: int, timeout_s: float = 15.0) -> int:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            newest = self.status()["newest_version"]
            if newest is not None and newest >= at_least:
                return newest
            time.sleep(0.05)
        raise TimeoutError(f"no plan {at_least} after {timeout_s}s:\n{self.process.output()[-3000:]}")

    def events(self, name: str) -> list[str]:
        return [line for line in self.process.output().splitlines() if f'"event": "{name}"' in line]


def start_planner(
    log_dir: Path,
    aws_endpoint: str,
    *,
    interval_s: float = 3600.0,
    bucket: str | None = None,
    args: tuple[str, ...] = (),
    wait: bool = True,
    env: dict[str, str] | None = None,
) -> RunningPlanner:
    port = free_port()
    bucket = bucket or f"planner-{uuid.uuid4().hex[:10]}"
    env = {
        "AWS_ENDPOINT_URL": aws_endpoint,
        "DNSCTL_BUCKET": bucket,
        "DNSCTL_API_TOKEN": TOKEN,
        "DNSCTL_STATE_DIR": str(log_dir / "state"),
        **(env or {}),
    }
    name = f"planner-{port}"
    proc = ManagedProcess(
        name, ["planner", "--port", str(port), "--plan-interval", str(interval_s), *args], env, log_dir
    )
    planner = RunningPlanner(proc, port, bucket)
    if wait:
        try:
            proc.wait_http(f"{planner.url}/healthz", timeout_s=30)
        except Exception:
            proc.stop()
            raise
    return planner


@pytest.fixture
def planner_factory(emulator, tmp_path) -> Iterator[Callable[..., RunningPlanner]]:
    """Start planners against the session emulator; every one is stopped at the end of the test."""
    started: list[RunningPlanner] = []

    def make(**kwargs) -> RunningPlanner:
        kwargs.setdefault("aws_endpoint", emulator.url)
        p = start_planner(tmp_path, **kwargs)
        started.append(p)
        return p

    yield make
    for p in started:
        p.process.stop()


@pytest.fixture
def planner(planner_factory) -> RunningPlanner:
    """A planner whose timer publishes once at start and then not for an hour: tests drive it."""
    p = planner_factory()
    p.wait_for_version(1)
    return p
