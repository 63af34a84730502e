"""The live view that `dnsctl up` shows: each service's health, then the same endpoint and
enactor view as `dnsctl status` (one renderer for both, compact below its WIDE_COLUMNS so the
whole view fits 80x24; with cells, grouped by system as status groups it)."""

from __future__ import annotations

from functools import cache

from rich.console import Group
from rich.table import Table
from rich.text import Text

from cli.cells_view import cell_sources, grouped
from cli.status_cmd import WIDE_COLUMNS, status_tables
from services import stack_file
from services.prober.overview import Sources, gather
from services.stack import Ports
from services.supervisor import Supervisor


@cache
def _route53():
    # One client for the life of the view: a new one per refresh would open a new connection each second.
    from services.aws_clients import route53_client

    return route53_client()


def _services(sup: Supervisor, host: str, compact: bool):
    if compact:
        # One line at 80 columns: the enactors by their letter, after the other services.
        line = Text("services ")
        enactors = sorted((c for c in sup.children if c.spec.name.startswith("enactor-")), key=lambda c: c.spec.name)
        for child in [c for c in sup.children if c not in enactors] + enactors:
            if child is (enactors[0] if enactors else None):
                line.append(" enactors ")
            ok = sup.is_healthy(child)
            line.append("● " if ok else "✗ ", style="green" if ok else "red")
            line.append(f"{child.spec.name.removeprefix('enactor-')} ")
        return line
    table = Table(title="dnsctl stack", expand=False)
    table.add_column("service")
    table.add_column("state")
    table.add_column("address")
    for child in sup.children:
        ok = sup.is_healthy(child)
        state = "[green]healthy[/green]" if ok else "[red]down[/red]"
        if child.restart_at is not None:
            state = f"[red]exited {child.last_exit}[/red], restart due"
        if child.restarts:
            state += f" [yellow](restarted {child.restarts}x)[/yellow]"
        table.add_row(child.spec.name, state, f"{host}:{child.spec.port}")
    return table


def render_stack(sup: Supervisor, host: str, ports: Ports, width: int | None = None) -> Group:
    compact = width is not None and width < WIDE_COLUMNS
    names = {c.spec.name for c in sup.children}
    # With cells (`dnsctl up --cells N --accounts M`): their enactors join the table and the
    # endpoints are grouped by system, from the stack's description, as `dnsctl status` does.
    cell_enactors, cells = cell_sources(stack_file.read(sup.state_dir), timeout_s=0.5)
    sources = Sources(
        planner_url=f"http://{host}:{ports.planner}",
        enactor_urls=tuple(
            (f"enactor-{letter}", f"http://{host}:{port}")
            for letter, port in zip("abc", ports.enactors, strict=True)
            if f"enactor-{letter}" in names
        ) + cell_enactors,
        dns=(host, ports.dns),
        prober_url=f"http://{host}:{ports.prober}" if "prober" in names else None,
        timeout_s=0.5,
    )
    report = gather(sources, _route53())
    return Group(_services(sup, host, compact), status_tables(grouped(report, cells) if cells else report, width))
