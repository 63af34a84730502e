"""Shared fixtures: a real emulator process and per-test AWS settings pointing at it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import boto3
import pytest

from tests.processes import ManagedProcess, free_port

# Tests never reach real AWS: credentials are dummies and every client goes to the emulator.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
for _var in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
    os.environ.pop(_var, None)


class Emulator:
    def __init__(self, process: ManagedProcess, port: int):
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.url}

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1")


def start_emulator(
    tmp_path_factory: pytest.TempPathFactory, *extra: str, env: dict[str, str] | None = None, port: int | None = None
) -> Emulator:
    port = port or free_port()
    log_dir = tmp_path_factory.mktemp("emulator")
    proc = ManagedProcess("emulator", ["emulator", "--host", "127.0.0.1", "--port", str(port), *extra], env, log_dir)
    emu = Emulator(proc, port)
    proc.wait_http(f"{emu.url}/moto-api/", timeout_s=60)
    return emu


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """One strict emulator process for the whole session; tests use unique zone and bucket names."""
    emu = start_emulator(tmp_path_factory)
    old = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = emu.url
    yield emu
    if old is None:
        os.environ.pop("AWS_ENDPOINT_URL", None)
    else:
        os.environ["AWS_ENDPOINT_URL"] = old
    emu.process.stop()


@pytest.fixture
def unique() -> str:
    """A short unique suffix for bucket and zone names, so tests sharing an emulator never collide."""
    return uuid.uuid4().hex[:8]
