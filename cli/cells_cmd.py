"""`dnsctl cells`: the cell map (which cell each account is in) and its own planner and enactors.

    dnsctl cells show                       the newest map: accounts per cell, each account's CNAME target
    dnsctl cells move ACCOUNT CELL          the map diff, then (with --yes) a new map on the fast lane
                                            (CELL `legacy` moves the account back to the regional name),
                                            then waits, with a spinner, until a cell map enactor applied it
    dnsctl cells planner | enactor          the processes `dnsctl up --accounts N` starts
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from cli.client import base_url, cli_errors, err_console, service_client

app = typer.Typer(help="The cell map: cells, account -> cell, and its own planner and enactors.", no_args_is_help=True)
console = Console()
SERVICE = "cellmap-planner"
DEFAULT_PORT = 8094
UrlOpt = typer.Option(None, "--url", help="The cell map planner's URL (default: the running stack's).")


def _client(url: str | None):
    try:
        base_url(SERVICE, url)
    except ValueError:
        url = url or f"http://127.0.0.1:{DEFAULT_PORT}"  # no stack describes one: the default port
    return service_client(SERVICE, url)


@app.command("show")
def show(url: str | None = UrlOpt, json_out: bool = typer.Option(False, "--json", help="Print the map's JSON.")) -> None:
    """The newest cell map: every account, its cell and its CNAME target."""
    from services.cells.cellmap import CellMap

    with cli_errors():
        cellmap = CellMap.model_validate(_client(url).get("/v1/cellmap"))
    if json_out:
        typer.echo(cellmap.model_dump_json(indent=2))
        return
    table = Table("account", "cell", "CNAME", title=f"cell map v{cellmap.version} ({len(cellmap.accounts)} accounts, "
                  f"cells: {', '.join(cellmap.cells) or 'none'})", title_justify="left")
    for a in cellmap.accounts:
        table.add_row(a.account, a.cell or "legacy", cellmap.target(a))
    console.print(table)


@app.command("move")
def move(
    account: str = typer.Argument(..., help="12-digit account id."),
    cell: str = typer.Argument(..., help="cell-N, or `legacy` for the regional name."),
    yes: bool = typer.Option(False, "--yes", help="Publish it (without: show the diff and change nothing)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only show the diff (the default without --yes)."),
    reason: str = typer.Option("", help="Why (recorded in the map)."),
    url: str | None = UrlOpt,
    wait: float = typer.Option(60.0, "--wait", min=0, help="Seconds to wait until a cell map enactor applied the new map (0: do not wait)."),
    enactor: list[str] = typer.Option([], "--enactor", help="URL of a cell map enactor to watch (repeatable; default: the stack's)."),
) -> None:
    """Move an account to another cell: the map diff first; --yes publishes it on the fast lane and waits until it is applied."""
    body = {"account": account, "cell": None if cell == "legacy" else cell, "reason": reason}
    client = _client(url)
    with cli_errors():
        preview = client.post("/v1/cellmap/moves", json=body, dry_run="true")
    _print_diff(preview)
    if not preview["changed"]:
        console.print("nothing to change: the account is already there")
        return
    if dry_run or not yes:
        console.print(f"dry run: nothing published; add --yes to publish it as cell map v{preview['version']}")
        return
    with cli_errors():
        done = client.post("/v1/cellmap/moves", json=body)
    console.print(f"[green]published[/green] cell map v{done['version']} (fast lane)")
    if wait > 0:
        _wait_applied(int(done["version"]), wait, _enactors(enactor))


# The cell map's enactors as `dnsctl up --accounts N` names them (services/stack.py's cellmap_services).
CELLMAP_ENACTORS = tuple(f"cellmap-enactor-{x}" for x in "abc")


def _enactors(flags: list[str]) -> dict[str, str]:
    """The enactors to watch: the --enactor URLs, else the stack's (or DNSCTL_CELLMAP_ENACTOR_A_URL ...)."""
    from cli.client import env_var, stack_url

    if flags:
        return {f"cellmap-enactor-{i}": u.rstrip("/") for i, u in enumerate(flags, 1)}
    import os

    found = {name: os.environ.get(env_var(name)) or stack_url(name) for name in CELLMAP_ENACTORS}
    return {name: url.rstrip("/") for name, url in found.items() if url}


def _wait_applied(version: int, timeout_s: float, enactors: dict[str, str]) -> None:
    """Until one of the cell map enactors says the accounts' zone holds `version` (each learns the
    zone's applied version on its next listing, whoever applied it), with a spinner: a big map or
    a busy machine takes seconds. Not applied in time: said, exit 1 (the map stays published)."""
    import time

    from cli.client import ServiceError
    from services.prober.sources import parse_enactor_status

    if not enactors:
        console.print("not waiting for it to be applied: no cell map enactor known (no stack in the state dir; --enactor URL names one)")
        return
    started = time.monotonic()
    seen: dict[str, str] = {}
    with err_console.status(f"cell map v{version}: waiting for a cell map enactor to apply it ...") as spinner:
        while True:
            for name, url in enactors.items():
                try:
                    body = service_client(name, url, timeout_s=5.0).get("/status")
                except ServiceError as exc:
                    seen[name] = f"unreachable ({exc})"[:80]
                    continue
                applied = [e.applied_version for e in parse_enactor_status(body, url).endpoints if e.applied_version is not None]
                if applied and max(applied) >= version:
                    console.print(f"[green]applied[/green] cell map v{version} to the accounts' zone in {time.monotonic() - started:.1f} s "
                                  f"(as {name} lists it)", highlight=False)
                    return
                seen[name] = f"v{max(applied)}" if applied else "nothing applied yet"
            elapsed = time.monotonic() - started
            if elapsed >= timeout_s:
                break
            spinner.update(f"cell map v{version}: waiting for a cell map enactor to apply it ({elapsed:.0f} s; "
                           + ", ".join(f"{n.removeprefix('cellmap-')} {v}" for n, v in seen.items()) + ") ...")
            time.sleep(0.5)
    err_console.print(f"[yellow]cell map v{version} is published but not applied after {timeout_s:.0f} s[/yellow] ("
                      + ", ".join(f"{n}: {v}" for n, v in seen.items()) + "): the enactors apply it when they can; see `dnsctl status`",
                      highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _print_diff(answer: dict) -> None:
    diff = answer["diff"]
    console.print(f"cell map v{diff['old_version']} -> v{answer['version']}:")
    for m in diff["moves"]:
        console.print(f"  {m['account']}: {m['from'] or 'legacy'} -> {m['to'] or 'legacy'}", highlight=False)
    for c in diff["cells_added"]:
        console.print(f"  + cell {c}")
    for c in diff["cells_removed"]:
        console.print(f"  - cell {c}")


@app.command("planner")
def planner(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(DEFAULT_PORT, help="Port to listen on."),
    cells: int = typer.Option(0, min=0, max=999, help="Seed an empty stream with this many cells ..."),
    accounts: int = typer.Option(0, min=0, help="... and this many accounts (every (cells+1)-th one left on legacy)."),
    ttl: int = typer.Option(60, min=1, max=86_400, help="TTL of the account CNAMEs in the seeded map."),
) -> None:
    """Run the cell map's planner (REST API, OpenAPI at /docs)."""
    from pydantic import ValidationError

    from planner.cellmap_api import create_app
    from planner.settings import PlannerSettings
    from services.logs import configure
    from services.web import serve

    try:
        settings = PlannerSettings(host=host, port=port, planner_id="cellmap-planner")
        # Logging first: create_app binds the planner's logger, which keeps the configuration it
        # was bound under (configured after, its events went to stdout, never to DNSCTL_LOG_FILE).
        configure(process=settings.planner_id)
        app = create_app(settings, seed_cells=cells, seed_accounts=accounts, ttl=ttl)
    except (ValidationError, ValueError) as exc:
        err_console.print(f"[red]error:[/red] bad cell map planner settings: {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc
    serve(app, host, port)


@app.command("enactor")
def enactor(
    enactor_id: str = typer.Option("cellmap-enactor-a", "--id", help="This enactor's name: the lock holder id."),
    az: str = typer.Option("use1-az1", help="Availability zone it runs in (shown in /status)."),
    host: str = typer.Option("127.0.0.1", help="Address of the status API."),
    port: int = typer.Option(8095, help="Port of the status API."),
    poll_interval: float | None = typer.Option(None, help="Seconds between reads of the map (default 1.0)."),
) -> None:
    """Apply the newest cell map to the accounts' zone (one CNAME per account, the endpoints' lock)."""
    from pydantic import ValidationError

    from enactor.cellmap_runner import CellMapRunner, create_app
    from enactor.settings import EnactorSettings
    from services.logs import configure
    from services.web import serve

    overrides = {"enactor_id": enactor_id, "az": az, "host": host, "port": port, "poll_interval": poll_interval}
    try:
        settings = EnactorSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        err_console.print(f"[red]error:[/red] bad enactor settings: {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc
    configure(process=settings.enactor_id)
    serve(create_app(CellMapRunner(settings)), host, port)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="cells")
