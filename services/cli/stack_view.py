"""The compact live view that `dnsctl up` shows: each service's health, the newest plan and what
each enactor has applied per endpoint."""

from __future__ import annotations

import httpx
from rich.console import Group
from rich.table import Table

from services.stack import Ports
from services.supervisor import Supervisor


def _get(url: str) -> dict | None:
    try:
        r = httpx.get(url, timeout=0.5)
        return r.json() if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def render_stack(sup: Supervisor, host: str, ports: Ports) -> Group:
    services = Table(title="dnsctl stack", expand=False)
    services.add_column("service")
    services.add_column("state")
    services.add_column("address")
    for child in sup.children:
        ok = sup.is_healthy(child)
        services.add_row(child.spec.name, "[green]healthy[/green]" if ok else "[red]down[/red]", f"{host}:{child.spec.port}")

    planner = _get(f"http://{host}:{ports.planner}/v1/planner/status") or {}
    newest = planner.get("newest_version")
    frozen = planner.get("frozen")
    endpoints = Table(title=f"newest plan: {newest if newest is not None else '-'}" + ("  [red]FROZEN[/red]" if frozen else ""))
    endpoints.add_column("endpoint")
    enactor_names = [c.spec.name for c in sup.children if c.spec.name.startswith("enactor-")]
    statuses = {}
    for child in sup.children:
        if child.spec.name in enactor_names:
            statuses[child.spec.name] = _get(f"http://{host}:{child.spec.port}/status") or {}
            endpoints.add_column(child.spec.name)
    names = sorted({ep for st in statuses.values() for ep in (st.get("endpoints") or {})})
    for ep in names:
        cells = []
        for en in enactor_names:
            e = (statuses[en].get("endpoints") or {}).get(ep) or {}
            cells.append(f"v{e.get('applied_version', '-')} {e.get('state', '')}")
        endpoints.add_row(ep, *cells)
    return Group(services, endpoints)
