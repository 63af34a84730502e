"""What a cell is called, everywhere: its DNS names, its key prefix in the plan bucket, its processes.

A cell is the regional DNS management system namespaced by one setting, DNSCTL_CELL (`--cell`):
the same planner, the same enactors, the same lock protocol, only every name they touch moves
into the cell's namespace, so nothing of one cell's management is read or written by another's.

    endpoint (dual-stack)  cell-2.ddb.us-east-1.api.aws           its own hosted zone and lock
    plan stream            cells/cell-2/plans/us-east-1/...       its own versions, from 1
    kill switch            cells/cell-2/control/us-east-1/freeze.json
    desired fleet          cells/cell-2/fleet/us-east-1/desired.json
    processes              cell-2-planner, cell-2-zones, cell-2-enactor-a|b|c

The regional system keeps its names (no cell: no prefix). An account's own name
(`<account-id>.ddb.us-east-1.api.aws`) is a CNAME to its cell's endpoint, or to the legacy
regional name until it is moved (the cell map, services/cells/cellmap.py).
"""

from __future__ import annotations

import os
import re

CELL_ENV = "DNSCTL_CELL"
CELL_PATTERN = r"^cell-[1-9][0-9]{0,2}$"  # cell-1 .. cell-999
MAX_CELLS = 999
_CELL_RE = re.compile(CELL_PATTERN)
# The name accounts resolve today, before they are moved to a cell: the legacy regional dual-stack name.
LEGACY_ENDPOINT = "dynamodb.{region}.api.aws"
CELL_ENDPOINT = "{cell}.ddb.{region}.api.aws"
ACCOUNT_NAME = "{account}.ddb.{region}.api.aws"
ACCOUNT_PATTERN = r"^[0-9]{12}$"


class BadCell(ValueError):
    """A cell name that is not `cell-N` (1 <= N <= 999)."""


def check_cell(cell: str) -> str:
    if not _CELL_RE.match(cell):
        raise BadCell(f"{cell!r} is not a cell name: use cell-1 .. cell-{MAX_CELLS}")
    return cell


def cell_names(count: int) -> tuple[str, ...]:
    """cell-1 .. cell-<count>."""
    if not 0 <= count <= MAX_CELLS:
        raise BadCell(f"between 0 and {MAX_CELLS} cells, not {count}")
    return tuple(f"cell-{k}" for k in range(1, count + 1))


def cell_number(cell: str) -> int:
    return int(check_cell(cell).removeprefix("cell-"))


def cell_from_env() -> str | None:
    """DNSCTL_CELL, checked; None (unset or empty) is the regional system."""
    value = os.environ.get(CELL_ENV, "").strip()
    return check_cell(value) if value else None


def cell_endpoint(cell: str, region: str) -> str:
    """The cell's own top-level DNS name (dual-stack, its own hosted zone)."""
    return CELL_ENDPOINT.format(cell=check_cell(cell), region=region)


def legacy_endpoint(region: str) -> str:
    return LEGACY_ENDPOINT.format(region=region)


def account_name(account: str, region: str) -> str:
    return ACCOUNT_NAME.format(account=account, region=region)


def accounts_zone(region: str) -> str:
    """The hosted zone of the per-account names (`ddb.<region>.api.aws`)."""
    return f"ddb.{region}.api.aws"


def in_cell(name: str, cell: str, region: str) -> bool:
    """Whether a DNS name belongs to the cell's namespace: its endpoint or a name under it."""
    apex = cell_endpoint(cell, region)
    name = name.lower().rstrip(".")
    return name == apex or name.endswith("." + apex)


def owner_cell(name: str, region: str) -> str | None:
    """The cell whose namespace holds `name` (`x.cell-2.ddb.us-east-1.api.aws` -> cell-2), or None."""
    labels = name.lower().rstrip(".").split(".")
    suffix = ["ddb", *region.split("."), "api", "aws"]
    for i, label in enumerate(labels):
        if _CELL_RE.match(label) and labels[i + 1:] == suffix:
            return label
    return None


def store_prefix(cell: str | None) -> str:
    """The cell's key prefix in the plan bucket ("" for the regional system)."""
    return f"cells/{check_cell(cell)}/" if cell else ""


def process_name(cell: str | None, name: str) -> str:
    """A process's name in the stack: `cell-2-enactor-a`, or `enactor-a` for the regional system."""
    return f"{check_cell(cell)}-{name}" if cell else name
