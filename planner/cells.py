"""The fleet of one cell: its own dual-stack endpoint and its own load balancers in the region's AZs.

A planner run with a cell (`--cell cell-2`, DNSCTL_CELL) plans only for that cell. Without a fleet
file it seeds its store with `cell_fleet`: one endpoint, `cell-2.ddb.us-east-1.api.aws` (A and
AAAA, in its own hosted zone), and a few LBs per AZ whose addresses no other cell shares. Any
fleet it is given must keep to the cell's namespace (`fleet_outside_cell`): the cell's enactors
would refuse anything else (enactor/runner.py), so the planner refuses it first.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from planner.fleet import DEMO_AZS, DEMO_REGION, Fleet, FleetError, validate_fleet
from services.cells.naming import cell_endpoint, cell_number, in_cell

DEFAULT_CELL_LBS = 6  # two per AZ
MAX_CELL_LBS = 500  # the address plan below gives every cell 1,024 IPv4 addresses
_CAPACITIES = (4000, 2000)


def cell_fleet(cell: str, lbs: int = DEFAULT_CELL_LBS, region: str = DEMO_REGION) -> Fleet:
    """The cell's fleet: `lbs` LBs (3..500) spread evenly over the demo's AZs, two addresses of each family.

    IPv4 from 10.128.0.0/9 and IPv6 from 2001:db8:c::/48, a block per cell, so two cells never
    answer the same address and a test can tell whose answer it got.
    """
    source = f"fleet of {cell}"
    if not 3 <= lbs <= MAX_CELL_LBS:
        raise FleetError([("lbs", f"a cell has between 3 and {MAX_CELL_LBS} LBs, not {lbs}")], source)
    n = cell_number(cell)
    name = cell_endpoint(cell, region)
    members: list[dict[str, Any]] = []
    for g in range(lbs):
        az = DEMO_AZS[g % len(DEMO_AZS)]
        members.append({
            "id": f"{cell}-{az}-{g // len(DEMO_AZS):03d}",
            "az": az,
            "endpoint": name,
            "ipv4": [str(ipaddress.IPv4Address(0x0A800000 + n * 1024 + g * 2 + j)) for j in (0, 1)],
            "ipv6": [str(ipaddress.IPv6Address((0x20010DB8000C << 80) + (n << 16) + g * 2 + j)) for j in (0, 1)],
            "capacity": _CAPACITIES[g % len(_CAPACITIES)],
        })
    return validate_fleet(
        {"region": region, "azs": list(DEMO_AZS), "endpoints": [{"name": name, "record_types": ["A", "AAAA"]}],
         "load_balancers": members},
        source,
    )


def fleet_outside_cell(fleet: Fleet, cell: str) -> FleetError | None:
    """Why `fleet` is not a fleet of `cell` (an endpoint or hosted zone outside its namespace), or None."""
    errors = [
        (f"endpoints.{k}.{field}", f"{value} is outside {cell}'s namespace ({cell_endpoint(cell, fleet.region)})")
        for k, ep in enumerate(fleet.endpoints)
        for field, value in (("name", ep.name), ("hosted_zone", ep.hosted_zone))
        if not in_cell(value, cell, fleet.region)
    ]
    return FleetError(errors, f"fleet for {cell}") if errors else None
