"""Fixtures for the data-plane tests: hand-built endpoint zones and a DNS server serving them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.dns.dnsproc import DnsProcess, start_dns
from tests.dns.trees import HandZone, Lb, a_fleet

WEIGHTS = [1, 2, 3, 4]


@dataclass
class Served:
    dns: DnsProcess
    stable: HandZone  # a healthy endpoint nobody breaks
    lbs: list[Lb]
    parent: str  # every zone of this module lives under it


@pytest.fixture(scope="module")
def served(emulator, tmp_path_factory) -> Iterator[Served]:
    """One DNS server for a module, serving only zones under a unique parent name."""
    parent = f"t{uuid.uuid4().hex[:10]}.test"
    client = emulator.client("route53")
    stable = HandZone(client, f"dynamodb.{parent}")
    lbs = a_fleet(4, WEIGHTS)
    stable.flip(stable.build_tree(1, lbs))
    server = start_dns(tmp_path_factory.mktemp("dns"), "--zone", parent, "--refresh-ms", "100", "--zone-list-ms", "300", zone=stable.endpoint)
    yield Served(server, stable, lbs, parent)
    server.stop()
