"""Fixtures for the emulator's conformance tests: boto3 clients on the shared emulator process,
and private emulator processes for settings that would disturb other tests (delays, throttling,
small quotas, reset).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.conftest import Emulator, start_emulator

NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1}, s3={"addressing_style": "path"})


def client(emu: Emulator, service: str, config: Config = NO_RETRIES) -> Any:
    # No retries: a conformance test must see exactly what the emulator answered.
    return boto3.client(service, endpoint_url=emu.url, region_name="us-east-1", config=config)


def new_zone(r53: Any, unique: str, label: str = "zone") -> tuple[str, str]:
    """A fresh hosted zone: (zone id without prefix, zone name with trailing dot)."""
    name = f"{label}-{unique}.example.com."
    zone = r53.create_hosted_zone(Name=name, CallerReference=f"{label}-{unique}")["HostedZone"]
    return zone["Id"].rsplit("/", 1)[-1], name


@pytest.fixture
def r53(emulator: Emulator) -> Any:
    return client(emulator, "route53")


@pytest.fixture
def s3(emulator: Emulator) -> Any:
    return client(emulator, "s3")


RESET_TOKEN = "emulator-reset-token"


@pytest.fixture
def zone(r53: Any, unique: str) -> tuple[str, str]:
    return new_zone(r53, unique)


@pytest.fixture(scope="module")
def slow_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """Changes stay PENDING for 1.5 s, prior-request check on, quota of 12 record sets."""
    emu = start_emulator(
        tmp_path_factory,
        "--propagation-delay",
        "1.5",
        "--prior-request-check",
        "--max-record-sets-per-zone",
        "12",
        env={"DNSCTL_API_TOKEN": RESET_TOKEN},
    )
    yield emu
    emu.process.stop()


@pytest.fixture(scope="module")
def throttled_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    emu = start_emulator(tmp_path_factory, "--throttle", "--throttle-rate", "2", "--throttle-burst", "5")
    yield emu
    emu.process.stop()


@pytest.fixture(scope="module")
def racy_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """Threads switch every microsecond, so unlocked check-then-write code loses races visibly
    (stock moto's S3 conditional PUT lets two writers win a few rounds in 40 this way)."""
    emu = start_emulator(tmp_path_factory, "--switch-interval", "0.000001")
    yield emu
    emu.process.stop()
