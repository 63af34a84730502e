"""The compact live view that `dnsctl up` shows: each service's health, then the same endpoint and
enactor tables as `dnsctl status` (one renderer for both)."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table

from cli.dns_cmd import status_tables
from services.aws_clients import route53_client
from services.prober.overview import Sources, gather
from services.stack import Ports
from services.supervisor import Supervisor


def render_stack(sup: Supervisor, host: str, ports: Ports) -> Group:
    services = Table(title="dnsctl stack", expand=False)
    services.add_column("service")
    services.add_column("state")
    services.add_column("address")
    for child in sup.children:
        ok = sup.is_healthy(child)
        state = "[green]healthy[/green]" if ok else "[red]down[/red]"
        if child.restart_at is not None:
            state = f"[red]exited {child.last_exit}[/red], restart due"
        if child.restarts:
            state += f" [yellow](restarted {child.restarts}x)[/yellow]"
        services.add_row(child.spec.name, state, f"{host}:{child.spec.port}")
    names = {c.spec.name for c in sup.children}
    sources = Sources(
        planner_url=f"http://{host}:{ports.planner}",
        enactor_urls=tuple(
            (f"enactor-{letter}", f"http://{host}:{port}")
            for letter, port in zip("abc", ports.enactors, strict=True)
            if f"enactor-{letter}" in names
        ),
        dns=(host, ports.dns),
        prober_url=f"http://{host}:{ports.prober}" if "prober" in names else None,
        timeout_s=0.5,
    )
    return Group(services, status_tables(gather(sources, route53_client())))
